"""The runtime-side twins (:class:`.replay.Violation`) of the policy-wide checks: how a replay
from genesis shows that anyone moved someone else's money, that a settled record was paid
again, that value was left where no rule can move it, or that an ``ensures`` clause failed -
and the ``expect`` lines that make the emitted ``test`` block assert the property (so the
test fails on the policy as written and states what a fix must make true).

Each gets the runtime and the last event before it is submitted (``before_last``), then the
outcome (``observe``).
"""

from __future__ import annotations

from typing import Any, Callable, Optional

import attrs

from .. import ir
from .footprint import nodes
from .naming import account_text
from .replay import Violation


def account_literal(account: str) -> str:
    """A runtime account name (``party:ann:Credit``, ``escrow:Task:k:Credit``...) as Charter
    source, spelt by :func:`.naming.account_text`."""
    parts = account.split(":")
    kind = "bal" if parts[0] == "party" else parts[0]
    if kind in ("bal", "stake") and len(parts) > 2:
        text = account_text(kind, parts[2], parts[1])
    elif kind == "escrow" and len(parts) > 2:
        text = account_text(kind, parts[1], ":".join(parts[2:-1]))
    else:
        text = account_text(kind, parts[1]) if len(parts) > 1 and kind != "bal" else None
    return text if text is not None else account


def _asset_of(policy: ir.Policy, account: str) -> Optional[str]:
    parts = account.split(":")
    if parts[0] in ("party", "stake", "escrow", "supply"):
        return parts[-1] if parts[0] != "supply" else parts[1]
    if parts[0] == "pool":
        return policy.pool(parts[1]).asset
    return None


def _amount(policy: ir.Policy, account: str, v: int) -> str:
    from .source import value_literal

    asset = _asset_of(policy, account)
    return value_literal(v, ir.TAmount(asset=asset), policy) if asset else str(v)


def _owners(policy: ir.Policy, account: str, records: dict) -> set:
    """The parties that own ``account`` (before the event): a balance's or stake's holder,
    the parties an escrow's record names; a pool has none."""
    from .footprint import party_fields

    parts = account.split(":")
    if parts[0] in ("party", "stake"):
        return {parts[1]}
    if parts[0] == "escrow":
        rec = policy.record(parts[1])
        fields = records.get(rec.name, {}).get(":".join(parts[2:-1]), {})
        return {fields.get(f) for f in party_fields(rec) if fields.get(f) is not None}
    return set()


@attrs.define
class _Snapshot(Violation):
    """Keeps the balances and records before the last event, and the event itself."""

    handler: str
    describe: str
    event: dict = attrs.Factory(dict)
    records: dict = attrs.Factory(dict)
    before: dict = attrs.Factory(dict)
    found: list = attrs.Factory(list)

    def before_last(self, rt: Any, event: dict) -> None:
        self.event = dict(event)
        self.before = rt.balances()
        self.records = {r.name: rt.records(r.name) for r in rt.policy.records}
        self.found = []


@attrs.define
class Unowned(_Snapshot):
    """The last event applied, and an account its submitter owns none of ended poorer."""

    def observe(self, rt: Any, before: dict, outcome: Any) -> Optional[str]:
        if not getattr(outcome, "applied", False):
            return f"{self.handler} was rejected: {outcome}"
        who = self.event.get("submitter")
        after = rt.balances()
        for acc, was in sorted(self.before.items()):
            if acc.startswith("supply:") or after.get(acc, 0) >= was:
                continue
            if who not in _owners(rt.policy, acc, self.records):
                self.found.append((acc, was))
        return None if self.found else "every account that lost value belongs to the submitter"

    def balance_claims(self) -> list[tuple[str, str, int]]:
        return [(acc, ">=", was) for acc, was in self.found]

    def expect_lines(self, policy: ir.Policy, names: Callable[[Any], str]) -> list[str]:
        who = self.event.get("submitter")
        out = ["    expect ok", f"    # {self.describe}: @{who} owns none of these accounts"]
        for acc, was in self.found:
            out.append(f"    expect {account_literal(acc)} >= {_amount(policy, acc, was)}")
        return out


