"""A replay test for every emitted counterexample, over buggy twins of stdlib policies (a
CI-sized sample of ``twins.py``; ``tools/replay_mutants.py`` runs all of them and every
dropped guard): each emitted `test` block compiles and fails on the violated property, each
JSONL replays through `charter run --memory --check` to the violation, and the same events
on the fixed (stdlib) policy do not violate."""

from __future__ import annotations

from pathlib import Path

import pytest

from replay_check import check_emitted
from twins import TWINS, apply

from charter.compiler import verify as V
from charter.compiler.pipeline import Compilation

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ("gig expiry keeps the escrow", "flash expiry keeps the budget")
DROPPED = (
    # (policy, the guard a one-line bug forgets, which occurrence, the finding)
    ("model_cooperative", 'require balance(p, Credit) >= member_share else', 0,
     "join.no_overdraft"),
    ("compute_staking", "require amount > 0 Credit and amount <= stake(p, Credit) else", 0,
     "unbond.non_negative"),
    # reroute's guard: reaching it needs a Twin admitted with its originator attribute (spawn)
    # and the event submitted by that attribute's party (`by twin.originator`)
    ("digital_twins", "require keep >= 0% and keep <= max_keep else", -1, "keep_bounded"),
)


def _verify(text: str, stem: str) -> dict:
    pol = Compilation.from_text(text, file=f"{stem}.charter").ir
    return {r.name: r for r in V.verify(pol, V.Options(timeout_ms=20000), use_cache=False)}


@pytest.mark.parametrize("tid", SAMPLE)
def test_twin_counterexample_replays(tid):
    (_, stem, old, new, name) = next(t for t in TWINS if t[0] == tid)
    fixed = (ROOT / "stdlib_policies" / f"{stem}.charter").read_text()
    buggy = apply(fixed, old, new)
    results = _verify(buggy, stem)
    emitted = [r for r in results.values() if r.counterexample and r.counterexample.get("replayed")]
    assert results[name].counterexample["replayed"], results[name].message
    for r in emitted:  # every one the verifier emitted, not only the expected one
        assert not check_emitted(r, buggy, fixed), (r.name, check_emitted(r, buggy, fixed))


@pytest.mark.parametrize("stem,guard,which,name", DROPPED, ids=[d[0] for d in DROPPED])
def test_dropped_guard_counterexample_replays(stem, guard, which, name):
    fixed = (ROOT / "stdlib_policies" / f"{stem}.charter").read_text()
    lines = fixed.splitlines(keepends=True)
    i = [i for i, ln in enumerate(lines) if ln.strip().startswith(guard)][which]
    buggy = "".join(lines[:i] + lines[i + 1 :])
    results = _verify(buggy, stem)
    assert results[name].counterexample["replayed"], results[name].message
    for r in results.values():
        if r.counterexample and r.counterexample.get("replayed"):
            assert not check_emitted(r, buggy, fixed), (r.name, check_emitted(r, buggy, fixed))
