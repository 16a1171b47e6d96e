"""The applied-id Bloom filter changes the cost of ``has_event``, never its answer."""

from __future__ import annotations

from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from charter.compiler.pipeline import Compilation
from charter.runtime.api import open_runtime
from charter.runtime.idfilter import IdFilter
from helpers import gig_events

ROOT = Path(__file__).resolve().parents[2]

POLICY = ROOT / "examples" / "gig_market" / "policy.charter"


@settings(max_examples=50, deadline=None)
@given(st.lists(st.text(max_size=40), max_size=300), st.lists(st.text(max_size=40), max_size=50))
def test_an_added_id_is_always_maybe(added, others):
    f = IdFilter(len(added))
    f.add_all(added)
    assert all(f.may_hold(i) for i in added)
    for i in others:  # never an error, whatever the text
        assert f.may_hold(i) in (True, False)


def test_most_new_ids_are_certainly_new():
    f = IdFilter(1000)
    f.add_all(f"e{i}" for i in range(1000))
    false_positives = sum(f.may_hold(f"x{i}") for i in range(10_000))
    assert false_positives < 500  # ~1 expected at 64 bits per id; 16 bits per id gives ~1.4%


def test_has_event_answers_like_the_index(tmp_path):
    policy = Compilation.from_path(POLICY).ir
    events = list(gig_events(5000, seed=3))
    db = str(tmp_path / "gig.sqlite")
    rt = open_runtime(policy, db, batch=64)
    for e in events[:4500]:
        rt.submit(e)
    rt.flush()
    store = rt.store

    def indexed(eid: str) -> bool:
        return bool(store._query("SELECT 1 FROM journal WHERE event_id = ?", (eid,)))

    applied = [r.event_id for r in store.journal()]
    assert len(applied) > 4000
    # past the filter's first capacity (4,096 ids): it was rebuilt larger, still complete
    assert all(store.has_event(i) for i in applied)
    assert not any(store.has_event(f"new-{i}") for i in range(2000))
    f = store._id_filter  # lookups on a ledger they outnumber pay for a filter
    assert f is not None and f.count >= len(applied) and f.capacity > 4096  # rebuilt larger
    for i in list(applied[:50]) + [f"new-{i}" for i in range(50)]:
        assert store.has_event(i) == indexed(i)
    # resubmitted events are duplicates, new ones apply
    again = [rt.submit(e) for e in events[:200]]
    assert all(o.duplicate for o in again if o.applied)
    rejected_before = {e["id"] for e in events[:200]} - set(applied)
    assert {o.event_id for o in again if not o.applied} <= rejected_before
    rt.close()
    # reopened: a new process's filter is built from the file
    rt = open_runtime(policy, db, batch=64)
    for e in events[4500:]:
        rt.submit(e)
    assert all(rt.submit(e).duplicate for e in events if e["id"] in set(applied[:300]))
    rt.close()
