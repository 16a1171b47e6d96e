"""Benchmark: `charter simulate` against radCAD on the same gig-market agent model.

The agent model is the one of ``examples/gig_market/scenario.toml``: posters
post tasks (escrowing the budget) and complete them, workers bid below the
best bid and sometimes withdraw, the clock splits the commons by reputation
at each epoch's end and reputation decays.  Both sides draw the same
behaviours with the same probabilities:

* ``charter simulate``: the scenario file itself, every event settled by the
  Charter runtime (exact integers, every rule of the policy checked);
* radCAD: the same rules written again as radCAD state updates in Python
  floats, at one timestep per event (radCAD's way to model discrete events),
  with its default engine (state deep-copied each step).

Prints events settled per second side by side (goal: charter >= 10x radCAD),
single process, best of R repeats.  radCAD is an optional dependency
(``pip install 'charter-policy[bench]'``; it pins numpy < 1.26.4, so use a
separate environment from the ``sim`` extra's pyarrow)::

    python -m venv /tmp/bench && /tmp/bench/bin/pip install -e . radcad
    /tmp/bench/bin/python benchmarks/bench_simulate.py [--epochs 12] [--repeat 3]
"""
from __future__ import annotations

import argparse
import random
import sys
import time
import tomllib
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SCENARIO = ROOT / "examples" / "gig_market" / "scenario.toml"


def charter_side(epochs: int, runs: int) -> tuple[int, float]:
    from charter.simulate import scenario_from_data, simulate

    data = tomllib.loads(SCENARIO.read_text("utf-8"))
    data["scenario"].update({"epochs": epochs, "runs": runs})
    data.pop("sweep", None)
    sc = scenario_from_data(data, base_dir=SCENARIO.parent, file=str(SCENARIO))
    simulate(sc, executor="serial")  # warm: compile the policy once, as a long sweep would
    t0 = time.perf_counter()
    res = simulate(sc, executor="serial")
    return res.events, time.perf_counter() - t0


# ---- the same model in radCAD -----------------------------------------------------------

