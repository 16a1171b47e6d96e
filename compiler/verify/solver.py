"""Every question to Z3 goes through here.

Verdicts are decided by Z3's resource limit (``rlimit``), a count of the solver's own
steps: the same question gets the same answer on any machine and under any load.  A
wall-clock time-out stays as a safety net only; a query stopped by it is reported as
such (:attr:`Stats.safety_net`), because only that answer depends on the machine.

Determinism also needs the same question asked the same way: every run starts from a
fresh Z3 context (:func:`fresh_context`), each query gets a new solver with fixed seeds,
and the encoders iterate in sorted or insertion order, never in hash order.
"""

from __future__ import annotations

import contextvars
import functools
import time
from functools import partial
from fractions import Fraction
from typing import Any, Callable, Iterable, Iterator, Optional, TYPE_CHECKING, Union

import attrs
import z3

if TYPE_CHECKING:
    from .model import HandlerModel

# z3's Python layer re-checks, in Python, the sorts and kinds of the arguments of every term it
# builds while ``Z3_DEBUG`` (``__debug__`` by default) is set - a quarter of the time spent
# encoding a handler.  Z3's C API checks the same (a sort mismatch still raises Z3Exception,
# which the encoder reports as an encoding gap), and the terms built are identical, so the
# verdicts and resource counts are too.  The verifier is the process's only user of z3.
z3.z3.Z3_DEBUG = False

# Z3 resource units per query (``--rlimit``).  Calibrated on the stdlib: its hardest proved
# query needs about a tenth of this (see benchmarks/bench_verify.py, which prints the
# largest per-query use), so a proof is far from the limit and load cannot move it.
DEFAULT_RLIMIT = 20_000_000
# wall-clock safety net per query (``--timeout-ms``): only for a Z3 that runs away.  Generous:
# a query within the resource limit can take 10 s of CPU, and a loaded machine gives a
# process a fraction of a core; the net must never decide what the rlimit would have
DEFAULT_TIMEOUT_MS = 300_000


