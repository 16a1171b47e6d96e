"""The PostgreSQL store against a real server (the ``pg_server`` fixture; no mock database).

* the same stream gives the same journal (byte for byte), state rows and checkpoint on
  SQLite and PostgreSQL: every example economy's stream;
* several processes on one ledger: every event applied exactly once, one serial order,
  no internal errors, audit and replay clean;
* a runtime's cached state is right after another process commits;
* hostile events of every JSON type change nothing on a rejection, and settle as on SQLite;
* tampering is refused at open, as for SQLite.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

import charter
from charter.compiler.pipeline import Compilation
from charter.runtime.postgres_store import PostgresStore
from charter.runtime.store import LedgerIntegrityError, StoreError
from charter.runtime.store_url import parse

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
EXAMPLES = sorted(p for p in (ROOT / "examples").iterdir() if (p / "events.jsonl").is_file())


def _events(path: Path) -> list:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


@pytest.fixture(scope="module")
def shared_policy():
    return Compilation.from_path(HERE / "shared.charter").ir


def _journal(rt) -> list:
    # every row's hash: a SQLite ledger keeps hashes at anchors only (journal.ANCHOR_EVERY)
    return [tuple(r) for r in rt.journal_rows()]


# ------------------------------------------------------------------ same journal hash


@pytest.mark.parametrize("example", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_same_stream_same_journal_on_sqlite_and_postgres(example, pg_server, tmp_path):
    pol = Compilation.from_path(example / "policy.charter").ir
    events = _events(example / "events.jsonl")
    lite = charter.open_runtime(pol, tmp_path / "l.sqlite", synchronous="NORMAL")
    # a batch on PostgreSQL: batching changes when rows are written, never what
    pg = charter.open_runtime(pol, pg_server.new_url(), batch=7)
    try:
        for ev in events:
            a, b = lite.submit(ev), pg.submit(ev)
            assert a.to_dict() == b.to_dict(), ev
        pg.flush()
        assert pg.seq == lite.seq > 0
        assert pg.head == lite.head
        assert _journal(pg) == _journal(lite)
        assert sorted(pg.store.rows()) == sorted(lite.store.rows())
        # the open-time checkpoint agrees too: the same state digest over the same rows
        assert pg.store._cp.row() == lite.store._cp.row()
        assert pg.audit().ok
    finally:
        lite.close()
        pg.close()


def test_reopened_ledger_audits_and_replays_from_the_url(pg_server, gig_policy, gig_events):
    url = pg_server.new_url()
    with charter.open_runtime(gig_policy, url) as rt:
        for ev in gig_events:
            rt.submit(ev)
        applied, head, rows, parties = rt.seq, rt.head, rt.state_rows(), set(rt.state.parties)
    again = charter.open_runtime(None, url)  # the recorded policy
    try:
        assert again.head == head and again.state_rows() == rows
        assert again.state.parties <= parties
    finally:
        again.close()
    assert charter.audit_ledger(url).ok
    rep = charter.replay(url)
    assert rep.ok and rep.head == head and rep.entries == applied


# ------------------------------------------------------------------ a cache kept right


def test_a_runtime_catches_up_with_commits_of_another(pg_server, gig_policy, gig_events):
    url = pg_server.new_url()
    first = gig_events[:12]
    a = charter.open_runtime(gig_policy, url)
    b = charter.open_runtime(gig_policy, url)  # opened before a commits anything
    ref = charter.open_runtime(gig_policy, ":memory:")  # one process doing it all
    try:
        for ev in first:
            assert a.submit(ev).to_dict() == ref.submit(ev).to_dict()
        assert b.seq == 0  # b has not looked yet
        # b settles the next event on the state a left: the same receipt as the single process
        nxt = gig_events[12]
        assert b.submit(nxt).to_dict() == ref.submit(nxt).to_dict()
        assert b.state_rows() == ref.state_rows()
        assert b.state.parties == ref.state.parties  # derived state too (replayed, not read)
        # an event a applied, re-sent through b: the original receipt, nothing new
        again = b.submit(first[3])
        assert again.applied and again.duplicate and again.tx == 4
        # a catches up with b's commit through refresh (reads) and submit alike
        a.refresh()
        assert a.state_rows() == ref.state_rows() and a.head == ref.head
        for ev in gig_events[13:]:
            who = a if hash(ev["id"]) % 2 else b
            assert who.submit(ev).to_dict() == ref.submit(ev).to_dict()
        a.refresh()
        b.refresh()
        assert a.head == b.head == ref.head
        assert a.state_rows() == b.state_rows() == ref.state_rows()
        assert a.audit().ok and b.audit().ok
    finally:
        a.close()
        b.close()


def test_a_runtime_refuses_a_ledger_rewritten_under_it(pg_server, gig_policy, gig_events):
    url = pg_server.new_url()
    a = charter.open_runtime(gig_policy, url)
    b = charter.open_runtime(gig_policy, url)
    try:
        for ev in gig_events[:5]:
            a.submit(ev)
        b.refresh()
        for ev in gig_events[5:8]:
            a.submit(ev)
        assert a.seq > b.seq
        # someone edits an entry b has not seen yet (and fixes nothing else)
        a.store.execute("UPDATE journal SET entry = entry || ' ' WHERE seq = %s", (a.seq,))
        with pytest.raises(StoreError, match="does not continue this runtime's chain"):
            b.submit(gig_events[6])
        with pytest.raises(StoreError):  # and stays refused: reopen the ledger
            b.submit(gig_events[6])
    finally:
        a.close()
        b.close()


# ------------------------------------------------------------------ several processes


def _spawn_workers(
    url: str, shares: list[list], tmp_path: Path, batches: list[int], policy: str = ""
) -> list[list]:
    start_at = time.time() + 3  # every process has started, connected and loaded by then
    procs = []
    for i, share in enumerate(shares):
        f = tmp_path / f"share{i}.json"
        f.write_text(json.dumps(share))
        argv = [sys.executable, str(HERE / "pg_worker.py"), url, str(f), str(start_at)]
        argv += [str(batches[i])] + ([policy] if policy else [])
        procs.append(subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                      text=True))
    results = []
    for p in procs:
        out, err = p.communicate(timeout=300)
        assert p.returncode == 0, f"worker failed ({p.returncode}):\n{out[-2000:]}\n{err[-3000:]}"
        assert "Traceback" not in err, err[-3000:]
        results.append([json.loads(line) for line in out.splitlines() if line.strip()])
    return results


def _stream(n: int) -> list:
    """``n`` events whose outcome does not depend on their order: joins, new notes, and
    bumps of one shared record (a lost update would show in its counter)."""
    evs = []
    for j in range(n):
        if j % 3 == 0:
            evs.append({"id": f"e{j}", "type": "join", "submitter": f"p{j}", "args": {}})
        elif j % 3 == 1:
            evs.append({"id": f"e{j}", "type": "note", "submitter": f"q{j % 7}",
                        "args": {"key": f"k{j}"}})
        else:
            evs.append({"id": f"e{j}", "type": "bump", "submitter": f"q{j % 5}",
                        "args": {"key": "shared"}})
    return evs


def test_concurrent_processes_apply_every_event_exactly_once(pg_server, tmp_path):
    """Four processes create one ledger at once and race to settle the same events: two
    commit each event, two commit batches of 5 (holding the ledger's lock per batch)."""
    url = pg_server.new_url()
    n_proc, events = 4, _stream(120)
    setup = {"id": "setup", "type": "note", "submitter": "admin", "args": {"key": "shared"}}
    # every process first submits the setup (one applies it, the others get its receipt);
    # every event goes to two processes, and the two halves run in opposite orders, so the
    # processes really race for each event
    shares = [
        [setup]
        + [e for j, e in enumerate(events) if j % n_proc == i]
        + [e for j, e in reversed(list(enumerate(events))) if j % n_proc == (i + 1) % n_proc]
        for i in range(n_proc)
    ]
    results = _spawn_workers(url, shares, tmp_path, [1, 1, 5, 5], str(HERE / "shared.charter"))
    outcomes = [o for r in results for o in r]
    assert not [o for o in outcomes if "error" in o]
    assert all(o["applied"] for o in outcomes), [o for o in outcomes if not o["applied"]][:5]
    firsts = [o for o in outcomes if not o["duplicate"]]
    # exactly once: one applying receipt per event, the others its duplicate with the same tx
    assert sorted(o["id"] for o in firsts) == sorted(e["id"] for e in [setup, *events])
    by_id = {o["id"]: o for o in firsts}
    for o in outcomes:
        assert (o["tx"], o["hash"]) == (by_id[o["id"]]["tx"], by_id[o["id"]]["hash"])
    rt = charter.open_runtime(None, url, readonly=True)
    try:
        journal = list(rt.store.journal())
        # one serial order, recorded: entries 1..N with no gap, each id once, as receipted
        assert [r.seq for r in journal] == list(range(1, len(events) + 2))
        assert {(r.seq, r.hash) for r in journal} == {(o["tx"], o["hash"]) for o in firsts}
        bumps = sum(1 for e in events if e["type"] == "bump")
        assert rt.records("Note")["shared"]["n"] == bumps  # no lost update
        notes = sum(1 for e in events if e["type"] == "note") + 1
        assert rt.balance("pool:pot", "Credit") == 100 * notes
        assert rt.audit().ok
        assert charter.replay(rt).ok
    finally:
        rt.close()


# ------------------------------------------------------------------ tamper refusal


TAMPERS = {
    "balance": "UPDATE state SET value = '999999' WHERE kind = 'balance' AND value <> '0' "
    "AND ctid = (SELECT ctid FROM state WHERE kind = 'balance' LIMIT 1)",
    "entry hash": "UPDATE journal SET hash = md5(hash) || md5(hash) WHERE seq = 3",
    "deleted entry": "DELETE FROM journal WHERE seq = (SELECT max(seq) FROM journal)",
    "appended entry": "INSERT INTO journal SELECT seq + 1000, event_id || 'x', entry, hash "
    "FROM journal WHERE seq = 1",
    "policy": "UPDATE meta SET value = replace(value, 'gig', 'gag') WHERE key = 'policy_ir'",
    "checkpoint": "UPDATE checkpoint SET seq = seq - 1",
    "column type": "ALTER TABLE state ALTER COLUMN value TYPE varchar(100000)",
}


@pytest.mark.parametrize("what", list(TAMPERS))
def test_a_tampered_ledger_is_refused(what, pg_server, gig_policy, gig_events):
    url = pg_server.new_url()
    with charter.open_runtime(gig_policy, url) as rt:
        for ev in gig_events[:15]:
            rt.submit(ev)
        rt.store.execute(TAMPERS[what])
    with pytest.raises(LedgerIntegrityError) as info:
        charter.open_runtime(None, url)
    assert "refusing to write" in str(info.value)
    # read-only opens work and say what is wrong; audit fails
    ro = charter.open_runtime(None, url, readonly=True) if what != "policy" else None
    if ro is not None:
        try:
            assert ro.store.integrity_problems
            assert not ro.audit().ok
        finally:
            ro.close()


def test_a_foreign_schema_is_not_a_ledger(pg_server):
    import psycopg

    url = pg_server.new_url()
    schema = url.rsplit("schema=", 1)[1]
    with psycopg.connect(pg_server.url, autocommit=True) as c:
        c.execute(f"CREATE SCHEMA {schema}")
        c.execute(f"CREATE TABLE {schema}.journal (x int)")
    with pytest.raises(charter.NotALedgerError, match="left untouched"):
        charter.open_runtime(Compilation.from_path(HERE / "shared.charter").ir, url)
    with psycopg.connect(pg_server.url, autocommit=True) as c:
        assert c.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = %s", (schema,)
        ).fetchone() == (1,)


