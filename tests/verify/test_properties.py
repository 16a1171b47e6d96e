"""Every property kind: a correct policy is proved, its buggy twin refuted with the expected
counterexample (table-driven)."""

from __future__ import annotations

from fractions import Fraction

import pytest

import verify_policies as P
from verify_helpers import verify_text

SPLIT_PROPS = """property fair: split in epoch is proportional within 0.01 Credit
property sym: split in epoch is symmetric
property mono: split in epoch is monotone
property capped: split in epoch gives at most 50 Credit
property floored: split in epoch gives at least 1 Credit"""


def split(method: str, opts: str = "", weight: str = "balance(a, Credit)") -> str:
    return P.SPLIT.format(name="s", weight=weight, method=method, opts=opts, props=SPLIT_PROPS)


def _fee_over_100(cex: dict) -> bool:
    num = cex["params"]["fee"]
    return Fraction(num.rstrip("%")) > 100


CASES = [
    # (id, policy text, result name, expected status, check on the counterexample)
    (
        "fee within 10% proved",
        P.FEE.format(name="f", hi="10%"),
        "complete.non_negative",
        "proved",
        None,
    ),
    (
        "fee up to 150% refuted",
        P.FEE.format(name="f", hi="150%"),
        "complete.non_negative",
        "refuted",
        _fee_over_100,
    ),
    (
        "refund guarded proved",
        P.REFUND.format(name="r", guard=P.REFUND_GUARD),
        "refund.escrow_bound",
        "proved",
        None,
    ),
    (
        "refund twice refuted",
        P.REFUND.format(name="r", guard=""),
        "refund.escrow_bound",
        "refuted",
        lambda cex: any(v.get("exists") for v in cex["records"].values()),
    ),
    ("largest remainder proportional", split("largest_remainder"), "fair", "proved", None),
    (
        "sequential floor not proportional",
        split("sequential_floor"),
        "fair",
        "refuted",
        lambda cex: len([s for s in cex["shares"] if s]) >= 1,
    ),
    ("largest remainder symmetric", split("largest_remainder"), "sym", "proved", None),
    (
        "sequential floor not symmetric",
        split("sequential_floor"),
        "sym",
        "refuted",
        lambda cex: (
            max(cex["shares"]) - min(s for s, w in zip(cex["shares"], cex["weights"]) if w >= 0) > 1
        ),
    ),
    ("largest remainder monotone", split("largest_remainder"), "mono", "proved", None),
    ("sequential floor not monotone", split("sequential_floor"), "mono", "refuted", None),
    (
        "cap declared on split proved",
        split("largest_remainder", " at most 50 Credit"),
        "capped",
        "proved",
        None,
    ),
    (
        "cap missing refuted",
        split("largest_remainder"),
        "capped",
        "refuted",
        lambda cex: max(cex["shares"]) > 5000,
    ),
    (
        "floor declared on split proved",
        split("largest_remainder", " at least 1 Credit"),
        "floored",
        "proved",
        None,
    ),
    (
        "floor missing refuted",
        split("largest_remainder"),
        "floored",
        "refuted",
        lambda cex: min(s for s, w in zip(cex["shares"], cex["weights"]) if w >= 0) < 100,
    ),
    (
        "rounding exact for largest remainder",
        split("largest_remainder"),
        "epoch.rounding",
        "proved",
        None,
    ),
    ("rounding exact for dhondt", split("dhondt", weight="1"), "epoch.rounding", "proved", None),
    (
        "budget bounded by min proved",
        P.BUDGET.format(name="b", pay="min(amount, 10 Credit)"),
        "claim_small",
        "proved",
        None,
    ),
    (
        "budget unbounded refuted",
        P.BUDGET.format(name="b", pay="amount"),
        "claim_small",
        "refuted",
        lambda cex: cex["paid_from_pool"] > 1000,
    ),
    (
        "invariant preserved",
        P.INVARIANT.format(name="i", body="refund rest of Job(id) to j.client"),
        "closed_empty",
        "proved",
        None,
    ),
    (
        "invariant broken",
        P.INVARIANT.format(name="i", body=""),
        "closed_empty",
        "refuted",
        lambda cex: cex["handler"] == "close",
    ),
    (
        "aggregate invariant with guard",
        P.TOTAL_CAP.format(name="c", guard=P.TOTAL_CAP_GUARD),
        "capped_total",
        "proved",
        None,
    ),
    (
        "aggregate invariant broken by a new record",
        P.TOTAL_CAP.format(name="c", guard=""),
        "capped_total",
        "refuted",
        lambda cex: cex["handler"] == "pledge",
    ),
    (
        "invariant over a record nobody creates is vacuous",
        P.NEVER_CREATED.format(name="g"),
        "ghosts_small",
        "vacuous",
        None,
    ),
    (
        "delete after refund is clean",
        P.DELETE.format(name="d", body="refund rest of Job(id) to j.client"),
        "close.delete_empty",
        "proved",
        None,
    ),
    (
        "delete with money left is a guard finding",
        P.DELETE.format(name="d", body=""),
        "close.delete_empty",
        "guard_missing",
        lambda cex: cex["amount"] > 0,
    ),
    (
        "guarded escrow has no overdraft",
        P.FEE.format(name="f", hi="10%"),
        "post.no_overdraft",
        "proved",
        None,
    ),
    (
        "unguarded escrow: guard missing",
        P.FEE.format(name="f", hi="10%").replace(
            'require balance(poster, Credit) >= budget else "insufficient funds"', ""
        ),
        "post.no_overdraft",
        "guard_missing",
        lambda cex: cex["account"].startswith("balance(@"),
    ),
    (
        "satisfiable requires",
        P.VACUOUS.format(name="v", lo="10 Credit"),
        "odd.applicable",
        "proved",
        None,
    ),
    (
        "contradictory requires are vacuous",
        P.VACUOUS.format(name="v", lo="1 Credit"),
        "odd.applicable",
        "vacuous",
        None,
    ),
    (
        "no green check under vacuity",
        P.VACUOUS.format(name="v", lo="1 Credit"),
        "odd.no_overdraft",
        "vacuous",
        None,
    ),
    (
        "every branch reachable",
        P.BRANCH.format(name="b", limit="5 Credit"),
        "pay.reachability",
        "proved",
        None,
    ),
    (
        "dead branch reported",
        P.BRANCH.format(name="b", limit="20 Credit"),
        "pay.reachability",
        "vacuous",
        None,
    ),
    (
        "constant weights make monotone vacuous",
        split("largest_remainder", weight="1"),
        "mono",
        "vacuous",
        None,
    ),
]


