"""The SQLite store's direct record encoding equals the portable one (to_json_value + json)."""

from __future__ import annotations

import json
from fractions import Fraction

import pytest

from charter.runtime import sqlite_store
from charter.runtime.state import State

RECORDS = [
    {},
    {"poster": "alice", "budget": 5000, "worker": None, "open": True, "deadline": 7},
    {"share": Fraction(1, 3), "whole": Fraction(4), "neg": Fraction(-4, 6)},
    {"xs": ("b", "a", 3, None, False), "rs": (Fraction(1, 2), (Fraction(3, 5),))},
    {"name": 'é ☃ "q" \\ \n'},
]


def _state(fields: tuple) -> State:
    st = State.__new__(State)  # record_row needs only the declared field names
    st.record_fields = {"R": fields}
    return st


@pytest.mark.parametrize("rec", RECORDS)
def test_record_row_text(rec: dict) -> None:
    st = _state(tuple(rec))
    row = st.record_row("R", rec)
    assert isinstance(row, list) and len(row) == len(rec)  # field values, in declared order
    portable = json.JSONEncoder(separators=(",", ":")).encode(row)
    assert sqlite_store._dumps(row) == portable
    if sqlite_store._record_json is not None:
        # the store's fast path: the live values encoded directly
        assert sqlite_store._record_json(list(rec.values())) == portable
    # declared in another order: the values in the declared order
    if len(rec) > 1:
        other = _state(tuple(reversed(tuple(rec))))
        assert other.record_row("R", rec) == list(reversed(row))
    # fields not the declared ones: kept as an object of fields
    assert isinstance(_state((*rec, "extra")).record_row("R", rec), dict)


def test_unknown_values_still_refused() -> None:
    with pytest.raises(TypeError):
        sqlite_store._dumps({"x": object()})


def test_row_hash_is_the_state_digest_of_the_row() -> None:
    """A writer keeps each row's share of the checkpoint's digest; it must be the very
    number integrity.state_digest adds for that row."""
    from charter.runtime.integrity import state_digest

    rows = [("balance", "party:a:Credit", "5"), ("record", '["Task","t\u00e9"]', "[1,null]"),
            ("meta", "time", "12"), ("role", '["Agent","\ud800"]', "{}")]
    for row, h in zip(rows, sqlite_store._row_hashes(rows)):
        assert state_digest([row]) == (h, 1)


@pytest.mark.parametrize("cache", [None, 40])
def test_kept_row_hashes_give_the_digest_of_the_file(tmp_path, monkeypatch, cache) -> None:
    """Written from empty (every row's hash kept), reopened (rows read back until rewritten)
    and past the cache's bound (emptied, then read back): every commit's checkpoint digest
    is the digest of the state rows in the file."""
    from charter.compiler.pipeline import Compilation
    from charter.runtime.api import open_runtime
    from charter.runtime.integrity import state_digest
    from helpers import gig_events

    from pathlib import Path

    if cache is not None:
        monkeypatch.setattr(sqlite_store, "_HASH_CACHE", cache)
    policy = Compilation.from_path(
        Path(__file__).resolve().parents[2] / "examples" / "gig_market" / "policy.charter").ir
    events = list(gig_events(900, seed=3))
    db = str(tmp_path / "gig.sqlite")

    def check(store) -> None:
        got = state_digest(store._scan("SELECT kind, key, value FROM state"))
        assert got == (store._cp.state_digest, store._cp.state_rows)

    rt = open_runtime(policy, db, batch=50)
    assert rt.store._all_hashes
    for i, e in enumerate(events[:500]):
        rt.submit(e)
        if i % 50 == 49:
            check(rt.store)
    rt.close()
    rt = open_runtime(policy, db, batch=50)
    assert not rt.store._all_hashes and not rt.store._hashes
    for e in events[500:]:
        rt.submit(e)
    rt.flush()
    check(rt.store)
    if cache is not None:
        assert len(rt.store._hashes) <= cache
    rt.close()
    open_runtime(policy, db).close()  # the open check agrees
