"""Replaying a counterexample on the runtime, and what "the same violation" means there.

A refutation is only shown with a scenario the runtime has actually run: the verifier builds
a fresh in-memory :class:`~charter.runtime.engine.Runtime` (the one ``charter run --memory``
uses), submits every event of the scenario and asks the :class:`Violation` whether it
observed the violation the verifier predicted.  A :class:`Violation` is the runtime-side twin
of a check:

* :class:`Refusal` - the runtime's own money check (negative amount, overdraft, cap, a
  delete of a record holding value) refuses the last event although every ``require`` of it
  held: the rejection must come with the check's code, from the statement's line;
* :class:`Broken` - a condition (a declared invariant) is false after the last event
  applied; :class:`PaysOver` - one event paid more than a budget; :class:`SplitUnfair` -
  a split paid shares that break a declared fairness property;
* :class:`Forbidden` - the last event applied although it must not (an unauthorised debit,
  a second payout): its test says ``expect rejected``.

A check hands its :class:`Violation` and a Z3 ``fails`` predicate to
:func:`.search._attach_trace` (or :func:`.scenario.build`), which searches, replays,
shrinks and renders the scenario.

New checks add their own :class:`Violation` subclasses (``observe`` plus the ``expect`` lines
a ``test`` block asserts the property with).
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any, Callable, Optional

import attrs

from .. import ir

# the runtime's rejection code for each kind of money obligation of the encoding
REFUSAL_CODES = {
    "negative_amount": ("negative_amount",),
    "split_input": ("negative_amount", "bad_weight"),
    "overdraft": ("insufficient_funds",),
    "escrow_overdraft": ("insufficient_funds",),
    "supply_cap": ("cap_exceeded",),
    "stranded": ("record_holds_value",),
}


@attrs.define
class Observed:
    """What a replay saw: ``ok`` when the violation happened exactly as predicted."""

    ok: bool
    detail: str  # what the runtime did, in words (shown with the scenario)
    outcomes: list = attrs.Factory(list)  # per event: "applied" or "rejected: code: message"
    # a timed handler the search does not model fired (before the last event, or another
    # than the one the last event is for): the scenario is out of the search's model, which
    # is a limit of the search, not a disagreement between verifier and runtime
    unmodelled_timer: bool = False


class Violation:
    """How the runtime shows that a property is violated by the last event of a scenario."""

    handler: str
    describe: str  # the violated property, one sentence

    def observe(self, rt: Any, before: dict, outcome: Any) -> Optional[str]:
        """None if the violation is visible after ``outcome`` (the last event), else why not.
        ``before`` is the runtime's balances before the last event."""
        raise NotImplementedError

    def expect_lines(self, policy: ir.Policy, names: Callable[[Any], str]) -> list[str]:
        """``expect`` steps (after the last ``when``) that state the property: they fail on
        the scenario, which is the point of a counterexample test."""
        raise NotImplementedError

    def balance_claims(self) -> list[tuple[str, str, int]]:
        """The property as claims on runtime account balances after the events,
        ``(account, op, minor units)`` with op ``>=``/``<=``/``==``, at least one of which
        is false after the replay: what a reader of ``charter run --json`` checks in its
        ``balances`` (a supply account holds minus the supply).  Empty for violations the
        run shows otherwise (a refusal, a named invariant or postcondition)."""
        return []

    def record_claims(self) -> list[tuple[str, str, str, Any]]:
        """``(record, key, field, value)``: the property also holds when one of these record
        fields no longer has that value after the events (the record advanced, so the last
        event started a new stage); each still has it after the replay."""
        return []

    def member_claims(self) -> list[tuple[str, str]]:
        """``(party, role)``: the party must not be a member after the events, and is
        (``charter ledger members LEDGER ROLE`` after ``charter run`` shows it)."""
        return []


@attrs.define
class Refusal(Violation):
    handler: str
    describe: str
    codes: tuple[str, ...]
    line: Optional[int] = None

    def observe(self, rt: Any, before: dict, outcome: Any) -> Optional[str]:
        rej = _timer_rejection(outcome, self.handler)
        if rej is None:
            return f"the runtime applied {self.handler}"
        code, message, span = rej
        if code not in self.codes:
            return f"the runtime refused {self.handler} for another reason ({code}: {message})"
        if self.line is not None and span is not None and span.line != self.line:
            return (
                f"the runtime refused {self.handler} ({code}) at line {span.line}, "
                f"not at line {self.line}"
            )
        return None

    def expect_lines(self, policy: ir.Policy, names: Callable[[Any], str]) -> list[str]:
        return [
            f"    # violated: {self.describe}",
            f"    # every require of {self.handler} holds here, so it must settle; the runtime",
            f"    # refuses it instead ({' / '.join(self.codes)})",
            "    expect ok",
        ]


