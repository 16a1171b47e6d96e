"""Verification time and Z3 resources per stdlib policy and in total (cold), next to a reference.

    python benchmarks/bench_verify.py [FILES...] [--bound N] [--rlimit R]
        [--timeout-ms T] [--cached]

(with charter installed: ``pip install .`` in a fresh clone, or the dev venv's python).

Per policy: compile CPU seconds (the parser's tables are built once per process, before the
first policy, on a line of their own), verify wall and CPU seconds, queries, Z3 resource
units used (total and the costliest query: how far the stdlib stays below ``--rlimit``),
how many queries the resource limit stopped (``lim``; deterministic) and how many the
wall-clock safety net stopped (``net``; it should be 0 - those verdicts depend on the
machine).  CPU seconds are the honest figure on a
shared machine (wall time grows with the load; CPU time and resource units do not).  The
last lines give the machine's load and a digest of every verdict: two runs with equal
digests gave identical verdicts (run one under load to see that load does not matter).

The reference is what a plain-Python check costs for comparison: enumerating every split of
amounts 0..60 among up to 3 weights 0..9 with runtime.semantics and checking proportionality
(what the verifier proves symbolically for all amounts and weights).  Prints figures only;
nothing here is asserted.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import tempfile
import time
from fractions import Fraction
from importlib import resources
from itertools import product
from pathlib import Path


def reference_enumeration() -> tuple[int, float]:
    from charter.runtime import semantics

    t0 = time.perf_counter()
    n = 0
    for k in (1, 2, 3):
        for weights in product(range(10), repeat=k):
            total = sum(weights)
            for amount in range(61):
                shares, left = semantics.split(amount, list(weights))
                n += 1
                if total:
                    assert all(
                        abs(s - Fraction(amount * w, total)) <= 1 for s, w in zip(shares, weights)
                    )
    return n, time.perf_counter() - t0


def _load() -> str:
    try:
        return "load average " + " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "load average n/a"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("files", nargs="*", help="policies to verify (default: the stdlib)")
    ap.add_argument("--bound", type=int, default=3)
    ap.add_argument("--rlimit", type=int, default=None, help="Z3 resource limit per query")
    ap.add_argument("--timeout-ms", type=int, default=None, help="wall-clock safety net")
    ap.add_argument("--cached", action="store_true", help="also time a second, cached run")
    args = ap.parse_args()
    from charter.compiler import verify as V
    from charter.compiler.pipeline import Compilation
    from charter.compiler.verify import solver

    if args.files:
        files = [Path(f) for f in args.files]
    else:
        files = sorted(
            p
            for p in resources.files("charter.stdlib_policies").iterdir()
            if p.name.endswith(".charter")
        )
    base = V.Options(bound=args.bound)
    rlimit = args.rlimit if args.rlimit is not None else base.rlimit
    timeout_ms = args.timeout_ms if args.timeout_ms is not None else base.timeout_ms
    print(
        f"charter verify benchmark: bound {args.bound}, rlimit {rlimit:,} per query, "
        f"wall-clock safety net {timeout_ms:,} ms; {os.cpu_count()} cores, {_load()}"
    )
    print(
        f"{'policy':<24}{'hand':>5}{'checks':>7}{'proved':>7}{'refut':>6}{'guard':>6}"
        f"{'unkn':>5}{'vac':>4}{'compile s':>10}{'verify s':>9}{'cpu s':>7}{'queries':>8}"
        f"{'rlimit used':>13}{'max/query':>11}{'lim':>4}{'net':>4}{'cached s':>9}"
    )
    total = cpu_total = verify_cpu = 0.0
    rl_total = 0
    rows = 0
    worst = ("", 0.0)
    over: list[str] = []  # policies at or above the 2 s goal
    verdicts: dict[str, str] = {}
    # once per process, not per policy: building the LALR parser from the grammar (the first
    # compile would otherwise carry it); shown on its own line and counted in the total
    from charter.compiler import parse

    c0 = time.process_time()
    parse._parser()
    startup = time.process_time() - c0
    print(f"{'(parser)':<24}{'':>36}{startup:>10.3f}  once per process: the grammar's LALR tables")
    cpu_total += startup
    with tempfile.TemporaryDirectory() as cache:
        for f in files:
            c0 = time.process_time()
            try:
                policy = Compilation.from_text(f.read_text(), file=f.name).ir
            except Exception as exc:  # a broken stdlib policy is reported, not fatal
                print(f"{f.name:<24} does not compile: {str(exc).splitlines()[0][:60]}")
                continue
            tc = time.process_time() - c0
            opts = V.Options(
                bound=args.bound, rlimit=rlimit, timeout_ms=timeout_ms, cache_dir=Path(cache)
            )
            t0, c0 = time.perf_counter(), time.process_time()
            results = V.verify(policy, opts, use_cache=args.cached)
            tv, cv = time.perf_counter() - t0, time.process_time() - c0
            st = solver.stats()
            tcache = ""
            if args.cached:
                t0 = time.perf_counter()
                V.verify(policy, opts, use_cache=True)
                tcache = f"{time.perf_counter() - t0:.3f}"
            s = V.summary(results)
            total += tv
            cpu_total += cv
            verify_cpu += cv
            rl_total += st.rlimit_used
            worst = max(worst, (f.name[:-8], tv), key=lambda x: x[1])
            cpu_total += tc
            if tv >= 2.0 or cv + tc >= 2.0:
                over.append(
                    f"{f.name[:-8]} ({tv:.2f} s wall, {tc + cv:.2f} s cpu with compiling)"
                )
            rows += 1
            for r in results:
                verdicts[f"{f.name[:-8]}:{r.name}"] = r.status
            print(
                f"{f.name[:-8][:23]:<24}{len(policy.handlers):>5}{len(results):>7}"
                f"{s['proved']:>7}{s['refuted']:>6}{s['guard_missing']:>6}{s['unknown']:>5}"
                f"{s['vacuous']:>4}{tc:>10.3f}{tv:>9.3f}{cv:>7.2f}{st.queries:>8}"
                f"{st.rlimit_used:>13,}{st.rlimit_max:>11,}{st.at_limit:>4}{st.safety_net:>4}"
                f"{tcache:>9}"
            )
    print(
        f"total verify time for {rows} policies: {total:.2f} s wall, {verify_cpu:.2f} s cpu "
        f"({cpu_total:.2f} s cpu with compiling and the parser) "
        f"(slowest {worst[0]} {worst[1]:.2f} s); rlimit used {rl_total:,}; {_load()}"
    )
    print("at or above 2 s per policy: " + (", ".join(over) if over else "none"))
    digest = hashlib.sha256(json.dumps(verdicts, sort_keys=True).encode()).hexdigest()[:16]
    print(f"verdict digest (equal digests = identical verdicts for every check): {digest}")
    n, tr = reference_enumeration()
    print(
        f"plain-Python reference: {n} concrete largest-remainder splits enumerated and checked "
        f"in {tr:.2f} s (covers amounts 0..60 only; the verifier covers all amounts)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
