"""The SQLite store: a real ledger file, crash-safe, one transaction per event or per batch.

Schema (version in ``schema_version``)::

    meta(key TEXT PRIMARY KEY, value TEXT)   -- policy IR, fingerprint, params, genesis (JSON)
    journal(seq INTEGER PRIMARY KEY, event_id TEXT UNIQUE, entry TEXT, hash TEXT)
    state(kind TEXT, key TEXT, value TEXT, PRIMARY KEY(kind, key))   -- balances, records, ...

Every flush writes the pending journal rows and the new values of every
state row those events changed in **one** SQLite transaction, so after a
crash the file holds a prefix of the journal and exactly the state that
prefix produced.  ``batch=1`` commits each event; ``batch=N`` commits every
N events (and on :meth:`flush`/close): faster, but a crash loses the
uncommitted tail, which the caller resubmits (ids already applied are
reported as duplicates, so resuming a JSON Lines file is safe).

Durability: the file is in WAL mode.  ``synchronous=FULL`` (default) fsyncs
the WAL on every commit, so a committed event survives power loss as well as
a killed process.  ``NORMAL`` skips that fsync: still atomic and
consistent, and still safe against ``kill -9`` (the OS has the written WAL
pages), but the last commits may roll back on power loss.  A ledger moves
money, so FULL is the default and batching is the way to go faster.
"""

from __future__ import annotations

import json
import os
import sqlite3
from fractions import Fraction
from json.encoder import c_make_encoder, encode_basestring_ascii
from pathlib import Path
from typing import Any, Iterator, Optional

from .journal import JournalRow
from .state import ABSENT, store_key
from .store import StoreError

SCHEMA_VERSION = 2  # 2: balance rows hold the bare amount
# state values are not hashed; records keep their (deterministic) field order
_dumps = json.JSONEncoder(separators=(",", ":")).encode
_record_json = None  # live record -> its row text, when the C encoder is there
if c_make_encoder is not None:  # the same encoding through one C encoder, made once

    def _default(v: Any) -> Any:
        # a record's exact ratio fields, as to_json_value writes them; anything else
        # raises the usual "not JSON serializable"
        if isinstance(v, Fraction):
            return {"num": v.numerator, "den": v.denominator}
        return json.JSONEncoder().default(v)

    _c_state = c_make_encoder(
        None, _default, encode_basestring_ascii, None, ":", ",", False, False, True
    )

    def _dumps(v: Any) -> str:  # noqa: F811 - replaces the portable definition above
        return "".join(_c_state(v, 0))

    # records hold only None/bool/int/str, Fractions and tuples of these (the language
    # has no map type), so encoding the live record directly gives to_json_value's text
    _record_json = _dumps


_MAGIC = b"SQLite format 3\x00"

_SCHEMA = """
CREATE TABLE schema_version (version INTEGER NOT NULL);
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE journal (seq INTEGER PRIMARY KEY, event_id TEXT NOT NULL UNIQUE,
                      entry TEXT NOT NULL, hash TEXT NOT NULL);
CREATE TABLE state (kind TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL,
                    PRIMARY KEY (kind, key)) WITHOUT ROWID;
"""


