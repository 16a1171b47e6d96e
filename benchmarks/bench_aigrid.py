"""Benchmark: the AIGrid adapter's ``eval`` against the runtime ``charter run`` uses.

Exports the stdlib gig market with ``charter export aigrid``, loads the
bundle's ``code/function.py`` the way AIGrid does, and settles the same
generated event stream three ways in one run, in memory and on SQLite (one
commit per event, as ``eval`` does):

* ``runtime``: ``charter.open_runtime(...).submit(event)`` per event, the
  engine under ``charter run``;
* ``eval``: ``AIOSv1PolicyRule.eval(parameters, event, {})`` per event;
* ``charter run``: the command itself, timed in process as a whole
  (compiling the policy, reading the JSON Lines file, settling, reporting).

The runtime and eval paths are timed from the first event to the last
(start-up, i.e. compiling the bundle and opening the ledger, excluded).

Prints events/s and the adapter's cost relative to the runtime (goal: under
20 %), and checks that all three end with the same journal hash.

Then the per-event cost in each way AIGrid's executors run a rule (SQLite,
one durable commit per event, ledger under $CHARTER_DATA_DIR):

* ``long-lived``: the Type 4 container: one instance, ``eval`` per event;
* ``new instance per call``: the local SDK: every call unpacks the bundle,
  imports ``function.py`` and builds a new instance in the same process;
* ``new process per call``: the executor service: a fresh Python process per
  event (import Charter, unpack, build, ``eval``), without and with the
  ``pip install -r code/requirements.txt`` AIGrid runs first (already
  satisfied here: its cost is pip's own start-up and resolution).

``--estimates`` prints the resource_estimates ``--measure`` would record for
the gig market (the figures in compiler/aigrid_estimates.py RECORDED).

    python benchmarks/bench_aigrid.py [--events N] [--sqlite-events M] [--repeat R]
                                      [--mode-events K] [--estimates]
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import random
import sys
import tempfile
import time
import zipfile
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from a checkout without installing

import charter  # noqa: E402
from charter.compiler.export_aigrid import export  # noqa: E402

POLICY = ROOT / "stdlib_policies" / "gig_market.charter"


def gig_events(n: int, seed: int = 1) -> list[dict]:
    """A gig-market stream: joins and deposits, then posts, bids, awards,
    assignments, milestones, completions and cancellations by (mostly) the
    right parties, with time passing over epochs and deadlines."""
    rng = random.Random(seed)
    agents = [f"agent{i}" for i in range(50)]
    events: list[dict] = []
    t = 1_000_000
    tasks: list[str] = []
    poster: dict[str, str] = {}
    budget: dict[str, int] = {}

    def add(etype: str, sub: str, args: dict) -> None:
        events.append({"id": f"e{len(events) + 1}", "type": etype, "submitter": sub,
                       "time": t, "args": args})

    for a in agents:
        add("join", a, {})
        add("deposit", "gateway", {"account": a, "amount": 10_000_000})
    while len(events) < n:
        t += rng.choice([1, 60, 600, 3600])
        a = rng.choice(agents)
        r = rng.random()
        tid = rng.choice(tasks[-20:]) if tasks else ""
        owner = poster.get(tid, a)
        if r < 0.25 or not tasks:
            tid = f"t{len(events)}"
            tasks.append(tid)
            poster[tid] = a
            budget[tid] = rng.randint(100, 5000)
            payout = rng.choice(["fixed", "quality", "milestone"])
            add("post", a, {"id": tid, "budget": budget[tid], "skill": "s", "payout": payout,
                            "milestones": 3 if payout == "milestone" else 1,
                            "duration": 20 * 86400})
        elif r < 0.5:
            add("bid", a, {"id": tid, "price": rng.randint(50, budget[tid])})
        elif r < 0.6:
            add("award", owner, {"id": tid})
        elif r < 0.7:
            add("assign", owner, {"id": tid, "worker": a, "price": rng.randint(1, budget[tid])})
        elif r < 0.78:
            add("milestone", owner, {"id": tid})
        elif r < 0.95:
            add("complete", owner, {"id": tid, "quality": rng.randint(1, 5)})
        else:
            add("cancel", owner, {"id": tid})
    return events[:n]


def load_rule(bundle_zip: Path, into: Path) -> Any:
    with zipfile.ZipFile(bundle_zip) as zf:
        zf.extractall(into)
    path = into / "code" / "function.py"
    spec = importlib.util.spec_from_file_location("aigrid_bench_rule", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.AIOSv1PolicyRule


def timed(fns: list[Callable[[], tuple[float, str]]], repeat: int) -> list[tuple[float, str]]:
    """Best settling time of each path (each returns (seconds, journal hash));
    the runs are interleaved so that load from other processes on the
    machine hits every path alike."""
    best = [float("inf")] * len(fns)
    heads = [""] * len(fns)
    for _ in range(repeat):
        for i, fn in enumerate(fns):
            secs, heads[i] = fn()
            best[i] = min(best[i], secs)
    return list(zip(best, heads))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--events", type=int, default=20_000)
    ap.add_argument("--sqlite-events", type=int, default=1_000,
                    help="events for the SQLite runs (each commit is an fsync)")
    ap.add_argument("--repeat", type=int, default=5, help="best of R runs")
    ap.add_argument("--mode-events", type=int, default=200,
                    help="events for the executor-mode comparison (process per call: 1/10)")
    ap.add_argument("--estimates", action="store_true")
    args = ap.parse_args()
    if args.estimates:
        from charter.compiler.aigrid_estimates import measure

        print(json.dumps(measure(charter.load_policy(POLICY), gig_events(2000),
                                 source="gig market, 2,000 events"), indent=2))
        return
    all_events = gig_events(max(args.events, args.sqlite_events))
    policy = charter.load_policy(POLICY)
    work = Path(tempfile.mkdtemp(prefix="bench_aigrid_"))
    exported = export(POLICY, work / "out")
    Rule = load_rule(exported.zip_path, work / "bundle")
    counter = iter(range(10**6))

    def db() -> str:
        return str(work / f"ledger{next(counter)}.sqlite")

    events: list[dict] = []
    events_file = work / "events.jsonl"

    def copies() -> list[dict]:
        return [dict(e, args=dict(e["args"])) for e in events]

    # Start-up (compiling, opening the ledger) is outside the timed part of
    # the runtime and eval paths: what is compared is the cost per event.
    def clock(store: str) -> Callable[[], float]:
        # In memory the work is all CPU: this process's CPU time is robust to
        # other processes on the machine.  On SQLite the fsync waits are the
        # cost, so wall time it is.
        return time.process_time if store == ":memory:" else time.perf_counter

    def via_runtime(store: str) -> Callable[[], tuple[float, str]]:
        def run() -> tuple[float, str]:
            evs = copies()
            rt = charter.open_runtime(policy, store if store == ":memory:" else db())
            now = clock(store)
            t0 = now()
            for e in evs:
                rt.submit(e)
            rt.flush()
            secs = now() - t0
            head = rt.journal_hash
            rt.close()
            return secs, head
        return run

    def via_eval(store: str) -> Callable[[], tuple[float, str]]:
        def run() -> tuple[float, str]:
            from charter.compiler import aigrid_rule

            aigrid_rule.close_all()
            settings = {"store": "memory", "ephemeral": True} if store == ":memory:" \
                else {"store": "sqlite", "db_path": db()}
            params = exported.policy_rule["policy_parameters"]
            rule = Rule("bench", settings, params)
            evs = copies()
            now = clock(store)
            t0 = now()
            for e in evs:  # AIGrid passes the rule's parameters with every call
                rule.eval(params, e, {})
            secs = now() - t0
            head = rule.management("balances", {})["journal_hash"]
            aigrid_rule.close_all()
            return secs, head
        return run

    def via_cli(store: str) -> Callable[[], tuple[float, str]]:
        from click.testing import CliRunner

        from charter.cli import cli

        def run() -> tuple[float, str]:
            target = ["--memory"] if store == ":memory:" else ["--db", db()]
            now = clock(store)
            t0 = now()  # the whole command: compile, read, settle, report
            res = CliRunner().invoke(cli, ["run", str(POLICY), str(events_file), "--quiet",
                                           "--json", *target])
            secs = now() - t0
            if res.exit_code != 0:
                raise SystemExit(f"charter run failed: {res.output[-500:]}")
            out = res.output
            data = json.loads(out[out.index("{"):])
            return secs, data.get("journal_hash") or ""
        return run

    print(f"gig market (stdlib), best of {args.repeat}; memory: CPU time of this process; "
          f"SQLite: wall time, one commit per event")
    print(f"{'store':8} {'events':>7} {'path':12} {'events/s':>10} {'vs runtime':>11}")
    for store, label, n in ((":memory:", "memory", args.events),
                            ("sqlite", "sqlite", args.sqlite_events)):
        events[:] = all_events[:n]
        events_file.write_text("".join(json.dumps(e) + "\n" for e in events))
        (base, head0), (ev, head1), (cli_t, head2) = timed(
            [via_runtime(store), via_eval(store), via_cli(store)], args.repeat)
        for name, secs in (("runtime", base), ("eval", ev), ("charter run", cli_t)):
            print(f"{label:8} {n:>7} {name:12} {n / secs:>10,.0f} {secs / base - 1:>+10.1%}")
        same = head0 == head1 and (not head2 or head2 == head0)
        print(f"{label:8} {n:>7} journal hashes {'identical' if same else 'DIFFER'}"
              + ("" if head2 else " (charter run --json printed no hash)"))
        if not same:
            raise SystemExit(1)
    print("goal: eval within +20% of the runtime.  SQLite figures are bound by one fsync "
          "per commit and vary from run to run with the disk and the machine's load.")
    executor_modes(exported, all_events[:args.mode_events], work)


_CHILD = """
import importlib.util, json, os, subprocess, sys, uuid, zipfile
from pathlib import Path
zip_path, event, settings, pip = sys.argv[1], json.loads(sys.argv[2]), json.loads(sys.argv[3]), sys.argv[4] == "1"
tmp = Path(sys.argv[5]) / str(uuid.uuid4())
with zipfile.ZipFile(zip_path) as zf:
    zf.extractall(tmp)
