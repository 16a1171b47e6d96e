"""Checking a policy's declared invariants (``property ...: always ...`` and
``for each r in R always ...``) on a runtime's current state.

``charter run --check`` uses it after every applied event, so a reviewer replaying a
verifier counterexample (or any event file) sees the first event after which a declared
property is false, in the policy's own words.  It reads state only; it never changes it.
"""

from __future__ import annotations

import json
from typing import Any

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


__all__ = ["invariants", "value", "holds", "violations"]
