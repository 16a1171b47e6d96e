"""Ledger commands at scale: time and peak memory of each command, bytes per event.

    PYTHONPATH=. python benchmarks/bench_scale.py [SIZES ...]    (default: 10000 100000)

For each size, builds a gig-market ledger (examples/gig_market/generate.py) with
``charter run --batch 1000`` and runs ``ledger balances``, ``ledger history --limit
10``, ``audit`` and ``replay`` on it, each in its own process; prints CPU+wall time
and peak RSS of every command (``os.wait4``: the child's own rusage) and the file's
bytes per applied event; then start-up (``charter --version`` against ``python -c
pass``).  Pass 1000000 for the 1M point (takes a while).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GIG = ROOT / "examples" / "gig_market"
sys.path.insert(0, str(GIG))

from generate import gig_events  # noqa: E402

CHARTER = [sys.executable, "-m", "charter.cli"]


def measure(args: list[str], cwd: Path) -> tuple[float, float, float, str]:
    """(wall s, cpu s, peak RSS MB, stdout) of one child process."""
    t0 = time.perf_counter()
    p = subprocess.Popen(args, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    out = p.stdout.read().decode("utf-8", "replace")
    _, status, ru = os.wait4(p.pid, 0)
    p.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - t0
    return wall, ru.ru_utime + ru.ru_stime, ru.ru_maxrss / 1024, out


def main() -> None:
    sizes = [int(a) for a in sys.argv[1:]] or [10_000, 100_000]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        for n in sizes:
            events = d / f"gig{n}.jsonl"
            with open(events, "w") as fh:
                for e in gig_events(n, seed=7):
                    fh.write(json.dumps(e) + "\n")
            db = d / f"gig{n}.sqlite"
            res = {"events": n}
            res["run"] = measure([*CHARTER, "run", str(GIG / "policy.charter"), str(events),
                                  "--db", str(db), "--batch", "1000", "-q", "--json"], d)
            applied = json.loads(res["run"][3])["applied"]
            res["bytes/event"] = db.stat().st_size / applied
            for name, cmd in (("balances", ["ledger", "balances", str(db)]),
                              ("history --limit 10", ["ledger", "history", str(db), "--limit", "10"]),
                              ("audit", ["audit", str(db)]),
                              ("replay", ["replay", str(db)])):
                res[name] = measure([*CHARTER, *cmd], d)
            rows.append(res)
            print(f"\n{n} events ({applied} applied): {res['bytes/event']:.0f} bytes/event")
            print(f"  {'command':<22}{'wall s':>9}{'cpu s':>9}{'peak MB':>9}")
            for k, v in res.items():
                if isinstance(v, tuple):
                    print(f"  {k:<22}{v[0]:>9.2f}{v[1]:>9.2f}{v[2]:>9.0f}")
            sys.stdout.flush()
        v = measure([*CHARTER, "--version"], d)
        p = measure([sys.executable, "-c", "pass"], d)
        print(f"\nstart-up: charter --version {v[1]:.3f} s CPU, python -c pass {p[1]:.3f} s CPU")


if __name__ == "__main__":
    main()
