"""The PostgreSQL store: one ledger shared by several runtime processes (psycopg 3).

A ledger is one PostgreSQL schema (``?schema=NAME`` in the URL, default
``charter``) holding the same tables as a SQLite ledger::

    schema_version(app, version)
    meta(key TEXT PRIMARY KEY, value TEXT)
    journal(seq BIGINT PRIMARY KEY, event_id TEXT UNIQUE, entry TEXT, hash TEXT)
    state(kind TEXT, key BYTEA, value TEXT, PRIMARY KEY(kind, key))
    checkpoint(id = 1, seq, head, state_digest, state_rows, meta_digest, hash)
    account_block(account INTEGER, block BIGINT, PRIMARY KEY(account, block))

``account_block`` is the per-account index, as in a SQLite ledger
(``journal.BLOCK_SHIFT``): for each account (by its 31-bit tag) the blocks of
1,024 entries whose postings touch it, so ``history --account A --limit N``
reads only those blocks, newest first; the audit checks it against the
postings.  Schema version 2 (before the index) is refused with its version
named; ``charter ledger migrate URL`` adds the index (:func:`migrate`).

The journal entries and their hashes are made by the engine, not the store,
and the state rows by :class:`~charter.runtime.sqlite_store.ChangeBuffer`
(shared with SQLite), so the same stream gives the same journal, byte for
byte, and the same checkpoint on both stores.  (``state.key`` is ``BYTEA``,
the key's UTF-8: a record key is event text and may hold NUL, which a
PostgreSQL ``TEXT`` cannot; bytes also sort as SQLite and Python sort text.)

**Several writers.**  Every runtime keeps the whole state in memory, so a
process must see what the others committed before it settles an event.
The engine's ``sync`` step (``runtime/settle.py``) calls :meth:`sync`: it
opens a transaction and takes the ledger's transaction-scoped advisory lock
(``pg_advisory_xact_lock``), so events settle one at a time across all
processes, in the order the journal records.  Holding the lock, it reads the
checkpoint; if another process has committed since this one last looked,
the missed journal entries are *replayed* through the same step table (their
entries and hashes must come out identical, or the store refuses to go on).
Replaying rather than re-reading the changed rows keeps state that rows do
not hold (the set of parties that submitted, deadline heaps) exactly as one
process would have it.  The commit releases the lock; so does the end of an
event that wrote nothing (a rejection, a duplicate).  With ``batch=N`` the
lock is held from the first event of a batch to its commit.

Why a lock and not optimistic retries: every commit extends the one hash
chain, so any two concurrent commits conflict; under load an optimistic
writer would redo most of its events.  ``benchmarks/bench_pg.py`` measures
the lock's cost (4 processes against 1).

**Integrity.**  Opening for writing runs the same open-time check as SQLite
(``runtime/integrity.py``: checkpoint, chain head, last 1,000 entries, state
digest, recorded policy) in one consistent snapshot and refuses a ledger
that fails it; ``readonly=True`` reports the problems instead.  Every commit
advances the checkpoint in the same transaction.

**Durability.**  A commit returns when PostgreSQL has made it durable
(``synchronous_commit`` as the server is configured, ``on`` by default).
"""

from __future__ import annotations

import json
import re
from collections import deque
from typing import Any, Iterator, Optional

from .integrity import Checkpoint, check_open, full_check, meta_digest, parse_checkpoint
from .integrity import recorded_policy, state_digest
from .journal import BLOCK_SHIFT, JournalRow, account_tag, chain
from .sqlite_store import ChangeBuffer
from .store import LedgerBusyError, LedgerIntegrityError, NotALedgerError, StoreError
from .store import shown_rows

try:
    import psycopg
    from psycopg.adapt import Loader
except ImportError:  # pragma: no cover - exercised where the extra is not installed
    psycopg = None  # type: ignore[assignment]
    Loader = object  # type: ignore[assignment,misc]

# 2: compact state rows (records as field lists, bare int meta, short deadline markers:
# the rows ChangeBuffer writes for SQLite schema 5 too); 3: the per-account index
SCHEMA_VERSION = 3
MIGRATABLE = (2,)
APP = "charter-ledger"
DEFAULT_SCHEMA = "charter"
SCHEMA_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}\Z")  # unquoted: PostgreSQL folds case
# the first key of the two-int advisory lock: "CH" (the second is the ledger's schema)
_LOCK_CLASS = 0x4348

