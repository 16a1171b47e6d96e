"""The `charter` command line.

Commands live in per-area modules (``cli_compile``, ``cli_fmt``,
``cli_runtime``, ``cli_verify``, ``cli_export``), each exposing
``register(group)``; this module only assembles them, so each area can
grow without touching the others.
"""
from __future__ import annotations

import importlib
import sys

import click

from charter import __version__

_AREAS = ("cli_compile", "cli_fmt", "cli_runtime", "cli_verify", "cli_export", "cli_lsp",
          "cli_serve", "cli_mcp", "cli_simulate")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="charter")
def cli() -> None:
    """Charter: write the rules of an economy, prove them, settle them."""


for _area in _AREAS:
    try:
        _mod = importlib.import_module(f"charter.{_area}")
    except ModuleNotFoundError as exc:  # an area not built yet
        if exc.name != f"charter.{_area}":
            raise
        continue
    _mod.register(cli)


def main() -> None:
    # click's usage errors exit with 2 already; anything unexpected must not
    # reach the user as a traceback.
    try:
        cli.main(prog_name="charter", standalone_mode=True)
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(130)


if __name__ == "__main__":
    main()