@attrs.define
class AdmittedByAnyone(_Snapshot):
    """The last event applied and made a party other than its submitter a member of
    ``role`` (the submitter having no authority to)."""

    role: str = ""
    members: set = attrs.Factory(set)

    def before_last(self, rt: Any, event: dict) -> None:
        super().before_last(rt, event)
        self.members = set(rt.members(self.role))

    def observe(self, rt: Any, before: dict, outcome: Any) -> Optional[str]:
        if not getattr(outcome, "applied", False):
            return f"{self.handler} was rejected: {outcome}"
        new = set(rt.members(self.role)) - self.members - {self.event.get("submitter")}
        self.found = sorted(new)
        return None if self.found else f"nobody but the submitter became a {self.role}"

    def expect_lines(self, policy: ir.Policy, names: Callable[[Any], str]) -> list[str]:
        who = self.event.get("submitter")
        out = ["    expect ok", f"    # {self.describe}: @{who} has no such authority"]
        out += [f"    expect not (@{p} is {self.role})" for p in self.found]
        return out

    def member_claims(self) -> list[tuple[str, str]]:
        return [(p, self.role) for p in self.found]


@attrs.define
class PaidAgain(_Snapshot):
    """The last event - the same as the one before it - applied and paid out again (out of
    an account its submitter does not own, or by minting), and the first of the two left
    every counter, amount and time field (``watch``: record -> those fields) of the records
    the event addresses as it was: nothing says the first payment happened."""

    repeated: bool = False
    watch: dict = attrs.Factory(dict)
    stage: dict = attrs.Factory(dict)  # (record, key) -> {field: value} before the first event
    moved: list = attrs.Factory(list)  # (record, key, field) the first event advanced

    def _addressed(self, rt: Any, event: dict) -> dict:
        """The watched fields of the records ``event`` names: by a record-typed argument
        (the key is the argument) or a composite key of its arguments and submitter."""
        names = {str(v) for v in (event.get("args") or {}).values() if not isinstance(v, list)}
        names.add(str(event.get("submitter")))
        out = {}
        for rec, fields in sorted(self.watch.items()):
            for key, vals in rt.records(rec).items():
                if all(part.lstrip("@") in names for part in str(key).split("|")):
                    out[(rec, key)] = {f: vals.get(f) for f in fields}
        return out

    def before_event(self, rt: Any, index: int, events: list) -> None:
        if index == len(events) - 2:
            self.stage = self._addressed(rt, events[index])

    def before_last(self, rt: Any, event: dict) -> None:
        super().before_last(rt, event)
        applied = [h["event"] for h in rt.history() if h["event"].get("type") != "@tick"]
        prev = applied[-1] if applied else {}
        self.repeated = (
            prev.get("type") == event.get("type")
            and prev.get("submitter") == event.get("submitter")
            and prev.get("args") == event.get("args")
        )
        now = self._addressed(rt, event)
        self.moved = [(rec, key, f) for (rec, key), fs in self.stage.items()
                      for f, v in fs.items() if now.get((rec, key), {}).get(f) != v]

    def observe(self, rt: Any, before: dict, outcome: Any) -> Optional[str]:
        if not getattr(outcome, "applied", False):
            return f"{self.handler} was rejected: {outcome}"
        if not self.repeated:
            return f"the event before the last is not the same {self.handler} event"
        if self.moved:
            rec, key, f = self.moved[0]
            return (f"the first {self.handler} advanced {rec}({key!r}).{f}: the second is a "
                    "new stage, not a second payment")
        who = self.event.get("submitter")
        for p in getattr(outcome, "postings", ()):
            if p.amount <= 0:
                continue
            # an escrow or pool paid out twice is paid twice, whoever the record names
            kind = p.src.split(":")[0]
            if kind in ("supply", "escrow", "pool") or who not in _owners(
                rt.policy, p.src, self.records
            ):
                self.found.append((p.src, self.before.get(p.src, 0)))
        return None if self.found else f"{self.handler} paid nothing the second time"

    def balance_claims(self) -> list[tuple[str, str, int]]:
        # a supply account holds minus the supply: "no more minted" is ">= what it was"
        return [(acc, ">=", was) for acc, was in dict.fromkeys(self.found)]

    def record_claims(self) -> list[tuple[str, str, str, Any]]:
        # or the record advanced: one of these fields moved from what it was before the pair
        return [(rec, key, f, v) for (rec, key), fs in self.stage.items() for f, v in fs.items()]

    def expect_lines(self, policy: ir.Policy, names: Callable[[Any], str]) -> list[str]:
        out = ["    expect ok", f"    # {self.describe}: the same event already settled it"]
        paid = []
        for acc, was in dict.fromkeys(self.found):
            if acc.startswith("supply:"):
                paid.append(f"{account_literal(acc)} <= {_amount(policy, acc, -was)}")
            else:
                paid.append(f"{account_literal(acc)} >= {_amount(policy, acc, was)}")
        claims = self.record_claims()
        advanced = [_field_moved(policy, *c) for c in claims if not _is_time(policy, *c[:3])]
        if not advanced:
            return out + [f"    expect {p}" for p in paid]
        # the property: the second pays nothing, or the first advanced the record (then the
        # second is a new stage); a time field has no literal to compare with, so the test
        # leaves those out (the JSONL's claims keep them)
        out.append("    # (or the first advanced the record: a new stage may pay again)")
        out.append("    expect " + " or ".join([f"({' and '.join(paid)})"] + advanced))
        return out


