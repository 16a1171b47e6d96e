"""The adversarial review of the standard library (issue 16, item 5) cannot drift.

Every stdlib economy has ``stdlib_policies/review/<economy>.toml``: what a
self-interested member was imagined to try against it, the outcome, and the
rule that stops it.  The economy's docs page renders it as "Known limits".
This test holds the data to the policy:

* every economy was checked for each of the five kinds of hole the review
  looks for (leave/rejoin farming, double rulings, fees charged twice,
  rewards outside the named roles, escaping penalties by exiting);
* a check whose outcome is ``closed`` or ``deliberate`` names the in-language
  tests of the policy that play it, and each of those tests exists and
  passes (so the exploit scenario really fails, with its exact balances, or
  the deliberate rule really behaves as documented);
* every property a check cites is declared by the policy, and every handler
  it cites under ``ensures`` states a postcondition (whether they are proved
  is ``charter verify``'s job: tests/stdlib/test_stdlib_verify.py);
* a ``known limit`` says why it is left open, and the page shows it.
"""

from __future__ import annotations

import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
STDLIB = sorted((ROOT / "stdlib_policies").glob("*.charter"))
REVIEW = ROOT / "stdlib_policies" / "review"

KINDS = (
    "leave/rejoin farming",
    "double rulings",
    "fees charged twice",
    "rewards outside the named roles",
    "escaping penalties by exiting",
)
EXTRA_KINDS = ("identities (sybils)", "self-dealing", "header and code")
OUTCOMES = ("closed", "deliberate", "holds", "known limit", "not applicable")
FIELDS = {"kind", "attack", "outcome", "why", "tests", "properties", "ensures", "unprovable"}


def _review(path: Path) -> dict:
    file = REVIEW / f"{path.stem}.toml"
    assert file.is_file(), f"{path.stem} has no adversarial review: add {file.relative_to(ROOT)}"
    return tomllib.loads(file.read_text("utf-8"))


def test_every_review_belongs_to_a_policy() -> None:
    stems = {p.stem for p in STDLIB}
    orphans = [f.name for f in REVIEW.glob("*.toml") if f.stem not in stems]
    assert not orphans, orphans


@pytest.mark.parametrize("path", STDLIB, ids=lambda p: p.stem)
def test_review_covers_every_kind_of_hole(path: Path) -> None:
    data = _review(path)
    assert data.get("economy") == path.stem
    checks = data.get("check", [])
    for check in checks:
        assert set(check) <= FIELDS, f"unknown fields {set(check) - FIELDS}"
        assert check.get("kind") in KINDS + EXTRA_KINDS, check.get("kind")
        assert check.get("outcome") in OUTCOMES, check.get("outcome")
        assert check.get("attack", "").strip(), "say what was tried"
        assert check.get("why", "").strip(), f"{check['attack']!r}: say what stops it, or why not"
        if check["outcome"] in ("closed", "deliberate"):
            assert check.get("tests"), f"{check['attack']!r} is {check['outcome']}: name the tests"
    missing = [k for k in KINDS if not any(c["kind"] == k for c in checks)]
    assert not missing, f"{path.stem}: not reviewed for {missing}"


@pytest.mark.parametrize("path", STDLIB, ids=lambda p: p.stem)
def test_review_tests_and_properties_exist_and_tests_pass(path: Path) -> None:
    pytest.importorskip("charter.runtime.testing")
    from charter.compiler.pipeline import Compilation
    from charter.runtime.testing import run_tests

    data = _review(path)
    policy = Compilation.from_path(str(path)).ir
    named_tests = {t for c in data.get("check", []) for t in c.get("tests", [])}
    named_props = {p for c in data.get("check", []) for p in c.get("properties", [])}
    assert named_props <= {p.name for p in policy.properties}, (
        f"properties the review cites but the policy does not declare: "
        f"{sorted(named_props - {p.name for p in policy.properties})}")
    named_ensures = {h for c in data.get("check", []) for h in c.get("ensures", [])}
    with_ensures = {h.name for h in policy.handlers if h.ensures}
    assert named_ensures <= with_ensures, (
        f"handlers the review cites for postconditions that state none: "
        f"{sorted(named_ensures - with_ensures)}")
    results = {r.name: r for r in run_tests(policy)}
    assert named_tests <= set(results), (
        f"tests the review cites but the policy does not have: {sorted(named_tests - set(results))}")
    failed = {n: results[n].failures for n in named_tests if not results[n].passed}
    assert not failed, failed


@pytest.mark.parametrize("path", STDLIB, ids=lambda p: p.stem)
def test_known_limits_are_on_the_docs_page(path: Path) -> None:
    sys.path.insert(0, str(ROOT / "docs" / "_ext"))
    try:
        import charter_economies
    finally:
        sys.path.remove(str(ROOT / "docs" / "_ext"))
    page = charter_economies.economy_page(path)
    assert "Known limits\n------------" in page
    for check in _review(path).get("check", []):
        assert f"**{check['outcome']}**" in page
        for name in check.get("tests", []) + check.get("properties", []) + check.get("ensures", []):
            assert f"``{name}``" in page
