"""Fixtures shared by every test directory.

``gig_policy`` / ``gig_events``: the worked gig-market example (examples/gig_market), its
policy compiled once per session and its events as dicts.
``pg_server``: one real PostgreSQL server per test session (per xdist worker),
started with ``initdb``/``pg_ctl`` (see ``tests/pg_server.py``) and stopped at
the end.  ``pg_server.new_url()`` names a fresh ledger.  Tests that use it are
skipped, with the reason, only where no PostgreSQL binaries exist.

Tests never write into the user's real cache directory (verify results, the parser's
tables): ``$CHARTER_CACHE_DIR`` and ``$XDG_CACHE_HOME`` point into a temporary directory of
this test process (inherited by the commands tests start), removed at exit.
"""

from __future__ import annotations

import atexit
import json
import os
import shutil
import tempfile
from pathlib import Path

import pytest

_CACHE = tempfile.mkdtemp(prefix="charter-test-cache-")
atexit.register(shutil.rmtree, _CACHE, True)
os.environ["CHARTER_CACHE_DIR"] = os.path.join(_CACHE, "charter")
os.environ["XDG_CACHE_HOME"] = _CACHE

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
