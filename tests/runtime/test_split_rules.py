"""Split rules on the runtime: the policies in ``splits/`` carry their expected ledgers as
in-language tests (hand-worked, and the published 2020 US House apportionment), run on both
backends; changing the rule makes them fail, so they cannot pass by accident."""

from __future__ import annotations

from pathlib import Path

import pytest

from charter.compiler.pipeline import Compilation
from charter.runtime.testing import run_tests

HERE = Path(__file__).resolve().parent / "splits"
POLICIES = sorted(HERE.glob("*.charter"))


@pytest.mark.parametrize("backend", ["python", "closures", "reference"])
@pytest.mark.parametrize("path", POLICIES, ids=lambda p: p.stem)
def test_split_policies(path: Path, backend: str) -> None:
    results = run_tests(Compilation.from_path(str(path)).ir, backend=backend)
    assert results, "the policy has tests"
    failed = [(r.name, r.failures) for r in results if not r.passed]
    assert not failed


def _passes(text: str) -> bool:
    pol = Compilation.from_text(text, file="mut.charter").ir
    return all(r.passed for r in run_tests(pol))


@pytest.mark.parametrize(
    "old,new",
    [
        # Sainte-Lague or a first-payment minimum give another House
        ("rounding huntington_hill with minimum 1 Seat", "rounding sainte_lague with minimum 1 Seat"),
        ("rounding huntington_hill with minimum 1 Seat", "rounding dean"),
        ("rounding huntington_hill with minimum 1 Seat", "rounding huntington_hill at least 1 Seat"),
    ],
)
def test_house_apportionment_depends_on_the_rule(old: str, new: str) -> None:
    text = (HERE / "house_2020.charter").read_text()
    assert _passes(text)
    assert not _passes(text.replace(old, new))


@pytest.mark.parametrize(
    "old,new",
    [
        ("by 1 rounding sequential_floor_listed\n", "by 1 rounding sequential_floor\n"),
        ("by 1 rounding sequential_floor_listed in key order", "by 1 rounding sequential_floor_listed"),
        ("by p.share rounding sequential_floor_listed in weight order", "by p.share rounding sequential_floor_listed"),
        ("with minimum 2 Seat", "at least 2 Seat"),
        ("rounding adams", "rounding dhondt"),
    ],
)
def test_split_options_depend_on_the_option(old: str, new: str) -> None:
    text = (HERE / "split_options.charter").read_text()
    assert text.count(old) == 1
    assert not _passes(text.replace(old, new))
