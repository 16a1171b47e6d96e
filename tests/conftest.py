"""Fixtures shared by every test directory.

``pg_server``: one real PostgreSQL server per test session (per xdist worker),
started with ``initdb``/``pg_ctl`` (see ``tests/pg_server.py``) and stopped at
the end.  ``pg_server.new_url()`` names a fresh ledger.  Tests that use it are
skipped, with the reason, only where no PostgreSQL binaries exist.
"""

from __future__ import annotations

import pytest


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