_TABLES = {
    "schema_version": (
        "CREATE TABLE {s}.schema_version (app TEXT NOT NULL, version INTEGER NOT NULL)"
    ),
    "meta": "CREATE TABLE {s}.meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    "journal": (
        "CREATE TABLE {s}.journal (seq BIGINT PRIMARY KEY, event_id TEXT NOT NULL UNIQUE, "
        "entry TEXT NOT NULL, hash TEXT NOT NULL)"
    ),
    "state": (
        "CREATE TABLE {s}.state (kind TEXT NOT NULL, key BYTEA NOT NULL, value TEXT NOT NULL, "
        "PRIMARY KEY (kind, key))"
    ),
    "checkpoint": (
        "CREATE TABLE {s}.checkpoint (id INTEGER PRIMARY KEY CHECK (id = 1), seq BIGINT NOT NULL, "
        "head TEXT NOT NULL, state_digest TEXT NOT NULL, state_rows BIGINT NOT NULL, "
        "meta_digest TEXT NOT NULL, hash TEXT NOT NULL)"
    ),
    "account_block": (
        "CREATE TABLE {s}.account_block (account INTEGER NOT NULL, block BIGINT NOT NULL, "
        "PRIMARY KEY (account, block))"
    ),
}
# the columns (name, type) each table must have: a ledger whose tables were altered is refused
_COLUMNS = {
    "schema_version": [("app", "text"), ("version", "integer")],
    "meta": [("key", "text"), ("value", "text")],
    "journal": [("seq", "bigint"), ("event_id", "text"), ("entry", "text"), ("hash", "text")],
    "state": [("kind", "text"), ("key", "bytea"), ("value", "text")],
    "checkpoint": [
        ("id", "integer"), ("seq", "bigint"), ("head", "text"), ("state_digest", "text"),
        ("state_rows", "bigint"), ("meta_digest", "text"), ("hash", "text"),
    ],
    "account_block": [("account", "integer"), ("block", "bigint")],
}  # fmt: skip
_SET_CHECKPOINT = (
    "INSERT INTO checkpoint (id, seq, head, state_digest, state_rows, meta_digest, hash) "
    "VALUES (1, %s, %s, %s, %s, %s, %s) ON CONFLICT (id) DO UPDATE SET seq = EXCLUDED.seq, "
    "head = EXCLUDED.head, state_digest = EXCLUDED.state_digest, "
    "state_rows = EXCLUDED.state_rows, meta_digest = EXCLUDED.meta_digest, hash = EXCLUDED.hash"
)
_OLD_ROWS = (
    "SELECT s.kind, s.key, s.value FROM state s "
    "JOIN unnest(%s::text[], %s::bytea[]) AS k(kind, key) ON s.kind = k.kind AND s.key = k.key"
)
_CHECKPOINT = "SELECT seq, head, state_digest, state_rows, meta_digest, hash FROM checkpoint"


class _KeyLoader(Loader):  # type: ignore[misc,valid-type]
    """``state.key`` (BYTEA, in the text format ``bytea_output = hex``: ``\\x4142``) read
    back as the text it stores."""

    def load(self, data: Any) -> str:
        return bytes.fromhex(bytes(data)[2:].decode("ascii")).decode("utf-8", "surrogatepass")


def _holder_name() -> str:
    import os
    import sys

    cmd = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else "python"
    return f"charter {cmd} pid {os.getpid()}"[:63]


def _key(k: str) -> bytes:
    return k.encode("utf-8", "surrogatepass")


