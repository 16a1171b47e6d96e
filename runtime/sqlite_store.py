"""The SQLite store: a real ledger file, crash-safe, one transaction per event or per batch.

Schema (version in ``schema_version``)::

    meta(key TEXT PRIMARY KEY, value TEXT)   -- policy IR, fingerprint, params, genesis,
                                             -- entry_dict (JSON)
    journal(seq INTEGER PRIMARY KEY, event_id TEXT UNIQUE, entry BLOB, hash BLOB)
    state(kind TEXT, key TEXT, value TEXT, PRIMARY KEY(kind, key))   -- balances, records, ...
    account_block(account INTEGER, block INTEGER, PRIMARY KEY(account, block))
                                             -- which blocks of entries touch an account
    checkpoint(...)                          -- see runtime/integrity.py

Version 4 keeps each journal entry compact (``runtime/journal.py``): ``entry``
is the canonical JSON packed by :class:`~charter.runtime.journal.EntryCodec`
with the ledger's recorded dictionary, and ``hash`` (32 raw bytes) is kept
only every :data:`~charter.runtime.journal.ANCHOR_EVERY` entries (NULL
elsewhere: it is implied by the entries; the checkpoint keeps the head).
Version 5 leaves the entry's ``seq`` and event id out of the packed bytes
(the row has them), keeps a record row as its field values in declared
order (``State.record_row``), an int meta row bare, and a deadline marker
under a short key (``State.fired_key``); its ``account_block`` table is the
per-account index (``journal.BLOCK_SHIFT``): ``history --account A --limit
N`` reads only the blocks of entries that touch A, newest first, and the
audit checks the table against the postings.  Version 6 packs the
consecutive entries of one anchor block (``journal.ANCHOR_EVERY`` = 32)
together: the first one's row keeps the chunk (one DEFLATE stream for up to
32 entries: a third of the bytes, a fraction of the time), the others an
empty blob; a reader of one entry inflates at most its chunk.  The chunks
depend only on the entries, not on how they were batched (a flush that
continues the newest block's chunk rewrites that chunk's head row), so the
same events give the same rows whatever ``batch`` is.  Older files are
Version 7 (codec ``deflate-dict-3``) keeps the
chunks' entry texts whole, DEFLATE level 3 in a 32 KB window: a writer
spends about a third of version 6's time on its entries (stripping the seq
and id cost as much as compressing), for 7 bytes more an entry.  Older files
are refused with their version named; ``charter ledger migrate`` rewrites
them (:func:`migrate`).

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

import hashlib
import json
import os
import sqlite3
from fractions import Fraction
from json.encoder import c_make_encoder, encode_basestring_ascii
from pathlib import Path
from typing import Any, Iterable, Iterator, Optional

from .integrity import (
    Checkpoint,
    check_open,
    full_check,
    meta_digest,
    recorded_policy,
    state_digest,
)
from .journal import (
    ANCHOR_EVERY,
    BLOCK_SHIFT,
    CHUNK,
    account_tag,
    ENTRY_CODEC,
    ENTRY_CODEC_V1,
    ENTRY_CODEC_V2,
    EntryCodec,
    JournalRow,
    anchor_at_or_before,
    block_of,
    with_hashes,
)
from .idfilter import IdFilter
from .lock import WriterLock
from .state import ABSENT, store_key
from .store import LedgerIntegrityError, NotALedgerError, StoreError, shown_rows

# 2: balance rows hold the bare amount; 3: checkpoint row, application_id; 4: packed entries,
# chain hashes kept at anchors only; 5: entries packed without seq/id, compact state rows;
# 6: consecutive entries of an anchor block packed together (a chunk in the first one's row);
# 7: chunks of whole entry texts, DEFLATE level 3 (codec deflate-dict-3)
SCHEMA_VERSION = 7
MIGRATABLE = (2, 3, 4, 5, 6)
# state values are not hashed; records keep their (deterministic) field order.
# row_json(value) is the text a state row keeps for a value (State.value_of's).
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


_ID_ROOM = 1 << 17  # ids the first Bloom filter of applied ids is sized for (256 KB)
_KEY_CACHE = 1 << 14  # stored record keys a writer remembers (ChangeBuffer._rec_keys)
_HASH_CACHE = 1 << 16  # state row hashes a writer remembers (SqliteStore._hashes; ~14 MB)
_MOD = 1 << 256


def _row_hashes(rows: list[tuple[str, str, str]]) -> list[int]:
    """Each text row's share of the state digest: ``integrity.state_digest`` of it alone
    (``tests/runtime/test_store_encoding.py`` holds the two together)."""
    sha, from_bytes = hashlib.sha256, int.from_bytes
    return [from_bytes(sha(f"{len(k)}:{k}{len(key)}:{key}{v}".encode("utf-8", "surrogatepass"))
                       .digest(), "big") for k, key, v in rows]

_MAGIC = b"SQLite format 3\x00"
_MAX_SEQ = (1 << 63) - 1
APPLICATION_ID = 0x43484C47  # "CHLG" in the SQLite header: this file is a Charter ledger

_SCHEMA = """
CREATE TABLE schema_version (version INTEGER NOT NULL);
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE journal (seq INTEGER PRIMARY KEY, event_id TEXT NOT NULL UNIQUE,
                      entry BLOB NOT NULL, hash BLOB);
CREATE TABLE state (kind TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL,
                    PRIMARY KEY (kind, key)) WITHOUT ROWID;