@attrs.define
class Forbidden(Violation):
    """The last event applied although the property says it must not (someone without the
    authority moved value, a settled record paid again): the test says ``expect rejected``."""

    handler: str
    describe: str

    def observe(self, rt: Any, before: dict, outcome: Any) -> Optional[str]:
        if _timer_rejection(outcome, self.handler) is not None:
            return f"the runtime refused {self.handler}: {outcome}"
        return None

    def expect_lines(self, policy: ir.Policy, names: Callable[[Any], str]) -> list[str]:
        return [f"    # violated: {self.describe}", "    expect rejected"]


@attrs.define
class Broken(Violation):
    """``cond`` (for each live ``record`` bound to ``var``, if set) is false after the last
    event, which applied."""

    handler: str
    describe: str
    cond: ir.Expr
    record: Optional[str] = None
    var: Optional[str] = None
    keys: list = attrs.Factory(list)  # filled by observe: the records it fails for

    def observe(self, rt: Any, before: dict, outcome: Any) -> Optional[str]:
        if not getattr(outcome, "applied", False):
            return f"{self.handler} was rejected: {outcome}"
        if _is_tick(outcome) and _timer_rejection(outcome, self.handler) is not None:
            return f"{self.handler} did not fire successfully"
        self.keys = []
        if self.record is None:
            ok = _evaluate(rt, self.cond, {})
            return None if ok is False else "the property still holds after the events"
        for key in sorted(rt.records(self.record)):
            if _evaluate(rt, self.cond, {self.var: key}) is False:
                self.keys.append(key)
        return None if self.keys else "the property holds for every record after the events"

    def expect_lines(self, policy: ir.Policy, names: Callable[[Any], str]) -> list[str]:
        from .source import expr_source

        out = ["    expect ok", f"    # {self.describe}"]
        if self.record is None:
            out.append(f"    expect {expr_source(self.cond, policy, {})}")
        for key in self.keys:
            out.append(f"    expect {expr_source(self.cond, policy, {self.var: (self.record, key)})}")
        return out


@attrs.define
class PaysOver(Violation):
    """A budget property: one ``handler`` event pays more than ``limit`` out of ``pool``."""

    prop: ir.BudgetProperty
    paid: int = 0
    limit: Any = None
    before: int = 0

    @property
    def handler(self) -> str:  # type: ignore[override]
        return self.prop.handler

    @property
    def describe(self) -> str:  # type: ignore[override]
        return f"property {self.prop.name}: one {self.prop.handler} pays at most the limit from {self.prop.pool}"

    def observe(self, rt: Any, before: dict, outcome: Any) -> Optional[str]:
        if not getattr(outcome, "applied", False):
            return f"{self.handler} was rejected: {outcome}"
        acc = f"pool:{self.prop.pool}"
        self.paid = sum(p.amount for p in outcome.postings if p.src == acc)
        self.limit = _evaluate(rt, self.prop.limit, {})
        self.before = before.get(acc, 0)
        if self.paid > self.limit:
            return None
        return f"{self.handler} paid {self.paid} minor units from {self.prop.pool}, within the limit"

    def balance_claims(self) -> list[tuple[str, str, int]]:
        return [(f"pool:{self.prop.pool}", ">=", self.before - self.limit)]

    def expect_lines(self, policy: ir.Policy, names: Callable[[Any], str]) -> list[str]:
        from .source import value_literal

        asset = policy.pool(self.prop.pool).asset
        floor_ = value_literal(self.before - self.limit, ir.TAmount(asset=asset), policy)
        return [
            "    expect ok",
            f"    # {self.describe}: it held "
            f"{value_literal(self.before, ir.TAmount(asset=asset), policy)} before this event",
            f"    expect balance({self.prop.pool}) >= {floor_}",
        ]


