"""One runtime process of the concurrency tests and the benchmark (run as a script).

    python pg_worker.py URL EVENTS_JSON START_AT [BATCH [POLICY]]

Opens the shared ledger ``URL`` (creating it with ``POLICY`` if given and
new, else its recorded policy; clock=system), waits
until the wall-clock time ``START_AT`` so that every process starts at once,
submits the events of the JSON file in order and prints one JSON line per
outcome: ``{"id", "applied", "duplicate", "tx", "hash", "code", "ms"}``
(``ms``: the submit's latency), and on stderr ``{"t_start", "t_end", ...}``.
Any exception is printed as a line
``{"error": ...}`` and exits 3: the tests count those as internal errors.
"""

from __future__ import annotations

import json
import sys
import time


def main() -> int:
    url, events_path, start_at = sys.argv[1], sys.argv[2], float(sys.argv[3])
    batch = int(sys.argv[4]) if len(sys.argv) > 4 else 1
    policy = sys.argv[5] if len(sys.argv) > 5 else None
    import charter

    with open(events_path, encoding="utf-8") as fh:
        events = json.load(fh)
    out = []
    try:
        rt = charter.open_runtime(policy, url, clock="system", batch=batch)
        time.sleep(max(0.0, start_at - time.time()))
        t_start = time.time()
        for ev in events:
            t = time.perf_counter()
            r = rt.submit(ev)
            ms = (time.perf_counter() - t) * 1000
            d = r.to_dict()
            out.append(
                {
                    "id": ev.get("id"),
                    "applied": r.applied,
                    "duplicate": bool(r.applied and r.duplicate),
                    "tx": d.get("tx"),
                    "hash": d.get("journal_hash"),
                    "code": d.get("code"),
                    "ms": round(ms, 3),
                }
            )
        rt.close()
        # when this process's submissions ran (wall clock), for the benchmark's events/s,
        # and how often it found other processes' commits to catch up with
        stats = getattr(rt.store, "stats", {})
        print(json.dumps({"t_start": t_start, "t_end": time.time(), **stats}), file=sys.stderr)
    except Exception as exc:  # noqa: BLE001 - reported to the test as an internal error
        for line in out:
            print(json.dumps(line))
        print(json.dumps({"error": f"{type(exc).__name__}: {exc}"}))
        return 3
    for line in out:
        print(json.dumps(line))
    return 0


if __name__ == "__main__":
    sys.exit(main())
