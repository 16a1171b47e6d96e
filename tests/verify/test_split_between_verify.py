"""The verifier on `split ... between { ACC: W }` (pools, treasuries, escrows and parties as
split recipients): each slot pays its own account, so conservation and no-overdraft are
proved per account; a split not covered by its source is a guard finding that replays."""

from __future__ import annotations

import pytest

from verify_helpers import verify_text

POLICY = """policy splitter version "1"
asset Credit: token, decimals 2, mintable
role Member
param gateway: party = @gateway
pool revenue of Credit
pool ops of Credit
treasury grants of Credit
record Fund holds Credit {{ steward: Member }}
on join() by p: party {{
    require not (p is Member) else "already a member"
    admit p as Member
}}
on open_fund(id: text) by p: Member {{
    require not exists Fund(id) else "fund id taken"
    create Fund(id) {{ steward = p }}
}}
on earn(amount: Credit) by gateway {{
    require amount > 0 Credit and amount <= 1000 Credit else "1 to 1000 Credit"
    mint amount to revenue
}}
on pay_out(amount: Credit, fund: Fund, founder: Member) by gateway {{
    require amount >= 0 Credit else "amount must not be negative"
    {guard}
    split amount from revenue between {{ ops: 50, grants: 30, Fund(fund): 15, founder: 5 }}
}}
property ops_solvent: always balance(ops) >= 0 Credit
"""


@pytest.mark.parametrize("guard,status", [
    ('require balance(revenue) >= amount else "revenue short"', "proved"),
    ('require balance(revenue) + 0.01 Credit >= amount else "revenue short"', "guard_missing"),
], ids=["covered", "one unit short"])
def test_split_between_accounts(guard: str, status: str) -> None:
    _, results = verify_text(POLICY.format(guard=guard), bound=2)
    r = results["pay_out.no_overdraft"]
    assert r.status == status, (r.status, r.message)
    assert results["pay_out.conservation"].status == "proved"
    assert results["ops_solvent"].status == "proved", results["ops_solvent"].message
    if status == "guard_missing":
        cex = r.counterexample
        assert cex and cex.get("replayed"), r.message
        assert "balance(revenue)" in str(cex.get("pre_state")), cex.get("pre_state")