def radcad_model(epochs: int, seed: int, counts: dict[str, int], epoch_events: int) -> Any:
    """State and partial state update blocks: one event per timestep."""
    from radcad import Model

    rng = random.Random(seed)
    posters = [f"poster{i + 1}" for i in range(counts["poster"])]
    workers = [f"worker{i + 1}" for i in range(counts["worker"])]
    state = {
        "credit": {**{p: 400.0 for p in posters},
                   **{w: rng.uniform(10, 100) for w in workers}},
        "rep": {a: 0.0 for a in posters + workers},
        "tasks": {},  # id -> [poster, budget, worker, price, open, deadline]
        "commons": 0.0, "t": 0, "next": 0, "applied": 0, "rejected": 0,
    }
    fee, min_bid, step_len = 0.05, 1.0, 30 * 86400 / max(1, epoch_events)

    def choose(params: Any, substep: Any, history: Any, prev: dict) -> dict:
        # the same behaviour mix per agent and epoch as the scenario
        r = rng.random()
        n_p, n_w = len(posters), len(workers)
        total = n_p * (0.8 + 0.9) + n_w * (0.6 + 0.05)
        x = r * total
        if x < n_p * 0.8:
            return {"event": ("post", rng.choice(posters), rng.uniform(5, 60),
                              rng.choice([10, 40]) * 86400)}
        x -= n_p * 0.8
        if x < n_p * 0.9:
            return {"event": ("complete", rng.choice(posters), rng.randint(1, 5))}
        x -= n_p * 0.9
        if x < n_w * 0.6:
            return {"event": ("bid", rng.choice(workers), rng.uniform(0.2, 1.0))}
        return {"event": ("withdraw", rng.choice(workers), rng.uniform(1, 20))}

    def apply(params: Any, substep: Any, history: Any, prev: dict, policy: dict) -> tuple:
        s = {k: (dict(v) if isinstance(v, dict) else v) for k, v in prev.items()}
        s["tasks"] = {k: list(v) for k, v in prev["tasks"].items()}
        kind, who, *rest = policy["event"]
        s["t"] = prev["t"] + step_len
        ok = False
        for tid, task in s["tasks"].items():  # deadlines pass
            if task[4] and task[5] <= s["t"]:
                s["credit"][task[0]] += task[1]
                task[4] = False
        if kind == "post":
            budget, duration = rest
            if 0 < budget <= s["credit"][who]:
                s["credit"][who] -= budget
                s["tasks"][f"n{s['next']}"] = [who, budget, None, 0.0, True, s["t"] + duration]
                s["next"] += 1
                ok = True
        elif kind == "complete":
            mine = [k for k, v in s["tasks"].items() if v[0] == who and v[4]]
            if mine:
                task = s["tasks"][rng.choice(mine)]
                if task[2] is not None:
                    cut = task[3] * fee
                    s["credit"][task[2]] += task[3] - cut
                    s["commons"] += cut
                    s["credit"][task[0]] += task[1] - task[3]
                    s["rep"][task[2]] += rest[0] * 10
                    task[4] = False
                    ok = True
        elif kind == "bid":
            open_ = [k for k, v in s["tasks"].items() if v[4] and v[0] != who]
            if open_:
                task = s["tasks"][rng.choice(open_)]
                price = task[1] * rest[0]
                if min_bid <= price <= task[1] and (task[2] is None or price < task[3]):
                    task[2], task[3] = who, price
                    ok = True
        else:
            if 0 < rest[0] <= s["credit"][who]:
                s["credit"][who] -= rest[0]
                ok = True
        if s["t"] // (30 * 86400) != prev["t"] // (30 * 86400):  # epoch end
            total_rep = sum(s["rep"].values())
            if total_rep > 0:
                for a, r in s["rep"].items():
                    s["credit"][a] += s["commons"] * r / total_rep
                s["commons"] = 0.0
            s["rep"] = {a: r * 0.9 for a, r in s["rep"].items()}
        s["applied" if ok else "rejected"] += 1
        return "world", s

    def world(params: Any, substep: Any, history: Any, prev: dict, policy: dict) -> tuple:
        return apply(params, substep, history, prev["world"], policy)

    blocks = [{"policies": {"choose": lambda p, s, h, prev: choose(p, s, h, prev["world"])},
               "variables": {"world": world}}]
    return Model(initial_state={"world": state}, state_update_blocks=blocks, params={})


def radcad_side(epochs: int, runs: int, events_per_run: int) -> tuple[int, float]:
    from radcad import Experiment, Simulation

    counts = {"poster": 10, "worker": 30}
    t0 = time.perf_counter()
    for run in range(runs):
        model = radcad_model(epochs, run, counts, events_per_run // max(1, epochs))
        Experiment([Simulation(model=model, timesteps=events_per_run, runs=1)]).run()
    return events_per_run * runs, time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--epochs", type=int, default=12)
    ap.add_argument("--runs", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    c_best = None
    for _ in range(args.repeat):
        n, secs = charter_side(args.epochs, args.runs)
        c_best = min(c_best or secs, secs)
    per_run = n // args.runs
    print(f"gig market: 10 posters, 30 workers, {args.epochs} epochs, {args.runs} runs, "
          f"{per_run} events per run; best of {args.repeat}, one process")
    print(f"{'engine':28} {'events':>8} {'seconds':>9} {'events/s':>10}")
    print(f"{'charter simulate (exact)':28} {n:>8} {c_best:>9.2f} {n / c_best:>10,.0f}")
    try:
        import radcad  # noqa: F401
    except ImportError:
        print("radCAD is not installed (pip install radcad): no side-by-side figure")
        return
    r_best = None
    for _ in range(args.repeat):
        m, secs = radcad_side(args.epochs, args.runs, per_run)
        r_best = min(r_best or secs, secs)
    print(f"{'radCAD (floats, 1 step/event)':28} {m:>8} {r_best:>9.2f} {m / r_best:>10,.0f}")
    ratio = (n / c_best) / (m / r_best)
    print(f"charter / radCAD: {ratio:.1f}x (goal >= 10x)")


if __name__ == "__main__":
    main()
