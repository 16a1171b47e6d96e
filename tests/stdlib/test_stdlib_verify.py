"""The verifier on the standard library: declared properties are proved, and
one plausible bug per economy is caught.

Each mutation below is a one-line change an author could really make (a sign
error on a fee, a forgotten guard, a forgotten refund); the test asserts the
verifier refutes the named property on the mutated copy and that the same
property is proved on the original.  Small bound and Z3 timeout keep this
fast; results are not cached so the test always exercises the solver.
"""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
STDLIB = ROOT / "stdlib_policies"

verify_mod = pytest.importorskip("charter.compiler.verify")

from charter.compiler.pipeline import Compilation

OPTS = {"bound": 2, "timeout_ms": 4000}

CORE = (
    "iaas_market",
    "gig_market",
    "skill_licensing",
    "compute_staking",
    "asset_royalties",
    "time_bank",
    "quadratic_funding",
    "purpose_economy",
)

# economy -> (text in the policy, its buggy replacement, property that must be refuted)
MUTATIONS: dict[str, tuple[str, str, str]] = {
    # fee taken out of the commons instead of paid into it
    "gig_market": (
        "release gross - cut - roy from t to t.worker\n    release cut from t to commons",
        "release gross - cut - roy from t to t.worker\n    transfer cut from commons to t.worker",
        "complete_never_drains_commons",
    ),
    # a member leaves barter still owing (its bond unlocked, its debt left on the ledger)
    "iaas_market": (
        'require balance(p, Barter) == 0 Barter else "wait for the next clearing"',
        "",
        "only_members_owe_barter",
    ),
    # per-use fee paid out of the treasury to the author
    "skill_licensing": (
        "transfer cut from p to treasury",
        "transfer cut from treasury to s.author",
        "use_never_drains_treasury",
    ),
    # accepted job: the leftover of the escrow is never refunded
    "compute_staking": (
        "release cut from Job(job) to treasury\n        refund rest of Job(job) to j.client",
        "release cut from Job(job) to treasury",
        "settled_jobs_are_empty",
    ),
    # a work may declare itself as its own parent
    "asset_royalties": (
        'require child != parent else "a work cannot reuse itself"',
        "",
        "no_self_reuse",
    ),
    # the per-service aid cover is forgotten
    "time_bank": (
        "min(s.hours - own, aid_cover, balance(aid))",
        "min(s.hours - own, balance(aid))",
        "confirm_aid_budget",
    ),
    # what the per-project cap leaves is not moved to carry
    "quadratic_funding": (
        "transfer balance(Round(round)) from Round(round) to carry\n",
        "",
        "finalized_rounds_are_empty",
    ),
    # approval trusts the cap checked when the claim was filed
    "purpose_economy": (
        'require c.amount <= max_claim else "claim is above the current cap"',
        "",
        "claims_capped",
    ),
}


def _verify(text: str, file: str):
    policy = Compilation.from_text(text, file=file).ir
    return verify_mod.verify(policy, verify_mod.Options(**OPTS), use_cache=False)


def _declared_status(results, policy_props) -> dict[str, str]:
    names = {p.name for p in policy_props}
    return {r.name: r.status for r in results if r.name in names}


@pytest.mark.parametrize("name", CORE)
def test_declared_properties_proved(name: str) -> None:
    path = STDLIB / f"{name}.charter"
    policy = Compilation.from_path(str(path)).ir
    results = verify_mod.verify(policy, verify_mod.Options(**OPTS), use_cache=False)
    refuted = [f"{r.name}: {r.message}" for r in results if r.status == "refuted"]
    assert not refuted, refuted
    status = _declared_status(results, policy.properties)
    assert set(status) == {p.name for p in policy.properties}
    not_proved = {k: v for k, v in status.items() if v != "proved"}
    assert not not_proved, not_proved


@pytest.mark.parametrize("name", sorted(MUTATIONS))
def test_mutation_is_refuted(name: str) -> None:
    path = STDLIB / f"{name}.charter"
    text = path.read_text("utf-8")
    old, new, prop = MUTATIONS[name]
    assert text.count(old) == 1, "the mutation no longer applies: update the table"
    results = _verify(text.replace(old, new), f"{name}_mutant.charter")
    status = {r.name: r.status for r in results}
    assert status.get(prop) == "refuted", (prop, status.get(prop))
    refuted = next(r for r in results if r.name == prop)
    assert refuted.counterexample, "a refutation comes with a counterexample"
