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

from .integrity import (
    Checkpoint,
    check_open,
    full_check,
    meta_digest,
    recorded_policy,
    state_digest,
)
from .journal import JournalRow
from .lock import WriterLock
from .state import ABSENT, store_key
from .store import LedgerIntegrityError, NotALedgerError, StoreError

SCHEMA_VERSION = 3  # 2: balance rows hold the bare amount; 3: checkpoint row, application_id
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
APPLICATION_ID = 0x43484C47  # "CHLG" in the SQLite header: this file is a Charter ledger

_SCHEMA = """
CREATE TABLE schema_version (version INTEGER NOT NULL);
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE journal (seq INTEGER PRIMARY KEY, event_id TEXT NOT NULL UNIQUE,
                      entry TEXT NOT NULL, hash TEXT NOT NULL);
CREATE TABLE state (kind TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL,
                    PRIMARY KEY (kind, key)) WITHOUT ROWID;
"""
_CHECKPOINT_TABLE = """
CREATE TABLE checkpoint (id INTEGER PRIMARY KEY CHECK (id = 1), seq INTEGER NOT NULL,
                         head TEXT NOT NULL, state_digest TEXT NOT NULL,
                         state_rows INTEGER NOT NULL, meta_digest TEXT NOT NULL,
                         hash TEXT NOT NULL)
"""
_LEDGER_TABLES = {"schema_version", "meta", "journal", "state"}
# the stored rows a commit is about to replace: their hashes leave the state digest
_OLD_ROWS = (
    "SELECT kind, key, value FROM state WHERE (kind, key) IN "
    "(SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]') FROM json_each(?))"
)
_SET_CHECKPOINT = (
    "INSERT OR REPLACE INTO checkpoint (id, seq, head, state_digest, state_rows, "
    "meta_digest, hash) VALUES (1, ?, ?, ?, ?, ?, ?)"
)


# what reading a damaged file can raise: SQLite's errors, and text cells that are not UTF-8
_READ_ERRORS = (sqlite3.Error, UnicodeDecodeError)


def _why(exc: Exception) -> str:
    if isinstance(exc, UnicodeDecodeError):
        return "a text cell is not valid UTF-8 (the file is damaged or was edited)"
    text = str(exc)
    return text if len(text) <= 200 else text[:200] + "..."


class ChangeBuffer:
    """The journal rows appended since the last commit and the state keys they changed,
    turned into the ``(kind, key, value)`` text rows a commit writes.

    Shared by every persistent store (SQLite, PostgreSQL), so both write the same
    rows, byte for byte, and their checkpoints' state digests agree."""

    batch = 1

    def _reset_changes(self) -> None:
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

    def journal_page(self, after: int, limit: int) -> list[JournalRow]:
        """Up to ``limit`` journal rows with ``seq > after``, in order (paged reads, ``charter
        serve``'s history), from the index rather than a scan of the whole journal."""
        rows = [
            JournalRow(*r)
            for r in self._scan(  # type: ignore[attr-defined]
                "SELECT seq, event_id, entry, hash FROM journal WHERE seq > ? ORDER BY seq LIMIT ?",
                (after, limit),
            )
        ]
        if len(rows) < limit:
            rows += [r for r in list(self._pending) if r.seq > after][: limit - len(rows)]
        return rows

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

    def flush(self, state: Any) -> None:  # pragma: no cover - every store defines it
        raise NotImplementedError

    def _changes(self, state: Any) -> tuple[list[tuple[str, str, str]], list[tuple[str, str]]]:
        """(upserts, deletes) of the state rows the pending entries changed, as stored text."""
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
        return upserts, deletes

    def _committed(self) -> None:
        """Forget the pending entries and changed keys (after their commit)."""
        self._pending.clear()
        self._dirty.clear()
        self._dirty_bal.clear()
        self._dirty_rec.clear()
        self._dirty_meta.clear()