def _field_type(policy: ir.Policy, rec: str, field: str) -> Any:
    t = next(f.type for f in policy.record(rec).fields if f.name == field)
    return t.inner if isinstance(t, ir.TOptional) else t


def _is_time(policy: ir.Policy, rec: str, key: str, field: str) -> bool:
    return isinstance(_field_type(policy, rec, field), ir.TTime)


def _field_moved(policy: ir.Policy, rec: str, key: str, field: str, was: Any) -> str:
    """``Rec("k", @p).field != was`` as Charter source (a composite key's parts split at
    ``|``, a party's with its ``@``)."""
    import json

    from .source import value_literal

    parts = [p if p.startswith("@") else json.dumps(p) for p in str(key).split("|")]
    t = _field_type(policy, rec, field)
    return f"{rec}({', '.join(parts)}).{field} != {value_literal(was, t, policy)}"


@attrs.define
class LeftBehind(_Snapshot):
    """After the last event (which applied), value sits in an account no rule can empty:
    after ``dissolve`` any pool, escrow or stake; after closing, the escrow of a record of
    ``record`` whose lifecycle fields are ``stage``."""

    record: Optional[str] = None
    stage: dict = attrs.Factory(dict)

    def observe(self, rt: Any, before: dict, outcome: Any) -> Optional[str]:
        if not getattr(outcome, "applied", False):
            return f"{self.handler} was rejected: {outcome}"
        after = rt.balances()
        if self.record is None:
            self.found = [(a, v) for a, v in after.items()
                          if a.split(":")[0] in ("pool", "escrow", "stake") and v > 0]
            return None if self.found else "nothing was left after dissolve"
        live = rt.records(self.record)
        for key, fields in live.items():
            if any(fields.get(f) != v for f, v in self.stage.items()):
                continue
            acc = f"escrow:{self.record}:{key}:{rt.policy.record(self.record).holds}"
            if after.get(acc, 0) > 0:
                self.found.append((acc, after[acc]))
        return None if self.found else f"no {self.record} was left holding value"

    def balance_claims(self) -> list[tuple[str, str, int]]:
        return [(acc, "==", 0) for acc, _v in self.found]

    def expect_lines(self, policy: ir.Policy, names: Callable[[Any], str]) -> list[str]:
        out = ["    expect ok", f"    # {self.describe}"]
        for acc, _v in self.found:
            out.append(f"    expect {account_literal(acc)} == {_amount(policy, acc, 0)}")
        return out


