"""Runtime throughput: the gig-market example, Charter vs hand-written Python.

    PYTHONPATH=. python benchmarks/bench_runtime.py [EVENTS] [--batch N] [--rounds R]
                                                    [--e2e EVENTS] [--agents N]

Settles generated streams (examples/gig_market/generate.py) several ways and
prints events/s, wall and CPU time, as medians of ``--rounds`` interleaved
rounds (default 3; the machine may be shared, so each round runs every
contender once and CPU time is reported beside wall time).

In process, EVENTS (default 100,000) pre-parsed events, 50 agents:

* Charter runtime, in memory;
* a hand-written plain-Python implementation of the same rules, with the
  same guarantees the runtime gives (payload checks, authorisation,
  idempotent ids, deadline refunds before the event (in its transaction), largest-remainder
  split, decay, all-or-nothing events, a sha256 hash-chained journal);
* Charter runtime on SQLite (WAL, synchronous=FULL, one transaction per
  ``--batch`` events, default 1,000);
* the hand-written version writing journal rows and changed balances/tasks
  to sqlite3 with the same batching and pragmas.

End to end, a JSON Lines file of ``--e2e`` events (default 435,000: ``--agents``
1,000 agents, 100 epochs; ``--e2e 0`` skips it), each in a process of its own:

* ``charter run POLICY FILE --memory -q --json``;
* the *lean* reference (:class:`LeanGig`): ``json.loads`` and dicts of ints, the
  rules' own checks and nothing else (no journal, no validation, no undo),
  conservation checked at the end.

Every implementation must end with identical balances (checked), so each
comparison is of equal work.  Goals (issue 19): in memory >= 1.0x the
hand-written reference; on SQLite <= 1.2x hand-written sqlite3's time;
``charter run --memory`` >= 0.25x the lean reference's throughput.
"""

from __future__ import annotations

import hashlib
import heapq
import json
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "examples" / "gig_market"))

from generate import gig_events  # noqa: E402

FEE_NUM, FEE_DEN = 5, 100  # fee 5%
REP_PER_GRADE = 10
MIN_BID = 100


class Reject(Exception):
    pass


