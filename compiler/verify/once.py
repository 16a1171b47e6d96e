"""Once only: a record is paid out of once per lifecycle stage; a settled record is not paid
again.

For every submitted handler that addresses records (record-typed arguments) and moves value
out of someone else's account (an escrow, a pool, another party's balance or stake) or
mints a reward, Z3 is
asked whether the *same event* - same arguments, same submitter - can apply twice in a row,
from any pre-state satisfying the proved invariants, with both applications paying a
positive amount, while the first left every counter, amount and time field of the addressed
records unchanged.  Such fields are how a policy records progress (``paid_milestones``,
``collected``, ``last_paid``); when none moved, the record is in the same lifecycle stage
(its flags and states may have changed but nothing now says the payment happened), so the
second payment is a double payment: a case ruled twice, a claim paid twice.

Timed handlers are left out: the runtime fires each deadline once per record and each
``every`` once per period.
"""

from __future__ import annotations

import time
from typing import Any

import z3

from .. import ir
from .counterexample import counterexample
from .encode import Encoder
from .footprint import debits, is_not, keyed_records, record_args
from .invariants import _inv_terms_at
from .observed import PaidAgain
from .options import Options
from .prepare import Prepared, Scope
from .result import PROVED, REFUTED, UNKNOWN, Result
from .search import _attach_trace, _trace_note
from .solver import solve
from .terms import Opt, SList, Unsupported

_PROGRESS = (ir.TInt, ir.TAmount, ir.TTime, ir.TDuration)


def check_once(scope: Scope) -> list[Result]:
    policy, preps, opts, invs = scope.policy, scope.preps, scope.opts, scope.invs
    out: list[Result] = []
    for h in policy.handlers:
        prep = preps.get(h.name)
        if h.kind != "event" or prep is None or prep.model is None:
            continue
        addressed = record_args(h)
        keyed = keyed_records(h)  # records named by a composite key of arguments + submitter
        if not (addressed or keyed) or not prep.model.postings:
            continue
        t0 = time.perf_counter()
        try:
            m1, m2, formulas = _twice(policy, h, prep, opts, invs)
        except Unsupported as exc:
            out.append(_res(h, UNKNOWN, f"not checked: {exc}", opts, t0))
            continue
        progress = _progress(policy, m1, addressed, keyed)
        goal = [m1.applied, m2.applied, _pays(m1), _pays(m2)] + [z3.Not(p) for p in progress]
        r, model = solve(formulas + goal, opts.limits)
        if r == "unsat":
            out.append(_res(h, PROVED, "the same event cannot pay twice without the record "
                            "advancing: " + ", ".join(
                                [f"{a}: {rec}" for a, rec in addressed]
                                + [f"{rec}({label})" for label, rec, _ in keyed]),
                            opts, t0))
        elif r == "sat":
            cex = counterexample(m2, model, policy, f"`{h.name}` applied a second time with "
                                 "the same arguments pays again")
            cex["first_event"] = counterexample(m1, model, policy, "the first event").get("args")
            watch = {rec: _progress_fields(policy, rec)
                     for rec in [r for _, r in addressed] + [r for _, r, _ in keyed]}
            _attach_trace(policy, h.name, cex, opts, _again(policy, h, addressed, keyed),
                          PaidAgain(h.name, f"one {h.name} settles a record once",
                                    watch=watch))
            msg = (
                f"the same `{h.name}` event can apply twice and pay out both times: the first "
                "changes no counter, amount or time field of "
                + ", ".join([f"{rec}({a})" for a, rec in addressed]
                            + [f"{rec}({label})" for label, rec, _ in keyed])
                + ", so nothing stops the second (a settled record paid again). Require the "
                "record's state (e.g. `require c.open`) and change it when paying"
                + _trace_note(cex)
            )
            out.append(_res(h, REFUTED, msg, opts, t0, cex))
        else:
            out.append(_res(h, UNKNOWN, f"Z3 gave no answer within {opts.limit_text()}",
                            opts, t0))
    return out


def _progress_fields(policy: ir.Policy, rec: str) -> list[str]:
    """The counter, amount and time fields of ``rec``: how a policy records progress."""
    out = []
    for f in policy.record(rec).fields:
        t = f.type.inner if isinstance(f.type, ir.TOptional) else f.type
        if isinstance(t, _PROGRESS):
            out.append(f.name)
    return out


