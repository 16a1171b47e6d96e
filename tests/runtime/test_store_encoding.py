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


@pytest.mark.parametrize("rec", RECORDS)
def test_record_row_text(rec: dict) -> None:
    portable = json.JSONEncoder(separators=(",", ":")).encode(State.record_value(rec))
    assert sqlite_store._dumps(State.record_value(rec)) == portable
    if sqlite_store._record_json is not None:
        assert sqlite_store._record_json(rec) == portable


def test_unknown_values_still_refused() -> None:
    with pytest.raises(TypeError):
        sqlite_store._dumps({"x": object()})