class PlainGig:
    """The example policy written by hand (same rules, same guarantees)."""

    def __init__(self) -> None:
        self.bal: dict[str, int] = {}
        self.agents: set[str] = set()
        self.gateways: set[str] = set()
        self.tasks: dict[str, dict] = {}
        self.deadlines: list[tuple[int, str]] = []
        self.applied: set[str] = set()
        self.clock: int | None = None
        self.seq = 0
        self.head = hashlib.sha256(b"plain-gig").hexdigest()
        self.dirty_acc: set[str] = set()
        self.dirty_task: set[str] = set()
        self.pending: list[tuple] = []

    # -- journal
    def _journal(self, ev: dict, postings: list) -> None:
        self.seq += 1
        entry = json.dumps(
            {"seq": self.seq, "event": ev, "postings": postings},
            sort_keys=True,
            separators=(",", ":"),
        )
        self.head = hashlib.sha256((self.head + entry).encode()).hexdigest()
        self.pending.append((self.seq, ev["id"], entry, self.head))
        self.applied.add(ev["id"])

    def _post(self, postings: list) -> None:
        bal = self.bal
        for src, dst, asset, amt, kind in postings:
            bal[src] = bal.get(src, 0) - amt
            bal[dst] = bal.get(dst, 0) + amt
            self.dirty_acc.add(src)
            self.dirty_acc.add(dst)

    # -- timers: part of the event's own transaction, undone if the event is rejected
    def _fire(self, now: int) -> tuple[list, list, list]:
        postings: list = []
        closed: list = []
        popped: list = []
        while self.deadlines and self.deadlines[0][0] <= now:
            item = heapq.heappop(self.deadlines)
            popped.append(item)
            due, tid = item
            t = self.tasks[tid]
            if t["open"]:
                esc = f"escrow:Task:{tid}:Credit"
                rest = self.bal.get(esc, 0)
                if rest:
                    postings.append([esc, f"party:{t['poster']}:Credit", "Credit", rest, "refund"])
                closed.append(tid)
        for tid in closed:
            self.tasks[tid]["open"] = False
            self.dirty_task.add(tid)
        self._post(postings)
        return postings, closed, popped

    def _unfire(self, fired: tuple[list, list, list]) -> None:
        postings, closed, popped = fired
        for tid in closed:
            self.tasks[tid]["open"] = True
        self._post([[dst, src, a, amt, k] for src, dst, a, amt, k in postings])
        for item in popped:
            heapq.heappush(self.deadlines, item)

    # -- events
    def submit(self, e: dict) -> bool:
        try:
            if (
                not isinstance(e, dict)
                or not isinstance(e.get("id"), str)
                or not isinstance(e.get("time"), int)
            ):
                raise Reject("bad_envelope")
            eid, typ, sub, now, args = (
                e["id"],
                e["type"],
                e["submitter"],
                e["time"],
                e.get("args", {}),
            )
            if eid in self.applied:
                raise Reject("duplicate")
            if self.clock is not None and now < self.clock:
                raise Reject("time_regressed")
            h = getattr(self, "on_" + typ, None)
            if h is None:
                raise Reject("unknown_event")
            fired = None
            if self.deadlines and self.deadlines[0][0] <= now:
                fired = self._fire(now)
            postings: list = []
            try:
                apply = h(sub, now, args, postings)  # checks only; returns the state change
            except Reject:
                if fired is not None:
                    self._unfire(fired)
                raise
            apply()
            self._post(postings)
            self._journal(
                {"id": eid, "type": typ, "submitter": sub, "time": now, "args": args},
                (fired[0] + postings) if fired is not None else postings,
            )
            self.clock = now
            return True
        except Reject:
            return False

    @staticmethod
    def _int(args: dict, name: str, lo: int | None = None, hi: int | None = None) -> int:
        if set(args) - _ARGS_OK:
            raise Reject("unknown_argument")
        v = args.get(name)
        if isinstance(v, bool) or not isinstance(v, int):
            raise Reject("bad_argument")
        if (lo is not None and v < lo) or (hi is not None and v > hi):
            raise Reject("out_of_range")
        return v

    def _task(self, args: dict) -> tuple[str, dict]:
        tid = args.get("id")
        t = self.tasks.get(tid)
        if t is None:
            raise Reject("missing_record")
        return tid, t

    def on_join(self, sub, now, args, postings):
        if args:
            raise Reject("unknown_argument")
        if sub in self.agents:
            raise Reject("already an agent")
        return lambda: self.agents.add(sub)

    def on_appoint(self, sub, now, args, postings):
        if sub != "operator":
            raise Reject("unauthorised")
        g = args.get("gateway")
        if g in self.gateways:
            raise Reject("already_member")
        return lambda: self.gateways.add(g)

    def on_deposit(self, sub, now, args, postings):
        if sub not in self.gateways:
            raise Reject("unauthorised")
        to = args.get("to")
        if to not in self.agents:
            raise Reject("bad_argument")
        amt = self._int(args, "amount")
        if amt <= 0:
            raise Reject("deposit must be positive")
        postings.append(["supply:Credit", f"party:{to}:Credit", "Credit", amt, "mint"])
        return _noop

    def on_withdraw(self, sub, now, args, postings):
        if sub not in self.agents:
            raise Reject("unauthorised")
        amt = self._int(args, "amount")
        if amt <= 0:
            raise Reject("withdrawal must be positive")
        acc = f"party:{sub}:Credit"
        if self.bal.get(acc, 0) < amt:
            raise Reject("insufficient_funds")
        postings.append([acc, "supply:Credit", "Credit", amt, "burn"])
        return _noop

    def on_post(self, sub, now, args, postings):
        if sub not in self.agents:
            raise Reject("unauthorised")
        budget = self._int(args, "budget")
        dur = self._int(args, "duration")
        tid = args.get("id")
        if not isinstance(tid, str):
            raise Reject("bad_argument")
        if budget <= 0:
            raise Reject("budget must be positive")
        if tid in self.tasks:
            raise Reject("task exists")
        if dur <= 0:
            raise Reject("duration must be positive")
        acc = f"party:{sub}:Credit"
        if self.bal.get(acc, 0) < budget:
            raise Reject("insufficient_funds")
        postings.append([acc, f"escrow:Task:{tid}:Credit", "Credit", budget, "escrow"])

        def apply() -> None:
            self.tasks[tid] = {
                "poster": sub,
                "budget": budget,
                "worker": None,
                "price": 0,
                "open": True,
                "deadline": now + dur,
            }
            heapq.heappush(self.deadlines, (now + dur, tid))
            self.dirty_task.add(tid)

        return apply

    def on_bid(self, sub, now, args, postings):
        tid, t = self._task(args)
        if sub not in self.agents:
            raise Reject("unauthorised")
        price = self._int(args, "price")
        if not t["open"]:
            raise Reject("task is closed")
        if sub == t["poster"]:
            raise Reject("posters cannot bid")
        if price < MIN_BID or price > t["budget"]:
            raise Reject("bid out of range")
        if t["worker"] is not None and price >= t["price"]:
            raise Reject("not lower")

        def apply() -> None:
            t["worker"], t["price"] = sub, price
            self.dirty_task.add(tid)

        return apply

    def on_complete(self, sub, now, args, postings):
        tid, t = self._task(args)
        q = self._int(args, "quality", 1, 5)
        if sub != t["poster"]:
            raise Reject("unauthorised")
        if not t["open"]:
            raise Reject("task is closed")
        if t["worker"] is None:
            raise Reject("no bids yet")
        esc = f"escrow:Task:{tid}:Credit"
        price = t["price"]
        cut = price * FEE_NUM // FEE_DEN
        rest = self.bal.get(esc, 0) - price
        postings.append([esc, f"party:{t['worker']}:Credit", "Credit", price - cut, "release"])
        if cut:
            postings.append([esc, "pool:commons", "Credit", cut, "release"])
        if rest:
            postings.append([esc, f"party:{t['poster']}:Credit", "Credit", rest, "refund"])
        rep = q * REP_PER_GRADE
        if rep:
            postings.append(
                ["supply:Reputation", f"party:{t['worker']}:Reputation", "Reputation", rep, "mint"]
            )

        def apply() -> None:
            t["open"] = False
            self.dirty_task.add(tid)

        return apply

    def on_epoch_end(self, sub, now, args, postings):
        if sub != "clock":
            raise Reject("unauthorised")
        pot = self.bal.get("pool:commons", 0)
        agents = sorted(self.agents)
        weights = [self.bal.get(f"party:{a}:Reputation", 0) for a in agents]
        total = sum(weights)
        if pot and total:
            shares, rems = [], []
            for w in weights:
                q, r = divmod(pot * w, total)
                shares.append(q)
                rems.append(r)
            left = pot - sum(shares)
            for i in sorted(range(len(agents)), key=lambda i: (-rems[i], i))[:left]:
                shares[i] += 1
            for a, s in zip(agents, shares):
                if s:
                    postings.append(["pool:commons", f"party:{a}:Credit", "Credit", s, "split"])
        holders = sorted(
            k for k, v in self.bal.items() if k.startswith("party:") and k.endswith(":Reputation")
        )
        for acc in holders:
            cut = self.bal[acc] // 10
            if cut:
                postings.append([acc, "supply:Reputation", "Reputation", cut, "decay"])
        return _noop


