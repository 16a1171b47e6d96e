"""The verifier's stages, in order, as one table (like :mod:`charter.compiler.pipeline`).

===========  =================================  ==========================================
stage        module                             does
===========  =================================  ==========================================
start        :mod:`.solver`                     fresh Z3 context; whole-policy cache hit ends
invariants   :mod:`.invariants`                 Houdini: which invariants are inductive
handlers     :mod:`.checks`, :mod:`.properties` built-in checks + declared properties per handler
policy       :mod:`.authority`, :mod:`.once`,      who can move whose money, paid at most once,
             :mod:`.issuance`, :mod:`.stranded`, issuance bounded, nothing stranded,
             :mod:`.postconditions`             ``ensures`` clauses
orphans      :mod:`.properties`                 declared properties naming no handler
assemble     here                               handler results, then declared in source order
store        :mod:`.cache`                      whole-policy cache entry
===========  =================================  ==========================================

Every stage reads and writes one :class:`Run`; a stage may set ``Run.done`` to end the run
(a cache hit).  :func:`verify` is the only path through the verifier.
"""

from __future__ import annotations

import importlib
import time
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
from .prepare import Prepared, Scope, prepare
from .properties import check_declared
from .result import GUARD, PROVED, REFUTED, UNKNOWN, Result
from .search import MAX_TRACE
from .solver import fresh_context, stats


@attrs.define
class Run:
    """What the stages share: inputs, intermediate facts and the results so far."""

    policy: ir.Policy
    opts: Options
    use_cache: bool
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


def _handlers(run: Run) -> None:
    """Per handler (cached by a hash of the handler's IR, the declarations, the invariants it
    may assume and the properties naming it, so editing one handler re-checks only it)."""
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
            _limit_taint(cached, run)
            run.results += [r for r in cached if r.kind not in DECLARED_KINDS]
            run.declared_results += [r for r in cached if r.kind in DECLARED_KINDS]
            continue
        net = stats().safety_net
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
        if stats().safety_net > net:
            _mark_safety_net(mine + mine_declared, opts)
        elif run.use_cache:
            _cache_store(opts, ckey, mine + mine_declared)
        _limit_taint(mine + mine_declared, run)
        run.results += mine
        run.declared_results += mine_declared


def _policy(run: Run) -> None:
    """The checks that look across handlers or at a handler's own clauses (the catalogue's
    ``policy`` rows): each gets every handler's encoding and the invariants it may assume."""
    for h in run.policy.handlers:
        run.prep_of(h.name)
    assume = {
        name: [t for inv in run.invs if inv.name in run.alive for t in prep.inv_pre[inv.name]]
        for name, prep in run.preps.items()
        if prep.model is not None
    }
    alive = [inv for inv in run.invs if inv.name in run.alive]
    net = stats().safety_net
    mine: list[Result] = []
    for c in POLICY_CHECKS:
        module, func = c.runner.split(":")
        check = getattr(importlib.import_module(f".{module}", __package__), func)
        mine += check(Scope(run.policy, run.preps, assume, run.opts, alive))
    if stats().safety_net != net:
        _mark_safety_net(mine, run.opts)
    _limit_taint(mine, run)
    run.results += mine


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


def _orphans(run: Run) -> None:
    names = {h.name for h in run.policy.handlers}
    orphans = [
        p
        for p in run.policy.properties
        if isinstance(p, (ir.SplitProperty, ir.BudgetProperty)) and p.handler not in names
    ]
    if orphans:
        run.declared_results += check_declared(
            attrs.evolve(run.policy, properties=tuple(orphans)), {}, {}, run.opts
        )


def _assemble(run: Run) -> None:
    order = {p.name: i for i, p in enumerate(run.policy.properties)}
    run.results += sorted(
        run.inv_results + run.declared_results, key=lambda r: order.get(r.name, len(order))
    )


def _store(run: Run) -> None:
    # a run the wall-clock safety net interrupted has machine-dependent verdicts: not cached
    if run.use_cache and not stats().safety_net:
        _cache_store(run.opts, run.key, run.results)


STAGES: tuple[tuple[str, Callable[[Run], None]], ...] = (
    ("start", _start),
    ("invariants", _invariants),
    ("handlers", _handlers),
    ("policy", _policy),
    ("orphans", _orphans),
    ("assemble", _assemble),
    ("store", _store),
)


def verify(
    policy: ir.Policy, opts: Optional[Options] = None, use_cache: bool = True
) -> list[Result]:
    """Every result for ``policy``: built-in properties per handler, then declared ones."""
    run = Run(policy, opts or Options(), use_cache)
    for _name, stage in STAGES:
        stage(run)
        if run.done is not None:
            return run.done
    return run.results