@attrs.define
class EnsuresBroken(_Snapshot):
    """The last event applied and the handler's ``ensures`` clause is false after it, as
    ``charter run --check`` sees it (:class:`charter.runtime.monitor.Postconditions`: the
    same evaluation, so the emitted JSONL shows the same violation)."""

    clause: Any = None  # ir.Ensures
    olds: list = attrs.Factory(list)  # values of the old(...) parts before the event
    env: dict = attrs.Factory(dict)
    name: str = ""  # HANDLER.ensures.N, as the verifier and the monitor name it
    _watch: Any = None
    _pending: Any = None
    # the clause as the test states it: old(...) and every part that reads the clock (a test
    # has no `now` and no time literal) as the values the replay read after the event
    _shown: Any = None

    def before_last(self, rt: Any, event: dict) -> None:
        from charter.runtime.monitor import Postconditions

        super().before_last(rt, event)
        self._watch = Postconditions(rt)
        self._pending = self._watch.before(event)
        self.env, self.olds = {}, []
        if self._pending is not None:
            self.env = dict(self._pending[1])
            for name, _cond, vals, e in self._pending[2]:
                if e is self.clause or (not self.name and e == self.clause):
                    self.name = name
                    self.olds = [None if not _readable(v) else v for v in vals]

    def observe(self, rt: Any, before: dict, outcome: Any) -> Optional[str]:
        if not getattr(outcome, "applied", False):
            return f"{self.handler} was rejected: {outcome}"
        if self._pending is None:
            return "the event's arguments could not be read before it"
        broken = {v["property"] for v in self._watch.after(self._pending, outcome)}
        if self._watch.unchecked:
            return "timed handlers fired before the event (old(...) would be read too early)"
        if self.name not in broken:
            return "the clause holds after the event"
        if any(v is None for v in self.olds):
            return "an old(...) value could not be read before the event"
        self._shown = _clock_read(self._with_olds(), rt, self.env)
        return None

    def _with_olds(self) -> Any:
        if any(v is None for v in self.olds):
            return None
        it = iter(self.olds)
        return replace_olds(self.clause.cond, lambda e: ir.Const(value=next(it), type=e.type))

    def expect_lines(self, policy: ir.Policy, names: Callable[[Any], str]) -> list[str]:
        from .source import expr_source

        cond = self._with_olds()
        env = {}
        h = policy.handler(self.handler)
        for f in h.params:
            if isinstance(f.type, ir.TRecord) and f.name in self.env:
                env[f.name] = (f.type.record, self.env[f.name])
            elif f.name in self.env:
                from .source import value_literal

                env[f.name] = value_literal(self.env[f.name], f.type, policy)
        if isinstance(h.auth, ir.AuthRole) and self.event.get("submitter"):
            env[h.auth.binder] = "@" + self.event["submitter"]
        if self._shown is not None:
            cond = self._shown
        out = ["    expect ok", f"    # {self.describe}"]
        out.append(f"    expect {expr_source(cond, policy, env)}")
        return out


def _clock_read(cond: Any, rt: Any, env: dict) -> Any:
    """``cond`` with each smallest part that reads ``now`` and is not itself a time (``now -
    s.start``, ``now >= t.deadline``) replaced by its value on ``rt`` (None: unreadable)."""
    from charter.compiler.inline import changed_children
    from charter.runtime.monitor import value
    from charter.runtime.values import Rejected

    def timed(x: Any) -> bool:
        return isinstance(getattr(x, "type", None), ir.TTime) and _mentions(x, ir.Now)

    def fold(x: Any) -> Any:
        if isinstance(x, tuple):
            return tuple(fold(y) for y in x)
        if not attrs.has(type(x)) or not _mentions(x, ir.Now) or timed(x):
            return x
        if any(timed(c) for c in _children(x)):
            return ir.Const(value=value(rt, x, env), type=x.type)
        changes = changed_children(x, fold)
        return attrs.evolve(x, **changes) if changes else x

    try:
        return fold(cond)
    except Rejected:
        return None


def _children(x: Any) -> list:
    out = []
    for fld in attrs.fields(type(x)):
        v = getattr(x, fld.name)
        out += list(v) if isinstance(v, tuple) else [v]
    return out


def _mentions(x: Any, kind: type) -> bool:
    return any(isinstance(n, kind) for n in nodes(x))


def _readable(v: Any) -> bool:
    from charter.runtime import monitor

    return v is not monitor._UNREADABLE


def replace_olds(e: Any, f: Callable[[Any], Any]) -> Any:
    """``e`` with each ``old(x)`` node replaced by ``f(node)`` (the verifier binds them to the
    pre-state, the runtime twin to the values read before the event)."""
    return replace_nodes(e, ir.Old, f)


def replace_nodes(e: Any, kind: type, f: Callable[[Any], Any]) -> Any:
    """``e`` with each node of type ``kind`` replaced by ``f(node)`` (not looking inside it)."""
    from charter.compiler.inline import changed_children

    if isinstance(e, kind):
        return f(e)
    if isinstance(e, tuple):
        return tuple(replace_nodes(x, kind, f) for x in e)
    if not attrs.has(type(e)):
        return e
    changes = changed_children(e, lambda v: replace_nodes(v, kind, f))
    return attrs.evolve(e, **changes) if changes else e
