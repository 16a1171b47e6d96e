"""Ledger commands read stored rows and the journal without loading the state.

``open_runtime(..., readonly=True, load_state=False)`` is what ``ledger balances``,
``accounts``, ``history``, ``export`` and ``audit`` open: it must answer exactly as a
runtime with its whole state loaded does, load nothing of the state, refuse to settle,
and replay must still catch every stored row that differs from the rebuilt state
(compared row by row, not as two sorted lists).
"""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner

from charter.cli import cli
from charter.runtime.api import StoreError, audit_ledger, open_runtime, replay
from helpers import gig_events, invoke

ROOT = Path(__file__).resolve().parents[2]
GIG = ROOT / "examples" / "gig_market"


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    d = tmp_path_factory.mktemp("readers")
    db = d / "gig.sqlite"
    with open_runtime(GIG / "policy.charter", str(db), batch=200) as rt:
        rt.submit_batch(gig_events(1200, seed=5))
    return db


@pytest.fixture
def ledger(built, tmp_path):
    db = tmp_path / "gig.sqlite"
    shutil.copy(built, db)
    return db


def test_a_stateless_reader_answers_as_the_loaded_runtime(built):
    full = open_runtime(None, str(built), readonly=True)
    lite = open_runtime(None, str(built), readonly=True, load_state=False)
    try:
        assert full.state.row_count() > 100 and lite.state.row_count() == 0  # nothing loaded
        assert lite.balances() == full.balances()
        assert lite.balances(include_zero=True) == full.balances(include_zero=True)
        assert (lite.seq, lite.head) == (full.seq, full.head)
        for account in (None, "party:a001:Credit", "pool:commons"):
            assert lite.history(account, limit=7) == full.history(account, limit=7)
        rep = lite.audit()
        assert rep.ok and rep.entries == full.seq, rep.problems
        assert replay(lite).ok
        with pytest.raises(StoreError, match="without its state"):
            lite.submit({"id": "x", "type": "join", "submitter": "z", "time": 10**9, "args": {}})
    finally:
        full.close()
        lite.close()


def test_cli_readers_agree_with_the_loaded_state(built):
    with open_runtime(None, str(built), readonly=True) as rt:
        balances = rt.balances()
        accounts = rt.balances(include_zero=True)
    r = invoke("ledger", "balances", built, "--json")
    assert r.exit_code == 0 and json.loads(r.output) == balances
    r = invoke("ledger", "accounts", built, "--json")
    assert r.exit_code == 0
    assert {a["account"]: a["balance"] for a in json.loads(r.output)} == accounts
    r = invoke("ledger", "history", built, "--account", "party:a002:Credit", "--limit", "3",
               "--json")
    assert r.exit_code == 0 and len(json.loads(r.output)) == 3
    r = invoke("audit", built)
    assert r.exit_code == 0 and "OK:" in r.output, r.output


def _edit(db: Path, sql: str, *args) -> None:
    c = sqlite3.connect(db)
    c.execute(sql, args)
    c.commit()
    c.close()


@pytest.mark.parametrize(
    "sql,args,says",
    [
        # a row replay does not rebuild
        ("INSERT INTO state VALUES ('meta', 'f0:nosuchtask', '5')", (), "stored meta f0:nosuchtask"),
        # a row replay rebuilds but the file lacks
        ("DELETE FROM state WHERE kind = 'record' AND key = ?", ('["Task","t3"]',),
         "is None but replay gives"),
        # equal to Python, not the same JSON (1500.0 == 1500): the texts are compared
        ("UPDATE state SET value = value || '.0' WHERE kind = 'balance' AND key = ?",
         ("party:a001:Credit",), "stored balance party:a001:Credit"),
        ("UPDATE state SET value = '[]' WHERE kind = 'record' AND key = ?", ('["Task","t4"]',),
         'stored record ["Task","t4"] is []'),
    ],
)
def test_replay_finds_each_stored_row_that_differs(ledger, sql, args, says):
    _edit(ledger, sql, *args)
    rep = replay(str(ledger))
    assert not rep.ok and any(says in p for p in rep.problems), rep.problems
    assert not audit_ledger(str(ledger)).ok  # the checkpoint's digest says so too