if pip:
    subprocess.check_call([sys.executable, "-m", "pip", "install", "-q", "--no-index",
                           "-r", str(tmp / "code" / "requirements.txt")])
spec = importlib.util.spec_from_file_location("function", tmp / "code" / "function.py")
m = importlib.util.module_from_spec(spec); sys.modules["function"] = m; spec.loader.exec_module(m)
out = m.AIOSv1PolicyRule("", settings, {}).eval({}, event, None)
print(json.dumps(out))
"""


def executor_modes(exported: Any, events: list[dict], work: Path) -> None:
    """Per-event cost of the rule under each of AIGrid's ways of running it."""
    import os
    import subprocess

    from charter.compiler import aigrid_rule

    settings = dict(exported.policy_rule["policy_settings"])  # sqlite, FULL
    print(f"\nexecutor modes: gig market, SQLite FULL, per-event wall time")

    def long_lived(evs: list[dict], data: Path) -> tuple[float, str]:
        os.environ[aigrid_rule.DATA_DIR_ENV] = str(data)
        rule = load_rule(exported.zip_path, data / "bundle")("", settings, {})
        t0 = time.perf_counter()
        out = [rule.eval({}, e, None) for e in evs]
        secs = time.perf_counter() - t0
        aigrid_rule.close_all()
        return secs, out[-1]["journal_hash"]

    def per_call(evs: list[dict], data: Path) -> tuple[float, str]:
        os.environ[aigrid_rule.DATA_DIR_ENV] = str(data)
        t0 = time.perf_counter()
        for i, e in enumerate(evs):  # unpack, import, build, eval: every call
            out = load_rule(exported.zip_path, data / f"call{i}")("", settings, {}).eval(
                {}, e, None)
        secs = time.perf_counter() - t0
        aigrid_rule.close_all()
        return secs, out["journal_hash"]

    def per_process(evs: list[dict], data: Path, pip: bool) -> tuple[float, str]:
        env = dict(os.environ, **{aigrid_rule.DATA_DIR_ENV: str(data)})
        t0 = time.perf_counter()
        for e in evs:
            res = subprocess.run([sys.executable, "-c", _CHILD, str(exported.zip_path),
                                  json.dumps(e), json.dumps(settings), "1" if pip else "0",
                                  str(data / "calls")], env=env, capture_output=True,
                                 text=True, cwd=str(ROOT))
            if res.returncode != 0:
                raise SystemExit(f"child failed: {res.stderr[-800:]}")
        secs = time.perf_counter() - t0
        return secs, json.loads(res.stdout.strip().splitlines()[-1])["journal_hash"]

    n_proc = max(2, len(events) // 10)
    rows = [("long-lived (Type 4)", len(events), *long_lived(events, work / "m1")),
            ("new instance per call (SDK)", len(events), *per_call(events, work / "m2"))]
    ref = rows[0][3]
    sub = events[:n_proc]
    ref_sub = long_lived(sub, work / "m3")[1]
    rows.append(("new process per call", n_proc, *per_process(sub, work / "m4", False)))
    rows.append(("  + pip install -r (satisfied)", n_proc,
                 *per_process(sub, work / "m5", True)))
    print(f"{'mode':32} {'events':>7} {'ms/event':>10} {'hash':>6}")
    for name, n, secs, head in rows:
        same = head == (ref if n == len(events) else ref_sub)
        print(f"{name:32} {n:>7} {secs / n * 1000:>10.1f} {'same' if same else 'DIFF':>6}")


if __name__ == "__main__":
    main()
