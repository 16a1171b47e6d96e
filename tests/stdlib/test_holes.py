"""The properties that close issue 16's holes are not vacuous: put a hole back
and the verifier refutes the property that guards it.

Each row re-opens one hole the adversarial review closed (see
``stdlib_policies/review/``), in a copy of the policy, exactly as the code
read before the fix (or as an author could plausibly write it), and names
the declared property that must then be refuted.  The originals are proved
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

from charter.compiler.pipeline import Compilation

OPTS = {"bound": 2, "timeout_ms": 4000}

# id -> (economy, text in the policy, the text that re-opens the hole, property refuted)
HOLES: dict[str, tuple[str, str, str, str]] = {
    # leave + re-vouch minted welcome_hours again: nothing recorded the welcome
    "time_bank-welcome-once": (
        "time_bank",
        "        mint welcome_hours to newcomer\n        grant Welcomed to newcomer\n",
        "        mint welcome_hours to newcomer\n",
        "members_were_welcomed",
    ),
    # a departed provider was still paid for a pending service
    "time_bank-departed-paid": (
        "time_bank",
        '    require s.provider is Member else "the provider has left the bank"\n',
        "",
        "departed_hold_no_hours",
    ),
    # spawn admitted any party as the caller's twin, without its consent
    "digital_twins-consent": (
        "digital_twins",
        "    if exists Route(twin) {\n        update Route(twin)",
        "    admit twin as Twin { originator = o }\n    if exists Route(twin) {\n        update Route(twin)",
        "twins_consented",
    ),
    # a job accepted after every member left paid the ownerless bank
    "service_dao-empty-bank": (
        "service_dao",
        "        # every member has ragequit: nobody owns the members' cut or the\n"
        "        # bank, so the client gets them back (an empty DAO holds nothing)\n"
        "        refund rest of Job(id) to j.client\n",
        "        release balance(Job(id)) from Job(id) to bank\n",
        "empty_dao_holds_nothing",
    ),
    # GIVE from and to seats the sponsor never admitted
    "flash_collaboration-admission": (
        "flash_collaboration",
        '    require a.admitted and b.admitted else "only admitted seats give and receive GIVE"\n',
        "",
        "only_admitted_seats_receive",
    ),
    # grant weight from what an adoption costs rather than the fee it paid
    "policy_centric-fee-weight": (
        "policy_centric",
        "    set t.period_fees = t.period_fees + cut\n",
        "    set t.period_fees = t.period_fees + t.price\n",
        "grant_weights_are_fees_received",
    ),
    # an upheld challenge that does not end the attestation could be upheld again
    "ethical_value-overturn-once": (
        "ethical_value",
        "        set a.live = false\n        set a.overturned = true\n",
        "        set a.overturned = true\n",
        "overturned_never_live",
    ),
}


@pytest.mark.parametrize("hole", sorted(HOLES))
def test_reopened_hole_is_refuted(hole: str) -> None:
    economy, old, new, prop = HOLES[hole]
    text = (STDLIB / f"{economy}.charter").read_text("utf-8")
    assert text.count(old) == 1, "the fix is no longer written this way: update the table"
    policy = Compilation.from_text(text.replace(old, new), file=f"{economy}_hole.charter").ir
    assert prop in {p.name for p in policy.properties}
    results = verify_mod.verify(policy, verify_mod.Options(**OPTS), use_cache=False)
    status = {r.name: r.status for r in results}
    assert status.get(prop) == "refuted", (prop, status.get(prop))
