"""The per-account index and paged history on PostgreSQL (a real server, ``pg_server``).

* ``account_block`` holds exactly the rows a SQLite ledger of the same stream holds;
* ``history --account A --limit N`` through the index, and ``--limit N`` through the
  sequence index, give what a scan of the whole journal gives;
* the audit checks the index against the postings;
* a ledger of schema version 2 (before the index) is refused with its version named,
  and ``charter ledger migrate URL`` adds the index after verifying the ledger (a
  tampered one is refused and left as it was).
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

import charter
from charter.runtime.store import LedgerIntegrityError, StoreError
from helpers import gig_events, invoke

ROOT = Path(__file__).resolve().parents[2]

POLICY = ROOT / "examples" / "gig_market" / "policy.charter"


@pytest.fixture(scope="module")
def built(pg_server, tmp_path_factory):
    """One gig stream of two index blocks on PostgreSQL and on SQLite."""
    lite = tmp_path_factory.mktemp("pgindex") / "gig.sqlite"
    events = list(gig_events(1300, seed=11))
    url = pg_server.new_url()
    with charter.open_runtime(POLICY, url, batch=97) as pg, \
            charter.open_runtime(POLICY, str(lite), batch=200) as sq:
        for ev in events:
            assert pg.submit(ev).to_dict() == sq.submit(ev).to_dict()
    return url, lite


def _index(pg_server, url):
    import psycopg

    schema = url.rsplit("schema=", 1)[1]
    with psycopg.connect(pg_server.url) as c:
        return sorted(c.execute(f"SELECT account, block FROM {schema}.account_block").fetchall())


def _sql(pg_server, url, *stmts):
    import psycopg

    schema = url.rsplit("schema=", 1)[1]
    with psycopg.connect(pg_server.url, autocommit=True) as c:
        c.execute(f"SET search_path TO {schema}")
        for s in stmts:
            c.execute(s)


def _copy(pg_server, url):
    """A second ledger with the same rows (tests that edit one keep the module's intact)."""
    import psycopg

    src = url.rsplit("schema=", 1)[1]
    new = pg_server.new_url()
    dst = new.rsplit("schema=", 1)[1]
    with psycopg.connect(pg_server.url, autocommit=True) as c:
        c.execute(f"CREATE SCHEMA {dst}")
        for t in ("schema_version", "meta", "journal", "state", "checkpoint", "account_block"):
            c.execute(f"CREATE TABLE {dst}.{t} (LIKE {src}.{t} INCLUDING ALL)")
            c.execute(f"INSERT INTO {dst}.{t} SELECT * FROM {src}.{t}")
    return new


def test_the_index_is_the_one_sqlite_keeps(pg_server, built):
    url, lite = built
    with sqlite3.connect(lite) as c:
        want = sorted(c.execute("SELECT account, block FROM account_block").fetchall())
    got = _index(pg_server, url)
    assert got == want and {b for _, b in got} == {0, 1}


def test_history_reads_the_indexes_and_misses_nothing(built):
    url, _ = built
    with charter.open_runtime(None, url, readonly=True, load_state=False) as rt:
        everything = rt.history()
        assert [h["seq"] for h in rt.history(limit=5)] == [h["seq"] for h in everything[-5:]]
        assert rt.history(limit=10**6) == everything
        accounts = sorted({p[k] for h in everything for p in h["postings"] for k in ("from", "to")})
        for account in accounts[:: max(1, len(accounts) // 40)] + ["party:nobody:Credit"]:
            want = [h for h in everything
                    if any(account in (p["from"], p["to"]) for p in h["postings"])][-4:]
            got = rt.history(account, limit=4)
            assert [h["seq"] for h in got] == [h["seq"] for h in want], account
            assert [h["hash"] for h in got] == [h["hash"] for h in want]
    r = invoke("ledger", "history", url, "--account", "pool:commons", "--limit", "3", "--json")
    assert r.exit_code == 0 and len(json.loads(r.output)) == 3


@pytest.mark.parametrize("stmt,says", [
    ("DELETE FROM account_block WHERE (account, block) IN "
     "(SELECT account, block FROM account_block ORDER BY 1, 2 LIMIT 3)", "lacks 3"),
    ("INSERT INTO account_block VALUES (7, 123456)", "holds 1"),
])
def test_audit_checks_the_index(pg_server, built, stmt, says):
    url = _copy(pg_server, built[0])
    assert charter.audit_ledger(url).ok
    _sql(pg_server, url, stmt)
    rep = charter.audit_ledger(url)
    assert not rep.ok and any(says in p and "per-account index" in p for p in rep.problems), \
        rep.problems


def _as_version_2(pg_server, url):
    _sql(pg_server, url, "DROP TABLE account_block", "UPDATE schema_version SET version = 2")


def test_a_version_2_ledger_is_named_and_migrated(pg_server, built):
    url = _copy(pg_server, built[0])
    index = _index(pg_server, url)
    with charter.open_runtime(None, url, readonly=True) as rt:
        head, seq = rt.head, rt.seq
    _as_version_2(pg_server, url)
    for readonly in (True, False):
        with pytest.raises(StoreError, match="schema version 2.*ledger migrate"):
            charter.open_runtime(None, url, readonly=readonly)
    r = invoke("ledger", "history", url, "--limit", "1")
    assert r.exit_code == 2 and "schema version 2" in r.output and "Traceback" not in r.output
    r = invoke("ledger", "migrate", url)
    assert r.exit_code == 0 and "migrated schema version 2 -> 3" in r.output, r.output
    assert f"{seq} entries verified" in r.output and head in r.output
    assert _index(pg_server, url) == index  # what the live writer kept
    assert invoke("ledger", "migrate", url).output.strip().endswith("already version 3")
    with charter.open_runtime(None, url) as rt:  # writable again, and audits clean
        assert (rt.head, rt.seq) == (head, seq)
        assert rt.audit().ok


def test_a_tampered_version_2_ledger_is_not_migrated(pg_server, built):
    url = _copy(pg_server, built[0])
    _as_version_2(pg_server, url)
    # an old entry's time: the chain no longer hashes (the open check sees only the end)
    _sql(pg_server, url, "UPDATE journal SET entry = replace(entry, '\"time\":', '\"time\":1') "
                         "WHERE seq = 30")
    r = invoke("ledger", "migrate", url)
    assert r.exit_code == 2 and "journal entry 30" in r.output and "Traceback" not in r.output
    with pytest.raises(StoreError, match="schema version 2"):  # left as it was
        charter.open_runtime(None, url, readonly=True)


def test_migrate_names_what_is_not_a_ledger(pg_server):
    r = invoke("ledger", "migrate", pg_server.new_url())
    assert r.exit_code == 2 and "no such ledger" in r.output