class SqliteStore(ChangeBuffer):
    """A ledger file.  A writer holds the file's writer lock (``<path>.lock``) from open
    to ``close()`` and is refused a ledger that fails its integrity check
    (``runtime/integrity.py``); ``readonly=True`` takes no lock, reads one
    consistent snapshot and lists integrity problems in ``integrity_problems``."""

    persistent = True

    def __init__(
        self,
        path: str | os.PathLike,
        *,
        batch: int = 1,
        synchronous: str = "FULL",
        create: bool = True,
        readonly: bool = False,
        wait: float = 0.0,
    ):
        if batch < 1:
            raise ValueError("batch must be >= 1")
        if synchronous.upper() not in ("FULL", "NORMAL", "EXTRA"):
            raise ValueError("synchronous must be FULL, NORMAL or EXTRA")
        self.path = Path(path)
        self.batch = batch
        self.readonly = readonly
        self.integrity_problems: tuple[str, ...] = ()
        self._cp: Optional[Checkpoint] = None
        self._reset_changes()
        self.conn: Optional[sqlite3.Connection] = None
        # a writer locks first: creating, checking and loading then see no other writer
        self._lock = None if readonly else WriterLock(self.path, wait)
        try:
            self._open(create and not readonly, synchronous.upper())
        except BaseException:
            self.close()
            raise

    def _open(self, create: bool, synchronous: str) -> None:
        try:
            size: Optional[int] = self.path.stat().st_size
        except FileNotFoundError:
            size = None
        except OSError as exc:
            raise StoreError(f"cannot read {self.path}: {exc.strerror}") from None
        if size is None:
            if not create:
                raise StoreError(f"{self.path}: no such ledger")
            self._create()
        elif size == 0:
            raise NotALedgerError(
                self.path,
                "is an empty file (0 bytes), not a Charter ledger; it is left untouched "
                "(remove it to start a new ledger there)",
            )
        else:
            try:
                with open(self.path, "rb") as fh:
                    head = fh.read(100)
            except OSError as exc:
                raise StoreError(f"cannot read {self.path}: {exc.strerror}") from None
            if not head.startswith(_MAGIC):
                raise NotALedgerError(self.path, "is not a Charter ledger (not an SQLite database)")
        try:
            self.conn = sqlite3.connect(
                str(self.path), isolation_level=None, check_same_thread=False
            )
            if self.readonly:
                self.conn.execute("PRAGMA query_only = ON")
                self.conn.execute("BEGIN")  # one snapshot for everything read below
            # identify the file before changing anything in it: it may be another app's
            app_id = self.conn.execute("PRAGMA application_id").fetchone()[0]
            tables = {
                r[0] for r in self.conn.execute("SELECT name FROM sqlite_master WHERE type='table'")
            }
        except _READ_ERRORS as exc:
            raise NotALedgerError(
                self.path, f"is not a Charter ledger (SQLite cannot open it: {_why(exc)})"
            ) from None
        if not _LEDGER_TABLES <= tables or app_id not in (0, APPLICATION_ID):
            what = "an empty SQLite database" if not tables else "an SQLite database"
            raise NotALedgerError(self.path, f"is {what} but not a Charter ledger; it is left untouched")
        try:
            (version,) = self.conn.execute("SELECT version FROM schema_version").fetchone()
        except (*_READ_ERRORS, TypeError):
            raise StoreError(f"{self.path}: unreadable schema version") from None
        if version not in (2, SCHEMA_VERSION) or (version == SCHEMA_VERSION) != (
            app_id == APPLICATION_ID and "checkpoint" in tables
        ):
            raise StoreError(
                f"{self.path} has ledger schema version {str(version)[:40]!r}; "
                f"this Charter reads version {SCHEMA_VERSION} (and upgrades version 2)"
            )
        if not self.readonly:
            try:
                self.conn.execute("PRAGMA journal_mode=WAL")
                self.conn.execute(f"PRAGMA synchronous={synchronous}")
            except sqlite3.Error as exc:
                raise StoreError(f"{self.path}: {exc}") from None
        if version == 2:
            if not self.readonly:
                self._upgrade_v2()
            return
        changed = self._changed_tables()
        if changed:
            # the columns' meaning is not what this code reads (a column type edited in the
            # schema, say): nothing below can be trusted, not even as a diagnosis
            problems = [f"the definition of table {t} was changed outside Charter" for t in changed]
            if self.readonly:
                self.integrity_problems = tuple(problems)
                return
            raise LedgerIntegrityError(self.path, problems)
        problems, self._cp = check_open(self)
        if self.readonly:
            self.integrity_problems = tuple(problems)
        elif problems:
            _, genesis, _ = recorded_policy(self.meta_or_empty())
            # say exactly what changed: the audit's chain and balance findings (this reads
            # the whole journal, but only on the way to a refusal)
            found = tuple(full_check(self, genesis))
            raise LedgerIntegrityError(
                self.path, problems, found, replay_may_say_more=genesis is not None and not found
            )

    def _changed_tables(self) -> list[str]:
        """Ledger tables whose stored definition differs from the one this code creates."""
        want = {
            " ".join(stmt.split()).split(" (", 1)[0].split()[-1]: " ".join(stmt.split())
            for stmt in (*_SCHEMA.strip().split(";"), _CHECKPOINT_TABLE)
            if stmt.strip()
        }
        have = {
            name: " ".join(str(sql).split())
            for name, sql in self._query("SELECT name, sql FROM sqlite_master WHERE type = 'table'")
        }
        return [t for t in sorted(want) if have.get(t) != want[t]]

    def _create(self) -> None:
        """Make a new ledger file whole, then link it into place: a crash leaves no ledger
        at ``path`` or a complete empty one, never a half-made file."""
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.creating")
        try:
            tmp.unlink(missing_ok=True)
            c = sqlite3.connect(str(tmp), isolation_level=None)
            try:
                c.execute("BEGIN IMMEDIATE")
                c.execute(f"PRAGMA application_id = {APPLICATION_ID}")
                for stmt in (*_SCHEMA.strip().split(";"), _CHECKPOINT_TABLE):
                    if stmt.strip():
                        c.execute(stmt)
                c.execute("INSERT INTO schema_version VALUES (?)", (SCHEMA_VERSION,))
                c.execute("COMMIT")
                c.execute("PRAGMA journal_mode=WAL")
            finally:
                c.close()
            with open(tmp, "rb") as fh:
                os.fsync(fh.fileno())
            try:
                os.link(tmp, self.path)
            except FileExistsError:
                pass  # made meanwhile by another process: opened (and checked) as it is
        except (OSError, sqlite3.Error) as exc:
            msg = getattr(exc, "strerror", None) or exc
            raise StoreError(f"cannot create the ledger {self.path}: {msg}") from None
        finally:
            try:
                tmp.unlink(missing_ok=True)
            except OSError:
                pass

    def _upgrade_v2(self) -> None:
        """A schema-2 ledger has no checkpoint: verify its whole journal once, then add one."""
        meta = self.meta_or_empty()
        problems: list[str] = []
        genesis = None
        if meta:
            _, genesis, problems = recorded_policy(meta)
            problems += full_check(self, genesis)
        if problems:
            raise LedgerIntegrityError(self.path, problems)
        c = self.conn
        try:
            c.execute("BEGIN IMMEDIATE")
            c.execute(_CHECKPOINT_TABLE)
            if meta:
                c.execute(_SET_CHECKPOINT, self._fresh_checkpoint(str(genesis)).row())
            c.execute("UPDATE schema_version SET version = ?", (SCHEMA_VERSION,))
            c.execute(f"PRAGMA application_id = {APPLICATION_ID}")
            c.execute("COMMIT")
        except sqlite3.Error as exc:
            self._rollback()
            raise StoreError(f"{self.path}: upgrade to schema {SCHEMA_VERSION} failed: {exc}") from None
        self._cp = self._fresh_checkpoint(str(genesis)) if meta else None

    def _fresh_checkpoint(self, genesis: str) -> Checkpoint:
        """The checkpoint of the file as it is (inside the caller's transaction)."""
        last = self._query("SELECT seq, hash FROM journal ORDER BY seq DESC LIMIT 1")
        seq, head = last[0] if last else (0, genesis)
        digest, n = state_digest(self._scan("SELECT kind, key, value FROM state"))
        md = meta_digest(self._query("SELECT key, value FROM meta"))
        return Checkpoint(seq, head, digest, n, md)

    # ------------------------------------------------------------ reading

    def _query(self, sql: str, args: tuple = ()) -> list[tuple]:
        if self.conn is None:
            raise StoreError(f"{self.path}: the ledger is closed")
        try:
            return self.conn.execute(sql, args).fetchall()
        except _READ_ERRORS as exc:
            raise StoreError(f"{self.path}: {_why(exc)}") from None

    def _scan(self, sql: str, args: tuple = ()) -> Iterator[tuple]:
        """Rows of a query, fetched in chunks (a whole journal need not fit in a list)."""
        if self.conn is None:
            raise StoreError(f"{self.path}: the ledger is closed")
        try:
            cur = self.conn.execute(sql, args)
            while rows := cur.fetchmany(4096):
                yield from rows
        except _READ_ERRORS as exc:
            raise StoreError(f"{self.path}: {_why(exc)}") from None

    def meta(self) -> dict[str, Any]:
        out = {}
        for k, v in self._query("SELECT key, value FROM meta"):
            try:
                out[k] = json.loads(v)
            except (ValueError, TypeError, RecursionError):
                raise StoreError(f"{self.path}: metadata {k!r} is corrupt") from None
        return out

    def meta_or_empty(self) -> dict[str, Any]:
        try:
            return self.meta()
        except StoreError:
            return {}

    def rows(self) -> Iterator[tuple[str, str, Any]]:
        for kind, key, value in self._scan(
            "SELECT kind, key, value FROM state ORDER BY kind, key"
        ):
            try:
                yield kind, key, json.loads(value)
            except (ValueError, TypeError, RecursionError):
                raise StoreError(f"{self.path}: state row {kind} {key} is corrupt") from None

    def journal(self) -> Iterator[JournalRow]:
        for seq, eid, entry, h in self._scan(
            "SELECT seq, event_id, entry, hash FROM journal ORDER BY seq"
        ):
            yield JournalRow(seq=seq, event_id=eid, entry=entry, hash=h)
        yield from list(self._pending)

    def event_ids(self) -> Iterator[str]:
        # from the table itself, not the event_id index that would cover this query: a
        # damaged index page must not change which ids count as applied
        for (eid,) in self._scan("SELECT event_id FROM journal NOT INDEXED"):
            yield eid
        for row in list(self._pending):
            yield row.event_id

    def last_row(self) -> Optional[JournalRow]:
        if self._pending:
            return self._pending[-1]
        got = self._query("SELECT seq, event_id, entry, hash FROM journal ORDER BY seq DESC LIMIT 1")
        return JournalRow(*got[0]) if got else None

    def check_integrity(self) -> list[str]:
        """The open-time check again, on the file as it is now (audit calls it)."""
        if self._pending:
            raise StoreError(f"{self.path}: flush before checking integrity")
        return check_open(self)[0]

    def entry_for(self, event_id: str) -> Optional[JournalRow]:
        """The journal row that applied ``event_id`` (pending rows included), or None."""
        for row in self._pending:
            if row.event_id == event_id:
                return row
        got = self._query(
            "SELECT seq, event_id, entry, hash FROM journal WHERE event_id = ?", (event_id,)
        )
        return JournalRow(*got[0]) if got else None

    # ------------------------------------------------------------ writing

    def _writable(self) -> sqlite3.Connection:
        if self.readonly:
            raise StoreError(f"{self.path} is open read-only")
        if self.conn is None:
            raise StoreError(f"{self.path}: the ledger is closed")
        return self.conn

    def init(self, meta: dict[str, Any]) -> None:
        c = self._writable()
        try:
            c.execute("BEGIN IMMEDIATE")
            c.executemany(
                "INSERT OR REPLACE INTO meta VALUES (?, ?)",
                [(k, json.dumps(v, sort_keys=True)) for k, v in meta.items()],
            )
            cp = self._fresh_checkpoint(str(meta.get("genesis", "")))
            c.execute(_SET_CHECKPOINT, cp.row())
            c.execute("COMMIT")
        except (sqlite3.Error, StoreError) as exc:
            self._rollback()
            raise StoreError(f"{self.path}: {exc}") from None
        self._cp = cp

    def flush(self, state: Any) -> None:
        if not self._pending:
            return
        upserts, deletes = self._changes(state)
        pending = self._pending
        c = self._writable()
        if self._cp is None:
            raise StoreError(f"{self.path}: the ledger records no policy yet (init first)")
        try:
            c.execute("BEGIN IMMEDIATE")
            # the rows this commit replaces leave the state digest, the new ones enter it
            keys = [(u[0], u[1]) for u in upserts] + deletes
            old = (
                c.execute(_OLD_ROWS, (json.dumps(keys, ensure_ascii=False),)).fetchall()
                if keys
                else []
            )
            last = pending[-1]
            cp = self._cp.advanced(last.seq, last.hash, old, upserts)
            # a JournalRow is the tuple (seq, event_id, entry, hash): bound as it is
            c.executemany("INSERT INTO journal VALUES (?, ?, ?, ?)", pending)
            if upserts:
                c.executemany("INSERT OR REPLACE INTO state VALUES (?, ?, ?)", upserts)
            if deletes:
                c.executemany("DELETE FROM state WHERE kind = ? AND key = ?", deletes)
            c.execute(_SET_CHECKPOINT, cp.row())
            c.execute("COMMIT")
        except (sqlite3.Error, UnicodeError) as exc:
            self._rollback()
            raise StoreError(f"{self.path}: write failed: {exc}") from None
        self._cp = cp
        self._committed()

    def _rollback(self) -> None:
        try:
            if self.conn is not None and self.conn.in_transaction:
                self.conn.execute("ROLLBACK")
        except sqlite3.Error:
            pass

    def close(self) -> None:
        """Close the file and let the next writer in (unflushed events are the caller's:
        :meth:`Runtime.close` flushes first)."""
        if self.conn is not None:
            try:
                self.conn.close()
            except sqlite3.Error:
                pass
            self.conn = None
        if getattr(self, "_lock", None) is not None:
            self._lock.release()
            self._lock = None

    # ------------------------------------------------------------ tests / tools

    def execute(self, sql: str, args: tuple = ()) -> None:
        """Run raw SQL (tests use it to tamper with a ledger and prove audit notices)."""
        self.conn.execute(sql, args)
