"""`charter verify` and `charter diff`: the verifier's command line."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import click


def _load(path: str):
    """Compile ``path`` to IR; on errors print the diagnostics and exit 1."""
    from charter.compiler.diagnostics import CharterError, render_text

    try:
        from charter.compiler.pipeline import Compilation
    except ImportError:  # pragma: no cover - compiler not installed
        click.echo("error: the compiler pipeline is not available", err=True)
        sys.exit(2)
    try:
        comp = Compilation.from_path(path)
        return comp.ir
    except CharterError as exc:
        click.echo(render_text(exc.diagnostics, exc.sources), err=True)
        sys.exit(1)
    except OSError as exc:
        click.echo(f"error: cannot read {path}: {exc}", err=True)
        sys.exit(2)


@click.command("verify")
@click.argument("policy", type=click.Path(dir_okay=False))
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json", "sarif"]),
    default="text",
    show_default=True,
    help="Output format.",
)
@click.option(
    "--bound",
    type=click.IntRange(1, 8),
    default=3,
    show_default=True,
    help="Items per collection (role members, records, list items) in the symbolic model.",
)
@click.option(
    "--timeout-ms",
    type=click.IntRange(1, 600_000),
    default=5000,
    show_default=True,
    help="Z3 time limit per check; a check that runs out is reported as unknown.",
)
@click.option("--no-cache", is_flag=True, help="Ignore and do not write the result cache.")
@click.option(
    "--cache-dir",
    type=click.Path(file_okay=False),
    default=None,
    help="Cache directory (default $XDG_CACHE_HOME/charter/verify or .charter-cache/verify).",
)
@click.option(
    "--strict", is_flag=True, help="Also fail (exit 1) on guard-missing, vacuous and warning findings."
)
@click.option(
    "-v", "--verbose", is_flag=True, help="List every proved property, not only a summary."
)
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, writable=True),
    default=None,
    help="Write the report to a file instead of stdout.",
)
@click.option(
    "--param",
    "params",
    multiple=True,
    metavar="NAME=VALUE",
    help="Verify at this parameter value instead of its whole declared range "
    "(amounts in major units, ratios as 2% or 1/50).",
)
def verify_cmd(
    policy: str,
    fmt: str,
    bound: int,
    timeout_ms: int,
    no_cache: bool,
    cache_dir: Optional[str],
    strict: bool,
    verbose: bool,
    output: Optional[str],
    params: tuple[str, ...],
) -> None:
    """Prove POLICY's money safety and declared properties, or show counterexamples.

    Exit status: 0 nothing refuted, 1 a property is refuted (or the policy has
    errors), 2 usage or I/O errors.
    """
    from charter.compiler import verify as v

    if not Path(policy).is_file():
        raise click.BadParameter(f"{policy} is not a readable file", param_hint="POLICY")
    ir_policy = _load(policy)
    fixed = _fixed_params(ir_policy, params) if params else None
    opts = v.Options(
        bound=bound,
        timeout_ms=timeout_ms,
        cache_dir=Path(cache_dir) if cache_dir else None,
        fixed_params=fixed,
    )
    results = v.verify(ir_policy, opts, use_cache=not no_cache)
    if fmt == "json":
        text = v.render_json(ir_policy, results, opts)
    elif fmt == "sarif":
        text = v.render_sarif(ir_policy, results, opts)
    else:
        text = v.render_text(ir_policy, results, opts, verbose=verbose)
    if output:
        try:
            Path(output).write_text(text + "\n")
        except OSError as exc:
            click.echo(f"error: cannot write {output}: {exc}", err=True)
            sys.exit(2)
    else:
        click.echo(text)
    sys.exit(v.exit_code(results, strict=strict))


def _fixed_params(policy, items: tuple[str, ...]) -> dict:
    """``--param`` values, parsed and range-checked as ``charter run`` does."""
    from charter.cli_runtime import _param_overrides
    from charter.runtime.engine import ParamError, resolve_params

    raw = _param_overrides(policy, items)
    try:
        values = resolve_params(policy, raw)
    except ParamError as exc:
        raise click.BadParameter(str(exc), param_hint="--param") from None
    return {k: values[k] for k in raw}


@click.command("diff")
@click.argument("old", type=click.Path(dir_okay=False))
@click.argument("new", type=click.Path(dir_okay=False))
@click.option(
    "--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True
)
@click.option("--bound", type=click.IntRange(1, 8), default=3, show_default=True)
@click.option("--timeout-ms", type=click.IntRange(1, 600_000), default=5000, show_default=True)
def diff_cmd(old: str, new: str, fmt: str, bound: int, timeout_ms: int) -> None:
    """Do OLD and NEW settle identically?  Compares every handler in both, for every input.

    Exit status: 0 equivalent, 1 a handler differs (or a policy has errors), 2 usage errors.
    """
    from charter.compiler import diff as d

    for p in (old, new):
        if not Path(p).is_file():
            raise click.BadParameter(f"{p} is not a readable file")
    a, b = _load(old), _load(new)
    report = d.diff(a, b, bound=bound, timeout_ms=timeout_ms)
    click.echo(d.render_json(report) if fmt == "json" else d.render_text(report))
    sys.exit(
        1
        if any(h.status != "equivalent" for h in report.handlers)
        or report.only_old
        or report.only_new
        or report.params
        else 0
    )


def register(cli: click.Group) -> None:
    cli.add_command(verify_cmd)
    cli.add_command(diff_cmd)
