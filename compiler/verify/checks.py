"""The built-in per-handler checks (see :mod:`.catalogue`): applicable, reachability,
conservation, the runtime money checks, rounding.
"""

from __future__ import annotations

import time
from typing import Any, Optional

import z3

from .. import ir
from .catalogue import BUILTIN
from .counterexample import _split_extra, counterexample
from .model import HandlerModel
from .options import Options
from .prepare import Prepared
from .replay import REFUSAL_CODES, Refusal
from .result import GUARD, PROVED, REFUTED, Result, UNKNOWN, VACUOUS
from .search import _attach_trace, _trace_note, replayed_status
from .solver import Session, shares_context, solve_m, solve_sat, solve_split


@shares_context
def check_handler(
    policy: ir.Policy, prep: Prepared, inv_assume: list, opts: Options
) -> list[Result]:
    m = prep.model
    h = m.handler
    out: list[Result] = []
    base = m.assumptions + prep.extra_assumptions + inv_assume
    applied = m.applied
    bounded = bool(m.encoder.slots)

    def res(
        kind: str,
        status: str,
        message: str,
        span: ir.Span = h.span,
        cex: Optional[dict] = None,
        name: Optional[str] = None,
        t0: float = 0.0,
    ) -> Result:
        return Result(
            name or f"{h.name}.{kind}",
            kind,
            h.name,
            status,
            message,
            span,
            opts.bound,
            bounded,
            cex,
            round(time.perf_counter() - t0, 4) if t0 else 0.0,
        )

    t0 = time.perf_counter()
    r, model = solve_sat(base + [applied], m, opts.limits)
    if r == "unsat":
        out.append(
            res(
                "applicable",
                VACUOUS,
                "the handler can never apply: its requires (with the "
                "declared ranges and invariants) are unsatisfiable; no property of it is proved",
                t0=t0,
            )
        )
        for k in (
            "reachability",
            "conservation",
            "non_negative",
            "no_overdraft",
            "escrow_bound",
            "supply_cap",
            "delete_empty",
            "rounding",
        ):
            out.append(res(k, VACUOUS, "not checked: the handler can never apply"))
        return out
    if r == "unknown":
        out.append(
            res(
                "applicable",
                UNKNOWN,
                f"could not decide within {opts.limit_text()} whether the handler can apply",
                t0=t0,
            )
        )
    else:
        out.append(
            res("applicable", PROVED, "the handler can apply (its requires are satisfiable)", t0=t0)
        )

    # reachability: a branch no applied event can take is dead code (a warning, not a proof)
    t0 = time.perf_counter()
    dead, undecided = [], 0
    # a branch inside a loop is encoded once per item: it is dead only if no copy is reachable
    grouped: dict[tuple, list] = {}
    for span, guard, which in m.encoder.branches:
        grouped.setdefault((span.line, span.col, which), []).append((span, guard))
    for (_, _, which), copies in grouped.items():
        span = copies[0][0]
        guard = z3.Or(*[g for _, g in copies])
        r, _ = solve_sat(base + [applied, guard], m, opts.limits)
        if r == "unsat":
            dead.append(f"line {span.line} ({which} branch)")
        elif r == "unknown":
            undecided += 1
    if m.encoder.branches:
        if dead:
            out.append(
                res(
                    "reachability",
                    VACUOUS,
                    "no applied event reaches "
                    + ", ".join(dead)
                    + ": dead code, or every path through it is rejected",
                    t0=t0,
                )
            )
        elif undecided:
            out.append(
                res(
                    "reachability",
                    UNKNOWN,
                    f"{undecided} branch(es) not decided within {opts.limit_text()}",
                    t0=t0,
                )
            )
        else:
            out.append(
                res("reachability", PROVED, "every branch can be taken by an applied event", t0=t0)
            )

    # conservation: structural (postings are balanced by construction) + mint/burn permissions
    t0 = time.perf_counter()
    bad = []
    for p in m.postings:
        asset = policy.asset(p.asset)
        if p.src_key[0].startswith("supply!") and not asset.mintable:
            bad.append(f"line {p.span.line}: mints {p.asset}, which is not mintable")
        if p.dst_key[0].startswith("supply!") and not asset.burnable and p.kind != "decay":
            bad.append(f"line {p.span.line}: burns {p.asset}, which is not burnable")
    if bad:
        out.append(res("conservation", REFUTED, "; ".join(bad), t0=t0))
    else:
        out.append(
            res(
                "conservation",
                PROVED,
                "every posting balances per asset (one asset, two "
                "accounts); supply changes only by declared mint/burn",
                t0=t0,
            )
        )

    groups = {
        "non_negative": ("negative_amount", "split_input"),
        "no_overdraft": ("overdraft",),
        "escrow_bound": ("escrow_overdraft",),
        "supply_cap": ("supply_cap",),
        "delete_empty": ("stranded",),
    }
    # One question first: can every require hold and some runtime money check still fail?
    # Usually not, and then every group below is proved by this one answer; only a possible
    # failure (or no answer) needs the per-check questions, which find the first one.
    # The one question goes to the incremental solver, then gets a fortieth of the limit:
    # when it is hard, the per-check questions (each with the full limit) are usually easier
    # than their disjunction (commons_maintenance's allocation: 2M units spent undecided).
    t0 = time.perf_counter()
    # the questions share the handler (an incremental solver holding it)
    session = Session(m, base + [m.ok_explicit], opts.limits)
    all_pass = z3.And(*[z3.Implies(o.guard, o.cond) for o in m.obligations])
    r_all = (
        "unsat"
        if not m.obligations or session.proves([z3.Not(all_pass)])
        else solve_m(base + [m.ok_explicit, z3.Not(all_pass)], m, opts.limits.part(40)).status
    )
    t_all = time.perf_counter() - t0
    for kind, ob_kinds in groups.items():
        t0 = time.perf_counter() - (t_all if r_all == "unsat" else 0.0) / len(groups)
        obs = [o for o in m.obligations if o.kind in ob_kinds]
        status, msg, cex, span = PROVED, "", None, h.span
        unknown = False
        for o in obs if r_all != "unsat" else ():
            # the question: can every require hold, every earlier runtime check pass (else the
            # event was already rejected there), and this check still fail?
            earlier = [z3.Implies(e.guard, e.cond) for e in m.obligations[: m.obligations.index(o)]]
            r, model = session.ask([o.guard, z3.Not(o.cond)] + earlier)
            if r == "sat":
                bad_status = (
                    GUARD if kind in ("no_overdraft", "supply_cap", "delete_empty") else REFUTED
                )
                extra = {"amount": o.amount} if o.amount is not None else None
                cex = counterexample(
                    m,
                    model,
                    policy,
                    f"line {o.span.line}: {o.detail}",
                    extra,
                    account=(o.account, o.index),
                )
                j = m.obligations.index(o)
                _attach_trace(
                    policy,
                    h.name,
                    cex,
                    opts,
                    lambda mm, j=j: _obligation_fails(mm, j),
                    Refusal(
                        handler=h.name,
                        describe=f"{kind} (line {o.span.line}): {BUILTIN[kind]}",
                        codes=REFUSAL_CODES[o.kind],
                        line=o.span.line,
                    ),
                )
                status, span = replayed_status(bad_status, cex), o.span
                msg = _message(kind, o, cex) + _trace_note(cex)
                break
            if r == "unknown":
                unknown = True
        if status == PROVED:
            if unknown:
                status, msg = UNKNOWN, f"Z3 gave no answer within {opts.limit_text()}"
            elif not obs:
                msg = "nothing to check: the handler moves no value of this kind"
            else:
                msg = BUILTIN[kind]
        out.append(res(kind, status, msg, span, cex, t0=t0))

    # rounding
    t0 = time.perf_counter()
    if not m.splits:
        out.append(res("rounding", PROVED, "no split in this handler", t0=t0))
    else:
        status, msg, cex, span = PROVED, BUILTIN["rounding"], None, h.span
        for sp in m.splits:
            violated = z3.Not(z3.And(*_rounding_conds(sp)))
            r, model = solve_split(
                sp, violated, base + [applied, sp.guard, violated], m, opts.limits
            )
            if r == "sat":
                cex = counterexample(
                    m,
                    model,
                    policy,
                    f"line {sp.span.line}: split loses or creates units",
                    _split_extra(sp),
                )
                i = m.splits.index(sp)
                _attach_trace(
                    policy,
                    h.name,
                    cex,
                    opts,
                    lambda mm, i=i: z3.And(
                        mm.applied,
                        mm.splits[i].guard,
                        z3.Not(z3.And(*_rounding_conds(mm.splits[i]))),
                    ),
                )
                status, span = REFUTED, sp.span
                msg = (
                    f"the split at line {sp.span.line} ({sp.method}) does not distribute exactly: "
                    f"shares {cex.get('shares')}, leftover {cex.get('leftover')} "
                    f"of {cex.get('split_amount')}"
                )
                break
            if r == "unknown":
                status, msg = UNKNOWN, f"Z3 gave no answer within {opts.limit_text()}"
        out.append(res("rounding", status, msg, span, cex, t0=t0))
    return out