_ARGS_OK = {"id", "budget", "duration", "price", "quality", "amount", "to", "gateway"}


def _noop() -> None:
    pass


class SqliteGig(PlainGig):
    """The hand-written version persisting to sqlite3 with the same batching."""

    def __init__(self, path: str, batch: int):
        super().__init__()
        self.batch = batch
        self.conn = sqlite3.connect(path, isolation_level=None)
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute("PRAGMA synchronous=FULL")
        self.conn.executescript("""
            CREATE TABLE journal (seq INTEGER PRIMARY KEY, event_id TEXT UNIQUE,
                                  entry TEXT, hash TEXT);
            CREATE TABLE balances (account TEXT PRIMARY KEY, balance TEXT) WITHOUT ROWID;
            CREATE TABLE tasks (id TEXT PRIMARY KEY, data TEXT) WITHOUT ROWID;
            CREATE TABLE members (role TEXT, party TEXT, PRIMARY KEY (role, party)) WITHOUT ROWID;
        """)

    def submit(self, e: dict) -> bool:
        ok = super().submit(e)
        if len(self.pending) >= self.batch:
            self.flush()
        return ok

    def flush(self) -> None:
        if not self.pending:
            return
        c = self.conn
        c.execute("BEGIN IMMEDIATE")
        c.executemany("INSERT INTO journal VALUES (?, ?, ?, ?)", self.pending)
        c.executemany(
            "INSERT OR REPLACE INTO balances VALUES (?, ?)",
            [(a, str(self.bal[a])) for a in self.dirty_acc],
        )
        c.executemany(
            "INSERT OR REPLACE INTO tasks VALUES (?, ?)",
            [(t, json.dumps(self.tasks[t], sort_keys=True)) for t in self.dirty_task],
        )
        c.executemany(
            "INSERT OR IGNORE INTO members VALUES (?, ?)",
            [("Agent", a) for a in self.agents] if self.seq <= self.batch * 2 else [],
        )
        c.execute("COMMIT")
        self.pending.clear()
        self.dirty_acc.clear()
        self.dirty_task.clear()


