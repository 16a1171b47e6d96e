"""`charter verify` and `charter diff`: the verifier's command line."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import click

from charter.cli import finish

# --jobs above this is a typo, not a machine (each worker is a process holding Z3's state)
MAX_JOBS = 256
# the kind of a result whose worker process died (charter.compiler.verify.pipeline.WORKER)
WORKER = "worker"


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
@click.argument("paths", nargs=-1, required=True)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json", "sarif"]),
    default="text",
    show_default=True,
    help="Output format (several policies: JSON gives one report each and a total; SARIF "
    "one run with every policy's results).",
)
@click.option(
    "--bound",
    type=click.IntRange(1, 8),
    default=3,
    show_default=True,
    help="Items per collection (role members, records, list items) in the symbolic model.",
)
@click.option(
    "--rlimit",
    type=click.IntRange(1, 10**12),
    default=None,
    help="Z3 resource limit per query (default "
    f"{20_000_000:,}): it decides every verdict, so a policy gets the same result on any "
    "machine and under any load; a check that reaches it is reported as unknown.",
)
@click.option(
    "--timeout-ms",
    type=click.IntRange(1, 3_600_000),
    default=None,
    help="Wall-clock safety net per query (default 300000).  Only for a runaway Z3: a check "
    "it stops is unknown and reported as machine-dependent, and is not cached.",
)
@click.option("--no-cache", is_flag=True, help="Ignore and do not write the result cache.")
@click.option(
    "--cache-dir",
    type=click.Path(file_okay=False),
    default=None,
    help="Cache directory (default: the user's cache directory, e.g. "
    "~/.cache/charter/verify or $XDG_CACHE_HOME/charter/verify; $CHARTER_CACHE_DIR "
    "overrides it).",
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
    "(amounts in major units, ratios as 2% or 1/50); every policy given must declare it.",
)
@click.option(
    "-j",
    "--jobs",
    type=click.IntRange(1, MAX_JOBS),
    default=None,
    help="Worker processes checking at once (default: the CPUs this process may use).  "
    "The results are identical for every number: each piece of work starts from the same "
    "state whatever ran before or beside it.",
)
def verify_cmd(
    paths: tuple[str, ...],
    fmt: str,
    bound: int,
    rlimit: Optional[int],
    timeout_ms: Optional[int],
    no_cache: bool,
    cache_dir: Optional[str],
    strict: bool,
    verbose: bool,
    output: Optional[str],
    params: tuple[str, ...],
    jobs: Optional[int],
) -> None:
    """Prove the money safety and declared properties of each policy in PATHS (files, or
    directories searched for *.charter), or show counterexamples.

    Exit status: 0 nothing refuted, 1 a property is refuted (or a policy has
    errors, or a worker process died), 2 usage or I/O errors.
    """
    from charter.cli_compile import policy_files
    from charter.compiler import verify as v
    from charter.compiler.verify.parallel import usable_cpus
    from charter.compiler.verify.pipeline import verify_many
    from charter.memory import keep_freed_blocks

    if jobs is None:
        jobs = usable_cpus()

    keep_freed_blocks()  # Z3 contexts' 8 MB blocks reused, not page-faulted in again
    files = policy_files(paths)
    if not files:
        click.echo("charter: no .charter files found", err=True)
        sys.exit(2)
    for f in files:
        if not f.is_file():
            raise click.BadParameter(f"{f} is not a readable file", param_hint="PATHS")
    base = v.Options()
    items = []
    status = 0
    for f in files:
        ir_policy, code = _compile(str(f))
        status = max(status, code)
        if ir_policy is None:
            continue
        fixed = _fixed_params(ir_policy, params) if params else None
        opts = v.Options(
            bound=bound,
            rlimit=rlimit if rlimit is not None else base.rlimit,
            timeout_ms=timeout_ms if timeout_ms is not None else base.timeout_ms,
            cache_dir=Path(cache_dir) if cache_dir else None,
            fixed_params=fixed,
        )
        items.append((ir_policy, opts))
    # several policies: one worker process each (and their units), `jobs` at a time in all
    runs = list(zip((p for p, _ in items), verify_many(items, not no_cache, jobs)))
    for _, results in runs:
        status = max(status, v.exit_code(results, strict=strict))
        if any(r.kind == WORKER for r in results):  # not verified: never a silent success
            status = max(status, 1)
    opts = v.Options(
        bound=bound,
        rlimit=rlimit if rlimit is not None else base.rlimit,
        timeout_ms=timeout_ms if timeout_ms is not None else base.timeout_ms,
    )
    single = len(paths) == 1 and len(files) == 1 and not Path(paths[0]).is_dir()
    if fmt == "json":
        text = (
            v.render_json(runs[0][0], runs[0][1], opts)
            if single and runs
            else v.render_json_many(runs, opts)
        )
    elif fmt == "sarif":
        text = v.render_sarif_many(runs, opts)
    else:
        text = "\n\n".join(v.render_text(p, rs, opts, verbose=verbose) for p, rs in runs)
        if len(files) > 1:
            total = {k: sum(v.summary(rs)[k] for _, rs in runs) for k in v.summary([])}
            text += (
                f"\n\n{len(runs)} of {len(files)} policies verified: {total[v.PROVED]} proved, "
                f"{total[v.REFUTED]} refuted, {total[v.GUARD]} guard missing, "
                f"{total[v.UNKNOWN]} unknown, {total[v.VACUOUS]} vacuous"
            )
    if output:
        try:
            Path(output).write_text(text + "\n")
        except OSError as exc:
            click.echo(f"error: cannot write {output}: {exc}", err=True)
            sys.exit(2)
    elif text:
        click.echo(text)
    finish(status)


def _compile(path: str):
    """(IR, 0) for a policy that compiles; else (None, exit code) after printing why."""
    from charter.compiler.diagnostics import CharterError, render_text
    from charter.compiler.pipeline import Compilation

    comp = Compilation.from_path(path)
    try:
        return comp.ir, 0
    except CharterError as exc:
        click.echo(render_text(exc.diagnostics, exc.sources), err=True)
        return None, 2 if comp.read_error is not None else 1


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
