"""The verifier on asset families: every member is encoded as its own asset (accounts indexed
by holder and member through an injective function), so a guard on the member moved proves
the move and a guard on another member does not; mints are proved within each member's cap;
conservation is proved per member.  Each buggy twin is a finding whose counterexample the
runtime replays (the scenario names the member, `Token["k1"]`)."""

from __future__ import annotations

import pytest

from verify_helpers import verify_text

POLICY = """policy vault version "1"
asset Token[symbol]: token, decimals 2, mintable, cap 1000 Token
role Member
param gateway: party = @gateway
pool vault of Token
on join() by p: party {{
    require not (p is Member) else "already a member"
    admit p as Member
}}
on issue(sym: text, to: party, amount: Token[sym]) by gateway {{
    require amount > 0 Token[sym] else "amount must be positive"
    require {cap_guard} else "above the cap"
    mint amount to to
}}
on deposit(sym: text, amount: Token[sym]) by m: Member {{
    require amount > 0 Token[sym] else "amount must be positive"
    require {funds_guard} else "not enough"
    transfer amount from m to vault
}}
on pay_out(sym: text, amount: Token[sym]) by gateway {{
    require amount >= 0 Token[sym] and balance(vault, Token[sym]) >= amount else "vault short"
    split amount from vault among p in Member by 1
}}
"""

GOOD = {"cap_guard": "supply(Token[sym]) + amount <= 1000 Token[sym]",
        "funds_guard": "balance(m, Token[sym]) >= amount"}


def _verify(**over):
    return verify_text(POLICY.format(**{**GOOD, **over}), bound=2)[1]


def test_correct_twin_is_proved() -> None:
    results = _verify()
    for name in ("issue.supply_cap", "issue.conservation", "deposit.no_overdraft",
                 "deposit.conservation", "pay_out.no_overdraft", "pay_out.conservation"):
        assert results[name].status == "proved", (name, results[name].message)
    assert not [r for r in results.values() if r.status in ("refuted", "guard_missing",
                                                              "unknown")], \
        [(n, r.status, r.message) for n, r in results.items()
         if r.status in ("refuted", "guard_missing", "unknown")]


@pytest.mark.parametrize("over,check", [
    # a guard on another member says nothing of the member moved
    ({"funds_guard": 'balance(m, Token["USDC"]) >= 1 Token["USDC"]'}, "deposit.no_overdraft"),
    # one unit too generous
    ({"funds_guard": "balance(m, Token[sym]) + 0.01 Token[sym] >= amount"},
     "deposit.no_overdraft"),
    # the cap is the member's: the guard must read the member's supply
    ({"cap_guard": "supply(Token[sym]) + amount <= 1000.01 Token[sym]"}, "issue.supply_cap"),
], ids=["guard on another member", "guard too generous", "cap guard too generous"])
def test_buggy_twin_is_found_and_replays(over: dict, check: str) -> None:
    results = _verify(**over)
    r = results[check]
    assert r.status == "guard_missing", (r.status, r.message)
    cex = r.counterexample
    assert cex and cex.get("replayed"), r.message
    assert 'Token["' in str(cex.get("pre_state")), cex.get("pre_state")
