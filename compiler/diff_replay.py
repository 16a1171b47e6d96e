"""Replaying a difference `charter diff` found: the same input on both versions, on the runtime.

Z3's model of a difference is a pre-state (role members and attributes, balances, records
and their escrows), parameters and one event.  :func:`replay` builds that state in two
fresh in-memory runtimes, one per version, submits the event to each and compares what
they did: applied or rejected, every balance, every record, every role member.  A
difference is shown only when the runtime reproduces it; one that does not is a gap in
the encoding and is reported as such, never as a difference.

A timed handler cannot be submitted: an ``every`` handler is fired by a clock tick one
period after an anchoring tick, a deadline handler by a tick at the model's time.
"""
from __future__ import annotations

from fractions import Fraction
from typing import Any, Optional

import attrs
import z3

from . import display, ir


@attrs.define
class Side:
    """What one version's runtime did with the input."""

    applied: bool
    outcome: str  # "applied" or "rejected: code: message"
    balances: dict
    state: dict  # records, roles, rights: what decides later events


@attrs.define
class Replay:
    reproduced: bool
    old: Optional[Side]
    new: Optional[Side]
    detail: str  # what differs (reproduced) or why the input could not be replayed
    differences: list = attrs.Factory(list)  # "pool:commons: 1.00 Credit | 2.00 Credit"
    setup: list = attrs.Factory(list)  # the input, when a search found it
    event: dict = attrs.Factory(dict)
    params: dict = attrs.Factory(dict)


def _native(v: Any, t: Any) -> Any:
    """A JSON-plain model value (``naming._plain``) as the runtime's native value."""
    if v is None:
        return None
    if isinstance(t, ir.TOptional):
        return _native(v, t.inner)
    if isinstance(t, ir.TRatio):
        return Fraction(v["num"], v["den"]) if isinstance(v, dict) else Fraction(v)
    if isinstance(t, ir.TList):
        return tuple(_native(x, t.inner) for x in v)
    return v


class SameNames:
    """The verifier's names, with one name per value across parties and keys.

    The encoding gives a party and a record key the same Int when a record is keyed by a
    party (``Route(twin)``); the runtime keys that record by the party's id, so the replay
    must name both alike."""

    def __init__(self, namer: Any, ints: set):
        self.namer = namer
        self.parties = {v for v, cat in ints if cat == "party"}

    def name(self, v: int, cat: str = "party") -> str:
        if cat != "party" and v in self.parties:
            return self.namer.name(v, "party")
        return self.namer.name(v, cat)


def event_from_model(m: Any, model: z3.ModelRef, policy: ir.Policy, namer: Any) -> dict:
    """The event of the model (for a timed handler: its time only)."""
    from .verify.naming import _plain
    from .verify.solver import _eval

    h = m.handler
    args = {f.name: _plain(model, m.args[f.name], f.type, namer, policy) for f in h.params}
    submitter = "clock" if isinstance(h.auth, ir.AuthClock) else \
        namer.name(_eval(model, m.submitter), "party")
    return {"id": "diff-1", "type": h.name, "submitter": submitter,
            "time": _eval(model, m.now), "args": args}


class _Unfaithful(Exception):
    """The model's state cannot be built in the runtime (the replay would prove nothing)."""