def _why(exc: BaseException, secret: Optional[str]) -> str:
    """A driver error as one short line, never with the password in it."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    if secret:
        from urllib.parse import unquote

        for form in {secret, unquote(secret)}:
            text = text.replace(form, "***")
    return text if len(text) <= 300 else text[:300] + "..."


class PostgresStore(ChangeBuffer):
    """A ledger in PostgreSQL (see the module docstring).  ``url`` is a libpq URL or
    key/value conninfo without the ``schema`` parameter; ``where`` is how messages
    name the ledger (the URL with its password hidden)."""

    persistent = True

    def __init__(
        self,
        url: str,
        *,
        schema: str = DEFAULT_SCHEMA,
        where: Optional[str] = None,
        secret: Optional[str] = None,
        batch: int = 1,
        create: bool = True,
        readonly: bool = False,
        connect_timeout: int = 10,
        lock_timeout: float = 60.0,
        check_state: bool = True,
    ):
        if batch < 1:
            raise ValueError("batch must be >= 1")
        if psycopg is None:
            raise StoreError(
                "PostgreSQL ledgers need psycopg 3: pip install 'charter-policy[postgres]'"
            )
        if not SCHEMA_NAME.match(schema):
            raise StoreError(
                f"schema {schema[:80]!r}: a ledger's schema name is a lowercase letter or '_' "
                "followed by up to 62 lowercase letters, digits or '_'"
            )
        self.schema = schema
        self.path = where or f"postgresql ledger {schema}"  # messages name the ledger by it
        self.batch = batch
        self.readonly = readonly
        # a reader of the journal alone may skip the state digest at open (a writer never)
        self._check_state = check_state or not readonly
        self.integrity_problems: tuple[str, ...] = ()
        self._secret = secret
        self._cp: Optional[Checkpoint] = None
        self._tx: Optional[str] = None  # None, "snapshot" (reading) or "write" (lock held)
        self._catching_up: Optional[deque] = None  # journal rows being replayed by sync
        self._cursors = 0
        # syncs (lock taken), of which catch-ups (another process had committed since), and
        # entries replayed: the benchmark's measure of contention (an optimistic writer
        # would have retried every catch-up)
        self.stats = {"syncs": 0, "catchups": 0, "replayed": 0}
        self._reset_changes()
        self.conn: Any = None
        try:
            self.conn = psycopg.connect(
                url,
                autocommit=True,
                connect_timeout=connect_timeout,
                # other writers see who holds the ledger's lock (LedgerBusyError names it)
                application_name=_holder_name(),
            )
        except psycopg.Error as exc:
            raise StoreError(f"cannot connect to {self.path}: {_why(exc, secret)}") from None
        try:
            self.conn.adapters.register_loader("bytea", _KeyLoader)
            self._lock_key: int = self.conn.execute("SELECT hashtext(%s)", (schema,)).fetchone()[0]
            # unqualified names (as the shared integrity checks write them) are the ledger's
            self.conn.execute(f'SET search_path TO "{schema}"')
            self.conn.execute("SET bytea_output = 'hex'")  # what _KeyLoader reads
            # a writer that hangs holding the lock must not stop every other one for ever
            self.conn.execute(f"SET lock_timeout = {int(max(0.0, lock_timeout) * 1000)}")
            self._open(create and not readonly)
        except psycopg.Error as exc:
            self.close()
            raise StoreError(f"{self.path}: {_why(exc, secret)}") from None
        except BaseException:
            self.close()
            raise

    # ------------------------------------------------------------ opening

    def _open(self, create: bool) -> None:
        c = self.conn
        tables = self._tables()
        if not tables:
            if not create:
                raise StoreError(f"{self.path}: no such ledger")
            self._create()
            tables = self._tables()
        self._begin_snapshot()
        # the version first: an older ledger lacks tables this one has
        got = (
            self._query("SELECT app, version FROM schema_version")
            if tables.get("schema_version") == _COLUMNS["schema_version"]
            else []
        )
        if len(got) == 1 and got[0][0] == APP and got[0][1] != SCHEMA_VERSION:
            version = got[0][1]
            if version in MIGRATABLE:
                raise StoreError(
                    f"{self.path} has PostgreSQL ledger schema version {version}; this Charter "
                    f"reads version {SCHEMA_VERSION} (with a per-account index). Run `charter "
                    f"ledger migrate URL` on it to add the index (entries and hashes unchanged)"
                )
            raise StoreError(
                f"{self.path} has PostgreSQL ledger schema version {str(version)[:40]}; this "
                f"Charter reads version {SCHEMA_VERSION} (and migrates versions "
                f"{', '.join(map(str, MIGRATABLE))}): replay its events into a new ledger"
            )
        if set(tables) != set(_TABLES):
            missing = sorted(set(_TABLES) - set(tables))
            raise NotALedgerError(
                self.path,
                f"is not a Charter ledger (schema {self.schema!r} lacks the table(s) "
                f"{', '.join(missing) or '-'}); it is left untouched",
            )
        if got != [(APP, SCHEMA_VERSION)]:
            raise NotALedgerError(
                self.path,
                f"is not a Charter ledger this version reads (schema_version holds "
                f"{str(got)[:80]}); it is left untouched",
            )
        problems = self._changed_tables(tables)
        if problems:
            if self.readonly:
                self.integrity_problems = tuple(problems)
                return
            raise LedgerIntegrityError(self.path, problems)
        problems, self._cp = check_open(self, state=self._check_state)
        if self.readonly:
            self.integrity_problems = tuple(problems)
        elif problems:
            _, genesis, _ = recorded_policy(self.meta_or_empty())
            found = tuple(full_check(self, genesis))
            raise LedgerIntegrityError(
                self.path, problems, found, replay_may_say_more=genesis is not None and not found
            )

    def _changed_tables(self, tables: dict[str, list[tuple[str, str]]]) -> list[str]:
        """Ledger tables whose columns are not the ones this code creates."""
        return [
            f"the definition of table {t} was changed outside Charter"
            for t in sorted(_COLUMNS)
            if tables.get(t) != _COLUMNS[t]
        ]

    def _tables(self) -> dict[str, list[tuple[str, str]]]:
        """The ledger's tables in its schema and their (column, type) lists."""
        out: dict[str, list[tuple[str, str]]] = {}
        for table, col, typ in self.conn.execute(
            "SELECT table_name, column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = %s ORDER BY table_name, ordinal_position",
            (self.schema,),
        ):
            out.setdefault(table, []).append((col, typ))
        return out

    def _create(self) -> None:
        """Make the schema and its tables in one transaction, under the ledger's lock:
        two processes creating the same ledger at once make it once."""
        c = self.conn
        s = f'"{self.schema}"'
        with c.transaction():
            c.execute("SELECT pg_advisory_xact_lock(%s, %s)", (_LOCK_CLASS, self._lock_key))
            if self._tables():
                return  # made meanwhile by another process: opened (and checked) as it is
            c.execute(f"CREATE SCHEMA IF NOT EXISTS {s}")
            for stmt in _TABLES.values():
                c.execute(stmt.format(s=s))
            c.execute(
                f"INSERT INTO {s}.schema_version VALUES (%s, %s)", (APP, SCHEMA_VERSION)
            )

    def _begin_snapshot(self) -> None:
        """One consistent view for everything read until the next write (an open's checks
        and loads; a read-only store's whole life)."""
        self._end()
        self.conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        self._tx = "snapshot"

    def _end(self, rollback: bool = False) -> None:
        if self._tx is not None:
            self._tx = None
            self.conn.execute("ROLLBACK" if rollback else "COMMIT")

    # ------------------------------------------------------------ reading

    def _live(self) -> Any:
        if self.conn is None:
            raise StoreError(f"{self.path}: the ledger is closed")
        return self.conn

    def _query(self, sql: str, args: tuple = ()) -> list[tuple]:
        """Rows of a query (``?`` placeholders, as the shared integrity checks write them)."""
        c = self._live()
        try:
            return c.execute(sql.replace("?", "%s"), args).fetchall()
        except psycopg.Error as exc:
            raise StoreError(f"{self.path}: {_why(exc, self._secret)}") from None

    def _scan(self, sql: str, args: tuple = ()) -> Iterator[tuple]:
        """Rows of a query in chunks, through a server-side cursor when inside a transaction
        (a whole journal need not fit in memory)."""
        c = self._live()
        try:
            if self._tx is None:
                yield from c.execute(sql.replace("?", "%s"), args).fetchall()
                return
            self._cursors += 1
            with c.cursor(name=f"scan_{self._cursors}") as cur:
                cur.itersize = 4096
                cur.execute(sql.replace("?", "%s"), args)
                yield from cur
        except psycopg.Error as exc:
            raise StoreError(f"{self.path}: {_why(exc, self._secret)}") from None

    def rows(self) -> Iterator[tuple[str, str, Any]]:
        # ORDER BY the key's bytes: UTF-8 byte order is code-point order, as SQLite and
        # Python order text
        for kind, key, value in self._scan("SELECT kind, key, value FROM state ORDER BY kind, key"):
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

    def journal_desc(self, before: Optional[int] = None) -> Iterator[JournalRow]:
        """Journal rows newest first (from ``before - 1`` down), read from the sequence index
        in pages that grow from 16 rows: ``history --limit N`` reads about N rows, not the
        journal (and committed rows below ``before`` never change between pages).  For
        readers that show them: an unreadable entry is a StoreError."""
        return shown_rows(self._journal_desc(before), self.path)

    def _journal_desc(self, before: Optional[int] = None) -> Iterator[JournalRow]:
        pend = [r for r in reversed(self._pending) if before is None or r.seq < before]
        yield from pend
        top = (1 << 63) - 1 if before is None else before
        if self._pending:
            top = min(top, self._pending[0].seq)
        page = 16
        while True:
            rows = self._query(
                "SELECT seq, event_id, entry, hash FROM journal WHERE seq < %s "
                "ORDER BY seq DESC LIMIT %s",
                (top, page),
            )
            for seq, eid, entry, h in rows:
                yield JournalRow(seq=seq, event_id=eid, entry=entry, hash=h)
            if len(rows) < page:
                return
            top, page = rows[-1][0], min(page * 4, 4096)

    def account_blocks(self) -> Iterator[int]:
        """The per-account index as ``tag << 32 | block`` (the audit compares it with the
        journal's postings)."""
        for tag, blk in self._scan("SELECT account, block FROM account_block"):
            yield tag << 32 | blk

    def account_desc(self, account: str) -> Iterator[JournalRow]:
        """Journal rows newest first from the blocks of entries that touch ``account`` (a
        superset of its entries: the caller filters by its postings); an unreadable entry
        is a StoreError."""
        return shown_rows(self._account_desc(account), self.path)

    def _account_desc(self, account: str) -> Iterator[JournalRow]:
        yield from reversed(self._pending)
        top = self._pending[0].seq if self._pending else None
        blocks = self._query(
            "SELECT block FROM account_block WHERE account = %s ORDER BY block DESC",
            (account_tag(account),),
        )
        for (blk,) in blocks:
            lo, hi = blk << BLOCK_SHIFT, (blk + 1) << BLOCK_SHIFT
            if top is not None:
                hi = min(hi, top)
            for seq, eid, entry, h in self._query(
                "SELECT seq, event_id, entry, hash FROM journal WHERE seq >= %s AND seq < %s "
                "ORDER BY seq DESC",
                (lo, hi),
            ):
                yield JournalRow(seq=seq, event_id=eid, entry=entry, hash=h)

    def event_ids(self) -> Iterator[str]:
        for (eid,) in self._scan("SELECT event_id FROM journal"):
            yield eid
        for row in list(self._pending):
            yield row.event_id

    def last_row(self) -> Optional[JournalRow]:
        if self._pending:
            return self._pending[-1]
        got = self._query(
            "SELECT seq, event_id, entry, hash FROM journal ORDER BY seq DESC LIMIT 1"
        )
        return JournalRow(*got[0]) if got else None

    def entry_for(self, event_id: str) -> Optional[JournalRow]:
        for row in self._pending:
            if row.event_id == event_id:
                return row
        got = self._query(
            "SELECT seq, event_id, entry, hash FROM journal WHERE event_id = %s", (event_id,)
        )
        return JournalRow(*got[0]) if got else None

    def check_integrity(self) -> list[str]:
        """The open-time check again, on the ledger as it is now (audit calls it)."""
        if self._pending:
            raise StoreError(f"{self.path}: flush before checking integrity")
        changed = self._changed_tables(self._tables())
        return changed or check_open(self)[0]

    # ------------------------------------------------------------ several writers

    def _lock(self) -> list[tuple]:
        """Start a write transaction holding the ledger's lock (waits for other writers);
        returns the checkpoint row(s) as of the lock.  One round trip (a pipeline): the
        lock is held for as short a time as the work allows."""
        if self.readonly:
            raise StoreError(f"{self.path} is open read-only")
        c = self._live()
        self._end()
        self._tx = "write"
        try:
            with c.pipeline():
                c.execute("BEGIN")
                c.execute("SELECT pg_advisory_xact_lock(%s, %s)", (_LOCK_CLASS, self._lock_key))
                cur = c.execute(_CHECKPOINT)
            return cur.fetchall()
        except psycopg.errors.LockNotAvailable:
            self._fail()
            pid, holder = self._holder()
            raise LedgerBusyError(self.path, pid, holder, shared=True) from None

    def _holder(self) -> tuple[Optional[int], str]:
        """The server process id and application name of the session holding the lock."""
        try:
            got = self.conn.execute(
                "SELECT a.pid, a.application_name FROM pg_locks l JOIN pg_stat_activity a "
                "ON a.pid = l.pid WHERE l.locktype = 'advisory' AND l.granted "
                "AND l.classid = %s::int4::oid AND l.objid = %s::int4::oid",
                (_LOCK_CLASS, self._lock_key),
            ).fetchall()
        except psycopg.Error:
            return None, ""
        if not got:
            return None, ""
        # a Charter writer's session is named "charter <command> pid <its pid>"
        backend, app = got[0]
        m = re.fullmatch(r"(charter .*) pid (\d+)", app or "")
        if m:
            return int(m.group(2)), m.group(1)
        return None, f"{app or 'a session'}, server process {backend}"

    def sync(self, rt: Any) -> None:
        """Before an event: hold the ledger's lock and bring ``rt`` up to date with every
        entry other processes committed (replayed through the engine's own steps)."""
        if self._catching_up is not None or self._tx == "write":
            return  # an entry being replayed, or the rest of a batch: the lock is held
        try:
            cp_rows = self._lock()
        except psycopg.Error as exc:
            self._fail()
            raise StoreError(f"{self.path}: {_why(exc, self._secret)}") from None
        except StoreError:
            self._fail()
            raise
        cp = parse_checkpoint(cp_rows[0]) if len(cp_rows) == 1 else None
        if cp is None:
            self._fail()
            raise LedgerIntegrityError(
                self.path,
                ["the checkpoint row is missing or does not match its own hash (edited by hand?)"],
            )
        self._cp = cp
        self.stats["syncs"] += 1
        if cp.seq == rt.seq and cp.head == rt.head:
            return
        if cp.seq <= rt.seq:
            self._fail()
            raise StoreError(
                f"{self.path}: the ledger's last entry is {cp.seq} ({cp.head[:16]}...) but this "
                f"runtime has applied up to {rt.seq} ({rt.head[:16]}...): the ledger was "
                "restored or rewritten under it; reopen the ledger"
            )
        self._catch_up(rt, cp)

    def _catch_up(self, rt: Any, cp: Checkpoint) -> None:
        rows = [
            JournalRow(*r)
            for r in self._query(
                "SELECT seq, event_id, entry, hash FROM journal WHERE seq > %s ORDER BY seq",
                (rt.seq,),
            )
        ]
        prev = rt.head
        for i, row in enumerate(rows):
            # the entries must continue this runtime's chain: the same history, not another
            if row.seq != rt.seq + 1 + i or chain(prev, row.entry) != row.hash:
                self._fail()
                raise StoreError(
                    f"{self.path}: journal entry {row.seq} does not continue this runtime's "
                    "chain (the ledger was rewritten); reopen the ledger"
                )
            prev = row.hash
        if prev != cp.head or (rows and rows[-1].seq != cp.seq):
            self._fail()
            raise StoreError(f"{self.path}: the journal does not end at the checkpoint's entry")
        self.stats["catchups"] += 1
        self.stats["replayed"] += len(rows)
        self._catching_up = deque(rows)
        try:
            for row in rows:
                out = rt._submit(json.loads(row.entry)["event"], True)
                if not out.applied or out.journal_hash != row.hash:
                    raise StoreError(
                        f"{self.path}: journal entry {row.seq} (event {row.event_id!r}), "
                        f"committed by another process, does not replay here "
                        f"({getattr(out, 'message', 'a different entry')}); is every process "
                        "running the same Charter version?"
                    )
        except BaseException:
            self._fail()
            raise
        finally:
            self._catching_up = None

    def release(self) -> None:
        """After an event (and after a runtime has loaded): end the transaction and let the
        next writer in, unless entries wait for their commit (a batch) or an entry is
        being replayed.  A read-only store keeps its one snapshot."""
        if self._catching_up is not None or self._pending or self._tx is None:
            return
        if self._tx == "snapshot" and self.readonly:
            return
        try:
            self._end()
        except psycopg.Error:
            self._fail()

    def _fail(self) -> None:
        try:
            self._end(rollback=True)
        except psycopg.Error:
            pass
        self._tx = None

    # ------------------------------------------------------------ writing

    def init(self, meta: dict[str, Any]) -> None:
        c = self._live()
        if self.readonly:
            raise StoreError(f"{self.path} is open read-only")
        rows = {k: json.dumps(v, sort_keys=True) for k, v in meta.items()}
        try:
            self._lock()
            have = dict(self._query("SELECT key, value FROM meta"))
            if have:
                # another process started this ledger since we looked: the same policy and
                # parameters is the same ledger; anything else is not ours to overwrite
                if have != rows:
                    raise StoreError(
                        f"{self.path}: another process started this ledger meanwhile with "
                        "another policy or other parameters"
                    )
                cp = parse_checkpoint(self._query(_CHECKPOINT)[0])
            else:
                c.cursor().executemany("INSERT INTO meta VALUES (%s, %s)", list(rows.items()))
                genesis = str(meta.get("genesis", ""))
                cp = Checkpoint(0, genesis, *state_digest(()), meta_digest(rows.items()))
                c.execute(_SET_CHECKPOINT, cp.row())
            self._end()
        except psycopg.Error as exc:
            self._fail()
            raise StoreError(f"{self.path}: {_why(exc, self._secret)}") from None
        except BaseException:
            self._fail()
            raise
        self._cp = cp
        self._begin_snapshot()  # the runtime now reads the new ledger

    def append(self, row: JournalRow, frame: Any, state: Any) -> None:
        waiting = self._catching_up
        if waiting is None:
            super().append(row, frame, state)
            return
        # replaying another process's entry: it must come out as stored; nothing is written
        want = waiting.popleft()
        if row != want:
            raise StoreError(
                f"{self.path}: journal entry {want.seq} (event {want.event_id!r}), committed "
                "by another process, replays to a different entry here; is every process "
                "running the same Charter version?"
            )

    def flush(self, state: Any) -> None:
        if not self._pending:
            return
        if self._tx != "write" or self._cp is None:
            raise StoreError(f"{self.path}: internal error: commit without the ledger's lock")
        upserts, deletes = self._changes(state)
        pending = self._pending
        c = self.conn
        try:
            keys = [(u[0], u[1]) for u in upserts] + deletes
            old = (
                c.execute(
                    _OLD_ROWS, ([k for k, _ in keys], [_key(key) for _, key in keys])
                ).fetchall()
                if keys
                else []
            )
            last = pending[-1]
            cp = self._cp.advanced(last.seq, last.hash, old, upserts)
            cur = c.cursor()
            # the writes and the commit in one round trip (a pipeline): the lock is held
            # for as short a time as the work allows
            with c.pipeline():
                cur.execute(
                    "INSERT INTO journal SELECT * FROM "
                    "unnest(%s::bigint[], %s::text[], %s::text[], %s::text[])",
                    ([r[0] for r in pending], [r[1] for r in pending], [r[2] for r in pending],
                     [r[3] for r in pending]),
                )  # fmt: skip
                if upserts:
                    cur.execute(
                        "INSERT INTO state SELECT * FROM "
                        "unnest(%s::text[], %s::bytea[], %s::text[]) "
                        "ON CONFLICT (kind, key) DO UPDATE SET value = EXCLUDED.value",
                        (
                            [u[0] for u in upserts],
                            [_key(u[1]) for u in upserts],
                            [u[2] for u in upserts],
                        ),
                    )
                if deletes:
                    cur.execute(
                        "DELETE FROM state s USING unnest(%s::text[], %s::bytea[]) "
                        "AS d(kind, key) WHERE s.kind = d.kind AND s.key = d.key",
                        ([d[0] for d in deletes], [_key(d[1]) for d in deletes]),
                    )
                if self._touched:
                    index = self.index_rows()
                    cur.execute(
                        "INSERT INTO account_block SELECT * FROM "
                        "unnest(%s::integer[], %s::bigint[]) ON CONFLICT DO NOTHING",
                        ([t for t, _ in index], [b for _, b in index]),
                    )
                c.execute(_SET_CHECKPOINT, cp.row())
                c.execute("COMMIT")
            self._tx = None
        except Exception as exc:  # noqa: BLE001 - whatever failed, nothing of the commit stays
            self._fail()
            # rolled back: these entries are gone (the runtime is broken and must be reopened);
            # a later flush (close) must not write them over a state that undid them
            self._reset_changes()
            raise StoreError(f"{self.path}: write failed: {_why(exc, self._secret)}") from None
        self._cp = cp
        self._committed()

    def close(self) -> None:
        """Close the connection (unflushed events are the caller's: :meth:`Runtime.close`
        flushes first; a transaction still open is rolled back, releasing the lock)."""
        if self.conn is not None:
            try:
                self.conn.close()
            except Exception:  # noqa: BLE001 - closing a broken connection: nothing to save
                pass
            self.conn = None
        self._tx = None

    # ------------------------------------------------------------ tests / tools

    def execute(self, sql: str, args: tuple = ()) -> None:
        """Run raw SQL outside any transaction (tests tamper with a ledger this way)."""
        self._end()
        self._live().execute(sql, args)


