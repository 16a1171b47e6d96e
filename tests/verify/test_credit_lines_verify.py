"""The verifier on credit lines: no-overdraft becomes "no balance below its declared limit".
A handler whose guard keeps every balance at or above the line is proved; its twin with the
guard one unit too generous is a guard finding whose counterexample the runtime replays."""

from __future__ import annotations

import pytest

from verify_helpers import verify_text

POLICY = """policy mutual_credit version "1"
asset Hours: token, decimals 2, credit 10 Hours, soft_credit 5 Hours
role Member
on join() by p: party {{
    require not (p is Member) else "already a member"
    admit p as Member
}}
on pay(to: Member, hours: Hours) by p: Member {{
    require hours > 0 Hours else "hours must be positive"
    require balance(p, Hours) - hours >= {floor} else "beyond the credit line"
    transfer hours from p to to
}}
property above_the_line: always count(m for m in Member where balance(m, Hours) < -10 Hours) == 0
"""


@pytest.mark.parametrize(
    "floor,status",
    [("-10 Hours", "proved"), ("-10.01 Hours", "guard_missing")],
    ids=["guard at the line", "guard one unit too generous"],
)
def test_credit_line_guard(floor: str, status: str) -> None:
    _, results = verify_text(POLICY.format(floor=floor), bound=2)
    r = results["pay.no_overdraft"]
    assert r.status == status, (r.status, r.message)
    if status == "guard_missing":
        cex = r.counterexample
        assert cex and cex.get("replayed"), r.message


def test_balances_never_below_the_line() -> None:
    _, results = verify_text(POLICY.format(floor="-10 Hours"), bound=2)
    assert results["above_the_line"].status == "proved", results["above_the_line"].message


def test_without_a_credit_line_the_guard_is_an_overdraft() -> None:
    text = POLICY.format(floor="-10 Hours").replace(", credit 10 Hours, soft_credit 5 Hours", "")
    _, results = verify_text(text, bound=2)
    assert results["pay.no_overdraft"].status == "guard_missing"


PARAM_POLICY = """policy param_credit version "1"
param limit: Hours = 10 Hours within 0 Hours..100 Hours
asset Hours: token, decimals 2, credit limit
role Member
on join() by p: party {{
    require not (p is Member) else "already a member"
    admit p as Member
}}
on pay(to: Member, hours: Hours) by p: Member {{
    require hours > 0 Hours else "hours must be positive"
    require balance(p, Hours) - hours >= {floor} else "beyond the credit line"
    transfer hours from p to to
}}
property above_the_line: always count(m for m in Member where balance(m, Hours) < -limit) == 0
"""


@pytest.mark.parametrize(
    "floor,status",
    [("-limit", "proved"), ("-limit - 0.01 Hours", "guard_missing")],
    ids=["guard at the parameter's line", "guard one unit too generous"],
)
def test_a_parameter_sets_the_line(floor: str, status: str) -> None:
    _, results = verify_text(PARAM_POLICY.format(floor=floor), bound=2)
    r = results["pay.no_overdraft"]
    assert r.status == status, (r.status, r.message)
    if status == "guard_missing":
        assert r.counterexample and r.counterexample.get("replayed"), r.message
    else:
        assert results["above_the_line"].status == "proved", results["above_the_line"].message


MEMBER_POLICY = """policy member_credit version "1"
asset Hours: token, decimals 2, credit Member.limit
role Member {{ limit: Hours within 0 Hours..50 Hours }}
param steward: party = @steward
on join(p: party, limit: Hours) by steward {{
    require not (p is Member) else "already a member"
    require limit >= 0 Hours and limit <= 50 Hours else "0 to 50 hours"
    admit p as Member {{ limit = limit }}
}}
on pay(to: Member, hours: Hours) by p: Member {{
    require hours > 0 Hours else "hours must be positive"
    require balance(p, Hours) - hours >= {floor} else "beyond your credit line"
    transfer hours from p to to
}}
"""


@pytest.mark.parametrize(
    "floor,status",
    [("-p.limit", "proved"), ("-p.limit - 0.01 Hours", "guard_missing")],
    ids=["guard at the member's own line", "guard one unit too generous"],
)
def test_each_member_sets_its_line(floor: str, status: str) -> None:
    _, results = verify_text(MEMBER_POLICY.format(floor=floor), bound=2)
    r = results["pay.no_overdraft"]
    assert r.status == status, (r.status, r.message)
    assert results["pay.conservation"].status == "proved"
    if status == "guard_missing":
        assert r.counterexample and r.counterexample.get("replayed"), r.message
