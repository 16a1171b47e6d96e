"""Hostile events through the PostgreSQL store: every JSON type in every field.

Each event goes to a PostgreSQL runtime and to an in-memory reference in
lockstep: the outcomes must be identical (same semantics), and a rejection
must leave the ledger exactly as it was (journal rows, state rows, head,
checkpoint), in memory and in the database.  Text with NUL characters is in
the mix on purpose: PostgreSQL's TEXT cannot hold NUL, the store's key column
is bytes for that reason.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import charter

NASTY_TEXT = ["", "a\x00b", "\x00", "\ud800", "t1", "ann", "@ann", "é" * 3, "9" * 10_000,
              "x" * 70_000, "'; DROP TABLE journal; --", "\\x00", "Ω\u0301"]  # fmt: skip
NASTY_INT = [0, -1, 1, 2**63 - 1, 2**63, -(2**63), 10**400, 100, 5]
json_scalar = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.sampled_from(NASTY_INT)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=12)
    | st.sampled_from(NASTY_TEXT)
)
json_value = st.recursive(
    json_scalar,
    lambda inner: st.lists(inner, max_size=4)
    | st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=12,
)
HANDLERS = ["join", "appoint", "deposit", "withdraw", "post", "bid", "complete", "epoch_end",
            "@tick", "nope"]  # fmt: skip
ARG_NAMES = ["gateway", "to", "amount", "id", "budget", "duration", "price", "quality", "x"]
PARTIES = ["ann", "bob", "operator", "gw", "clock", "a\x00b", ""]


@st.composite
def events(draw):
    n = draw(st.integers(0, 10**6))
    if draw(st.integers(0, 9)) == 0:  # a wholly hostile envelope
        return draw(json_value | st.dictionaries(st.sampled_from(
            ["id", "type", "submitter", "time", "args", "sig", "extra"]), json_value, max_size=6))
    args = draw(st.dictionaries(st.sampled_from(ARG_NAMES), json_value | st.sampled_from(
        ["ann", "bob", "gw", "t1", "t2", "3 days", "12.50", "12.50 Credit"]), max_size=4))
    ev = {
        "id": draw(st.sampled_from([f"h{n}", "e01", "h0"]) | json_scalar),
        "type": draw(st.sampled_from(HANDLERS) | json_scalar),
        "submitter": draw(st.sampled_from(PARTIES) | json_scalar),
        "time": draw(st.integers(0, 2000) | json_scalar),
        "args": args if draw(st.integers(0, 5)) else draw(json_value),
    }
    for k in draw(st.sets(st.sampled_from(list(ev)), max_size=1)):
        del ev[k]
    return ev


@pytest.fixture(scope="module")
def pair(pg_server, gig_policy, gig_events):
    pg = charter.open_runtime(gig_policy, pg_server.new_url())
    ref = charter.open_runtime(gig_policy, ":memory:")
    for ev in gig_events[:20]:  # a market with members, a gateway, open tasks
        assert pg.submit(ev).to_dict() == ref.submit(ev).to_dict()
    yield pg, ref
    assert pg.audit().ok
    pg.close()


def _snapshot(rt):
    store = rt.store
    return (rt.seq, rt.head, rt.state_rows(), [tuple(r) for r in store.journal()],
            sorted(store.rows()), store._query("SELECT * FROM checkpoint"))  # fmt: skip


@given(ev=events())
@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_hostile_events_settle_as_in_memory_and_rejections_change_nothing(pair, ev):
    pg, ref = pair
    before = _snapshot(pg)
    a = pg.submit(ev)
    b = ref.submit(ev)
    assert a.to_dict() == b.to_dict()
    if not a.applied or a.duplicate:
        assert _snapshot(pg) == before
    else:
        assert pg.seq == before[0] + 1 and pg.state_rows() == ref.state_rows()
    assert pg.head == ref.head
