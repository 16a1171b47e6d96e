"""Run the compiler on many hostile policies and print what came out.

    python tools/fuzz_policies.py                 # 100,000 inputs, seed 0
    python tools/fuzz_policies.py -n 5000 --seed 7 --save /tmp/fuzz-failures

Each input (see tests/policy_fuzz.py for the families) goes through the whole
front end and, when accepted, both code generators.  The counts printed are:
ok (accepted and compiled), diagnostics (refused with Charter diagnostics
only), tracebacks (any other exception: a bug), and inputs over 2 s (wall
clock and CPU time; the CPU figure is the one a busy machine cannot inflate).
An input that runs past 20 s is interrupted and counted as a hang.  With
``--save`` each failing input is written to a file so it can be replayed.
"""
from __future__ import annotations

import argparse
import collections
import random
import signal
import sys
import time
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from policy_fuzz import FAMILIES, check, make_input  # noqa: E402

SLOW = 2.0
HANG = 20


class Hang(Exception):
    pass


def _alarm(signum, frame):  # noqa: ANN001
    raise Hang()


def _where(err: BaseException) -> str:
    frames = traceback.extract_tb(err.__traceback__)
    own = [f for f in frames if "/charter" in f.filename or "/compiler/" in f.filename
           or "/runtime/" in f.filename]
    f = (own or frames or [None])[-1]
    site = f"{Path(f.filename).name}:{f.lineno} {f.name}" if f else "?"
    return f"{type(err).__name__} at {site}"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("-n", "--count", type=int, default=100_000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--start", type=int, default=0,
                    help="first input number (split a run: -n 50000 --start 50000)")
    ap.add_argument("--save", type=Path, default=None, help="directory for failing inputs")
    args = ap.parse_args()
    if args.save:
        args.save.mkdir(parents=True, exist_ok=True)
    signal.signal(signal.SIGALRM, _alarm)
    families = sorted(FAMILIES)
    counts: dict[str, collections.Counter] = {f: collections.Counter() for f in families}
    sites: collections.Counter = collections.Counter()
    slowest: list[tuple[float, str, int]] = []
    check('policy warm version "1"\n')  # build the parser before the clock starts
    start = time.perf_counter()
    for i in range(args.start, args.start + args.count):
        family = families[i % len(families)]
        rnd = random.Random(f"{args.seed}:{i}")
        file, text = make_input(family, rnd)
        wall0, cpu0 = time.perf_counter(), time.process_time()
        signal.alarm(HANG)
        try:
            outcome = check(text, file)
        except Hang:
            outcome = "hang"
        except Exception as err:  # noqa: BLE001 - counting them is the point
            if isinstance(getattr(err, "orig_exc", None), Hang):
                outcome = "hang"  # the alarm fired inside Lark's transformer, which wraps it
            else:
                outcome = "traceback"
                sites[_where(err)] += 1
        finally:
            signal.alarm(0)
        wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
        c = counts[family]
        c[outcome] += 1
        c["wall>2s"] += wall > SLOW
        c["cpu>2s"] += cpu > SLOW
        slowest = sorted(slowest + [(wall, family, i)], reverse=True)[:5]
        if args.save and (outcome in ("traceback", "hang") or cpu > SLOW):
            (args.save / f"{outcome}-{args.seed}-{i}.charter").write_text(
                text, encoding="utf-8", errors="surrogatepass")
        if (i + 1) % 5_000 == 0:  # running totals, so a long run that is stopped still says
            run: collections.Counter = collections.Counter()
            for c in counts.values():
                run.update(c)
            print(f"  {i + 1:,} inputs, {time.perf_counter() - start:,.0f} s: "
                  + ", ".join(f"{k} {run[k]:,}" for k in ("ok", "diagnostics", "traceback",
                                                           "hang", "wall>2s", "cpu>2s")),
                  file=sys.stderr, flush=True)
    cols = ["ok", "diagnostics", "traceback", "hang", "wall>2s", "cpu>2s"]
    print(f"{'family':<12}" + "".join(f"{c:>13}" for c in cols))
    total: collections.Counter = collections.Counter()
    for f in families:
        total.update(counts[f])
        print(f"{f:<12}" + "".join(f"{counts[f][c]:>13,}" for c in cols))
    print(f"{'total':<12}" + "".join(f"{total[c]:>13,}" for c in cols))
    print(f"{args.count:,} inputs (seed {args.seed}, numbers {args.start:,}.."
          f"{args.start + args.count - 1:,}) in {time.perf_counter() - start:,.0f} s")
    print("slowest: " + ", ".join(f"{w:.2f} s ({fam} #{i})" for w, fam, i in slowest))
    for site, n in sites.most_common():
        print(f"traceback {n:>6,}  {site}")
    return 1 if total["traceback"] or total["hang"] or total["cpu>2s"] else 0


if __name__ == "__main__":
    sys.exit(main())