def setup_from_model(m: Any, model: z3.ModelRef, policy: ir.Policy, namer: Any) -> list:
    """The model's pre-state as runtime setup steps ``(kind, ...)``, shared by both versions."""
    from .verify.naming import _plain, collect_ints
    from .verify.solver import _eval
    from .verify.terms import Opt

    from charter.runtime.ledger import escrow_account, party_account, pool_account, \
        stake_account

    steps: list = []
    parties = sorted({v for v, cat in collect_ints(m, model) if cat == "party"})
    for role in policy.roles:
        arr = m.pre.get(f"role!{role.name}")
        for v in parties:
            if _eval(model, z3.Select(arr, v)) is True:
                attrs_: dict = {}
                for a in role.attrs:
                    term = z3.Select(m.pre.get(f"attr!{role.name}!{a.name}"), v)
                    attrs_[a.name] = _native(_plain(model, term, a.type, namer, policy), a.type)
                steps.append(("role", role.name, namer.name(v, "party"), attrs_))
    seen = set()
    extra_records: dict[str, set] = {}
    for comp, idx in m.encoder.balance_reads:
        iv = _eval(model, idx) if idx is not None else None
        if (comp, iv) in seen:
            continue
        seen.add((comp, iv))
        term = m.pre.get(comp)
        amount = _eval(model, term if idx is None else z3.Select(term, idx))
        kind, *rest = comp.split("!")
        if kind == "supply" or not amount:
            continue
        if not isinstance(amount, int) or amount < 0:
            raise _Unfaithful(f"a negative pre-state balance {comp} = {amount}")
        if kind == "bal":
            acc, asset = party_account(namer.name(iv, "party"), rest[0]), rest[0]
        elif kind == "stake":
            acc, asset = stake_account(namer.name(iv, "party"), rest[0]), rest[0]
        elif kind == "pool":
            acc, asset = pool_account(rest[0]), policy.pool(rest[0]).asset
        elif kind == "escrow":
            # with its record, below; a record that only receives value must exist too
            extra_records.setdefault(rest[0], set()).add(iv)
            continue
        else:
            raise _Unfaithful(f"a pre-state component the replay cannot build: {comp}")
        steps.append(("funds", acc, asset, amount))
    wanted: dict[str, list] = {r: list(keys) for r, keys in m.touched.items()}
    for r, ivs in extra_records.items():
        wanted.setdefault(r, []).extend(z3.IntVal(v) for v in sorted(ivs))
    made = set()
    for rec_name, keys in wanted.items():
        try:
            rec = policy.record(rec_name)
        except StopIteration:
            continue
        for k in keys:
            kv = _eval(model, k)
            if (rec_name, kv) in made:
                continue
            made.add((rec_name, kv))
            live = _eval(model, z3.Select(m.pre.get(f"live!{rec.name}"), k))
            if not live and kv not in extra_records.get(rec_name, ()):
                continue
            key = namer.name(kv, "key")
            values: dict = {}
            for f in rec.fields:
                term: Any = z3.Select(m.pre.get(f"fld!{rec.name}!{f.name}"), k)
                if isinstance(f.type, ir.TOptional):
                    term = Opt(z3.Select(m.pre.get(f"some!{rec.name}!{f.name}"), k), term)
                values[f.name] = _native(_plain(model, term, f.type, namer, policy), f.type)
            steps.append(("record", rec.name, key, values))
            if rec.holds:
                bal = _eval(model, z3.Select(m.pre.get(f"escrow!{rec.name}!{rec.holds}"), k))
                if isinstance(bal, int) and bal < 0:
                    raise _Unfaithful(f"a negative escrow of {rec.name}({key})")
                if bal:
                    steps.append(("funds", escrow_account(rec.name, key, rec.holds), rec.holds,
                                  bal))
    return sorted(set((s[0], s[1], s[2], _freeze(s[3])) for s in steps), key=_order)


def _freeze(v: Any) -> Any:
    return tuple(sorted(v.items())) if isinstance(v, dict) else v


def _order(step: tuple) -> tuple:
    # roles first (a record field may name a member), then records, then funds
    return ({"role": 0, "record": 1, "funds": 2}[step[0]], str(step[1]), str(step[2]))


