"""Where runs execute: in this process, across cores, or on a Dask cluster.

Every executor runs the same tasks through :func:`charter.simulate.run.run_one`
and hands back results ordered by (sweep point, run), so the outputs are
identical whichever one ran them.
"""
from __future__ import annotations

import multiprocessing
import os
from typing import Any, Callable, Iterable, Optional

from .run import RunResult, Task, run_one
from .scenario import Scenario


class ExecutorError(Exception):
    """The executor named cannot be used (bad spec, cluster unreachable, extra missing)."""


def parse_executor(spec: Optional[str], jobs: Optional[int]) -> tuple[str, Any]:
    """``None``/"auto" (processes when there is more than one task and core), "serial",
    "processes", or "dask://host:port"."""
    spec = (spec or "auto").strip()
    if spec in ("auto", "serial", "processes"):
        return spec, jobs
    if spec.startswith(("dask://", "tcp://")):
        address = "tcp://" + spec.split("://", 1)[1]
        if not address[len("tcp://"):]:
            raise ExecutorError(f"{spec}: give the scheduler's host:port")
        return "dask", address
    raise ExecutorError(f"unknown executor {spec[:80]!r}: use serial, processes or "
                        "dask://HOST:PORT")


def _run(args: tuple) -> RunResult:
    scenario, task = args
    return run_one(scenario, task)


def execute(scenario: Scenario, tasks: list[Task], executor: Optional[str] = None,
            jobs: Optional[int] = None,
            progress: Optional[Callable[[RunResult], None]] = None) -> list[RunResult]:
    kind, arg = parse_executor(executor, jobs)
    cores = jobs or os.cpu_count() or 1
    if kind == "auto":
        kind = "processes" if len(tasks) > 1 and cores > 1 else "serial"
    results: list[RunResult] = []

    def done(r: RunResult) -> None:
        results.append(r)
        if progress is not None:
            progress(r)

    work = [(scenario, t) for t in tasks]
    if kind == "serial":
        for w in work:
            done(_run(w))
    elif kind == "processes":
        ctx = multiprocessing.get_context("fork" if "fork" in
                                          multiprocessing.get_all_start_methods() else "spawn")
        with ctx.Pool(min(cores, len(work)) or 1) as pool:
            for r in pool.imap_unordered(_run, work):
                done(r)
    else:
        for r in _dask(arg, work):
            done(r)
    results.sort(key=lambda r: (r.point, r.run))
    return results


def _dask(address: str, work: list) -> Iterable[RunResult]:
    try:
        from distributed import Client, as_completed
    except ImportError:
        raise ExecutorError("the Dask executor needs the `sim` extra "
                            "(pip install 'charter-policy[sim]')") from None
    try:
        client = Client(address, timeout="10s")
    except (OSError, TimeoutError) as err:
        raise ExecutorError(f"cannot reach the Dask scheduler at {address}: {err}") from None
    try:
        futures = client.map(_run, work, pure=False)
        for fut in as_completed(futures):
            yield fut.result()
    finally:
        client.close()
