"""Bounded search for a violation reached from genesis through the policy's own handlers.

A counterexample a reviewer can replay must start where ``charter run`` starts: no role
members, no records, no balances, supply zero.  Parties get their roles from the policy's
joining handlers, money from its minting or deposit handlers, records from the handlers that
create them.  The search encodes such a chain of events in Z3 and asks for one that ends in
the violation:

* the first steps are *setup* events, each a symbolic choice among the handlers that touch
  no record (``join``, ``deposit``, ``admit_member``...) or nothing at all, so one query
  covers every setup of up to :data:`SETUP_LEVELS` events (small ones first);
* then a *core* sequence of record-handling events (and clock or loop handlers), one
  sequence per query, up to :data:`CORE_STEPS` events: a handler that needs a record comes
  only after one that creates it; sequences that write every record field the modular
  counterexample shows changed come first, then shorter ones; a prefix that cannot apply
  (one cheap query, remembered) rules out every sequence that starts with it;
* then the failing handler (a timed one fires from a clock tick).

The number of queries is capped (:data:`MAX_QUERIES`, plus twice as many prefix checks) and
each has the run's Z3 resource limit, so whether a scenario is found does not depend on the
machine or its load.  Whatever the search finds is only a candidate: :mod:`.replay` runs it
on the runtime before anyone sees it.

Not searched: time passing before the failing event (every earlier event is at time 0, so
no timer fires in between; a scenario that needs one is "not reached"), more setup events
than :data:`SETUP_LEVELS` allows, more than :data:`CORE_STEPS` record events.
"""

from __future__ import annotations

from itertools import product
from typing import Any, Callable, Optional

import attrs
import z3

from .. import ir
from .encode import Encoder
from .model import HandlerModel
from .options import Options
from .solver import solve
from .terms import Codes, Unsupported

SETUP_LEVELS = (4, 8)  # joining/minting events before the first record: small first
CORE_STEPS = 4  # record-handling events before the failing one
MAX_QUERIES = 32  # target queries per finding: the search's size, independent of the machine
QUERY_MS = 15000  # per query, a safety net (most take milliseconds; replaced by rlimit)


class GenesisEncoder(Encoder):
    """An encoder whose pre-state is genesis: no members, records, balances, stakes, rights
    or supply (fields and attributes of things that do not exist yet stay unconstrained)."""

    def pre_component(self, name: str) -> Any:
        if name not in self.pre_components:
            kind = name.split("!")[0]
            if kind in ("bal", "stake", "escrow", "fescrow", "fpool", "fsupply"):
                v: Any = z3.K(z3.IntSort(), z3.IntVal(0))
            elif kind in ("pool", "supply"):
                v = z3.IntVal(0)
            elif kind in ("live", "role"):
                v = z3.K(z3.IntSort(), z3.BoolVal(False))
            elif kind == "right":
                a, b = z3.Ints("genesis!p genesis!k")
                v = z3.Lambda([a, b], z3.BoolVal(False))
            else:
                return super().pre_component(name)
            self.pre_components[name] = v
        return self.pre_components[name]


@attrs.define
class Step:
    """One event of a chain: a symbolic choice ``sel`` among ``models`` (one per candidate
    handler); ``sel == len(models)`` is "no event" (only setup steps may be skipped)."""

    sel: Any
    models: list[HandlerModel]
    skippable: bool = False

    def chosen(self, model: z3.ModelRef) -> Optional[HandlerModel]:
        if len(self.models) == 1 and not self.skippable:
            return self.models[0]
        k = model.eval(self.sel, model_completion=True).as_long()
        return self.models[k] if 0 <= k < len(self.models) else None


@attrs.define
class Chain:
    """A chain of steps from genesis, extendable (extensions share the encoding so far)."""

    steps: list[Step]
    formulas: list  # every step before the last applies; times ordered; choices in range
    codes: Codes
    common: dict  # shared by every encoder of the chain (pre-state, parameters, slots)
    cur: dict  # the state after the last step
    prev_now: Any = None
    prev_skip: Any = None
    last_applies: bool = False  # whether the last step's "applied" is among the formulas

    @property
    def last(self) -> HandlerModel:
        return self.steps[-1].models[0]

    @property
    def first(self) -> HandlerModel:
        return self.steps[0].models[0]


def start(policy: ir.Policy) -> Chain:
    return Chain([], [], Codes(), {"init": True, "pre": {}, "slots": {}, "params": {}}, {})