def test_history_by_account_reads_the_index_and_misses_nothing(built):
    """Every account's newest entries through the per-account index equal those a scan of
    the whole journal finds (agents, pools, supply, escrows of early and late tasks)."""
    with open_runtime(None, str(built), readonly=True) as rt:
        accounts = sorted(rt.balances(include_zero=True))
        everything = rt.history()
        for account in accounts[:: max(1, len(accounts) // 60)] + ["party:nobody:Credit"]:
            want = [h for h in everything
                    if any(account in (p["from"], p["to"]) for p in h["postings"])][-4:]
            got = rt.history(account, limit=4)
            assert [h["seq"] for h in got] == [h["seq"] for h in want], account
            assert [h["hash"] for h in got] == [h["hash"] for h in want]


@pytest.mark.parametrize("sql,says", [
    ("DELETE FROM account_block WHERE rowid IN (SELECT rowid FROM account_block LIMIT 3)",
     "lacks 3"),
    ("INSERT INTO account_block VALUES (7, 123456)", "holds 1"),
])
def test_audit_checks_the_per_account_index(ledger, sql, says):
    _edit(ledger, sql.replace("rowid", "account || ',' || block"))
    rep = audit_ledger(str(ledger))
    assert not rep.ok and any(says in p and "per-account index" in p for p in rep.problems), \
        rep.problems


@pytest.mark.parametrize(
    "sql,args,history_warns",
    [
        # a stored balance: the state digest's finding, which history (the journal alone)
        # does not read; balances, audit and replay do
        ("UPDATE state SET value = '1' WHERE kind = 'balance' AND key = ?",
         ("party:a001:Credit",), False),
        # the newest entry deleted: the journal no longer ends at the checkpoint
        ("DELETE FROM journal WHERE seq = (SELECT max(seq) FROM journal)", (), True),
        # a recent entry's event id edited: the chain's last window no longer hashes
        ("UPDATE journal SET event_id = 'forged' WHERE seq = (SELECT max(seq) - 3 FROM journal)",
         (), True),
        # a per-account index pair of the newest block lost: `history --account` would have
        # shown that account nothing there, without a word (fuzz_ledger_files --target history)
        ("DELETE FROM account_block WHERE block = (SELECT max(block) FROM account_block) AND "
         "account = (SELECT min(account) FROM account_block WHERE block = "
         "(SELECT max(block) FROM account_block))", (), True),
    ],
)
def test_history_opens_without_the_state_digest_but_checks_the_journal(
    ledger, sql, args, history_warns
):
    """`ledger history` skips the state digest at open (its cost grows with the ledger and
    history never reads the state) but still checks the journal's end and newest window;
    `ledger balances` checks everything."""
    _edit(ledger, sql, *args)
    warning = "fails its integrity check"
    h = invoke("ledger", "history", ledger, "--limit", "2")
    assert h.exit_code == 0 and (warning in h.stderr) == history_warns, h.stderr
    b = invoke("ledger", "balances", ledger)
    assert warning in b.stderr, b.stderr
    assert not audit_ledger(str(ledger)).ok


_ENTRY = "entry_blob(replace(entry_text(entry, seq, event_id), {}), seq, event_id)"


@pytest.mark.parametrize("sql", [
    None,  # intact
    "UPDATE state SET value = '7' WHERE kind = 'balance' AND key = 'party:a001:Credit'",
    "DELETE FROM state WHERE kind = 'record' AND key = '[\"Task\",\"t3\"]'",
    # an old entry's time, and an old posting's amount (outside the open check's window)
    "UPDATE journal SET entry = " + _ENTRY.format("'\"time\":', '\"time\":1'") + " WHERE seq = 40",
    "UPDATE journal SET entry = " + _ENTRY.format("',\"release\"]', '0,\"release\"]'")
    + " WHERE seq IN (SELECT seq FROM journal LIMIT 200)",
    "UPDATE journal SET hash = raw_hash('00' || substr(hex_hash(hash), 3)) WHERE seq = 64",
    "DELETE FROM journal WHERE seq = 100",
    "DELETE FROM account_block WHERE block = 0 AND account IN "
    "(SELECT account FROM account_block LIMIT 2)",
])
def test_one_pass_audit_finds_what_audit_and_replay_find(ledger, sql):
    """`charter audit` reads the journal once (audit_and_replay): its findings are those of
    Runtime.audit and replay run one after the other, tamper by tamper."""
    from charter.runtime.api import audit_and_replay
    from charter.runtime.sqlite_store import tamper_connection

    if sql is not None:
        c = tamper_connection(ledger)
        c.execute(sql)
        c.close()
    with open_runtime(None, str(ledger), readonly=True, load_state=False) as rt:
        want_audit, want_replay = rt.audit(), replay(rt)
        got_audit, got_replay = audit_and_replay(rt)
    assert got_audit == want_audit
    assert got_replay == want_replay
    # (replay alone passes a kept hash edited: the entries still reproduce)
    assert got_audit.ok == (sql is None) and (got_replay.ok or not got_audit.ok)
    r = invoke("audit", ledger, "--json")
    assert r.exit_code == (0 if sql is None else 1)
    assert json.loads(r.stdout)["problems"] == list(want_audit.problems) + [
        p for p in want_replay.problems if p not in want_audit.problems]


def test_one_pass_audit_of_signed_entries(tmp_path):
    """Signed events and key entries go through the signature check in the one pass (the
    unsigned entries of parties without keys are passed over undecoded): equal findings,
    intact and with a signature edited."""
    from charter.runtime import signing
    from charter.runtime.api import audit_and_replay

    db = tmp_path / "signed.sqlite"
    with open_runtime(GIG / "policy.charter", str(db)) as rt:
        events = list(gig_events(300, seed=3))
        rt.submit_batch(events[:150])
        sk, pk = signing.generate_key()
        assert rt.register_key("add", "a001", pk).applied
        n = 0
        for ev in events[150:]:
            if ev["submitter"] == "a001":
                ev = signing.sign_event(ev, sk, rt.genesis)
            n += rt.submit(ev).applied and "sig" in ev
        assert n >= 3
    for edit in (False, True):
        if edit:
            from charter.runtime.sqlite_store import tamper_connection

            c = tamper_connection(db)
            c.execute("UPDATE journal SET entry = " + _ENTRY.format("'\"value\":\"', "
                      "'\"value\":\"A'") + " WHERE seq = (SELECT max(seq) FROM journal "
                      "WHERE instr(entry_text(entry, seq, event_id), '\"sig\":') > 0)")
            c.close()
        with open_runtime(None, str(db), readonly=True, load_state=False) as rt:
            want = rt.audit(), replay(rt)
            got = audit_and_replay(rt)
        assert got == want
        assert got[0].signatures == n - edit
        assert got[0].ok is not edit


@pytest.mark.parametrize("sql", [
    "ALTER TABLE account_block ADD COLUMN note TEXT",
    "ALTER TABLE state ADD COLUMN note TEXT",
])
def test_audit_fails_a_ledger_whose_table_definitions_changed(ledger, sql):
    """The open refuses a file whose tables' definitions changed (columns may no longer mean
    what Charter reads); the audit must not pass it (found by fuzz_ledger_files --target
    audit: a flipped byte in the schema text)."""
    _edit(ledger, sql)
    with pytest.raises(StoreError, match="definition of table"):
        open_runtime(None, str(ledger)).close()
    assert any("definition of table" in p for p in audit_ledger(str(ledger)).problems)
    r = invoke("audit", ledger)
    assert r.exit_code == 1 and "definition of table" in r.stdout


@pytest.mark.parametrize("value", [
    "x'00ff'",  # not a packed entry at all
    "entry_blob('{}')",  # packed, but not an entry
    "entry_blob('[1,2,3]')",
    "entry_blob('{\"event\":{\"id\":\"g1\"},\"postings\":[],\"timers\":[],\"flags\":[]}')",
    "entry_blob(replace(entry_text(entry, seq, event_id), '\"postings\":[[', "
    "'\"postings\":[[1,'), seq, event_id)",
])
@pytest.mark.parametrize("account", [None, "party:a001:Credit"])
def test_history_of_a_damaged_entry_is_a_clear_error(ledger, value, account):
    """`ledger history --limit N` (with or without --account) on a ledger whose newest entry
    is damaged names the ledger and the entry, exit 2, no traceback (found by
    fuzz_ledger_files --target history)."""
    from charter.runtime.sqlite_store import tamper_connection

    c = tamper_connection(ledger)
    seq = c.execute(  # the newest entry the command reads
        "SELECT max(seq) FROM journal WHERE instr(entry_text(entry, seq, event_id), ?) > 0",
        (account or "\"postings\":[[",)).fetchone()[0]
    c.execute(f"UPDATE journal SET entry = {value} WHERE seq = ?", (seq,))
    c.close()
    r = invoke("ledger", "history", ledger, "--limit", "3",
               *(("--account", account) if account else ()))
    assert r.exit_code == 2 and "Traceback" not in r.output
    assert f"journal entry {seq} " in r.stderr and str(ledger) in r.stderr, r.stderr


def test_a_recorded_policy_the_compiler_cannot_take_is_a_clear_error(ledger):
    """An edited policy IR whose recorded fingerprint (the source hash) still matches: every
    reader names the ledger and exits 2, no traceback (fuzz_ledger_files --target history:
    one flipped byte of the IR text)."""
    c = sqlite3.connect(ledger)
    text = json.loads(c.execute("SELECT value FROM meta WHERE key = 'policy_ir'").fetchone()[0])
    old = '"node": "AccBalance", "account": {"node"'
    assert old in text
    text = text.replace(old, '"node": "AccBalance", "account": {"nodf"', 1)
    c.execute("UPDATE meta SET value = ? WHERE key = 'policy_ir'", (json.dumps(text),))
    c.commit()
    c.close()
    for args in (("ledger", "history", ledger, "--limit", "2"), ("ledger", "balances", ledger),
                 ("audit", ledger), ("replay", ledger)):
        r = invoke(*args)
        assert r.exit_code == 2 and "Traceback" not in r.output, (args, r.output)
        assert "the policy this ledger records cannot be compiled" in r.stderr, r.stderr
    with pytest.raises(StoreError, match="cannot be compiled"):
        audit_ledger(str(ledger))


@pytest.mark.parametrize("sql,says", [
    # recorded parameters the replay's runtime refuses (an unknown name, a ratio as an object)
    ("UPDATE meta SET value = '{\"v\":1}' WHERE key = 'params'", "cannot be"),
    ("UPDATE meta SET value = replace(value, '\"fee\"', '\"fpe\"') WHERE key = 'params'",
     "cannot be"),
    # a balance row whose key is not text (readers sort and print keys)
    ("UPDATE state SET key = x'' WHERE kind = 'balance' AND key = 'party:a001:Credit'",
     "is corrupt"),
])
def test_audit_of_unusable_recorded_rows_is_a_clear_error(ledger, sql, says):
    """Found by fuzz_ledger_files --target audit: each was a traceback in `charter audit`."""
    _edit(ledger, sql)
    r = invoke("audit", ledger)
    assert r.exit_code in (1, 2) and "Traceback" not in r.output, r.output
    assert str(ledger) in r.output
    assert r.exit_code == 1 or says in r.stderr, r.stderr


@pytest.mark.parametrize("value", ['"\\ud800"', '"abc"', "1.5", "[1]"])
def test_a_stored_balance_that_is_not_an_amount_is_reported_never_a_traceback(ledger, value):
    """Found by fuzz_ledger_files --target audit: a balance row set to a lone-surrogate JSON
    string made `charter audit` crash writing its finding (UnicodeEncodeError), and any
    non-int balance made `ledger balances`/`accounts` crash formatting it (TypeError)."""
    _edit(ledger, "UPDATE state SET value = ? WHERE kind = 'balance' AND key = ?", value,
          "party:a001:Credit")
    for cmd, code in ((("audit", ledger), 1), (("replay", ledger), 1),
                      (("ledger", "balances", ledger), 2), (("ledger", "accounts", ledger), 2)):
        r = invoke(*cmd)
        assert r.exit_code == code and "Traceback" not in r.output, (cmd, r.output)
        assert "party:a001:Credit" in r.output, (cmd, r.output)
        assert code == 1 or str(ledger) in r.output, (cmd, r.output)  # a refusal names it


# every command that opens a ledger read-only; {db} is the ledger, {out} a file to write
READERS = (
    ("audit", "{db}"),
    ("replay", "{db}"),
    ("ledger", "balances", "{db}"),
    ("ledger", "accounts", "{db}"),
    ("ledger", "history", "{db}", "--limit", "5"),
    ("ledger", "records", "{db}", "Task"),
    ("ledger", "members", "{db}", "Agent"),
    ("ledger", "export", "{db}", "--format", "csv", "--output", "{out}"),
)


@pytest.mark.parametrize(
    "command", READERS, ids=lambda c: " ".join(a for a in c[:2] if "{" not in a)
)
def test_a_reader_command_leaves_no_lock_behind(ledger, command, tmp_path):
    """A ledger another tool switched to rollback-journal mode (`PRAGMA
    journal_mode=DELETE`; header bytes 18-19 = 1): a reader still open after its command
    ends holds the file's read lock, and the next writer in the same process was refused
    as locked (found by fuzz_ledger_files --target audit as `byte 19 = 1`)."""
    c = sqlite3.connect(ledger)
    assert c.execute("PRAGMA journal_mode=DELETE").fetchone() == ("delete",)
    c.close()
    args = [a.format(db=ledger, out=tmp_path / "out.csv") for a in command]
    r = CliRunner().invoke(cli, args)
    assert r.exit_code == 0, r.output
    rt = open_runtime(None, str(ledger))  # a writer: puts WAL back, makes the open check
    try:
        assert rt.seq > 0
    finally:
        rt.close()