def _side(policy: ir.Policy, params: dict, setup: list, handler: ir.Handler, event: dict) -> Side:
    from charter.runtime.engine import TICK, Runtime

    rt = Runtime(policy, params=params)

    deadlines = [(h.name, h.record, h.field) for h in policy.handlers if h.kind == "deadline"]

    def build(st: Any) -> None:
        for kind, a, b, c in setup:
            if kind == "role":
                st.set_role(a, b, dict(c))
            elif kind == "record":
                values = dict(c)
                st.create_record(a, b, values)
                # The encoding runs the handler on exactly this state; a deadline already
                # passed would fire first at run time.  Only the handler replayed may fire.
                for dh, rec, field in deadlines:
                    if rec == a and dh != handler.name and isinstance(values.get(field), int):
                        st.set_meta(st.fired_key(dh, b), values[field])
            else:
                st.post(f"supply:{b}", a, b, c, "given")

    rt.genesis_apply(build)
    if handler.kind == "event":
        out = rt.submit(event)
    else:
        now = event["time"]
        if handler.kind == "every":
            anchor = now - handler.period if now - handler.period >= 0 else 0
            now = anchor + handler.period
            first = rt.submit({"id": "diff-anchor", "type": TICK, "submitter": "clock",
                               "time": anchor, "args": {}})
            if not first.applied:
                return Side(False, f"rejected: {first.code}: {first.message}", rt.balances(), {})
        out = rt.submit({"id": "diff-1", "type": TICK, "submitter": "clock", "time": now,
                         "args": {}})
        fired = [t for t in getattr(out, "timers", ()) if t.get("handler") == handler.name]
        if out.applied and not fired:
            raise _Unfaithful(f"{handler.name} did not fire at time {now}")
        bad = [t for t in fired if t.get("status") != "applied"]
        if bad:
            return Side(False, f"rejected: {bad[0].get('reason')}", rt.balances(), _state(rt))
    if not out.applied:
        return Side(False, f"rejected: {out.code}: {out.message}", rt.balances(), _state(rt))
    return Side(True, "applied", rt.balances(), _state(rt))


def _state(rt: Any) -> dict:
    st = rt.state
    return {
        "records": {r: {k: dict(v) for k, v in recs.items()} for r, recs in st.records.items()},
        "roles": {r: {p: dict(a) for p, a in ms.items()} for r, ms in st.roles.items()},
        "rights": dict(st.rights),
    }


def replay(old: ir.Policy, new: ir.Policy, name: str, m: Any, mb: Any, model: z3.ModelRef,
           namer: Any) -> Replay:
    """Run the model's input on both versions; ``reproduced`` when they settle differently."""
    from .verify.naming import _plain, collect_ints

    try:
        ints = collect_ints(m, model)
        collect_ints(mb, model, ints)
        namer = SameNames(namer, ints)
        params = {p.name: _plain(model, m.encoder.params[p.name], p.type, namer, old)
                  for p in old.params}
        params.update({p.name: _plain(model, mb.encoder.params[p.name], p.type, namer, new)
                       for p in new.params if p.name not in params})
        event = event_from_model(m, model, old, namer)
        setup = setup_from_model(m, model, old, namer)
        native = {k: _native(v, old.param(k).type) for k, v in params.items()}
        a = _side(old, {k: v for k, v in native.items() if _has_param(old, k)}, setup,
                  old.handler(name), event)
        b = _side(new, {k: v for k, v in native.items() if _has_param(new, k)}, setup,
                  new.handler(name), event)
    except _Unfaithful as exc:
        return Replay(False, None, None, f"the input cannot be replayed: {exc}")
    except Exception as exc:  # noqa: BLE001 - a replay that cannot run confirms nothing
        return Replay(False, None, None, f"the input cannot be replayed: "
                                         f"{type(exc).__name__}: {exc}")
    diffs = compare(a, b, new)
    if not diffs:
        return Replay(False, a, b, "both versions settle this input identically on the runtime")
    return Replay(True, a, b, "; ".join(diffs[:3]), diffs)


def _has_param(policy: ir.Policy, name: str) -> bool:
    return any(p.name == name for p in policy.params)