def _progress(policy: ir.Policy, m: Any, addressed: list, keyed: list = ()) -> list:
    """Terms saying the event changed a counter, amount or time field of a record it
    addresses (by its record-typed arguments, or by a composite key of its arguments and
    submitter)."""
    out = []
    env = dict(m.args)
    if isinstance(m.handler.auth, ir.AuthRole):
        env[m.handler.auth.binder] = m.submitter
    keys = [(m.args[a], rec) for a, rec in addressed] + [
        (m.encoder.expr(key, env, m.pre, z3.BoolVal(True)), rec) for _label, rec, key in keyed]
    for k, rec in keys:
        for f in policy.record(rec).fields:
            t = f.type.inner if isinstance(f.type, ir.TOptional) else f.type
            if isinstance(t, _PROGRESS):
                comp = f"fld!{rec}!{f.name}"
                out.append(z3.Select(m.post.get(comp), k) != z3.Select(m.pre.get(comp), k))
    return out


def _same(a: Any, b: Any) -> Any:
    if isinstance(a, Opt) and isinstance(b, Opt):
        return z3.And(a.some == b.some, z3.Implies(a.some, a.val == b.val))
    if isinstance(a, SList) or isinstance(b, SList):
        return z3.And(a.n == b.n, *[x == y for x, y in zip(a.items, b.items)])
    return a == b


def _again(policy: ir.Policy, h: ir.Handler, addressed: list, keyed: list = ()) -> Any:
    """For the search from genesis: the last two events are ``h`` with the same arguments and
    submitter, both pay, and the first advanced none of the records it addresses."""

    def fails(steps: list) -> Any:
        if len(steps) < 2 or len(steps[-2].models) != 1 or steps[-2].skippable:
            return z3.BoolVal(False)
        m1, m2 = steps[-2].models[0], steps[-1].models[0]
        if m1.handler.name != h.name:
            return z3.BoolVal(False)
        same = [_same(m1.args[f.name], m2.args[f.name]) for f in h.params]
        return z3.And(m2.applied, m1.submitter == m2.submitter, *same, _pays(m1), _pays(m2),
                      *[z3.Not(p) for p in _progress(policy, m1, addressed, keyed)])

    fails.wants_steps = True  # type: ignore[attr-defined]
    return fails


def _pays(m: Any) -> Any:
    """Some posting moves a positive amount out of an account the submitter does not own,
    or mints a reward (a reward minted twice is paid twice)."""
    terms = [z3.And(p.guard, p.amount > 0) for p in m.postings
             if p.src_key[0].startswith("supply!")]
    for p in debits(m):
        kind = p.src_key[0].split("!")[0]
        mine = (
            z3.BoolVal(False) if kind in ("escrow", "pool")
            else z3.Not(is_not(m.submitter, p.src_key[1]))
        )
        terms.append(z3.And(p.guard, p.amount > 0, z3.Not(mine)))
    return z3.Or(*terms) if terms else z3.BoolVal(False)


def _twice(policy: ir.Policy, h: ir.Handler, prep: Prepared, opts: Options,
           invs: list) -> tuple:
    """``h`` twice with the same inputs: the first is the handler's own encoding (``prep``,
    as every other check asks about it), the second is encoded from its post-state; both
    from a pre-state satisfying the invariants (at every key either event touches)."""
    m1 = prep.model
    e1 = m1.encoder
    e2 = Encoder(policy, bound=opts.bound, codes=e1.codes, prefix="once2!", shared=e1.shared,
                 fixed_params=opts.fixed_params)
    m2 = e2.encode(h, start=dict(m1.post.cur))
    formulas = m1.assumptions + prep.extra_assumptions + m2.assumptions
    # the invariants at the keys only the second event touches are read from the first's
    # encoder: what that adds to it (touches, reads) is undone, as prepare() does
    n_reads = len(e1.balance_reads)
    touched = {k: list(v) for k, v in e1.touched.items()}
    for inv in invs:
        formulas += prep.inv_pre[inv.name]
        if inv.record is None:
            continue
        new = [k for k in m2.touched.get(inv.record, [])
               if not any(k.eq(o) for o in touched.get(inv.record, []))]
        if new:
            formulas += _inv_terms_at(m1, inv, m1.pre, new, z3.Int(f"inv!{inv.record}!key"))
    formulas += e1.finish_reads(n_reads)
    del e1.balance_reads[n_reads:]
    e1.touched.clear()
    e1.touched.update(touched)
    return m1, m2, formulas


def _res(h: ir.Handler, status: str, msg: str, opts: Options, t0: float,
         cex: Any = None) -> Result:
    return Result(f"{h.name}.once", "once", h.name, status, msg, h.span, opts.bound, False,
                  cex, round(time.perf_counter() - t0, 4))
