"""Generate a long, realistic event stream for the gig-market example.

    python examples/gig_market/generate.py 100000 > big.jsonl

Deterministic for a given seed.  A rough model of the market keeps most
events valid (agents post what they can afford, bid below the best bid,
posters complete tasks that have a worker); about 3% are deliberately bad
(unknown tasks, overdrafts, wrong submitters) so rejections are exercised
too.  The clock ends an epoch every ``epoch`` events.  Used by the crash
test and the runtime benchmark.
"""

from __future__ import annotations

import json
import random
import sys
from typing import Iterator


def gig_events(n: int, seed: int = 7, agents: int = 50, epoch: int = 1000) -> Iterator[dict]:
    rnd = random.Random(seed)
    names = [f"a{i:03d}" for i in range(agents)]
    t = 1_000
    k = 0
    cash = {a: 0 for a in names}  # the generator's rough idea of balances
    tasks: dict[str, dict] = {}  # open tasks
    out = 0

    def ev(typ: str, sub: str, **args: object) -> dict:
        nonlocal k
        k += 1
        return {"id": f"g{k}", "type": typ, "submitter": sub, "time": t, "args": args}

    setup = [ev("appoint", "operator", gateway="gw")]
    for a in names:
        setup.append(ev("join", a))
    for a in names:
        amt = rnd.randrange(50_000, 500_000)
        cash[a] += amt
        setup.append(ev("deposit", "gw", to=a, amount=amt))
    for e in setup:
        if out >= n:
            return
        out += 1
        yield e
    next_task = 0
    while out < n:
        t += rnd.randrange(1, 40)
        r = rnd.random()
        if out % epoch == epoch - 1:
            e = ev("epoch_end", "clock")
        elif r < 0.03:  # deliberately bad
            e = rnd.choice(
                [
                    ev("bid", rnd.choice(names), id="missing", price=100),
                    ev("post", rnd.choice(names), id=f"x{k}", budget=10**12, duration=60),
                    ev("epoch_end", rnd.choice(names)),
                    ev("deposit", rnd.choice(names), to=rnd.choice(names), amount=5),
                ]
            )
        elif r < 0.25 or not tasks:
            poster = rnd.choice(names)
            budget = rnd.randrange(100, 20_000)
            if cash[poster] < budget:
                cash[poster] += 100_000
                e = ev("deposit", "gw", to=poster, amount=100_000)
            else:
                next_task += 1
                tid = f"t{next_task}"
                cash[poster] -= budget
                tasks[tid] = {"poster": poster, "budget": budget, "best": None, "price": None}
                e = ev(
                    "post", poster, id=tid, budget=budget, duration=rnd.randrange(3_600, 200_000)
                )
        elif r < 0.75:
            tid = rnd.choice(list(tasks))
            task = tasks[tid]
            bidder = rnd.choice(names)
            top = task["price"] if task["price"] is not None else task["budget"] + 1
            price = rnd.randrange(max(100, top // 2), max(101, top))
            if bidder != task["poster"] and price < top and price <= task["budget"]:
                task["best"], task["price"] = bidder, price
            e = ev("bid", bidder, id=tid, price=price)
        elif r < 0.97 and any(x["best"] for x in tasks.values()):
            tid = rnd.choice([x for x, v in tasks.items() if v["best"]])
            task = tasks.pop(tid)
            if task["best"] is not None:
                cash[task["best"]] += task["price"] * 95 // 100
                cash[task["poster"]] += task["budget"] - task["price"]
            e = ev("complete", task["poster"], id=tid, quality=rnd.randrange(1, 6))
        elif r < 0.97:  # nothing to complete yet: an unlucky complete of a bidless task
            tid = rnd.choice(list(tasks))
            e = ev("complete", tasks[tid]["poster"], id=tid, quality=rnd.randrange(1, 6))
        else:
            a = rnd.choice(names)
            amt = rnd.randrange(1, 5_000)
            cash[a] -= amt
            e = ev("withdraw", a, amount=amt)
        out += 1
        yield e


if __name__ == "__main__":
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
    seed = int(sys.argv[2]) if len(sys.argv) > 2 else 7
    for e in gig_events(count, seed):
        sys.stdout.write(json.dumps(e) + "\n")
