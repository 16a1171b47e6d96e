"""`charter diff OLD NEW`: do two versions of a policy settle identically?

For each handler present in both versions, both bodies are encoded over the
*same* symbolic inputs (parameters and arguments matched by name and type,
submitter, time, pre-state balances, records and collections).  The versions
are equivalent on a handler when, for every such input, either both reject
the event or both apply it and leave every balance (party, stake, pool,
escrow, supply) and every piece of state (record fields and existence, role
members and attributes, rights) the same: equal net effect of the postings,
and equal state for every later event.  Two versions that route value through
different intermediate postings but end in the same balances are equivalent.
Otherwise Z3's model is an input where they differ, shown with both outcomes
side by side.

Parameters that exist in both versions are compared at equal values within
the intersection of their declared ranges; a parameter only one side has
ranges over its own declared range.
"""

from __future__ import annotations

import json
import time
from typing import Any, Optional

import attrs
import z3

from . import ir
from .verify.counterexample import counterexample
from .verify.encode import Encoder
from .verify.model import HandlerModel
from .verify.naming import Namer, _describe, _show, collect_ints
from .verify.solver import _eval, fresh_context, solve
from .verify.terms import Codes, Unsupported


@attrs.define
class HandlerDiff:
    handler: str
    status: str  # equivalent | different | unknown
    message: str
    example: Optional[dict] = None
    seconds: float = 0.0


@attrs.define
class DiffReport:
    old: str
    new: str
    handlers: list
    only_old: list
    only_new: list
    bound: int
    params: list = attrs.Factory(list)  # parameter declarations that differ (text)


_MONEY = ("bal", "stake", "pool", "escrow", "supply")


def _state_components(a: HandlerModel, b: HandlerModel) -> set[str]:
    """Everything either version changes: balances, and record/role/right state (which decides
    what later events do)."""
    return set(a.post.cur) | set(b.post.cur)


def _describe_component(comp: str) -> str:
    parts = comp.split("!")
    kind = parts[0]
    if kind in _MONEY:
        return {
            "bal": "party balances",
            "stake": "stakes",
            "pool": f"pool {parts[-1]}",
            "escrow": f"escrow of {parts[1]}",
            "supply": f"supply of {parts[-1]}",
        }[kind] + (f" ({parts[1]})" if kind in ("bal", "stake") else "")
    if kind in ("fld", "some"):
        return f"field {parts[1]}.{parts[2]}"
    if kind == "live":
        return f"which {parts[1]} records exist"
    if kind == "role":
        return f"members of {parts[1]}"
    if kind == "attr":
        return f"attribute {parts[1]}.{parts[2]}"
    if kind == "right":
        return f"holders of right {parts[1]}"
    return comp


def _outcome(m: HandlerModel, model: z3.ModelRef, policy: ir.Policy, namer: Namer) -> dict:
    applied = bool(_eval(model, m.applied))
    postings = []
    if applied:
        for p in m.postings:
            if not _eval(model, p.guard):
                continue
            amt = _eval(model, p.amount)
            if amt == 0:
                continue
            src = _describe(
                p.src_key[0],
                _eval(model, p.src_key[1]) if p.src_key[1] is not None else None,
                namer,
            )
            dst = _describe(
                p.dst_key[0],
                _eval(model, p.dst_key[1]) if p.dst_key[1] is not None else None,
                namer,
            )
            postings.append(
                {
                    "kind": p.kind,
                    "from": src,
                    "to": dst,
                    "line": p.span.line,
                    "amount": _show(amt, ir.TAmount(asset=p.asset), policy),
                }
            )
    out: dict[str, Any] = {"applied": applied, "postings": postings}
    if not applied:
        out["why"] = _why_rejected(m, model)
    return out


def _why_rejected(m: HandlerModel, model: z3.ModelRef) -> str:
    for o in m.obligations:
        if _eval(model, o.guard) and not _eval(model, o.cond):
            return f"line {o.span.line}: {o.detail}"
    return "a require (or an implicit check) fails"