class SqliteStore:
    persistent = True

    def __init__(
        self,
        path: str | os.PathLike,
        *,
        batch: int = 1,
        synchronous: str = "FULL",
        create: bool = True,
    ):
        if batch < 1:
            raise ValueError("batch must be >= 1")
        if synchronous.upper() not in ("FULL", "NORMAL", "EXTRA"):
            raise ValueError("synchronous must be FULL, NORMAL or EXTRA")
        self.path = Path(path)
        self.batch = batch
        self._pending: list[JournalRow] = []
        # keys changed since the last flush, per kind (sets: a key changed by
        # many events of a batch is written once, with its final value)
        self._dirty: set[tuple[str, Any]] = set()  # roles, rights (rare)
        self._dirty_meta: set[str] = set()  # clock, deadline markers
        self._dirty_bal: set[str] = set()
        self._dirty_rec: set[tuple[str, str]] = set()
        # record (name, key) -> its stored key text; records are rewritten often
        # (post, bids, completion, deadline), so each key is encoded once
        self._rec_keys: dict[tuple[str, str], str] = {}
        exists = self.path.exists() and self.path.stat().st_size > 0
        if exists:
            try:
                with open(self.path, "rb") as fh:
                    head = fh.read(16)
            except OSError as exc:
                raise StoreError(f"cannot read {self.path}: {exc.strerror}") from None
            if head != _MAGIC:
                raise StoreError(f"{self.path} is not a Charter ledger (not an SQLite database)")
        elif not create:
            raise StoreError(f"{self.path}: no such ledger")
        try:
            self.conn = sqlite3.connect(
                str(self.path), isolation_level=None, check_same_thread=False
            )
            self.conn.execute("PRAGMA journal_mode=WAL")
            self.conn.execute(f"PRAGMA synchronous={synchronous.upper()}")
            tables = {
                r[0] for r in self.conn.execute("SELECT name FROM sqlite_master WHERE type='table'")
            }
        except sqlite3.Error as exc:
            raise StoreError(f"{self.path} cannot be opened as a Charter ledger: {exc}") from None
        if not tables:
            if not create:
                raise StoreError(f"{self.path} is an empty database, not a Charter ledger")
            try:
                self.conn.execute("BEGIN IMMEDIATE")
                for stmt in _SCHEMA.strip().split(";"):
                    if stmt.strip():
                        self.conn.execute(stmt)
                self.conn.execute("INSERT INTO schema_version VALUES (?)", (SCHEMA_VERSION,))
                self.conn.execute("COMMIT")
            except sqlite3.Error as exc:
                raise StoreError(f"cannot create the ledger schema in {self.path}: {exc}") from None
        else:
            if not {"schema_version", "meta", "journal", "state"} <= tables:
                raise StoreError(f"{self.path} is an SQLite database but not a Charter ledger")
            try:
                (version,) = self.conn.execute("SELECT version FROM schema_version").fetchone()
            except (sqlite3.Error, TypeError):
                raise StoreError(f"{self.path}: unreadable schema version") from None
            if version != SCHEMA_VERSION:
                raise StoreError(
                    f"{self.path} has ledger schema version {version}; "
                    f"this Charter reads version {SCHEMA_VERSION}"
                )

    # ------------------------------------------------------------ reading

    def _query(self, sql: str, args: tuple = ()) -> list[tuple]:
        try:
            return self.conn.execute(sql, args).fetchall()
        except sqlite3.Error as exc:
            raise StoreError(f"{self.path}: {exc}") from None

    def meta(self) -> dict[str, Any]:
        out = {}
        for k, v in self._query("SELECT key, value FROM meta"):
            try:
                out[k] = json.loads(v)
            except ValueError:
                raise StoreError(f"{self.path}: metadata {k!r} is corrupt") from None
        return out

    def rows(self) -> Iterator[tuple[str, str, Any]]:
        for kind, key, value in self._query(
            "SELECT kind, key, value FROM state ORDER BY kind, key"
        ):
            try:
                yield kind, key, json.loads(value)
            except ValueError:
                raise StoreError(f"{self.path}: state row {kind} {key} is corrupt") from None

    def journal(self) -> Iterator[JournalRow]:
        for seq, eid, entry, h in self._query(
            "SELECT seq, event_id, entry, hash FROM journal ORDER BY seq"
        ):
            yield JournalRow(seq=seq, event_id=eid, entry=entry, hash=h)
        yield from list(self._pending)

    def entry(self, seq: int) -> Optional[JournalRow]:
        """One journal row by sequence number (pending rows included), or None."""
        for row in self._pending:
            if row.seq == seq:
                return row
        for s, eid, entry, h in self._query(
            "SELECT seq, event_id, entry, hash FROM journal WHERE seq = ?", (seq,)
        ):
            return JournalRow(seq=s, event_id=eid, entry=entry, hash=h)
        return None

    # ------------------------------------------------------------ writing

    def init(self, meta: dict[str, Any]) -> None:
        try:
            self.conn.execute("BEGIN IMMEDIATE")
            self.conn.executemany(
                "INSERT OR REPLACE INTO meta VALUES (?, ?)",
                [(k, json.dumps(v, sort_keys=True)) for k, v in meta.items()],
            )
            self.conn.execute("COMMIT")
        except sqlite3.Error as exc:
            self._rollback()
            raise StoreError(f"{self.path}: {exc}") from None

    def append(self, row: JournalRow, frame: Any, state: Any) -> None:
        """Buffer one entry; ``frame`` (the event's before images) names the changed keys."""
        pending = self._pending
        pending.append(row)
        self._dirty_bal.update(frame.bal)
        if frame.rec:
            self._dirty_rec.update(frame.rec)
        if frame.meta:
            self._dirty_meta.update(frame.meta)
        if frame.role or frame.right:
            self._dirty.update(state.dirty_keys(frame, balances=False, records=False, meta=False))
        if len(pending) >= self.batch:
            self.flush(state)

    def flush(self, state: Any) -> None:
        if not self._pending:
            return
        dumps = _dumps
        bal = state.balances
        dirty_bal = self._dirty_bal
        # a balance row holds the JSON of an int, i.e. str(int); a closed account is deleted
        upserts = [("balance", a, str(v)) for a in dirty_bal if (v := bal.get(a)) is not None]
        deletes = (
            [("balance", a) for a in dirty_bal if a not in bal]
            if len(upserts) != len(dirty_bal)
            else []
        )
        records = state.records
        rec_keys = self._rec_keys
        rec_json = _record_json
        for rk in self._dirty_rec:
            r, k = rk
            skey = rec_keys.get(rk)
            if skey is None:
                skey = rec_keys[rk] = store_key(rk)
            rec = records[r].get(k)
            if rec is None:
                deletes.append(("record", skey))
                del rec_keys[rk]
            else:
                upserts.append(
                    ("record", skey, rec_json(rec) if rec_json else dumps(state.record_value(rec)))
                )
        meta = state.meta
        for key in self._dirty_meta:
            v = meta.get(key, ABSENT)
            if v is ABSENT:
                deletes.append(("meta", key))
            elif type(v) is int:  # clock entries and deadline markers: {"v": <int>}
                upserts.append(("meta", key, '{"v":' + int.__repr__(v) + "}"))
            else:
                upserts.append(("meta", key, dumps(state.value_of("meta", key))))
        for kind, key in self._dirty:
            v = state.value_of(kind, key)
            skey = store_key(key)
            if v is None:
                deletes.append((kind, skey))
            else:
                upserts.append((kind, skey, dumps(v)))
        try:
            c = self.conn
            c.execute("BEGIN IMMEDIATE")
            # a JournalRow is the tuple (seq, event_id, entry, hash): bound as it is
            c.executemany("INSERT INTO journal VALUES (?, ?, ?, ?)", self._pending)
            if upserts:
                c.executemany("INSERT OR REPLACE INTO state VALUES (?, ?, ?)", upserts)
            if deletes:
                c.executemany("DELETE FROM state WHERE kind = ? AND key = ?", deletes)
            c.execute("COMMIT")
        except sqlite3.Error as exc:
            self._rollback()
            raise StoreError(f"{self.path}: write failed: {exc}") from None
        self._pending.clear()
        self._dirty.clear()
        self._dirty_bal.clear()
        self._dirty_rec.clear()
        self._dirty_meta.clear()

    def _rollback(self) -> None:
        try:
            self.conn.execute("ROLLBACK")
        except sqlite3.Error:
            pass

    def close(self) -> None:
        try:
            self.conn.close()
        except sqlite3.Error:
            pass

    # ------------------------------------------------------------ tests / tools

    def execute(self, sql: str, args: tuple = ()) -> None:
        """Run raw SQL (tests use it to tamper with a ledger and prove audit notices)."""
        self.conn.execute(sql, args)