def extend(
    policy: ir.Policy,
    chain: Chain,
    cands: list[ir.Handler],
    skippable: bool = False,
    bound: int = 3,
    fixed_params: Optional[dict] = None,
) -> Chain:
    """``chain`` plus one step (one of ``cands``, or none when ``skippable``); the steps
    before the new one must apply (the new one's application is the caller's question)."""
    c = Chain(list(chain.steps), list(chain.formulas), chain.codes, chain.common,
              dict(chain.cur), chain.prev_now, chain.prev_skip)
    formulas = c.formulas
    if chain.steps and not chain.last_applies:
        prev = chain.steps[-1]
        skip = prev.sel == len(prev.models) if prev.skippable else z3.BoolVal(False)
        formulas.append(
            z3.Or(skip, *[z3.And(prev.sel == k, m.applied) for k, m in enumerate(prev.models)])
        )
    i = len(c.steps)
    sel = z3.Int(f"genesis!sel!{i}")
    models = []
    for k, h in enumerate(cands):
        shared = dict(c.common)
        shared["inputs"] = {}
        enc = GenesisEncoder(
            policy,
            bound=bound,
            codes=c.codes,
            prefix=f"g{i}h{k}!",
            shared=shared,
            fixed_params=fixed_params,
        )
        models.append(enc.encode(h, start=c.cur))
    n = len(models)
    skip = sel == n if skippable else z3.BoolVal(False)
    if skippable:
        formulas += [sel >= 0, sel <= n]
        if c.prev_skip is not None:
            formulas.append(z3.Implies(c.prev_skip, skip))  # skipped steps come last
        c.prev_skip = skip
    elif n > 1:
        formulas += [sel >= 0, sel < n]
    else:
        formulas.append(sel == 0)
    now = models[0].now
    formulas += [m.now == now for m in models[1:]]
    if c.prev_now is not None:
        formulas.append(now >= c.prev_now)
    else:
        formulas.append(now == 0)  # the first event starts the clock (t0)
    c.prev_now = now
    for k, m in enumerate(models):
        formulas += [z3.Implies(sel == k, a) for a in m.assumptions]
    names = sorted({x for m in models for x in m.post.cur})
    for x in names:
        v = c.cur[x] if x in c.cur else models[0].encoder.pre_component(x)
        for k, m in enumerate(models):
            pv = m.post.get(x)
            if not pv.eq(v):
                v = z3.If(sel == k, pv, v)
        c.cur[x] = v
    c.steps.append(Step(sel, models, skippable))
    return c


def encode_steps(
    policy: ir.Policy,
    choices: list[tuple[list[ir.Handler], bool]],
    bound: int = 3,
    fixed_params: Optional[dict] = None,
) -> Chain:
    """Encode a chain from genesis; step i is one of ``choices[i][0]`` (or, when
    ``choices[i][1]``, no event).  Every step but the last must apply."""
    chain = start(policy)
    for cands, skippable in choices:
        chain = extend(policy, chain, cands, skippable, bound, fixed_params)
    return chain


def _walk(stmts: tuple) -> list:
    out = []
    for st in stmts:
        out.append(st)
        if isinstance(st, ir.If):
            out += _walk(st.then) + _walk(st.orelse)
        elif isinstance(st, ir.ForEach):
            out += _walk(st.body)
    return out


def _changes_state(h: ir.Handler) -> bool:
    return any(not isinstance(st, (ir.Require, ir.Let, ir.Flag)) for st in h.body)


def _creates(h: ir.Handler) -> set:
    return {st.record for st in _walk(h.body) if isinstance(st, ir.Create)}


def _record_names(x: Any, out: set) -> None:
    """Every record an IR value mentions (reads, accounts, record-typed arguments)."""
    if isinstance(x, ir.TRecord):
        out.add(x.record)
    if isinstance(x, (ir.RecordRef, ir.RecordsOf, ir.AccEscrow)):
        out.add(x.record)
    if attrs.has(type(x)):
        for f in attrs.fields(type(x)):
            _record_names(getattr(x, f.name), out)
    elif isinstance(x, (tuple, list)):
        for y in x:
            _record_names(y, out)


def _needs(h: ir.Handler) -> set:
    """Records ``h`` reads or updates but does not create (it needs one created earlier)."""
    out: set = set()
    _record_names(h.params, out)
    _record_names(h.auth, out)
    _record_names(h.body, out)
    if h.record:
        out.add(h.record)
    return out - _creates(h)


def classify(policy: ir.Policy) -> tuple[list[ir.Handler], list[ir.Handler]]:
    """(setup, core): submitted handlers that change state, split by whether they touch
    records.  Setup handlers give roles and money; core handlers create and work records."""
    setup, core = [], []
    for h in policy.handlers:
        if h.kind != "event" or not _changes_state(h):
            continue
        if any(isinstance(st, ir.Dissolve) for st in _walk(h.body)):
            continue  # after a dissolve no event applies: it can only be the failing one
        touched: set = set()
        _record_names((h.params, h.auth, h.body), touched)
        # setup steps are symbolic choices, so only cheap handlers: no loops or splits, not
        # the clock's (those are core steps, tried one at a time)
        (core if touched or _heavy(h) else setup).append(h)
    return setup, core


