"""The worked example (examples/gig_market) settles to balances worked out by hand.

Fee 5%, rep_per_grade 10, amounts in Credit minor units (cents).  The
arithmetic, event by event (only events that move value are listed):

  e08 deposit ann 500.00            ann 50000
  e09 deposit bob 200.00            bob 20000
  e13 ann posts t1, budget 20000    ann 30000, escrow t1 20000
  e14 bob posts t2, budget 15000    bob  5000, escrow t2 15000 (deadline 310+3600 = 3910)
  e19 cat's bid 15000 is best on t1 (bob bid 18000 before)
  e24 ann completes t1, quality 5:  fee floor(15000 * 5%) = 750
                                    cat 15000 - 750 = 14250, commons 750
                                    refund 20000 - 15000 = 5000 -> ann 35000
                                    cat Reputation 5 * 10 = 50
  e27 at t=5000 t2's deadline (3910) has passed: refund 15000 -> bob 20000;
      then e27 itself is rejected (task closed)
  e29 deposit dan 10.00             dan 1000
  e30 dan posts t3, budget 1000     dan 0
  e32 dan completes t3 (bob, 999), quality 2:
                                    fee floor(999 * 5%) = floor(49.95) = 49
                                    bob 20000 + 950 = 20950, commons 799, refund 1 -> dan 1
                                    bob Reputation 20
  e33 bob posts t4, budget 7000     bob 13950
  e35 bob completes t4 (ann, 7000), quality 1:
                                    fee 350, ann 35000 + 6650 = 41650, commons 1149, refund 0
                                    ann Reputation 10
  e37 epoch end: split 1149 among ann, bob, cat, dan by Reputation 10, 20, 50, 0 (total 80)
        exact: 143.625, 287.25, 718.125, 0 -> floors 143, 287, 718, 0 (sum 1148)
        remainders (x80): 50, 20, 10, 0 -> the 1 left goes to ann
        ann 41794, bob 14237, cat 14968, commons 0
      decay 10%: ann 10 - 1 = 9, bob 20 - 2 = 18, cat 50 - 5 = 45
  e39 cat withdraws 49.68           cat 10000, Credit supply 71000 - 4968 = 66032
  e41 ann posts t5, budget 2000     ann 39794
  e44 tick at 100000: t5's deadline (6500 + 86400 = 92900) passed -> refund 2000, ann 41794
  e53 epoch end: commons is 0 (nothing split); decay: ann floor(0.9) = 0 -> 9,
      bob floor(1.8) = 1 -> 17, cat floor(4.5) = 4 -> 41; Reputation supply 80 - 8 - 5 = 67
"""

from __future__ import annotations

import json

from charter.runtime.api import open_runtime, replay

from pathlib import Path

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "gig_market"

HAND_WORKED = {
    "party:ann:Credit": 50000 - 20000 + 5000 + 6650 + 144 - 2000 + 2000,  # 41794
    "party:bob:Credit": 20000 - 15000 + 15000 + 950 - 7000 + 287,  # 14237
    "party:cat:Credit": 14250 + 718 - 4968,  # 10000
    "party:dan:Credit": 1000 - 1000 + 1,  # 1
    "party:ann:Reputation": 10 - 1 - 0,
    "party:bob:Reputation": 20 - 2 - 1,
    "party:cat:Reputation": 50 - 5 - 4,
    "supply:Credit": -(50000 + 20000 + 1000 - 4968),
    "supply:Reputation": -(50 + 20 + 10 - 8 - 5),
}

# event ids the example is meant to reject, with the reason code
EXPECTED_REJECTIONS = {
    "e05": "require",
    "e07": "unauthorised",
    "e10": "unauthorised",
    "e11": "bad_argument",
    "e12": "require",
    "e15": "insufficient_funds",
    "e16": "require",
    "e18": "require",
    "e20": "require",
    "e21": "require",
    "e23": "unauthorised",
    "e25": "require",
    "e26": "missing_record",
    "e27": "require",
    "e28": "insufficient_funds",
    "e36": "unauthorised",
    "e38": "insufficient_funds",
    "e40": "unauthorised",
    "e45": "require",
    "e46": "unknown_event",
    "e47": "missing_argument",
    "e48": "unknown_argument",
    "e49": "bad_argument",
    "e50": "out_of_range",
    "e51": "time_regressed",
}


def _settle(policy, events, store=":memory:"):
    rt = open_runtime(policy, store)
    outcomes = [rt.submit(e) for e in events]
    rt.flush()
    return rt, outcomes


def test_example_settles_to_hand_worked_balances(gig_policy, gig_events):
    rt, _ = _settle(gig_policy, gig_events)
    assert rt.balances() == HAND_WORKED
    # every escrow is empty and the commons was paid out
    assert rt.balance("commons") == 0
    assert all(v == 0 for k, v in rt.balances(include_zero=True).items() if k.startswith("escrow:"))


def test_expected_balances_file_matches_hand_worked():
    assert json.loads((EXAMPLE / "expected_balances.json").read_text()) == HAND_WORKED


def test_example_rejects_exactly_the_bad_events(gig_policy, gig_events):
    _, outcomes = _settle(gig_policy, gig_events)
    rejected = {o.event_id: o.code for o in outcomes if not o.applied}
    assert rejected == EXPECTED_REJECTIONS
    # e13 is sent twice: the second time it is the same event, an idempotent no-op
    duplicates = [o for o in outcomes if o.applied and o.duplicate]
    assert [d.event_id for d in duplicates] == ["e13"]
    first = next(o for o in outcomes if o.event_id == "e13" and not o.duplicate)
    assert duplicates[0]._replace(duplicate=False) == first
    # a policy rejection points at its statement in the source
    e16 = next(o for o in outcomes if o.event_id == "e16")
    assert e16.message == "task exists" and e16.span is not None and e16.span.line > 0


def test_deadline_refund_fires_before_the_event_that_passes_it(gig_policy, gig_events):
    rt, outcomes = _settle(gig_policy, gig_events)
    hist = rt.history("escrow:Task:t2:Credit")
    # t2: escrowed by e14; its deadline (t=3910) has passed when e27 (t=5000) comes, but
    # e27 and e28 are rejected, and a rejected event fires nothing: the refund is part of
    # the next accepted event, e29, recorded in its entry's timers
    assert [h["event"]["id"] for h in hist] == ["e14", "e29"]
    assert not next(o for o in outcomes if o.event_id == "e27").applied
    refund = hist[1]["postings"][0]
    assert refund == {
        "from": "escrow:Task:t2:Credit",
        "to": "party:bob:Credit",
        "asset": "Credit",
        "amount": 15000,
        "kind": "refund",
    }
    assert hist[1]["timers"][0]["handler"] == "Task.deadline.passes"


def test_example_on_sqlite_matches_memory_and_replays(gig_policy, gig_events, tmp_path):
    mem, _ = _settle(gig_policy, gig_events)
    db = tmp_path / "gig.sqlite"
    sq, _ = _settle(gig_policy, gig_events, str(db))
    assert sq.journal_hash == mem.journal_hash
    assert sq.state_rows() == mem.state_rows()
    sq.close()
    reopened = open_runtime(None, str(db))
    assert reopened.balances() == HAND_WORKED
    assert reopened.audit().ok
    rep = replay(str(db))
    assert rep.ok and rep.head == mem.journal_hash


def test_in_language_tests_of_the_example_pass(gig_policy):
    from charter.runtime.api import run_tests

    results = run_tests(gig_policy)
    assert len(results) == 2
    assert all(r.passed for r in results), [r.failures for r in results]
