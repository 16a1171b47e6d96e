"""Run the event fuzzer over the split-rule, credit-line and asset-family test policies (engine vs the
reference interpreter, hostile values, rejections change nothing) and print the counts:
``python tools/fuzz_split_credit.py [EVENTS_PER_POLICY]`` (default 100,000)."""

from __future__ import annotations

import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

import fuzz_events as F  # noqa: E402

from charter.compiler.pipeline import Compilation  # noqa: E402

POLICIES = [
    ROOT / "tests" / "runtime" / "splits" / "split_options.charter",
    ROOT / "tests" / "runtime" / "credit" / "time_bank_credit.charter",
    ROOT / "tests" / "runtime" / "families" / "token_vault.charter",
    ROOT / "tests" / "runtime" / "splits" / "split_between.charter",
    ROOT / "tests" / "runtime" / "credit" / "param_credit.charter",
    ROOT / "tests" / "runtime" / "credit" / "member_credit.charter",
]


def main() -> int:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    bad = 0
    for path in POLICIES:
        t0 = time.perf_counter()
        tg = F.Target(path.stem, Compilation.from_path(str(path)).ir, {}, [])
        c = F.fuzz(tg, events=n, seed=1, episode=500)
        dt = time.perf_counter() - t0
        print(f"{path.stem}: {c.events} events in {dt:.0f} s: accepted {c.accepted}, "
              f"duplicates {c.duplicates}, rejected {sum(c.rejected.values())} "
              f"({len(c.rejected)} reasons); exceptions {c.exceptions}, changed-on-reject "
              f"{c.changed}, audit failures {c.audit_failures}, engine/reference mismatches "
              f"{c.mismatches}")
        bad += c.exceptions + c.changed + c.audit_failures + c.mismatches
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
