"""Invariants: declared ones and automatic candidates, established Houdini-style (the
largest subset every handler preserves), and their results.
"""

from __future__ import annotations

from typing import Any, Optional, TYPE_CHECKING

import attrs
import z3

from .. import ir
from .counterexample import counterexample
from .encode import Encoder
from .model import HandlerModel, State
from .options import Options
from .result import PROVED, REFUTED, Result, UNKNOWN, VACUOUS
from .replay import Broken
from .search import _attach_trace, replayed_status
from .solver import Session, quick_witness, shares_context, solve, solve_m
from .terms import select, Unsupported

if TYPE_CHECKING:
    from .prepare import Prepared


def _eval_side(enc: Encoder, e: ir.Expr, env: dict, state: State) -> Any:
    """Evaluate ``e`` without adding its implicit checks to the handler's requires;
    they become part of the value (a property that reads a missing record is false)."""
    saved = enc.ok_explicit
    enc.ok_explicit = []
    try:
        v = enc.cond(e, env, state, z3.BoolVal(True))
        side = enc.ok_explicit
    finally:
        enc.ok_explicit = saved
    return z3.And(*side, v) if side else v


@attrs.define
class Inv:
    name: str
    cond: ir.Expr
    record: Optional[str]
    var: Optional[str]
    auto: bool = False
    span: ir.Span = ir.NOSPAN


def _auto_invariants(policy: ir.Policy) -> list[Inv]:
    """Candidate invariants the verifier tries to establish by itself: amount and
    ranged-int fields of records stay within their natural/declared ranges."""
    out = []
    for rec in policy.records:
        for f in rec.fields:
            t = f.type
            flo, fhi = getattr(f, "lo", None), getattr(f, "hi", None)
            if isinstance(t, ir.TAmount):
                lo, hi = (0 if flo is None else flo), fhi
            elif isinstance(t, ir.TInt) and (t.lo, t.hi, flo, fhi) != (None,) * 4:
                lo = t.lo if flo is None else flo
                hi = t.hi if fhi is None else fhi
            elif isinstance(t, (ir.TRatio, ir.TDuration, ir.TTime)) and (flo, fhi) != (None, None):
                lo, hi = flo, fhi
            else:
                continue
            ref = ir.RecordField(
                record=rec.name,
                key=ir.Local(name="$r", type=ir.TRecord(record=rec.name)),
                field=f.name,
                type=t,
            )
            conds = []
            if lo is not None:
                conds.append(
                    ir.Binary(op=">=", left=ref, right=ir.Const(value=lo, type=t), type=ir.TBool())
                )
            if hi is not None:
                conds.append(
                    ir.Binary(op="<=", left=ref, right=ir.Const(value=hi, type=t), type=ir.TBool())
                )
            cond = (
                conds[0]
                if len(conds) == 1
                else ir.Binary(op="and", left=conds[0], right=conds[1], type=ir.TBool())
            )
            out.append(Inv(f"{rec.name}.{f.name} in range", cond, rec.name, "$r", auto=True))
        out += _relational_candidates(rec)
    return out


def _relational_candidates(rec: ir.Record) -> list[Inv]:
    """Candidates relating a record's fields and its escrow: ``f <= g`` for fields of one
    unit, ``balance(R) >= f`` for amounts of the held asset, optionally under a bool field
    (``open => balance(R) >= price``).  Houdini keeps only the inductive ones."""
    key = ir.Local(name="$r", type=ir.TRecord(record=rec.name))
    out: list[Inv] = []

    def ref(f: ir.Field) -> ir.RecordField:
        return ir.RecordField(record=rec.name, key=key, field=f.name, type=f.type)

    def cmp(op: str, a: ir.Expr, b: ir.Expr) -> ir.Binary:
        return ir.Binary(op=op, left=a, right=b, type=ir.TBool())

    nums = [f for f in rec.fields if isinstance(f.type, (ir.TInt, ir.TAmount))]
    for f in rec.fields:
        if isinstance(f.type, ir.TInt):
            out.append(
                Inv(
                    f"{rec.name}.{f.name} >= 0",
                    cmp(">=", ref(f), ir.Const(value=0, type=f.type)),
                    rec.name,
                    "$r",
                    auto=True,
                )
            )
    for f in nums:
        for g in nums:
            if f is not g and f.type == g.type:
                out.append(
                    Inv(
                        f"{rec.name}.{f.name} <= {g.name}",
                        cmp("<=", ref(f), ref(g)),
                        rec.name,
                        "$r",
                        auto=True,
                    )
                )
    if rec.holds:
        bal = ir.AccBalance(
            account=ir.AccEscrow(record=rec.name, key=key, asset=rec.holds),
            type=ir.TAmount(asset=rec.holds),
        )
        bools = [f for f in rec.fields if isinstance(f.type, ir.TBool)]
        for f in nums:
            if f.type != ir.TAmount(asset=rec.holds):
                continue
            base = cmp(">=", bal, ref(f))
            out.append(Inv(f"balance({rec.name}) >= {f.name}", base, rec.name, "$r", auto=True))
            for b in bools:
                for neg in (False, True):
                    c: ir.Expr = ref(b)
                    if neg:
                        c = ir.Unary(op="not", operand=c, type=ir.TBool())
                    out.append(
                        Inv(
                            f"{'not ' if neg else ''}{b.name} => balance({rec.name}) >= {f.name}",
                            ir.Binary(
                                op="or",
                                left=ir.Unary(op="not", operand=c, type=ir.TBool()),
                                right=base,
                                type=ir.TBool(),
                            ),
                            rec.name,
                            "$r",
                            auto=True,
                        )
                    )
    return out