@attrs.define
class SplitUnfair(Violation):
    """A declared split property fails for split number ``index`` of ``handler``: the runtime
    pays the shares the model predicts, and those shares break the property."""

    prop: ir.SplitProperty
    index: int
    recipients: list = attrs.Factory(list)  # (runtime account, source text, weight, share)
    rest: int = 0
    witness: list = attrs.Factory(list)  # the expect lines

    @property
    def handler(self) -> str:  # type: ignore[override]
        return self.prop.handler

    @property
    def describe(self) -> str:  # type: ignore[override]
        return f"property {self.prop.name}: every split in {self.prop.handler} is {self.prop.kind}"

    def bind(self, policy: ir.Policy, found: Any, namer: Any) -> None:
        from .solver import _eval

        model, last = found.model, found.handlers[-1]
        sp = last.splits[self.index]
        asset = next(p.asset for p in last.postings if p.kind == "split" and p.span == sp.span)
        self.rest = _eval(model, sp.rest)
        self.recipients = []
        for inc, to, w, share in zip(sp.included, sp.recipients, sp.weights, sp.shares):
            if not _eval(model, inc):
                continue
            v = _eval(model, to)
            rec = _split_record(policy, last.handler, self.index)
            if rec is not None:
                key = namer.name(v, "key")
                acc, text = f"escrow:{rec}:{key}:{asset}", f'balance({rec}("{key}"))'
            else:
                who = namer.name(v, "party")
                acc, text = f"party:{who}:{asset}", f"balance(@{who}, {asset})"
            self.recipients.append((acc, text, _eval(model, w), _eval(model, share), asset))

    def observe(self, rt: Any, before: dict, outcome: Any) -> Optional[str]:
        if not getattr(outcome, "applied", False):
            return f"{self.handler} was rejected: {outcome}"
        paid: dict = {}
        for p in getattr(outcome, "postings", ()):
            if p.kind == "split":
                paid[p.dst] = paid.get(p.dst, 0) + p.amount
        got = [(a, t, w, paid.get(a, 0), asset) for a, t, w, _, asset in self.recipients]
        if [g[3] for g in got] != [r[3] for r in self.recipients]:
            return f"the runtime paid other shares than predicted: {paid}"
        bound = self.prop.bound
        b = _evaluate(rt, bound, {}) if bound is not None else 1
        self.witness = _split_witness(self.prop.kind, got, b, self.rest, before)
        return None if self.witness else "the shares paid satisfy the property"

    def expect_lines(self, policy: ir.Policy, names: Callable[[Any], str]) -> list[str]:
        from .source import value_literal

        out = ["    expect ok", f"    # {self.describe}"]
        for lhs, op, amount, asset in self.witness:
            out.append(f"    expect {lhs} {op} {value_literal(amount, ir.TAmount(asset=asset), policy)}")
        return out


def _split_record(policy: ir.Policy, h: ir.Handler, index: int) -> Optional[str]:
    """The record whose escrows a handler's ``index``-th split pays into (None: parties)."""
    from .footprint import walk

    splits = [st for st in walk(h.body) if isinstance(st, ir.Split)]
    if index >= len(splits):
        return None
    st = splits[index]
    t = st.to.type if st.to is not None else getattr(st, "var_type", None)
    return t.record if isinstance(t, ir.TRecord) else None


