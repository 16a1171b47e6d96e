"""Issuance: every mint site is bounded by a declared cap, a rate or a declared issuer.

Per mintable asset that some handler mints:

* with a declared ``cap``, every site is bounded by it (the per-handler ``supply_cap`` check
  proves that no mint passes it unguarded);
* otherwise each mint site must be bounded on its own: minted only by a declared party
  (``by gateway``: issuance against deposits the adopters entrust to that party), or at a
  rate - Z3 proves a per-event ceiling (one of 10^2, 10^4, ... 10^18 minor units) for every
  applied event.  A site with neither (a mint of 10% of supply, a mint of an argument by
  anyone) makes the asset a **warning** that lists its unbounded sites: an uncapped mintable
  asset is a risk to state, never "nothing to check".
"""

from __future__ import annotations

import time

import z3

from .. import ir
from .footprint import open_roles, walk, who
from .options import Options
from .prepare import Prepared, Scope
from .result import PROVED, UNKNOWN, WARNING, Result
from .solver import solve_m

# per-event ceilings tried, in minor units
_RATES = (10**2, 10**4, 10**6, 10**9, 10**12, 10**18)


def check_issuance(scope: Scope) -> list[Result]:
    policy, preps, assume, opts, invs = (
        scope.policy, scope.preps, scope.assume, scope.opts, scope.invs
    )
    opened = open_roles(policy)
    sites: dict[str, list] = {}
    for h in policy.handlers:
        for s in walk(h.body):
            if isinstance(s, ir.Move) and s.kind == "mint":
                sites.setdefault(s.asset, []).append((h, s))
    out: list[Result] = []
    for asset in policy.assets:
        if asset.name not in sites:
            continue
        t0 = time.perf_counter()
        lines = []
        unbounded, undecided = [], []
        for h, s in sites[asset.name]:
            where = f"`{h.name}` line {s.span.line}"
            if asset.cap is not None:
                lines.append(f"{where}: within the cap")
                continue
            w = who(policy, h, opened)
            if w.kind == "param":
                lines.append(f"{where}: issued only by {w.text}")
                continue
            rate = _rate(policy, preps.get(h.name), assume.get(h.name, []), s, opts)
            if rate is None and _claims(s) is not None:
                rate = _burn_backed(policy, preps, assume, invs, asset.name, _claims(s), opts)
            if rate == "claims":
                rec, fld = _claims(s)
                lines.append(f"{where}: re-issues {rec}.{fld}, which only what earlier events "
                             f"burned of {asset.name} fills (backed by burns)")
            elif rate == "backed":
                lines.append(f"{where}: at most what the same event burns or its submitter "
                             "pays in (minor units)")
            elif rate is None:
                unbounded.append(where)
            elif rate == "unknown":
                undecided.append(where)
            else:
                lines.append(f"{where}: at most {_show(rate, asset)} per event")
        name = f"issuance.{asset.name}"
        if unbounded:
            status = WARNING
            msg = (
                f"{asset.name} is mintable with no cap, and "
                + ", ".join(unbounded)
                + " mint(s) an amount no cap, rate or declared issuer bounds: supply can grow "
                "without limit. Declare `cap N` on the asset, bound the amount with a "
                "`require`, or mint only from a handler a declared party submits"
                + (f" (bounded: {'; '.join(lines)})" if lines else "")
            )
        elif undecided:
            status = UNKNOWN
            msg = "no per-event bound decided within the time limit for " + ", ".join(undecided)
        else:
            status = PROVED
            how = f"its cap {_show(asset.cap, asset)}" if asset.cap is not None else "each site"
            msg = f"every mint of {asset.name} is bounded by {how}: " + "; ".join(lines)
        out.append(
            Result(name, "issuance", None, status, msg, asset.span, opts.bound, False, None,
                   round(time.perf_counter() - t0, 4))
        )
    return out


