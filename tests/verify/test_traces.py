"""Refutations are confirmed from the initial state by a bounded search over event sequences;
a confirmed trace is a `charter test` that the runtime replays and passes."""

from __future__ import annotations

import pytest

import verify_policies as P
from verify_helpers import compile_text, verify_text
from charter.runtime.testing import run_tests

CONFIRMED = [
    # (id, policy text, result name, number of events in the trace)
    ("fee above 100%", P.FEE.format(name="f", hi="150%"), "complete.non_negative", 2),
    ("refund twice", P.REFUND.format(name="r", guard=""), "refund.escrow_bound", 3),
    ("closed job keeps money", P.INVARIANT.format(name="i", body=""), "closed_empty", 2),
    ("pledges exceed the cap", P.TOTAL_CAP.format(name="c", guard=""), "capped_total", None),
    ("unbounded claim", P.BUDGET.format(name="b", pay="amount"), "claim_small", 1),
]


@pytest.mark.parametrize(
    "text,name,events", [c[1:] for c in CONFIRMED], ids=[c[0] for c in CONFIRMED]
)
def test_confirmed_trace_replays_on_the_runtime(text, name, events):
    _, results = verify_text(text)
    r = results[name]
    assert r.status == "refuted"
    cex = r.counterexample
    assert cex["confirmed"] is True, r.message
    sc = cex["scenario"]
    if events is not None:
        assert len(sc["events"]) == events
    assert "Confirmed reachable" in r.message or r.message.startswith("violated")
    (res,) = run_tests(compile_text(text + "\n" + sc["charter_test"] + "\n"))
    assert res.passed, (res.failures, sc["charter_test"])


def test_unreachable_counterexample_is_not_confirmed():
    """`take` releases amount*mult; every Box is created with mult = 2 and twice the amount in
    escrow, so the modular counterexample (mult = 3, say) is unreachable: the result says so."""
    _, results = verify_text(P.BOX.format(name="box"))
    r = results["take.escrow_bound"]
    assert r.status == "refuted"
    assert r.counterexample["confirmed"] is False
    assert "Not confirmed from the initial state" in r.message
