"""The verifier's stages, in order, as one table (like :mod:`charter.compiler.pipeline`).

===========  =================================  ==========================================
stage        module                             does
===========  =================================  ==========================================
start        :mod:`.solver`                     fresh Z3 context; whole-policy cache hit ends
invariants   :mod:`.invariants`                 Houdini: which invariants are inductive
encode       :mod:`.prepare`                    every handler's encoding (what units share)
plan         here                               the units: per uncached handler (built-in
                                                checks + declared properties), per policy
                                                check, the properties naming no handler
units        :mod:`.parallel`, :mod:`.checks`,  run the units in forked workers; results in
             :mod:`.properties`,                the canonical order: handlers, then the
             :mod:`.authority`, :mod:`.once`,   policy checks (who can move whose money,
             :mod:`.issuance`, :mod:`.stranded`, paid at most once, issuance bounded,
             :mod:`.postconditions`             nothing stranded, ``ensures`` clauses)
assemble     here                               handler results, then declared in source order
store        :mod:`.cache`                      whole-policy cache entry
===========  =================================  ==========================================

Every stage reads and writes one :class:`Run`; a stage may set ``Run.done`` to end the run
(a cache hit).  :func:`verify` is the only path through the verifier.

Everything before ``units`` runs in this process; every unit then starts from the state it
left (:mod:`.parallel` forks a child per unit), so a unit's results do not depend on which
units ran before it, nor on how many ran at once (``jobs``): ``--jobs 1`` and ``--jobs 8``
give identical results, and the cache holds the same entries.
"""

from __future__ import annotations

import importlib
import time
from functools import partial
from typing import Callable, Optional

import attrs

from .. import ir
from .cache import _cache_load, _cache_store, _decls, _hash, cache_key
from .catalogue import DECLARED_KINDS, POLICY_CHECKS
from .checks import check_handler
from .invariants import (
    Inv,
    _auto_invariants,
    _declared_invariants,
    _encode_inv,
    _invariant_results,
    houdini,
)
from .options import Options
from .parallel import CAN_FORK, Unit, run_units, settled, workers
from .prepare import Prepared, Scope, prepare
from .properties import check_declared
from .result import GUARD, PROVED, REFUTED, UNKNOWN, Result
from .search import MAX_TRACE
from .solver import fresh_context, stats


# the kind of the result standing in for a unit whose worker process died or failed
WORKER = "worker"


@attrs.define
class Slot:
    """Where one handler's, policy check's or the orphans' results come from: the cache
    (``cached``) or ``work`` done in the unit named ``group`` (results cached under ``key``,
    if any)."""

    kind: str  # handler / policy / orphans
    name: str  # the handler or the check
    cached: list = attrs.Factory(list)
    work: Optional[Callable[[], object]] = None
    group: str = ""
    cost: float = 0.0
    key: str = ""


@attrs.define
class Run:
    """What the stages share: inputs, intermediate facts and the results so far."""

    policy: ir.Policy
    opts: Options
    use_cache: bool
    jobs: Optional[int] = None
    key: str = ""
    done: Optional[list[Result]] = None
    declared: list[Inv] = attrs.Factory(list)
    invs: list[Inv] = attrs.Factory(list)
    decls: dict = attrs.Factory(dict)
    inv_data: list = attrs.Factory(list)
    preps: dict[str, Prepared] = attrs.Factory(dict)
    alive: set = attrs.Factory(set)
    inv_results: list[Result] = attrs.Factory(list)
    # invariant candidates dropped undecided (a limit, or an encoding gap): the checks then
    # assume less than is true, so their modular counterexamples may be unreachable
    undecided_invariants: int = 0
    results: list[Result] = attrs.Factory(list)
    declared_results: list[Result] = attrs.Factory(list)
    slots: list[Slot] = attrs.Factory(list)
    failed_workers: int = 0  # units whose worker died: the run is not cached

    def prep_of(self, name: str) -> Prepared:
        """The handler's encoding, built on first use (a cache hit never needs it)."""
        if name not in self.preps:
            self.preps[name] = prepare(
                self.policy, self.policy.handler(name), self.invs, self.opts
            )
        return self.preps[name]


def _start(run: Run) -> None:
    fresh_context()
    run.key = cache_key(run.policy, run.opts)
    if run.use_cache:
        run.done = _cache_load(run.opts, run.key)


