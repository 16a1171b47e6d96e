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
