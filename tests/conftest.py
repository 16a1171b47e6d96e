"""Fixtures shared by every test directory.

``gig_policy`` / ``gig_events``: the worked gig-market example (examples/gig_market), its
policy compiled once per session and its events as dicts.
``pg_server``: one real PostgreSQL server per test session (per xdist worker),
started with ``initdb``/``pg_ctl`` (see ``tests/pg_server.py``) and stopped at
the end.  ``pg_server.new_url()`` names a fresh ledger.  Tests that use it are
skipped, with the reason, only where no PostgreSQL binaries exist.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "gig_market"


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


@pytest.fixture(scope="session")
def pg_server():
    from pg_server import PgServer, why_unavailable

    why = why_unavailable()
    if why:
        pytest.skip(f"PostgreSQL tests skipped: {why}")
    server = PgServer().start()
    try:
        yield server
    finally:
        server.stop()