CREATE TABLE account_block (account INTEGER NOT NULL, block INTEGER NOT NULL,
                            PRIMARY KEY (account, block)) WITHOUT ROWID;
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
        self._pending_ids: set[str] = set()  # their event ids (has_event before the commit)
        # keys changed since the last flush, per kind (sets: a key changed by
        # many events of a batch is written once, with its final value)
        self._dirty: set[tuple[str, Any]] = set()  # roles, rights (rare)
        self._dirty_meta: set[str] = set()  # clock, deadline markers
        self._dirty_bal: set[str] = set()
        self._dirty_rec: set[tuple[str, str]] = set()
        # (account, block) of every balance an appended event changed: the per-account index
        self._touched: dict[int, set[str]] = {}  # block -> the accounts its entries touch
        # record (name, key) -> its stored key text: records are rewritten often (post,
        # bids, completion, deadline) over a few consecutive commits, so a key is mostly
        # encoded once; forgotten when it grows past _KEY_CACHE (it held every key ever
        # written: ~16 MB of a run's memory at 1M gig events)
        self._rec_keys: dict[tuple[str, str], str] = {}
        # account -> its index tag (account_tag: a CRC of the name): the same few thousand
        # accounts are touched batch after batch; forgotten past _KEY_CACHE like _rec_keys
        self._tags: dict[str, int] = {}

    # The metadata table is the same in every store; each store's _query turns its
    # driver's errors into StoreError naming the ledger.
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

    _KINDS = ("balance", "record", "role", "right", "meta")

    def kind_rows(self, kind: str) -> Iterator[tuple[str, Any]]:
        """``(key, value)`` of the stored state rows of one kind, in key order, streamed from
        the primary key (``ledger balances`` reads the balances without loading a state)."""
        if kind not in self._KINDS:
            raise ValueError(f"unknown state row kind {kind!r}")
        for key, value in self._scan(  # type: ignore[attr-defined]
            f"SELECT key, value FROM state WHERE kind = '{kind}' ORDER BY key"
        ):
            try:
                v = json.loads(value)
            except (ValueError, TypeError, RecursionError):
                v = ABSENT
            # unreadable JSON, or a key that is not text (readers sort and print keys)
            if v is ABSENT or type(key) is not str:
                raise StoreError(
                    f"{self.path}: state row {kind} {str(key)[:80]} is corrupt (the ledger is "
                    "damaged or was edited)"
                ) from None
            yield key, v

    def state_texts(self) -> Iterator[tuple[str, str, str]]:
        """Every stored state row as ``(kind, key, value text)``, in no particular order
        (replay compares them with the state it rebuilt, one at a time)."""
        return self._scan("SELECT kind, key, value FROM state")  # type: ignore[attr-defined]

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
        self._pending_ids.add(row.event_id)
        bal = frame.bal
        if bal:
            self._dirty_bal.update(bal)
            blk = row.seq >> BLOCK_SHIFT
            accs = self._touched.get(blk)
            if accs is None:
                accs = self._touched[blk] = set()
            accs.update(bal)
        if frame.rec:
            self._dirty_rec.update(frame.rec)
        if frame.meta:
            self._dirty_meta.update(frame.meta)
        if frame.role or frame.right:
            self._dirty.update(state.dirty_keys(frame, balances=False, records=False, meta=False))
        if len(pending) >= self.batch:
            self.flush(state)

    def index_rows(self) -> set[tuple[int, int]]:
        """The ``(account tag, block)`` rows of the per-account index the pending entries
        add (some may be stored already)."""
        tags = self._tags
        if len(tags) > _KEY_CACHE:
            tags.clear()
        out = set()
        for b, accs in self._touched.items():
            for a in accs:
                t = tags.get(a)
                if t is None:
                    t = tags[a] = account_tag(a)
                out.add((t, b))
        return out

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
        if len(rec_keys) > _KEY_CACHE:
            rec_keys.clear()
        rec_json = _record_json
        fields_of = state.record_fields
        for rk in self._dirty_rec:
            r, k = rk
            skey = rec_keys.get(rk)
            if skey is None:
                skey = rec_keys[rk] = store_key(rk)
            rec = records[r].get(k)
            if rec is None:
                deletes.append(("record", skey))
                del rec_keys[rk]
            elif rec_json is not None and tuple(rec) == fields_of[r]:
                # the row is the field values in declared order (State.record_row)
                upserts.append(("record", skey, rec_json(list(rec.values()))))
            else:
                upserts.append(("record", skey, dumps(state.record_row(r, rec))))
        meta = state.meta
        for key in self._dirty_meta:
            v = meta.get(key, ABSENT)
            if v is ABSENT:
                deletes.append(("meta", key))
            elif type(v) is int:  # clock entries and deadline markers: the bare int
                upserts.append(("meta", key, int.__repr__(v)))
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
        self._pending_ids.clear()
        self._dirty.clear()
        self._dirty_bal.clear()
        self._dirty_rec.clear()
        self._touched.clear()
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
        check_state: bool = True,
    ):
        if batch < 1:
            raise ValueError("batch must be >= 1")
        if synchronous.upper() not in ("FULL", "NORMAL", "EXTRA"):
            raise ValueError("synchronous must be FULL, NORMAL or EXTRA")
        self.path = Path(path)
        self.batch = batch
        self.readonly = readonly
        # a reader of the journal alone may skip the state digest at open (a writer never)
        self._check_state = check_state or not readonly
        self.integrity_problems: tuple[str, ...] = ()
        self._cp: Optional[Checkpoint] = None
        # state row (kind, key) -> the hash its stored row adds to the checkpoint's state
        # digest (integrity.state_digest), for the rows this writer committed lately: a
        # commit drops a replaced row's hash without reading the row back.  _all_hashes:
        # it holds every stored row (this writer wrote the state from empty), so a key it
        # lacks has no row.  Bounded by _HASH_CACHE (then emptied, and rows read back).
        self._hashes: dict[tuple[str, str], int] = {}
        self._all_hashes = False
        self._reset_changes()
        # applied ids (has_event): a Bloom filter built once lookups pay for it
        self._id_filter: Optional[IdFilter] = None
        self._id_queries = 0
        self._codec: Optional[EntryCodec] = None
        # the newest run of packed entries (head seq, their stripped texts): a flush that
        # continues it rewrites its head (None: none to continue; _UNREAD: read when needed)
        self._run: Any = _UNREAD
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
        if version != SCHEMA_VERSION or app_id != APPLICATION_ID or "checkpoint" not in tables:
            if version in MIGRATABLE:
                raise StoreError(
                    f"{self.path} has ledger schema version {version}; this Charter reads "
                    f"version {SCHEMA_VERSION} (whole entries packed in chunks). Run `charter "
                    f"ledger migrate {self.path}` to rewrite it (the old file is kept as a backup)"
                )
            raise StoreError(
                f"{self.path} has ledger schema version {str(version)[:40]!r}; "
                f"this Charter reads version {SCHEMA_VERSION} "
                f"(and migrates versions {', '.join(map(str, MIGRATABLE))})"
            )
        if not self.readonly:
            try:
                self.conn.execute("PRAGMA journal_mode=WAL")
                self.conn.execute(f"PRAGMA synchronous={synchronous}")
            except sqlite3.Error as exc:
                raise StoreError(f"{self.path}: {exc}") from None
        changed = self._changed_tables()
        if changed:
            # the columns' meaning is not what this code reads (a column type edited in the
            # schema, say): nothing below can be trusted, not even as a diagnosis
            problems = [f"the definition of table {t} was changed outside Charter" for t in changed]
            if self.readonly:
                self.integrity_problems = tuple(problems)
                return
            raise LedgerIntegrityError(self.path, problems)
        problems, self._cp = check_open(self, state=self._check_state)
        self._all_hashes = self._cp is not None and self._cp.state_rows == 0
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

    def _fresh_checkpoint(self, genesis: str, head: Optional[tuple[int, str]] = None) -> Checkpoint:
        """The checkpoint of the file as it is (inside the caller's transaction); ``head`` is
        (seq, hash) of the last entry, when there is one."""
        seq, head_hash = head if head is not None else (0, genesis)
        digest, n = state_digest(self._scan("SELECT kind, key, value FROM state"))
        md = meta_digest(self._query("SELECT key, value FROM meta"))
        return Checkpoint(seq, head_hash, digest, n, md)

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

    def rows(self) -> Iterator[tuple[str, str, Any]]:
        for kind, key, value in self._scan(
            "SELECT kind, key, value FROM state ORDER BY kind, key"
        ):
            try:
                yield kind, key, json.loads(value)
            except (ValueError, TypeError, RecursionError):
                raise StoreError(f"{self.path}: state row {kind} {key} is corrupt") from None

    @property
    def codec(self) -> EntryCodec:
        """The ledger's entry codec (its recorded dictionary; the empty one for a new file)."""
        if self._codec is None:
            d = self.meta_or_empty().get("entry_dict", "")
            self._codec = EntryCodec(d if isinstance(d, str) else "")
        return self._codec

    def _journal_rows(self, sql: str, args: tuple = ()) -> Iterator[JournalRow]:
        """Stored rows as text: the entry unpacked (None when it cannot be), the hash as hex
        where one is kept (None elsewhere; unreadable ones as a marker verification refuses).
        A row inside a chunk is read from the chunk's head (the last one read is kept, so a
        scan inflates each chunk once)."""
        return _text_rows(self._scan(sql, args), self._query, self.codec)

    def journal(self, start: int = 1) -> Iterator[JournalRow]:
        """Journal rows from ``start`` on, in order (streamed: any length fits in memory).
        ``hash`` is None where the file keeps none (see ``with_hashes``)."""
        start = min(start, _MAX_SEQ)  # SQLite integers end at 2**63-1
        yield from self._journal_rows(
            "SELECT seq, event_id, CAST(entry AS BLOB), CAST(hash AS BLOB) FROM journal WHERE seq >= ? ORDER BY seq", (start,)
        )
        yield from [r for r in self._pending if r.seq >= start]

    def journal_desc(self, before: Optional[int] = None) -> Iterator[JournalRow]:
        """Journal rows newest first (from ``before - 1`` down), hashes as in :meth:`journal`;
        for readers that show them (history): an unreadable entry is a StoreError."""
        return shown_rows(self._journal_desc(before), self.path)

    def _journal_desc(self, before: Optional[int] = None) -> Iterator[JournalRow]:
        pend = [r for r in reversed(self._pending) if before is None or r.seq < before]
        yield from pend
        top = min(before, _MAX_SEQ) if before is not None else _MAX_SEQ
        if self._pending:
            top = min(top, self._pending[0].seq)
        yield from self._journal_rows(
            "SELECT seq, event_id, CAST(entry AS BLOB), CAST(hash AS BLOB) FROM journal WHERE seq < ? ORDER BY seq DESC",
            (top,),
        )

    def journal_page(self, after: int, limit: int) -> list[JournalRow]:
        """Up to ``limit`` rows after entry ``after`` (the sequence index), every hash filled in."""
        rows = []
        for row in self.journal(after + 1):
            rows.append(row)
            if len(rows) >= limit:
                break
        return self.rows_with_hashes(rows)

    def account_blocks(self) -> Iterator[int]:
        """The per-account index as ``tag << 32 | block`` (the audit compares it with the
        journal's postings)."""
        for tag, blk in self._scan("SELECT account, block FROM account_block"):
            yield tag << 32 | blk if type(tag) is int and type(blk) is int else -1

    def account_desc(self, account: str) -> Iterator[JournalRow]:
        """Journal rows newest first from the blocks of entries that touch ``account`` (a
        superset of its entries: the caller filters by its postings), hashes as in
        :meth:`journal`; an unreadable entry is a StoreError (see :meth:`journal_desc`)."""
        return shown_rows(self._account_desc(account), self.path)

    def _account_desc(self, account: str) -> Iterator[JournalRow]:
        for row in reversed(self._pending):
            yield row
        top = self._pending[0].seq if self._pending else _MAX_SEQ
        for (blk,) in self._query(
            "SELECT block FROM account_block WHERE account = ? ORDER BY block DESC",
            (account_tag(account),),
        ):
            if type(blk) is not int or blk < 0 or blk > _MAX_SEQ >> BLOCK_SHIFT:
                continue  # a damaged index row (the audit reports it)
            lo = blk << BLOCK_SHIFT
            yield from self._journal_rows(
                "SELECT seq, event_id, CAST(entry AS BLOB), CAST(hash AS BLOB) FROM journal "
                "WHERE seq >= ? AND seq < ? AND seq < ? ORDER BY seq DESC",
                (lo, min(lo + (1 << BLOCK_SHIFT), _MAX_SEQ), top),
            )

    def kept_hash(self, seq: int) -> Optional[str]:
        """The chain hash kept for entry ``seq`` (hex), or None when none is kept or readable."""
        got = self._query("SELECT CAST(hash AS BLOB) FROM journal WHERE seq = ?", (seq,))
        h = got[0][0] if got else None
        return h.hex() if type(h) is bytes and len(h) == 32 else None

    def hash_before(self, seq: int) -> str:
        """The chain hash of entry ``seq - 1`` (the genesis hash for the first), re-hashed
        from the nearest kept hash: at most ANCHOR_EVERY entries read."""
        base = anchor_at_or_before(seq - 1)
        if base == 0:
            prev = str(self.meta_or_empty().get("genesis", ""))
        else:
            got = self._query("SELECT CAST(hash AS BLOB) FROM journal WHERE seq = ?", (base,))
            if not got or type(got[0][0]) is not bytes:
                pend = [r for r in self._pending if r.seq == base]
                if not pend:
                    raise StoreError(f"{self.path}: journal entry {base} keeps no chain hash")
                return self._rehash(pend[0].hash, base + 1, seq)
            prev = got[0][0].hex()
        return self._rehash(prev, base + 1, seq)

    def _rehash(self, prev: str, lo: int, hi: int) -> str:
        """The hash after entries lo..hi-1, starting from ``prev``."""
        if lo >= hi:
            return prev
        rows = [r for r in self.journal(lo) if r.seq < hi] if self._pending else list(
            self._journal_rows(
                "SELECT seq, event_id, CAST(entry AS BLOB), CAST(hash AS BLOB) FROM journal WHERE seq >= ? AND seq < ? "
                "ORDER BY seq", (lo, hi))
        )
        for row in with_hashes(rows, prev):
            prev = row.hash
        return prev

    def rows_with_hashes(self, rows: list[JournalRow]) -> list[JournalRow]:
        """Consecutive rows (ascending) with every hash filled in."""
        if not rows:
            return rows
        return list(with_hashes(rows, self.hash_before(rows[0].seq)))

    def event_ids(self) -> Iterator[str]:
        # from the table itself, not the event_id index that would cover this query: a
        # damaged index page must not change which ids count as applied
        for (eid,) in self._scan("SELECT event_id FROM journal NOT INDEXED"):
            yield eid
        for row in list(self._pending):
            yield row.event_id

    def has_event(self, event_id: str) -> bool:
        """Whether ``event_id`` was applied (pending rows included): an index lookup, so a
        writer keeps no set of every id it ever applied.  Once this process has asked
        often enough to pay for it (a sixth as many times as the file holds entries), a
        Bloom filter of the stored ids (``runtime/idfilter.py``) answers "certainly new"
        without a query."""
        if event_id in self._pending_ids:
            return True
        f = self._id_filter
        if f is None:
            self._id_queries += 1
            if self._id_queries > (self._cp.seq if self._cp is not None else 0) // 6:
                f = self._build_id_filter()
        if f is not None:
            # IdFilter.may_hold written out (one call less on every event's identify step)
            h = hash(event_id)
            mask, bits = f.mask, f.bits
            a, b = h & mask, (h >> 32) & mask
            if not (bits[a >> 3] >> (a & 7) & 1 and bits[b >> 3] >> (b & 7) & 1):
                return False
        return bool(self._query("SELECT 1 FROM journal WHERE event_id = ?", (event_id,)))

    def _build_id_filter(self) -> Optional[IdFilter]:
        if self.readonly or self._cp is None:
            return None
        # room for 4x the stored ids (at least _ID_ROOM): each rebuild reads every stored id
        f = IdFilter(max(4 * self._cp.seq + 2 * self.batch, _ID_ROOM))
        f.add_all(self.event_ids())  # the table itself, as event_ids reads it (pending too)
        self._id_filter = f
        return f

    def _committed(self) -> None:
        f = self._id_filter
        if f is not None:
            f.add_all(self._pending_ids)
            if f.full:  # rebuilt twice as large when next asked (amortised O(1) per id)
                self._id_filter = None
                self._id_queries = 1 << 62
        super()._committed()

    def count(self) -> int:
        return self._query("SELECT count(*) FROM journal")[0][0] + len(self._pending)

    def last_row(self) -> Optional[JournalRow]:
        if self._pending:
            return self._pending[-1]
        got = list(self._journal_rows(
            "SELECT seq, event_id, CAST(entry AS BLOB), CAST(hash AS BLOB) FROM journal ORDER BY seq DESC LIMIT 1"))
        if not got:
            return None
        row = got[0]
        if row.hash is None:
            if self._cp is not None and self._cp.seq == row.seq:
                row = row._replace(hash=self._cp.head)
            elif type(row.seq) is int:
                try:
                    row = self.rows_with_hashes([row])[0]
                except StoreError:
                    pass  # a damaged file opened read-only: its problems are reported
        return row

    def check_integrity(self) -> list[str]:
        """The open-time check again, on the file as it is now (audit calls it), the tables'
        definitions included (a changed one refuses the file for writing, so an audit that
        passed it would contradict the open)."""
        if self._pending:
            raise StoreError(f"{self.path}: flush before checking integrity")
        changed = [f"the definition of table {t} was changed outside Charter"
                   for t in self._changed_tables()]
        return changed or check_open(self)[0]

    def entry_for(self, event_id: str) -> Optional[JournalRow]:
        """The journal row that applied ``event_id`` (pending rows included), or None."""
        for row in self._pending:
            if row.event_id == event_id:
                return row
        got = list(self._journal_rows(
            "SELECT seq, event_id, CAST(entry AS BLOB), CAST(hash AS BLOB) FROM journal WHERE event_id = ?", (event_id,)))
        if not got:
            return None
        return got[0] if got[0].hash is not None else self.rows_with_hashes(got)[0]

    # ------------------------------------------------------------ writing

    def _writable(self) -> sqlite3.Connection:
        if self.readonly:
            raise StoreError(f"{self.path} is open read-only")
        if self.conn is None:
            raise StoreError(f"{self.path}: the ledger is closed")
        return self.conn

    def init(self, meta: dict[str, Any]) -> None:
        c = self._writable()
        meta = {"entry_codec": ENTRY_CODEC, "entry_dict": "", **meta}
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
        self._forget_hashes()
        self._all_hashes = cp.state_rows == 0
        self._codec = EntryCodec(meta["entry_dict"] if isinstance(meta["entry_dict"], str) else "")

    def _forget_hashes(self) -> None:
        """Stop trusting the kept row hashes (a failed commit, another writer, raw SQL):
        the rows a commit replaces are read back."""
        self._hashes = {}
        self._all_hashes = False

    def flush(self, state: Any) -> None:
        if not self._pending:
            return
        pending = self._pending
        c = self._writable()
        if self._cp is None:
            raise StoreError(f"{self.path}: the ledger records no policy yet (init first)")
        try:
            upserts, deletes = self._changes(state)
            c.execute("BEGIN IMMEDIATE")
            # the rows this commit replaces leave the state digest, the new ones enter it:
            # a replaced row's hash is known when this writer wrote the row (_hashes), the
            # others are read back (none when _hashes holds every stored row)
            keys = [(u[0], u[1]) for u in upserts] + deletes
            hashes = self._hashes
            out = n_out = 0
            unknown = []
            for k in keys:
                h = hashes.get(k)
                if h is None:
                    unknown.append(k)
                else:
                    out += h
                    n_out += 1
            if unknown and not self._all_hashes:
                out2, n2 = state_digest(c.execute(
                    _OLD_ROWS, (json.dumps(unknown, ensure_ascii=False),)).fetchall())
                out += out2
                n_out += n2
            new = _row_hashes(upserts)
            last = pending[-1]
            prev = self._cp
            cp = Checkpoint(last.seq, last.hash, (prev.state_digest - out + sum(new)) % _MOD,
                            prev.state_rows - n_out + len(new), prev.meta_digest)
            if self._run is _UNREAD:
                self._run = _open_run(self._query, self.codec, self._cp.seq)
            rows, heads, run = _packed(self.codec, pending, self._run)
            c.executemany("INSERT INTO journal VALUES (?, ?, ?, ?)", rows)
            if heads:  # the newest chunk of the last flush, continued: its head rewritten
                c.executemany("UPDATE journal SET entry = ? WHERE seq = ?", heads)
            if upserts:
                c.executemany("INSERT OR REPLACE INTO state VALUES (?, ?, ?)", upserts)
            if deletes:
                c.executemany("DELETE FROM state WHERE kind = ? AND key = ?", deletes)
            if self._touched:
                c.executemany("INSERT OR IGNORE INTO account_block VALUES (?, ?)",
                              self.index_rows())
            c.execute(_SET_CHECKPOINT, cp.row())
            c.execute("COMMIT")
        except (sqlite3.Error, UnicodeError, ValueError, TypeError) as exc:
            self._rollback()
            # rolled back: these entries are gone (the settle step undoes the event that
            # was being committed and marks the runtime broken).  They must not stay
            # buffered: a later flush (Runtime.close) would write them over a state that
            # undid them -- journal entries whose effects the stored balances lack.
            self._reset_changes()
            self._forget_hashes()
            self._run = _UNREAD
            raise StoreError(f"{self.path}: write failed: {_why(exc)}") from None
        self._cp = cp
        self._run = run
        hashes.update(zip(keys, new))  # the upserts' keys come first, in order
        for k in deletes:
            hashes.pop(k, None)
        if len(hashes) > _HASH_CACHE:
            self._forget_hashes()
        self._committed()
        # the file now holds every value the state holds: big tables may page (paged.py)
        trim = getattr(state, "trim", None)
        if trim is not None:
            trim(self)

    def row_text(self, kind: str, key: str) -> Optional[str]:
        """The stored value text of state row ``(kind, key)``, or None (a paged state
        table's read, ``runtime/paged.py``)."""
        got = self._query("SELECT value FROM state WHERE kind = ? AND key = ?", (kind, key))
        return got[0][0] if got else None

    def row_texts(self, kind: str, prefix: str) -> Iterator[tuple[str, str]]:
        """``(key, value text)`` of the stored rows of ``kind`` whose key starts with
        ``prefix``, in key order (a paged table's iteration)."""
        if not prefix:
            return self._scan("SELECT key, value FROM state WHERE kind = ? ORDER BY key",
                              (kind,))
        # every text that starts with prefix sorts in [prefix, prefix with its last char + 1)
        end = prefix[:-1] + chr(ord(prefix[-1]) + 1)
        return self._scan("SELECT key, value FROM state WHERE kind = ? AND key >= ? AND "
                          "key < ? ORDER BY key", (kind, prefix, end))

    def _rollback(self) -> None:
        try:
            if self.conn is not None and self.conn.in_transaction:
                self.conn.execute("ROLLBACK")
        except sqlite3.Error:
            pass

    def suspend_writer(self) -> None:
        """Let another process write to the ledger until :meth:`resume_writer`.

        For callers that keep a runtime between requests while other processes
        settle on the same file (AIGrid executors): everything must be flushed,
        and the file's change counter is noted so ``resume_writer`` can tell
        whether anyone wrote meanwhile."""
        if self.readonly or self._lock is None:
            return
        if self._pending:
            raise StoreError(f"{self.path}: flush before letting another writer in")
        try:
            self._data_version = self._writable().execute("PRAGMA data_version").fetchone()[0]
        except sqlite3.Error as exc:
            raise StoreError(f"{self.path}: {exc}") from None
        self._lock.release()
        self._lock = None
        self._id_filter = None  # another writer may add ids meanwhile: built again when needed
        self._forget_hashes()  # ... and change state rows
        self._id_queries = 0

    def resume_writer(self, wait: float = 0.0) -> bool:
        """Take the writer lock back (waiting up to ``wait`` seconds for another writer).

        True when no other process committed since :meth:`suspend_writer`: the
        caller's in-memory state is still the file's.  False means it must be
        reloaded (close and open again); the lock is held either way."""
        if self.readonly or self._lock is not None:
            return True
        self._lock = WriterLock(self.path, wait)
        try:
            now = self._writable().execute("PRAGMA data_version").fetchone()[0]
        except sqlite3.Error as exc:
            raise StoreError(f"{self.path}: {exc}") from None
        return now == getattr(self, "_data_version", None)

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
        self._forget_hashes()
        self.conn.execute(sql, args)


