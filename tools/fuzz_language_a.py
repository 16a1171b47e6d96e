"""Hostile events against the issue-17 language features, engine vs reference.

Sends random JSON of every type (and well-typed values near the edges) as the arguments of
the handlers in ``tests/language/*.charter`` (functions, `var`, `for i in a..b`, `pow` with
a ranged exponent or per-step rounding, `sqrt`, `max_by`, text building, composite keys,
bounded list fields with push/remove/indexing, list arguments with a bound, `for each ...
ordered by ... then by`, parties compared by id), on the engine and on the reference
interpreter side by side, and counts: applied, rejected (by code), engine and reference
disagreeing (outcome, or journal head after the event), and anything that escaped as a
Python exception (both must stay 0).

    .venv/bin/python tools/fuzz_language_a.py [N] [SEED]     # default 100000, 17
"""
from __future__ import annotations

import random
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LANG = ROOT / "tests" / "language"

from charter.compiler.pipeline import Compilation  # noqa: E402
from charter.runtime.api import open_runtime  # noqa: E402

EVENTS = {
    "fn_var_range.charter": {
        "pay": ("amount",), "weigh": ("x",), "open": ("id",), "count_up": ("id", "n"),
        "ladder": ("amount", "n"), "backwards": ("n",), "decay_pay": ("amount", "k"),
        "helper_pays": ("id",)},
    "text.charter": {"label": ("id", "weight", "share"), "held": ("id", "held"),
                     "vote": ("claim",)},
    "composite_keys.charter": {"claim": ("id",), "vote": ("claim", "round")},
    "max_by.charter": {"bid": ("id", "price"), "award": (), "reward": ()},
    "lists.charter": {"open": (), "stake": ("id", "amount"), "unstake": ("id",),
                      "reward": (), "drop_at": ("i",)},
    "ordering.charter": {"bid": ("id", "price"), "award": (), "reward": (),
                         "hand_down": ("to",)},
    "<list arguments>": {"form": ("id", "names"), "add": ("id", "more"),
                         "pick": ("id", "i"), "powers": ("x", "k")},
}
ROLES = {"fn_var_range.charter": "Agent", "text.charter": "Member",
         "composite_keys.charter": "Member", "max_by.charter": "Agent",
         "lists.charter": "Member", "ordering.charter": "Agent", "<list arguments>": "Member"}
# every attribute set, as `admit` would (a role attribute is never missing at run time)
ATTRS = {"fn_var_range.charter": {"weight": 2}, "max_by.charter": {"priority": 1, "joined": 5},
         "ordering.charter": {"priority": 3, "joined": 7}}
# list-typed arguments with and without a bound, indexing, pow with per-step rounding
INLINE = {"<list arguments>": """policy a version "1"
role Member
record Team { names: list of party max 3, powers: list of ratio max 2 }
on form(id: text, names: list of party max 3) by p: Member {
    create Team(id) { names = names }
}
on add(id: text, more: list of party) by p: Member {
    for each m in more ordered by m descending {
        push m to Team(id).names
    }
}
on pick(id: text, i: int) by p: Member {
    remove Team(id).names[i]
    require len(Team(id).names) == 0 or Team(id).names[0] != p else "not you first"
}
on powers(x: ratio, k: int within 0..20) by p: Member {
    update Team("t") { powers = [pow(x, k, 6), pow(x, k)] }
}
"""}


def value(rng: random.Random, depth: int = 0):
    k = rng.randrange(14)
    if k == 0:
        return None
    if k == 1:
        return rng.choice([True, False])
    if k == 2:
        return rng.choice([0, 1, -1, 2, 5, 6, 24, 25, 256, 10**18, -10**18, 10**60])
    if k == 3:
        return rng.uniform(-1e6, 1e6)
    if k == 4:
        return rng.choice(["", "j", "a|b", "\\", "c|1", "x" * 70_000, "\ud800", "0.5", "1e9",
                           "12.50", "3%", "2 days", "-1", "@ann", "k1"])
    if k == 5 and depth < 2:
        return [value(rng, depth + 1) for _ in range(rng.randrange(3))]
    if k in (12, 13):  # lists of parties, some longer than a bound, some with duplicates
        pool = ["@ann", "@bob", "@cy"] + (["ann", "", 7, None] if k == 12 else [])
        return [rng.choice(pool) for _ in range(rng.randrange(6))]
    if k == 6 and depth < 2:
        return {str(rng.randrange(3)): value(rng, depth + 1) for _ in range(rng.randrange(3))}
    if k == 7:
        return {"num": rng.randrange(-10, 10), "den": rng.randrange(-2, 5)}
    if k == 8:
        return str(rng.randrange(-5, 30))
    if k == 9:
        return rng.randrange(0, 8)
    if k == 10:
        return f"{rng.randrange(0, 2000)}.{rng.randrange(0, 100):02d}"
    return rng.choice(["j", "c|1", "x1", "x2", "a"])


def main(n: int, seed: int) -> int:
    rng = random.Random(seed)
    policies = {name: (Compilation.from_text(INLINE[name], "inline.charter") if name in INLINE
                       else Compilation.from_path(LANG / name)).ir for name in EVENTS}
    counts: Counter = Counter()
    t0 = time.perf_counter()
    runtimes: dict = {}

    def fresh(name: str):
        pair = []
        for backend in ("python", "reference"):
            rt = open_runtime(policies[name], backend=backend)
            for p in ("ann", "bob"):
                rt.genesis_apply(lambda s, p=p: s.set_role(ROLES[name], p,
                                                          dict(ATTRS.get(name, {}))))
            pair.append(rt)
        return pair

    for i in range(n):
        name = rng.choice(sorted(EVENTS))
        if i % 200 == 0 or name not in runtimes:
            runtimes[name] = fresh(name)
        etype = rng.choice(sorted(EVENTS[name]))
        args = {a: value(rng) for a in EVENTS[name][etype]}
        if rng.random() < 0.1:
            args[rng.choice(["zz", "id", "n"])] = value(rng)
        sub = "clock" if etype in ("award", "reward") and rng.random() < 0.8 else rng.choice(
            ["ann", "bob", "nobody", "clock"])
        if name == "<list arguments>" and "id" in args and rng.random() < 0.7:
            args["id"] = "t"  # the team `powers` updates: most events meet one team
        ev = {"id": f"e{i}", "type": etype, "submitter": sub, "time": i, "args": args}
        outs = []
        for rt in runtimes[name]:
            try:
                o = rt.submit(dict(ev))
                outs.append(("applied",) if o.applied else ("rejected", o.code))
            except Exception as exc:  # noqa: BLE001 - counting escapes is the point
                outs.append(("escaped", type(exc).__name__))
                counts["escaped " + type(exc).__name__] += 1
        counts[" ".join(outs[0])] += 1
        if outs[0] != outs[1]:
            counts["engine and reference disagree"] += 1
        elif runtimes[name][0].head != runtimes[name][1].head:
            counts["engine and reference disagree (journal)"] += 1
    dt = time.perf_counter() - t0
    print(f"{n:,} events in {dt:.1f} s ({n / dt:,.0f}/s), seed {seed}")
    for k, v in sorted(counts.items(), key=lambda kv: -kv[1]):
        print(f"  {v:>8,}  {k}")
    bad = sum(v for k, v in counts.items() if k.startswith("escaped") or "disagree" in k)
    print("escaped or disagreeing:", bad)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(int(sys.argv[1]) if len(sys.argv) > 1 else 100_000,
                  int(sys.argv[2]) if len(sys.argv) > 2 else 17))
