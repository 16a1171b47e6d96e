"""Nothing stranded: value is never left where no rule can move it.

Two questions, each proved or refuted with a counterexample:

* **dissolve** - can an applied event that runs ``dissolve`` leave value in a pool, in the
  escrow of a live record, or in a stake?  After ``dissolve`` no event applies, so that
  value is lost to everyone unless the handler says where the remainder goes (``split all
  of``, ``refund rest of``) before dissolving.
* **closing a record** - when an event moves a record holding value into a new lifecycle
  stage (its bool and text fields: ``open``, ``status``), can some handler still pay that
  escrow out in that stage?  Z3 first finds such an event leaving value behind and the stage
  it leaves, then asks every handler that pays out of the record's escrow whether it can
  apply to a record in that stage holding value.  If none can, the value is stranded: the
  record is closed with money in it (a task closed without refunding the poster).
  Deleting a record that holds value is the ``delete_empty`` check (the runtime rejects it).
"""

from __future__ import annotations

import time
from typing import Any

import z3

from .. import ir
from .counterexample import counterexample
from .footprint import lifecycle_fields, walk
from .invariants import _inv_terms
from .observed import LeftBehind
from .options import Options
from .prepare import Prepared, Scope
from .result import PROVED, REFUTED, UNKNOWN, Result
from .search import _attach_trace, _trace_note
from .solver import _eval, solve_m

_STAGES = 3  # distinct lifecycle stages tried per closing event


def check_stranded(scope: Scope) -> list[Result]:
    policy, preps, assume, opts, invs = (
        scope.policy, scope.preps, scope.assume, scope.opts, scope.invs
    )
    out: list[Result] = []
    locked = {s.asset for h in policy.handlers for s in walk(h.body)
              if isinstance(s, ir.Move) and s.kind == "lock"}
    # each holding record's lifecycle fields, found once (a walk over every handler)
    stages = {rec.name: lifecycle_fields(policy, rec) for rec in policy.records
              if rec.holds is not None}
    for h in policy.handlers:
        prep = preps.get(h.name)
        if prep is None or prep.model is None:
            continue
        m = prep.model
        base = m.assumptions + prep.extra_assumptions + assume.get(h.name, [])
        for guard, span in m.encoder.dissolves:
            out.append(_dissolve(policy, h, m, base, guard, span, locked, invs, opts))
        out += _closing(policy, h, prep, base, preps, assume, opts, stages)
    return out


def _dissolve(policy, h, m, base, guard, span, locked, invs, opts) -> Result:
    t0 = time.perf_counter()
    left: list[tuple[str, Any]] = []
    extra: list = []
    for pool in policy.pools:
        left.append((f"pool {pool.name}", m.post.get(f"pool!{pool.name}") > 0))
    for rec in policy.records:
        if rec.holds is None:
            continue
        k = z3.Int(f"stranded!{rec.name}!key")
        pre_bal = z3.Select(m.pre.get(f"escrow!{rec.name}!{rec.holds}"), k)
        extra.append(pre_bal >= 0)
        extra += [_inv_terms(m, inv, m.pre, k) for inv in invs if inv.record == rec.name]
        live = z3.Select(m.post.get(f"live!{rec.name}"), k)
        bal = z3.Select(m.post.get(f"escrow!{rec.name}!{rec.holds}"), k)
        left.append((f"the escrow of a live {rec.name}", z3.And(live, bal > 0)))
    for asset in sorted(locked):
        q = z3.Int(f"stranded!stake!{asset}")
        extra.append(z3.Select(m.pre.get(f"stake!{asset}"), q) >= 0)
        left.append((f"a stake of {asset}", z3.Select(m.post.get(f"stake!{asset}"), q) > 0))
    name = f"{h.name}.stranded"
    if not left:
        return _res(name, h, PROVED, "`dissolve`: the policy has no pools, escrows or stakes",
                    span, opts, t0)
    anything = z3.Or(*[c for _, c in left])
    r, model = solve_m(base + extra + [m.applied, guard, anything], m, opts.limits)
    if r == "unsat":
        return _res(name, h, PROVED, f"`dissolve` (line {span.line}) leaves nothing behind: "
                    "every pool, escrow and stake is empty after it", span, opts, t0)
    if r == "unknown":
        return _res(name, h, UNKNOWN, f"Z3 gave no answer within {opts.limit_text()}",
                    span, opts, t0)
    where = [label for label, c in left if _eval(model, c) is True]
    cex = counterexample(m, model, policy, f"line {span.line}: `dissolve` with value left in "
                         + ", ".join(where))
    def fails(steps: list) -> Any:
        return z3.And(_dissolve_leaves(policy, steps[-1].models[0]), no_dissolve_before(steps))

    fails.wants_steps = True  # type: ignore[attr-defined]
    _attach_trace(policy, h.name, cex, opts, fails,
                  LeftBehind(h.name, "nothing is left in a pool, escrow or stake after dissolve"))
    msg = (f"`dissolve` (line {span.line}) can run with value still in {', '.join(where)}: "
           "after it no event applies, so that value is stranded. Pay out the remainder "
           "first (`split all of ...`, `refund rest of ...`)" + _trace_note(cex))
    return _res(name, h, REFUTED, msg, span, opts, t0, cex)


