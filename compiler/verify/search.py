"""Bounded search from the initial state: event sequences of up to :data:`MAX_TRACE`
events ending in the failing handler, to confirm a modular refutation is reachable.
"""

from __future__ import annotations

from typing import Any, Optional

import z3

from .. import ir
from .options import Options
from .scenario import trace_scenario
from .solver import solve
from .terms import Unsupported

MAX_TRACE = 3
# event sequences tried per search (the shortest first)
MAX_CHAINS = 48


def _changes_state(h: ir.Handler) -> bool:
    return any(not isinstance(st, (ir.Require, ir.Let, ir.Flag)) for st in h.body)


def confirm(
    policy: ir.Policy, target: str, fails: Any, opts: Options, max_events: int = MAX_TRACE
) -> Optional[tuple]:
    """Search event sequences of up to ``max_events`` (ending with ``target``) from the initial
    state for one where ``fails(last_model)`` holds.  Returns (models, z3 model) or None."""
    from itertools import islice, product

    from .encode import encode_chain

    h = policy.handler(target)
    if h.kind != "event":
        return None  # timed handlers fire from time, not as test events
    prefixes = [x for x in policy.handlers if x.kind == "event" and _changes_state(x)]
    # a fixed number of chains, each with a share of the resource limit: the search ends at
    # the same point on every machine (a wall-clock budget would not)
    chains = (p for n in range(1, max_events + 1) for p in product(prefixes, repeat=n - 1))
    for prefix in islice(chains, MAX_CHAINS):
        try:
            models = encode_chain(
                policy, list(prefix) + [h], bound=opts.bound, fixed_params=opts.fixed_params
            )
        except Unsupported:
            return None
        goal = fails(models[-1]) if not getattr(fails, "wants_chain", False) else fails(models)
        formulas = [a for mm in models for a in mm.assumptions + mm.encoder.finish_reads()]
        formulas += [mm.applied for mm in models[:-1]]
        formulas.append(goal)
        r, model = solve(formulas, opts.limits.part(4))
        if r == "sat":
            return models, model
    return None


def _attach_trace(
    policy: ir.Policy, target: str, cex: dict, opts: Options, fails: Any, violation: Any = None
) -> None:
    """Look for ``cex``'s violation from genesis and replay it on the runtime (see
    :func:`.scenario.build`); with no ``violation`` (checks whose effect the runtime does not
    show directly), confirm it from a ``given`` setup as before."""
    if violation is not None:
        from .scenario import attach

        attach(policy, target, cex, opts, fails, violation)
        return
    # No runtime-side twin for this check: no scenario is claimed (one that was not replayed
    # could pass or fail for the wrong reason), only the modular state is shown.
    cex["confirmed"] = False
    cex["replayed"] = False
    cex["reach_note"] = (
        "violated in some state; no replay from genesis for this kind of check, so no claim "
        "that it is reachable"
    )
    modular = cex.get("scenario") or {}
    cex["scenario"] = {
        "from": "state",
        "given": modular.get("given", []),
        "event": modular.get("event"),
        "needs_records": modular.get("needs_records", []),
        "replayable_without_history": False,
    }


def _trace_note(cex: Optional[dict]) -> str:
    if not cex:
        return ""
    if cex.get("replayed"):
        n = len(cex["scenario"].get("events", []))
        return (
            f". Reached from genesis: {n} event{'s' if n != 1 else ''} through the policy's own "
            "handlers, replayed on the runtime (test and JSONL below)"
        )
    if cex.get("reach_note"):
        return ". " + cex["reach_note"][0].upper() + cex["reach_note"][1:]
    if cex.get("confirmed"):
        n = len(cex["scenario"].get("events", []))
        return (
            f". Confirmed reachable: {n} event{'s' if n != 1 else ''} from a given setup "
            "reproduce it (replay below)"
        )
    if "confirmed" in cex:
        return (
            f". Not confirmed from the initial state within {MAX_TRACE} events: the pre-state "
            "shown may be unreachable (then a stronger invariant would prove the property)"
        )
    return ""


def replayed_status(status: str, cex: Optional[dict]) -> str:
    """A finding whose scenario the runtime did not replay to the violation is never shown as
    a refutation: that is an internal error of the verifier (the message says so)."""
    if cex and cex.get("internal_error") and status in ("refuted", "guard_missing"):
        return "unknown"
    return status
