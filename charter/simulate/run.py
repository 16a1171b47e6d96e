"""One simulation run: a fresh in-memory ledger, the real runtime, epoch after epoch.

Every event is settled by :class:`charter.runtime.engine.Runtime` exactly as
``charter run`` settles it; a rejected event changes nothing and is counted
by reason.  A run depends only on (scenario, sweep point, run index): its
random stream is seeded from the scenario's seed and the run index (the
same for every sweep point, so points are compared on the same draws).
"""
from __future__ import annotations

import hashlib
import itertools
import random
import time as _time
from pathlib import Path
from typing import Any

import attrs

from .agents import Agent, Context, Skip, make_event
from .metrics import epoch_metrics
from .scenario import Scenario

TICK = "@tick"
_POLICIES: dict[tuple[str, bytes], Any] = {}


@attrs.frozen
class Task:
    point: int
    params: tuple  # ((name, value), ...)
    run: int


@attrs.define
class RunResult:
    point: int
    run: int
    rows: list  # (epoch, metric, key, exact)
    submitted: int = 0
    applied: int = 0
    rejected: int = 0
    skipped: int = 0
    seconds: float = 0.0
    journal_hash: str = ""


def run_seed(seed: int, run: int) -> int:
    return int.from_bytes(hashlib.sha256(f"charter-sim:{seed}:{run}".encode()).digest()[:8],
                          "big")


def _policy(path: str) -> Any:
    """The compiled policy, once per process (workers compile it on first use)."""
    from charter import load_policy

    text = Path(path).read_bytes()
    key = (path, hashlib.sha256(text).digest())
    pol = _POLICIES.get(key)
    if pol is None:
        pol = _POLICIES[key] = load_policy(Path(path))
    return pol


def run_one(scenario: Scenario, task: Task) -> RunResult:
    from charter.runtime.api import open_runtime

    t0 = _time.perf_counter()
    policy = _policy(scenario.policy_path)
    rt = open_runtime(policy, ":memory:", params=dict(task.params))
    rng = random.Random(run_seed(scenario.seed, task.run))
    agents: list[Agent] = []
    for pop in scenario.populations:
        for i in range(pop.count):
            agents.append(Agent(f"{pop.name}{i + 1}", pop.name, pop.role, len(agents)))
    by_role: dict[str, list[Agent]] = {}
    for a in agents:  # $any:LABEL names a role label or a population
        by_role.setdefault(a.role, []).append(a)
        if a.population != a.role:
            by_role.setdefault(a.population, []).append(a)
    assets = [a.name for a in policy.assets if a.kind != "right"]
    pools = [p.name for p in policy.pools]
    ctx = Context(rt, rng, 0, scenario.start, agents, by_role, itertools.count(1))
    out = RunResult(task.point, task.run, [])
    ids = itertools.count(1)
    rows = out.rows

    def submit(events: list[dict], epoch_reasons: dict, active: set) -> None:
        for e in events:
            out.submitted += 1
            o = rt.submit(e)
            if o.applied:
                out.applied += 1
                active.add(e.get("submitter"))
            else:
                out.rejected += 1
                reason = f"{o.code}: {o.message}" if o.message else str(o.code)
                epoch_reasons[reason] = epoch_reasons.get(reason, 0) + 1

    def act(b: Any, agent: Agent, reasons: dict, skips: dict, active: set) -> None:
        try:
            events = make_event(b, agent, ctx, f"r{task.run}.{next(ids)}")
        except Skip as s:
            out.skipped += 1
            skips[s.reason] = skips.get(s.reason, 0) + 1
            return
        submit(events, reasons, active)

    def record(epoch: int, reasons: dict, skips: dict, active: set, final: bool) -> None:
        for metric, key, exact in epoch_metrics(rt, agents, assets, pools, scenario.metrics,
                                                final=final):
            rows.append((epoch, metric, key, exact))
        rows.append((epoch, "active_parties", "", len(active - {None})))
        for reason, n in sorted(reasons.items()):
            rows.append((epoch, "rejections", reason, n))
        for reason, n in sorted(skips.items()):
            rows.append((epoch, "skipped", reason, n))

    # epoch 0: the scenario's setup, then each agent's
    reasons: dict = {}
    skips: dict = {}
    active: set = set()
    setup_agent = Agent("setup", "setup", "setup", -1)
    for b in scenario.setup:
        act(b, setup_agent, reasons, skips, active)
    for pop in scenario.populations:
        for a in agents:
            if a.population == pop.name:
                for b in pop.setup:
                    act(b, a, reasons, skips, active)
    record(0, reasons, skips, active, final=scenario.epochs == 0)
    behaviours = {p.name: p.behaviour for p in scenario.populations}
    length = scenario.epoch_length
    for epoch in range(1, scenario.epochs + 1):
        begin = scenario.start + (epoch - 1) * length
        ctx.epoch = epoch
        plan = []
        for a in agents:
            for b in behaviours[a.population]:
                for _ in range(b.repeat):
                    if b.probability >= 1 or rng.random() < b.probability:
                        plan.append((begin + rng.randrange(length), len(plan), a, b))
        plan.sort(key=lambda p: (p[0], p[1]))
        reasons, skips, active = {}, {}, set()
        for when, _, a, b in plan:
            ctx.time = when
            act(b, a, reasons, skips, active)
        ctx.time = begin + length
        clock = Agent("clock", "schedule", "schedule", -1)
        for b in scenario.schedule:
            act(b, clock, reasons, skips, active)
        if scenario.tick:
            submit([{"id": f"r{task.run}.tick{epoch}", "type": TICK, "submitter": "clock",
                     "time": begin + length, "args": {}}], reasons, set())
        record(epoch, reasons, skips, active, final=epoch == scenario.epochs)
        rows.append((epoch, "events", "submitted", out.submitted))
        rows.append((epoch, "events", "applied", out.applied))
        rows.append((epoch, "events", "rejected", out.rejected))
    out.journal_hash = rt.journal_hash
    out.seconds = _time.perf_counter() - t0
    return out
