"""Refutations are searched from genesis through the policy's own handlers; a scenario found
is replayed on the runtime before it is shown, and a reviewer can replay it two ways: the
emitted `test` block fails on the violated property, and the JSONL through
`charter run --memory --check` shows the violation.  The fixed twin does not violate."""

from __future__ import annotations

import pytest

import verify_policies as P
from replay_check import check_emitted
from verify_helpers import verify_text

REPLAYED = [
    # (id, buggy text, fixed text, result name)
    ("fee above 100%", P.FEE.format(name="f", hi="150%"), P.FEE.format(name="f", hi="100%"),
     "complete.non_negative"),
    ("refund twice", P.REFUND.format(name="r", guard=""),
     P.REFUND.format(name="r", guard=P.REFUND_GUARD), "refund.escrow_bound"),
    ("closed job keeps money", P.INVARIANT.format(name="i", body=""),
     P.INVARIANT.format(name="i", body="refund rest of Job(id) to j.client"), "closed_empty"),
    ("pledges exceed the cap", P.TOTAL_CAP.format(name="c", guard=""),
     P.TOTAL_CAP.format(name="c", guard=P.TOTAL_CAP_GUARD), "capped_total"),
    ("unbounded claim", P.BUDGET.format(name="b", pay="amount"),
     P.BUDGET.format(name="b", pay="min(amount, 10 Credit)"), "claim_small"),
    ("delete with money left", P.DELETE.format(name="d", body=""),
     P.DELETE.format(name="d", body="refund rest of Job(id) to j.client"), "close.delete_empty"),
    # reached only through a clock tick between events (collection at 30 days, then stop)
    ("stream pays ahead of vesting", P.STREAM.format(name="s", owed="vested_by(s, at)"),
     P.STREAM.format(name="s", owed=P.STREAM_OWED), "stop.ensures.1"),
]


@pytest.mark.parametrize(
    "buggy,fixed,name", [c[1:] for c in REPLAYED], ids=[c[0] for c in REPLAYED]
)
def test_counterexample_replays_from_genesis(buggy, fixed, name):
    _, results = verify_text(buggy)
    r = results[name]
    assert r.status in ("refuted", "guard_missing"), (r.status, r.message)
    assert r.counterexample["replayed"] is True, r.message
    assert "from genesis" in r.message or "Reached from genesis" in r.message
    sc = r.counterexample["scenario"]
    assert sc["from"] == "genesis" and sc["replay"]["ok"]
    assert not check_emitted(r, buggy, fixed), check_emitted(r, buggy, fixed)


def test_unreachable_counterexample_is_not_claimed():
    """`take` releases amount*mult; every Box is created with mult = 2 and twice the amount in
    escrow, so the modular counterexample (mult = 3, say) is unreachable: the result says so
    and offers no test or JSONL that would not replay."""
    _, results = verify_text(P.BOX.format(name="box"))
    r = results["take.escrow_bound"]
    assert r.status == "refuted"
    cex = r.counterexample
    assert cex["confirmed"] is False and cex["replayed"] is False
    assert "not reached from genesis within" in r.message
    assert "charter_test" not in cex["scenario"] and "events_jsonl" not in cex["scenario"]


def test_build_is_the_entry_point_for_any_check():
    """What a new check does (here a made-up rule, "no refund ever applies"): hand `build`
    the Z3 question and the runtime-side Violation; it searches from genesis, replays,
    shrinks and renders.  The emitted test fails on the property (`expect rejected` after
    the refund applied); the JSONL applies every event."""
    import z3

    from replay_check import emitted_test_failures, run_cli
    from verify_helpers import compile_text

    from charter.compiler.verify import Options
    from charter.compiler.verify.replay import Forbidden
    from charter.compiler.verify.scenario import build

    text = P.REFUND.format(name="r", guard="")
    policy = compile_text(text)
    got = build(
        policy,
        "refund",
        lambda m: z3.And(m.applied),
        Forbidden(handler="refund", describe="no refund ever applies"),
        Options(),
        name="counterexample refund twice",
    )
    assert got["status"] == "replayed", got
    sc = got["scenario"]
    passed, failures = emitted_test_failures(text, sc["charter_test"])
    assert not passed and any("expected rejected" in f for f in failures), failures
    out = run_cli(text, sc["events_jsonl"], sc["run_params"])
    assert out["rejected"] == 0 and out["applied"] == len(sc["events"]), out


def test_a_scenario_the_runtime_does_not_replay_is_never_a_refutation():
    """If the runtime does not show the violation the verifier predicted (here: a Violation
    that never sees it), the scenario is withheld, the result is unknown, and the message
    says it is an internal error."""
    import z3

    from verify_helpers import compile_text

    from charter.compiler.verify import Options
    from charter.compiler.verify.replay import Forbidden
    from charter.compiler.verify.scenario import attach
    from charter.compiler.verify.search import _trace_note, replayed_status

    class NeverSeen(Forbidden):
        def observe(self, rt, before, outcome):
            return "not observed"

    policy = compile_text(P.REFUND.format(name="r", guard=""))
    cex = {"fails": "x", "scenario": {}}
    attach(policy, "refund", cex, Options(), lambda m: z3.And(m.applied),
           NeverSeen(handler="refund", describe="d"))
    assert cex["replayed"] is False and "internal error" in cex["internal_error"]
    assert replayed_status("refuted", cex) == "unknown"
    assert "charter_test" not in cex["scenario"]
    assert "internal error" in _trace_note(cex).lower()
