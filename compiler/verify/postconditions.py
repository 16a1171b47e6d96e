"""Postconditions: a handler's ``ensures`` clauses, proved for every applied event.

``ensures COND`` is asked of Z3 as "can the handler apply (from any pre-state satisfying the
proved invariants, for any inputs and parameters in range) and ``COND`` be false
afterwards?".  ``old(e)`` is ``e`` evaluated in the pre-state; everything else reads the
post-state.  A read that fails (a record that does not exist, ``none`` unwrapped) makes the
condition false, as for invariants.  Refutations come with a counterexample and a search
for a trace from the initial state, like every other check.
"""

from __future__ import annotations

import time
from typing import Any

import z3

from .. import ir
from .counterexample import counterexample
from .model import HandlerModel
from .observed import EnsuresBroken, replace_olds
from .options import Options
from .prepare import Prepared, Scope
from .result import PROVED, REFUTED, UNKNOWN, Result
from .search import _attach_trace, _trace_note
from .solver import solve_m


def check_postconditions(scope: Scope) -> list[Result]:
    policy, preps, assume, opts = scope.policy, scope.preps, scope.assume, scope.opts
    out: list[Result] = []
    for h in policy.handlers:
        if not h.ensures:
            continue
        prep = preps.get(h.name)
        for i, e in enumerate(h.ensures, 1):
            name = f"{h.name}.ensures.{i}"
            t0 = time.perf_counter()
            if prep is None or prep.model is None:
                out.append(
                    Result(name, "postcondition", h.name, UNKNOWN,
                           f"`ensures {e.text}`: not verified, the handler is not encoded "
                           f"({prep.error if prep else 'no model'})", e.span, opts.bound)
                )
                continue
            m = prep.model
            try:
                holds = ensures_term(m, e)
            except (z3.Z3Exception, KeyError, TypeError, ValueError, AttributeError) as exc:
                out.append(
                    Result(name, "postcondition", h.name, UNKNOWN,
                           f"`ensures {e.text}`: not verified, the encoding does not support "
                           f"it ({type(exc).__name__}: {exc})", e.span, opts.bound)
                )
                continue
            # after encoding the condition: what it added (the definition of an isqrt, a
            # composite key's projections) is part of what is assumed
            base = m.assumptions + prep.extra_assumptions + assume.get(h.name, [])
            r, model = solve_m(base + [m.applied, z3.Not(holds)], m, opts.limits)
            said = f"`ensures {e.text}`" + (f' ("{e.message}")' if e.message else "")
            cex = None
            if r == "unsat":
                status, msg = PROVED, f"{said} holds after every applied event"
            elif r == "sat":
                cex = counterexample(m, model, policy, f"line {e.span.line}: {said} fails")
                _attach_trace(
                    policy, h.name, cex, opts,
                    lambda mm, e=e: z3.And(mm.applied, z3.Not(ensures_term(mm, e))),
                    EnsuresBroken(h.name, f"{h.name} ensures {e.text}", clause=e),
                )
                status = REFUTED
                msg = f"{said} can be false after an applied event" + _trace_note(cex)
            else:
                status = UNKNOWN
                msg = f"{said}: Z3 gave no answer within {opts.limit_text()}"
            out.append(
                Result(name, "postcondition", h.name, status, msg, e.span, opts.bound,
                       bool(m.encoder.slots), cex, round(time.perf_counter() - t0, 4))
            )
    return out


def ensures_term(m: HandlerModel, e: ir.Ensures) -> Any:
    """The clause as a Z3 condition over the model's pre- and post-state."""
    enc = m.encoder
    env: dict[str, Any] = dict(m.args)
    h = m.handler
    if isinstance(h.auth, ir.AuthRole):
        env[h.auth.binder] = m.submitter
    olds: list = []
    cond = _lift_old(e.cond, olds)
    sides = []
    for j, sub in enumerate(olds):
        v, side = _side(enc, lambda sub=sub: enc.expr(sub, env, m.pre, z3.BoolVal(True)))
        env[f"$old{j}"] = v
        sides += side
    v, side = _side(enc, lambda: enc.cond(cond, env, m.post, z3.BoolVal(True)))
    return z3.And(*sides, *side, v)


def _side(enc: Any, f: Any) -> tuple[Any, list]:
    """Evaluate without adding implicit checks to the handler's requires; return them."""
    saved = enc.ok_explicit
    enc.ok_explicit = []
    try:
        v = f()
        side = enc.ok_explicit
    finally:
        enc.ok_explicit = saved
    return v, side


def _lift_old(e: Any, olds: list) -> Any:
    """Replace each ``old(x)`` by a local ``$oldN`` (bound to ``x`` in the pre-state)."""

    def lift(o: ir.Old) -> ir.Local:
        olds.append(o.expr)
        return ir.Local(name=f"$old{len(olds) - 1}", type=o.type)

    return replace_olds(e, lift)

