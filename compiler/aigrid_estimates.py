"""The PolicyRule's ``resource_estimates``: what one rule instance needs, measured.

AIGrid's registry requires ``resource_estimates`` and its allocator places
rules by them.  :func:`measure` settles a stream of events the way the rule's
``eval`` does (a SQLite ledger, one durable commit per event) and reports
time per event, start-up time, memory and ledger growth.  Without events,
:data:`RECORDED` gives the figures ``benchmarks/bench_aigrid.py --estimates``
measured for the stdlib gig market, marked as such in ``basis``.
"""
from __future__ import annotations

import gc
import os
import platform
import statistics
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any, Iterable

from . import ir

# benchmarks/bench_aigrid.py --estimates (gig market, 2,000 events, SQLite FULL, a 2-core
# x86_64 VM shared with other jobs (load ~20), Python 3.11), 2026-12-07
RECORDED: dict[str, Any] = {
    "cpu_cores": 1,
    "gpu_count": 0,
    "memory_mb": 52,
    "disk_mb": 1,
    "ms_per_event": {"p50": 1.9, "p95": 12.0},
    "startup_ms": 174,
    "ledger_bytes_per_event": 619,
    "basis": {
        "method": "recorded",
        "source": "benchmarks/bench_aigrid.py --estimates (stdlib gig market, 2,000 events)",
        "note": "export with --measure EVENTS.jsonl to measure this policy on its own events",
    },
}


def _rss_mb() -> float:
    """This process's resident memory (Linux /proc; 0 elsewhere)."""
    try:
        with open("/proc/self/statm") as fh:
            pages = int(fh.read().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError, IndexError):
        return 0.0


def _round(x: float, digits: int = 2) -> float:
    return float(f"{x:.{digits}g}") if x < 10 else float(round(x))


def measure(policy: ir.Policy, events: Iterable[dict], *, params: dict | None = None,
            source: str = "") -> dict[str, Any]:
    """Settle ``events`` on a fresh SQLite ledger as ``eval`` does, and return the estimates."""
    from charter.runtime.api import open_runtime

    evs = list(events)
    if not evs:
        raise ValueError("no events to measure with")
    with tempfile.TemporaryDirectory(prefix="charter-estimate-") as tmp:
        path = Path(tmp) / "ledger.sqlite"
        rss0 = _rss_mb()
        t0 = time.perf_counter()
        rt = open_runtime(policy, str(path), params=params or {})
        startup = time.perf_counter() - t0
        times = []
        applied = 0
        try:
            for e in evs:
                t = time.perf_counter()
                out = rt.submit(e)
                rt.flush()
                times.append(time.perf_counter() - t)
                applied += bool(out.applied)
        finally:
            rt.close()
        size = sum(p.stat().st_size for p in Path(tmp).iterdir() if p.is_file())
        rss1 = _rss_mb()
    # the state's own memory: one more pass in memory under tracemalloc (not timed)
    gc.collect()
    tracemalloc.start()
    try:
        mem = open_runtime(policy, ":memory:", params=params or {})
        for e in evs:
            mem.submit(e)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    times.sort()
    p95 = times[min(len(times) - 1, int(len(times) * 0.95))]
    per_event = size / max(applied, 1)
    return {
        "cpu_cores": 1,  # a rule settles one event at a time
        "gpu_count": 0,
        "memory_mb": int(max(rss1, rss0) + peak / 2**20) + 1,
        "disk_mb": int(size / 2**20) + 1,
        "ms_per_event": {"p50": _round(statistics.median(times) * 1000),
                         "p95": _round(p95 * 1000)},
        "startup_ms": int(startup * 1000) + 1,
        "ledger_bytes_per_event": int(per_event),
        "basis": {
            "method": "measured",
            "source": source or "events given to charter export aigrid --measure",
            "events": len(evs),
            "applied": applied,
            "machine": f"{platform.machine()}, {os.cpu_count()} cores, "
                       f"Python {platform.python_version()}",
        },
    }
