"""Hostile events through the PostgreSQL store: 100,000 by default, counts printed.

    python tools/fuzz_pg_store.py [--events 100000] [--seed S] [--only NAME ...]

Starts a throwaway PostgreSQL server (``tests/pg_server.py``) and runs the
event fuzzer of ``benchmarks/fuzz_events.py`` (well-formed events, the same
mutated with hostile values of every JSON type in every field, replays of
applied ids, time attacks) with the runtime on a PostgreSQL ledger (a fresh
schema per episode) and, event by event, the in-memory reference interpreter
beside it.  Checked for every event: no exception escapes ``submit``; a
rejection or a duplicate changes nothing; the outcome equals the reference's.
Per episode: the journals are byte-identical, audit and replay pass, and the
rows stored in PostgreSQL equal the runtime's live state.  The events are
split evenly over the stdlib policies.  Exits 1 on any failure.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any, Optional

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT / "tests"))

import fuzz_events as fe  # noqa: E402
from pg_server import PgServer, why_unavailable  # noqa: E402

from charter.runtime.api import open_runtime  # noqa: E402


class PgTarget(fe.Target):
    """A fuzz target whose runtime settles on PostgreSQL (the reference stays in memory)."""

    def __init__(self, tg: fe.Target, server: PgServer, counts: fe.Counts):
        super().__init__(tg.name, tg.policy, tg.params, tg.seeds)
        self.server = server
        self.counts = counts
        self.open: Optional[Any] = None

    def runtime(self, backend: str = "python") -> Any:
        if backend != "python":
            return super().runtime(backend)
        self.finish()
        self.open = open_runtime(
            self.policy, self.server.new_url("fz"), params=self.params or None
        )
        return self.open

    def finish(self) -> None:
        """Check the last episode's stored rows against its live state, then close it."""
        rt, self.open = self.open, None
        if rt is None:
            return
        try:
            if not rt.broken:
                rt.flush()
                if sorted(rt.store.rows()) != sorted(rt.state.rows()):
                    self.counts.mismatches += 1
                    self.counts.note("stored rows differ from the live state", None)
        finally:
            rt.store.close()


def main(argv: Optional[list[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--events", type=int, default=100_000, help="events in all")
    ap.add_argument("--seed", type=int, default=18)
    ap.add_argument("--episode", type=int, default=500)
    ap.add_argument("--only", nargs="*")
    a = ap.parse_args(argv)
    why = why_unavailable()
    if why:
        print(f"fuzz_pg_store: {why}")
        return 2
    targets = fe.targets(only=a.only)
    per = max(1, a.events // len(targets))
    results = []
    started = time.perf_counter()
    with PgServer() as server:
        for tg in targets:
            c = fe.Counts(tg.name)
            pt = PgTarget(tg, server, c)
            try:
                fe.fuzz(pt, per, a.seed, episode=a.episode, compare=True, counts=c)
            finally:
                pt.finish()
            results.append(c)
    fe.report(results)
    total = sum(c.events for c in results)
    print(f"{total} events through the PostgreSQL store in {time.perf_counter() - started:.0f} s")
    return 1 if any(c.failures for c in results) else 0


if __name__ == "__main__":
    sys.exit(main())
