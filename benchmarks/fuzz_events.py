"""Event fuzzer: hostile and well-formed events against every stdlib policy and example.

    PYTHONPATH=. python benchmarks/fuzz_events.py [--events N] [--seed S] [--only NAME ...]
                                                  [--examples] [--no-compare] [--episode N]

For each stdlib policy (run with the parameters and seed events of its worked
example in ``examples/``; ``--examples`` adds the example policies themselves)
it submits N events (default 100,000) in episodes of ``--episode`` events on a
fresh in-memory runtime: the example's own events, random well-typed events
for every handler (parties and record keys taken from the live state, time
moving by seconds to months), those events mutated with hostile values of
every JSON type in every field (null, booleans, huge and negative integers,
10,000-digit numbers, floats, NaN/Infinity, lone surrogates, 1 MB strings,
deeply nested lists and objects, far-future times), the same event again and
other events reusing applied ids.

Every event is checked: no exception may escape ``submit``; a rejected event
(and a duplicate) must leave a canonical dump of the runtime - every state
row, clock, sequence number, journal head, journal length, applied ids,
parties - byte-identical; at the end of every episode the ledger must audit
clean and replay to the same state.  Unless ``--no-compare``, every event is
also submitted to a second runtime on the reference interpreter
(``backend="reference"``, :mod:`charter.runtime.reference`, the oracle the
engine is checked against): receipts (sequence number, journal hash) and
rejections (code and message) must agree event by event, and at the end of
every episode both journals must be byte-identical and both states must
dump identically.  Prints per policy: events,
accepted, duplicates, rejected by code, exceptions, rejected-that-changed-
something, audit failures, backend mismatches; exits 1 if any of the last
four is non-zero.  The first few failures are printed with the event.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
import traceback
from collections import Counter
from pathlib import Path
from typing import Any, Optional

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from charter.compiler import ir  # noqa: E402
from charter.compiler.pipeline import Compilation  # noqa: E402
from charter.runtime.api import open_runtime, replay  # noqa: E402
from charter.runtime.values import canonical  # noqa: E402

STDLIB = ROOT / "stdlib_policies"
EXAMPLES = ROOT / "examples"
DAY = 86_400


# ------------------------------------------------------------------ targets


class Target:
    """A policy to fuzz: its IR, parameter overrides and the example events that seed it."""

    def __init__(self, name: str, policy: ir.Policy, params: dict[str, Any], seeds: list[dict]):
        self.name = name
        self.policy = policy
        self.params = params
        self.seeds = seeds
        self.events = [h for h in policy.handlers if h.kind == "event"]
        parties = {"ann", "bob", "clock", "stranger", "@ann", "operator", "gateway"}
        texts = {"t1", "x", "s1", "a", ""}
        for e in seeds:
            if isinstance(e.get("submitter"), str):
                parties.add(e["submitter"])
            for v in (e.get("args") or {}).values():
                if isinstance(v, str) and len(v) < 40:
                    texts.add(v)
        for p in policy.params:
            if isinstance(p.type, ir.TParty) and isinstance(p.default, str):
                parties.add(p.default)
        self.parties = sorted(parties)
        self.texts = sorted(texts)

    def runtime(self, backend: str = "python") -> Any:
        return open_runtime(self.policy, params=self.params or None, backend=backend)


def _load(path: Path) -> ir.Policy:
    return Compilation.from_path(str(path)).ir


def _seed_events(example: Path) -> list[dict]:
    f = example / "events.jsonl"
    if not f.is_file():
        return []
    return [json.loads(line) for line in f.read_text().splitlines() if line.strip()]


def targets(include_examples: bool = False, only: Optional[list[str]] = None) -> list[Target]:
    """Every stdlib policy (with its example's parameters and events) [and every example]."""
    out = []
    for path in sorted(STDLIB.glob("*.charter")):
        name = path.stem
        if only and name not in only:
            continue
        pol = _load(path)
        params: dict[str, Any] = {}
        seeds: list[dict] = []
        ex = EXAMPLES / name
        if (ex / "policy.charter").is_file():
            expol = _load(ex / "policy.charter")
            own = {p.name for p in pol.params}
            prefix = _module_prefix(expol, pol)
            for p in expol.params:
                bare = p.name[len(prefix) :] if prefix and p.name.startswith(prefix) else p.name
                if bare in own and p.default is not None:
                    params[bare] = p.default
            for e in _seed_events(ex):
                e = dict(e)
                if prefix and isinstance(e.get("type"), str) and e["type"].startswith(prefix):
                    e["type"] = e["type"][len(prefix) :]
                seeds.append(e)
            params = _valid_params(pol, params)
        out.append(Target(name, pol, params, seeds))
    if include_examples:
        for ex in sorted(EXAMPLES.iterdir()):
            if (ex / "policy.charter").is_file() and (not only or f"example:{ex.name}" in only):
                out.append(Target(f"example:{ex.name}", _load(ex / "policy.charter"), {},
                                  _seed_events(ex)))  # fmt: skip
    return out


def _module_prefix(expol: ir.Policy, pol: ir.Policy) -> str:
    names = {h.name for h in pol.handlers}
    for h in expol.handlers:
        if "." in h.name and h.name.split(".", 1)[1] in names:
            return h.name.split(".", 1)[0] + "."
    return ""


def _valid_params(pol: ir.Policy, params: dict[str, Any]) -> dict[str, Any]:
    from charter.runtime.api import ParamError, resolve_params

    ok = {}
    for k, v in params.items():
        try:
            resolve_params(pol, {k: v})
        except ParamError:
            continue
        ok[k] = v
    return ok


# ------------------------------------------------------------------ hostile values


def _deep(depth: int, kind: str) -> Any:
    v: Any = 1
    for _ in range(depth):
        v = [v] if kind == "list" else {"a": v}
    return v


HOSTILE_FIXED: list[Any] = [
    None, True, False, 0, -1, 1, 2**63 - 1, 2**63, -(2**63), 10**30, -(10**30), 10**4299,
    10**10000, 1.5, -0.0, 1e308, float("nan"), float("inf"), float("-inf"), "", " ", "\ud800",
    "a\udfffb", "\x00", "ann\n", "@", "@@ann", "@ann", "clock", "@clock", "9" * 10_000,
    "9" * 4_301, "1e5", "12.345", " 12 ", "-5", "NaN", "Infinity", "1/0", "0/0", "5%", "101%",
    "e\u0301", "\u00e9", "x" * 300, [], [None], [1, "a"], {}, {"num": 1, "den": 0},
    {"num": True, "den": 1}, {"num": 10**40, "den": 3}, {"a": []}, {"__proto__": 1},
]  # fmt: skip


def hostile(rng: random.Random) -> Any:
    r = rng.random()
    if r < 0.70:
        return rng.choice(HOSTILE_FIXED)
    if r < 0.80:
        return _deep(rng.choice([10, 100, 1000, 5000]), rng.choice(["list", "dict"]))
    if r < 0.85:
        return "x" * 1_000_000  # a 1 MB string
    if r < 0.90:
        return rng.randint(-(2**70), 2**70)
    if r < 0.95:
        return "".join(chr(rng.randint(0, 0x10FFFF)) for _ in range(rng.randint(1, 8)))
    return [hostile(rng) for _ in range(rng.randint(0, 3))]


# ------------------------------------------------------------------ well-typed values


def typed_value(t: ir.Type, rng: random.Random, tg: Target, rt: Any, now: int) -> Any:
    st = rt.state
    if isinstance(t, ir.TOptional):
        return None if rng.random() < 0.3 else typed_value(t.inner, rng, tg, rt, now)
    if isinstance(t, ir.TInt):
        lo = t.lo if t.lo is not None else -5
        hi = t.hi if t.hi is not None else 1000
        if rng.random() < 0.8 and lo <= hi:
            return rng.randint(lo, min(hi, lo + 1000))
        return rng.randint(-10, 10**6)
    if isinstance(t, ir.TAmount):
        v = rng.choice([0, 1, 50, 100, 500, 1000, 2500, 10_000, 100_000, 10**6, -1])
        return v if rng.random() < 0.7 else f"{v / 100:.2f}"
    if isinstance(t, ir.TBool):
        return rng.random() < 0.5
    if isinstance(t, ir.TRatio):
        return rng.choice(["5%", "1/3", "0", "100%", {"num": 1, "den": 4}, "25 bps", 1])
    if isinstance(t, ir.TTime):
        return now + rng.choice([0, 60, 3600, DAY, 30 * DAY])
    if isinstance(t, ir.TDuration):
        return rng.choice([0, 1, 60, 3600, DAY, 7 * DAY, 30 * DAY])
    if isinstance(t, ir.TParty):
        if t.role is not None and st.roles.get(t.role) and rng.random() < 0.8:
            return rng.choice(sorted(st.roles[t.role]))
        return rng.choice(tg.parties)
    if isinstance(t, ir.TRecord):
        recs = st.records.get(t.record)
        if recs and rng.random() < 0.8:
            return rng.choice(sorted(recs))
        return rng.choice(tg.texts)
    if isinstance(t, ir.TText):
        return rng.choice(tg.texts) if rng.random() < 0.7 else f"k{rng.randint(0, 50)}"
    if isinstance(t, ir.TList):
        return [typed_value(t.inner, rng, tg, rt, now) for _ in range(rng.randint(0, 4))]
    return None


def submitter_for(h: ir.Handler, rng: random.Random, tg: Target, rt: Any) -> str:
    a = h.auth
    roles = rt.state.roles
    if isinstance(a, ir.AuthRole) and a.role is not None and roles.get(a.role):
        if rng.random() < 0.8:
            return rng.choice(sorted(roles[a.role]))
    if isinstance(a, ir.AuthClock) and rng.random() < 0.8:
        return "clock"
    members = sorted({p for r in roles.values() for p in r})
    if members and rng.random() < 0.5:
        return rng.choice(members)
    return rng.choice(tg.parties)


# ------------------------------------------------------------------ the stream


class Stream:
    """Events for one episode: seeds, well-typed, mutated, duplicates, time attacks."""

    def __init__(self, tg: Target, rng: random.Random, episode: int):
        self.tg = tg
        self.rng = rng
        self.ep = episode
        self.n = 0
        self.seed_i = 0
        self.now = next((e["time"] for e in tg.seeds if isinstance(e.get("time"), int)), 1_000)
        self.sent: list[dict] = []

    def _id(self) -> str:
        self.n += 1
        return f"f{self.ep}-{self.n}"

    def _advance(self) -> int:
        r = self.rng.random()
        # mostly seconds to hours; days and months now and then (timers fall due)
        step = self.rng.choice([0, 0, 1, 60, 600, 3600]) if r < 0.9 else (
            self.rng.choice([DAY, 3 * DAY]) if r < 0.99 else 31 * DAY
        )
        self.now += step
        return self.now

    def well_formed(self, rt: Any) -> dict:
        rng, tg = self.rng, self.tg
        # an episode starts by mostly following its example, so there is state to work on
        warm = self.seed_i < len(tg.seeds) and rng.random() < 0.8
        if tg.seeds and (warm or rng.random() < 0.4):
            e = dict(tg.seeds[self.seed_i % len(tg.seeds)])
            self.seed_i += 1
            e["id"] = self._id()
            e["time"] = self._advance()
            if isinstance(e.get("args"), dict):
                e["args"] = dict(e["args"])
            return e
        if not tg.events or rng.random() < 0.1:
            # the clock's tick: what a live deployment submits now and then
            return {"id": self._id(), "type": "@tick", "submitter": "clock",
                    "time": self._advance(), "args": {}}  # fmt: skip
        h = rng.choice(tg.events)
        now = self._advance()
        args = {f.name: typed_value(f.type, rng, tg, rt, now) for f in h.params}
        return {"id": self._id(), "type": h.name, "submitter": submitter_for(h, rng, tg, rt),
                "time": now, "args": args}  # fmt: skip

    def mutate(self, e: dict) -> Any:
        rng = self.rng
        e = dict(e)
        e["args"] = dict(e["args"]) if isinstance(e.get("args"), dict) else e.get("args")
        where = rng.random()
        if where < 0.45 and isinstance(e.get("args"), dict) and e["args"]:
            e["args"][rng.choice(sorted(e["args"]))] = hostile(rng)
        elif where < 0.55 and isinstance(e.get("args"), dict):
            e["args"][rng.choice(["extra", "\ud800", "", "x" * 300])] = hostile(rng)
        elif where < 0.85:
            e[rng.choice(["id", "type", "submitter", "time", "args"])] = hostile(rng)
        elif where < 0.92:
            del e[rng.choice(sorted(e))]
        elif where < 0.97:
            e[rng.choice(["extra", "ID", ""])] = hostile(rng)
        else:
            return hostile(rng)  # not even an object
        return e

    def time_attack(self, e: dict) -> dict:
        e = dict(e)
        e["time"] = self.rng.choice(
            [4_102_444_800, 2**62, 2**63 - 1, 2**63, self.now - DAY, 0, -1]
        )
        e["submitter"] = self.rng.choice(["stranger", e.get("submitter", "x")])
        return e

    def next(self, rt: Any) -> Any:
        r = self.rng.random()
        if r < 0.04 and self.sent:
            return dict(self.rng.choice(self.sent))  # the same event again
        if r < 0.07 and self.sent:
            other = self.well_formed(rt)
            other["id"] = self.rng.choice(self.sent)["id"]  # another event, an applied id
            return other
        e = self.well_formed(rt)
        if r < 0.10:
            return self.time_attack(e)
        if r < 0.40:
            return self.mutate(e)
        self.sent.append(e)
        if len(self.sent) > 200:
            del self.sent[:100]
        return e


# ------------------------------------------------------------------ checking


def dump(rt: Any) -> str:
    """A canonical dump of everything a rejected event must leave untouched."""
    return canonical(
        {
            "rows": [list(r) for r in rt.state.rows()],
            "clock": rt.clock,
            "seq": rt.seq,
            "head": rt.head,
            "journal": sum(1 for _ in rt.store.journal()) if rt.seq < 50 else rt.seq,
            "applied": len(rt.applied_ids),
            "parties": len(rt.state.parties),
            "frames": len(rt.state.frames),
        }
    )


class Counts:
    def __init__(self, name: str):
        self.name = name
        self.events = self.accepted = self.duplicates = 0
        self.rejected: Counter[str] = Counter()
        self.exceptions = self.changed = self.audit_failures = self.mismatches = 0
        self.examples: list[str] = []
        self.seconds = 0.0
        self.stopped = False  # by --max-seconds before all its events ran

    @property
    def failures(self) -> int:
        return self.exceptions + self.changed + self.audit_failures + self.mismatches

    def note(self, what: str, event: Any, detail: str = "") -> None:
        if len(self.examples) < 5:
            text = repr(event)
            self.examples.append(f"{what}: {text[:300]}{'...' if len(text) > 300 else ''} {detail}")


def _outcome_key(out: Any) -> tuple:
    if out.applied:
        return (True, out.duplicate, out.tx, out.journal_hash)
    return (False, out.code, out.message)


def same_ledger(rt: Any, ref: Any) -> Optional[str]:
    """None when the two runtimes hold byte-identical journals and states, else what differs."""
    a = [tuple(r) for r in rt.store.journal()]
    b = [tuple(r) for r in ref.store.journal()]
    if a != b:
        i = next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))
        return f"journals differ at entry {i + 1} (of {len(a)} / {len(b)})"
    if dump(rt) != dump(ref):
        return "states differ"
    return None