@pytest.mark.parametrize(
    "text,name,status,check", [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_property(text, name, status, check):
    _, results = verify_text(text)
    r = results[name]
    assert r.status == status, (r.status, r.message)
    if status == "refuted" or status == "guard_missing":
        cex = r.counterexample
        assert cex is not None and cex["handler"] == r.handler or r.kind == "invariant"
        sc = cex["scenario"]
        if cex.get("replayed"):
            # a scenario from genesis that the runtime has replayed: events, JSONL and a test
            assert sc["from"] == "genesis" and sc["replay"]["ok"]
            assert sc["events_jsonl"].strip() and "when " in sc["charter_test"]
        elif r.kind == "rounding":
            # no runtime-side twin: no scenario is claimed
            assert "no replay from genesis" in cex["reach_note"] and "charter_test" not in sc
        else:
            # no scenario is claimed: the note says so, and nothing unreplayed is offered
            assert "not reached from genesis" in cex["reach_note"]
            assert "charter_test" not in sc and "events_jsonl" not in sc
        if check is not None:
            assert check(cex), cex
    else:
        assert r.counterexample is None


def test_bound_is_reported():
    _, results = verify_text(split("largest_remainder"), bound=2)
    r = results["fair"]
    assert r.status == "proved" and r.bound == 2 and r.bounded
    assert "up to 2" in r.message
