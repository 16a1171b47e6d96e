"""Verification time per stdlib policy and in total (no cache), next to a plain-Python reference.

    PYTHONPATH=. python benchmarks/bench_verify.py [--bound N] [--timeout-ms T] [--cached]

The reference is what a plain-Python check costs for comparison: enumerating every split of
amounts 0..60 among up to 3 weights 0..9 with runtime.semantics and checking proportionality
(what the verifier proves symbolically for all amounts and weights).  Prints figures only;
nothing here is asserted.
"""

from __future__ import annotations

import argparse
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


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bound", type=int, default=3)
    ap.add_argument("--timeout-ms", type=int, default=5000)
    ap.add_argument("--cached", action="store_true", help="also time a second, cached run")
    args = ap.parse_args()
    from charter.compiler import verify as V
    from charter.compiler.pipeline import Compilation

    files = sorted(
        p
        for p in resources.files("charter.stdlib_policies").iterdir()
        if p.name.endswith(".charter")
    )
    print(f"charter verify benchmark: bound {args.bound}, timeout {args.timeout_ms} ms per check")
    print(
        f"{'policy':<28}{'handlers':>9}{'checks':>8}{'proved':>8}{'refuted':>8}{'guard':>7}"
        f"{'unknown':>8}{'vacuous':>8}{'compile s':>10}{'verify s':>10}{'cached s':>10}"
    )
    total = 0.0
    rows = 0
    with tempfile.TemporaryDirectory() as cache:
        for f in files:
            t0 = time.perf_counter()
            try:
                policy = Compilation.from_text(f.read_text(), file=f.name).ir
            except Exception as exc:  # a broken stdlib policy is reported, not fatal
                print(f"{f.name:<28} does not compile: {str(exc).splitlines()[0][:60]}")
                continue
            tc = time.perf_counter() - t0
            opts = V.Options(bound=args.bound, timeout_ms=args.timeout_ms, cache_dir=Path(cache))
            t0 = time.perf_counter()
            results = V.verify(policy, opts, use_cache=args.cached)
            tv = time.perf_counter() - t0
            tcache = ""
            if args.cached:
                t0 = time.perf_counter()
                V.verify(policy, opts, use_cache=True)
                tcache = f"{time.perf_counter() - t0:.3f}"
            s = V.summary(results)
            total += tv
            rows += 1
            print(
                f"{f.name[:-8]:<28}{len(policy.handlers):>9}{len(results):>8}{s['proved']:>8}"
                f"{s['refuted']:>8}{s['guard_missing']:>7}{s['unknown']:>8}{s['vacuous']:>8}"
                f"{tc:>10.3f}{tv:>10.3f}{tcache:>10}"
            )
    print(
        f"total verify time for {rows} policies: {total:.2f} s"
        f" (mean {total / max(rows, 1):.2f} s per policy)"
    )
    n, tr = reference_enumeration()
    print(
        f"plain-Python reference: {n} concrete largest-remainder splits enumerated and checked "
        f"in {tr:.2f} s (covers amounts 0..60 only; the verifier covers all amounts)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
