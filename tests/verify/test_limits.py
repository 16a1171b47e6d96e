"""Deterministic verdicts: Z3's resource limit decides, the wall clock is only a safety net,
and a limit reached anywhere makes a check *unknown*, never *refuted*."""

from __future__ import annotations

from pathlib import Path

import pytest

import verify_policies as P
from charter.compiler import verify as V
from verify_helpers import compile_text

STDLIB = Path(__file__).resolve().parents[2] / "stdlib_policies"


def _verdicts(policy, **opts) -> tuple[dict, V.Stats]:
    results = V.verify(policy, V.Options(**opts), use_cache=False)
    return {r.name: (r.status, r.message) for r in results}, V.stats()


@pytest.mark.parametrize(
    "text,rlimit",
    [
        # a refutation (with its counterexample and search from the initial state)
        (P.FEE.format(name="fee", hi="150%"), V.DEFAULT_RLIMIT),
        # the same policy at a resource limit so small that checks end undecided
        (P.FEE.format(name="fee", hi="150%"), 3_000),
        (P.REFUND.format(name="refund", guard=""), 20_000),
    ],
)
def test_same_verdicts_at_two_safety_nets(text, rlimit):
    """The resource limit, not the wall clock, decides: two very different safety nets (both
    far above what a query takes) give identical verdicts and messages, and neither fires."""
    policy = compile_text(text)
    a, st_a = _verdicts(policy, rlimit=rlimit, timeout_ms=600_000)
    b, st_b = _verdicts(policy, rlimit=rlimit, timeout_ms=120_000)
    assert a == b
    assert st_a.safety_net == st_b.safety_net == 0
    assert st_a.queries == st_b.queries and st_a.at_limit == st_b.at_limit
    if rlimit < 10_000:
        # the small limit really is reached, and says so
        assert st_a.at_limit > 0
        assert any(s == V.UNKNOWN and "resource limit" in m for s, m in a.values())


def test_a_drastic_limit_gives_unknowns_never_findings():
    """commons_maintenance (non-linear isqrt weights, splits in a loop) is all proved at the
    default limit; at 3,000 units per query most questions stop undecided - in proofs,
    invariant inference, the witness searches - and each such check is unknown: no
    refutation or missing guard appears (any finding would have to carry a counterexample
    the runtime replayed, and on a proved policy none exists)."""
    policy = compile_text((STDLIB / "commons_maintenance.charter").read_text(), "commons")
    results = V.verify(policy, V.Options(rlimit=3_000), use_cache=False)
    assert V.stats().at_limit > 10  # the limit was reached in many places
    findings = [(r.name, r.status, bool((r.counterexample or {}).get("replayed")))
                for r in results if r.status in (V.REFUTED, V.GUARD)]
    assert not findings, findings
    unknown = [r for r in results if r.status == V.UNKNOWN]
    assert unknown and all("resource limit" in r.message or "rlimit" in r.message
                           or "not decided" in r.message for r in unknown), \
        [r.message for r in unknown if "resource limit" not in r.message][:3]


def test_a_limit_never_refutes_asset_royalties():
    """The issue's reproduction: with a short time-out `pay.non_negative` and
    `pay.escrow_bound` came back refuted with bogus counterexamples.  Now a limit reached in
    invariant inference or a proof is unknown: only proved / unknown / vacuous remain."""
    policy = compile_text((STDLIB / "asset_royalties.charter").read_text(), "asset_royalties")
    results = V.verify(policy, V.Options(rlimit=30_000, bound=2), use_cache=False)
    statuses = {r.name: r.status for r in results}
    assert V.stats().at_limit > 0  # the limit was reached (else this test proves nothing)
    assert not [n for n, s in statuses.items() if s in (V.REFUTED, V.GUARD)], statuses
    for name in ("pay.non_negative", "pay.escrow_bound"):
        assert statuses[name] in (V.PROVED, V.UNKNOWN)


