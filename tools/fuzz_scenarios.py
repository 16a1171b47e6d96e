"""Fuzz `charter simulate`'s scenario reader and the AIGrid rule's settings with hostile values.

Each input takes a valid scenario (examples/gig_market/scenario.toml, shrunk)
and puts one hostile value of some JSON/TOML type (null, bool, huge ints,
floats incl. NaN/inf, strings with lone surrogates or NUL, 10,000-digit
numbers, deep nesting, lists, tables) at one key; or mutates the TOML text
itself (byte flips, truncation).  Every outcome must be a ScenarioError or a
scenario that runs: anything else (a traceback) is counted as a crash and
printed.  Then the same for the AIGrid rule's settings (check_settings).

    python tools/fuzz_scenarios.py [--n 100000] [--seed 1] [--run-every 50]
"""
from __future__ import annotations

import argparse
import copy
import random
import sys
import tomllib
import traceback
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from charter.compiler.aigrid_rule import BundleError, SETTINGS, check_settings  # noqa: E402
from charter.simulate import ScenarioError, scenario_from_data, simulate  # noqa: E402
from charter.simulate.scenario import LineIndex  # noqa: E402

GIG = ROOT / "examples" / "gig_market"
TEXT = (GIG / "scenario.toml").read_text("utf-8")


def hostile(rng: random.Random, depth: int = 0) -> Any:
    pick = rng.randrange(14 if depth < 3 else 10)
    if pick == 0:
        return None
    if pick == 1:
        return rng.choice([True, False])
    if pick == 2:
        return rng.choice([0, -1, 1, 2**63, -2**63 - 1, 10**10000, 7])
    if pick == 3:
        return rng.choice([0.5, -0.0, 1e308, float("nan"), float("inf"), 1.5, 2.0])
    if pick == 4:
        return rng.choice(["", "\0", "\udcff", "$self", "$new", "$any", "$any:worker",
                           "$nope", "5%", "10 days", "-1", "1" * 10_000, "x" * 300,
                           "Task", "epoch_end", "1e999", "0.001", "poster"])
    if pick == 5:
        return "9" * rng.randrange(1, 12_000)
    if pick == 6:
        return {"uniform": [hostile(rng, depth + 1), hostile(rng, depth + 1)]}
    if pick == 7:
        return {"record": rng.choice(["Task", "Nope", 3]), "where": hostile(rng, depth + 1)}
    if pick == 8:
        return {"choice": [hostile(rng, depth + 1) for _ in range(rng.randrange(0, 3))]}
    if pick == 9:
        return {"field": hostile(rng, depth + 1), "of": "id", "times": hostile(rng, depth + 1)}
    if pick == 10:
        return [hostile(rng, depth + 1) for _ in range(rng.randrange(0, 4))]
    if pick == 11:
        return {rng.choice(["", "a", "where", "uniform", "\udcff", "x" * 300, "1"]):
                hostile(rng, depth + 1) for _ in range(rng.randrange(0, 3))}
    if pick == 12:
        v: Any = 1
        for _ in range(rng.randrange(10, 2000)):
            v = [v]
        return v
    return {"normal": {"mean": hostile(rng, depth + 1), "sd": hostile(rng, depth + 1)}}


def paths(data: Any, prefix: tuple = ()) -> list[tuple]:
    out = [prefix]
    if isinstance(data, dict):
        for k, v in data.items():
            out += paths(v, prefix + (k,))
    elif isinstance(data, list):
        for i, v in enumerate(data):
            out += paths(v, prefix + (i,))
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--run-every", type=int, default=50,
                    help="simulate every Nth accepted scenario (1 epoch, 1 run)")
    args = ap.parse_args()
    rng = random.Random(args.seed)
    base = tomllib.loads(TEXT)
    base["scenario"].update({"epochs": 1, "runs": 1})
    for p in base["populations"]:
        p["count"] = min(p["count"], 4)
    all_paths = paths(base)
    counts: Counter = Counter()
    crashes: list[str] = []
    accepted = 0
    for i in range(args.n):
        kind = rng.random()
        try:
            if kind < 0.85:  # one hostile value at one key (or a new key)
                data = copy.deepcopy(base)
                path = rng.choice(all_paths)
                node = data
                for p in path[:-1]:
                    node = node[p]
                if path and isinstance(node[path[-1]], dict) and rng.random() < 0.1:
                    node = node[path[-1]]  # a key that should not be there
                    path = path + (rng.choice(["zz", "", "\udcff", "args", "where"]),)
                if path:
                    node[path[-1]] = hostile(rng)
                else:
                    data = hostile(rng)
                sc = scenario_from_data(data, base_dir=GIG, file="fuzz.toml",
                                        lines=LineIndex(TEXT))
            else:  # the text itself: flipped bytes, cut short
                raw = bytearray(TEXT.encode())
                for _ in range(rng.randrange(1, 6)):
                    raw[rng.randrange(len(raw))] = rng.randrange(256)
                if rng.random() < 0.3:
                    raw = raw[: rng.randrange(len(raw))]
                try:
                    text = raw.decode("utf-8")
                    data = tomllib.loads(text)
                except (UnicodeDecodeError, tomllib.TOMLDecodeError, RecursionError):
                    counts["text refused by the TOML reader"] += 1
                    continue
                if isinstance(data.get("scenario"), dict):
                    data["scenario"]["epochs"] = 1
                    data["scenario"]["runs"] = 1
                sc = scenario_from_data(data, base_dir=GIG, file="fuzz.toml",
                                        lines=LineIndex(text))
            accepted += 1
            counts["accepted"] += 1
            small = sum(p.count for p in sc.populations) <= 60 and len(sc.points()) <= 8 \
                and sc.epochs <= 3
            if small and accepted % args.run_every == 0:
                simulate(sc, executor="serial")
                counts["accepted and simulated"] += 1
        except ScenarioError as err:
            counts["ScenarioError"] += 1
            if not err.render():
                crashes.append(f"#{i}: empty error message")
        except Exception:
            counts["CRASH"] += 1
            if len(crashes) < 20:
                crashes.append(f"#{i}: {traceback.format_exc(limit=3)}")
        if (i + 1) % 10_000 == 0:
            print(f"{i + 1:>7} inputs: {dict(counts)}", flush=True)
    # the AIGrid rule's settings: every JSON type at every setting
    s_counts: Counter = Counter()
    for i in range(args.n // 10):
        value = {rng.choice(SETTINGS + ("x",)): hostile(rng) for _ in range(rng.randrange(0, 4))} \
            if rng.random() < 0.9 else hostile(rng)
        try:
            check_settings(value)
            s_counts["accepted"] += 1
        except BundleError:
            s_counts["BundleError"] += 1
        except Exception:
            s_counts["CRASH"] += 1
            if len(crashes) < 20:
                crashes.append(f"settings #{i}: {traceback.format_exc(limit=3)}")
    print(f"scenarios: {args.n} inputs: {dict(counts)}")
    print(f"AIGrid settings: {args.n // 10} inputs: {dict(s_counts)}")
    for c in crashes:
        print(c)
    sys.exit(1 if counts["CRASH"] or s_counts["CRASH"] else 0)


if __name__ == "__main__":
    main()