def _declared_invariants(policy: ir.Policy) -> list[Inv]:
    return [
        Inv(p.name, p.cond, p.record, p.var, span=p.span)
        for p in policy.properties
        if isinstance(p, ir.InvariantProperty)
    ]


def _inv_terms(m: HandlerModel, inv: Inv, state: State, key: Any) -> Any:
    enc = m.encoder
    if inv.record is None:
        return _eval_side(enc, inv.cond, {}, state)
    live = select(state.get(f"live!{inv.record}"), key)
    return z3.Implies(live, _eval_side(enc, inv.cond, {inv.var: key}, state))


def _inv_terms_at(m: HandlerModel, inv: Inv, state: State, keys: list, generic: Any,
                  post: Optional[State] = None) -> list:
    """``[_inv_terms(m, inv, state, k) for k in keys]`` (and, given a later state ``post``,
    ``_inv_terms(m, inv, post, generic)`` last), with the same side effects in the same order
    (records touched, roles named, balances read), but each term made from the term at
    ``generic`` in ``state`` - ``generic`` is a key variable that occurs in no term but the
    ones made at it - by substitution: of the key, and for ``post`` of each component's value
    in ``state`` by its value in ``post``.  One C call per term instead of encoding the
    invariant again (a handler assumes every candidate invariant at every record key it
    touches, and proves it after the event).

    When the evaluation at ``generic`` makes something of its own (a fresh variable, an
    assumption, a product's lemmas, a collection's slots), that is undone and each term is
    encoded as before."""
    enc = m.encoder
    sizes = _sizes(enc)
    n_reads = len(enc.balance_reads)
    touched = {r: list(v) for r, v in enc.touched.items()}
    roles = {r: list(v) for r, v in enc.role_terms.items()}
    enc.touch_log = []
    try:
        term = _inv_terms(m, inv, state, generic)
    finally:
        log, enc.touch_log = enc.touch_log, None
    reads = enc.balance_reads[n_reads:]
    made = _sizes(enc) != sizes
    # undo the evaluation's side effects: they are made again below, term by term, in order
    _restore(enc, sizes)
    del enc.balance_reads[n_reads:]
    enc.touched.clear()
    enc.touched.update(touched)
    enc.role_terms.clear()
    enc.role_terms.update(roles)
    if made:
        out = [_inv_terms(m, inv, state, k) for k in keys]
        return out + ([_inv_terms(m, inv, post, generic)] if post is not None else [])
    subs = [[(generic, k)] for k in keys]
    if post is not None:
        # a component the term reads exists by now (reading one that does not would make it)
        was = {name: state.cur.get(name, enc.pre_components.get(name)) for name in post.cur}
        subs.append([(was[name], v) for name, v in post.cur.items()
                     if was[name] is not None and not v.eq(was[name])])
    ctx = generic.ctx
    out = []
    for pairs in subs:
        n = len(pairs)
        src = (z3.Ast * n)()
        dst = (z3.Ast * n)()
        for i, (a, b) in enumerate(pairs):
            src[i], dst[i] = a.as_ast(), b.as_ast()

        def at(x: Any) -> Any:
            return z3.z3._to_expr_ref(z3.Z3_substitute(ctx.ref(), x.as_ast(), n, src, dst), ctx)

        for fn, name, x in log:
            fn(name, at(x))
        enc.balance_reads += [(c, None if i is None else at(i)) for c, i in reads]
        out.append(at(term))
    return out


