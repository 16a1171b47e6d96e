"""The stdlib mutation suite (tests/verify/mutants/mutants.toml, run in full by
``python tools/mutants.py``): the table is well formed, every mutant is a one-line change
that compiles, and the rows marked ``ci`` are caught by the checks they name."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tools"))

import mutants as M  # noqa: E402
from charter.compiler import verify as V  # noqa: E402
from charter.compiler.pipeline import Compilation  # noqa: E402

TABLE = M.load()
KNOWN = {c.name for c in V.CHECKS}


def test_the_suite_is_large_and_varied() -> None:
    assert len(TABLE) >= 40
    assert len({m.policy for m in TABLE}) >= 12
    assert len({m.kind for m in TABLE}) >= 30


@pytest.mark.parametrize("m", TABLE, ids=[m.id for m in TABLE])
def test_mutant_is_one_compiling_line(m: M.Mutant) -> None:
    text = M.apply(m)  # raises unless `find` occurs once and one line changes
    assert text != (M.STDLIB / f"{m.policy}.charter").read_text("utf-8")
    comp = Compilation.from_text(text, file=f"{m.policy}.charter")
    assert comp.ok, [d.message for d in comp.diagnostics]
    assert m.caught_by and set(m.caught_by) <= KNOWN, m.caught_by


def test_a_row_that_changes_two_lines_is_refused() -> None:
    m = M.Mutant(id="x", policy="gig_market", find="    set t.open = false\n}\n\non cancel",
                 replace="    set t.open = true\n}\n\non cancelled", kind="k",
                 caught_by=["once"])
    with pytest.raises(ValueError, match="one line"):
        M.apply(m)


CI = [m for m in TABLE if m.ci]


@pytest.mark.parametrize("m", CI, ids=[m.id for m in CI])
def test_ci_mutant_is_caught(m: M.Mutant) -> None:
    out = M.run(m, V.Options(timeout_ms=20000), replay=True)
    assert out.verdict == "caught", (out.verdict, out.detail, out.caught_by)


# A CI-sized replay test over the suite (``tools/replay_mutants.py --mutants`` runs every
# row): one mutant per kind of runtime twin - an unowned debit, a membership granted without
# authority, a second payout, an `ensures` broken (run --check evaluates it), value left
# behind, a budget overrun, a declared invariant, a timed handler's refusal - each finding's
# scenario from genesis replayed as a reviewer would (test fails on the property, JSONL shows
# it, the fixed policy does not)
REPLAY_SAMPLE = (
    "ethical-decline-by-anyone", "time-vouch-by-anyone",
    "gig-full-price-after-milestones", "ethical-decline-keeps-fee", "time-aid-cover-dropped",
    "quadratic-false-invariant", "compute-unbond-delete-early",
    # a second payout whose record did not advance (the fixed policy's two unsignals both
    # pay too, but its position advanced: the JSONL check reads the record back)
    "curation-unsignal-keeps-shares",
    # a timed handler refused with the runtime's own words ("holds X, needs Y")
    "commons-allocation-ceil",
    # found only when the search puts handlers that write nothing the violation reads last
    "skill-violation-twice",
)


@pytest.mark.parametrize("mid", REPLAY_SAMPLE)
def test_mutant_counterexamples_replay(mid: str) -> None:
    from replay_check import check_emitted

    m = next(x for x in TABLE if x.id == mid)
    buggy = M.apply(m)
    fixed = (M.STDLIB / f"{m.policy}.charter").read_text("utf-8")
    pol = Compilation.from_text(buggy, file=f"{m.policy}.charter").ir
    found = [r for r in V.verify(pol, V.Options(), use_cache=False)
             if r.status in ("refuted", "guard_missing") and r.counterexample]
    assert found
    for r in found:
        assert r.counterexample.get("replayed"), (r.name, r.counterexample.get("reach_note"))
        assert not check_emitted(r, buggy, fixed), (r.name, check_emitted(r, buggy, fixed))
