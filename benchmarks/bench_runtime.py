"""Runtime throughput: the gig-market example, Charter vs hand-written Python.

    PYTHONPATH=. python benchmarks/bench_runtime.py [EVENTS] [--batch N] [--rounds R]
                                                    [--e2e EVENTS] [--agents N]

Settles generated streams (examples/gig_market/generate.py) several ways and
prints events/s, wall and CPU time, as medians of ``--rounds`` interleaved
rounds (default 3; the machine may be shared, so each round runs every
contender once and CPU time is reported beside wall time).

In process, EVENTS (default 100,000) pre-parsed events, 50 agents:

* Charter runtime, in memory;
* :class:`PlainGig`: the same rules written by hand with the guarantees the
  runtime gives, step for step (its docstring lists them: full envelope and
  per-handler argument checks, idempotent ids with the original receipt,
  deadline refunds inside the event's transaction, authorisation, the mint
  cap, the ledger re-check before anything changes, the runtime's canonical
  journal entry sha256-chained from the same genesis hash, a receipt or a
  coded rejection per event).  Its journal is byte-identical to the
  runtime's (the chain heads are compared), so both sides provably do the
  same work; it uses msgspec for the entry, as the runtime does;
* Charter runtime on SQLite (WAL, synchronous=FULL, one transaction per
  ``--batch`` events, default 1,000);
* :class:`SqliteGig`: the hand-written version writing to sqlite3 with the
  same batching and pragmas what the runtime's ledger file keeps (journal
  rows with the applied ids, compressed entries, changed state rows, the
  per-account index, a checkpoint with a state digest kept current); its
  docstring says where the layouts differ.

End to end, a JSON Lines file of ``--e2e`` events (default 435,000: ``--agents``
1,000 agents, 100 epochs; ``--e2e 0`` skips it), each in a process of its own:

* ``charter run POLICY FILE --memory -q --json``;
* the *lean* reference (:class:`LeanGig`): ``json.loads`` and dicts of ints, the
  rules' own checks and nothing else (no journal, no validation, no undo),
  conservation checked at the end.

Both end-to-end children start from cached byte code, as an installed package does
(compiled to a temporary ``PYTHONPYCACHEPREFIX`` by a warm-up run of each; the
lean one imports this file rather than running it as a script).

Every implementation must end with identical balances and applied counts
(checked), and all but the lean one with the identical journal chain head,
so each comparison is of equal work.  (Up to this version the in-process
reference was weaker than its name: no ledger re-check, partial envelope and
argument checks, booleans instead of receipts, no mint cap, a journal entry
of its own; its SQLite twin kept no index, checkpoint or compression.)

Goals (issue 19): in memory >= 1.0x the hand-written reference; on SQLite
<= 1.2x hand-written sqlite3's time; ``charter run --memory`` >= 0.25x the
lean reference's throughput.
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
import zlib

import msgspec
from pathlib import Path
from typing import NamedTuple

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "examples" / "gig_market"))

from generate import gig_events  # noqa: E402

FEE_NUM, FEE_DEN = 5, 100  # fee 5%
REP_PER_GRADE = 10
MIN_BID = 100


MAX = 2**63 - 1  # every amount, balance and time is within +-MAX, as in the runtime
MAX_ID = 256
MAX_TEXT = 65_536
REP_CAP = 1_000_000  # asset Reputation: cap 1000000
ENVELOPE = frozenset({"id", "type", "submitter", "time", "args"})
DEADLINE = "Task.deadline.passes"  # the timed handler's name in the journal


class Reject(Exception):
    def __init__(self, code: str, message: str = ""):
        super().__init__(code)
        self.code, self.message = code, message or code


class Posting(NamedTuple):
    src: str
    dst: str
    asset: str
    amount: int
    kind: str


class Receipt(NamedTuple):
    event_id: str
    tx: int
    postings: tuple
    journal_hash: str
    timers: tuple
    duplicate: bool = False

    applied = True


class Rejection(NamedTuple):
    event_id: object
    code: str
    message: str

    applied = False


def _ok_id(v: object) -> bool:
    return type(v) is str and 0 < len(v) <= MAX_ID and v.isascii() and v.isprintable()


# per event type, its arguments in declared order: (name, kind, lo, hi)
_INT = "int"
ARGS: dict[str, tuple] = {
    "join": (),
    "appoint": (("gateway", "party", None, None),),
    "deposit": (("to", "agent", None, None), ("amount", _INT, -MAX, MAX)),
    "withdraw": (("amount", _INT, -MAX, MAX),),
    "post": (("id", "text", None, None), ("budget", _INT, -MAX, MAX),
             ("duration", _INT, -MAX, MAX)),
    "bid": (("id", "task", None, None), ("price", _INT, -MAX, MAX)),
    "complete": (("id", "task", None, None), ("quality", _INT, 1, 5)),
    "epoch_end": (),
}
_ARG_NAMES = {t: frozenset(a[0] for a in spec) for t, spec in ARGS.items()}


class PlainGig:
    """The example policy written by hand, with the guarantees the runtime gives.

    Per event, in the runtime's order (``runtime/settle.py``): the envelope
    (only the known keys; ``id`` and ``submitter`` printable ASCII of at most
    256 characters; ``time`` an int in 0..2**63-1; ``args`` an object; a known
    type); an id already applied returns the original receipt when the event is
    the same again and is refused (``id_conflict``) otherwise; time may not go
    back; deadline refunds due before the event run inside its transaction (and
    are undone if it is rejected); every argument is checked against the
    handler's signature (no unknown or missing ones, ints in range and not
    bools, text, a party that holds the role, a task that exists); authorisation
    (roles, the poster, the clock); the rules (``require``s, the mint cap of
    Reputation, bounds of the deadline); the postings are re-checked before
    anything changes (each amount in 0..2**63-1, balanced per asset, no account
    but a supply below zero, every balance within +-(2**63-1)); then the journal
    entry is written in the runtime's canonical JSON (sorted keys, the timers it
    fired, its postings) and sha256-chained from the ledger's genesis hash, and
    the event gets a receipt (its postings, sequence number and chain hash) or a
    rejection (code and message).  All-or-nothing: every check comes before the
    first change (timers are undone by hand).

    Its journal is byte for byte the runtime's (the benchmark compares the chain
    heads), which is how we know the two do the same work.  What it does not
    do: signatures (the stream has none), the step budget, the runtime's
    general machinery (any policy, Unicode ids, soft credit lines, flags)."""

    def __init__(self, genesis: str) -> None:
        self.bal: dict[str, int] = {}
        self.agents: set[str] = set()
        self.gateways: set[str] = set()
        self.tasks: dict[str, dict] = {}
        self.deadlines: list[tuple[int, str]] = []
        self.applied: dict[str, int] = {}  # event id -> journal seq
        self.entries: list[tuple[str, str]] = []  # the journal: (entry text, chain hash)
        self.clock: int | None = None
        self.seq = 0
        self.head = genesis
        self.dirty_acc: set[str] = set()
        self.dirty_task: set[str] = set()
        self.handlers = {t: getattr(self, "on_" + t) for t in ARGS}

    # -- journal: the runtime's canonical entry text, hash-chained
    def _journal(self, eid: str, typ: str, sub: str, now: int, args: dict, postings: list,
                 timers: list) -> str:
        self.seq += 1
        entry = _canonical({
            "event": {"args": args, "id": eid, "submitter": sub, "time": now, "type": typ},
            "flags": [], "postings": postings, "seq": self.seq, "timers": timers,
        })
        self.head = hashlib.sha256((self.head + entry).encode()).hexdigest()
        self.applied[eid] = self.seq
        self._keep(eid, entry, postings)
        return self.head

    def _keep(self, eid: str, entry: str, postings: list) -> None:
        self.entries.append((entry, self.head))

    def _entry(self, seq: int) -> tuple[str, str]:
        return self.entries[seq - 1]

    # -- the re-check before commit, then the postings applied
    def _check_and_post(self, postings: list) -> None:
        bal = self.bal
        new: dict[str, int] = {}
        net: dict[str, int] = {}
        for src, dst, asset, amt, kind in postings:
            if not 0 <= amt <= MAX:
                raise Reject("ledger_check", f"posting of {amt} {asset} out of range")
            if _asset(src) != asset or _asset(dst) != asset:
                raise Reject("ledger_check", f"posting of {asset} between {src} and {dst}")
            new[src] = new.get(src, bal.get(src, 0)) - amt
            new[dst] = new.get(dst, bal.get(dst, 0)) + amt
            net[asset] = net.get(asset, 0)  # a posting nets to zero by construction
        for acc, v in new.items():
            if not -MAX <= v <= MAX:
                raise Reject("out_of_bounds", f"the balance of {acc} would be outside +-MAX")
            if v < 0 and not acc.startswith("supply:"):
                raise Reject("ledger_check", f"account {acc} would be negative ({v})")
        bal.update(new)
        self.dirty_acc.update(new)

    # -- timers: part of the event's own transaction, undone if the event is rejected
    def _fire(self, now: int) -> tuple[list, list, list, list]:
        postings: list = []
        closed: list = []
        popped: list = []
        timers: list = []
        bal = self.bal
        while self.deadlines and self.deadlines[0][0] <= now:
            item = heapq.heappop(self.deadlines)
            popped.append(item)
            due, tid = item
            t = self.tasks[tid]
            if t["open"]:
                esc = "escrow:Task:" + tid + ":Credit"
                rest = bal.get(esc, 0)
                if rest:
                    p = [esc, "party:" + t["poster"] + ":Credit", "Credit", rest, "refund"]
                    postings.append(p)
                    self._check_and_post([p])  # each firing re-checked on its own
                closed.append(tid)
                t["open"] = False
            timers.append({"due": due, "handler": DEADLINE, "key": tid, "status": "applied"})
        return postings, closed, popped, timers

    def _unfire(self, fired: tuple[list, list, list, list]) -> None:
        postings, closed, popped, _ = fired
        for tid in closed:
            self.tasks[tid]["open"] = True
        bal = self.bal
        for src, dst, _a, amt, _k in postings:
            bal[src] += amt
            bal[dst] -= amt
        for item in popped:
            heapq.heappush(self.deadlines, item)

    # -- events
    def submit(self, e: object):
        eid = e.get("id") if type(e) is dict else None
        try:
            eid, typ, sub, now, args = self._envelope(e)
            seq = self.applied.get(eid)
            if seq is not None:
                return self._again(seq, typ, sub, now, args)
            if self.clock is not None and now < self.clock:
                raise Reject("time_regressed", f"event time {now} is before {self.clock}")
            fired = None
            if self.deadlines and self.deadlines[0][0] <= now:
                fired = self._fire(now)
            try:
                conv = self._args(typ, args)
                postings: list = []
                apply = self.handlers[typ](sub, now, conv, postings)
                self._check_and_post(postings)
            except Reject:
                if fired is not None:
                    self._unfire(fired)
                raise
            if fired is not None:
                self.dirty_task.update(fired[1])
            apply()
            timers = fired[3] if fired is not None else []
            if fired is not None and fired[0]:
                postings = fired[0] + postings
            head = self._journal(eid, typ, sub, now, conv, postings, timers)
            self.clock = now
            return Receipt(eid, self.seq, tuple(map(Posting._make, postings)), head,
                           tuple(timers))
        except Reject as r:
            return Rejection(eid, r.code, r.message)

    def _envelope(self, e: object) -> tuple:
        if type(e) is not dict:
            raise Reject("bad_envelope", "an event must be a JSON object")
        if not e.keys() <= ENVELOPE:
            raise Reject("bad_envelope", "unknown envelope key(s)")
        eid, typ, sub, now = e.get("id"), e.get("type"), e.get("submitter"), e.get("time")
        args = e.get("args", {})
        if not _ok_id(eid):
            raise Reject("bad_envelope", "event 'id': expected printable text")
        if type(typ) is not str:
            raise Reject("bad_envelope", "event 'type': expected text")
        if not _ok_id(sub) or sub[0] == "@":
            raise Reject("bad_envelope", "event 'submitter': expected a party id")
        if type(now) is not int or not 0 <= now <= MAX:
            raise Reject("bad_envelope", "event 'time': expected an integer 0..2**63-1")
        if type(args) is not dict:
            raise Reject("bad_envelope", "event 'args': expected an object")
        if typ not in ARGS:
            raise Reject("unknown_event", f"unknown event type {typ!r}")
        return eid, typ, sub, now, args

    def _again(self, seq: int, typ: str, sub: str, now: int, args: dict):
        """An applied id: the original receipt when it is the same event, else id_conflict."""
        text, h = self._entry(seq)
        entry = json.loads(text)
        ev = entry["event"]
        if (ev["type"], ev["submitter"], ev["time"]) != (typ, sub, now) or _canonical(
            ev["args"]
        ) != _canonical(args):
            raise Reject("id_conflict", f"event id already applied (journal entry {seq})")
        return Receipt(ev["id"], seq, tuple(map(Posting._make, entry["postings"])), h,
                       tuple(entry["timers"]), True)

    def _args(self, typ: str, args: dict) -> dict:
        """The arguments checked against the handler's signature (as they are journaled)."""
        spec = ARGS[typ]
        if len(args) > len(spec) or not _ARG_NAMES[typ].issuperset(args):
            raise Reject("unknown_argument", f"{typ}: unknown argument(s)")
        for name, kind, lo, hi in spec:
            if name not in args:
                raise Reject("missing_argument", f"{typ}: missing argument {name!r}")
            v = args[name]
            if kind is _INT:
                if type(v) is not int:
                    raise Reject("bad_argument", f"{typ}: argument {name!r}: expected an int")
                if not lo <= v <= hi:
                    raise Reject("out_of_range", f"{typ}: argument {name!r} out of range")
            elif kind == "task":
                if type(v) is not str or v not in self.tasks:
                    raise Reject("missing_record", f"{typ}: argument {name!r}: no Task {v!r}")
            elif kind == "agent":
                if type(v) is not str or v not in self.agents:
                    raise Reject("bad_argument", f"{typ}: argument {name!r}: not an Agent")
            elif kind == "party":
                if not _ok_id(v) or v[0] == "@":
                    raise Reject("bad_argument", f"{typ}: argument {name!r}: not a party id")
            elif type(v) is not str or not v.isascii() or len(v) > MAX_TEXT:  # text
                raise Reject("bad_argument", f"{typ}: argument {name!r}: expected text")
        return args

    def on_join(self, sub, now, args, postings):
        if sub == "clock":
            raise Reject("unauthorised", "join must be submitted by a party")
        if sub in self.agents:
            raise Reject("require", "already an agent")
        return lambda: self.agents.add(sub)

    def on_appoint(self, sub, now, args, postings):
        if sub != "operator":
            raise Reject("unauthorised", "only the operator may submit appoint")
        g = args["gateway"]
        if g in self.gateways:
            raise Reject("already_member", f"{g} already holds the Gateway role")
        return lambda: self.gateways.add(g)

    def on_deposit(self, sub, now, args, postings):
        if sub not in self.gateways:
            raise Reject("unauthorised", f"{sub} does not hold the Gateway role")
        amt = args["amount"]
        if amt <= 0:
            raise Reject("require", "deposit must be positive")
        postings.append(["supply:Credit", "party:" + args["to"] + ":Credit", "Credit", amt,
                         "mint"])
        return _noop

    def on_withdraw(self, sub, now, args, postings):
        if sub not in self.agents:
            raise Reject("unauthorised", f"{sub} does not hold the Agent role")
        amt = args["amount"]
        if amt <= 0:
            raise Reject("require", "withdrawal must be positive")
        acc = "party:" + sub + ":Credit"
        if self.bal.get(acc, 0) < amt:
            raise Reject("insufficient_funds", f"burn: {acc} holds too little")
        postings.append([acc, "supply:Credit", "Credit", amt, "burn"])
        return _noop

    def on_post(self, sub, now, args, postings):
        if sub not in self.agents:
            raise Reject("unauthorised", f"{sub} does not hold the Agent role")
        tid, budget, dur = args["id"], args["budget"], args["duration"]
        if budget <= 0:
            raise Reject("require", "budget must be positive")
        if tid in self.tasks:
            raise Reject("require", "task exists")
        if dur <= 0:
            raise Reject("require", "duration must be positive")
        if now + dur > MAX:
            raise Reject("out_of_bounds", "Task.deadline: outside +-(2**63-1)")
        acc = "party:" + sub + ":Credit"
        if self.bal.get(acc, 0) < budget:
            raise Reject("insufficient_funds", f"escrow: {acc} holds too little")
        postings.append([acc, "escrow:Task:" + tid + ":Credit", "Credit", budget, "escrow"])

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
        tid, price = args["id"], args["price"]
        t = self.tasks[tid]
        if sub not in self.agents:
            raise Reject("unauthorised", f"{sub} does not hold the Agent role")
        if not t["open"]:
            raise Reject("require", "task is closed")
        if sub == t["poster"]:
            raise Reject("require", "posters cannot bid on their own task")
        if price < MIN_BID or price > t["budget"]:
            raise Reject("require", "bid out of range")
        if t["worker"] is not None and price >= t["price"]:
            raise Reject("require", "not lower than the best bid")

        def apply() -> None:
            t["worker"], t["price"] = sub, price
            self.dirty_task.add(tid)

        return apply

    def on_complete(self, sub, now, args, postings):
        tid, q = args["id"], args["quality"]
        t = self.tasks[tid]
        if sub != t["poster"]:
            raise Reject("unauthorised", f"{sub} is not Task({tid}).poster")
        if not t["open"]:
            raise Reject("require", "task is closed")
        if t["worker"] is None:
            raise Reject("require", "no bids yet")
        bal = self.bal
        esc = "escrow:Task:" + tid + ":Credit"
        price = t["price"]
        cut = price * FEE_NUM // FEE_DEN
        held = bal.get(esc, 0)
        if held < price:
            raise Reject("insufficient_funds", f"release: {esc} holds too little")
        if price - cut:
            postings.append([esc, "party:" + t["worker"] + ":Credit", "Credit", price - cut,
                             "release"])
        if cut:
            postings.append([esc, "pool:commons", "Credit", cut, "release"])
        rest = held - price
        if rest:
            postings.append([esc, "party:" + t["poster"] + ":Credit", "Credit", rest, "refund"])
        rep = q * REP_PER_GRADE
        if -bal.get("supply:Reputation", 0) + rep > REP_CAP:
            raise Reject("cap_exceeded", "minting would exceed the cap of Reputation")
        if rep:
            postings.append(["supply:Reputation", "party:" + t["worker"] + ":Reputation",
                             "Reputation", rep, "mint"])

        def apply() -> None:
            t["open"] = False
            self.dirty_task.add(tid)

        return apply

    def on_epoch_end(self, sub, now, args, postings):
        if sub != "clock":
            raise Reject("unauthorised", "epoch_end may only be submitted by the clock")
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
            left = pot - sum(shares)
            for i in sorted(range(len(agents)), key=lambda i: (-rems[i], i))[:left]:
                shares[i] += 1
            for a, s in zip(agents, shares):
                if s:
                    postings.append(["pool:commons", "party:" + a + ":Credit", "Credit", s,
                                     "split"])
        for acc in sorted("party:" + a + ":Reputation" for a in agents):  # every holder
            cut = bal.get(acc, 0) // 10
            if cut:
                postings.append([acc, "supply:Reputation", "Reputation", cut, "decay"])
        return _noop