def fuzz(tg: Target, events: int, seed: int, episode: int = 1000, compare: bool = True,
         counts: Optional[Counts] = None, max_seconds: Optional[float] = None) -> Counts:  # fmt: skip
    """Run ``events`` fuzzed events against ``tg`` (stopping after the episode that passes
    ``max_seconds``, if given); returns the counts."""
    c = counts or Counts(tg.name)
    rng = random.Random(f"{seed}:{tg.name}")
    started = time.perf_counter()
    ep = 0
    while c.events < events:
        if max_seconds is not None and time.perf_counter() - started > max_seconds:
            c.stopped = True
            break
        ep += 1
        rt = tg.runtime()
        ref = tg.runtime("reference") if compare else None
        stream = Stream(tg, rng, ep)
        before = dump(rt)
        for _ in range(min(episode, events - c.events)):
            ev = stream.next(rt)
            c.events += 1
            try:
                out = rt.submit(ev)
            except Exception as exc:  # noqa: BLE001 - that is what we count
                c.exceptions += 1
                c.note("exception", ev, f"{type(exc).__name__}: {exc}"[:300] + "\n"
                       + "".join(traceback.format_exc(limit=-3)))  # fmt: skip
                break  # the runtime may be in any state now: next episode
            if ref is not None:
                try:
                    out2 = ref.submit(ev)
                except Exception as exc:  # noqa: BLE001
                    out2 = None
                    c.exceptions += 1
                    c.note("exception (reference interpreter)", ev, f"{type(exc).__name__}: {exc}")
                if out2 is not None and _outcome_key(out) != _outcome_key(out2):
                    c.mismatches += 1
                    c.note("engine and reference disagree", ev, f"{out} vs {out2}")
                    ref = None
            if out.applied and not out.duplicate:
                c.accepted += 1
                before = dump(rt)
                if rt.clock is not None and rt.clock > stream.now:
                    stream.now = rt.clock  # a trusted far-future time: follow it
                continue
            if out.applied:
                c.duplicates += 1
            else:
                c.rejected[out.code] += 1
            after = dump(rt)
            if after != before:
                c.changed += 1
                c.note(f"{'duplicate' if out.applied else out.code} changed the runtime", ev)
                before = after
            if not out.applied and out.code == "timer_overflow":
                break  # over 10,000 firings due: every later event would redo them; new episode
        if ref is not None:
            diff = same_ledger(rt, ref)
            if diff is not None:
                c.mismatches += 1
                c.note("engine and reference ledgers differ", None, diff)
        audit = rt.audit()
        rep = replay(rt)
        if not audit.ok or not rep.ok:
            c.audit_failures += 1
            c.note("audit failed", None, "; ".join((audit.problems + rep.problems)[:3]))
    c.seconds += time.perf_counter() - started
    return c