class LeanGig:
    """The *lean* reference: the rules and nothing else.

    ``json.loads`` per line, dicts of ints, the policy's own checks (who may
    submit, ``require``), deadline refunds, the largest-remainder split and
    decay; no envelope validation, no journal, no hash chain, no undo (every
    check comes before the first change), no idempotency.  Conservation is
    checked at the end (every asset's accounts sum to zero).  What a careful
    person writes when the ledger's guarantees are someone else's problem."""

    def __init__(self) -> None:
        self.bal: dict[str, int] = {}
        self.agents: set[str] = set()
        self.gateways: set[str] = set()
        self.tasks: dict[str, list] = {}  # id -> [poster, budget, worker, price, open]
        self.deadlines: list[tuple[int, str]] = []
        self.applied = 0

    def run(self, lines) -> None:
        loads = json.loads
        bal = self.bal
        agents, gateways, tasks, deadlines = self.agents, self.gateways, self.tasks, self.deadlines
        for line in lines:
            e = loads(line)
            now, typ, sub, a = e["time"], e["type"], e["submitter"], e.get("args", {})
            while deadlines and deadlines[0][0] <= now:
                _, tid = heapq.heappop(deadlines)
                t = tasks[tid]
                if t[4]:
                    esc = "escrow:Task:" + tid + ":Credit"
                    rest = bal.pop(esc, 0)
                    acc = "party:" + t[0] + ":Credit"
                    bal[acc] = bal.get(acc, 0) + rest
                    t[4] = False
            if typ == "bid":
                t = tasks.get(a["id"])
                price = a["price"]
                if (t is None or sub not in agents or not t[4] or sub == t[0]
                        or not MIN_BID <= price <= t[1] or (t[2] is not None and price >= t[3])):
                    continue
                t[2], t[3] = sub, price
            elif typ == "post":
                tid, budget, dur = a["id"], a["budget"], a["duration"]
                acc = "party:" + sub + ":Credit"
                if (sub not in agents or budget <= 0 or tid in tasks or dur <= 0
                        or bal.get(acc, 0) < budget):
                    continue
                bal[acc] -= budget
                bal["escrow:Task:" + tid + ":Credit"] = budget
                tasks[tid] = [sub, budget, None, 0, True]
                heapq.heappush(deadlines, (now + dur, tid))
            elif typ == "complete":
                tid = a["id"]
                t = tasks.get(tid)
                if t is None or sub != t[0] or not t[4] or t[2] is None:
                    continue
                esc = "escrow:Task:" + tid + ":Credit"
                price = t[3]
                cut = price * FEE_NUM // FEE_DEN
                rest = bal.pop(esc) - price
                w = "party:" + t[2] + ":Credit"
                bal[w] = bal.get(w, 0) + price - cut
                bal["pool:commons"] = bal.get("pool:commons", 0) + cut
                p = "party:" + t[0] + ":Credit"
                bal[p] = bal.get(p, 0) + rest
                rep = a["quality"] * REP_PER_GRADE
                r = "party:" + t[2] + ":Reputation"
                bal[r] = bal.get(r, 0) + rep
                bal["supply:Reputation"] = bal.get("supply:Reputation", 0) - rep
                t[4] = False
            elif typ == "deposit":
                amt, to = a["amount"], a["to"]
                if sub not in gateways or to not in agents or amt <= 0:
                    continue
                acc = "party:" + to + ":Credit"
                bal[acc] = bal.get(acc, 0) + amt
                bal["supply:Credit"] = bal.get("supply:Credit", 0) - amt
            elif typ == "withdraw":
                amt = a["amount"]
                acc = "party:" + sub + ":Credit"
                if sub not in agents or amt <= 0 or bal.get(acc, 0) < amt:
                    continue
                bal[acc] -= amt
                bal["supply:Credit"] += amt
            elif typ == "epoch_end":
                if sub != "clock":
                    continue
                self._epoch_end()
            elif typ == "join":
                if sub in agents:
                    continue
                agents.add(sub)
            elif typ == "appoint":
                if sub != "operator" or a["gateway"] in gateways:
                    continue
                gateways.add(a["gateway"])
            else:
                continue
            self.applied += 1
        total: dict[str, int] = {}
        for acc, v in bal.items():  # conservation: every asset's accounts sum to zero
            asset = "Credit" if acc.startswith("pool:") else acc.rpartition(":")[2]
            total[asset] = total.get(asset, 0) + v
        assert not any(total.values()), f"lean reference does not conserve value: {total}"

    def _epoch_end(self) -> None:
        bal = self.bal
        pot = bal.get("pool:commons", 0)
        agents = sorted(self.agents)
        weights = [bal.get("party:" + a + ":Reputation", 0) for a in agents]
        total = sum(weights)
        if pot and total:
            shares, rems = [], []
            for w in weights:
                q, r = divmod(pot * w, total)
                shares.append(q)
                rems.append(r)
            for i in sorted(range(len(agents)), key=lambda i: (-rems[i], i))[: pot - sum(shares)]:
                shares[i] += 1
            for a, s in zip(agents, shares):
                if s:
                    acc = "party:" + a + ":Credit"
                    bal[acc] = bal.get(acc, 0) + s
            bal["pool:commons"] = pot - sum(shares)
        for a in agents:
            acc = "party:" + a + ":Reputation"
            cut = bal.get(acc, 0) // 10
            if cut:
                bal[acc] -= cut
                bal["supply:Reputation"] += cut


