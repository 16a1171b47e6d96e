"""`charter fmt`: rewrite policies in the canonical layout, or check/diff it for CI.

Exit codes: 0 all files formatted (or, with ``--check``, already canonical);
1 a policy does not parse, or ``--check`` found files that would change;
2 a file cannot be read or is not usable as text (unreadable, not UTF-8, too large).
"""
from __future__ import annotations

import difflib
import sys
from pathlib import Path

import click

from charter.cli_compile import policy_files
from charter.compiler.diagnostics import render_text
from charter.compiler.fmt import FormatterBug, format_verified
from charter.compiler.parse import ParseFailure
from charter.compiler.source import SourceError, decode_source, read_source_file


def register(cli: click.Group) -> None:
    @cli.command()
    @click.argument("paths", nargs=-1, required=True)
    @click.option("--check", is_flag=True,
                  help="Change nothing; list files that are not formatted and exit 1 if any.")
    @click.option("--diff", "show_diff", is_flag=True,
                  help="Change nothing; print a unified diff of what formatting would change.")
    def fmt(paths: tuple[str, ...], check: bool, show_diff: bool) -> None:
        """Format policies (files, or directories searched for *.charter; `-` formats
        standard input to standard output, for editors)."""
        if paths == ("-",):
            sys.exit(_stdin(check))
        files = policy_files(paths)
        if not files:
            click.echo("charter: no .charter files found", err=True)
            sys.exit(2)
        exit_code = 0
        changed: list[str] = []
        for path in files:
            name = str(path)
            try:
                text = read_source_file(path)
            except SourceError as err:
                # unreadable, not UTF-8 or too large: an input problem, not a policy error
                click.echo(render_text([err.diagnostic], {}), err=True)
                exit_code = 2
                continue
            try:
                out = format_verified(text, name)
            except ParseFailure as err:
                click.echo(render_text([err.diagnostic], {name: text}), err=True)
                exit_code = max(exit_code, 1)
                continue
            except FormatterBug as err:
                click.echo(f"charter fmt: internal error, {err}; the file was left unchanged",
                           err=True)
                exit_code = max(exit_code, 1)
                continue
            if out == text:
                continue
            changed.append(name)
            if show_diff:
                for line in difflib.unified_diff(
                        text.splitlines(keepends=True), out.splitlines(keepends=True),
                        fromfile=f"{name} (original)", tofile=f"{name} (formatted)"):
                    if not line.endswith("\n"):
                        line += "\n\\ No newline at end of file\n"
                    click.echo(line, nl=False)
            if not check and not show_diff:
                try:
                    Path(path).write_text(out, encoding="utf-8", newline="\n")
                except OSError as err:
                    click.echo(f"charter: cannot write {name}: {err.strerror or err}", err=True)
                    exit_code = 2
                    continue
                click.echo(f"formatted {name}")
        if check:
            for name in changed:
                click.echo(f"would reformat {name}")
            if changed:
                exit_code = max(exit_code, 1)
        if not changed and exit_code == 0:
            n = len(files)
            click.echo(f"ok: {n} file{'s' if n != 1 else ''} already formatted")
        sys.exit(exit_code)


def _stdin(check: bool) -> int:
    name = "<stdin>"
    try:
        text = decode_source(sys.stdin.buffer.read(), name)
    except SourceError as err:
        click.echo(render_text([err.diagnostic], {}), err=True)
        return 2
    try:
        out = format_verified(text, name)
    except ParseFailure as err:
        click.echo(render_text([err.diagnostic], {name: text}), err=True)
        return 1
    except FormatterBug as err:
        click.echo(f"charter fmt: internal error, {err}", err=True)
        return 1
    if check:
        return 0 if out == text else 1
    click.echo(out, nl=False)
    return 0
