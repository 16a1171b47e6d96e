"""The Charter compiler: one module per pass (parse, resolve, typecheck, lower, verify)."""
