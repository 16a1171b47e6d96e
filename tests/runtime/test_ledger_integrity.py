"""A ledger that fails its integrity check is never appended to; foreign files are left alone.

Each tamper case edits a real ledger file with sqlite3 (as someone with the
file would) and then asks `charter run` and the API to write to it: both
refuse, with the open-time check's reason and the audit's, and the file is
byte-for-byte unchanged.  Read-only commands still open it and `charter
audit` reports the damage.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sqlite3
import sys
from pathlib import Path

import pytest

from charter.runtime.api import (
    LedgerIntegrityError,
    NotALedgerError,
    StoreError,
    audit_ledger,
    open_runtime,
)
from charter.runtime.integrity import Checkpoint, meta_digest, state_digest
from charter.runtime.journal import ANCHOR_EVERY, chain
from charter.runtime.sqlite_store import migrate, tamper_connection
from helpers import invoke

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))
from fuzz_ledger_files import downgrade  # noqa: E402  (old schemas, as older Charter wrote them)
EXAMPLE = ROOT / "examples" / "gig_market"
POLICY = str(EXAMPLE / "policy.charter")
EVENTS = str(EXAMPLE / "events.jsonl")


@pytest.fixture(scope="module")
def pristine(tmp_path_factory):
    db = tmp_path_factory.mktemp("pristine") / "gig.sqlite"
    r = invoke("run", POLICY, EVENTS, "--db", db)
    assert r.exit_code == 0, r.output
    return db


@pytest.fixture
def ledger(pristine, tmp_path):
    db = tmp_path / "gig.sqlite"
    shutil.copy(pristine, db)
    return db


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _sql(*stmts):
    def tamper(db: Path) -> None:
        c = tamper_connection(db)  # entry_text/entry_blob: entries are kept packed
        for s in stmts:
            c.execute(s)
        c.commit()
        c.close()

    return tamper


def _forge_posting(db: Path, reseal: bool = False) -> None:
    """Raise a deposit, re-hash the chain from there and fix the balances (a careful forger)."""
    c = tamper_connection(db)
    meta = {k: json.loads(v) for k, v in c.execute("SELECT key, value FROM meta")}
    prev = meta["genesis"]
    rows = c.execute("SELECT seq, entry_text(entry, seq, event_id) FROM journal ORDER BY seq").fetchall()
    forged = None
    for seq, entry in rows:
        data = json.loads(entry)
        if forged is None and data["event"]["type"] == "deposit":
            p = data["postings"][0]
            p[3] += 100_00
            forged = p[1], p[0]
            entry = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        prev = chain(prev, entry)
        kept = prev if seq % ANCHOR_EVERY == 0 else None
        c.execute("UPDATE journal SET entry = entry_blob(?), hash = raw_hash(?) WHERE seq = ?",
                  (entry, kept, seq))
    to, supply = forged
    c.execute("UPDATE state SET value = value + 10000 WHERE kind = 'balance' AND key = ?", (to,))
    c.execute("UPDATE state SET value = value - 10000 WHERE kind = 'balance' AND key = ?", (supply,))
    if reseal:
        seq, head = rows[-1][0], prev
        d, n = state_digest(c.execute("SELECT kind, key, value FROM state"))
        cp = Checkpoint(seq, head, d, n, meta_digest(c.execute("SELECT key, value FROM meta")))
        c.execute(
            "UPDATE checkpoint SET seq=?, head=?, state_digest=?, state_rows=?, meta_digest=?, "
            "hash=?",
            cp.row(),
        )
    c.commit()
    c.close()


LAST = "(SELECT max(seq) FROM journal)"
# (name, tamper, what the open-time check says, what the audit says or None)
TAMPER = [
    (
        "edited posting",
        _sql(
            "UPDATE journal SET entry = entry_blob(replace(entry_text(entry, seq, event_id), 'party:ann:Credit', "
            "'party:bob:Credit')) WHERE seq = (SELECT max(seq) FROM journal "
            "WHERE entry_text(entry, seq, event_id) LIKE '%party:ann:Credit%')"
        ),
        "modified row",
        "modified row",
    ),
    (
        "edited posting amount",
        _sql(
            "UPDATE journal SET entry = entry_blob(replace(entry_text(entry, seq, event_id), '\"Credit\",', "
            "'\"Credit\",1')) WHERE seq = (SELECT max(seq) FROM journal "
            "WHERE entry_text(entry, seq, event_id) LIKE '%\"Credit\",%')"
        ),
        "modified row",
        "modified row",
    ),
    ("forged posting, chain recomputed", _forge_posting, "chain rewritten", "replays to"),
    ("deleted last entry", _sql(f"DELETE FROM journal WHERE seq = {LAST}"), "entries deleted",
     "journal's postings give"),
    ("deleted middle entry", _sql("DELETE FROM journal WHERE seq = 10"), "entries missing",
     "sequence number"),
    (
        "appended entry",
        _sql(
            f"INSERT INTO journal SELECT seq + 1, event_id || 'x', entry, hash FROM journal "
            f"WHERE seq = {LAST}"
        ),
        "appended outside Charter",
        None,
    ),
    (
        "edited balance",
        _sql("UPDATE state SET value = value + 1 WHERE kind = 'balance' AND key = 'party:ann:Credit'"),
        "changed outside Charter",
        "balance of party:ann:Credit",
    ),
    (
        "edited record",
        _sql("UPDATE state SET value = replace(value, 'false', 'true') "
             "WHERE kind = 'record' AND value LIKE '%false%'"),
        "changed outside Charter",
        "stored record",
    ),
    (
        "deleted state row",
        _sql("DELETE FROM state WHERE kind = 'balance' AND key = 'party:ann:Credit'"),
        "changed outside Charter",
        "balance of party:ann:Credit",
    ),
    (  # the last entry keeps no hash (the checkpoint has the head): one written is compared
        "edited hash column",
        _sql(f"UPDATE journal SET hash = randomblob(32) WHERE seq = {LAST}"),
        "modified row",
        None,
    ),
    (
        "edited hash column, earlier entry",
        _sql(f"UPDATE journal SET hash = randomblob(32) WHERE seq = {LAST} - 3"),
        "modified row",
        "modified row",
    ),
    (
        "packed entry not readable",
        _sql(f"UPDATE journal SET entry = x'00ff00ff' WHERE seq = {LAST} - 2"),
        "not readable",
        "not readable",
    ),
    (
        "entry stored as plain text",
        _sql(f"UPDATE journal SET entry = entry_text(entry, seq, event_id) WHERE seq = {LAST} - 2"),
        "not readable",
        "not readable",
    ),
    (
        "unreadable recorded policy",
        _sql("UPDATE meta SET value = '\"{not json\"' WHERE key = 'policy_ir'"),
        "recorded policy cannot be read",
        None,
    ),
    (
        "edited recorded parameters",
        _sql("UPDATE meta SET value = replace(value, '20', '25') WHERE key = 'params'"),
        "genesis hash does not match",
        None,
    ),
    ("deleted metadata", _sql("DELETE FROM meta"), "records no policy", None),
    (
        "edited checkpoint",
        _sql("UPDATE checkpoint SET seq = seq + 1"),
        "checkpoint row is missing or does not match",
        None,
    ),
    ("deleted checkpoint", _sql("DELETE FROM checkpoint"), "checkpoint row is missing", None),
    (  # found by the 100,000-mutation run: a flipped byte in the schema text made seq a string
        "edited table definition",
        _sql("PRAGMA writable_schema = ON",
             "UPDATE sqlite_master SET sql = replace(sql, 'seq INTEGER PRIMARY KEY', "
             "'seq TEXT PRIMARY KEY') WHERE name = 'journal'"),
        "definition of table journal was changed",
        None,
    ),
    # found by fuzz_ledger_files --target history: `history --account` trusts the index, so a
    # lost (account, block) pair silently emptied the account's history; the open now checks
    # the pairs of the blocks its re-hashed window covers
    (
        "deleted per-account index row",
        _sql("DELETE FROM account_block WHERE account = "
             "(SELECT account FROM account_block ORDER BY account LIMIT 1)"),
        "per-account index lacks 1",
        "per-account index lacks 1",
    ),
    (
        "edited per-account index block",
        _sql("UPDATE account_block SET block = 'x' WHERE account = "
             "(SELECT account FROM account_block ORDER BY account LIMIT 1)"),
        "per-account index lacks 1",
        "per-account index lacks 1",
    ),
]


@pytest.mark.parametrize("name,tamper,reason,audit_reason", TAMPER, ids=[t[0] for t in TAMPER])
def test_tampered_ledger_is_refused_by_run_and_api(ledger, name, tamper, reason, audit_reason):
    tamper(ledger)
    before = _digest(ledger)
    r = invoke("run", POLICY, EVENTS, "--db", ledger)
    assert r.exit_code == 2, r.output
    assert f"refusing to write to {ledger}" in r.output
    assert reason in r.output and "Traceback" not in r.output
    if audit_reason:
        assert audit_reason in r.output  # the audit's own finding, not only "digest differs"
    with pytest.raises(LedgerIntegrityError) as e:
        open_runtime(None if "policy" in name or "metadata" in name else POLICY, str(ledger))
    assert e.value.path == str(ledger) and any(reason in p for p in e.value.problems)
    assert _digest(ledger) == before  # nothing written, not even a new checkpoint
    # read-only access still works for inspection, and the audit says what is wrong
    if "policy" not in name and "metadata" not in name:
        r = invoke("audit", ledger)
        assert r.exit_code == 1 and "FAILED" in r.output, r.output
        r = invoke("ledger", "balances", ledger)
        assert r.exit_code == 0 and "fails its integrity check" in r.output


def test_intact_ledger_opens_and_resumes(ledger):
    r = invoke("run", POLICY, EVENTS, "--db", ledger)
    assert r.exit_code == 0 and "resumed after line" in r.output
    rt = open_runtime(POLICY, str(ledger))
    assert rt.store.check_integrity() == []
    rt.close()
    assert audit_ledger(str(ledger)).ok


def test_a_resealed_forgery_passes_the_open_check_but_not_audit(ledger):
    """What only a signed checkpoint stops (issue 18): the forger recomputes the chain, the
    balances and the checkpoint with the public algorithm.  The open check cannot tell;
    `charter audit` replays the events and can."""
    _forge_posting(ledger, reseal=True)
    rt = open_runtime(POLICY, str(ledger))  # accepted: indistinguishable without a secret
    rt.close()
    r = invoke("audit", ledger)
    assert r.exit_code == 1 and "replays to a different entry" in r.output


def test_integrity_refusal_names_the_policy_path_not_an_object(ledger):
    _sql("UPDATE meta SET value = '\"garbage\"' WHERE key = 'policy_ir'")(ledger)
    for cmd in (("audit", ledger), ("replay", ledger), ("ledger", "balances", ledger)):
        r = invoke(*cmd)
        assert r.exit_code == 2 and str(ledger) in r.output, r.output
        assert "object at 0x" not in r.output and "Traceback" not in r.output


def _foreign_sqlite(db: Path, tables: bool = True, app_id: int = 0) -> None:
    c = sqlite3.connect(db)
    if app_id:
        c.execute(f"PRAGMA application_id = {app_id}")
    if tables:
        c.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)")
        c.execute("INSERT INTO notes (body) VALUES ('someone else''s data')")
    else:
        c.execute("PRAGMA user_version = 7")  # a header, no tables
    c.commit()
    c.close()


def _charter_lookalike(db: Path) -> None:
    """Another app's database that happens to have tables with Charter's names."""
    c = sqlite3.connect(db)
    c.execute("PRAGMA application_id = 1234")
    for t in ("schema_version", "meta", "journal", "state", "checkpoint"):
        c.execute(f"CREATE TABLE {t} (x)")
    c.execute("INSERT INTO schema_version VALUES (3)")
    c.commit()
    c.close()


FOREIGN = [
    ("zero bytes", lambda p: p.write_bytes(b""), "empty file (0 bytes)"),
    ("text file", lambda p: p.write_text("name,amount\nann,5\n"), "not an SQLite database"),
    ("truncated header", lambda p: p.write_bytes(b"SQLite format 3\x00" + b"\x00" * 84),
     "not a Charter ledger"),
    ("another app's SQLite", _foreign_sqlite, "not a Charter ledger"),
    ("empty SQLite database", lambda p: _foreign_sqlite(p, tables=False), "not a Charter ledger"),
    ("SQLite with another application id", _charter_lookalike, "not a Charter ledger"),
]


@pytest.mark.parametrize("name,make,text", FOREIGN, ids=[f[0] for f in FOREIGN])
def test_foreign_files_are_refused_and_left_untouched(tmp_path, name, make, text):
    db = tmp_path / "ledger.sqlite"
    make(db)
    before = _digest(db)
    r = invoke("run", POLICY, EVENTS, "--db", db)
    assert r.exit_code == 2 and text in r.output and str(db) in r.output, r.output
    assert "Traceback" not in r.output
    with pytest.raises(NotALedgerError) as e:
        open_runtime(POLICY, str(db))
    assert e.value.path == str(db)
    for cmd in (("audit", db), ("ledger", "balances", db)):
        r = invoke(*cmd)
        assert r.exit_code == 2 and str(db) in r.output
    assert _digest(db) == before  # never reinitialised, not even switched to WAL
    assert not Path(str(db) + "-wal").exists() or name != "another app's SQLite"


def test_a_new_ledger_is_created_whole(tmp_path):
    db = tmp_path / "new.sqlite"
    rt = open_runtime(POLICY, str(db))
    rt.close()
    assert not [p for p in tmp_path.iterdir() if "creating" in p.name]
    c = sqlite3.connect(db)
    assert c.execute("PRAGMA application_id").fetchone()[0] != 0
    assert c.execute("SELECT seq FROM checkpoint").fetchone() == (0,)
    c.close()
    with pytest.raises(StoreError, match="no such ledger"):
        open_runtime(None, str(tmp_path / "absent.sqlite"))


def test_schema_3_ledger_is_refused_by_name_then_migrated(ledger, tmp_path):
    before = audit_ledger(str(ledger))
    with open_runtime(None, str(ledger), readonly=True) as rt:
        balances = rt.balances()
    downgrade(ledger, 3)
    old = _digest(ledger)
    r = invoke("run", POLICY, EVENTS, "--db", ledger)
    assert r.exit_code == 2 and "schema version 3" in r.output and "ledger migrate" in r.output
    assert _digest(ledger) == old
    r = invoke("ledger", "migrate", ledger)
    assert r.exit_code == 0, r.output
    assert "version 3 -> 7" in r.output
    assert (tmp_path / (ledger.name + ".v3.bak")).is_file()
    after = audit_ledger(str(ledger))
    assert after.ok and after.head == before.head and after.entries == before.entries
    assert json.loads(invoke("ledger", "balances", ledger, "--json").output) == balances
    r = invoke("run", POLICY, EVENTS, "--db", ledger)  # resumes on the migrated file
    assert r.exit_code == 0 and "resumed after line" in r.output
    assert invoke("ledger", "migrate", ledger).output.strip().endswith("already version 7")


def test_a_tampered_old_ledger_is_not_migrated(ledger):
    downgrade(ledger, 3)
    _sql("UPDATE state SET value = value + 1 WHERE key = 'party:ann:Credit'")(ledger)
    old = _digest(ledger)
    with pytest.raises(LedgerIntegrityError, match="balance of party:ann:Credit"):
        migrate(ledger)
    r = invoke("ledger", "migrate", ledger)
    assert r.exit_code == 2 and "balance of party:ann:Credit" in r.output
    assert _digest(ledger) == old