@attrs.frozen
class Limits:
    """What one query may spend: ``rlimit`` decides, ``timeout_ms`` is the safety net."""

    rlimit: int = DEFAULT_RLIMIT
    timeout_ms: int = DEFAULT_TIMEOUT_MS

    def part(self, divisor: int) -> "Limits":
        """A share of the resource limit for a quick first attempt (the net stays)."""
        return Limits(max(1, self.rlimit // divisor), self.timeout_ms)


@attrs.define
class Stats:
    """What the queries of one run cost (for benchmarks and the safety-net report)."""

    queries: int = 0
    rlimit_used: int = 0  # sum over queries
    rlimit_max: int = 0  # the costliest single query
    at_limit: int = 0  # queries stopped by the resource limit (deterministic unknowns)
    safety_net: int = 0  # queries stopped by the wall-clock safety net (machine-dependent)
    seconds: float = 0.0


_STATS: contextvars.ContextVar[Stats] = contextvars.ContextVar("charter_verify_stats")
_COUNT: dict[int, int] = {}  # context id -> rlimit count after its last query


def stats() -> Stats:
    """The statistics of the current run (a new one after :func:`fresh_context`)."""
    try:
        return _STATS.get()
    except LookupError:
        st = Stats()
        _STATS.set(st)
        return st


def fresh_context() -> None:
    """Start Z3's default context afresh, and the run's statistics.

    Z3's search depends on the identities of the terms it has seen, so a run after
    many others can take another path (and use more resources) on the same formula.  Each
    ``verify``/``diff`` starts from a pristine context, so its results depend only
    on the policy and the options, not on what ran before in the process."""
    z3.z3._main_ctx = None
    _COUNT.clear()
    _STATS.set(Stats())


@attrs.define
class Answer:
    """Z3's answer: ``status`` is sat / unsat / unknown; ``why`` says why unknown
    (``rlimit``, ``safety_net``, ``incomplete`` or ``error``).  Unpacks as (status, model)."""

    status: str
    model: Optional[z3.ModelRef] = None
    why: str = ""

    def __iter__(self) -> Iterator[Any]:
        return iter((self.status, self.model))


def _limits(limits: Union[Limits, int]) -> Limits:
    # a bare int is a wall-clock limit from an older caller: it becomes the safety net
    return limits if isinstance(limits, Limits) else Limits(timeout_ms=max(1, int(limits)))


def solve(formulas: Iterable[Any], limits: Union[Limits, int], own: bool = False) -> Answer:
    """Z3's answer to ``formulas``.  ``own``: ask in a context of its own (see below)."""
    lim = _limits(limits)
    formulas = list(formulas)
    st = stats()
    st.queries += 1
    home = formulas[0].ctx if formulas and isinstance(formulas[0], z3.AstRef) else z3.main_ctx()
    t0 = time.perf_counter()
    # Z3's search follows the ids of the terms, and in the shared context those depend on
    # everything created (and freed, when Python collects it) before: another code path or a
    # partly cached run can send a non-linear question down another path - once seen to
    # spend 100 s in non-linear arithmetic that the resource limit does not count.  In a
    # context of its own the question is the same every time; that costs a context (about
    # a millisecond), so it is kept for the exact non-linear questions (:func:`solve_m`).
    ctx = _own_context() if own else home
    s = z3.Solver(ctx=ctx)
    s.set("rlimit", max(1, int(lim.rlimit)))
    s.set("timeout", max(1, int(lim.timeout_ms)))
    s.set("random_seed", 0)
    try:
        s.add(*(f.translate(ctx) for f in formulas) if own else formulas)
        r = s.check()
    except z3.Z3Exception:
        st.seconds += time.perf_counter() - t0
        return Answer("unknown", None, "error")
    elapsed = time.perf_counter() - t0
    st.seconds += elapsed
    used = _used(s, ctx)
    st.rlimit_used += used
    st.rlimit_max = max(st.rlimit_max, used)
    if r == z3.sat:
        return Answer("sat", s.model().translate(home) if own else s.model())
    if r == z3.unsat:
        return Answer("unsat")
    if used >= lim.rlimit:
        st.at_limit += 1
        return Answer("unknown", None, "rlimit")
    if elapsed * 1000 >= lim.timeout_ms * 0.9:
        st.safety_net += 1
        return Answer("unknown", None, "safety_net")
    return Answer("unknown", None, "incomplete")


# the context the incremental solvers and small-witness searches of the current
# :func:`shares_context` call share (a list: created on first use), or None: each its own
_SHARED: contextvars.ContextVar[Optional[list]] = contextvars.ContextVar(
    "charter_verify_shared_context", default=None
)


def shares_context(check: Callable) -> Callable:
    """``check`` (one verifier stage whose results are cached as a unit: Houdini for a
    policy, the built-in checks of one handler) gives its incremental solvers and
    small-witness searches one Z3 context instead of one each.

    A context costs 2-8 ms to create (the stdlib made 534 of them: a tenth of its verify
    time).  Sharing keeps what each question costs a function of the stage alone - the same
    questions, asked in the same order, in a context nothing else touches - so a run whose
    other stages came from the cache still gets the same answers.  The exact non-linear
    questions (:func:`solve` with ``own``) keep a context each."""

    @functools.wraps(check)
    def run(*args: Any, **kwargs: Any) -> Any:
        token = _SHARED.set([])
        try:
            return check(*args, **kwargs)
        finally:
            _SHARED.reset(token)

    return run


def _stage_context() -> z3.Context:
    """The current :func:`shares_context` stage's context (a new one outside a stage)."""
    shared = _SHARED.get()
    if shared is None:
        return _own_context()
    if not shared:
        shared.append(_own_context())
    return shared[0]


def _own_context() -> z3.Context:
    ctx = z3.Context()
    _COUNT[id(ctx)] = 0  # a new context counts from 0 (ids of freed ones are reused)
    return ctx


def _used(s: z3.Solver, ctx: z3.Context) -> int:
    """Resource units this query used (Z3 counts per context, cumulatively)."""
    try:
        total = int(s.statistics().get_key_value("rlimit count"))
    except (z3.Z3Exception, KeyError):
        return 0
    key = id(ctx)
    used = total - _COUNT.get(key, 0)
    _COUNT[key] = total
    return max(0, used)


def solve_m(formulas: list, m: HandlerModel, limits: Union[Limits, int]) -> Answer:
    """``solve`` for a question about handler ``m`` with non-linear products.

    First the linear abstraction: each product of two symbolic terms becomes a fresh
    variable constrained only by the product lemmas (valid facts about multiplication).
    Every real state satisfies it (with the variable equal to the product), so *unsat* is a
    proof - and linear arithmetic decides fast.  Otherwise the exact question: half the
    resources without the lemmas, then the other half with them (a model of the
    abstraction may be spurious, so it is never used)."""
    lim = _limits(limits)
    lemmas = m.encoder.lemmas
    if not lemmas:
        return solve(formulas, lim)
    a = solve(_abstract(m, formulas + lemmas + m.encoder.product_group_lemmas()), lim)
    if a.status == "unsat":
        return a
    a = solve(formulas, lim.part(2), own=True)
    if a.status != "unknown":
        return a
    return solve(formulas + lemmas, lim.part(2), own=True)


def solve_split(sp: Any, violated: Any, formulas: list, m: HandlerModel,
                limits: Union[Limits, int]) -> Answer:
    """Can split ``sp`` ``violated`` (a property of its shares) with ``formulas`` (the
    handler's assumptions, the split's path and the question)?

    First from the split's own definition alone (its shares' constraints while it is active;
    every applied event taking its path makes it active): a handful of formulas instead of
    the whole handler, and what is impossible there is impossible in the handler (fewer
    assumptions only allow more).  Only what that cannot refute needs the whole handler.
    Half the limit: a largest-remainder split of three recipients alone can take a few
    million units, still fewer than the whole handler's question."""
    lim = _limits(limits)
    if sp.active is not None:
        # the split's questions (rounding, then each declared property of it) share one
        # incremental solver holding its definition: what Z3 learns about the shares' floors
        # carries over (commons_maintenance's splits: 6.1M resource units -> 2.8M).  Only its
        # "unsat" is taken; anything else is asked again the ordinary way below.
        sessions = m.encoder.split_sessions
        if id(sp) not in sessions:
            sessions[id(sp)] = (sp, _Incremental(sp.defs + [sp.active], lim))
        if sessions[id(sp)][1].proves([violated], lim.part(2)):
            return Answer("unsat")
        a = solve(sp.defs + [sp.active, violated], lim.part(2))
        if a.status == "unsat":
            return a
    return solve_m(formulas, m, lim)


class _Incremental:
    """An incremental solver in a context of its own holding ``base``; each question is
    pushed, checked with its own resource limit and popped.  ``mine`` maps formulas before
    they are translated into that context (the linear abstraction, for :class:`Session`)."""

    def __init__(self, base: list, limits: Limits, mine: Callable[[list], list] = list):
        self.mine = mine
        # a context of its own (or its stage's): what the incremental solver creates must
        # not change the term order, and so the answers, of the ordinary questions after it
        self.ctx = _stage_context()
        self.s = z3.Solver(ctx=self.ctx)
        self.s.set("random_seed", 0)
        self.s.set("timeout", max(1, int(limits.timeout_ms)))
        self.add(base)

    def add(self, formulas: list) -> None:
        self.s.add(*[f.translate(self.ctx) for f in self.mine(formulas)])

    def proves(self, extra: list, lim: Limits) -> bool:
        """Is ``base + extra`` unsatisfiable within ``lim``?"""
        st = stats()
        st.queries += 1
        s = self.s
        s.push()
        t0 = time.perf_counter()
        try:
            self.add(extra)
            s.set("rlimit", max(1, int(lim.rlimit)))
            r = s.check()
        except z3.Z3Exception:
            r = z3.unknown
        finally:
            st.seconds += time.perf_counter() - t0
            used = _used(s, self.ctx)
            st.rlimit_used += used
            st.rlimit_max = max(st.rlimit_max, used)
            s.pop()
        return r == z3.unsat


class Session:
    """Many questions about one handler that share its assumptions (``base``).

    Z3's incremental solver holds ``base`` (over the linear abstraction, with the product
    lemmas) once; each question is pushed, checked and popped, so what Z3 learned about
    the handler carries over instead of being rebuilt per question - the per-check money
    questions of a handler with forty products go from seconds each to milliseconds.  Only
    an *unsat* answer is taken from it (a proof: every real state satisfies the
    abstraction); anything else is asked again the ordinary way (:func:`solve_m`).  The
    questions come in a fixed order, so the answers stay deterministic."""

    def __init__(self, m: HandlerModel, base: list, limits: Union[Limits, int]):
        self.m = m
        self.base = list(base)
        self.limits = _limits(limits)
        self._inc: Optional[_Incremental] = None

    def _solver(self) -> _Incremental:
        if self._inc is None:
            enc = self.m.encoder
            lemmas = enc.lemmas + (enc.product_group_lemmas() if enc.lemmas else [])
            # (a partial, not a closure over self: no reference cycle, so the session and
            # its formulas are freed as soon as it is dropped, as Z3's term ids expect)
            self._inc = _Incremental(self.base + lemmas, self.limits, partial(_abstract, self.m))
        return self._inc

    def assume(self, facts: list) -> None:
        """Facts every later question may assume (an earlier check that passed)."""
        self.base += facts
        if self._inc is not None:
            self._inc.add(facts)

    def ask(self, extra: list, cases: Optional[list] = None) -> Answer:
        """``solve_m(base + extra)``, trying the shared incremental solver first; ``cases``
        (formulas whose disjunction ``extra`` implies, e.g. one per loop copy of a posting):
        when the whole question is not proved at once, each case proved on its own
        proves it too."""
        if self.proves(extra):
            return Answer("unsat")
        if cases and all(self.proves(extra + [c]) for c in cases):
            return Answer("unsat")
        return solve_m(self.base + extra, self.m, self.limits)

    def proves(self, extra: list, share: int = 10) -> bool:
        """Is ``base + extra`` unsatisfiable, by the incremental solver (with a ``share``-th
        of the limit)?"""
        return self._solver().proves(extra, self.limits.part(share))


def _abstract(m: HandlerModel, formulas: list) -> list:
    enc = m.encoder
    if not enc.products:
        return formulas
    cached = getattr(enc, "_abstraction", None)
    if cached is None or cached[0] != len(enc.products):
        n = len(enc.products)
        src = (z3.Ast * n)()
        dst = (z3.Ast * n)()
        keep = []  # the fresh constants must outlive the arrays that point at them
        for i, (_, _, p, _) in enumerate(enc.products):
            v = z3.Const(f"{enc.prefix}prod!{i}", p.sort())
            keep.append(v)
            src[i], dst[i] = p.as_ast(), v.as_ast()
        cached = (n, src, dst, keep)
        enc._abstraction = cached
        # formula id -> (formula, its abstraction): the handler's assumptions are abstracted
        # for every question about it; the formula is kept so its id is not reused
        enc._abstracted = {}
    n, src, dst, _ = cached
    done = enc._abstracted
    out = []
    for f in formulas:
        hit = done.get(f.get_id())
        if hit is None:
            # one C call per formula (z3.substitute re-checks every pair's sorts in Python)
            hit = done[f.get_id()] = (
                f, z3.z3._to_expr_ref(z3.Z3_substitute(f.ctx_ref(), f.as_ast(), n, src, dst),
                                      f.ctx))
        out.append(hit[1])
    return out


def _zero_products(m: HandlerModel, formulas: list) -> list:
    """``formulas`` with each product ``a*b`` replaced by a fresh constant pinned to 0, and
    ``a == 0 or b == 0``: linear, and every model of it satisfies ``formulas`` with the
    products in place (their value is 0), so its models are real witnesses."""
    enc = m.encoder
    out = _abstract(m, formulas)
    n, _, _, consts = enc._abstraction
    for v, (a, b, _, _) in zip(consts, enc.products[:n]):
        out += [v == 0, z3.Or(a == 0, b == 0)]
    return out


def solve_sat(formulas: list, m: HandlerModel, limits: Union[Limits, int]) -> Answer:
    """For questions that want a witness (can the handler apply, can a branch run): first try
    the easy witnesses - every product 0, then few items per collection - each with a tenth
    of the resources, then the full question.  Any witness found is a real one (fewer
    items is a legitimate state), so a quick "sat" is final; only "unsat" needs the full
    query (or a small-witness search whose refutation did not depend on fewer items)."""
    lim = _limits(limits)
    a = quick_witness(formulas, m, lim.part(10))
    return a if a.status != "unknown" else solve(formulas, lim)


def quick_witness(formulas: list, m: HandlerModel, lim: Limits) -> Answer:
    """The easy witnesses of ``formulas`` (each attempt with ``lim``): "sat" with a real
    model, "unsat" when the small-witness search refuted it outright, else "unknown"."""
    if m.encoder.products:
        # a witness where every product of two symbolic terms is 0 (one factor 0): the
        # question becomes linear, and any model of it is a model of the original one
        a = solve(_zero_products(m, formulas), lim)
        if a.status == "sat":
            return a
    slots = [items for items in m.encoder.slots.values() if items]
    if slots:
        return _small_witness(formulas, slots, lim)
    return Answer("unknown", None, "incomplete")


def _small_witness(formulas: list, slots: list, lim: Limits) -> Answer:
    """A witness with as few items per collection as it needs, found by growing them.

    Every collection starts empty (each slot's absence is an assumption literal).  When Z3
    refutes that, its unsat core names the collections whose emptiness the refutation
    used; those get one more item each, and the question is asked again on the same
    incremental solver - so a witness that needs two recipients in one collection and one
    item in another is asked about at that size, not with every collection full (a split's
    non-linear shares for nine recipients instead of two).  Each step has ``lim``; an
    unknown step ends the search (the caller asks the full question).  A refutation whose
    core holds no such literal does not depend on the sizes: the whole question is unsat."""
    st = stats()
    home = formulas[0].ctx if formulas and isinstance(formulas[0], z3.AstRef) else z3.main_ctx()
    # a context of its own (or its stage's), so the search costs the same whatever was
    # asked before it outside the stage
    ctx = _stage_context()
    s = z3.Solver(ctx=ctx)
    s.set("random_seed", 0)
    s.set("timeout", max(1, int(lim.timeout_ms)))
    lits: dict[int, tuple[int, int, Any]] = {}  # literal id -> (collection, slot, literal)
    t0 = time.perf_counter()
    try:
        s.add(*[f.translate(ctx) for f in formulas])
        for c, items in enumerate(slots):
            for i, (_, present) in enumerate(items):
                lit = z3.Bool(f"witness!absent!{c}!{i}", ctx)
                s.add(z3.Implies(lit, z3.Not(present.translate(ctx))))
                lits[lit.get_id()] = (c, i, lit)
    except z3.Z3Exception:
        st.seconds += time.perf_counter() - t0
        return Answer("unknown", None, "error")
    keep = [0] * len(slots)
    while True:
        st.queries += 1
        s.set("rlimit", max(1, int(lim.rlimit)))
        t1 = time.perf_counter()
        try:
            r = s.check(*[lit for c, i, lit in lits.values() if i >= keep[c]])
        except z3.Z3Exception:
            r = z3.unknown
        elapsed = time.perf_counter() - t1
        st.seconds += elapsed
        used = _used(s, ctx)
        st.rlimit_used += used
        st.rlimit_max = max(st.rlimit_max, used)
        if r == z3.sat:
            return Answer("sat", s.model().translate(home))
        if r != z3.unsat:
            if used >= lim.rlimit:
                st.at_limit += 1
                return Answer("unknown", None, "rlimit")
            if elapsed * 1000 >= lim.timeout_ms * 0.9:
                st.safety_net += 1
                return Answer("unknown", None, "safety_net")
            return Answer("unknown", None, "incomplete")
        core = {lits[x.get_id()][0] for x in s.unsat_core() if x.get_id() in lits}
        if not core:
            return Answer("unsat")
        # one item more in one collection per step (the emptiest the core names): cores
        # are not minimal, and growing every collection named would soon ask at full size
        keep[min(core, key=lambda c: (keep[c], c))] += 1


def _eval(model: z3.ModelRef, term: Any) -> Any:
    v = model.eval(term, model_completion=True)
    if z3.is_int_value(v):
        return v.as_long()
    if z3.is_rational_value(v):
        return Fraction(v.numerator_as_long(), v.denominator_as_long())
    if z3.is_true(v):
        return True
    if z3.is_false(v):
        return False
    if z3.is_algebraic_value(v):  # irrational: only from non-linear terms we never produce
        return str(v)
    return str(v)