def _rate(policy: ir.Policy, prep, assume: list, s: ir.Move, opts: Options):
    """The smallest tried ceiling on what one event mints at ``s``; None: none holds."""
    if prep is None or prep.model is None:
        return "unknown"
    m = prep.model
    posts = [
        p for p in m.postings
        if p.kind == "mint" and (p.span.line, p.span.col) == (s.span.line, s.span.col)
    ]
    if not posts:
        return "unknown"
    total = z3.Sum(*[z3.If(p.guard, p.amount, 0) for p in posts])
    base = m.assumptions + prep.extra_assumptions + assume + [m.applied]
    # backed issuance: no more than the event burns or its submitter pays in (a receipt for
    # a deposit, burn-and-mint); unbounded only if what backs it is
    inflow = [
        z3.If(p.guard, p.amount, 0)
        for p in m.postings
        if p.dst_key[0].startswith("supply!")
        or (p.src_key[0].startswith("bal!") and p.src_key[1] is not None
            and p.src_key[1].eq(m.submitter))
    ]
    if inflow:
        r, _ = solve_m(base + [total > z3.Sum(*inflow)], m, opts.limits)
        if r == "unsat":
            return "backed"
    for cap in _RATES:  # each question has the run's own limit: no clock shared between them
        r, _ = solve_m(base + [total > cap], m, opts.limits)
        if r == "unsat":
            return cap
        if r == "unknown":
            return "unknown"
    return None


def _claims(s: ir.Move):
    """``(record, field)`` when the mint re-issues a record's amount field (``mint b.amount``)."""
    a = s.amount
    return (a.record, a.field) if isinstance(a, ir.RecordField) else None


def _burn_backed(policy, preps, assume, invs, asset: str, claim: tuple, opts: Options):
    """Is every mint that re-issues ``record.field`` backed by earlier burns?

    The claims C (the sum of ``field`` over live records) start at 0 (no records at
    genesis) and stay >= 0 (the field's range invariant).  If in every handler the growth
    of C plus what it re-issues from C is at most what the same event burns of the asset,
    then everything re-issued, in any history, is at most what was burned before: a bond
    burned on entry and minted back on exit, never more.  Z3 asks it per handler, together
    with "no record outside those the event touches changes" (the sum covers them)."""
    rec, fld = claim
    if f"{rec}.{fld} in range" not in {i.name for i in invs}:
        return None  # C >= 0 is not established
    for h in policy.handlers:
        prep = preps.get(h.name)
        if prep is None or prep.model is None:
            return "unknown"
        m = prep.model
        sites = {
            (x.span.line, x.span.col)
            for x in walk(h.body)
            if isinstance(x, ir.Move) and x.kind == "mint" and x.asset == asset
            and _claims(x) == claim
        }
        reissued = [
            z3.If(p.guard, p.amount, 0) for p in m.postings
            if p.kind == "mint" and (p.span.line, p.span.col) in sites
        ]
        burned = [
            z3.If(p.guard, p.amount, 0) for p in m.postings
            if p.dst_key[0] == f"supply!{asset}" and p.kind != "decay"
        ]
        live, val = f"live!{rec}", f"fld!{rec}!{fld}"

        def c(state, k):
            return z3.If(z3.Select(state.get(live), k), z3.Select(state.get(val), k), 0)

        keys = m.touched.get(rec, [])
        growth = []
        for i, k in enumerate(keys):
            first = z3.And(*[k != j for j in keys[:i]])  # each key counted once
            growth.append(z3.If(first, c(m.post, k) - c(m.pre, k), 0))
        other = z3.Int(f"claims!{rec}!other")
        untouched_changed = z3.And(*[other != k for k in keys], c(m.post, other) != c(m.pre, other))
        total = lambda xs: z3.Sum(*xs) if xs else z3.IntVal(0)  # noqa: E731
        base = m.assumptions + prep.extra_assumptions + assume.get(h.name, []) + [m.applied]
        bad = z3.Or(total(growth) + total(reissued) > total(burned), untouched_changed)
        r, _ = solve_m(base + [bad], m, opts.limits)
        if r == "unknown":
            return "unknown"
        if r == "sat":
            return None
    return "claims"


def _show(n: int, asset: ir.Asset) -> str:
    if asset.decimals:
        whole, frac = divmod(n, 10**asset.decimals)
        return f"{whole}.{frac:0{asset.decimals}d} {asset.name}"
    return f"{n} {asset.name}"
