"""The policy-wide checks (authorisation, once only, issuance, nothing stranded,
postconditions): for each, a buggy twin that is caught and a correct twin that is proved,
plus what each one shows a reviewer (the who-can-move-whose-money table, the mint sites)."""

from __future__ import annotations

import json

import pytest

import verify_policies as P
from replay_check import emitted_test_failures
from verify_helpers import compile_text, verify_text
from charter.compiler import verify as V
from charter.compiler.verify.catalogue import BY_NAME, POLICY_CHECKS

ANYONE_DECL = "property cancels_are_open: anyone may call cancel"

# (id, policy text, result name, expected status)
CASES = [
    ("cancel by the poster", P.AUTHORITY.format(name="a", by="Task(id).poster", extra=""),
     "cancel.authority", "proved"),
    ("cancel by anyone", P.AUTHORITY.format(name="a", by="p: party", extra=""),
     "cancel.authority", "refuted"),
    ("cancel by any member of a role anyone joins",
     P.AUTHORITY.format(name="a", by="a: Agent", extra=""), "cancel.authority", "refuted"),
    ("cancel by anyone who must be the poster",
     P.AUTHORITY.format(name="a", by="p: party", extra="").replace(
         'require t.open else "already cancelled"',
         'require t.open and p == t.poster else "not yours"'),
     "cancel.authority", "proved"),
    ("cancel by anyone, declared",
     P.AUTHORITY.format(name="a", by="p: party", extra=ANYONE_DECL),
     "cancel.authority", "proved"),
    ("vouch by a member", P.ADMISSION.format(name="v", by="m: Member"), "vouch.admission",
     "proved"),
    ("vouch by anyone", P.ADMISSION.format(name="v", by="m: party"), "vouch.admission",
     "refuted"),
    ("vouch by anyone for themselves only",
     P.ADMISSION.format(name="v", by="m: party").replace(
         'require not (newcomer is Member) else "already a member"',
         'require not (newcomer is Member) and newcomer == m else "yourself only"'),
     "vouch.admission", "proved"),
    ("ruled once", P.ONCE.format(name="o", guard=P.ONCE_GUARD), "rule.once", "proved"),
    ("ruled twice", P.ONCE.format(name="o", guard=""), "rule.once", "refuted"),
    ("reward at a rate", P.ISSUANCE.format(name="i", cap="", mint=P.ISSUANCE_RATE),
     "issuance.Rep", "proved"),
    ("reward scaled by a counter, uncapped",
     P.ISSUANCE.format(name="i", cap="", mint=P.ISSUANCE_UNBOUNDED), "issuance.Rep", "warning"),
    ("reward scaled by a counter, capped",
     P.ISSUANCE.format(name="i", cap=", cap 1000", mint=P.ISSUANCE_CAPPED.format()),
     "issuance.Rep", "proved"),
    ("a bond burned, then minted back", P.BOND.format(name="b", burn=P.BOND_BURN),
     "issuance.Rep", "proved"),
    ("a bond minted back that was never burned", P.BOND.format(name="b", burn=""),
     "issuance.Rep", "warning"),
    ("gateway deposits", P.ISSUANCE.format(name="i", cap="", mint=P.ISSUANCE_RATE),
     "issuance.Credit", "proved"),
    ("dissolve after paying out", P.DISSOLVE.format(name="d", payout=P.DISSOLVE_PAYOUT),
     "wind_up.stranded", "proved"),
    ("dissolve with money in the pool", P.DISSOLVE.format(name="d", payout=""),
     "wind_up.stranded", "refuted"),
    ("close with the refund", P.CLOSE.format(name="c", refund=P.CLOSE_REFUND),
     "close.stranded.Task", "proved"),
    ("close without the refund", P.CLOSE.format(name="c", refund=""),
     "close.stranded.Task", "refuted"),
    ("pay within the price", P.ENSURES.format(name="e", guard=P.ENSURES_GUARD),
     "pay.ensures.1", "proved"),
    ("old() of a field", P.ENSURES.format(name="e", guard=P.ENSURES_GUARD),
     "pay.ensures.2", "proved"),
    ("old() of a balance", P.ENSURES.format(name="e", guard=P.ENSURES_GUARD),
     "pay.ensures.3", "proved"),
    ("pay beyond the price", P.ENSURES.format(name="e", guard=""), "pay.ensures.1", "refuted"),
]