def _lean_child(path: str) -> None:
    """``--lean FILE``: the lean reference end to end (a process of its own, like charter run)."""
    lean = LeanGig()
    with open(path, "rb") as fh:
        lean.run(fh)
    json.dump({"applied": lean.applied,
               "balances": {k: v for k, v in sorted(lean.bal.items()) if v}}, sys.stdout)


def _feed(submit, events: list) -> None:
    # outcomes are dropped as they come, as a settling service would (none is kept alive)
    for e in events:
        submit(e)


def _time(fn) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process) for one call."""
    w0, c0 = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - w0, time.process_time() - c0


def _child(args: list[str]) -> tuple[float, float, str]:
    """(wall s, CPU s of the child alone (os.wait4), stdout) of one process."""
    t0 = time.perf_counter()
    p = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, cwd=ROOT)
    out = p.stdout.read().decode()
    _, status, ru = os.wait4(p.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{args[:4]} failed")
    return time.perf_counter() - t0, ru.ru_utime + ru.ru_stime, out


def main() -> None:
    args = sys.argv[1:]
    if args[:1] == ["--lean"]:
        return _lean_child(args[1])
    opts = {"--batch": 1000, "--rounds": 3, "--e2e": 435_000, "--agents": 1000}
    for name in list(opts):
        if name in args:
            i = args.index(name)
            opts[name] = int(args[i + 1])
            del args[i : i + 2]
    batch, rounds, e2e_n, agents = opts["--batch"], opts["--rounds"], opts["--e2e"], opts["--agents"]
    n = int(args[0]) if args else 100_000
    sys.path.insert(0, str(ROOT))
    from charter.compiler.pipeline import Compilation
    from charter.runtime.api import open_runtime

    policy_path = ROOT / "examples" / "gig_market" / "policy.charter"
    policy = Compilation.from_path(policy_path).ir
    events = list(gig_events(n, seed=7))
    print(
        f"{n} gig-market events in process, SQLite batch {batch} (WAL, synchronous=FULL); "
        f"end to end: {e2e_n} events, {agents} agents, 100 epochs; "
        f"medians of {rounds} interleaved round(s)"
    )
    tmp = tempfile.TemporaryDirectory()
    e2e_file = Path(tmp.name) / "gig-e2e.jsonl"
    if e2e_n:
        with open(e2e_file, "w") as fh:
            for e in gig_events(e2e_n, seed=7, agents=agents, epoch=max(e2e_n // 100, 1)):
                fh.write(json.dumps(e) + "\n")

    runs: dict[str, list[tuple[float, float]]] = {
        k: [] for k in ("mem", "plain", "sql", "hand", "lean", "run")
    }
    for r in range(rounds):
        rt = open_runtime(policy)
        runs["mem"].append(_time(lambda: _feed(rt.submit, events)))
        plain = PlainGig()
        runs["plain"].append(_time(lambda: _feed(plain.submit, events)))
        got = {k: v for k, v in sorted(plain.bal.items()) if v}
        assert got == rt.balances(), "plain-Python reference and Charter disagree"
        assert plain.seq == rt.seq, (plain.seq, rt.seq)
        with tempfile.TemporaryDirectory() as d:
            hand = SqliteGig(str(Path(d) / "hand.sqlite"), batch)
            runs["hand"].append(_time(lambda: (_feed(hand.submit, events), hand.flush())))
            rts = open_runtime(policy, str(Path(d) / "charter.sqlite"), batch=batch)
            runs["sql"].append(_time(lambda: (_feed(rts.submit, events), rts.flush())))
            assert rts.journal_hash == rt.journal_hash
            rts.close()
            hand.conn.close()
        if e2e_n:
            w, c, out = _child([sys.executable, str(Path(__file__).resolve()), "--lean",
                                str(e2e_file)])
            lean = json.loads(out)
            runs["lean"].append((w, c))
            w, c, out = _child([sys.executable, "-m", "charter.cli", "run", str(policy_path),
                                str(e2e_file), "--memory", "-q", "--json"])
            summary = json.loads(out)
            runs["run"].append((w, c))
            assert summary["balances"] == lean["balances"], "lean reference and charter run disagree"
            assert summary["applied"] == lean["applied"], (summary["applied"], lean["applied"])
    tmp.cleanup()
    wall = {k: statistics.median(w for w, _ in v) for k, v in runs.items() if v}
    cpu = {k: statistics.median(c for _, c in v) for k, v in runs.items() if v}

    def row(name: str, key: str, size: int) -> None:
        print(
            f"  {name:<34} wall {wall[key]:6.2f} s {size / wall[key]:9,.0f} ev/s   "
            f"cpu {cpu[key]:6.2f} s {size / cpu[key]:9,.0f} ev/s"
        )

    print(f"applied {rt.seq} journal entries in process; balances equal in every implementation")
    row("charter, memory", "mem", n)
    row("hand-written, same guarantees", "plain", n)
    row("charter, SQLite", "sql", n)
    row("hand-written sqlite3", "hand", n)
    if e2e_n:
        row("charter run --memory (end to end)", "run", e2e_n)
        row("lean reference (end to end)", "lean", e2e_n)
    print(
        f"memory: charter throughput = {wall['plain'] / wall['mem']:.2f}x the hand-written "
        f"reference by wall time, {cpu['plain'] / cpu['mem']:.2f}x by CPU time (goal >= 1.0x)"
    )
    print(
        f"SQLite: charter time = {wall['sql'] / wall['hand']:.2f}x hand-written sqlite3 "
        f"by wall time, {cpu['sql'] / cpu['hand']:.2f}x by CPU time (goal <= 1.2x)"
    )
    if e2e_n:
        print(
            f"end to end: charter run --memory throughput = {wall['lean'] / wall['run']:.2f}x "
            f"the lean reference by wall time, {cpu['lean'] / cpu['run']:.2f}x by CPU time "
            "(goal >= 0.25x)"
        )


if __name__ == "__main__":
    main()