def report(all_counts: list[Counts], compared: bool = True) -> None:
    codes = sorted({k for c in all_counts for k in c.rejected})
    if not compared:
        # The backend column counts nothing under --no-compare; say so rather than print 0s
        # that read as "engine and reference agreed".
        print("(--no-compare: the reference interpreter was not run; the backend column is empty)")
    print(f"{'policy':28} {'events':>8} {'accepted':>8} {'dup':>5} {'rejected':>8} "
          f"{'exc':>4} {'changed':>7} {'audit':>5} {'backend':>7} {'ev/s':>6}")  # fmt: skip
    tot = Counts("total")
    for c in all_counts:
        print(f"{c.name:28} {c.events:8d} {c.accepted:8d} {c.duplicates:5d} "
              f"{sum(c.rejected.values()):8d} {c.exceptions:4d} {c.changed:7d} "
              f"{c.audit_failures:5d} {c.mismatches:7d} {c.events / max(c.seconds, 1e-9):6.0f}")  # fmt: skip
        tot.events += c.events
        tot.accepted += c.accepted
        tot.duplicates += c.duplicates
        tot.rejected.update(c.rejected)
        tot.exceptions += c.exceptions
        tot.changed += c.changed
        tot.audit_failures += c.audit_failures
        tot.mismatches += c.mismatches
    print(f"{'TOTAL':28} {tot.events:8d} {tot.accepted:8d} {tot.duplicates:5d} "
          f"{sum(tot.rejected.values()):8d} {tot.exceptions:4d} {tot.changed:7d} "
          f"{tot.audit_failures:5d} {tot.mismatches:7d}")  # fmt: skip
    print("rejected by code: " + ", ".join(f"{k} {tot.rejected[k]}" for k in codes))
    for c in all_counts:
        for ex in c.examples:
            print(f"  [{c.name}] {ex}")


