"""Regenerate the diagnostics goldens: ``python tests/diagnostics/regen.py [NAME...]``.

Writes ``cases/<name>.expected`` from what the compiler prints now and lists
what changed; review the diff before committing (``git diff tests/diagnostics``).
``--check`` only reports stale goldens (exit 1 if any).
"""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from golden import case_names, code_of, expected_path, run_case  # noqa: E402


def main(argv: list[str]) -> int:
    check = "--check" in argv
    wanted = [a for a in argv if not a.startswith("--")] or case_names()
    stale = 0
    for name in wanted:
        diags, text = run_case(name)
        path = expected_path(name)
        old = path.read_text("utf-8") if path.exists() else None
        codes = sorted({d.code for d in diags})
        if code_of(name) not in codes:
            print(f"WARNING {name}: does not produce {code_of(name)} (got {codes or 'nothing'})")
        if old == text + "\n":
            continue
        stale += 1
        if check:
            print(f"stale: {path.name}")
        else:
            path.write_text(text + "\n", encoding="utf-8")
            print(f"{'updated' if old is not None else 'created'}: {path.name}  {codes}")
    return 1 if check and stale else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