def _rounding_conds(sp: Any) -> list:
    conds = [x >= 0 for x in sp.shares] + [sp.leftover >= 0]
    if sp.method != "floor_dust" and sp.cap is None:
        conds.append(z3.Implies(z3.And(sp.n > 0, sp.total > 0), sp.leftover == 0))
    return conds


def _obligation_fails(m: HandlerModel, j: int) -> Any:
    o = m.obligations[j]
    earlier = [z3.Implies(e.guard, e.cond) for e in m.obligations[:j]]
    return z3.And(m.ok_explicit, o.guard, z3.Not(o.cond), *earlier)


def _message(kind: str, o: Any, cex: dict) -> str:
    amt = cex.get("amount")
    if kind == "non_negative":
        return (
            f"line {o.span.line}: {o.detail} is possible for inputs that satisfy every require "
            f"(amount {amt}); the runtime would reject these events, so the settlement can never "
            "complete for them - a formula or parameter-range bug"
        )
    if kind == "no_overdraft":
        return (
            f"line {o.span.line}: {o.detail} ({cex.get('account', o.account)}), with every require "
            f"satisfied (amount {amt}). The runtime rejects such an event (no value is created), "
            "but no `require` states why: add a guard such as "
            '`require balance(...) >= amount else "..."`'
        )
    if kind == "escrow_bound":
        return (
            f"line {o.span.line}: the escrow can be asked to release more than it holds "
            f"(amount {amt}), e.g. when it was already released: the handler does not ensure "
            "an escrow is released at most once and at most its amount"
        )
    if kind == "delete_empty":
        return (
            f"line {o.span.line}: {o.detail} ({amt} minor units left) with every require "
            "satisfied. The runtime rejects such an event rather than strand the value; "
            "refund or release the rest first, or require the escrow to be empty"
        )
    if kind == "supply_cap":
        return (
            f"line {o.span.line}: {o.detail} (mint {amt}) with every require satisfied. "
            "The runtime "
            "rejects such an event, but no `require` states why: guard it with `supply(...)`"
        )
    return o.detail