def _invariants(run: Run) -> None:
    policy, opts = run.policy, run.opts
    run.declared = _declared_invariants(policy)
    run.invs = run.declared + _auto_invariants(policy)
    run.decls = _decls(policy)
    run.inv_data = [_encode_inv(i) for i in run.declared]
    hkey = _hash(
        {
            "decls": run.decls,
            "handlers": [ir._encode(h) for h in policy.handlers],
            "invariants": run.inv_data,
            "kind": "houdini",
        },
        opts,
    )
    hcached = _cache_load(opts, hkey) if run.use_cache else None
    if hcached is not None and hcached and hcached[0].kind == "houdini":
        run.alive = set(hcached[0].counterexample["alive"])
        run.undecided_invariants = hcached[0].counterexample.get("undecided", 0)
        run.inv_results = hcached[1:]
        _limit_taint(run.inv_results, run)
        return
    for h in policy.handlers:
        run.prep_of(h.name)
    t0 = time.perf_counter()
    net = stats().safety_net
    run.alive, failed = houdini(policy, run.preps, run.invs, opts)
    run.undecided_invariants = sum(1 for st, _, _ in failed.values() if st == UNKNOWN)
    run.inv_results = _invariant_results(
        policy, run.declared, run.alive, failed, run.preps, opts, time.perf_counter() - t0
    )
    if stats().safety_net > net:
        _mark_safety_net(run.inv_results, opts)
    elif run.use_cache:
        marker = Result(
            "$houdini",
            "houdini",
            None,
            PROVED,
            "",
            counterexample={"alive": sorted(run.alive), "undecided": run.undecided_invariants},
        )
        _cache_store(opts, hkey, [marker] + run.inv_results)
    _limit_taint(run.inv_results, run)


def _encode(run: Run) -> None:
    """Every handler's encoding, in handler order, before the split: the units share them
    (a cached Houdini result skipped building them)."""
    for h in run.policy.handlers:
        run.prep_of(h.name)


def _plan(run: Run) -> None:
    """What is left to check, as slots in the canonical order (handlers, then the policy
    checks of the catalogue's ``policy`` rows, then the declared properties that name no
    handler) and the units they are checked in (:func:`_group`).  A handler in the cache
    (keyed by a hash of its IR, the declarations, the invariants it may assume and the
    properties naming it, so editing one handler re-checks only it) needs no unit."""
    policy, opts = run.policy, run.opts
    per_handler_declared: dict[str, list] = {}
    for p in policy.properties:
        if isinstance(p, (ir.SplitProperty, ir.BudgetProperty)):
            per_handler_declared.setdefault(p.handler, []).append(p)
    for h in policy.handlers:
        props = per_handler_declared.get(h.name, [])
        ckey = _hash(
            {
                "decls": run.decls,
                "handler": ir._encode(h),
                "alive": sorted(run.alive),
                "invariants": run.inv_data,
                "props": [ir._encode(p) for p in props],
                "kind": "handler",
            },
            opts,
        )
        cached = _cache_load(opts, ckey) if run.use_cache else None
        if cached is not None:
            run.slots.append(Slot("handler", h.name, cached=cached))
            continue
        cost = _cost(run.prep_of(h.name))
        group = f"handler {h.name}" if cost >= HEAVY else REST
        work = partial(_check_handler, run, h, props)
        run.slots.append(Slot("handler", h.name, work=work, group=group, cost=cost, key=ckey))
    light = [s for s in run.slots if s.group == REST]
    if sum(s.cost for s in light) >= LIGHT_TOGETHER:  # enough for a worker of their own
        for s in light:
            s.group = "the light handlers"
    assume = {
        name: [t for inv in run.invs if inv.name in run.alive for t in prep.inv_pre[inv.name]]
        for name, prep in run.preps.items()
        if prep.model is not None
    }
    alive = [inv for inv in run.invs if inv.name in run.alive]
    scope = Scope(run.policy, run.preps, assume, run.opts, alive)
    for c in POLICY_CHECKS:
        module, func = c.runner.split(":")
        check = getattr(importlib.import_module(f".{module}", __package__), func)
        # policy-wide checks first (LONG): on some policies one of them is the longest unit
        group = "the authority check" if c.name == "authority" else REST
        run.slots.append(Slot("policy", c.name, work=partial(check, scope), group=group,
                              cost=LONG))
    names = {h.name for h in policy.handlers}
    orphans = [
        p
        for p in policy.properties
        if isinstance(p, (ir.SplitProperty, ir.BudgetProperty)) and p.handler not in names
    ]
    if orphans:
        sub = attrs.evolve(policy, properties=tuple(orphans))
        run.slots.append(Slot("orphans", "", work=partial(check_declared, sub, {}, {}, opts),
                              group=REST))