def no_dissolve_before(steps: list) -> Any:
    """No event before the last one of a chain dissolved the policy (the encoding does not
    model that nothing applies after ``dissolve``; the runtime refuses every later event)."""
    out = []
    for st in steps[:-1]:
        for k, mm in enumerate(st.models):
            ran = z3.Or(*[g for g, _ in mm.encoder.dissolves]) if mm.encoder.dissolves else None
            if ran is None:
                continue
            if len(st.models) == 1 and not st.skippable:
                out.append(z3.Not(ran))
            else:
                out.append(z3.Implies(st.sel == k, z3.Not(ran)))
    return z3.And(*out) if out else z3.BoolVal(True)


def _dissolve_leaves(policy: ir.Policy, mm: Any) -> Any:
    """In a trace's last event: some `dissolve` runs with value left in a pool (the part of
    the question a trace from the initial state can show without naming a record)."""
    pools = [mm.post.get(f"pool!{p.name}") > 0 for p in policy.pools]
    if not mm.encoder.dissolves or not pools:
        return z3.BoolVal(False)
    return z3.And(mm.applied, z3.Or(*[g for g, _ in mm.encoder.dissolves]), z3.Or(*pools))


def _sets_stage(h: ir.Handler, rec: ir.Record, fields: list) -> bool:
    names = {f.name for f in fields}
    for s in walk(h.body):
        if isinstance(s, ir.SetField) and s.record == rec.name and s.field in names:
            return True
        if isinstance(s, ir.Update) and s.record == rec.name and any(f in names
                                                                     for f, _ in s.values):
            return True
    return False


def _payers(preps: dict, rec: ir.Record) -> list:
    comp = f"escrow!{rec.name}!{rec.holds}"
    return [p for p in preps.values() if p.model is not None
            and any(q.src_key[0] == comp for q in p.model.postings)]