@pytest.mark.parametrize("text,name,status", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_twin(text: str, name: str, status: str) -> None:
    _policy, results = verify_text(text)
    assert name in results, sorted(results)
    r = results[name]
    assert r.status == status, (r.status, r.message)
    if status == "refuted":
        # every refutation is a scenario from genesis the runtime replayed, whose test block
        # asserts the violated property: it fails on the policy as written
        cex = r.counterexample
        assert cex and cex.get("replayed"), cex and (cex.get("reach_note"), cex.get("internal_error"))
        passed, failures = emitted_test_failures(text, cex["scenario"]["charter_test"])
        assert not passed and failures, cex["scenario"]["charter_test"]
        assert not any("setup failed" in f for f in failures), failures


def test_every_policy_check_has_twins_here() -> None:
    kinds = set()
    for _, text, name, status in CASES:
        _p, results = verify_text(text)
        if status != "proved":
            kinds.add(results[name].kind)
    assert kinds == {c.name for c in POLICY_CHECKS}
    for c in POLICY_CHECKS:
        assert c.twin and hasattr(P, c.twin), c


def test_strict_fails_on_the_issuance_warning_only() -> None:
    _p, results = verify_text(P.ISSUANCE.format(name="i", cap="", mint=P.ISSUANCE_UNBOUNDED))
    rs = list(results.values())
    assert V.exit_code(rs) == 0
    assert V.exit_code(rs, strict=True) == 1
    assert "`rate` line" in results["issuance.Rep"].message  # it lists the mint site


def test_who_can_move_whose_money_table() -> None:
    text = P.AUTHORITY.format(name="a", by="p: party", extra="")
    policy, results = verify_text(text)
    rs = list(results.values())
    rows = json.loads(V.render_json(policy, rs, V.Options()))["who_can_move_whose_money"]
    by_handler = {r["handler"]: r for r in rows}
    assert by_handler["post"]["verdict"].startswith("owner")
    assert by_handler["cancel"]["who"] == "anyone"
    assert by_handler["cancel"]["verdict"].startswith("FINDING")
    text_report = V.render_text(policy, rs, V.Options())
    assert "who can move whose money" in text_report
    assert "FINDING" in text_report


def test_postcondition_counterexample_names_the_clause() -> None:
    _p, results = verify_text(P.ENSURES.format(name="e", guard=""))
    r = results["pay.ensures.1"]
    assert "at most the agreed price" in r.message
    assert "Job(id).paid <= Job(id).price" in r.counterexample["fails"]


def test_catalogue_describes_every_policy_check() -> None:
    for c in POLICY_CHECKS:
        assert BY_NAME[c.name] is c and c.proves and c.counterexample and c.runner


def test_ensures_and_anyone_survive_the_ir_round_trip() -> None:
    from charter.compiler import ir

    policy = compile_text(P.ENSURES.format(name="e", guard=P.ENSURES_GUARD))
    again = ir.from_data(json.loads(ir.to_json(policy)))
    assert again.handler("pay").ensures == policy.handler("pay").ensures
    olds = [e for e in again.handler("pay").ensures if "old(" in e.text]
    assert len(olds) == 2
    decl = compile_text(P.AUTHORITY.format(name="a", by="p: party", extra=ANYONE_DECL))
    assert [p for p in decl.properties if isinstance(p, ir.AnyoneProperty)][0].handler == "cancel"
