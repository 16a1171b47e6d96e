"""`charter check` and `charter compile`: run the front end, report diagnostics."""
from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Iterable

import click

from charter.compiler import ir
from charter.compiler.diagnostics import render_text
from charter.compiler.pipeline import Compilation


def policy_files(paths: Iterable[str]) -> list[Path]:
    """Expand files and directories (recursively, *.charter) in a stable order."""
    out: list[Path] = []
    for p in paths:
        path = Path(p)
        if path.is_dir():
            out.extend(sorted(path.rglob("*.charter")))
        else:
            out.append(path)
    return out


def parse_params(items: Iterable[str]) -> dict[str, object]:
    """`--param fee=5%` → {"fee": Fraction(1, 20)}: values are Charter literals."""
    from charter.compiler.typecheck import const_value  # noqa: F401

    out: dict[str, object] = {}
    for item in items:
        if "=" not in item:
            raise click.BadParameter(f"expected NAME=VALUE, got {item!r}", param_hint="--param")
        name, value = item.split("=", 1)
        out[name.strip()] = literal_value(value.strip())
    return out


def literal_value(text: str) -> object:
    """The value of a Charter literal given on the command line (no asset units)."""
    from fractions import Fraction

    t = text.replace("_", "")
    try:
        if t.endswith("%"):
            return Fraction(t[:-1]) / 100
        if t.endswith("bps"):
            return Fraction(t[:-3].strip()) / 10_000
        if t in ("true", "false"):
            return t == "true"
        if "/" in t or "." in t:
            return Fraction(t)
        return int(t)
    except (ValueError, ZeroDivisionError):
        raise click.BadParameter(f"not a number, percent or bool: {text!r}",
                                 param_hint="--param") from None


def register(cli: click.Group) -> None:
    @cli.command()
    @click.argument("paths", nargs=-1, required=True)
    @click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text",
                  help="Diagnostics as text (default) or JSON for tools.")
    @click.option("--param", "params", multiple=True, metavar="NAME=VALUE",
                  help="Override a parameter (within its declared range).")
    @click.option("--strict", is_flag=True, help="Treat warnings as errors.")
    def check(paths: tuple[str, ...], fmt: str, params: tuple[str, ...], strict: bool) -> None:
        """Check policies: syntax, names, types and economic rules."""
        overrides = parse_params(params)
        files = policy_files(paths)
        if not files:
            click.echo("charter: no .charter files found", err=True)
            sys.exit(2)
        all_diags = []
        exit_code = 0
        for f in files:
            c = Compilation.from_path(f, overrides)
            diags = c.diagnostics
            if c.read_error is not None:  # unreadable, not UTF-8 or too large: exit 2
                exit_code = max(exit_code, 2)
            elif any(d.severity == "error" for d in diags) or (strict and diags):
                exit_code = max(exit_code, 1)
            if fmt == "json":
                all_diags.extend(d.to_dict() for d in diags)
            elif diags:
                click.echo(render_text(diags, c.sources), err=False)
                click.echo("")
        if fmt == "json":
            click.echo(json.dumps(all_diags, indent=2))
        elif exit_code == 0:
            click.echo(f"ok: {len(files)} polic{'y' if len(files) == 1 else 'ies'} checked")
        sys.exit(exit_code)

    @cli.command(name="compile")
    @click.argument("path")
    @click.option("--emit", type=click.Choice(["ir"]), default="ir", help="What to print.")
    @click.option("--param", "params", multiple=True, metavar="NAME=VALUE")
    @click.option("-o", "--output", type=click.Path(dir_okay=False), default=None)
    def compile_cmd(path: str, emit: str, params: tuple[str, ...], output: str | None) -> None:
        """Compile a policy and print its IR as JSON."""
        c = Compilation.from_path(path, parse_params(params))
        if not c.ok:
            click.echo(render_text(c.diagnostics, c.sources), err=True)
            sys.exit(2 if c.read_error is not None else 1)
        text = ir.to_json(c.ir)
        if output:
            Path(output).write_text(text + "\n", encoding="utf-8")
        else:
            click.echo(text)
