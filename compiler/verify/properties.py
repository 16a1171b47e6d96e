"""Declared properties checked per handler: split fairness (proportional, monotone,
symmetric, floor, cap) and per-event pool budgets.
"""

from __future__ import annotations

import time
from typing import Any, Optional

import z3

from .. import ir
from .counterexample import _split_extra, counterexample
from .model import HandlerModel
from .options import Options
from .prepare import Prepared
from .result import PROVED, REFUTED, Result, UNKNOWN, VACUOUS
from .replay import PaysOver, SplitUnfair
from .search import _attach_trace, _trace_note, replayed_status
from .solver import solve_m, solve_sat, solve_split
from .terms import Opt


def check_declared(
    policy: ir.Policy, preps: dict[str, Prepared], inv_assume: dict[str, list], opts: Options
) -> list[Result]:
    out = []
    for p in policy.properties:
        t0 = time.perf_counter()
        if isinstance(p, ir.SplitProperty):
            out.append(
                _split_property(
                    policy, p, preps.get(p.handler), inv_assume.get(p.handler, []), opts, t0
                )
            )
        elif isinstance(p, ir.BudgetProperty):
            out.append(
                _budget_property(
                    policy, p, preps.get(p.handler), inv_assume.get(p.handler, []), opts, t0
                )
            )
    return out


def _split_property(
    policy: ir.Policy,
    p: ir.SplitProperty,
    prep: Optional[Prepared],
    inv: list,
    opts: Options,
    t0: float,
) -> Result:
    def res(status: str, msg: str, cex: Optional[dict] = None, span: ir.Span = p.span) -> Result:
        return Result(
            p.name,
            f"split_{p.kind}",
            p.handler,
            status,
            msg,
            span,
            opts.bound,
            True,
            cex,
            round(time.perf_counter() - t0, 4),
        )

    if prep is None:
        return res(UNKNOWN, f"no handler named {p.handler}")
    if prep.model is None:
        return res(UNKNOWN, f"not modelled: {prep.error}")
    m = prep.model
    if not m.splits:
        return res(UNKNOWN, f"handler {p.handler} has no split")
    base = m.assumptions + prep.extra_assumptions + inv + [m.applied]
    undecided_premise: list[tuple] = []
    # split sites (a split in a loop is encoded once per item) an applied event was shown to
    # reach with the premise: the later copies of such a site need no vacuity question
    reached: set[tuple] = set()
    for si, sp in enumerate(m.splits):
        site = (sp.span.line, sp.span.col, sp.span.file)
        built = _split_prop_conds(p, m, sp)
        if isinstance(built, str):
            return res(UNKNOWN, built)
        conds, premise = built
        violated = z3.Not(z3.And(*conds))
        r, model = solve_split(sp, violated, base + [sp.guard, violated], m, opts.limits)
        if r == "sat":
            cex = counterexample(
                m,
                model,
                policy,
                f"{p.kind} fails for the split at line {sp.span.line}",
                _split_extra(sp),
            )

            def fails(mm: HandlerModel, si: int = si) -> Any:
                got = _split_prop_conds(p, mm, mm.splits[si])
                return (
                    z3.BoolVal(False)
                    if isinstance(got, str)
                    else z3.And(mm.applied, mm.splits[si].guard, z3.Not(z3.And(*got[0])))
                )

            _attach_trace(policy, p.handler, cex, opts, fails, SplitUnfair(p, si))
            return res(
                replayed_status(REFUTED, cex),
                f"{p.kind} fails for the split at line {sp.span.line} ({sp.method}): "
                f"weights {cex['weights']} (-1 = not a recipient) give shares {cex['shares']}"
                f" of {cex['split_amount']}" + _trace_note(cex),
                cex,
                sp.span,
            )
        if r == "unknown":
            return res(
                UNKNOWN, f"Z3 gave no answer within {opts.limit_text()} (bound {opts.bound})"
            )
        # vacuity: the premise must be reachable, or the proof says nothing
        if site in reached:
            continue
        r2, _ = solve_sat(
            base + [sp.guard, z3.Or(*premise) if premise else z3.BoolVal(False)],
            m,
            opts.limits.part(2),
        )
        if r2 == "unsat":
            return res(
                VACUOUS,
                f"holds only vacuously: no applied event reaches the split at line "
                f"{sp.span.line} with the property's premise",
                span=sp.span,
            )
        if r2 == "unknown":
            undecided_premise.append(site)
        else:
            reached.add(site)
    note = ""
    lines = sorted({site[0] for site in undecided_premise if site not in reached})
    if lines:
        note = (
            " (not confirmed non-vacuous: Z3 could not show within the resource limit that an applied"
            f" event reaches the split at line(s) {', '.join(map(str, lines))} with"
            " the property's premise)"
        )
    return res(
        PROVED,
        f"{p.kind} holds for every split in {p.handler}, for up to {opts.bound} recipients "
        "and all weights, amounts and parameters in range" + note,
    )


