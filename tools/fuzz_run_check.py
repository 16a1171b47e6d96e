"""100,000 hostile and well-formed events through `charter run --memory --check`.

The invariant monitor runs after every applied event; this prints how many events applied,
were rejected (by reason code) and which invariants were reported, and fails on a
traceback.  Uses the policy of tests/runtime/test_timed_when.py with the expiry bug (a
closed box keeps its money), so violations must be found.  With ``--ensures``: the policy
of tests/runtime/test_run_check_ensures.py with its bug (a job's paid total counted twice),
so the monitor's ``ensures`` clauses (``old(...)`` read before each event) must be reported
broken, never a traceback::

    python tools/fuzz_run_check.py [N] [--ensures]
"""

from __future__ import annotations

import json
import random
import sys
import tempfile
import time
from pathlib import Path

from click.testing import CliRunner

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "runtime"))

import test_run_check_ensures as ENS  # noqa: E402
from test_timed_when import BAD, POLICY  # noqa: E402

from charter.cli import cli  # noqa: E402

HOSTILE = [None, True, -1, 10**40, 1.5, "", "\ud800", [], {}, {"a": [1, {"b": None}]}, "9" * 5000]


def event(rng: random.Random, i: int, now: int) -> object:
    r = rng.random()
    if r < 0.05:
        return rng.choice(HOSTILE)
    ev = {"id": f"e{i}", "type": rng.choice(["make", "join", "fund", "@tick", "nope"]),
          "submitter": rng.choice(["ann", "bob", "clock", ""]), "time": now, "args": {}}
    if ev["type"] == "make":
        ev["args"] = {"id": f"b{rng.randrange(50)}", "amount": rng.randrange(-5, 1000),
                      "wait": rng.randrange(0, 7200)}
    elif ev["type"] == "fund":
        ev["args"] = {"amount": rng.randrange(-5, 1000)}
    if r < 0.15:
        key = rng.choice(list(ev))
        ev[key] = rng.choice(HOSTILE)
    return ev


def ensures_event(rng: random.Random, i: int, now: int) -> object:
    r = rng.random()
    if r < 0.05:
        return rng.choice(HOSTILE)
    ev = {"id": f"e{i}", "type": rng.choice(["open", "pay", "pay", "@tick", "nope"]),
          "submitter": rng.choice(["ann", "bob", "clock", ""]), "time": now, "args": {}}
    if ev["type"] == "open":
        ev["args"] = {"id": f"j{rng.randrange(30)}", "price": rng.randrange(-5, 5000)}
    elif ev["type"] == "pay":
        ev["args"] = {"id": f"j{rng.randrange(30)}", "amount": rng.randrange(-5, 3000)}
    if r < 0.15:
        key = rng.choice(list(ev))
        ev[key] = rng.choice(HOSTILE)
    if r < 0.2 and isinstance(ev.get("args"), dict):
        ev["args"][rng.choice(["id", "amount", "price", "x"])] = rng.choice(HOSTILE)
    return ev


def main() -> int:
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    ensures = "--ensures" in sys.argv
    n = int(args[0]) if args else 100_000
    rng = random.Random(14)
    gen = ensures_event if ensures else event
    with tempfile.TemporaryDirectory() as d:
        pol = Path(d) / "p.charter"
        pol.write_text(ENS.POLICY.replace("{pay}", ENS.BAD) if ensures
                       else POLICY.replace("{expiry}", BAD))
        ev = Path(d) / "e.jsonl"
        now = 0
        with ev.open("w") as f:
            for i in range(n):
                now += rng.randrange(0, 120)
                f.write(json.dumps(gen(rng, i, now)) + "\n")
        t0 = time.perf_counter()
        r = CliRunner().invoke(cli, ["run", str(pol), str(ev), "--memory", "--check", "--json"],
                               catch_exceptions=True)
        dt = time.perf_counter() - t0
    if r.exception is not None and not isinstance(r.exception, SystemExit):
        print(f"TRACEBACK: {r.exception!r}")
        return 1
    out = json.loads(r.output)
    print(f"events {n} in {dt:.1f}s: applied {out['applied']}, rejected {out['rejected']}, "
          f"skipped {out['skipped']}, events that fired timers {out['events_that_fired_timers']}, "
          f"timer failures {sum(t['count'] for t in out['timer_failures'])}, "
          f"ensures unchecked {out['ensures_unchecked']}")
    for reason in out["reasons"][:12]:
        print(f"  {reason['count']:7d}  {reason['code']}")
    props = {}
    for v in out["violations"]:
        props[v["property"]] = props.get(v["property"], 0) + 1
    print(f"violations reported (first event each): {props or 'none'}")
    return 0 if props else 1


if __name__ == "__main__":
    sys.exit(main())