def _sizes(enc: Encoder) -> tuple:
    """What an evaluation can add to an encoder besides touches, reads and pre-state
    components (named arrays: one made at ``generic`` is the one the first key would make,
    and those that bring an assumption show in the assumptions)."""
    return (enc._fresh, len(enc.assumptions), len(enc.lemmas), len(enc.products),
            len(enc.notes), len(enc.watches), len(enc.slots), len(enc.text_functions),
            len(enc.family_parts), len(enc.ok_explicit))


def _restore(enc: Encoder, sizes: tuple) -> None:
    """Undo what an evaluation added (see :func:`_sizes`): lists are cut, counters reset, and
    dict entries made since (the last ones, in insertion order) removed."""
    (enc._fresh, n_as, n_lem, n_prod, n_notes, n_watch, n_slots, n_text, n_fam, n_ok) = sizes
    for lst, n in ((enc.assumptions, n_as), (enc.lemmas, n_lem), (enc.products, n_prod),
                   (enc.notes, n_notes), (enc.watches, n_watch), (enc.ok_explicit, n_ok)):
        del lst[n:]
    for d, n in ((enc.slots, n_slots), (enc.text_functions, n_text), (enc.family_parts, n_fam)):
        for key in list(d)[n:]:
            del d[key]


@shares_context
def houdini(
    policy: ir.Policy, preps: dict[str, Prepared], invs: list[Inv], opts: Options
) -> tuple[set[str], dict[str, tuple[str, Optional[str], Any]]]:
    """The largest subset of ``invs`` that every handler preserves.

    Returns (surviving names, {name: (status, failing handler, model)}) for the dropped ones.
    """
    alive = {i.name for i in invs}
    failed: dict[str, tuple[str, Optional[str], Any]] = {}
    # the initial (empty) state: no records, zero balances; only global invariants matter
    for inv in invs:
        if inv.record is None:
            ok = _initially(policy, inv, opts)
            if ok is not True:
                alive.discard(inv.name)
                failed[inv.name] = (REFUTED if ok is False else UNKNOWN, None, "initial state")
    # cheapest handlers first: a candidate one of them breaks is gone before a handler with
    # many non-linear terms is asked about it (fewer candidates, easier questions)
    order = sorted(preps.items(), key=lambda kv: _cost(kv[1]))
    asked: dict[str, frozenset] = {}
    # per handler, an incremental solver holding its encoding: each round's question (the
    # candidates assumed before, one broken after) is pushed and popped on it, so a round
    # after the first, and the one-by-one questions, reuse what Z3 learned about the handler
    sessions: dict[str, Session] = {}
    changed = True
    while changed:
        changed = False
        for hname, prep in order:
            if prep.model is None:
                for n in list(alive):
                    alive.discard(n)
                    failed[n] = (UNKNOWN, hname, prep.error)
                    changed = True
                continue
            m = prep.model
            handler = m.assumptions + prep.extra_assumptions + [m.applied]
            pre: list = []
            for inv in invs:
                if inv.name in alive:
                    pre += prep.inv_pre[inv.name]
            assume = handler + pre
            live = [inv for inv in invs if inv.name in alive]
            if not live or asked.get(hname) == frozenset(alive):
                continue  # none left, or asked already about exactly these candidates
            asked[hname] = frozenset(alive)
            # one query finds a state breaking some candidate; drop every candidate it breaks
            # (the incremental solver first - it only ever proves; then a tenth of the limit,
            # then all of it; still undecided: one at a time)
            breaks = z3.Or(*[z3.Not(prep.inv_post[i.name]) for i in live])
            if hname not in sessions:
                sessions[hname] = Session(m, handler, opts.limits)
            session = sessions[hname]
            if session.proves(pre + [breaks]):
                continue
            # with products, solve_m asks the linear abstraction first, whose models may be
            # spurious: a break is usually a small state, so a witness with few items is
            # asked of the exact question first (without products solve_m is exact anyway)
            r, model = "unknown", None
            if m.encoder.lemmas:
                r, model = quick_witness(assume + [breaks], m, opts.limits.part(10))
            if r == "unknown":
                r, model = solve_m(assume + [breaks], m, opts.limits.part(10))
            if r == "unknown":
                r, model = solve_m(assume + [breaks], m, opts.limits)
            if r == "unsat":
                continue
            before = len(alive)
            if r == "sat":
                for inv in live:
                    if z3.is_false(model.eval(prep.inv_post[inv.name], model_completion=True)):
                        alive.discard(inv.name)
                        failed[inv.name] = (REFUTED, hname, model)
            else:
                # undecided: check one by one so one hard candidate does not sink the others
                # (a dropped candidate only weakens the assumptions)
                for inv in live:
                    if session.proves(pre + [z3.Not(prep.inv_post[inv.name])]):
                        continue
                    r1, m1 = solve_m(assume + [z3.Not(prep.inv_post[inv.name])], m, opts.limits)
                    if r1 != "unsat":
                        alive.discard(inv.name)
                        failed[inv.name] = (REFUTED if r1 == "sat" else UNKNOWN, hname, m1)
            # another round only if a candidate was dropped (the others assumed it)
            changed = changed or len(alive) < before
    return alive, failed


