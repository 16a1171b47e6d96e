"""Issue 16's holes stay closed, and the tests and properties that say so can fail.

Each row re-opens one hole the adversarial review closed (see
``stdlib_policies/review/``), in a copy of the policy, as the code read
before the fix (or as an author could plausibly write it), and names what
must then go wrong:

* the policy's in-language ``exploit: ...`` test (which passes on the
  policy as shipped) must fail on the copy, so the scenario really plays
  the exploit with its exact balances, not something that passes anyway;
* where a declared property guards the hole, the verifier must refute it on
  the copy, so the property is not vacuous.  The originals are proved
by ``charter verify`` (tests/stdlib/test_stdlib_verify.py proves the core
economies in the suite; the rest are proved by the commands in the report).
Small bound and timeout, no cache, as in test_stdlib_verify.
"""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
STDLIB = ROOT / "stdlib_policies"

verify_mod = pytest.importorskip("charter.compiler.verify")

OPTS = {"bound": 2, "timeout_ms": 4000}

# id -> (economy, text in the policy, the text that re-opens the hole (or
#        tuples of several such texts), property the verifier must refute or
#        None, exploit test that must fail or None)
HOLES: dict[str, tuple] = {
    # leave + re-vouch minted welcome_hours again: nothing recorded the welcome
    "time_bank-welcome-once": (
        "time_bank",
        "        mint welcome_hours to newcomer\n        grant Welcomed to newcomer\n",
        "        mint welcome_hours to newcomer\n",
        "members_were_welcomed",
        "exploit: leaving and being vouched in again mints no second welcome",
    ),
    # a departed provider was still paid for a pending service
    "time_bank-departed-paid": (
        "time_bank",
        '    require s.provider is Member else "the provider has left the bank"\n',
        "",
        "departed_hold_no_hours",
        "exploit: a member who left cannot confirm services or draw on mutual aid",
    ),
    # spawn admitted any party as the caller's twin, without its consent
    "digital_twins-consent": (
        "digital_twins",
        "    if exists Route(twin) {\n        update Route(twin)",
        "    admit twin as Twin { originator = o }\n    if exists Route(twin) {\n        update Route(twin)",
        "twins_consented",
        "exploit: nobody captures another party's balance by naming it as a twin",
    ),
    # a job accepted after every member left paid the ownerless bank
    "service_dao-empty-bank": (
        "service_dao",
        "        # every member has ragequit: nobody owns the members' cut or the\n"
        "        # bank, so the client gets them back (an empty DAO holds nothing)\n"
        "        refund rest of Job(id) to j.client\n",
        "        release balance(Job(id)) from Job(id) to bank\n",
        "empty_dao_holds_nothing",
        "exploit: a DAO emptied by ragequit restarts with nothing in the bank",
    ),
    # GIVE from and to seats the sponsor never admitted
    "flash_collaboration-admission": (
        "flash_collaboration",
        '    require a.admitted and b.admitted else "only admitted seats give and receive GIVE"\n',
        "",
        "only_admitted_seats_receive",
        "exploit: identities the sponsor did not admit cannot hand GIVE to their owner",
    ),
    # grant weight from what an adoption costs rather than the fee it paid
    "policy_centric-fee-weight": (
        "policy_centric",
        "    set t.period_fees = t.period_fees + cut\n",
        "    set t.period_fees = t.period_fees + t.price\n",
        "grant_weights_are_fees_received",
        None,
    ),
    # grants by adoption count (the rule before the fix)
    "policy_centric-count-weight": (
        "policy_centric",
        "by x.period_fees rounding",
        "by x.period_adoptions rounding",
        None,
        "exploit: free or self adoptions earn no share of the grants",
    ),
    # an upheld challenge that does not end the attestation could be upheld again
    "ethical_value-overturn-once": (
        "ethical_value",
        "        set a.live = false\n        set a.overturned = true\n",
        "        set a.overturned = true\n",
        "overturned_never_live",
        "exploit: two upheld challenges of one attestation slash the attester once",
    ),
    "ethical_value-leave-live": (
        "ethical_value",
        '    require count(x for x in Attestation where x.attester == a and x.live) == 0 else "an attestation of yours is still live"\n'
        '    require count(c for c in Challenge where c.open and Attestation(c.attestation).attester == a) == 0 else "a challenge of your attestation is still open"\n',
        "",
        None,
        "exploit: an attester cannot take its bond back while its attestation can be challenged",
    ),
    "proof_of_contribution-leave-open-vote": (
        "proof_of_contribution",
        '    require count(c for c in Claim where c.status == "open" and (p has Endorsed[c] or p has Objected[c])) == 0 else "a claim you voted on is still open"\n',
        "",
        None,
        "exploit: an objector cannot leave before the outcome to escape the penalty",
    ),
    "crowdsourced_pool-rate-withdrawn": (
        "crowdsourced_pool",
        '    require it.active else "item is withdrawn"\n    require p has Used[id]',
        "    require p has Used[id]",
        None,
        "exploit: unused and owner-used items farm nothing, carried revenue pays the fee once",
    ),
    # the rule before the fix: Gov for any reviewer, the epoch paid to every Gov holder
    "governance_economy-gov-for-anyone": (
        "governance_economy",
        (" and x.grade > 0 and x.reviewer is Reviewer {", " among x in party where x is Reviewer or x is Arbiter by"),
        (" and x.grade > 0 {", " among x in party by"),
        None,
        "exploit: self-graded reviews and early exits earn nothing from the treasury",
    ),
    "model_cooperative-leave-open-vote": (
        "model_cooperative",
        '    require count(x for x in Proposal where not x.decided and p has Voted[x]) == 0 else "a proposal you voted on is still open"\n',
        "",
        None,
        "exploit: carried revenue feeds the reserve once; voters stay until the vote is decided",
    ),
    "commons_maintenance-unapproved-paid": (
        "commons_maintenance",
        "where x.resource == r and x.approved to x.steward",
        "where x.resource == r to x.steward",
        None,
        "exploit: volunteering as a steward of someone else's resource pays nothing until approved",
    ),
    "reputation_currency-buy-council": (
        "reputation_currency",
        '    require key != "council" else "council access is bonded, not bought"\n',
        "",
        None,
        "exploit: unbonding first does not escape a slash for abuse",
    ),
    # unbond re-minted the bond at once (the rule before the fix)
    "reputation_currency-instant-unbond": (
        "reputation_currency",
        '    revoke Access["council"] from p\n    set Bond(p).unlocks = now + unbonding\n',
        '    mint Bond(p).amount to p\n    revoke Access["council"] from p\n    delete Bond(p)\n',
        None,
        "exploit: unbonding first does not escape a slash for abuse",
    ),
    "ethical_value-self-challenge": (
        "ethical_value",
        '    require p != Attestation(attestation).attester else "attesters do not challenge their own attestations"\n',
        "",
        None,
        "exploit: two upheld challenges of one attestation slash the attester once",
    ),
    # the fee taken before the split whether or not anything is paid out
    "crowdsourced_pool-fee-on-carry": (
        "crowdsourced_pool",
        "    if sum(x.weight for x in Item) > 0 {\n        transfer floor(balance(revenue) * fee) from revenue to maintainers\n",
        "    transfer floor(balance(revenue) * fee) from revenue to maintainers\n    if sum(x.weight for x in Item) > 0 {\n",
        None,
        "exploit: unused and owner-used items farm nothing, carried revenue pays the fee once",
    ),
    "compute_staking-unbond-before-verdict": (
        "compute_staking",
        '    require count(j for j in Job where j.provider == p and j.state == "proved") == 0 else "a proof of yours awaits its verdict"\n',
        "",
        None,
        "exploit: a provider cannot shrink its fault slash by unbonding before the verdict",
    ),
    "iaas_market-no-price-guard": (
        "iaas_market",
        '    require c.active else "capability is not listed"\n    require c.price <= max_price else "the price is above your max_price"\n',
        '    require c.active else "capability is not listed"\n',
        None,
        "exploit: a provider repricing before a call gets the call rejected, not paid",
    ),
    "iaas_market-unbonded-barter": (
        "iaas_market",
        '    require stake(p, Credit) >= barter_bond else "top up your barter bond first"\n',
        "",
        None,
        "exploit: a member slashed at clearing cannot run up new barter debt without collateral",
    ),
    "collective_creation-holder-scores": (
        "collective_creation",
        '    require count(f for f in Fraction where f.creation == creation and f.holder == e) == 0 else "holders do not evaluate a creation they hold units of"\n',
        "",
        None,
        "exploit: an evaluator holding units of a creation cannot score it",
    ),
    "gig_market-token-assign": (
        "gig_market",
        "    require price >= min_bid and price > 0 Credit and price <= t.budget",
        "    require price > 0 Credit and price <= t.budget",
        None,
        "exploit: reputation cannot be bought with a token-price task",
    ),
    "meta_design-own-base-points": (
        "meta_design",
        "        if b.author != u {",
        "        if true {",
        None,
        "exploit: reusing a design built on your own base earns your base no points",
    ),
}


