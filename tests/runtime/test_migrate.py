"""`charter ledger migrate` rewrites ledgers of schema 3, 4, 5 and 6 as schema 7, exactly.

A gig-market ledger (records, deadline markers, escrows) is rewritten the way the older
Charter kept it -- schema 6: entries without their seq and id, in chunks (codec
``deflate-dict-2``); schema 5: each of them packed on its own (no chunks); schema 4: entries
packed whole with the ``deflate-dict-1`` codec, record rows as objects of fields, ``{"v": n}``
meta rows, ``fired:<handler>:<key>`` markers; schema 3: entry text and every hash as hex
besides -- then migrated: the result must hold the very rows a fresh schema-6 run of the
same events writes (journal and state, byte for byte: chunks do not depend on the run's
batch size), audit and replay clean, and take new events.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import sys
from pathlib import Path

import pytest

from charter.runtime.api import audit_ledger, open_runtime, replay
from charter.runtime.journal import ENTRY_CODEC_V2, EntryCodec
from helpers import gig_events, invoke

ROOT = Path(__file__).resolve().parents[2]
GIG = ROOT / "examples" / "gig_market"
sys.path.insert(0, str(ROOT / "benchmarks"))
from fuzz_ledger_files import downgrade as _downgrade  # noqa: E402


@pytest.fixture(scope="module")
def fresh(tmp_path_factory):
    d = tmp_path_factory.mktemp("fresh")
    events = d / "events.jsonl"
    events.write_text("".join(json.dumps(e) + "\n" for e in gig_events(1500, seed=11)))
    db = d / "gig.sqlite"
    r = invoke("run", GIG / "policy.charter", events, "--db", db, "--batch", "100")
    assert r.exit_code == 0, r.output
    return db, events


def _tables(db: Path) -> tuple[list, list]:
    c = sqlite3.connect(db)
    try:
        return (c.execute("SELECT * FROM journal ORDER BY seq").fetchall(),
                c.execute("SELECT * FROM state ORDER BY kind, key").fetchall()
                + c.execute("SELECT * FROM account_block ORDER BY 1, 2").fetchall())
    finally:
        c.close()


@pytest.mark.parametrize("version", [3, 4, 5, 6])
def test_old_ledger_migrates_to_the_rows_a_fresh_run_writes(fresh, tmp_path, version):
    src, events = fresh
    db = tmp_path / "old.sqlite"
    shutil.copy(src, db)
    _downgrade(db, version)
    if version < 5:  # the old shapes were written, e.g. deadline markers `fired:<handler>:<key>`
        c = sqlite3.connect(db)
        assert c.execute("SELECT count(*) FROM state WHERE kind = 'meta' AND "
                         "key LIKE 'fired:%'").fetchone()[0] > 0
        c.close()
    r = invoke("ledger", "balances", db)
    assert r.exit_code == 2 and f"schema version {version}" in r.output, r.output
    assert "ledger migrate" in r.output and "Traceback" not in r.output
    r = invoke("ledger", "migrate", db)
    assert r.exit_code == 0 and f"version {version} -> 7" in r.output, r.output
    assert (tmp_path / f"old.sqlite.v{version}.bak").is_file()
    journal, state = _tables(db)
    want_journal, want_state = _tables(src)
    # records as field lists, bare ints, short markers; the per-account index built
    assert state == want_state
    assert journal == want_journal  # whole entries in chunks, hashes at anchors
    assert audit_ledger(str(db)).ok and replay(str(db)).ok
    r = invoke("run", GIG / "policy.charter", events, "--db", db)  # resumes on it
    assert r.exit_code == 0 and "resumed after line" in r.output, r.output
    assert invoke("ledger", "migrate", db).output.strip().endswith("already version 7")


def test_a_whole_entry_is_kept_when_stripping_would_change_it():
    """Schema 5 and 6's codec (deflate-dict-2, read by the migration): an entry whose args
    hold a "submitter" key of their own (where the id would be put back) is kept whole
    (marked); every packed entry comes back byte for byte."""
    codec = EntryCodec("", ENTRY_CODEC_V2)
    tricky = ('{"event":{"args":{"x":{"a":1,"submitter":"z"}},"id":"e1",'
              '"submitter":"ann","time":3,"type":"t"},"flags":[],"postings":[],"seq":4,'
              '"timers":[]}')
    plain = ('{"event":{"args":{},"id":"e1","submitter":"ann","time":3,"type":"t"},'
             '"flags":[],"postings":[],"seq":4,"timers":[]}')
    for entry in (tricky, plain):
        blob = codec.pack(entry, 4, "e1")
        assert codec.unpack(blob, 4, "e1") == entry
    assert codec.pack(tricky, 4, "e1")[:1] == b"\x07"  # kept whole
    assert codec.pack(plain, 4, "e1")[:1] != b"\x07"  # stripped
    # a stripped entry read under another seq/id names them (the row's columns win)
    assert '"seq":5' in codec.unpack(codec.pack(plain, 4, "e1"), 5, "e1")
    assert codec.unpack(codec.pack(plain, 4, "e1"), None, "e1") is None


def test_current_codec_keeps_whole_texts_and_a_newline_entry_on_its_own():
    """Schema 7's codec (deflate-dict-3): chunk texts are the entries themselves, so any
    text comes back byte for byte whatever the row's seq/id; an entry holding a raw newline
    (no canonical text does) cannot join a chunk and is kept whole, marked."""
    from charter.runtime.journal import ENTRY_CODEC
    from charter.runtime.sqlite_store import _packed
    from charter.runtime.journal import JournalRow

    codec = EntryCodec("")
    assert codec.codec == ENTRY_CODEC == "deflate-dict-3"
    plain = ('{"event":{"args":{},"id":"e1","submitter":"ann","time":3,"type":"t"},'
             '"flags":[],"postings":[],"seq":4,"timers":[]}')
    odd = plain.replace('"args":{}', '"args":{"x":"a\nb"}')
    assert codec.stripped(plain, 4, "e1") == plain and codec.stripped(odd, 4, "e1") is None
    assert codec.unpack(codec.pack(plain)) == plain  # no seq/id needed to read it
    assert codec.pack(odd)[:1] == b"\x07" and codec.unpack(codec.pack(odd)) == odd
    texts = [plain.replace('"seq":4', f'"seq":{s}') for s in range(1, 6)]
    rows = [JournalRow(s, "e1", t, "00" * 32) for s, t in zip(range(1, 6), texts)]
    out, heads, run = _packed(codec, rows, None)
    assert out[0][2][:1] == b"\x06" and [o[2] for o in out[1:]] == [b""] * 4 and not heads
    got = codec.run_texts(out[0][2])
    assert got == texts and run == (1, texts)
    assert [codec.in_run(got, 1, s, "any id") for s in range(1, 6)] == texts
    assert codec.in_run(got, 1, 6, "e1") is None  # past the run
