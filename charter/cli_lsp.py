"""`charter lsp`: the language server for editors, over stdio (see :mod:`charter.lsp`)."""
from __future__ import annotations

import sys

import click


def register(cli: click.Group) -> None:
    @cli.command()
    @click.option("--stdio", is_flag=True, default=True, hidden=True,
                  help="Speak LSP on standard input/output (the default; editors pass it).")
    def lsp(stdio: bool) -> None:
        """Run the Charter language server (diagnostics, hover, go to definition, completion,
        outline and formatting) on standard input/output, for editors."""
        try:
            from charter.lsp.server import main
        except ModuleNotFoundError as exc:
            if exc.name not in ("pygls", "lsprotocol") and not str(exc.name).startswith(
                    ("pygls.", "lsprotocol.")):
                raise
            click.echo("charter lsp needs the language-server extra: "
                       "pip install 'charter-policy[lsp]'", err=True)
            sys.exit(2)
        main()