# A handler whose encoding is at least this costly (:func:`_cost`) is a unit of its own; the
# light ones share one with the policy checks other than authority (REST), or one of their
# own when their estimates add up to LIGHT_TOGETHER.  Each unit costs a worker process
# (20-40 ms of copying pages), more than a handler without products, splits or many postings
# takes to check.  The authority check is a unit of its own: on some policies it is the
# longest.  (Constants, never the number of workers: the grouping must not depend on it.)
HEAVY = 80.0
LIGHT_TOGETHER = 240.0
LONG = 1e9
REST = "the rest"


def _cost(prep: Prepared) -> float:
    """A deterministic estimate of how long a handler's checks take, from its encoding:
    products of symbolic terms and splits make the questions hard, postings make more."""
    m = prep.model
    if m is None:
        return 0.0
    enc = m.encoder
    return len(m.assumptions) + 20 * len(enc.products) + 100 * len(enc.splits) + 10 * len(
        enc.postings
    )


def _group(slots: list[Slot]) -> tuple[list[Unit], list[list[Slot]]]:
    """The units, in order of first appearance: each runs its slots' work in slot order.

    Which slots share a unit depends only on the policy (never on ``jobs``), so a slot sees
    the same earlier work in every run."""
    groups: dict[str, list[Slot]] = {}
    for s in slots:
        if s.work is not None:
            groups.setdefault(s.group, []).append(s)
    units = [
        Unit(_unit_name(members), partial(_run_slots, members), sum(s.cost for s in members))
        for members in groups.values()
    ]
    return units, list(groups.values())


def _unit_name(slots: list[Slot]) -> str:
    """What a unit checks, for messages: "handlers join and post, the once and issuance
    checks", "the authority check"."""
    handlers = [s.name for s in slots if s.kind == "handler"]
    checks = [s.name for s in slots if s.kind == "policy"]
    parts = []
    if handlers:
        parts.append(("handler " if len(handlers) == 1 else "handlers ") + _listed(handlers))
    if checks:
        parts.append(f"the {_listed(checks)} check" + ("s" if len(checks) > 1 else ""))
    if any(s.kind == "orphans" for s in slots):
        parts.append("the properties naming no handler")
    return ", ".join(parts)


