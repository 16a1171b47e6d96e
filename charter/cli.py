"""The `charter` command line.

Commands live in per-area modules (``cli_compile``, ``cli_fmt``,
``cli_runtime``, ``cli_verify``, ``cli_export``), each exposing
``register(group)``; this module only assembles them, so each area can
grow without touching the others.
"""
from __future__ import annotations

import importlib
import os
import sys

import click

from charter import __version__

_AREAS = ("cli_compile", "cli_fmt", "cli_runtime", "cli_verify", "cli_export", "cli_lsp",
          "cli_serve", "cli_mcp", "cli_simulate")


# which area defines a command: only that area is imported to run it (`charter run` never
# loads the verifier's Z3, `charter --version` loads nothing).  A hint only: a name not here,
# or not found where it says, makes every area load (what `--help` does anyway).
_AREA_OF = {
    "check": "cli_compile", "compile": "cli_compile", "fmt": "cli_fmt",
    "audit": "cli_runtime", "ledger": "cli_runtime", "replay": "cli_runtime",
    "run": "cli_runtime", "test": "cli_runtime", "diff": "cli_verify", "verify": "cli_verify",
    "export": "cli_export", "lsp": "cli_lsp", "keys": "cli_serve", "serve": "cli_serve",
    "mcp": "cli_mcp", "simulate": "cli_simulate",
}  # fmt: skip


class _LazyGroup(click.Group):
    """A group whose commands are registered by their area module when first needed."""

    _loaded: set[str]

    def _load(self, area: str) -> None:
        if area in self._loaded:
            return
        self._loaded.add(area)
        try:
            mod = importlib.import_module(f"charter.{area}")
        except ModuleNotFoundError as exc:  # an area not built yet
            if exc.name != f"charter.{area}":
                raise
            return
        mod.register(self)

    def _load_all(self) -> None:
        for area in _AREAS:
            self._load(area)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        area = _AREA_OF.get(name)
        if area is not None:
            self._load(area)
        if name not in self.commands:
            self._load_all()
        return super().get_command(ctx, name)

    def list_commands(self, ctx: click.Context) -> list[str]:
        self._load_all()
        return super().list_commands(ctx)


@click.group(cls=_LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="charter")
def cli() -> None:
    """Charter: write the rules of an economy, prove them, settle them."""


cli._loaded = set()

_program = False  # True once main() runs: this process is the `charter` program


def finish(status: int) -> None:
    """End a command that has written and flushed everything it makes.  As the ``charter``
    program itself (the console script, or ``python -m charter.cli``), skip the
    interpreter's teardown: it frees every object one by one (Z3's terms after a verify,
    the live state after a long ``run``: ~0.2 s CPU after 435,000 events) and there is
    nothing left to save.  Called any other way (a test's CliRunner, a program calling the
    click command), it exits the ordinary way."""
    if (_program or os.path.basename(sys.argv[0]) == "charter") and (
        sys.stdout is sys.__stdout__
    ):
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(status)
    sys.exit(status)


def main() -> None:
    # click's usage errors exit with 2 already; anything unexpected must not
    # reach the user as a traceback.
    # set where finish() reads it: with `python -m charter.cli` this file runs as __main__,
    # a module apart from the charter.cli the commands import
    import charter.cli

    charter.cli._program = True
    try:
        cli.main(prog_name="charter", standalone_mode=True)
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(130)


if __name__ == "__main__":
    main()
