"""The Charter settlement runtime: executes the IR on a double-entry ledger."""