def test_a_missing_ledger_is_not_created_by_readers(pg_server):
    url = pg_server.new_url()
    with pytest.raises(StoreError, match="no such ledger"):
        charter.audit_ledger(url)


def test_keys_postgresql_text_cannot_hold_round_trip(pg_server, shared_policy, tmp_path):
    """A record key is event text: NUL, non-ASCII, quotes.  PostgreSQL TEXT refuses NUL, so
    the store keeps keys as bytes; the ledger must read back exactly as SQLite's does."""
    keys = ["a\x00b", "\x00", "é", "Ω\u0301", "'; DROP TABLE state; --", "\\x00", "z" * 5000]
    url = pg_server.new_url()
    lite = charter.open_runtime(shared_policy, tmp_path / "k.sqlite", synchronous="NORMAL")
    with charter.open_runtime(shared_policy, url) as pg:
        for i, k in enumerate(keys):
            ev = {"id": f"n{i}", "type": "note", "submitter": "ann", "time": i, "args": {"key": k}}
            a, b = pg.submit(ev), lite.submit(ev)
            assert a.applied and a.to_dict() == b.to_dict()
            ev = {"id": f"b{i}", "type": "bump", "submitter": "bob", "time": i, "args": {"key": k}}
            assert pg.submit(ev).to_dict() == lite.submit(ev).to_dict()
    with charter.open_runtime(None, url) as again:
        assert sorted(again.records("Note")) == sorted(keys)
        assert again.state_rows() == lite.state_rows()
        assert sorted(again.store.rows()) == sorted(lite.store.rows())
        assert again.head == lite.head and again.audit().ok
    lite.close()