def diff_handler(
    old: ir.Policy, new: ir.Policy, name: str, bound: int, timeout_ms: int
) -> HandlerDiff:
    t0 = time.perf_counter()
    shared: dict = {}
    codes = Codes()
    try:
        ea = Encoder(old, bound=bound, codes=codes, prefix="old!", shared=shared)
        ma = ea.encode(old.handler(name))
        eb = Encoder(new, bound=bound, codes=codes, prefix="new!", shared=shared)
        mb = eb.encode(new.handler(name))
    except Unsupported as exc:
        return HandlerDiff(name, "unknown", f"not compared: the encoding does not support {exc}")
    except (z3.Z3Exception, TypeError, ValueError, KeyError, AttributeError) as exc:
        return HandlerDiff(name, "unknown", f"not compared: internal encoding error ({exc})")
    base = ma.assumptions + mb.assumptions + ea.finish_reads() + eb.finish_reads()
    differs = [ma.applied != mb.applied]
    both = z3.And(ma.applied, mb.applied)
    comps = []
    for comp in sorted(_state_components(ma, mb)):
        try:
            ne = ma.post.get(comp) != mb.post.get(comp)
        except z3.Z3Exception:  # the versions declare the component with different types
            continue
        comps.append((comp, ne))
        differs.append(z3.And(both, ne))
    r, model = solve(base + [z3.Or(*differs)], timeout_ms)
    secs = round(time.perf_counter() - t0, 4)
    if r == "unsat":
        return HandlerDiff(
            name,
            "equivalent",
            f"same outcome, balances and state for every input (collections up to {bound} items)",
            None,
            secs,
        )
    if r == "unknown":
        return HandlerDiff(name, "unknown", f"Z3 gave no answer within {timeout_ms} ms", None, secs)
    ints = collect_ints(ma, model)
    collect_ints(mb, model, ints)
    namer = Namer(ea, model, ints)
    inputs = counterexample(ma, model, old, "versions differ", namer=namer)
    example = {
        "input": {
            k: inputs[k]
            for k in ("params", "args", "submitter", "time", "pre_state", "records", "collections")
        },
        "old": _outcome(ma, model, old, namer),
        "new": _outcome(mb, model, new, namer),
        "event": inputs["scenario"]["event"],
        "differs_in": sorted(
            {
                _describe_component(c)
                for c, ne in comps
                if z3.is_true(model.eval(z3.And(both, ne), model_completion=True))
            }
        )
        or (
            ["whether the event is applied"]
            if bool(_eval(model, ma.applied)) != bool(_eval(model, mb.applied))
            else []
        ),
    }
    return HandlerDiff(name, "different", "an input settles differently", example, secs)


def diff(old: ir.Policy, new: ir.Policy, bound: int = 3, timeout_ms: int = 5000) -> DiffReport:
    fresh_context()
    names_old = [h.name for h in old.handlers]
    names_new = {h.name for h in new.handlers}
    handlers = [diff_handler(old, new, n, bound, timeout_ms) for n in names_old if n in names_new]
    return DiffReport(
        f"{old.name} {old.version}",
        f"{new.name} {new.version}",
        handlers,
        [n for n in names_old if n not in names_new],
        [h.name for h in new.handlers if h.name not in set(names_old)],
        bound,
        _param_changes(old, new),
    )


def _param_changes(old: ir.Policy, new: ir.Policy) -> list[str]:
    """Parameters whose type, default or range changed (handlers are compared at equal values
    within both ranges, so a widened range shows up here, not as a handler difference)."""
    a = {p.name: p for p in old.params}
    b = {p.name: p for p in new.params}
    out = []
    for name in sorted(set(a) | set(b)):
        if name not in b:
            out.append(f"{name}: removed")
        elif name not in a:
            out.append(
                f"{name}: added (default {b[name].default}, range {b[name].lo}..{b[name].hi})"
            )
        else:
            x, y = a[name], b[name]
            if (x.type, x.default, x.lo, x.hi) != (y.type, y.default, y.lo, y.hi):
                out.append(
                    f"{name}: default {x.default} -> {y.default}, "
                    f"range {x.lo}..{x.hi} -> {y.lo}..{y.hi}"
                )
    return out


def render_text(rep: DiffReport) -> str:
    out = [f"diff {rep.old} -> {rep.new} (collections up to {rep.bound} items)"]
    for c in rep.params:
        out.append(f"  parameter     {c}")
    for n in rep.only_old:
        out.append(f"  removed       {n}")
    for n in rep.only_new:
        out.append(f"  added         {n}")
    for h in rep.handlers:
        out.append(f"  {h.status:<13} {h.handler}: {h.message}")
        if h.example:
            ex = h.example
            inp = ex["input"]
            if inp["params"]:
                out.append(
                    "      params:  " + ", ".join(f"{k} = {v}" for k, v in inp["params"].items())
                )
            out.append(f"      event:   {json.dumps(ex['event'], sort_keys=True)}")
            out.append(f"      differs: {', '.join(ex['differs_in'])}")
            for k, v in inp["pre_state"].items():
                out.append(f"      before:  {k} = {v}")
            for k, v in inp["records"].items():
                if v.get("exists"):
                    out.append(
                        f"      record:  {k} {{ "
                        + ", ".join(f"{a} = {b}" for a, b in v.items() if a != "exists")
                        + " }"
                    )
            cols = []
            for side in ("old", "new"):
                o = ex[side]
                lines = [f"{side}: " + ("applied" if o["applied"] else f"rejected ({o['why']})")]
                lines += [
                    f"  {p['kind']} {p['amount']} {p['from']} -> {p['to']}" for p in o["postings"]
                ]
                cols.append(lines)
            width = max(len(x) for x in cols[0]) + 4
            for i in range(max(len(cols[0]), len(cols[1]))):
                left = cols[0][i] if i < len(cols[0]) else ""
                right = cols[1][i] if i < len(cols[1]) else ""
                out.append(f"      {left:<{width}}| {right}")
    same = (
        all(h.status == "equivalent" for h in rep.handlers)
        and not rep.only_old
        and not rep.only_new
        and not rep.params
    )
    out.append("equivalent" if same else "not equivalent")
    return "\n".join(out)


def render_json(rep: DiffReport) -> str:
    return json.dumps(attrs.asdict(rep), indent=2, default=str)