def compare(a: Side, b: Side, policy: ir.Policy) -> list[str]:
    """What differs between two runs, in words and in the policy's units."""
    if a.applied != b.applied:
        return [f"old: {a.outcome} | new: {b.outcome}"]
    if not a.applied:
        return []  # both rejected: the same (nothing changes either way)
    out = []
    for acc in sorted(set(a.balances) | set(b.balances)):
        x, y = a.balances.get(acc, 0), b.balances.get(acc, 0)
        if x != y:
            asset = _asset_of(acc, policy)
            t = ir.TAmount(asset=asset) if asset else None
            if acc.startswith("supply:"):
                acc, x, y = f"supply of {asset}", -x, -y
            out.append(f"{acc}: {display.value(x, t, policy)} | {display.value(y, t, policy)}")
    for what in ("records", "roles", "rights"):
        if a.state.get(what) != b.state.get(what):
            out.append(f"{what} differ after the event")
    return out


def _asset_of(account: str, policy: ir.Policy) -> Optional[str]:
    parts = account.split(":")
    if parts[0] == "pool":
        try:
            return policy.pool(parts[1]).asset
        except StopIteration:
            return None
    return parts[-1] if len(parts) > 1 else None


def search(old: ir.Policy, new: ir.Policy, name: str, m: Any, mb: Any, model: z3.ModelRef,
           namer: Any, tries: int = 150, seed: int = 0) -> Optional[Replay]:
    """Look for a difference the runtime shows near one input: the model's state with its
    amounts and numbers varied (seeded, so the answer is the same every run).

    Used when Z3 cannot decide (a split's rounding is hard for it, easy to observe): a
    difference found here was seen on the runtime, so it is as real as a replayed model."""
    import random

    from .verify.naming import _plain, collect_ints

    try:
        ints = collect_ints(m, model)
        collect_ints(mb, model, ints)
        namer = SameNames(namer, ints)
        params = {p.name: _plain(model, m.encoder.params[p.name], p.type, namer, old)
                  for p in old.params}
        params.update({p.name: _plain(model, mb.encoder.params[p.name], p.type, namer, new)
                       for p in new.params if p.name not in params})
        event = event_from_model(m, model, old, namer)
        setup = setup_from_model(m, model, old, namer)
    except _Unfaithful:
        return None
    except Exception:  # noqa: BLE001 - nothing to search from
        return None
    rnd = random.Random(seed)
    native = {k: _native(v, old.param(k).type) for k, v in params.items()}
    scales = (7, 100, 997, 10_000, 123_457)
    for i in range(tries):
        varied = []
        for kind, a, b, c in setup:
            if kind == "funds" and i and rnd.random() < 0.8:
                c = rnd.randrange(1, rnd.choice(scales))
            elif kind == "record" and i:
                c = tuple((f, rnd.randrange(1, rnd.choice(scales))
                           if type(v) is int and v >= 0 and rnd.random() < 0.25 else v)
                          for f, v in c)
            varied.append((kind, a, b, c))
        ev = dict(event, args={k: (rnd.randrange(1, rnd.choice(scales))
                                   if type(v) is int and v > 0 and i and rnd.random() < 0.5
                                   else v) for k, v in event["args"].items()})
        pv = dict(native)
        for p in old.params if i else ():
            if p.lo is not None and p.hi is not None and rnd.random() < 0.3 and \
                    type(p.lo) is type(p.hi) and not isinstance(p.lo, bool):
                pv[p.name] = rnd.choice([p.lo, p.hi, p.default if p.default is not None
                                         else p.hi, (p.lo + p.hi) / 2 if isinstance(
                                             p.lo, Fraction) else (p.lo + p.hi) // 2])
        try:
            x = _side(old, {k: v for k, v in pv.items() if _has_param(old, k)}, varied,
                      old.handler(name), ev)
            y = _side(new, {k: v for k, v in pv.items() if _has_param(new, k)}, varied,
                      new.handler(name), ev)
        except Exception:  # noqa: BLE001 - this variation cannot run; try another
            continue
        diffs = compare(x, y, new)
        if diffs:
            return Replay(True, x, y, "; ".join(diffs[:3]), diffs, varied, ev, pv)
    return None
