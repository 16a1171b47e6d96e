"""Checking a policy's declared invariants (``property ...: always ...`` and
``for each r in R always ...``) and its handlers' ``ensures`` clauses on a runtime.

``charter run --check`` uses it around every event, so a reviewer replaying a verifier
counterexample (or any event file) sees the first event after which a declared property or
a postcondition is false, in the policy's own words.  It reads state only; it never changes
it.

Postconditions (:class:`Postconditions`): before a submitted event whose handler has
``ensures`` clauses, the ``old(...)`` parts are read on the current state; after the event
applied, each clause is evaluated with those values.  The result is named as the verifier
names it (``HANDLER.ensures.N``).  When the event also fired timed handlers first, the
``old(...)`` values were read before them, not right before the handler: such an event is
counted as *unchecked* rather than judged on the wrong state.
"""

from __future__ import annotations

import json
from typing import Any, Optional

from charter.compiler import ir

from .codegen import Compiler, Env
from .values import Rejected


def invariants(policy: ir.Policy) -> list[ir.InvariantProperty]:
    return [p for p in policy.properties if isinstance(p, ir.InvariantProperty)]


def value(rt: Any, expr: ir.Expr, env: dict, comp: Compiler | None = None) -> Any:
    """``expr`` evaluated on ``rt``'s state (raises :class:`Rejected` if it cannot be)."""
    e = Env(rt.state, rt.params, rt.clock, "clock", rt.step_budget)
    e.loc.update(env)
    return (comp or Compiler(rt.policy)).expr(expr)(e)


def holds(rt: Any, cond: ir.Expr, env: dict, comp: Compiler | None = None) -> bool:
    """``cond`` on ``rt``'s state (a property that cannot be evaluated, e.g. reads a missing
    record, does not hold)."""
    try:
        return bool(value(rt, cond, env, comp))
    except Rejected:
        return False


def violations(rt: Any, props: list | None = None) -> list[dict[str, Any]]:
    """Every declared invariant that is false now: ``{"property", "record"}`` (``record`` is
    the key it fails for, or None for a policy-wide property)."""
    comp = Compiler(rt.policy)
    out: list[dict[str, Any]] = []
    for p in invariants(rt.policy) if props is None else props:
        if p.record is None:
            if not holds(rt, p.cond, {}, comp):
                out.append({"property": p.name, "record": None})
            continue
        for key in sorted(rt.records(p.record)):
            if not holds(rt, p.cond, {p.var: key}, comp):
                out.append({"property": p.name, "record": f"{p.record}({json.dumps(key)})"})
    return out


def _olds(e: Any, out: list) -> Any:
    """``e`` with each ``old(x)`` replaced by ``$oldN`` (``x`` appended to ``out``)."""
    import attrs

    if isinstance(e, ir.Old):
        out.append(e.expr)
        return ir.Local(name=f"$old{len(out) - 1}", type=e.type)
    if isinstance(e, tuple):
        return tuple(_olds(x, out) for x in e)
    if not attrs.has(type(e)):
        return e
    changes = {}
    for f in attrs.fields(type(e)):
        v = getattr(e, f.name)
        nv = _olds(v, out)
        if nv is not v:
            changes[f.name] = nv
    return attrs.evolve(e, **changes) if changes else e


class Postconditions:
    """The ``ensures`` clauses of ``rt``'s policy, checked around submitted events:
    ``pending = before(event)`` (None when the event's handler has none, or the event cannot
    even be read: it is refused anyway), then ``after(pending, outcome)`` -> violations."""

    def __init__(self, rt: Any) -> None:
        self.rt = rt
        self.comp = Compiler(rt.policy)
        self.unchecked = 0
        # handler -> [(result name, condition with $oldN locals, the old(...) expressions)]
        self.clauses: dict[str, list] = {}
        for h in rt.policy.handlers:
            if h.kind != "event" or not h.ensures:
                continue
            rows = []
            for i, e in enumerate(h.ensures, 1):
                olds: list = []
                cond = _olds(e.cond, olds)
                rows.append((f"{h.name}.ensures.{i}", cond, olds, e))
            self.clauses[h.name] = rows

    def env_of(self, h: Any, event: dict) -> Optional[dict]:
        """The handler's arguments (converted as the runtime does) and its role binder."""
        args = event.get("args", {})
        if not isinstance(args, dict):
            return None
        try:
            env = dict(self.rt.convert_args(h, dict(args)))
        except Exception:  # noqa: BLE001 - any bad argument: the runtime refuses the event
            return None
        if isinstance(h.auth, ir.AuthRole):
            env[h.auth.binder] = event.get("submitter")
        return env

    def before(self, event: Any) -> Optional[tuple]:
        if not isinstance(event, dict) or event.get("type") not in self.clauses:
            return None
        h = self.rt.policy.handler(event["type"])
        env = self.env_of(h, event)
        if env is None:
            return None
        rows = []
        for name, cond, olds, e in self.clauses[h.name]:
            vals = []
            for x in olds:
                try:
                    vals.append(value(self.rt, x, env, self.comp))
                except Rejected:
                    vals.append(_UNREADABLE)
            rows.append((name, cond, vals, e))
        return (h.name, env, rows)

    def after(self, pending: Optional[tuple], outcome: Any) -> list[dict[str, Any]]:
        """The clauses false after ``outcome`` (an applied event's), as
        ``{"property": "H.ensures.N", "record": None, "message": ...}``."""
        if pending is None or not getattr(outcome, "applied", False):
            return []
        if getattr(outcome, "duplicate", False):
            return []
        if getattr(outcome, "timers", None):
            self.unchecked += 1  # old(...) was read before the timers fired
            return []
        _name, env, rows = pending
        out = []
        for name, cond, vals, e in rows:
            loc = dict(env)
            # an old(...) that could not be read (a record that did not exist yet) makes the
            # clause false, as a failing read does everywhere in properties
            ok = all(v is not _UNREADABLE for v in vals)
            if ok:
                loc.update({f"$old{j}": v for j, v in enumerate(vals)})
                ok = holds(self.rt, cond, loc, self.comp)
            if not ok:
                out.append({"property": name, "record": None,
                            "message": e.message or f"ensures {e.text}"})
        return out


_UNREADABLE = object()


__all__ = ["invariants", "value", "holds", "violations", "Postconditions"]