def _reopened(hole: str):
    from charter.compiler.pipeline import Compilation

    economy, old, new, _, _ = HOLES[hole]
    text = (STDLIB / f"{economy}.charter").read_text("utf-8")
    olds, news = (old, new) if isinstance(old, tuple) else ((old,), (new,))
    for o, n in zip(olds, news, strict=True):
        assert text.count(o) == 1, f"the fix is no longer written as {o!r}: update the table"
        text = text.replace(o, n)
    return Compilation.from_text(text, file=f"{economy}_hole.charter").ir


@pytest.mark.parametrize("hole", sorted(h for h in HOLES if HOLES[h][3]))
def test_reopened_hole_is_refuted(hole: str) -> None:
    prop = HOLES[hole][3]
    policy = _reopened(hole)
    assert prop in {p.name for p in policy.properties}
    results = verify_mod.verify(policy, verify_mod.Options(**OPTS), use_cache=False)
    status = {r.name: r.status for r in results}
    assert status.get(prop) == "refuted", (prop, status.get(prop))


@pytest.mark.parametrize("hole", sorted(h for h in HOLES if HOLES[h][4]))
def test_exploit_scenario_fails_when_the_hole_is_reopened(hole: str) -> None:
    pytest.importorskip("charter.runtime.testing")
    from charter.runtime.testing import run_tests

    name = HOLES[hole][4]
    results = {r.name: r for r in run_tests(_reopened(hole))}
    assert name in results, f"no test {name!r} in {HOLES[hole][0]}"
    assert not results[name].passed, f"{name!r} passes even with the hole re-opened"