def main(argv: Optional[list[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--events", type=int, default=100_000, help="events per policy")
    ap.add_argument("--seed", type=int, default=13)
    ap.add_argument("--episode", type=int, default=1000, help="events per fresh runtime")
    ap.add_argument("--only", nargs="*", help="policy names (stdlib stems, example:<dir>)")
    ap.add_argument("--examples", action="store_true", help="also the example policies")
    ap.add_argument("--max-seconds", type=float, default=None,
                    help="stop a policy after the episode that passes this many seconds "
                    "(its exact counts are printed, marked 'stopped early')")
    ap.add_argument("--no-compare", action="store_true",
                    help="skip the reference interpreter (engine only)")
    a = ap.parse_args(argv)
    all_counts = []
    for tg in targets(a.examples, a.only):
        c = fuzz(tg, a.events, a.seed, a.episode, not a.no_compare, max_seconds=a.max_seconds)
        all_counts.append(c)
        print(f"{tg.name}: {c.events} events, {c.accepted} accepted, {c.duplicates} duplicates, "
              f"{sum(c.rejected.values())} rejected ({dict(c.rejected.most_common())}), "
              f"{c.exceptions} exceptions, {c.changed} rejected-that-changed-something, "
              f"{c.audit_failures} audit failures, "
              f"{c.mismatches if not a.no_compare else 'not compared:'} engine/reference mismatches "
              f"({c.seconds:.0f} s{', stopped early by --max-seconds' if c.stopped else ''})",
              flush=True)  # fmt: skip
        for ex in c.examples:
            print(f"  {ex}", flush=True)
    report(all_counts, compared=not a.no_compare)
    return 1 if any(c.failures for c in all_counts) else 0


if __name__ == "__main__":
    sys.exit(main())
