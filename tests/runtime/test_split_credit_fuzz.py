"""The event fuzzer (``benchmarks/fuzz_events.py``) over the split-rule, credit-line and asset-family
policies: hostile values in every field, duplicates, id conflicts and time attacks; every
event also runs on the reference interpreter (receipts, rejections, journals and states must
agree); nothing escapes ``submit``, a rejection changes nothing, the ledger audits clean.
``tools/fuzz_split_credit.py`` runs the same over 100,000 events per policy."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))

import fuzz_events as F  # noqa: E402

from charter.compiler.pipeline import Compilation  # noqa: E402

POLICIES = [
    Path(__file__).resolve().parent / "splits" / "split_options.charter",
    Path(__file__).resolve().parent / "credit" / "time_bank_credit.charter",
    Path(__file__).resolve().parent / "families" / "token_vault.charter",
    Path(__file__).resolve().parent / "splits" / "split_between.charter",
    Path(__file__).resolve().parent / "credit" / "param_credit.charter",
    Path(__file__).resolve().parent / "credit" / "member_credit.charter",
]


@pytest.mark.parametrize("path", POLICIES, ids=lambda p: p.stem)
def test_fuzzer_finds_nothing(path: Path) -> None:
    tg = F.Target(path.stem, Compilation.from_path(str(path)).ir, {}, [])
    c = F.fuzz(tg, events=150, seed=17, episode=75)
    assert (c.exceptions, c.changed, c.audit_failures, c.mismatches) == (0, 0, 0, 0), c.examples
    assert c.accepted > 0 and sum(c.rejected.values()) > 0
