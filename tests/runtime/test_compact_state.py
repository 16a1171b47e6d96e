"""The compact in-memory state answers exactly as the plain one did: the applied-id set
(runtime/idset.py) as a ``set`` of the same ids, compact records as the dicts they stand
for; and a run in memory keeps far fewer bytes per event than it did."""

from __future__ import annotations

import json
import tracemalloc
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from charter.compiler.pipeline import Compilation
from charter.runtime.api import open_runtime
from charter.runtime.idset import IdSet
from charter.runtime.store import MemoryStore
from helpers import gig_events

ROOT = Path(__file__).resolve().parents[2]

POLICY = ROOT / "examples" / "gig_market" / "policy.charter"

# ids a separator or an encoding could confuse: empty, newline-bearing, a lone surrogate,
# one id a prefix or suffix of another, the same text as bytes, non-texts
TRICKY = ["", "\n", "a\nb", "a", "ab", "b", "ba", "\udc80", "é", "\x00", " g1", "g1 ", "g1"]
NOT_IDS = [None, 1, b"g1", ("g1",), 1.5]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.text(max_size=12), max_size=400), st.lists(st.text(max_size=12), max_size=80))
def test_idset_answers_as_a_set(added, asked):
    s, ref = IdSet(), set()
    for i in added:
        assert (i in s) == (i in ref)
        s.add(i)
        ref.add(i)
    assert len(s) == len(ref) and set(s) == ref
    for i in asked + TRICKY:
        assert (i in s) == (i in ref), repr(i)


@pytest.mark.parametrize("added", [[], TRICKY, [f"g{i}" for i in range(5000)] + TRICKY])
def test_idset_exact_on_tricky_ids_and_after_growing(added):
    s = IdSet(added)
    assert len(s) == len(set(added)) and set(s) == set(added)
    for i in TRICKY + [f"g{i}" for i in range(5000, 5100)]:
        assert (i in s) == (i in set(added)), repr(i)
    for x in NOT_IDS:
        assert x not in s
    s.add(added[0] if added else "x")  # adding again changes nothing
    assert len(s) == len(set(added) | ({"x"} if not added else set()))


def test_memory_store_keeps_every_applied_id_past_its_window():
    policy = Compilation.from_path(POLICY).ir
    events = list(gig_events(3000, seed=5))
    rt = open_runtime(policy, MemoryStore(window=10))
    applied = [e["id"] for e in events if rt.submit(e).applied]
    assert rt.store.dropped > 2000
    assert isinstance(rt.applied_ids, IdSet) and set(rt.applied_ids) == set(applied)
    # every old id is still a duplicate (its entry is gone, so it cannot be compared) ...
    again = rt.submit(events[0])
    assert not again.applied and "no longer kept in memory" in str(again)
    # ... and a fresh id never is
    assert rt.submit({"id": "fresh-1", "type": "join", "submitter": "zz", "time": rt.clock,
                      "args": {}}).applied


def test_compact_records_equal_plain_ones_and_roll_back():
    policy = Compilation.from_path(POLICY).ir
    events = list(gig_events(2000, seed=9))
    rt = open_runtime(policy, ":memory:")
    for e in events:
        rt.submit(e)
    tasks = rt.state.records["Task"]
    fields = rt.state.record_fields["Task"]
    assert len(tasks) > 300
    for k, rec in tasks.items():
        assert type(rec) is dict and tuple(rec) == fields  # declared order, an ordinary dict
    # a rejected event leaves a record's dict exactly as it was (the copy on first write)
    key = next(k for k, r in tasks.items() if r["open"])
    before = dict(tasks[key])
    poster = before["poster"]
    out = rt.submit({"id": "bad-bid", "type": "bid", "submitter": poster, "time": rt.clock,
                     "args": {"id": key, "price": 1}})
    assert not out.applied and dict(tasks[key]) == before
    # party names in records are one string each, not one per record
    posters = {id(r["poster"]) for r in tasks.values()}
    assert len(posters) == len({r["poster"] for r in tasks.values()})


def test_in_memory_run_bytes_per_event():
    """The state of a gig run grows with its tasks (never deleted) and applied ids, but
    compactly: ~100 traced bytes per event beyond the journal window at 20,000 events,
    where a set of id strings, a dict of its own per record and a party string per
    record took ~145."""
    policy = Compilation.from_path(POLICY).ir
    events = [json.loads(json.dumps(e)) for e in gig_events(20_000, seed=7)]
    tracemalloc.start()
    try:
        rt = open_runtime(policy, MemoryStore(window=10))
        base = tracemalloc.get_traced_memory()[0]
        for e in events:
            rt.submit(e)
        grown = tracemalloc.get_traced_memory()[0] - base
    finally:
        tracemalloc.stop()
    assert rt.seq > 18_000
    assert grown / len(events) < 120, grown / len(events)


@pytest.mark.parametrize("text", [
    '{"event":{"id":"e1","args":{"n":123456789012345678901234567890}},"postings":[]}',
    '{"event":{"id":"e1","args":{"s":"\\udc80"}}}',  # a lone surrogate: msgspec refuses
    '{"event":{"id":"e1","args":{"x":NaN,"y":1e400}}}',  # json reads these, msgspec not
    '{"event":{"a":1,"a":2}}',
    '{"postings":[[1]],"event":{"a":[1,{"b":null}],"c":1.5}}',
    '{"event":[1]}', '{"event":1}', '{"other":1}', "[1]", "", "{", None, b'{"event":{}}',
])
def test_replay_reads_an_entry_event_as_json_does(text):
    """Replay decodes only an entry's event (msgspec); whatever it gives or refuses is
    exactly what ``json.loads(entry)["event"]`` gives or refuses."""
    from charter.runtime.api import _event_of

    def outcome(f):
        try:
            return "ok", f(text)
        except (ValueError, KeyError, TypeError):
            return "refused", None

    got, want = outcome(_event_of), outcome(lambda t: json.loads(t)["event"])
    assert got[0] == want[0]
    if got[0] == "ok":
        assert json.dumps(got[1]) == json.dumps(want[1]) and type(got[1]) is type(want[1])