def _heavy(h: ir.Handler) -> bool:
    return isinstance(h.auth, ir.AuthClock) or any(
        isinstance(st, (ir.ForEach, ir.Split)) for st in _walk(h.body)
    )


def core_sequences(
    policy: ir.Policy, target: ir.Handler, core: list, max_len: int, wanted: tuple = ()
) -> list:
    """Core prefixes; a handler that needs a record only after a creator.  First those that
    include a writer of every field the modular counterexample shows changed (``wanted``:
    one set of handler names per such field), then shorter ones, those that create what the
    failing handler needs (repeats are not penalised: "do it twice" is a common bug)."""
    found = []
    needs = {h.name: _needs(h) for h in core}
    creates = {h.name: _creates(h) for h in core}
    target_needs = _needs(target)
    heavy = {h.name for h in core if _heavy(h)}
    for n in range(0, max_len + 1):
        for seq in product(core, repeat=n):
            made: set = set()
            ok = True
            for h in seq:
                if not needs[h.name] <= made:
                    ok = False
                    break
                made |= creates[h.name]
            # a loop or split handler (an epoch) is costly to encode and rarely needed twice
            if ok and all(seq.count(x) < 2 for x in seq if x.name in heavy):
                names = {h.name for h in seq}
                missing = sum(1 for w in wanted if not (w & (names | {target.name})))
                found.append((missing, n, 0 if target_needs <= made else 1, seq))
    return [seq for *_, seq in sorted(found, key=lambda x: x[:3])]


def field_writers(policy: ir.Policy) -> dict:
    """(record, field) -> the handlers that set it after creation (``set``/``update``)."""
    out: dict = {}
    for h in policy.handlers:
        for st in _walk(h.body):
            if isinstance(st, ir.SetField):
                out.setdefault((st.record, st.field), set()).add(h.name)
            elif isinstance(st, ir.Update):
                for f, _ in st.values:
                    out.setdefault((st.record, f), set()).add(h.name)
    return out


def initial_values(policy: ir.Policy) -> dict:
    """(record, field) -> the constant every ``create`` gives it (absent: set from inputs)."""
    seen: dict = {}
    for h in policy.handlers:
        for st in _walk(h.body):
            if isinstance(st, ir.Create):
                for f, e in st.values:
                    v = e.value if isinstance(e, ir.Const) else _FROM_INPUT
                    seen.setdefault((st.record, f), []).append((v, getattr(e, "type", None)))
    out = {}
    for k, vs in seen.items():
        first = vs[0][0]
        if first is not _FROM_INPUT and all(v == first for v, _ in vs):
            out[k] = vs[0]
    return out


_FROM_INPUT = object()


@attrs.define
class Found:
    chain: Chain
    model: z3.ModelRef
    handlers: list[HandlerModel]  # the events that happen, in order (skips dropped)


def search(
    policy: ir.Policy,
    target: str,
    fails: Callable[..., Any],
    opts: Options,
    setup_levels: tuple = SETUP_LEVELS,
    core_steps: int = CORE_STEPS,
    max_queries: int = MAX_QUERIES,
    wanted: tuple = (),
) -> tuple[Optional[Found], int]:
    """The first chain from genesis (setup, core, ``target``) where ``fails`` holds.

    ``fails(last_model)``, or with ``fails.wants_chain`` ``fails([first, last])``, or with
    ``fails.wants_steps`` ``fails(steps)`` (every :class:`Step` of the chain).  Small
    setups first (each query is quicker, the scenario shorter); two thirds of the queries go
    to the smaller setup.  Returns (found or None, the longest number of events searched)."""
    longest = 0
    used = 0
    for n, setup_steps in enumerate(setup_levels):
        cap = max_queries - used if n == len(setup_levels) - 1 else (2 * max_queries) // 3
        found, reach, q = _search_level(
            policy, target, fails, opts, setup_steps, core_steps, cap, wanted
        )
        used += q
        longest = max(longest, reach)
        if found is not None or used >= max_queries:
            return found, longest
    return None, longest