def test_a_writer_killed_holding_the_lock_blocks_nobody(pg_server, shared_policy):
    """kill -9 of a process in the middle of a batch (lock held, nothing committed): the
    server drops its transaction and lock; the next writer goes on, without its events."""
    import signal

    url = pg_server.new_url()
    with charter.open_runtime(shared_policy, url) as rt:
        assert rt.submit({"id": "first", "type": "join", "submitter": "ann", "time": 1}).applied
    code = (
        "import sys, time, charter; rt = charter.open_runtime(None, sys.argv[1], batch=1000)\n"
        "for i in range(3):\n"
        "    assert rt.submit({'id': f'k{i}', 'type': 'join', 'submitter': f'k{i}', 'time': 2})"
        ".applied\n"
        "print('holding', flush=True); time.sleep(120)\n"
    )
    p = subprocess.Popen([sys.executable, "-c", code, url], stdout=subprocess.PIPE, text=True)
    try:
        assert p.stdout.readline().strip() == "holding"
        # meanwhile another writer waits at most its lock timeout, is told who holds the
        # lock, and is not broken by it
        spec = parse(url)
        store = PostgresStore(spec.target, schema=spec.schema, lock_timeout=0.5)
        waiting = charter.open_runtime(None, store)
        with pytest.raises(charter.LedgerBusyError, match=f"held by process {p.pid} "):
            waiting.submit({"id": "w", "type": "join", "submitter": "w", "time": 2})
        assert not waiting.broken and waiting.seq == 1
        with pytest.raises(charter.LedgerBusyError):
            waiting.refresh()
        assert not waiting.broken
        p.send_signal(signal.SIGKILL)
        p.wait(timeout=30)
    finally:
        if p.poll() is None:
            p.kill()
    with waiting as rt:  # the lock is free again: the same runtime goes on
        out = rt.submit({"id": "after", "type": "join", "submitter": "bob", "time": 3})
        assert out.applied and out.tx == 2
        assert [r.event_id for r in rt.store.journal()] == ["first", "after"]
        assert rt.audit().ok


def test_a_failed_commit_leaves_nothing_and_releases_the_lock(pg_server, shared_policy):
    url = pg_server.new_url()
    rt = charter.open_runtime(shared_policy, url)
    assert rt.submit({"id": "a", "type": "join", "submitter": "ann", "time": 1}).applied
    # the server now refuses any further entry (a constraint added behind Charter's back)
    rt.store.execute("ALTER TABLE journal ADD CONSTRAINT one CHECK (seq < 2)")
    with pytest.raises(StoreError, match="write failed"):
        rt.submit({"id": "b", "type": "join", "submitter": "bob", "time": 2})
    assert rt.broken  # reopen the ledger
    rt.close()
    other = charter.open_runtime(None, url)  # not blocked: the failed commit let go
    try:
        assert [r.event_id for r in other.store.journal()] == ["a"]
        assert other.seq == 1 and other.audit().ok
    finally:
        other.close()
