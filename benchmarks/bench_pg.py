"""PostgreSQL ledger under load: 4 runtime processes against 1, SQLite's single writer as reference.

    python benchmarks/bench_pg.py [EVENTS] [--procs 4] [--batch 1]

Starts a throwaway PostgreSQL server (``initdb``/``pg_ctl`` as the
``postgres`` user, localhost only, **fsync on**: commits are durable), then
settles the same stream of EVENTS (default 2,000) of ``tests/store/shared.charter``
(joins, new records, and bumps of one shared record that every process
writes) three ways, each in separate runtime processes
(``tests/store/pg_worker.py``, clock=system):

* SQLite, one writer process (synchronous=FULL) -- the reference;
* PostgreSQL, one runtime process;
* PostgreSQL, ``--procs`` runtime processes sharing the ledger, each event
  submitted by one of them.

For each it prints events/s (wall clock, first submit to last), p50/p99
submit latency (with ``--batch 1`` every submit is a durable commit), and
the share of events that found another process's commits to catch up
with first (each of those would have been a conflict and a retry for an
optimistic writer: the reason the store locks instead), and checks the
ledger: every event in the journal exactly once (``lost`` /
``doubled`` must be 0), the shared record's counter equal to the bumps
submitted, ``audit`` and ``replay`` clean.  Bounded: EVENTS is capped at
20,000 and each run at 10 minutes.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TESTS = ROOT / "tests"
sys.path.insert(0, str(TESTS))
POLICY = TESTS / "store" / "shared.charter"
WORKER = TESTS / "store" / "pg_worker.py"

from pg_server import PgServer, why_unavailable  # noqa: E402


def stream(n: int) -> list[dict]:
    setup = {"id": "setup", "type": "note", "submitter": "admin", "args": {"key": "shared"}}
    evs = [setup]
    for j in range(n - 1):
        if j % 3 == 0:
            evs.append({"id": f"e{j}", "type": "join", "submitter": f"p{j}", "args": {}})
        elif j % 3 == 1:
            evs.append({"id": f"e{j}", "type": "note", "submitter": f"q{j % 7}",
                        "args": {"key": f"k{j}"}})  # fmt: skip
        else:
            evs.append({"id": f"e{j}", "type": "bump", "submitter": f"q{j % 5}",
                        "args": {"key": "shared"}})  # fmt: skip
    return evs


def run(url: str, events: list[dict], procs: int, batch: int, tmp: Path) -> dict:
    import charter

    # the ledger is made (and the setup record applied) before the clock starts
    with charter.open_runtime(str(POLICY), url, clock="system") as rt:
        assert rt.submit(events[0]).applied
    rest = events[1:]
    shares = [rest[i::procs] for i in range(procs)]
    start_at = time.time() + 2 + procs * 0.5  # all started, connected and loaded by then
    ps = []
    for i, share in enumerate(shares):
        f = tmp / f"share{i}.json"
        f.write_text(json.dumps(share))
        ps.append(subprocess.Popen(
            [sys.executable, str(WORKER), url, str(f), str(start_at), str(batch)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        ))  # fmt: skip
    outcomes, spans, errors = [], [], 0
    for p in ps:
        out, err = p.communicate(timeout=600)
        lines = [json.loads(x) for x in out.splitlines() if x.strip()]
        errors += sum("error" in o for o in lines) + (p.returncode != 0)
        outcomes += [o for o in lines if "error" not in o]
        for x in err.splitlines():
            if x.startswith('{"t_start"'):
                spans.append(json.loads(x))
        if p.returncode != 0:
            print(err[-2000:], file=sys.stderr)
    wall = max(s["t_end"] for s in spans) - min(s["t_start"] for s in spans) if spans else 0
    lat = sorted(o["ms"] for o in outcomes)
    with charter.open_runtime(None, url, readonly=True) as rt:
        ids = [r.event_id for r in rt.store.journal()]
        submitted = {e["id"] for e in events}
        lost = len(submitted - set(ids))
        doubled = len(ids) - len(set(ids))
        bumps = sum(e["type"] == "bump" for e in events)
        counter_ok = rt.records("Note")["shared"]["n"] == bumps
        audit_ok = rt.audit().ok
        replay_ok = charter.replay(rt).ok
    syncs = sum(s.get("syncs", 0) for s in spans)
    catchups = sum(s.get("catchups", 0) for s in spans)
    return {
        "catchup_pct": 100.0 * catchups / syncs if syncs else 0.0,
        "replayed": sum(s.get("replayed", 0) for s in spans),
        "events": len(rest),
        "events_per_s": len(rest) / wall if wall else 0.0,
        "p50_ms": statistics.median(lat) if lat else 0.0,
        "p99_ms": lat[min(len(lat) - 1, int(len(lat) * 0.99))] if lat else 0.0,
        "rejected": sum(not o["applied"] for o in outcomes),
        "internal_errors": errors,
        "lost": lost,
        "doubled": doubled,
        "no_lost_update": counter_ok,
        "audit_ok": audit_ok,
        "replay_ok": replay_ok,
    }


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("events", nargs="?", type=int, default=2000)
    ap.add_argument("--procs", type=int, default=4)
    ap.add_argument("--batch", type=int, default=1)
    a = ap.parse_args()
    n = max(10, min(a.events, 20_000))
    why = why_unavailable()
    if why:
        print(f"bench_pg: {why}")
        return 2
    events = stream(n)
    rows = []
    with tempfile.TemporaryDirectory() as d, PgServer(fsync=True) as server:
        tmp = Path(d)
        rows.append(("SQLite, 1 writer (reference)",
                     run(f"sqlite:///{tmp / 'ref.sqlite'}", events, 1, a.batch, tmp)))
        rows.append(("PostgreSQL, 1 process", run(server.new_url("b"), events, 1, a.batch, tmp)))
        rows.append((f"PostgreSQL, {a.procs} processes",
                     run(server.new_url("b"), events, a.procs, a.batch, tmp)))
    print(f"{n - 1} events of {POLICY.name}, batch={a.batch}, clock=system, "
          "PostgreSQL 15 on localhost with fsync on")
    head = f"{'store':34} {'events/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'lost':>5} {'doubled':>8} "
    print(head + "errors  counter audit replay  caught-up")
    ok = True
    for name, r in rows:
        print(f"{name:34} {r['events_per_s']:9.0f} {r['p50_ms']:8.2f} {r['p99_ms']:8.2f} "
              f"{r['lost']:5d} {r['doubled']:8d} {r['internal_errors']:6d}  "
              f"{'ok' if r['no_lost_update'] else 'LOST':7} {'ok' if r['audit_ok'] else 'FAIL':5} "
              f"{'ok' if r['replay_ok'] else 'FAIL':6} "
              + (f"{r['catchup_pct']:5.1f}% ({r['replayed']} replayed)" if r["replayed"] else "-"))
        ok &= not (r["lost"] or r["doubled"] or r["internal_errors"] or r["rejected"])
        ok &= r["no_lost_update"] and r["audit_ok"] and r["replay_ok"]
    print("all events applied exactly once, audits clean" if ok else "PROBLEMS above")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