def _split_witness(kind: str, got: list, b: int, rest: int, before: dict) -> list:
    """``expect`` comparisons (lhs, op, amount, asset) that state the property for the
    shares ``got`` = [(account, text, weight, share, asset)] and fail for them."""
    def pre(a: str) -> int:
        return before.get(a, 0)

    total_w = sum(g[2] for g in got)
    for i, (ai, ti, wi, si, asset) in enumerate(got):
        if kind == "floor" and si < b:
            return [(ti, ">=", pre(ai) + b, asset)]
        if kind == "cap" and si > b:
            return [(ti, "<=", pre(ai) + b, asset)]
        if kind == "proportional" and total_w > 0:
            ideal = Fraction(rest * wi, total_w)
            if si > ideal + b:
                return [(ti, "<=", pre(ai) + int(ideal + b), asset)]
            if si < ideal - b:
                lo = ideal - b
                return [(ti, ">=", pre(ai) + (lo.numerator + lo.denominator - 1) // lo.denominator, asset)]
        for aj, tj, wj, sj, _ in got[i + 1 :] if kind == "symmetric" else got:
            if aj == ai:
                continue
            d = pre(ai) - pre(aj)
            if kind == "symmetric" and wi == wj and abs(si - sj) > b:
                return [(f"{ti} - {tj}", "<=" if si > sj else ">=", d + (b if si > sj else -b), asset)]
            if kind == "monotone" and wi > wj and si < sj:
                return [(f"{ti} - {tj}", ">=", d, asset)]
    return []


def _is_tick(outcome: Any) -> bool:
    return bool(getattr(outcome, "timers", ()))


def _timer_rejection(outcome: Any, handler: str) -> Optional[tuple]:
    """(code, message, span) of the last event's rejection, or of a timed handler's rejected
    firing in a tick's receipt; None if it applied."""
    if not getattr(outcome, "applied", False):
        return (outcome.code, outcome.message, outcome.span)
    for t in getattr(outcome, "timers", ()):
        if t.get("handler") == handler and t.get("status") == "rejected":
            reason = t.get("reason", "")
            code = reason.split(":", 1)[0] if reason.startswith("runtime_error") else _code_of(reason)
            return (code, reason, None)
    return None


def _code_of(message: str) -> str:
    # a timer's record keeps only the message; the runtime's money checks say what they are
    low = message.lower()
    for code, words in (
        ("negative_amount", ("negative",)),
        # "transfer: pool:commons holds 0.02 Credit, needs 0.03 Credit" (the runtime's words)
        ("insufficient_funds", ("insufficient", "holds only", "cannot", "overdraw", ", needs ")),
        ("cap_exceeded", ("cap",)),
        ("record_holds_value", ("still holds",)),
    ):
        if any(w in low for w in words):
            return code
    return "rejected"


def _evaluate(rt: Any, cond: ir.Expr, env: dict) -> Any:
    from charter.runtime.monitor import holds, value

    if isinstance(getattr(cond, "type", None), ir.TBool):
        return holds(rt, cond, env)
    return value(rt, cond, env)


def native_params(policy: ir.Policy, plain: dict) -> dict:
    """Model parameter values (JSON-plain) as the runtime's native values."""
    out = {}
    for name, v in plain.items():
        t = policy.param(name).type
        if isinstance(t, ir.TRatio):
            v = Fraction(v["num"], v["den"]) if isinstance(v, dict) else Fraction(v)
        out[name] = v
    return out


def replay(
    policy: ir.Policy, params: dict, events: list[dict], violation: Violation
) -> Observed:
    """Run ``events`` from genesis on a fresh in-memory runtime: every event but the last must
    apply, and the last must show ``violation``."""
    from charter.runtime.engine import ParamError, Runtime

    try:
        rt = Runtime(policy, params=native_params(policy, params))
    except (ParamError, ValueError, TypeError) as exc:
        return Observed(False, f"the parameters are refused: {exc}")
    outcomes: list[str] = []
    before: dict = {}
    unmodelled = False
    for i, ev in enumerate(events):
        each = getattr(violation, "before_event", None)
        if each is not None:  # a violation that compares states between earlier events
            each(rt, i, events)
        if i == len(events) - 1:
            before = rt.balances()
            hook = getattr(violation, "before_last", None)
            if hook is not None:  # a violation that compares with the state before the event
                hook(rt, ev)
        # the runtime's envelope only: `fires` names the timed handler a tick is for
        envelope = {k: v for k, v in ev.items() if k != "fires"}
        out = rt.submit(dict(envelope, args=dict(ev.get("args", {}))))
        outcomes.append("applied" if out.applied else f"rejected: {out.code}: {out.message}")
        fired = {t.get("handler") for t in getattr(out, "timers", ()) or ()}
        tick = getattr(rt, "last_tick", None)
        fired |= {t.get("handler") for t in getattr(tick, "timers", ()) or ()}
        if fired - ({ev.get("fires")} if i == len(events) - 1 else set()):
            unmodelled = True
        if i < len(events) - 1 and not out.applied:
            return Observed(
                False, f"event {ev['id']} ({ev['type']}) was rejected: {out}", outcomes,
                unmodelled,
            )
        if i < len(events) - 1 and out.applied:
            bad = [t for t in getattr(out, "timers", ()) if t.get("status") == "rejected"]
            if bad:
                return Observed(
                    False, f"a timed handler fired before {ev['id']} and failed: {bad[0]}",
                    outcomes, True,
                )
        if i == len(events) - 1:
            why = violation.observe(rt, before, out)
            if why is not None:
                return Observed(False, why, outcomes, unmodelled)
            return Observed(True, outcomes[-1], outcomes, unmodelled)
    return Observed(False, "no events", outcomes)
