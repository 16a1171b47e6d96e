"""Random event streams against the gig-market example (hypothesis).

Conservation per asset, no negative balance, rejected events change
nothing, same stream => same journal hash, memory store => same state as
the SQLite store (which also replays and audits clean).
"""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings, strategies as st

from charter.runtime.api import open_runtime, replay

PARTIES = ["ann", "bob", "cat", "gw", "operator", "clock", "zed"]
TASKS = ["t1", "t2", "t3"]

# mostly plausible values, sometimes hostile ones
amounts = st.one_of(
    st.integers(100, 8_000),
    st.integers(100, 8_000),
    st.integers(-5, 40_000),
    st.sampled_from(["1.00", "250.5", "0", "x"]),
)
SUBMITTERS = ["ann", "bob", "cat"] * 4 + PARTIES
args_for = {
    "join": st.just({}),
    "appoint": st.fixed_dictionaries({"gateway": st.sampled_from(PARTIES)}),
    "deposit": st.fixed_dictionaries({"to": st.sampled_from(PARTIES), "amount": amounts}),
    "withdraw": st.fixed_dictionaries({"amount": amounts}),
    "post": st.fixed_dictionaries(
        {
            "id": st.sampled_from(TASKS),
            "budget": amounts,
            "duration": st.one_of(st.integers(1, 20_000), st.integers(-10, 10)),
        }
    ),
    "bid": st.fixed_dictionaries({"id": st.sampled_from(TASKS + ["nope"]), "price": amounts}),
    "complete": st.fixed_dictionaries({"id": st.sampled_from(TASKS), "quality": st.integers(0, 6)}),
    "epoch_end": st.just({}),
    "@tick": st.just({}),
    "bogus": st.just({"a": 1}),
}


@st.composite
def streams(draw):
    n = draw(st.integers(5, 45))
    t = 0
    out = []
    for i in range(n):
        typ = draw(
            st.sampled_from(sorted(args_for) + ["post"] * 4 + ["bid"] * 4 + ["complete"] * 3)
        )
        t += draw(st.integers(0, 300))
        sub = draw(st.sampled_from(SUBMITTERS))
        # reuse an earlier id now and then: duplicates must be no-ops
        eid = (
            out[draw(st.integers(0, len(out) - 1))]["id"]
            if out and draw(st.integers(0, 9)) == 0
            else f"e{i}"
        )
        out.append(
            {"id": eid, "type": typ, "submitter": sub, "time": t, "args": draw(args_for[typ])}
        )
    return out


def _settle(policy, events, store=":memory:"):
    rt = open_runtime(policy, store)
    setup = [
        {
            "id": "s0",
            "type": "appoint",
            "submitter": "operator",
            "time": 0,
            "args": {"gateway": "gw"},
        }
    ]
    setup += [
        {"id": f"s{p}", "type": "join", "submitter": p, "time": 0, "args": {}}
        for p in ("ann", "bob", "cat")
    ]
    setup += [
        {
            "id": f"d{p}",
            "type": "deposit",
            "submitter": "gw",
            "time": 0,
            "args": {"to": p, "amount": 20_000},
        }
        for p in ("ann", "bob", "cat")
    ]
    for e in setup:
        assert rt.submit(e).applied
    checks = []
    for e in events:
        before_rows, before_seq = rt.state_rows(), rt.seq
        out = rt.submit(e)
        if not out.applied or out.duplicate:
            # a rejected event (or the same event again) changes nothing, timers included
            checks.append((rt.state_rows() == before_rows, rt.seq == before_seq))
        _assert_books(rt)
    rt.flush()
    return rt, checks


def _assert_books(rt):
    totals = {}
    for acc, bal in rt.state.balances.items():
        asset = rt.state.asset_of(acc)
        totals[asset] = totals.get(asset, 0) + bal
        if not acc.startswith("supply:"):
            assert bal >= 0, (acc, bal)
    assert all(v == 0 for v in totals.values()), totals


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(streams())
def test_random_streams_keep_the_books(gig_policy, events):
    rt, checks = _settle(gig_policy, events)
    assert all(a and b for a, b in checks)
    # same stream => byte-identical journal
    rt2, _ = _settle(gig_policy, events)
    assert rt2.journal_hash == rt.journal_hash
    assert [r.entry for r in rt2.store.journal()] == [r.entry for r in rt.store.journal()]
    assert rt.audit().ok


@settings(
    max_examples=10,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(streams())
def test_memory_and_sqlite_agree(gig_policy, tmp_path_factory, events):
    mem, _ = _settle(gig_policy, events)
    db = tmp_path_factory.mktemp("s") / "l.sqlite"
    sq, _ = _settle(gig_policy, events, str(db))
    assert sq.journal_hash == mem.journal_hash
    assert sq.state_rows() == mem.state_rows()
    sq.close()
    again = open_runtime(None, str(db))
    assert again.state_rows() == mem.state_rows()
    assert again.audit().ok
    assert replay(str(db)).ok