# ------------------------------------------------------------ migration


def migrate(
    url: str, *, schema: str = DEFAULT_SCHEMA, where: Optional[str] = None,
    secret: Optional[str] = None, lock_timeout: float = 60.0,
) -> dict[str, Any]:
    """Bring a PostgreSQL ledger of an older schema (:data:`MIGRATABLE`) to the current one.

    Version 2 -> 3 adds the per-account index, built from the journal's postings.  In one
    transaction holding the ledger's lock (no writer runs meanwhile): the ledger is
    verified as an audit would (recorded policy, the whole hash chain, balances from the
    postings, the checkpoint's head) and refused if it fails
    (:class:`LedgerIntegrityError`, nothing changed); then the index is made and the
    version set.  Entries, hashes and state rows are not touched.  Returns a summary."""
    from .integrity import parse_checkpoint
    from .journal import compare_balances, verify_chain

    shown = where or f"postgresql ledger {schema}"
    if psycopg is None:
        raise StoreError(
            "PostgreSQL ledgers need psycopg 3: pip install 'charter-policy[postgres]'"
        )
    if not SCHEMA_NAME.match(schema):
        raise StoreError(f"schema {schema[:80]!r}: not a ledger's schema name")
    try:
        conn = psycopg.connect(url, autocommit=True, connect_timeout=10,
                               application_name=_holder_name())
    except psycopg.Error as exc:
        raise StoreError(f"cannot connect to {shown}: {_why(exc, secret)}") from None
    try:
        with conn.transaction():
            conn.execute(f"SET LOCAL lock_timeout = {int(max(0.0, lock_timeout) * 1000)}")
            key = conn.execute("SELECT hashtext(%s)", (schema,)).fetchone()[0]
            conn.execute("SELECT pg_advisory_xact_lock(%s, %s)", (_LOCK_CLASS, key))
            tables = {
                t for (t,) in conn.execute(
                    "SELECT table_name FROM information_schema.tables WHERE table_schema = %s",
                    (schema,),
                )
            }
            if not tables:
                raise StoreError(f"{shown}: no such ledger")
            if "schema_version" not in tables:
                raise NotALedgerError(shown, "is not a Charter ledger; it is left untouched")
            conn.execute(f'SET LOCAL search_path TO "{schema}"')
            got = conn.execute("SELECT app, version FROM schema_version").fetchall()
            if len(got) != 1 or got[0][0] != APP:
                raise NotALedgerError(shown, "is not a Charter ledger; it is left untouched")
            version = got[0][1]
            if version == SCHEMA_VERSION:
                return {"path": shown, "from": version, "to": version, "entries": None,
                        "migrated": False}
            if version not in MIGRATABLE or set(tables) != set(_TABLES) - {"account_block"}:
                raise StoreError(
                    f"{shown} has PostgreSQL ledger schema version {str(version)[:40]}; cannot "
                    f"migrate it (migrates {', '.join(map(str, MIGRATABLE))} with its tables "
                    "as Charter made them)"
                )
            meta = {}
            for k, v in conn.execute("SELECT key, value FROM meta"):
                try:
                    meta[k] = json.loads(v)
                except (ValueError, TypeError, RecursionError):
                    raise LedgerIntegrityError(shown, [f"metadata {k!r} is corrupt"]) from None
            _, genesis, problems = recorded_policy(meta)
            if genesis is None:
                raise LedgerIntegrityError(shown, problems)
            stored: dict[str, int] = {}
            for k, v in conn.execute("SELECT key, value FROM state WHERE kind = 'balance'"):
                try:
                    stored[bytes(k).decode("utf-8", "surrogatepass")] = json.loads(v)
                except (ValueError, TypeError, RecursionError):
                    problems.append(f"stored balance row {k!r} is malformed")
            cps = conn.execute(_CHECKPOINT).fetchall()
            cp = parse_checkpoint(cps[0]) if len(cps) == 1 else None
            blocks: set[int] = set()
            with conn.cursor(name="migrate_journal") as cur:
                cur.itersize = 4096
                cur.execute("SELECT seq, event_id, entry, hash FROM journal ORDER BY seq")
                found, head, n, bal = verify_chain(
                    (JournalRow(*r) for r in cur), genesis, blocks=blocks
                )
            problems += found + compare_balances(bal, stored)
            if cp is None:
                problems.append("the checkpoint row is missing or does not match its own hash")
            elif (cp.seq, cp.head) != (n, head):
                problems.append(
                    f"the journal ends at entry {n} ({head[:16]}...) but the checkpoint "
                    f"records entry {cp.seq} ({cp.head[:16]}...)"
                )
            if problems:
                raise LedgerIntegrityError(shown, problems)
            conn.execute(_TABLES["account_block"].format(s=f'"{schema}"'))
            tags = sorted(blocks)
            conn.execute(
                "INSERT INTO account_block SELECT * FROM unnest(%s::integer[], %s::bigint[])",
                ([b >> 32 for b in tags], [b & 0xFFFFFFFF for b in tags]),
            )
            conn.execute("UPDATE schema_version SET version = %s", (SCHEMA_VERSION,))
    except psycopg.errors.LockNotAvailable:
        raise StoreError(
            f"{shown}: a writer held the ledger's lock for over {lock_timeout:g} s; nothing was "
            "migrated (stop the writers and run the migration again)"
        ) from None
    except psycopg.Error as exc:
        raise StoreError(f"{shown}: {_why(exc, secret)}") from None
    finally:
        conn.close()
    return {"path": shown, "from": version, "to": SCHEMA_VERSION, "entries": n,
            "head": head, "index_rows": len(tags), "migrated": True}
