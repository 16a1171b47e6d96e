"""Agents: turning a behaviour into one concrete event, against the ledger as it is now.

Arguments are drawn when the event is submitted (not when the epoch is
planned), so ``record = "Task"`` picks among the tasks that exist at that
moment.  All randomness comes from the run's own ``random.Random``: the
same scenario and seed draw the same events, in any process.
"""
from __future__ import annotations

import math
import random
from typing import Any, Optional

import attrs

from .scenario import ArgSpec, Behaviour


class Skip(Exception):
    """The behaviour has nothing to act on now (no matching record): no event."""

    def __init__(self, reason: str):
        self.reason = reason


@attrs.define
class Agent:
    id: str
    population: str
    role: str
    index: int


@attrs.define
class Context:
    """What a behaviour (or a Python callable) sees when it draws an event."""

    runtime: Any
    rng: random.Random
    epoch: int
    time: int
    agents: list
    by_role: dict
    new_ids: Any  # itertools.count

    def records(self, name: str) -> dict[str, Any]:
        return self.runtime.state.records[name]

    def balance(self, party: str, asset: str) -> int:
        return self.runtime.state.balances.get(f"party:{party}:{asset}", 0)


def _pick(rng: random.Random, items: list) -> Any:
    return items[rng.randrange(len(items))]


def draw(spec: ArgSpec, agent: Agent, ctx: Context, chosen: dict) -> Any:
    """One value of an argument spec."""
    kind = spec.kind
    if kind == "literal":
        return spec.value
    if kind == "special":
        v = spec.value
        if v == "$self":
            return agent.id
        if v == "$new":
            return f"n{next(ctx.new_ids)}"
        if v == "$epoch":
            return ctx.epoch
        if v == "$any":
            return _pick(ctx.rng, ctx.agents).id
        pool = ctx.by_role.get(v.split(":", 1)[1], [])
        if not pool:
            raise Skip(f"no agent of role {v.split(':', 1)[1]}")
        return _pick(ctx.rng, pool).id
    if kind == "uniform":
        return ctx.rng.randint(spec.lo, spec.hi)
    if kind == "normal":
        mean, sd = spec.value
        x = ctx.rng.gauss(mean, sd)
        if spec.lo is not None:
            x = max(x, spec.lo)
        if spec.hi is not None:
            x = min(x, spec.hi)
        return int(math.floor(x + 0.5)) if math.isfinite(x) else mean
    if kind == "choice":
        if spec.weights:
            pick = ctx.rng.choices(spec.choices, weights=spec.weights)[0]
        else:
            pick = _pick(ctx.rng, list(spec.choices))
        return draw(pick, agent, ctx, chosen)
    if kind == "record":
        want = [(f, draw(s, agent, ctx, chosen)) for f, s in spec.where]
        avoid = [(f, draw(s, agent, ctx, chosen)) for f, s in spec.where_not]
        live = ctx.records(spec.record)
        # the live records in creation order (the state's dicts keep insertion order,
        # which is the same in every run of the same events)
        items = reversed(live.items()) if spec.recent else live.items()
        keys = []
        for k, r in items:
            if all(r.get(f) == v for f, v in want) and not any(r.get(f) == v for f, v in avoid):
                keys.append(k)
                if spec.recent and len(keys) >= spec.recent:
                    break
        if not keys:
            raise Skip(f"no {spec.record} record to act on")
        return _pick(ctx.rng, keys)
    if kind == "field":
        key = chosen.get(spec.of)
        rec = None
        for name in ctx.runtime.state.records:
            rec = ctx.records(name).get(key) if key is not None else None
            if rec is not None and spec.field in rec:
                break
            rec = None
        if rec is None:
            raise Skip(f"no record named by argument {spec.of}")
        value = rec[spec.field]
        if not isinstance(value, int) or isinstance(value, bool):
            return value
        factor = ctx.rng.uniform(spec.lo, spec.hi) if spec.hi > spec.lo else spec.lo
        return int(math.floor(value * factor))
    raise ValueError(f"unknown argument kind {kind}")  # pragma: no cover - checked on load


def make_event(b: Behaviour, agent: Agent, ctx: Context, event_id: str) -> list[dict]:
    """The event(s) a behaviour submits now (a Python behaviour may return several)."""
    if b.python is not None:
        out = b.python(agent, ctx)
        if out is None:
            return []
        events = [out] if isinstance(out, dict) else list(out)
        for i, e in enumerate(events):
            if not isinstance(e, dict):
                raise TypeError(f"behaviour {b.key} returned {type(e).__name__}, not an event "
                                "dict")
            e.setdefault("id", f"{event_id}.{i}")
            e.setdefault("submitter", agent.id)
            e.setdefault("time", ctx.time)
            e.setdefault("args", {})
        return events
    chosen: dict[str, Any] = {}
    # record picks first: `field` arguments read the record another argument chose
    for name, spec in sorted(b.args, key=lambda a: a[1].kind == "field"):
        chosen[name] = draw(spec, agent, ctx, chosen)
    submitter = draw(b.submitter, agent, ctx, chosen)
    return [{"id": event_id, "type": b.event, "submitter": submitter, "time": ctx.time,
             "args": chosen}]


def first_party(agents: list, role: Optional[str]) -> Optional[str]:
    for a in agents:
        if role is None or a.role == role:
            return a.id
    return None
