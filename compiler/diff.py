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

Two shortcuts keep the answer fast and honest:

* a handler whose IR (spans aside) is the same in both versions, in policies
  whose assets, roles, pools, records and parameter types are the same, is
  equivalent without asking Z3 - so diffing a policy with itself, or a change
  to one handler, costs nothing for the others;
* a difference Z3 reports is replayed on the runtime, on both versions, from
  the model's pre-state (:mod:`charter.compiler.diff_replay`); it is shown only
  when the runtime reproduces it, with what each version's runtime did.  One
  that does not reproduce is a gap in the encoding: the handler is reported as
  not decided, and the model is never shown as a difference.
"""

from __future__ import annotations

import json
import time
from typing import Any, Optional

import attrs
import z3

from . import display, ir
from .diff_replay import replay, search
from .resolve import strip_spans
from .verify.counterexample import counterexample
from .verify.encode import Encoder
from .verify.model import HandlerModel
from .verify.naming import Namer, _describe, _plain, _show, collect_ints
from .verify.solver import _eval, fresh_context, solve_sat
from .verify.terms import Codes, Opt, Unsupported


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


def _context_key(p: ir.Policy) -> Any:
    """Everything besides a handler's own IR that decides what it does (spans aside):
    assets (decimals, caps, decay), roles, pools, records (field types and defaults) and
    parameter types.  Parameter defaults and ranges are not in it: handlers are compared
    at equal parameter values."""
    return strip_spans((p.assets, p.roles, p.pools, p.records,
                        tuple((q.name, q.type) for q in p.params)))


def same_handler(old: ir.Policy, new: ir.Policy, name: str) -> bool:
    """True when ``name`` is the same IR in both versions and so is its context."""
    return strip_spans(old.handler(name)) == strip_spans(new.handler(name)) and \
        _context_key(old) == _context_key(new)


def diff_handler(
    old: ir.Policy, new: ir.Policy, name: str, bound: int, timeout_ms: int
) -> HandlerDiff:
    t0 = time.perf_counter()
    if same_handler(old, new, name):
        return HandlerDiff(name, "equivalent", "the same handler in both versions (no solver "
                           "needed)", None, round(time.perf_counter() - t0, 4))
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
    applied_differs = ma.applied != mb.applied
    both = z3.And(ma.applied, mb.applied)
    comps = []
    for comp in sorted(_state_components(ma, mb)):
        try:
            ne = ma.post.get(comp) != mb.post.get(comp)
        except z3.Z3Exception:  # the versions declare the component with different types
            continue
        comps.append((comp, ne))
    # each candidate gets the full timeout; all of them together at most three
    deadline = time.perf_counter() + 3 * timeout_ms / 1000
    misses: list[str] = []
    distrusted: set[str] = set()  # components whose reported difference did not replay
    blocks: list = []
    for attempt in range(MAX_CANDIDATES):
        left = min(timeout_ms, int((deadline - time.perf_counter()) * 1000))
        if left <= 0:
            break
        differs = [applied_differs] + [z3.And(both, ne) for c, ne in comps if c not in distrusted]
        # small collections first: a difference with one item is as real as one with three
        r, model = solve_sat(base + blocks + [z3.Or(*differs)], ma, left)
        if r == "unsat" and not misses:
            return HandlerDiff(
                name,
                "equivalent",
                f"same outcome, balances and state for every input (collections up to {bound} "
                "items)",
                None,
                round(time.perf_counter() - t0, 4),
            )
        if r != "sat":
            break
        found = _candidate(old, new, name, ma, mb, ea, eb, model, comps, both)
        if isinstance(found, dict):
            return HandlerDiff(name, "different", "an input settles differently (replayed on the "
                               "runtime: " + found.pop("$detail") + ")", found,
                               round(time.perf_counter() - t0, 4))
        misses.append(found)
        # Look elsewhere next: a state component whose difference did not replay is not
        # trusted again (e.g. one the encoding cannot tie between versions); an outcome
        # difference that did not replay rules out that input.
        wrong = {c for c, ne in comps if z3.is_true(model.eval(z3.And(both, ne),
                                                               model_completion=True))}
        distrusted |= wrong
        if not wrong:
            blocks.append(_block(ma, model))
    seen = _search(old, new, name, ma, mb, ea, base, timeout_ms)
    if seen is not None:
        return HandlerDiff(name, "different", "an input settles differently (found and replayed "
                           "on the runtime: " + seen.detail + ")", _searched_example(seen, new),
                           round(time.perf_counter() - t0, 4))
    secs = round(time.perf_counter() - t0, 4)
    if misses:
        # never shown as a difference: the runtime is the judge of what a version does
        untrusted = f"; not compared: {', '.join(sorted(_describe_component(c) for c in distrusted))}" \
            if distrusted else ""
        return HandlerDiff(name, "unknown", f"not decided: Z3 reported {len(misses)} "
                           f"difference(s) the runtime does not reproduce ({misses[0]}); that is "
                           f"a gap in the encoding, not a difference{untrusted}", None, secs)
    return HandlerDiff(name, "unknown", f"Z3 gave no answer within {timeout_ms} ms", None, secs)


MAX_CANDIDATES = 4


def _search(old: ir.Policy, new: ir.Policy, name: str, ma: HandlerModel, mb: HandlerModel,
            ea: Any, base: list, timeout_ms: int) -> Any:
    """When Z3 cannot decide: an input where the old version applies (with every split
    paying two or more recipients where it can), varied on the runtime until the versions
    part (:func:`charter.compiler.diff_replay.search`)."""
    wants = []
    for sp in ma.splits:
        paid = [z3.And(c, w > 0) for c, w in zip(sp.included, sp.weights)]
        n = z3.Sum([z3.If(c, 1, 0) for c in paid]) if paid else z3.IntVal(0)
        wants.append(z3.And(sp.guard, n >= 2, sp.amount > 2))
    for extra in ([z3.Or(*wants)] if wants else [], []):
        r, model = solve_sat(base + [ma.applied] + extra, ma, timeout_ms)
        if r == "sat":
            namer = Namer(ea, model, collect_ints(ma, model))
            return search(old, new, name, ma, mb, model, namer)
    return None


def _searched_example(seen: Any, policy: ir.Policy) -> dict:
    """A difference found by the runtime search, in the shape :func:`render_text` shows."""
    pre = {}
    records = {}
    for kind, a, b, c in seen.setup:
        if kind == "funds":
            pre[a] = display.value(c, ir.TAmount(asset=b), policy)
        elif kind == "record":
            records[f"{a}({json.dumps(b)})"] = {"exists": True, **{
                f: display.value(v, None, policy) for f, v in c}}
    side = {}
    for label, run in (("old", seen.old), ("new", seen.new)):
        side[label] = {"applied": run.applied, "postings": []}
        if not run.applied:
            side[label]["why"] = run.outcome
    return {
        "input": {"params": {k: display.value(v, policy.param(k).type, policy)
                             for k, v in seen.params.items()},
                  "args": seen.event["args"], "submitter": seen.event["submitter"],
                  "time": seen.event["time"], "pre_state": pre, "records": records,
                  "collections": {}},
        "event": seen.event,
        "replayed": {"old": seen.old.outcome, "new": seen.new.outcome,
                     "differences": seen.differences},
        "differs_in": seen.differences,
        **side,
    }


def _block(m: HandlerModel, model: z3.ModelRef) -> Any:
    """A constraint that rules out the inputs a model chose (its watched terms' values)."""
    out = []
    for w in m.watches:
        terms = [w.term]
        if isinstance(w.term, Opt):
            terms = [w.term.some, w.term.val]
        for t in terms:
            if isinstance(t, z3.ExprRef) and (z3.is_int(t) or z3.is_bool(t) or z3.is_real(t)):
                out.append(t != model.eval(t, model_completion=True))
    return z3.Or(*out) if out else z3.BoolVal(False)


def _candidate(old: ir.Policy, new: ir.Policy, name: str, ma: HandlerModel, mb: HandlerModel,
               ea: Any, eb: Any, model: z3.ModelRef, comps: list, both: Any) -> Any:
    """The example of a model's difference when the runtime reproduces it, else why not."""
    ints = collect_ints(ma, model)
    collect_ints(mb, model, ints)
    namer = Namer(ea, model, ints)
    inputs = counterexample(ma, model, old, "versions differ", namer=namer)
    scenario = inputs.get("scenario") or {}
    if "event" not in scenario or "render_error" in inputs:
        return f"could not be rendered: {inputs.get('render_error', 'no event')}"
    seen = replay(old, new, name, ma, mb, model, namer)
    if not seen.reproduced:
        return seen.detail
    example = {
        "input": {
            k: inputs[k]
            for k in ("params", "args", "submitter", "time", "pre_state", "records", "collections")
        },
        "old": _outcome(ma, model, old, namer),
        "new": _outcome(mb, model, new, namer),
        "replayed": {"old": seen.old.outcome, "new": seen.new.outcome,
                     "differences": seen.differences},
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
    example["$detail"] = seen.detail
    return example


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
            y = b[name]
            out.append(f"{name}: added (default {display.value(y.default, y.type, new)}, range "
                       f"{display.value_range(y.lo, y.hi, y.type, new)})")
        else:
            x, y = a[name], b[name]
            if (x.type, x.default, x.lo, x.hi) != (y.type, y.default, y.lo, y.hi):
                parts = []
                if x.type != y.type:
                    parts.append(f"type {display.type_name(x.type)} -> "
                                 f"{display.type_name(y.type)}")
                if x.default != y.default:
                    parts.append(f"default {display.value(x.default, x.type, old)} -> "
                                 f"{display.value(y.default, y.type, new)}")
                if (x.lo, x.hi) != (y.lo, y.hi):
                    parts.append(f"range {display.value_range(x.lo, x.hi, x.type, old)} -> "
                                 f"{display.value_range(y.lo, y.hi, y.type, new)}")
                out.append(f"{name}: " + ", ".join(parts))
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
            rep_ = ex.get("replayed")
            if rep_:
                out.append(f"      replayed on the runtime: old {rep_['old']}, new {rep_['new']}")
                for line in rep_["differences"][:8]:
                    out.append(f"        {line}")
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