def test_a_weakened_modular_finding_is_unknown_but_a_confirmed_one_stays():
    """A counterexample found while invariant inference was cut short stays refuted only
    when the search from the initial state reached it."""
    from charter.compiler.verify import pipeline

    run = pipeline.Run(compile_text(P.FEE.format(name="fee", hi="150%")), V.Options(), False)
    run.undecided_invariants = 2
    confirmed = V.Result("a", "non_negative", "h", V.REFUTED, "m", counterexample={"confirmed": True})
    modular = V.Result("b", "escrow_bound", "h", V.REFUTED, "m", counterexample={"confirmed": False})
    guard = V.Result("c", "no_overdraft", "h", V.GUARD, "m", counterexample={"fails": "x"})
    structural = V.Result("d", "conservation", "h", V.REFUTED, "mints X")
    pipeline._limit_taint([confirmed, modular, guard, structural], run)
    assert confirmed.status == V.REFUTED and structural.status == V.REFUTED
    assert modular.status == V.UNKNOWN and guard.status == V.UNKNOWN
    assert "2 candidate(s) undecided" in modular.message and modular.message.endswith("m")


def test_safety_net_is_reported_and_not_cached(tmp_path):
    """A 1 ms wall clock stops queries before a huge resource limit: every unknown it causes
    says the verdict depends on the machine, and such a run is not cached."""
    from charter.compiler.verify.cache import cache_key

    policy = compile_text(P.FEE.format(name="fee", hi="150%"))
    opts = V.Options(rlimit=10**9, timeout_ms=1, cache_dir=tmp_path)
    results = V.verify(policy, opts, use_cache=True)
    fired = V.stats().safety_net
    assert all(r.status != V.REFUTED or r.counterexample for r in results)
    if fired:  # (a fast machine may answer every query within 1 ms: then nothing to see)
        assert any("safety net" in r.message for r in results if r.status == V.UNKNOWN)
        assert not (tmp_path / f"{cache_key(policy, opts)}.json").exists()


def test_catalogue_lists_every_check():
    """The catalogue is the one list of checks: every result kind the verifier produces is in
    it, and every named buggy twin exists in the test policies."""
    names = {c.name for c in V.CHECKS}
    assert len(names) == len(V.CHECKS)
    for c in V.CHECKS:
        assert c.fails_as in (V.REFUTED, V.GUARD, V.VACUOUS, V.WARNING), c
        assert c.proves and c.counterexample
        if c.twin is not None:
            assert hasattr(P, c.twin), c
    kinds: set = set()
    for text in (P.FEE.format(name="fee", hi="150%"), P.DELETE.format(name="d", body="")):
        kinds |= {r.kind for r in V.verify(compile_text(text), V.Options(), use_cache=False)}
    assert kinds <= names | {"encoding"}, kinds - names


FALSE_CAP = """policy capped version "1"
asset Credit: token, decimals 2, mintable
role Member
param gateway: party = @gateway
on join() by p: party {
    require not (p is Member) else "already a member"
    admit p as Member
}
on deposit(to: Member, amount: Credit) by gateway {
    require amount > 0 Credit else "positive"
    mint amount to to
}
property capped: always supply(Credit) <= 1000 Credit
"""


def test_an_undecided_false_cap_is_refuted_from_genesis():
    """When the inductive proof of a cap ends undecided (a limit), the search from genesis
    still finds the violation, replays it on the runtime and reports it as refuted - a
    plainly false cap is never left unknown."""
    from charter.compiler.verify.invariants import _declared_invariants, _invariant_results

    policy = compile_text(FALSE_CAP, "capped")
    declared = _declared_invariants(policy)
    out = _invariant_results(
        policy, declared, set(), {"capped": (V.UNKNOWN, "deposit", None)}, {}, V.Options(), 0.0
    )
    (r,) = out
    assert r.status == V.REFUTED, r.message
    assert r.counterexample["replayed"] and "from genesis" in r.message
    events = r.counterexample["scenario"]["events"]
    assert events[-1]["type"] == "deposit"
    # and an undecided proof whose reason is an encoding gap is not searched (nothing to run)
    out = _invariant_results(
        policy, declared, set(), {"capped": (V.UNKNOWN, "deposit", "a gap")}, {}, V.Options(), 0.0
    )
    assert out[0].status == V.UNKNOWN and "a gap" in out[0].message
