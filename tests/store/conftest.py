"""Fixtures of the store tests: the worked gig-market example, compiled once."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "gig_market"


@pytest.fixture(scope="session")
def gig_policy():
    from charter.compiler.pipeline import Compilation

    return Compilation.from_path(EXAMPLE / "policy.charter").ir


@pytest.fixture(scope="session")
def gig_events():
    return [
        json.loads(line)
        for line in (EXAMPLE / "events.jsonl").read_text().splitlines()
        if line.strip()
    ]
