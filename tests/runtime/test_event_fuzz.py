"""Event fuzzers: nothing a submitter sends escapes ``submit``, and a rejection changes nothing.

Two fuzzers, both seeded (the suite is deterministic):

* a stream fuzzer (``benchmarks/fuzz_events.py``, here with a few dozen events
  per policy) over every stdlib policy and every example: well-typed events,
  the examples' own events, hostile values in every field, duplicates, id
  conflicts and time attacks; every event also runs on the reference
  interpreter (``runtime/reference.py``): receipts and rejections (code and
  message) must agree, and journals and states must be byte-identical;
* a hypothesis fuzzer that puts arbitrary JSON values - including lone
  surrogates, huge integers, NaN and deep nesting - into every field of real
  events of a few policies, on the engine and on the reference interpreter.

Both assert: no exception escapes ``submit``; a rejected event (or a duplicate)
leaves the canonical dump (state rows, clock, seq, journal head, journal
length, applied ids) byte-identical; the ledger audits clean and replays.
``benchmarks/fuzz_events.py`` runs the same checks over 100,000 events per policy.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))

import fuzz_events as F  # noqa: E402

from charter.runtime.api import replay  # noqa: E402

_TARGETS = {t.name: t for t in F.targets(include_examples=True)}


@pytest.mark.parametrize("name", sorted(_TARGETS))
def test_stream_fuzzer_finds_nothing(name):
    tg = _TARGETS[name]
    c = F.fuzz(tg, events=50 if name.startswith("example:") else 70, seed=13, episode=70)
    assert c.events >= 50
    assert (c.exceptions, c.changed, c.audit_failures, c.mismatches) == (0, 0, 0, 0), c.examples
    # the stream is not all noise: some events apply, some are refused for many reasons
    assert c.accepted + c.duplicates > 0 and sum(c.rejected.values()) > 0


# ------------------------------------------------------------------ hypothesis

_text = st.text(st.characters(blacklist_categories=()), max_size=20)  # lone surrogates too
_json = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.sampled_from([2**63, -(2**63), 2**63 - 1, ("huge", 4299), ("huge", 5000)])
    | st.floats(allow_nan=True, allow_infinity=True)
    | _text
    | st.sampled_from(["", "@", "@@a", "9" * 10_000, "x" * 70_000, "clock", "5%", "1.005"]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_text, inner, max_size=3),
    max_leaves=8,
)
_deep = st.integers(min_value=50, max_value=3000).map(lambda d: ("deep", d))


def _realise(v):
    """Stand-ins hypothesis can print: ("huge", n) is 10**n, ("deep", d) a list d deep."""
    if isinstance(v, tuple):
        return 10 ** v[1] if v[0] == "huge" else F._deep(v[1], "list")
    if isinstance(v, list):
        return [_realise(x) for x in v]
    if isinstance(v, dict):
        return {k: _realise(x) for k, x in v.items()}
    return v
_HYPO = ["gig_market", "time_bank", "quadratic_funding", "example:gig_market"]


@pytest.fixture(scope="module")
def prepared():
    """For each policy: a runtime that applied the example's events, and those events."""
    out = {}
    for name in _HYPO:
        tg = _TARGETS[name]
        out[name] = (tg, [dict(e) for e in tg.seeds])
    return out


@settings(
    max_examples=120,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(
    which=st.sampled_from(_HYPO),
    pick=st.integers(min_value=0, max_value=10_000),
    field=st.sampled_from(["id", "type", "submitter", "time", "args", "arg", "new_arg", "extra"]),
    value=_json | _deep,
)
def test_any_json_in_any_field_is_a_clean_rejection(prepared, which, pick, field, value):
    tg, seeds = prepared[which]
    value = _realise(value)
    rt, ref = tg.runtime(), tg.runtime("reference")
    for e in seeds[: len(seeds) // 2]:
        assert F._outcome_key(rt.submit(e)) == F._outcome_key(ref.submit(e))
    ev = dict(seeds[len(seeds) // 2 + pick % max(1, len(seeds) - len(seeds) // 2)])
    ev["id"] = "fuzzed"
    ev["args"] = dict(ev.get("args") or {})
    if field == "arg" and ev["args"]:
        ev["args"][sorted(ev["args"])[pick % len(ev["args"])]] = value
    elif field == "new_arg":
        ev["args"][f"x{pick % 3}"] = value
    elif field == "extra":
        ev["colour"] = value
    elif field != "arg":
        ev[field] = value
    before = F.dump(rt)
    out = rt.submit(ev)  # must not raise
    assert F._outcome_key(out) == F._outcome_key(ref.submit(ev)), out
    assert F.same_ledger(rt, ref) is None
    if not out.applied or out.duplicate:
        assert F.dump(rt) == before, out
        assert out.code if not out.applied else True
        assert isinstance(out.message if not out.applied else "", str)
    assert rt.audit().ok
    assert replay(rt).ok
