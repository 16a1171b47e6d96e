"""Replay every counterexample `charter verify` emits for buggy twins of the stdlib.

Twins: the curated table in ``tests/verify/twins.py``, the mutation suite's rows
(``--mutants``: ``tests/verify/mutants/mutants.toml``) and (``--drop-requires``) one mutant
per stdlib ``require`` that guards a state, status or balance (the "forgotten guard" bug).
For every refuted or guard-missing finding the script checks what a reviewer would: the
emitted ``test`` block compiles and FAILS on the violated property, the JSONL replays through
``charter run --memory --check`` to the violation, and the same events on the fixed twin do
not violate.  Prints one line per finding and the totals (the issue-14 measurement)::

    python tools/replay_mutants.py                 # curated twins
    python tools/replay_mutants.py --drop-requires # plus every dropped guard (slow)
    python tools/replay_mutants.py --mutants       # plus the mutation suite (mutants.toml)
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "verify"))

from replay_check import check_emitted  # noqa: E402
from twins import TWINS, apply  # noqa: E402

from charter.compiler import verify as V  # noqa: E402
from charter.compiler.pipeline import Compilation  # noqa: E402

GUARD_WORDS = re.compile(r"open|status|state|paid|claimed|settled|decided|closed|active|balance\(|stake\(")


def drop_require_twins() -> list[tuple]:
    out = []
    for path in sorted((ROOT / "stdlib_policies").glob("*.charter")):
        lines = path.read_text().splitlines()
        for i, line in enumerate(lines):
            s = line.strip()
            if s.startswith("require ") and GUARD_WORDS.search(s) and "exists" not in s:
                out.append((f"{path.stem}:{i + 1} drop `{s[:50]}`", path.stem, i, None))
    return out


def suite_twins() -> list[tuple]:
    """The mutation suite's rows (``tests/verify/mutants/mutants.toml``), as twins."""
    import tomllib

    table = ROOT / "tests" / "verify" / "mutants" / "mutants.toml"
    if not table.exists():
        return []
    rows = tomllib.loads(table.read_text())["mutant"]
    return [(r["id"], r["policy"], r["find"], r["replace"]) for r in rows]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--drop-requires", action="store_true")
    ap.add_argument("--mutants", action="store_true", help="also the mutation suite's rows")
    ap.add_argument("-k", default="", help="only twins whose id contains this text")
    ap.add_argument("--timeout-ms", type=int, default=None, help="wall-clock safety net per query")
    args = ap.parse_args()
    twins = list(TWINS) + (suite_twins() if args.mutants else [])
    twins += drop_require_twins() if args.drop_requires else []
    twins = [t for t in twins if args.k in t[0]]
    totals: Counter = Counter()
    t_start = time.perf_counter()
    for tid, stem, old, new, *_ in twins:
        fixed = (ROOT / "stdlib_policies" / f"{stem}.charter").read_text()
        try:
            if isinstance(old, int):  # drop line `old` (the same guard may occur twice)
                lines = fixed.splitlines(keepends=True)
                buggy = "".join(lines[:old] + lines[old + 1 :])
            else:
                buggy = apply(fixed, old, new)
        except AssertionError as exc:
            print(f"{tid}: cannot apply ({exc})")
            totals["not applicable"] += 1
            continue
        t0 = time.perf_counter()
        try:
            pol = Compilation.from_text(buggy, file=f"{stem}.charter").ir
        except Exception as exc:  # a mutant that does not compile is not a twin
            print(f"{tid}: does not compile ({type(exc).__name__})")
            totals["not compiling"] += 1
            continue
        opts = V.Options() if args.timeout_ms is None else V.Options(timeout_ms=args.timeout_ms)
        results = V.verify(pol, opts, use_cache=False)
        bad = [r for r in results if r.status in ("refuted", "guard_missing") and r.counterexample]
        totals["twins"] += 1
        totals["caught twins"] += bool(bad)
        for r in bad:
            totals["findings"] += 1
            cex = r.counterexample
            if cex.get("replayed"):
                problems = check_emitted(r, buggy, fixed)
                if problems:
                    totals["emitted, BROKEN"] += 1
                    verdict = "BROKEN: " + "; ".join(problems)
                else:
                    totals["emitted, replays"] += 1
                    verdict = f"replays ({len(cex['scenario']['events'])} events)"
            elif cex.get("internal_error"):
                totals["internal error (not shown)"] += 1
                verdict = "INTERNAL: " + cex["internal_error"]
            elif "scenario" in cex and cex["scenario"].get("charter_test"):
                totals["emitted from a given setup"] += 1
                verdict = "from a given setup (not genesis)"
            else:
                totals["not reached, said so"] += 1
                verdict = "not reached from genesis (said so, nothing emitted)"
            print(f"{tid}: {r.name} {r.status}: {verdict}", flush=True)
        print(f"{tid}: {len(bad)} findings in {time.perf_counter() - t0:.1f}s", flush=True)
    print()
    for k in ("twins", "caught twins", "not applicable", "not compiling", "findings", "emitted, replays",
              "emitted, BROKEN", "emitted from a given setup", "not reached, said so",
              "internal error (not shown)"):
        print(f"{k:32} {totals[k]}")
    print(f"{'seconds':32} {time.perf_counter() - t_start:.0f}")
    return 1 if totals["emitted, BROKEN"] or totals["internal error (not shown)"] else 0


if __name__ == "__main__":
    sys.exit(main())