def _listed(names: list[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def _run_slots(slots: list[Slot]) -> list:
    return [s.work() for s in slots]


def _check_handler(run: Run, h: ir.Handler, props: list) -> tuple[list, list]:
    """One handler's unit: the built-in checks, then the declared properties naming it."""
    policy, opts = run.policy, run.opts
    prep = run.prep_of(h.name)
    mine: list[Result] = []
    if prep.model is None:
        mine.append(
            Result(
                f"{h.name}.encoding",
                "encoding",
                h.name,
                UNKNOWN,
                f"not verified: the encoding does not support {prep.error}",
                h.span,
                opts.bound,
            )
        )
        inv_assume: list = []
    else:
        inv_assume = [
            t for inv in run.invs if inv.name in run.alive for t in prep.inv_pre[inv.name]
        ]
        mine += check_handler(policy, prep, inv_assume, opts)
        if prep.model.notes:
            for r in mine:
                if r.kind == "applicable":
                    r.message += (
                        " [model notes: " + "; ".join(dict.fromkeys(prep.model.notes)) + "]"
                    )
    sub = attrs.evolve(policy, properties=tuple(props))
    mine_declared = check_declared(sub, {h.name: prep}, {h.name: inv_assume}, opts)
    if prep.model is not None:  # the splits' incremental solvers (a context each)
        prep.model.encoder.split_sessions.clear()
    return mine, mine_declared


def _units(run: Run) -> None:
    """Run the units (:mod:`.parallel`: forked workers, ``jobs`` at a time), then put their
    results in the canonical order (the slots'), whatever order they ran in."""
    units, members = _group(run.slots)
    done: dict[int, tuple[object, str, bool]] = {}  # id(slot) -> (value, error, safety net)
    for o, slots in zip(run_units(units, run.jobs), members):
        for i, slot in enumerate(slots):
            done[id(slot)] = (None if o.error else o.value[i], o.error, bool(o.stats.safety_net))
    for slot in run.slots:
        if slot.work is None:
            _limit_taint(slot.cached, run)
            run.results += [r for r in slot.cached if r.kind not in DECLARED_KINDS]
            run.declared_results += [r for r in slot.cached if r.kind in DECLARED_KINDS]
            continue
        value, error, net = done[id(slot)]
        if error:
            run.failed_workers += 1
            mine, declared = [_worker_failed(slot, error, run.opts)], []
        elif slot.kind == "handler":
            mine, declared = value
        elif slot.kind == "policy":
            mine, declared = value, []
        else:
            mine, declared = [], value
        if net:  # (the whole unit's count: a unit with several slots marks them all)
            _mark_safety_net(mine + declared, run.opts)
        elif slot.key and run.use_cache and not error:
            _cache_store(run.opts, slot.key, mine + declared)
        _limit_taint(mine + declared, run)
        run.results += mine
        run.declared_results += declared


def _worker_failed(slot: "Slot", error: str, opts: Options) -> Result:
    """A unit whose worker died or failed: unknown, and said why (never proved, never
    cached); the CLI exits non-zero on it."""
    name = f"{slot.name}.worker" if slot.name else "$orphans.worker"
    return Result(
        name,
        WORKER,
        slot.name if slot.kind == "handler" else None,
        UNKNOWN,
        f"not verified: {error}",
        bound=opts.bound,
    )


def _mark_safety_net(results: list[Result], opts: Options) -> None:
    """Say which unknowns come from the wall clock: only they depend on the machine."""
    for r in results:
        if r.status == UNKNOWN:
            r.message += (
                f" [the wall-clock safety net of {opts.timeout_ms:,} ms per query was reached "
                "before the resource limit: on another machine or under less load this check "
                "may be decided]"
            )


def _limit_taint(results: list[Result], run: Run) -> None:
    """A limit reached anywhere is *unknown*, never *refuted*.

    When invariant inference left candidates undecided, every check assumed less than may
    be true, so a counterexample it found from an arbitrary pre-state proves nothing unless
    the search from the initial state reached it.  Such findings become unknown (the
    counterexample stays attached, marked unconfirmed)."""
    if not run.undecided_invariants:
        return
    for r in results:
        cex = r.counterexample
        if r.status not in (REFUTED, GUARD) or not cex or cex.get("confirmed"):
            continue
        r.status = UNKNOWN
        r.message = (
            f"not decided: invariant inference left {run.undecided_invariants} candidate(s) "
            "undecided (see the invariant results), so the pre-state of this finding may be "
            "unreachable, and no violation was found from the initial state within "
            f"{MAX_TRACE} events. The finding was: " + r.message
        )


def _assemble(run: Run) -> None:
    order = {p.name: i for i, p in enumerate(run.policy.properties)}
    run.results += sorted(
        run.inv_results + run.declared_results, key=lambda r: order.get(r.name, len(order))
    )


def _store(run: Run) -> None:
    # a run the wall-clock safety net interrupted has machine-dependent verdicts: not cached
    if run.use_cache and not stats().safety_net and not run.failed_workers:
        _cache_store(run.opts, run.key, run.results)


STAGES: tuple[tuple[str, Callable[[Run], None]], ...] = (
    ("start", _start),
    ("invariants", _invariants),
    ("encode", _encode),
    ("plan", _plan),
    ("units", _units),
    ("assemble", _assemble),
    ("store", _store),
)


def verify(
    policy: ir.Policy,
    opts: Optional[Options] = None,
    use_cache: bool = True,
    jobs: Optional[int] = None,
) -> list[Result]:
    """Every result for ``policy``: built-in properties per handler, then declared ones.

    ``jobs``: how many worker processes check units at once (the results are the same for
    every number); ``None`` checks them in this process, one after another (see
    :func:`.parallel.run_units`)."""
    run = Run(policy, opts or Options(), use_cache, jobs)
    with settled():
        for _name, stage in STAGES:
            stage(run)
            if run.done is not None:
                return run.done
    return run.results


def verify_many(
    items: list[tuple[ir.Policy, Options]], use_cache: bool = True, jobs: Optional[int] = None
) -> list[list[Result]]:
    """:func:`verify` for each (policy, options), in that order.

    With ``jobs``, each policy is verified in a worker process of its own (the larger ones
    started first), and its units in workers of their own, ``jobs`` processes at a time in
    all (:func:`.parallel.workers`): the same results as one policy at a time.  A policy
    whose worker died gets one *unknown* result that says so."""
    if jobs is None or not CAN_FORK or len(items) < 2:
        return [verify(p, o, use_cache, jobs) for p, o in items]
    units = [
        Unit(f"policy {p.name}", partial(verify, p, o, use_cache, jobs), float(_size(p)))
        for p, o in items
    ]
    with workers(jobs):
        outcomes = run_units(units, jobs)
    return [
        o.value
        if not o.error
        else [
            Result(f"{p.name}.worker", WORKER, None, UNKNOWN, f"not verified: {o.error}",
                   bound=opts.bound)
        ]
        for (p, opts), o in zip(items, outcomes)
    ]


def _size(policy: ir.Policy) -> int:
    """How much a policy has to verify, roughly (a deterministic start order)."""
    return len(ir.to_json(policy))