def _cost(prep: Prepared) -> tuple:
    """How hard a handler's questions are likely to be (products of symbolic terms, then
    money checks): orders the handlers Houdini asks, deterministically."""
    m = prep.model
    if m is None:
        return (0, 0)
    return (len(m.encoder.products), len(m.obligations) + len(m.postings))


def _initially(policy: ir.Policy, inv: Inv, opts: Options) -> Optional[bool]:
    enc = Encoder(policy, bound=opts.bound, fixed_params=opts.fixed_params)
    enc.submitter = z3.Int("submitter")
    enc.now = z3.Int("now")
    state = State(enc)
    try:
        v = _eval_side(enc, inv.cond, {}, state)
    except Unsupported:
        return None
    zero = []
    for comp in enc.pre_components:
        kind = comp.split("!")[0]
        pc = enc.pre_components[comp]
        if kind in ("pool", "supply"):
            zero.append(pc == 0)
        elif kind in ("bal", "stake", "escrow"):
            zero.append(pc == z3.K(z3.IntSort(), z3.IntVal(0)))
        elif kind in ("live", "role"):
            zero.append(pc == z3.K(z3.IntSort(), z3.BoolVal(False)))
    r, _ = solve(enc.assumptions + zero + [z3.Not(v)], opts.limits)
    return True if r == "unsat" else (False if r == "sat" else None)


def _invariant_fails(inv: "Inv") -> Any:
    """For confirm(): the invariant holds in the trace's initial state and fails at its end."""

    def fails(models: list) -> Any:
        first, last = models[0], models[-1]
        key = z3.Int(f"bmc!{inv.record}!key") if inv.record else None
        init = State(first.encoder, {})
        before = _inv_terms(first, inv, init, key) if inv.record is None else z3.BoolVal(True)
        after = _inv_terms(last, inv, last.post, key)
        if key is not None:
            last.encoder.touch(inv.record, key)
        closed = last.encoder.closed_world(last.post)
        return z3.And(before, last.applied, z3.Not(after), *closed)

    fails.wants_chain = True  # type: ignore[attr-defined]
    return fails


def _creates(policy: ir.Policy, record: str) -> bool:
    """Does any handler contain ``create record(...)`` (at any depth)?"""

    def walk(stmts: tuple) -> bool:
        for st in stmts:
            if isinstance(st, ir.Create) and st.record == record:
                return True
            if isinstance(st, ir.If) and (walk(st.then) or walk(st.orelse)):
                return True
            if isinstance(st, ir.ForEach) and walk(st.body):
                return True
        return False

    return any(walk(h.body) for h in policy.handlers)


