"""Cross-checks with the runtime: a refuted property's counterexample, replayed through
``charter.runtime``, shows the violation; the correct twin behaves on random inputs."""

from __future__ import annotations

from fractions import Fraction

from hypothesis import given, settings, strategies as st

import verify_policies as P
from verify_helpers import compile_text, verify_text
from charter.runtime.engine import Runtime
from charter.runtime.ledger import party_account


def _fraction(shown: str) -> Fraction:
    return Fraction(shown.rstrip("%")) / 100


def _minor(shown: str) -> int:
    num, _asset = shown.split(" ")
    return int(Fraction(num) * 100)  # Credit has 2 decimals in these policies


def _fund(rt: Runtime, party: str, amount: int) -> None:
    def setup(s):
        s.set_role("Agent", party, {})
        if amount:
            s.post("supply:Credit", party_account(party, "Credit"), "Credit", amount, "given")

    rt.genesis_apply(setup)


def test_fee_counterexample_replays_as_negative_payout():
    policy, results = verify_text(P.FEE.format(name="f", hi="150%"))
    cex = results["complete.non_negative"].counterexample
    ((label, task),) = [(k, v) for k, v in cex["records"].items() if v.get("exists")]
    key = label[len('Task("') : -2]
    budget = _minor(task["budget"])
    poster = task["poster"].lstrip("@")
    rt = Runtime(policy)
    rt.set_param("fee", _fraction(cex["params"]["fee"]))
    _fund(rt, poster, budget)
    ok = rt.submit(
        {
            "id": "e1",
            "type": "post",
            "submitter": poster,
            "time": 1,
            "args": {"id": key, "budget": budget},
        }
    )
    assert ok.applied, ok
    out = rt.submit(
        {"id": "e2", "type": "complete", "submitter": poster, "time": 2, "args": {"id": key}}
    )
    # every require holds, yet the settlement cannot happen: the payout is negative
    assert not out.applied
    assert "negative" in (out.code + out.message).lower(), out


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 10), st.integers(1, 10**6))
def test_fee_within_range_never_pays_negative(fee_pct, budget):
    policy = compile_text(P.FEE.format(name="f", hi="10%"))
    rt = Runtime(policy)
    rt.set_param("fee", Fraction(fee_pct, 100))
    _fund(rt, "alice", budget)
    assert rt.submit(
        {
            "id": "e1",
            "type": "post",
            "submitter": "alice",
            "time": 1,
            "args": {"id": "t", "budget": budget},
        }
    ).applied
    out = rt.submit(
        {"id": "e2", "type": "complete", "submitter": "alice", "time": 2, "args": {"id": "t"}}
    )
    assert out.applied, out
    assert all(p.amount >= 0 for p in out.postings)


def test_refund_twice_counterexample_replays():
    text = P.REFUND.format(name="r", guard="")
    policy, results = verify_text(text)
    assert results["refund.escrow_bound"].status == "refuted"
    rt = Runtime(policy)
    _fund(rt, "alice", 500)
    assert rt.submit(
        {
            "id": "e1",
            "type": "post",
            "submitter": "alice",
            "time": 1,
            "args": {"id": "t", "budget": 500},
        }
    ).applied
    assert rt.submit(
        {"id": "e2", "type": "refund", "submitter": "alice", "time": 2, "args": {"id": "t"}}
    ).applied
    second = rt.submit(
        {"id": "e3", "type": "refund", "submitter": "alice", "time": 3, "args": {"id": "t"}}
    )
    # the escrow is asked for its amount a second time: only the runtime's funds check stops it
    assert not second.applied and "already" not in second.message
    # the guarded twin stops it with its own require
    fixed = compile_text(P.REFUND.format(name="r", guard=P.REFUND_GUARD))
    rt = Runtime(fixed)
    _fund(rt, "alice", 500)
    rt.submit(
        {
            "id": "e1",
            "type": "post",
            "submitter": "alice",
            "time": 1,
            "args": {"id": "t", "budget": 500},
        }
    )
    rt.submit({"id": "e2", "type": "refund", "submitter": "alice", "time": 2, "args": {"id": "t"}})
    again = rt.submit(
        {"id": "e3", "type": "refund", "submitter": "alice", "time": 3, "args": {"id": "t"}}
    )
    assert not again.applied and "already refunded" in again.message


def test_symmetry_counterexample_replays():
    from test_properties import split

    policy, results = verify_text(split("sequential_floor"))
    r = results["sym"]
    assert r.status == "refuted"
    cex = r.counterexample
    weights, amount = cex["weights"], cex["split_amount"]
    members = [cex["collections"][f"Agent[{i}]"] for i in range(len(weights)) if weights[i] >= 0]
    rt = Runtime(policy)
    for who, w in zip(members, [w for w in weights if w >= 0]):
        _fund(rt, who, w)  # the weight is the member's balance
    if amount:
        rt.genesis_apply(
            lambda s: s.post("supply:Credit", "pool:commons", "Credit", amount, "given")
        )
    out = rt.submit(
        {"id": "e", "type": "epoch", "submitter": "clock", "time": 2, "args": {"amount": amount}}
    )
    assert out.applied, out
    got = {
        who: rt.balance(party_account(who, "Credit")) - w
        for who, w in zip(members, [w for w in weights if w >= 0])
    }
    ws = dict(zip(members, [w for w in weights if w >= 0]))
    # two members with equal weight whose shares differ by more than one unit
    assert any(ws[a] == ws[b] and abs(got[a] - got[b]) > 1 for a in members for b in members), (
        got,
        ws,
    )


def _replay_as_charter_test(text: str, name: str) -> tuple:
    _, results = verify_text(text)
    r = results[name]
    assert r.status == "refuted", (r.status, r.message)
    sc = r.counterexample["scenario"]
    assert sc["replayable_without_history"], sc["needs_records"]
    from charter.runtime.testing import run_tests

    policy = compile_text(text + "\n" + sc["charter_test"] + "\n")
    return run_tests(policy), sc


import pytest  # noqa: E402


@pytest.mark.parametrize(
    "prop,method",
    [
        ("sym", "sequential_floor"),
        ("mono", "sequential_floor"),
        ("fair", "sequential_floor"),
        ("capped", "largest_remainder"),
        ("floored", "largest_remainder"),
    ],
)
def test_split_counterexample_is_a_failing_charter_test(prop, method):
    """The generated `test` block replays from genesis on the runtime and asserts the split
    property on the shares paid, so it fails - on that assertion, not in setup."""
    from test_properties import split

    (res,), sc = _replay_as_charter_test(split(method), prop)
    assert sc["from"] == "genesis" and sc["replay"]["ok"], sc["replay"]
    assert not res.passed, sc["charter_test"]
    assert all(" is false" in f for f in res.failures), (res.failures, sc["charter_test"])


def test_budget_counterexample_is_a_failing_charter_test():
    """The emitted test asserts the budget (the pool keeps at least what it held minus the
    limit), so it fails on the buggy policy - on that assertion, not in setup."""
    (res,), sc = _replay_as_charter_test(P.BUDGET.format(name="b", pay="amount"), "claim_small")
    assert not res.passed, sc["charter_test"]
    assert all("expect balance(commons) >=" in f for f in res.failures), res.failures