def _closing(policy, h, prep, base, preps, assume, opts, stages) -> list[Result]:
    m = prep.model
    out = []
    for rec in policy.records:
        fields = stages.get(rec.name)
        if rec.holds is None or not fields or not _sets_stage(h, rec, fields):
            continue
        keys = m.touched.get(rec.name, [])
        if not keys:
            continue
        t0 = time.perf_counter()
        comp = f"escrow!{rec.name}!{rec.holds}"
        payers = _payers(preps, rec)
        name = f"{h.name}.stranded.{rec.name}"
        status, msg, cex = PROVED, "", None
        for k in keys:
            pre_stage = [z3.Select(m.pre.get(f"fld!{rec.name}!{f.name}"), k) for f in fields]
            post_stage = [z3.Select(m.post.get(f"fld!{rec.name}!{f.name}"), k) for f in fields]
            holds = z3.And(z3.Select(m.post.get(f"live!{rec.name}"), k),
                           z3.Select(m.post.get(comp), k) > 0,
                           z3.Or(*[a != b for a, b in zip(pre_stage, post_stage)]))
            blocked: list = []
            for _ in range(_STAGES):
                r, model = solve_m(base + [m.applied, holds] + blocked, m, opts.limits)
                if r == "unknown":
                    status, msg = UNKNOWN, f"Z3 gave no answer within {opts.limit_text()}"
                    break
                if r == "unsat":
                    break
                raw = [model.eval(t, model_completion=True) for t in post_stage]
                blocked.append(z3.Or(*[t != v for t, v in zip(post_stage, raw)]))
                sigma = [_plain(m, f, v) for f, v in zip(fields, raw)]
                can = _someone_pays(rec, fields, sigma, payers, assume, opts)
                if can is True:
                    continue
                if can is None:
                    status, msg = UNKNOWN, "could not decide whether the record can be paid out"
                    break
                shown = ", ".join(f"{f.name} = {_lit(v)}" for f, v in zip(fields, sigma)
                                  if v is not None)
                cex = counterexample(m, model, policy,
                                     f"{rec.name} left holding {rec.holds} in stage {shown}")
                stage = {f.name: v for f, v in zip(fields, sigma) if v is not None}
                _attach_trace(policy, h.name, cex, opts,
                              lambda mm, rec=rec, fields=fields, sigma=sigma:
                                  _left_in(mm, rec, fields, sigma),
                              LeftBehind(h.name, f"a {rec.name} in stage {shown} holds "
                                         "nothing (no handler can pay it out there)",
                                         record=rec.name, stage=stage))
                status = REFUTED if cex.get("replayed") else UNKNOWN
                msg = (f"`{h.name}` can leave a {rec.name} holding {rec.holds} in stage "
                       f"{shown}, where no handler can pay its escrow out "
                       f"({', '.join(p.model.handler.name for p in payers) or 'none pays it'}"
                       " require another stage): the value is stranded. Refund or release the "
                       "rest before closing" + _trace_note(cex))
                if status == UNKNOWN:
                    msg = ("not decided: " + msg + ". Violated in some state the proved "
                           "invariants allow, but not reached from the initial state, so no "
                           "refutation is claimed (a declared invariant tying the escrow to the "
                           "record's fields would settle it)")
                break
            if status != PROVED:
                break
        if status == PROVED:
            msg = (f"whenever `{h.name}` moves a {rec.name} holding {rec.holds} to another "
                   "stage, a handler can still pay it out")
        out.append(_res(name, h, status, msg, h.span, opts, t0, cex))
    return out


def _someone_pays(rec, fields, sigma, payers, assume, opts):
    """Can some payer apply to a record in stage ``sigma`` holding value and pay it out?"""
    comp = f"escrow!{rec.name}!{rec.holds}"
    undecided = False
    for p in payers:
        mm = p.model
        for q in mm.postings:
            if q.src_key[0] != comp:
                continue
            j = q.src_key[1]
            stage = [z3.Select(mm.pre.get(f"fld!{rec.name}!{f.name}"), j) == _term(mm, v)
                     for f, v in zip(fields, sigma) if v is not None]
            cond = [mm.applied, q.guard, q.amount > 0,
                    z3.Select(mm.pre.get(f"live!{rec.name}"), j),
                    z3.Select(mm.pre.get(comp), j) > 0] + stage
            base = mm.assumptions + p.extra_assumptions + assume.get(mm.handler.name, [])
            r, _ = solve_m(base + cond, mm, opts.limits)
            if r == "sat":
                return True
            if r == "unknown":
                undecided = True
    return None if undecided else False


def _left_in(mm, rec, fields, sigma) -> Any:
    comp = f"escrow!{rec.name}!{rec.holds}"
    keys = mm.touched.get(rec.name, [])
    if not keys:
        return z3.BoolVal(False)
    return z3.And(mm.applied, z3.Or(*[
        z3.And(z3.Select(mm.post.get(comp), k) > 0,
               *[z3.Select(mm.post.get(f"fld!{rec.name}!{f.name}"), k) == _term(mm, v)
                 for f, v in zip(fields, sigma) if v is not None])
        for k in keys]))


def _plain(m: Any, f: ir.Field, v: Any) -> Any:
    """A stage value as Python (bool, or the text a code stands for; None: a text that is
    no constant of the policy, left unconstrained)."""
    if isinstance(f.type, ir.TBool):
        return z3.is_true(v)
    return m.encoder.codes.text(v.as_long()) if z3.is_int_value(v) else None


def _term(mm: Any, v: Any) -> Any:
    return z3.BoolVal(v) if isinstance(v, bool) else z3.IntVal(mm.encoder.codes.code(v))


def _lit(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    return f'"{v}"'


def _res(name, h, status, msg, span, opts, t0, cex=None) -> Result:
    return Result(name, "stranded", h.name, status, msg, span, opts.bound, False, cex,
                  round(time.perf_counter() - t0, 4))
