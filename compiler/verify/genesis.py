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

The number of queries is capped (:data:`MAX_QUERIES`, plus twice as many prefix checks),
each has a share of the run's Z3 resource limit and the whole search a budget of them
(:class:`_Budget`), so whether a scenario is found does not depend on the machine or its
load.  Whatever the search finds is only a candidate: :mod:`.replay` runs it
on the runtime before anyone sees it.

Time (:func:`clock`): events are at time 0 until a core step is an ``every`` handler; that
step is the clock tick at its due time, and the events after it come before the next one,
so the timers the runtime fires are the chain's own steps (a vesting that needs 30 days to
pass, then a stop).  Not searched: time passing without a clock step of the chain (a
``when R.f passes`` deadline firing in between), more setup events than
:data:`SETUP_LEVELS` allows, more than :data:`CORE_STEPS` record events.
"""

from __future__ import annotations

from itertools import product
from typing import Any, Callable, Optional

import attrs
import z3

from .. import ir
from .encode import Encoder
from .footprint import nodes, walk
from .model import HandlerModel
from .options import Options
from .solver import solve
from .terms import Codes, Unsupported

# joining/minting events before the first record: up to 4, each any setup handler; then
# ORDERED: each setup handler up to twice, in the order roles need (who admits a Provider
# before who needs one), each step there or not - 2 x handlers steps, but binary choices,
# so far cheaper for Z3 than as many free choices
ORDERED = -1
SETUP_LEVELS = (4, ORDERED, 8)
CORE_STEPS = 4  # record-handling events before the failing one
MAX_QUERIES = 36  # target queries per finding: the search's size, independent of the machine
SEARCH_BUDGET = 6  # the run's per-query resource limits one whole search may spend
QUERY_SHARE = 2  # a search query gets half the per-query limit (most need far less)
PREFIX_SHARE = 20  # "can this prefix apply at all" gets 1/20
RETRY_UNKNOWN = 3  # per level, undecided queries asked again with the whole limit


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
    # text_functions: a composite key or built text is the same function in every step
    # (each step's encoder copies `common`; a table created by one copy would be its own)
    common = {"init": True, "pre": {}, "slots": {}, "params": {}, "text_functions": {}}
    return Chain([], [], Codes(), common, {})


def extend(
    policy: ir.Policy,
    chain: Chain,
    cands: list[ir.Handler],
    skippable: bool = False,
    bound: int = 3,
    fixed_params: Optional[dict] = None,
    anywhere: bool = False,
) -> Chain:
    """``chain`` plus one step (one of ``cands``, or none when ``skippable``); the steps
    before the new one must apply (the new one's application is the caller's question).
    Skipped symbolic steps come last; a fixed step (``anywhere``) may be skipped wherever
    it is."""
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
        if c.prev_skip is not None and not anywhere:
            formulas.append(z3.Implies(c.prev_skip, skip))  # skipped steps come last
        c.prev_skip = None if anywhere else skip
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


def _changes_state(h: ir.Handler) -> bool:
    return any(not isinstance(st, (ir.Require, ir.Let, ir.Flag)) for st in h.body)


def _creates(h: ir.Handler) -> set:
    return {st.record for st in walk(h.body) if isinstance(st, ir.Create)}


def _record_names(x: Any, out: set) -> None:
    """Every record an IR value mentions (reads, accounts, record-typed arguments)."""
    out.update(n.record for n in nodes(x)
               if isinstance(n, (ir.TRecord, ir.RecordRef, ir.RecordsOf, ir.AccEscrow)))


def fields_read(x: Any) -> set:
    """(record, field) for every record field an IR value (a handler, an expression, a
    violation's attributes) reads."""
    return {(n.record, n.field) for n in nodes(x) if isinstance(n, ir.RecordField)}


_ACCOUNT_KIND = {ir.AccParty: "party", ir.AccStake: "stake", ir.AccPool: "pool",
                 ir.AccEscrow: "escrow", ir.AccSupply: "supply"}


def _account(acc: Any) -> tuple:
    return ("acct", _ACCOUNT_KIND.get(type(acc), "?"), getattr(acc, "asset", None))


def state_read(x: Any) -> set:
    """What an IR value (a handler, a condition, a violation's attributes) reads, coarsely:
    ``("field", R, f)``, ``("records", R)``, ``("acct", kind, asset)``, ``("role", r)``,
    ``("right", r)``.  A handler's moves read their sources (an overdraft is refused)."""
    out: set = set()
    for n in nodes(x):
        _reads(n, out)
    return out


def _reads(x: Any, out: set) -> None:
    """What one node reads (see :func:`state_read`)."""
    if isinstance(x, ir.RecordField):
        out.add(("field", x.record, x.field))
    elif isinstance(x, (ir.Exists, ir.RecordRef, ir.RecordsOf)):
        out.add(("records", x.record))
    elif isinstance(x, ir.AccBalance):
        out.add(_account(x.account))
    elif isinstance(x, ir.RoleMembers) and x.role:
        out.add(("role", x.role))
    elif isinstance(x, ir.RoleAttr):
        out.add(("role", x.role))
    elif isinstance(x, ir.AuthRole) and x.role:
        out.add(("role", x.role))
    elif isinstance(x, (ir.Move, ir.Split)):
        out.add(_account(x.src))
    elif isinstance(x, ir.Builtin):
        if x.name == "has_role":
            out.update(("role", r) for r in x.extra)
        elif x.name == "has_right":
            out.update(("right", r) for r in x.extra)
        elif x.name == "supply":
            out.update(("acct", "supply", a) for a in x.extra)


def state_written(h: ir.Handler) -> set:
    """What ``h`` writes, in the tokens of :func:`state_read`."""
    out: set = set()
    for st in walk(h.body):
        if isinstance(st, ir.SetField):
            out.add(("field", st.record, st.field))
        elif isinstance(st, (ir.Update, ir.Create)):
            out.update(("field", st.record, f) for f, _ in st.values)
            if isinstance(st, ir.Create):
                out.add(("records", st.record))
        elif isinstance(st, ir.Delete):
            out.add(("records", st.record))
        elif isinstance(st, ir.Move):
            out.update({_account(st.src), _account(st.dst)})
        elif isinstance(st, ir.Split):
            out.add(_account(st.src))
            out.update(_account(a) for a in st.accounts)
            t = st.to.type if st.to is not None else None
            kind = "escrow" if isinstance(t, ir.TRecord) else "party"
            out.add(("acct", kind, st.asset))
        elif isinstance(st, ir.Decay):
            out.update({("acct", "party", st.asset), ("acct", "supply", st.asset)})
        elif isinstance(st, (ir.Admit, ir.Expel)):
            out.add(("role", st.role))
        elif isinstance(st, (ir.Grant, ir.Revoke)):
            out.add(("right", st.right))
    return out


def _needs(h: ir.Handler) -> set:
    """Records ``h`` reads or updates but does not create (it needs one created earlier)."""
    out: set = set()
    _record_names(h.params, out)
    _record_names(h.auth, out)
    _record_names(h.body, out)
    if h.record:
        out.add(h.record)
    return out - _creates(h)


def _admits(h: ir.Handler) -> set:
    return {f"role:{st.role}" for st in walk(h.body) if isinstance(st, ir.Admit)}


def _role_needs(h: ir.Handler, admitted: set) -> set:
    """``role:R`` for each role ``h`` needs a member of before it can apply: its submitter's
    (``by p: Provider``) and its role-typed arguments' (``provider: Provider``).  Only roles
    some submitted handler admits count (one a timed rule admits is not searched for)."""
    out = set()
    if isinstance(h.auth, ir.AuthRole) and h.auth.role:
        out.add(f"role:{h.auth.role}")
    for f in h.params:
        t = f.type.inner if isinstance(f.type, ir.TOptional) else f.type
        if isinstance(t, ir.TParty) and t.role:
            out.add(f"role:{t.role}")
    return (out & admitted) - _admits(h)


def _submitted(policy: ir.Policy) -> list[ir.Handler]:
    out = []
    for h in policy.handlers:
        if h.kind != "event" or not _changes_state(h):
            continue
        if any(isinstance(st, ir.Dissolve) for st in walk(h.body)):
            continue  # after a dissolve no event applies: it can only be the failing one
        out.append(h)
    return out


def classify(policy: ir.Policy) -> tuple[list[ir.Handler], list[ir.Handler]]:
    """(setup, core): submitted handlers that change state, split by whether they touch
    records.  Setup handlers give roles and money; core handlers create and work records.
    A handler that needs a role only a core handler admits (``bond`` by a ``Provider``,
    whom ``register_node`` admits) is core too: setup steps all come first."""
    setup, core = [], []
    subs = _submitted(policy)
    admitted = set().union(*[_admits(h) for h in subs]) if subs else set()
    for h in subs:
        touched: set = set()
        _record_names((h.params, h.auth, h.body), touched)
        # setup steps are symbolic choices, so only cheap handlers: no loops or splits, not
        # the clock's (those are core steps, tried one at a time)
        (core if touched or _heavy(h) else setup).append(h)
    changed = True
    while changed:  # roles setup steps can give, until no setup handler needs another
        changed = False
        given = set().union(*[_admits(h) for h in setup]) if setup else set()
        for h in list(setup):
            if not _role_needs(h, admitted) <= given:
                setup.remove(h)
                core.append(h)
                changed = True
    # a clock tick: an `every` handler firing at its due time (see :func:`clock`)
    core += [h for h in policy.handlers if h.kind == "every" and h.period]
    core.sort(key=lambda h: [x.name for x in policy.handlers].index(h.name))
    return setup, core


def ordered_setup(policy: ir.Policy, setup: list) -> list:
    """The setup handlers, each after those that admit the roles it needs (in source order
    otherwise; a cycle keeps source order)."""
    subs = _submitted(policy)
    admitted = set().union(*[_admits(h) for h in subs]) if subs else set()
    left, out, given = list(setup), [], set()
    while left:
        ready = [h for h in left if _role_needs(h, admitted) <= given] or left[:1]
        h = ready[0]
        out.append(h)
        left.remove(h)
        given |= _admits(h)
    return out


def _heavy(h: ir.Handler) -> bool:
    return isinstance(h.auth, ir.AuthClock) or any(
        isinstance(st, (ir.ForEach, ir.Split)) for st in walk(h.body)
    )


def core_sequences(
    policy: ir.Policy, target: ir.Handler, core: list, max_len: int, wanted: tuple = (),
    made0: frozenset = frozenset(), reads: frozenset = frozenset(),
) -> list:
    """Core prefixes; a handler that needs a record (or a member of a role) only after one
    that creates (admits) it.  First those that include a writer of every field the modular
    counterexample shows changed (``wanted``: one set of handler names per such field), then
    those after which the failing handler has what it needs, then shorter ones (repeats are
    not penalised: "do it twice" is a common bug); among those of one length, first those
    with fewer events that write nothing the failing handler or the violated property
    (``reads``) reads (a skill retired, a use counted, when the violation is about stakes)."""
    found = []
    subs = _submitted(policy)
    admitted = set().union(*[_admits(h) for h in subs]) if subs else set()
    needs = {h.name: _needs(h) | _role_needs(h, admitted) for h in core}
    creates = {h.name: _creates(h) | _admits(h) for h in core}
    target_needs = _needs(target) | _role_needs(target, admitted)
    heavy = {h.name for h in core if _heavy(h)}
    read = state_read(target) | set(reads)
    idle = {h.name for h in core if not (state_written(h) & read)}
    for n in range(0, max_len + 1):
        for seq in product(core, repeat=n):
            made: set = set(made0)  # records a setup step may create (a round opened)
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
                useless = sum(1 for x in seq if x.name in idle)
                # a clock tick only where it ranks better (a field it writes is wanted)
                ticks = sum(1 for x in seq if x.kind == "every")
                found.append((missing, 0 if target_needs <= made else 1, n, useless, ticks,
                              seq))
    # a sequence after which the failing handler lacks a record or role it needs is tried
    # only after every one that has them (the budget would go to short hopeless ones)
    return [seq for *_, seq in sorted(found, key=lambda x: x[:5])]


def field_writers(policy: ir.Policy) -> dict:
    """(record, field) -> the handlers that set it after creation (``set``/``update``)."""
    out: dict = {}
    for h in policy.handlers:
        for st in walk(h.body):
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
        for st in walk(h.body):
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
    reads: frozenset = frozenset(),
) -> tuple[Optional[Found], int]:
    """The first chain from genesis (setup, core, ``target``) where ``fails`` holds.

    ``fails(last_model)``, or with ``fails.wants_chain`` ``fails([first, last])``, or with
    ``fails.wants_steps`` ``fails(steps)`` (every :class:`Step` of the chain).  Small
    setups first (each query is quicker, the scenario shorter); two thirds of the queries go
    to the smaller setup.  Returns (found or None, the longest number of events searched)."""
    longest = 0
    used = 0
    budget = _Budget(opts)
    for n, setup_steps in enumerate(setup_levels):
        left = max_queries - used
        # the first level half, the ordered one all but a few the last may still try
        if n == len(setup_levels) - 1:
            cap = left
        elif setup_steps == ORDERED:
            cap = max(1, left - 4)
        else:
            cap = max(1, left // 2)
        found, reach, q = _search_level(
            policy, target, fails, opts, setup_steps, core_steps, cap, wanted, budget, reads
        )
        used += q
        longest = max(longest, reach)
        if found is not None or used >= max_queries or budget.spent():
            return found, longest
    return None, longest


class _Budget:
    """The Z3 resources one search may spend in all: :data:`SEARCH_BUDGET` times the run's
    per-query limit, each query a :data:`QUERY_SHARE` of it (a cheap prefix check a
    :data:`PREFIX_SHARE`).  Counted in rlimit units, so where a search stops does not
    depend on the machine; without it a policy whose chains are costly to solve spends
    96 full limits on one finding."""

    def __init__(self, opts: Options) -> None:
        from .solver import stats

        self.limits = opts.limits
        self.total = SEARCH_BUDGET * self.limits.rlimit
        self._stats = stats
        self.start = stats().rlimit_used

    def spent(self) -> bool:
        return self._stats().rlimit_used - self.start >= self.total

    def query(self) -> Any:
        return self.limits.part(QUERY_SHARE)

    def prefix(self) -> Any:
        return self.limits.part(PREFIX_SHARE)


def _search_level(
    policy: ir.Policy,
    target: str,
    fails: Callable[..., Any],
    opts: Options,
    setup_steps: int,
    core_steps: int,
    max_queries: int,
    wanted: tuple = (),
    budget: Optional[_Budget] = None,
    reads: frozenset = frozenset(),
) -> tuple[Optional[Found], int, int]:
    budget = budget or _Budget(opts)
    h = policy.handler(target)
    setup, core = classify(policy)
    if not setup:
        setup_steps = 0
    longest = 0
    queries = 0

    plan = [x for x in ordered_setup(policy, setup) for _ in range(2)]
    n_setup = len(plan) if setup_steps == ORDERED else setup_steps

    def fresh_base() -> Chain:
        base = start(policy)
        if setup_steps == ORDERED:
            for x in plan:
                base = extend(policy, base, [x], True, opts.bound, opts.fixed_params, True)
            return base
        for _ in range(setup_steps):
            base = extend(policy, base, setup, True, opts.bound, opts.fixed_params)
        return base

    base = fresh_base()
    # a handler that iterates a collection adds slots shared by the whole chain; the
    # extensions of one base must not share them (each query would miss the others' facts)
    share = not base.common["slots"]
    memo: dict = {}
    feasible: dict = {}  # prefix names -> can every event of it apply (share mode)

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
                r, _ = solve(chain.formulas + [last.applied], budget.prefix())
                feasible[key] = r != "unsat"
            if not feasible[key]:
                return False
        return True

    made0 = (
        frozenset().union(*[_creates(x) | _admits(x) for x in setup]) if setup_steps else frozenset()
    )
    undecided: list = []
    for seq in core_sequences(policy, h, core, core_steps, wanted, made0, reads):
        if queries >= max_queries or budget.spent():
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
        longest = max(longest, n_setup + len(seq) + 1)
        # the run's resource limit decides (the same answer on any machine); without one,
        # a wall-clock limit per query
        question = chain.formulas + clock(policy, chain) + _closed_roles(chain) + [goal]
        r, model = solve(question, budget.query())
        if r == "sat":
            hms = [m for st in chain.steps if (m := st.chosen(model)) is not None]
            return Found(chain, model, hms), longest, queries
        if r == "unknown" and len(undecided) < RETRY_UNKNOWN:
            undecided.append((chain, question))
    # the first sequences the share of the limit left undecided, asked again with the
    # run's whole per-query limit (while the search's budget lasts)
    for chain, question in undecided:
        if budget.spent():
            break
        r, model = solve(question, opts.limits)
        if r == "sat":
            hms = [m for st in chain.steps if (m := st.chosen(model)) is not None]
            return Found(chain, model, hms), longest, queries
    return None, longest, queries


def clock(policy: ir.Policy, chain: Chain) -> list:
    """When each event of ``chain`` happens, so that the timers the runtime fires are the
    chain's own clock steps.  Events before the first clock step are at time 0 (the first
    event starts the clock).  A clock step (an ``every`` handler, fired for the k-th time in
    the chain) is at its k-th due time, k periods after the start; the events after it come
    before any timed handler is due again.  The failing event of a chain with no clock step
    before it is unconstrained, as before (its replay says whether a timer fired first)."""
    periods = {h.name: h.period for h in policy.handlers if h.kind == "every" and h.period}
    out: list = []
    fired: dict = {}
    tick: Optional[int] = None  # the time of the last clock step so far
    last = len(chain.steps) - 1
    for i, st in enumerate(chain.steps):
        now = st.models[0].now
        name = st.models[0].handler.name if len(st.models) == 1 else None
        if name in periods and (i < last or tick is not None):
            fired[name] = fired.get(name, 0) + 1
            tick = fired[name] * periods[name]
            out.append(now == tick)
        elif tick is not None:
            # before the next firing of any timed handler (at or after it, it fires first)
            nxt = min((tick // p + 1) * p for p in periods.values())
            out += [now >= tick, now < nxt]
        elif i < last:
            out.append(now == 0)
    return out


def _closed_roles(chain: Chain) -> list:
    """A role (or record collection) a handler iterates is modelled by its slots: every
    party any step of the chain uses as a member of that role (admitted, checked), and every
    record any step creates or reads, must be one of them, or the model's split, loop or
    count would leave out a member the runtime includes."""
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
        if kind == "records":
            # a record any step created or read that is live when the failing event runs is
            # one of the slots its loop or count goes over (the runtime sees every record)
            arr = last.post.get(f"live!{name}")
            pre = last.pre.get(f"live!{name}")
            terms = [k for st in chain.steps for m in st.models
                     for k in m.encoder.touched.get(name, [])]
        elif kind != "role" or name is None:
            continue
        else:
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