def _budget_terms(p: ir.BudgetProperty, m: HandlerModel) -> tuple:
    comp = f"pool!{p.pool}"
    outs = [z3.If(q.guard, q.amount, 0) for q in m.postings if q.src_key and q.src_key[0] == comp]
    paid = z3.Sum(*outs) if outs else z3.IntVal(0)
    return paid, m.encoder.expr(p.limit, {}, m.pre, z3.BoolVal(True))


def _split_prop_conds(p: ir.SplitProperty, m: HandlerModel, sp: Any) -> Any:
    """(conditions that must hold, premise) of split property ``p`` for split ``sp``, or a
    reason it cannot be checked."""
    enc = m.encoder
    k = len(sp.shares)
    bound = enc.expr(p.bound, {}, m.pre, z3.BoolVal(True)) if p.bound is not None else None
    if isinstance(bound, Opt):
        return "optional bound"
    inc, w, s = sp.included, sp.weights, sp.shares
    base_min = sp.minimum if sp.minimum is not None else z3.IntVal(0)
    conds: list = []
    premise: list = []
    if p.kind == "proportional":
        b = bound if bound is not None else z3.IntVal(1)
        for i in range(k):
            # |(share - minimum) - rest*w/W| <= b, cross-multiplied by W > 0; the linear
            # form (scaled share) is used when no cap can cut the share
            if sp.scaled is not None and sp.cap is None:
                diff = sp.scaled[i]
            else:
                diff = (s[i] - base_min) * sp.total - sp.rest * w[i]
            conds.append(
                z3.Implies(
                    z3.And(inc[i], sp.total > 0),
                    z3.And(diff <= b * sp.total, -diff <= b * sp.total),
                )
            )
        premise.append(z3.And(sp.total > 0, sp.n > 0))
    elif p.kind == "monotone":
        for i in range(k):
            for j in range(k):
                if i != j:
                    conds.append(z3.Implies(z3.And(inc[i], inc[j], w[i] > w[j]), s[i] >= s[j]))
                    premise.append(z3.And(inc[i], inc[j], w[i] > w[j]))
    elif p.kind == "symmetric":
        b = bound if bound is not None else z3.IntVal(1)
        for i in range(k):
            for j in range(i + 1, k):
                conds.append(
                    z3.Implies(
                        z3.And(inc[i], inc[j], w[i] == w[j]),
                        z3.And(s[i] - s[j] <= b, s[j] - s[i] <= b),
                    )
                )
                premise.append(z3.And(inc[i], inc[j], w[i] == w[j]))
    elif p.kind in ("floor", "cap"):
        if bound is None:
            return f"{p.kind} property without a bound"
        for i in range(k):
            conds.append(z3.Implies(inc[i], s[i] >= bound if p.kind == "floor" else s[i] <= bound))
        premise += list(inc)
    else:
        return f"unknown split property kind {p.kind}"
    return conds, premise


def _budget_property(
    policy: ir.Policy,
    p: ir.BudgetProperty,
    prep: Optional[Prepared],
    inv: list,
    opts: Options,
    t0: float,
) -> Result:
    def res(status: str, msg: str, cex: Optional[dict] = None) -> Result:
        bounded = prep is not None and prep.model is not None and bool(prep.model.encoder.slots)
        return Result(
            p.name,
            "budget",
            p.handler,
            status,
            msg,
            p.span,
            opts.bound,
            bounded,
            cex,
            round(time.perf_counter() - t0, 4),
        )

    if prep is None:
        return res(UNKNOWN, f"no handler named {p.handler}")
    if prep.model is None:
        return res(UNKNOWN, f"not modelled: {prep.error}")
    m = prep.model
    paid, limit = _budget_terms(p, m)
    base = m.assumptions + prep.extra_assumptions + inv + [m.applied]
    r, model = solve_m(base + [paid > limit], m, opts.limits)
    if r == "sat":
        cex = counterexample(
            m,
            model,
            policy,
            f"pays {p.pool} more than the limit",
            {"paid_from_pool": paid, "limit": limit},
        )

        def fails(mm: HandlerModel) -> Any:
            pd, lm = _budget_terms(p, mm)
            return z3.And(mm.applied, pd > lm)

        _attach_trace(policy, p.handler, cex, opts, fails, PaysOver(p))
        return res(
            replayed_status(REFUTED, cex),
            f"{p.handler} can pay {cex['paid_from_pool']} minor units out of {p.pool} "
            f"in one event; the limit is {cex['limit']}" + _trace_note(cex),
            cex,
        )
    if r == "unknown":
        return res(UNKNOWN, f"Z3 gave no answer within {opts.limit_text()}")
    if not any(q.src_key and q.src_key[0] == f"pool!{p.pool}" for q in m.postings):
        return res(
            PROVED,
            f"{p.handler} never pays more than the limit out of {p.pool} in one event "
            f"(trivially: it has no posting out of {p.pool})",
        )
    return res(PROVED, f"{p.handler} never pays more than the limit out of {p.pool} in one event")
