"""What the search from genesis tries first, and how a replay reads the runtime: cheap
table-driven checks of the pieces that decide whether a reachable bug gets a scenario within
the search's fixed budget (the mutation suite, ``tools/mutants.py``, measures the whole)."""

from __future__ import annotations

from pathlib import Path

import pytest

from charter.compiler import ir
from charter.compiler.pipeline import Compilation
from charter.compiler.verify.genesis import classify, core_sequences, state_read, state_written
from charter.compiler.verify.replay import _code_of
from charter.compiler.verify.scenario import wanted_writers

ROOT = Path(__file__).resolve().parents[2]


def _stdlib(stem: str) -> ir.Policy:
    text = (ROOT / "stdlib_policies" / f"{stem}.charter").read_text()
    return Compilation.from_text(text, file=f"{stem}.charter").ir


@pytest.mark.parametrize("message,code", [
    # a timed handler's rejection keeps only the runtime's message
    ("transfer: pool:commons holds 0.02 Credit, needs 0.03 Credit", "insufficient_funds"),
    ("release: escrow:Task:t1:Credit holds 1 Credit, needs 2 Credit", "insufficient_funds"),
    ("cannot release a negative amount (-1 Credit)", "negative_amount"),
    ("Task 't1' still holds 5 Credit", "record_holds_value"),
    ("minting 5 would exceed its cap of 4 (supply 0)", "cap_exceeded"),
    ("the goal is not met", "rejected"),
])
def test_timer_rejection_codes(message, code):
    assert _code_of(message) == code


def test_handlers_that_touch_nothing_the_violation_reads_come_last():
    """skill_licensing's report_violation reads stakes and leases: among sequences of one
    length, those with a retire or a use (which write neither) are tried after the others,
    so "license, report, license, report again" is reached within the budget."""
    pol = _stdlib("skill_licensing")
    target = pol.handler("report_violation")
    assert not state_written(pol.handler("retire")) & state_read(target)
    assert not state_written(pol.handler("use")) & state_read(target)
    assert state_written(pol.handler("license")) & state_read(target)
    _, core = classify(pol)
    made = frozenset({"Skill", "role:Agent", "role:Arbiter"})  # what setup steps give
    seqs = [tuple(h.name for h in s) for s in core_sequences(pol, target, core, 3, (), made)]
    three = [s for s in seqs if len(s) == 3]
    busy = [s for s in three if not {"retire", "use"} & set(s)]
    assert three[: len(busy)] == busy
    assert ("license", "report_violation", "license") in busy


def test_wanted_fields_are_those_the_violation_reads():
    """A modular counterexample's record fields away from their initial values steer the
    search only when the failing handler or the property reads them."""
    pol = _stdlib("skill_licensing")
    cex = {"records": {
        'Skill("k1")': {"exists": True, "active": "false", "uses": "18004"},
        'Lease("k2")': {"exists": True, "live": "false"},
    }}
    every = wanted_writers(pol, cex)
    assert frozenset({"retire"}) in every and frozenset({"use"}) in every
    # report_violation (with its `require l.live`) reads Lease.live, not Skill.active/uses
    only = wanted_writers(pol, cex, "report_violation")
    assert frozenset({"retire"}) not in only and frozenset({"use"}) not in only
    assert any("report_violation" in w for w in only)