def _asset(acc: str) -> str:
    return "Credit" if acc.startswith("pool:") else acc[acc.rindex(":") + 1 :]


# the runtime's canonical JSON: sorted keys, no spaces, UTF-8 -- written by msgspec, as the
# runtime writes it (the standard library's C encoder gives the same text, ~2x slower)
_encode = msgspec.json.Encoder(order="sorted").encode


def _canonical(v: object) -> str:
    return _encode(v).decode()


def _noop() -> None:
    pass


class SqliteGig(PlainGig):
    """The hand-written version persisting to sqlite3 with the same batching, pragmas and
    stored guarantees as the runtime's SQLite ledger (``runtime/sqlite_store.py``).

    One transaction per ``batch`` events writes: the journal rows (seq, event id
    (unique: the applied ids), chain hash) and the entries' text DEFLATE-compressed
    in chunks of up to 32 consecutive entries (one stream per chunk, so a reader
    decompresses at most 32 entries to show one); the changed state rows
    (balances, tasks as their field values, role members, the clock); the
    per-account index (which blocks of 1,024 entries touch each account, for
    ``history --account``); and a checkpoint row (seq, head, and a digest of
    every state row kept up to date from the rows each commit replaces, which
    is how a reopened ledger notices an edited row).  Reopening is not
    implemented (the benchmark never reopens).  What differs by design: the
    runtime keeps the chain hash only every 32 entries, and its chunks (one
    raw DEFLATE stream per 32-entry anchor block, ledger schema 7: level 3,
    primed with a dictionary of the policy's names) live in the first entry's
    journal row (a chunk the next commit continues is rewritten); this version
    keeps every hash and its chunks (zlib level 6, no dictionary) in a table of
    their own.  Both keep the whole entry texts.  The runtime's writer
    also pages its state from the file once a table passes 32,768 entries
    (``runtime/paged.py``); at the default sizes (100,000 events) none does."""

    def __init__(self, path: str, batch: int, genesis: str):
        super().__init__(genesis)
        self.batch = batch
        self.pending: list[tuple[int, str, str, str]] = []  # (seq, id, entry, hash)
        self.touched: set[tuple[int, int]] = set()  # (account tag, block)
        self.digest = 0
        self.nrows = 0
        self.members_done: set[str] = set()
        self.conn = sqlite3.connect(path, isolation_level=None)
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute("PRAGMA synchronous=FULL")
        self.conn.executescript("""
            CREATE TABLE journal (seq INTEGER PRIMARY KEY, event_id TEXT NOT NULL UNIQUE,
                                  hash BLOB NOT NULL);
            CREATE TABLE chunk (first INTEGER PRIMARY KEY, entries BLOB NOT NULL);
            CREATE TABLE state (kind TEXT, key TEXT, value TEXT, PRIMARY KEY (kind, key))
                WITHOUT ROWID;
            CREATE TABLE account_block (account INTEGER, block INTEGER,
                                        PRIMARY KEY (account, block)) WITHOUT ROWID;
            CREATE TABLE checkpoint (id INTEGER PRIMARY KEY CHECK (id = 1), seq INTEGER,
                                     head TEXT, digest TEXT, rows INTEGER);
        """)

    def _keep(self, eid: str, entry: str, postings: list) -> None:
        self.pending.append((self.seq, eid, entry, self.head))
        if postings:
            blk = self.seq >> 10
            for p in postings:
                self.touched.add((zlib.crc32(p[0].encode()) & 0x7FFFFFFF, blk))
                self.touched.add((zlib.crc32(p[1].encode()) & 0x7FFFFFFF, blk))
        if len(self.pending) >= self.batch:
            self.flush()

    def _entry(self, seq: int) -> tuple[str, str]:
        for s, _eid, entry, h in self.pending:
            if s == seq:
                return entry, h
        first, blob = self.conn.execute(
            "SELECT first, entries FROM chunk WHERE first <= ? ORDER BY first DESC LIMIT 1",
            (seq,)).fetchone()
        (h,) = self.conn.execute("SELECT hash FROM journal WHERE seq = ?", (seq,)).fetchone()
        return zlib.decompress(blob).decode().split("\n")[seq - first], h.hex()

    def _digest(self, rows) -> tuple[int, int]:
        total = n = 0
        sha, from_bytes = hashlib.sha256, int.from_bytes
        for kind, key, value in rows:
            total += from_bytes(sha(f"{len(kind)}:{kind}{len(key)}:{key}{value}".encode())
                                .digest(), "big")
            n += 1
        return total, n

    def flush(self) -> None:
        if not self.pending:
            return
        c = self.conn
        pending = self.pending
        rows = [("balance", a, str(self.bal[a])) for a in self.dirty_acc]
        for tid in self.dirty_task:
            t = self.tasks[tid]
            rows.append(("record", tid, json.dumps(
                [t["poster"], t["budget"], t["worker"], t["price"], t["open"], t["deadline"]])))
        members = [("Agent", a) for a in self.agents - self.members_done] + [
            ("Gateway", g) for g in self.gateways - self.members_done]
        rows += [("role", json.dumps(m), "{}") for m in members]
        rows.append(("meta", "time", str(self.clock)))
        c.execute("BEGIN IMMEDIATE")
        old = c.execute(
            "SELECT kind, key, value FROM state WHERE (kind, key) IN (SELECT "
            "json_extract(value, '$[0]'), json_extract(value, '$[1]') FROM json_each(?))",
            (json.dumps([r[:2] for r in rows]),)).fetchall()
        d_old, n_old = self._digest(old)
        d_new, n_new = self._digest(rows)
        self.digest = (self.digest - d_old + d_new) % (1 << 256)
        self.nrows += n_new - n_old
        c.executemany("INSERT INTO journal VALUES (?, ?, ?)",
                      [(s, eid, bytes.fromhex(h)) for s, eid, _e, h in pending])
        chunks = []
        i = 0
        while i < len(pending):  # chunks end at every 32nd entry
            j = i + 1
            while j < len(pending) and pending[j][0] % 32 != 0:
                j += 1
            text = "\n".join(p[2] for p in pending[i:j])
            chunks.append((pending[i][0], zlib.compress(text.encode(), 6)))
            i = j
        c.executemany("INSERT INTO chunk VALUES (?, ?)", chunks)
        c.executemany("INSERT OR REPLACE INTO state VALUES (?, ?, ?)", rows)
        c.executemany("INSERT OR IGNORE INTO account_block VALUES (?, ?)", self.touched)
        c.execute("INSERT OR REPLACE INTO checkpoint VALUES (1, ?, ?, ?, ?)",
                  (self.seq, self.head, f"{self.digest:064x}", self.nrows))
        c.execute("COMMIT")
        self.members_done.update(m[1] for m in members)
        pending.clear()
        self.touched.clear()
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