def _invariant_results(
    policy: ir.Policy,
    declared: list,
    alive: set,
    failed: dict,
    preps: dict,
    opts: Options,
    t_inv: float,
) -> list[Result]:
    out = []
    for inv in declared:
        if inv.name in alive and inv.record is not None and not _creates(policy, inv.record):
            out.append(
                Result(
                    inv.name,
                    "invariant",
                    None,
                    VACUOUS,
                    f"holds only vacuously: no handler ever creates a {inv.record} record",
                    inv.span,
                    opts.bound,
                )
            )
            continue
        if inv.name in alive:
            out.append(
                Result(
                    inv.name,
                    "invariant",
                    None,
                    PROVED,
                    "inductive: holds initially and every handler preserves it",
                    inv.span,
                    opts.bound,
                    any(p.model is not None and p.model.encoder.slots for p in preps.values()),
                    None,
                    round(t_inv, 4),
                )
            )
            continue
        status, hname, model = failed[inv.name]
        cex = None
        if status == REFUTED and hname is not None and isinstance(model, z3.ModelRef):
            hm = preps[hname].model
            extra = None
            if inv.record is not None:
                # show the record the invariant fails for (the generic key of the check)
                key = z3.Int(f"inv!{inv.record}!key")
                saved = list(hm.touched.get(inv.record, []))
                hm.touched[inv.record] = saved + [key]
                extra = {"$after_keys": [key]}
            cex = counterexample(hm, model, policy, f"{hname} breaks invariant {inv.name}", extra)
            if inv.record is not None:
                hm.touched[inv.record] = saved
            _attach_trace(
                policy,
                hname,
                cex,
                opts,
                _invariant_fails(inv),
                Broken(
                    handler=hname,
                    describe=f"property {inv.name} must hold after every event",
                    cond=inv.cond,
                    record=inv.record,
                    var=inv.var,
                ),
            )
            if cex.get("replayed"):
                n = len(cex["scenario"]["events"])
                msg = (
                    f"violated: {n} event{'s' if n != 1 else ''} from genesis through the "
                    f"policy's own handlers lead to a state where it does not hold, the last one "
                    f"{hname}; replayed on the runtime (test and JSONL below)"
                )
            else:
                msg = (
                    "not inductive: from a state where it (and every other proved invariant) "
                    f"holds, an applied {hname} event leads to one where it does not. "
                    + cex.get("reach_note", "")
                    + "; a stronger invariant that excludes that state would prove this one"
                )
        elif status == REFUTED:
            msg = "does not hold in the initial state (no records, zero balances)"
        else:
            why = model if isinstance(model, str) else f"no answer within {opts.limit_text()}"
            msg = f"could not be established ({hname}: {why})"
            found = _search_genesis(policy, inv, hname, opts) if model is None else None
            if found is not None:
                status, hname, cex = REFUTED, found["handler"], found
                n = len(cex["scenario"]["events"])
                msg = (
                    f"violated: the proof was undecided, but {n} event{'s' if n != 1 else ''} "
                    f"from genesis through the policy's own handlers lead to a state where it "
                    f"does not hold, the last one {hname}; replayed on the runtime (test and "
                    "JSONL below)"
                )
        out.append(
            Result(
                inv.name,
                "invariant",
                hname,
                replayed_status(status, cex),
                msg,
                inv.span,
                opts.bound,
                False,
                cex,
                round(t_inv, 4),
            )
        )
    return out


# queries per handler when a proof was undecided and the search from genesis looks for a
# violation instead (a plainly false cap must be refuted, not left unknown)
UNDECIDED_SEARCH_QUERIES = 12


def _search_genesis(
    policy: ir.Policy, inv: Inv, stuck: Optional[str], opts: Options
) -> Optional[dict]:
    """A violation of ``inv`` reached from genesis and replayed on the runtime, ending in the
    handler the proof got stuck on or else in any other (in policy order), or None."""
    from .scenario import build

    targets = [h.name for h in policy.handlers if h.kind == "event"]
    if stuck in targets:
        targets.remove(stuck)
        targets.insert(0, stuck)
    for target in targets:
        violation = Broken(
            handler=target,
            describe=f"property {inv.name} must hold after every event",
            cond=inv.cond,
            record=inv.record,
            var=inv.var,
        )
        got = build(
            policy,
            target,
            _invariant_fails(inv),
            violation,
            opts,
            name=f"counterexample {inv.name}",
            max_queries=UNDECIDED_SEARCH_QUERIES,
        )
        if got["status"] == "replayed":
            sc = got["scenario"]
            last = sc["events"][-1] if sc["events"] else {}
            return {
                "handler": target,
                "fails": f"{target} breaks invariant {inv.name}",
                "params": dict(sc.get("params") or {}),
                "args": dict(last.get("args") or {}),
                "submitter": last.get("submitter", "?"),
                "time": last.get("time", 0),
                "scenario": sc,
                "confirmed": True,
                "replayed": True,
            }
    return None


def _encode_inv(inv: "Inv") -> Any:
    return {"name": inv.name, "cond": ir._encode(inv.cond), "record": inv.record, "var": inv.var}