_UNREAD = object()


def _packed(
    codec: EntryCodec, rows: list[JournalRow], run: Optional[tuple[int, list[str]]]
) -> tuple[list[tuple], list[tuple[bytes, int]], Optional[tuple[int, list[str]]]]:
    """The journal rows to insert for ``rows`` (consecutive, after the stored ones), the
    ``(blob, seq)`` head rows to rewrite, and the newest run after them.

    Consecutive entries of one anchor block that strip (``EntryCodec.stripped``) form a
    run: its head row keeps them all (``EntryCodec.pack_run``), the others an empty blob;
    an entry kept whole ends the run.  ``run`` is the stored newest run (head seq, texts),
    which the first rows continue when they can: the result depends on the entries alone."""
    out: list[tuple] = []
    heads: list[tuple[bytes, int]] = []
    head, texts = run if run is not None else (-1, [])
    pos = -1  # where the run's head is in ``out`` (-1: a stored row)
    grown = False
    stripped = codec.stripped
    pack_run = codec.pack_run
    fromhex = bytes.fromhex
    append = out.append

    def close() -> None:  # the run ends: its head row gets the chunk
        if not texts or not grown:
            return
        blob = pack_run(texts)
        if pos >= 0:
            o = out[pos]
            out[pos] = (o[0], o[1], blob, o[3])
        else:
            heads.append((blob, head))

    for seq, eid, entry, h in rows:
        anchor = fromhex(h) if seq % ANCHOR_EVERY == 0 else None
        short = stripped(entry, seq, eid)
        if short is not None and texts and seq == head + len(texts) and (
                seq // ANCHOR_EVERY == head // ANCHOR_EVERY):  # one block (journal.block_of)
            texts.append(short)
            grown = True
            append((seq, eid, b"", anchor))
            continue
        close()
        if short is None:
            head, texts, pos, grown = -1, [], -1, False
            append((seq, eid, codec.pack(entry, seq, eid), anchor))
        else:
            head, texts, pos, grown = seq, [short], len(out), True
            append((seq, eid, b"", anchor))
    close()
    return out, heads, ((head, texts) if texts else None)


def _text_rows(rows: Iterable[tuple], query: Any, codec: EntryCodec) -> Iterator[JournalRow]:
    """Stored ``(seq, event_id, entry blob, hash)`` rows as text rows: the entry unpacked
    (None when it cannot be), the hash as hex where one is kept (None elsewhere; unreadable
    ones as a marker verification refuses).  A row inside a chunk is read from the chunk's
    head (the last one read is kept, so a scan inflates each chunk once)."""
    head, texts = -1, None  # the chunk read last
    in_run = codec.in_run
    for seq, eid, blob, h in rows:
        if h is not None:
            h = h.hex() if type(h) is bytes and len(h) == 32 else f"<unreadable {h!r:.40}>"
        if blob == b"":  # inside a chunk: its head is an earlier row of the block
            if texts is None or not (type(seq) is int and head < seq < head + len(texts)
                                     and block_of(seq) == block_of(head)):
                head, texts = _run_head(query, codec, seq)
            yield JournalRow(seq, eid, in_run(texts, head, seq, eid), h)
            continue
        if type(blob) is bytes and blob[:1] == CHUNK and type(seq) is int:
            head, texts = seq, codec.run_texts(blob)
            yield JournalRow(seq, eid, in_run(texts, head, seq, eid), h)
            continue
        head, texts = -1, None
        yield JournalRow(seq, eid, codec.unpack(blob, seq, eid), h)


def _run_head(query: Any, codec: EntryCodec, seq: Any) -> tuple[int, Optional[list[str]]]:
    """(head seq, texts) of the chunk that holds stored entry ``seq`` (an empty-blob row):
    the newest non-empty row before it in its anchor block; texts None when there is none."""
    if type(seq) is not int or seq <= 0:
        return -1, None
    got = query(
        "SELECT seq, CAST(entry AS BLOB) FROM journal WHERE seq < ? AND seq >= ? AND "
        "length(CAST(entry AS BLOB)) > 0 ORDER BY seq DESC LIMIT 1",
        (seq, block_of(seq) * ANCHOR_EVERY),
    )
    if not got or type(got[0][1]) is not bytes or got[0][1][:1] != CHUNK:
        return -1, None
    return got[0][0], codec.run_texts(got[0][1])


def _open_run(query: Any, codec: EntryCodec, last: int) -> Optional[tuple[int, list[str]]]:
    """The stored newest run (head seq, texts) that entry ``last`` ends, if any."""
    if last <= 0:
        return None
    got = query("SELECT CAST(entry AS BLOB) FROM journal WHERE seq = ?", (last,))
    if not got:
        return None
    blob = got[0][0]
    if blob == b"":
        head, texts = _run_head(query, codec, last)
    else:  # a chunk's head, or an entry packed on its own
        head, texts = last, codec.run_texts(blob)
    if texts is None or head + len(texts) - 1 != last:
        return None  # nothing to continue (a whole entry, or an odd file): a new run starts
    return head, texts


def tamper_connection(path: str | os.PathLike) -> sqlite3.Connection:
    """A raw connection to a ledger file with SQL functions to edit packed entries, for the
    tests and fuzzers that prove edits are noticed: ``entry_text(entry, seq, event_id)``,
    ``entry_blob(text, seq, event_id)`` (the ledger's codec; ``entry_blob(text)`` keeps
    the whole text, so the row's columns need not agree with it) and
    ``hex_hash(hash)``/``raw_hash(hex)``."""
    c = sqlite3.connect(str(path), isolation_level=None)
    got = c.execute("SELECT value FROM meta WHERE key = 'entry_dict'").fetchone()
    codec = EntryCodec(json.loads(got[0]) if got else "")
    uri = Path(path).resolve().as_uri() + "?mode=ro"

    def entry_text(blob: Any, seq: Any, event_id: Any) -> Optional[str]:
        if blob == b"":  # a row inside a chunk: read from its head (committed rows)
            reader = sqlite3.connect(uri, uri=True)  # read-only: closing it writes nothing
            try:
                head, texts = _run_head(lambda q, a: reader.execute(q, a).fetchall(), codec,
                                        seq)
            finally:
                reader.close()
            return codec.in_run(texts, head, seq, event_id)
        return codec.unpack(blob, seq, event_id)

    c.create_function("entry_text", 3, entry_text)
    c.create_function("entry_blob", 3, lambda t, s, e: codec.pack(t, s, e)
                      if isinstance(t, str) else t, deterministic=True)
    c.create_function("entry_blob", 1, lambda t: codec.pack(t) if isinstance(t, str) else t,
                      deterministic=True)
    c.create_function("hex_hash", 1, lambda h: h.hex() if isinstance(h, bytes) else h,
                      deterministic=True)
    c.create_function("raw_hash", 1, lambda h: bytes.fromhex(h) if isinstance(h, str) else h,
                      deterministic=True)
    return c


def _row_upgrader(policy: Any) -> Any:
    """``(kind, key, value text) -> the row as the current schema keeps it``: a record as its
    field values in declared order, an int meta value bare, a deadline marker under its short
    key (``fired:<handler>:<key>`` before version 5); anything else as it was."""
    from .state import State

    st = State(policy)
    tags = st._fired_tag

    def upgrade(kind: str, key: str, value: str) -> tuple[str, str, str]:
        if kind == "record":
            v = json.loads(value)
            r = json.loads(key)[0]
            if isinstance(v, dict) and set(v) == set(st.record_fields.get(r, ())):
                return kind, key, _dumps([v[f] for f in st.record_fields[r]])
        elif kind == "meta":
            if key.startswith("fired:"):
                handler, _, rk = key[6:].partition(":")
                if handler in tags:
                    key = tags[handler] + rk
            v = json.loads(value)
            if isinstance(v, dict) and set(v) == {"v"} and type(v["v"]) is int:
                return kind, key, int.__repr__(v["v"])
        return kind, key, value

    return upgrade


def migrate(path: str | os.PathLike) -> dict[str, Any]:
    """Rewrite a ledger of an older schema (:data:`MIGRATABLE`) as the current version.

    The old file is verified first as an audit would (recorded policy, the whole hash
    chain, balances from postings, its checkpoint): a ledger that fails is refused
    (:class:`LedgerIntegrityError`), never converted.  The journal hashes do not
    change (the entry text is the same; only how it is kept), so the new file has the
    same head.  The new file is built beside the old one and moved into place; the
    old one is kept as ``<path>.v<N>.bak``.  Returns a summary."""
    from .integrity import parse_checkpoint
    from .journal import ENTRY_CODEC_V1, compare_balances, entry_dictionary, verify_chain

    path = Path(path)
    if not path.is_file():
        raise StoreError(f"{path}: no such ledger")
    lock = WriterLock(path, 0.0)
    try:
        try:
            old = sqlite3.connect(str(path), isolation_level=None)
            app_id = old.execute("PRAGMA application_id").fetchone()[0]
            tables = {r[0] for r in old.execute("SELECT name FROM sqlite_master WHERE type='table'")}
            if not _LEDGER_TABLES <= tables or app_id not in (0, APPLICATION_ID):
                raise NotALedgerError(path, "is not a Charter ledger; it is left untouched")
            (version,) = old.execute("SELECT version FROM schema_version").fetchone()
        except (sqlite3.Error, TypeError, UnicodeDecodeError):  # a table name not UTF-8
            raise NotALedgerError(path, "is not a Charter ledger (unreadable); it is left untouched") from None
        if version == SCHEMA_VERSION:
            old.close()
            return {"path": str(path), "from": version, "to": version, "entries": None,
                    "migrated": False}
        if version not in MIGRATABLE:
            old.close()
            raise StoreError(f"{path} has ledger schema version {str(version)[:40]!r}; "
                             f"cannot migrate it (migrates {MIGRATABLE})")
        try:
            meta_rows = old.execute("SELECT key, value FROM meta").fetchall()
            meta = {k: json.loads(v) for k, v in meta_rows}
            pol, genesis, problems = recorded_policy(meta)
            if pol is None or genesis is None:
                raise LedgerIntegrityError(path, problems)
            stored: dict[str, int] = {}
            for key, value in old.execute("SELECT key, value FROM state WHERE kind = 'balance'"):
                stored[key] = json.loads(value)
            # version 4 packs each entry whole; 5 each on its own without seq/id; 6 those
            # in chunks
            codec_name = ENTRY_CODEC_V1 if version == 4 else ENTRY_CODEC_V2
            if version >= 4 and meta.get("entry_codec") != codec_name:
                raise LedgerIntegrityError(path, [f"unknown entry codec {meta.get('entry_codec')!r}"])
            old_codec = EntryCodec(str(meta.get("entry_dict", "")), codec_name)

            def old_query(sql: str, args: tuple = ()) -> list:
                return old.execute(sql, args).fetchall()

            def old_rows() -> Iterator[JournalRow]:
                """The old journal as text rows (version 4 on: packed, hashes at anchors)."""
                if version < 4:
                    for r in old.execute("SELECT seq, event_id, entry, hash FROM journal ORDER BY seq"):
                        yield JournalRow(*r)
                    return
                yield from _text_rows(old.execute(
                    "SELECT seq, event_id, CAST(entry AS BLOB), CAST(hash AS BLOB) FROM journal "
                    "ORDER BY seq"), old_query, old_codec)

            blocks: set[int] = set()
            found, head, n, recomputed = verify_chain(old_rows(), genesis, blocks=blocks)
            problems += found + compare_balances(recomputed, stored)
            if version >= 3:
                cp_rows = old.execute("SELECT seq, head, state_digest, state_rows, meta_digest, "
                                      "hash FROM checkpoint").fetchall()
                cp = parse_checkpoint(cp_rows[0]) if len(cp_rows) == 1 else None
                digest = state_digest(old.execute("SELECT kind, key, value FROM state"))
                if cp is None or (cp.seq, cp.head) != (n, head) or (
                    cp.state_digest, cp.state_rows) != digest or cp.meta_digest != meta_digest(
                        meta_rows):
                    problems.append("the checkpoint does not match the journal, state or metadata")
        except (sqlite3.Error, ValueError, TypeError, RecursionError) as exc:
            old.close()
            raise StoreError(f"{path}: cannot read the old ledger ({_why(exc)})") from None
        if problems:
            old.close()
            raise LedgerIntegrityError(path, problems)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.migrating")
        for p in (tmp, Path(str(tmp) + ".lock")):
            p.unlink(missing_ok=True)
        new = SqliteStore(tmp, synchronous="NORMAL")
        try:
            meta = {**meta, "entry_codec": ENTRY_CODEC, "entry_dict": entry_dictionary(pol)}
            new.init(meta)
            c = new.conn
            c.execute("BEGIN IMMEDIATE")
            upgrade = _row_upgrader(pol)
            c.executemany("INSERT INTO state VALUES (?, ?, ?)",
                          (upgrade(*r) for r in old.execute("SELECT kind, key, value FROM state")))
            # packed as a run of settlement writes them (the same rows whatever the batch)
            batch: list[JournalRow] = []
            run = None
            for r in with_hashes(old_rows(), genesis):
                batch.append(r)
                if len(batch) >= 4096:
                    rows, heads, run = _packed(new.codec, batch, run)
                    c.executemany("INSERT INTO journal VALUES (?, ?, ?, ?)", rows)
                    c.executemany("UPDATE journal SET entry = ? WHERE seq = ?", heads)
                    batch.clear()
            rows, heads, run = _packed(new.codec, batch, run)
            c.executemany("INSERT INTO journal VALUES (?, ?, ?, ?)", rows)
            c.executemany("UPDATE journal SET entry = ? WHERE seq = ?", heads)
            c.executemany("INSERT INTO account_block VALUES (?, ?)",
                          ((b >> 32, b & 0xFFFFFFFF) for b in sorted(blocks)))
            cp = new._fresh_checkpoint(genesis, (n, head) if n else None)
            c.execute(_SET_CHECKPOINT, cp.row())
            c.execute("COMMIT")
            c.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        except BaseException:
            new._rollback()
            new.close()
            tmp.unlink(missing_ok=True)
            old.close()
            raise
        new.close()
        Path(str(tmp) + ".lock").unlink(missing_ok=True)
        for suffix in ("-wal", "-shm"):
            Path(str(tmp) + suffix).unlink(missing_ok=True)
        old.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        old.close()
        backup = path.with_name(f"{path.name}.v{version}.bak")
        os.replace(path, backup)
        os.replace(tmp, path)
        for suffix in ("-wal", "-shm"):
            Path(str(path) + suffix).unlink(missing_ok=True)
        return {"path": str(path), "from": version, "to": SCHEMA_VERSION, "entries": n,
                "head": head, "backup": str(backup), "migrated": True}
    finally:
        lock.release()


def row_json(value: Any) -> str:
    """The text a store keeps for a state row's JSON value (``State.value_of``'s): what replay
    compares a stored row with, byte for byte."""
    return _dumps(value)