def _child(args: list[str], env: dict | None = None) -> tuple[float, float, str]:
    """(wall s, CPU s of the child alone (os.wait4), stdout) of one process."""
    t0 = time.perf_counter()
    p = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, cwd=ROOT,
                         env=env)
    out = p.stdout.read().decode()
    _, status, ru = os.wait4(p.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{args[:4]} failed")
    return time.perf_counter() - t0, ru.ru_utime + ru.ru_stime, out


# the lean child imports this file as a module (not run as a script), so that both end-to-end
# children start from cached byte code alike
_LEAN = "import sys; sys.path.insert(0, {!r}); from bench_runtime import _lean_child; " \
        "_lean_child(sys.argv[1])".format(str(Path(__file__).resolve().parent))


def _e2e(policy_path: Path, path: Path, env: dict) -> tuple[tuple, tuple]:
    """One end-to-end round: ((wall, CPU) of the lean reference, (wall, CPU) of charter run),
    after checking that both end with the same balances and applied count."""
    w, c, out = _child([sys.executable, "-c", _LEAN, str(path)], env)
    lean_time, lean = (w, c), json.loads(out)
    w, c, out = _child([sys.executable, "-m", "charter.cli", "run", str(policy_path), str(path),
                        "--memory", "-q", "--json"], env)
    summary = json.loads(out)
    assert summary["balances"] == lean["balances"], "lean reference and charter run disagree"
    assert summary["applied"] == lean["applied"], (summary["applied"], lean["applied"])
    return lean_time, (w, c)


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
    # the end-to-end children start from byte code compiled beforehand, as an installed
    # package and the standard library do (this checkout may run with PYTHONDONTWRITEBYTECODE:
    # then every start compiled ~40 of Charter's modules, ~0.3 s, and the lean reference's
    # script): written to a temporary PYTHONPYCACHEPREFIX by one small warm-up run of each
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = str(Path(tmp.name) / "pyc")
    if e2e_n:
        with open(e2e_file, "w") as fh:
            for e in gig_events(e2e_n, seed=7, agents=agents, epoch=max(e2e_n // 100, 1)):
                fh.write(json.dumps(e) + "\n")
        warm = Path(tmp.name) / "warm-up.jsonl"
        with open(e2e_file) as src:
            warm.write_text("".join(line for _, line in zip(range(1000), src)))
        _e2e(policy_path, warm, env)

    runs: dict[str, list[tuple[float, float]]] = {
        k: [] for k in ("mem", "plain", "sql", "hand", "lean", "run")
    }
    for r in range(rounds):
        rt = open_runtime(policy)
        runs["mem"].append(_time(lambda: _feed(rt.submit, events)))
        plain = PlainGig(rt.genesis)
        runs["plain"].append(_time(lambda: _feed(plain.submit, events)))
        got = {k: v for k, v in sorted(plain.bal.items()) if v}
        assert got == rt.balances(), "plain-Python reference and Charter disagree"
        assert plain.seq == rt.seq, (plain.seq, rt.seq)
        # the same journal, byte for byte: the same entries (timers, postings) and chain
        assert plain.head == rt.journal_hash, "the reference's journal differs from Charter's"
        with tempfile.TemporaryDirectory() as d:
            hand = SqliteGig(str(Path(d) / "hand.sqlite"), batch, rt.genesis)
            runs["hand"].append(_time(lambda: (_feed(hand.submit, events), hand.flush())))
            rts = open_runtime(policy, str(Path(d) / "charter.sqlite"), batch=batch)
            runs["sql"].append(_time(lambda: (_feed(rts.submit, events), rts.flush())))
            assert rts.journal_hash == rt.journal_hash == hand.head
            rts.close()
            hand.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            hand.conn.close()
            size = {k: sum(f.stat().st_size for f in Path(d).glob(k + ".sqlite*"))
                    for k in ("hand", "charter")}
        if e2e_n:
            lean_time, run_time = _e2e(policy_path, e2e_file, env)
            runs["lean"].append(lean_time)
            runs["run"].append(run_time)
    tmp.cleanup()
    wall = {k: statistics.median(w for w, _ in v) for k, v in runs.items() if v}
    cpu = {k: statistics.median(c for _, c in v) for k, v in runs.items() if v}

    def row(name: str, key: str, size: int) -> None:
        print(
            f"  {name:<34} wall {wall[key]:6.2f} s {size / wall[key]:9,.0f} ev/s   "
            f"cpu {cpu[key]:6.2f} s {size / cpu[key]:9,.0f} ev/s"
        )

    print(f"applied {rt.seq} journal entries in process; balances equal in every implementation, "
          "journals byte-identical (chain heads equal) in all but the lean one")
    print(f"SQLite file: charter {size['charter'] / rt.seq:.0f} B/entry, hand-written "
          f"{size['hand'] / rt.seq:.0f} B/entry")
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
