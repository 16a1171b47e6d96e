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
from .prepare import Prepared
from .result import PROVED, UNKNOWN, WARNING, Result
from .solver import solve_m

# per-event ceilings tried, in minor units
_RATES = (10**2, 10**4, 10**6, 10**9, 10**12, 10**18)


def check_issuance(
    policy: ir.Policy,
    preps: dict[str, Prepared],
    assume: dict[str, list],
    opts: Options,
    invs: list,
) -> list[Result]:
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
            if rate == "backed":
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


def _show(n: int, asset: ir.Asset) -> str:
    if asset.decimals:
        whole, frac = divmod(n, 10**asset.decimals)
        return f"{whole}.{frac:0{asset.decimals}d} {asset.name}"
    return f"{n} {asset.name}"