def _search_level(
    policy: ir.Policy,
    target: str,
    fails: Callable[..., Any],
    opts: Options,
    setup_steps: int,
    core_steps: int,
    max_queries: int,
    wanted: tuple = (),
) -> tuple[Optional[Found], int, int]:
    h = policy.handler(target)
    setup, core = classify(policy)
    if not setup:
        setup_steps = 0
    longest = 0
    queries = 0

    def fresh_base() -> Chain:
        base = start(policy)
        for _ in range(setup_steps):
            base = extend(policy, base, setup, True, opts.bound, opts.fixed_params)
        return base

    base = fresh_base()
    # a handler that iterates a collection adds slots shared by the whole chain; the
    # extensions of one base must not share them (each query would miss the others' facts)
    share = not base.common["slots"]
    memo: dict = {}
    feasible: dict = {}  # prefix names -> can every event of it apply (share mode)
    limits = getattr(opts, "limits", None) or min(opts.timeout_ms, QUERY_MS)

    def prefix_ok(seq: tuple) -> bool:
        """Every proper prefix can apply (checked once each; unknown counts as yes)."""
        chain = base
        for j in range(len(seq)):
            key = tuple(x.name for x in seq[: j + 1])
            if key not in memo:
                memo[key] = extend(policy, chain, [seq[j]], False, opts.bound, opts.fixed_params)
            chain = memo[key]
            if key not in feasible:
                if len(feasible) >= 2 * max_queries:
                    return True
                last = chain.steps[-1].models[0]
                r, _ = solve(chain.formulas + [last.applied], limits)
                feasible[key] = r != "unsat"
            if not feasible[key]:
                return False
        return True

    for seq in core_sequences(policy, h, core, core_steps, wanted):
        if queries >= max_queries:
            break
        try:
            if share and not prefix_ok(seq):
                continue
        except Unsupported:
            return None, longest, queries
        queries += 1
        try:
            if share:
                # the longest encoded prefix of this sequence, extended by the rest
                k = len(seq)
                while k and tuple(x.name for x in seq[:k]) not in memo:
                    k -= 1
                chain = memo[tuple(x.name for x in seq[:k])] if k else base
                for j in range(k, len(seq)):
                    chain = extend(policy, chain, [seq[j]], False, opts.bound, opts.fixed_params)
                    memo[tuple(x.name for x in seq[: j + 1])] = chain
                chain = extend(policy, chain, [h], False, opts.bound, opts.fixed_params)
                if chain.common["slots"]:
                    share = False  # from now on every sequence is encoded afresh
            if not share:
                chain = fresh_base()
                for x in list(seq) + [h]:
                    chain = extend(policy, chain, [x], False, opts.bound, opts.fixed_params)
        except Unsupported:
            return None, longest, queries
        last = chain.last
        if getattr(fails, "wants_steps", False):  # e.g. "the same event twice in a row"
            goal = fails(chain.steps)
        elif getattr(fails, "wants_chain", False):
            goal = fails([chain.first, last])
        else:
            goal = fails(last)
        longest = max(longest, setup_steps + len(seq) + 1)
        # the run's resource limit decides (the same answer on any machine); without one,
        # a wall-clock limit per query
        # time does not pass before the failing event: a timer firing in between is not
        # modelled (the replay would diverge), so every earlier event is at time 0
        still = [st.models[0].now == 0 for st in chain.steps[:-1]]
        r, model = solve(chain.formulas + still + _closed_roles(chain) + [goal], limits)
        if r == "sat":
            hms = [m for st in chain.steps if (m := st.chosen(model)) is not None]
            return Found(chain, model, hms), longest, queries
    return None, longest, queries


def _closed_roles(chain: Chain) -> list:
    """A role a handler iterates is modelled by its slots: every party any step of the chain
    uses as a member of that role (admitted, checked) must be one of them, or the model's
    split or loop would leave out a member the runtime includes."""
    out = []
    slots = chain.common["slots"]
    last = chain.last
    clock = chain.codes.code("clock")
    for (kind, name), items in slots.items():
        # the slots' own facts (a prefix, in key order) were assumed by the encoder that made
        # them, which a choice step may not have chosen: state them for the whole chain
        for i, (item, present) in enumerate(items):
            if i:
                prev_item, prev_present = items[i - 1]
                out.append(z3.Implies(present, z3.And(prev_present, prev_item < item)))
            if kind == "role":
                out.append(item != clock)
        if kind != "role" or name is None:
            continue
        arr = last.post.get(f"role!{name}")
        pre = last.pre.get(f"role!{name}")
        terms = []
        for st in chain.steps:
            for m in st.models:
                terms += m.encoder.role_terms.get(name, [])
                terms += [
                    w.term
                    for w in m.watches
                    if w.group == "submitter"
                    or (w.group == "arg" and isinstance(w.type, ir.TParty))
                ]
        seen: list = []
        for t in terms:
            if any(t.eq(x) for x in seen):
                continue
            seen.append(t)
            member = z3.Or(z3.Select(pre, t), z3.Select(arr, t))
            out.append(z3.Implies(member, z3.Or(*[z3.And(p, it == t) for it, p in items])))
    return out
