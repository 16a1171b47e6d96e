"""A bounded in-memory state: the big tables page over a private scratch SQLite file.

``charter replay`` and ``charter audit`` rebuild a ledger's state from its journal
on a fresh in-memory runtime, and ``charter run --memory`` keeps one with no file at
all.  A policy whose records are never deleted (the gig market keeps every Task)
makes that state grow with the journal.  A ledger file bounds it with
``runtime/paged.py`` (a table past the cap reads its cold rows back from the file);
here there is no file that holds the rows, so :class:`Scratch` is one: SQLite's
private temporary database (``sqlite3.connect("")``: created on first use, deleted
by SQLite when it is closed or the process ends), with the ledger's ``state`` table
layout and row texts.

:func:`spill` is ``State.trim`` for such a state: the balances, a record table or
the meta table past the cap becomes a :class:`~charter.runtime.paged.PagedTable`
over the scratch file, and the entries it evicts are written there first (a ledger
file already holds them; the scratch file holds only what was evicted, the newest
value of each: a value read back and changed is written again when it leaves).
Values go through the very text a ledger file keeps (``sqlite_store.row_json``) and
come back through the decoders a paged ledger uses (``State._make_pagers``), so a
paged value equals the one that left, exactly.

Call it only between events (no frame open): eviction then sees final values, and
a later rejected event's undo log writes its before images through the table like
any other change.  Rows of roles, rights, the deadline heaps and the applied ids stay
in memory (a few per party, or ~10 bytes an event).
"""

from __future__ import annotations

import sqlite3
from typing import Any, Iterator, Optional

from . import paged
from .idfilter import IdFilter
from .paged import GONE, Pager
from .sqlite_store import row_json
from .state import State, store_key
from .journal import JournalRow
from .store import DEFAULT_WINDOW, MemoryStore, StoreError
from .values import to_json_value

CAP = paged.PAGE_CAP  # entries a table keeps in memory (tests set a tiny one)
EVERY = 1024  # events between spills: a table stays within CAP + what they add


class Scratch:
    """State rows evicted from a bounded in-memory state, in a private temporary SQLite
    database (``row_text``/``row_texts`` as :class:`~charter.runtime.sqlite_store.SqliteStore`
    answers them, so ``State._make_pagers`` reads it as it reads a ledger file)."""

    def __init__(self) -> None:
        try:
            # "": a private temporary on-disk database, deleted by SQLite on close
            self.conn: Optional[sqlite3.Connection] = sqlite3.connect("", isolation_level=None)
            c = self.conn
            c.execute("PRAGMA journal_mode = OFF")  # nothing to recover: it dies with us
            c.execute("PRAGMA synchronous = OFF")
            c.execute("PRAGMA cache_size = -8192")  # 8 MB of pages, then the file
            c.execute("CREATE TABLE state (kind TEXT NOT NULL, key TEXT NOT NULL, "
                      "value TEXT NOT NULL, PRIMARY KEY (kind, key)) WITHOUT ROWID")
        except sqlite3.Error as exc:
            raise StoreError(f"cannot make a scratch file for the state: {exc}") from None
        self.written = 0  # rows written (a figure for tests and benchmarks)
        # kind -> a Bloom filter of every key written: most reads the paged tables make are
        # of keys never written here (a new task, escrow account, deadline marker), which it
        # answers without a query (2 bytes a key; it changes the cost, never the answer)
        self._written: dict[str, IdFilter] = {}

    def row_text(self, kind: str, key: str) -> Optional[str]:
        f = self._written.get(kind)
        if f is None or not f.may_hold(key):
            return None
        got = self._conn().execute(
            "SELECT value FROM state WHERE kind = ? AND key = ?", (kind, key)).fetchone()
        return got[0] if got else None

    def row_texts(self, kind: str, prefix: str) -> Iterator[tuple[str, str]]:
        c = self._conn()
        if not prefix:
            cur = c.execute("SELECT key, value FROM state WHERE kind = ? ORDER BY key", (kind,))
        else:
            end = prefix[:-1] + chr(ord(prefix[-1]) + 1)
            cur = c.execute("SELECT key, value FROM state WHERE kind = ? AND key >= ? AND "
                            "key < ? ORDER BY key", (kind, prefix, end))
        while rows := cur.fetchmany(4096):
            yield from rows

    def write(self, kind: str, upserts: list[tuple[str, str]], deletes: list[str]) -> None:
        c = self._conn()
        try:
            c.execute("BEGIN")
            if upserts:
                c.executemany(f"INSERT OR REPLACE INTO state VALUES ('{kind}', ?, ?)", upserts)
            if deletes:
                c.executemany(f"DELETE FROM state WHERE kind = '{kind}' AND key = ?",
                              [(k,) for k in deletes])
            c.execute("COMMIT")
            if upserts:
                f = self._written.get(kind)
                if f is None or f.full:  # made (again) larger, from every key kept
                    old = f
                    f = self._written[kind] = IdFilter(2 * (old.count if old else 0) +
                                                       len(upserts) + 4096)
                    if old is not None:
                        f.add_all(k for k, in c.execute(
                            "SELECT key FROM state WHERE kind = ?", (kind,)))
                f.add_all(k for k, _ in upserts)
        except sqlite3.Error as exc:
            if c.in_transaction:
                c.execute("ROLLBACK")
            raise StoreError(f"the state's scratch file failed: {exc}") from None
        self.written += len(upserts)

    def _conn(self) -> sqlite3.Connection:
        if self.conn is None:
            raise StoreError("the state's scratch file is closed")
        return self.conn

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()  # SQLite deletes the file
            self.conn = None


class Spiller:
    """Keeps one state's big tables within the cap over a :class:`Scratch` (made when a
    table first passes it): call :meth:`__call__` between events."""

    def __init__(self, state: State, cap: int = paged.PAGE_CAP):
        self.state = state
        self.cap = cap
        self.scratch: Optional[Scratch] = None
        self._pagers: Optional[dict[tuple[str, Optional[str]], Pager]] = None

    def __call__(self) -> None:
        """The balances, each record table and the meta table past the cap: a paged table
        over the scratch file, its evicted entries written there first."""
        st, cap = self.state, self.cap
        records = st.records
        big = [r for r, t in records.items() if dict.__len__(t) > cap]
        meta = dict.__len__(st.meta) > cap
        bal = dict.__len__(st.balances) > cap
        if big or meta or bal:
            if self.scratch is None:
                self.scratch = Scratch()
                self._pagers = st._make_pagers(self.scratch)
            pagers = self._pagers
            assert pagers is not None
            for r in big:
                records[r] = paged.trimmed(records[r], pagers["record", r], cap,
                                           self._record_writer(r))
            if meta:
                st.meta = paged.trimmed(st.meta, pagers["meta", None], cap, self._meta_out)
            if bal:
                st.balances = paged.trimmed(st.balances, pagers["balance", None], cap,
                                            self._balance_out)
        if len(st.asset_of_acc) > cap:
            st.asset_of_acc.clear()  # in place (State.trim): re-registered when next posted

    def _paged(self) -> list[tuple[dict, Any]]:
        """(table, its evicted entries' writer) of every paged table."""
        st = self.state
        out = [(t, self._record_writer(r)) for r, t in st.records.items()
               if type(t) is paged.PagedTable]
        if type(st.meta) is paged.PagedTable:
            out.append((st.meta, self._meta_out))
        if type(st.balances) is paged.PagedTable:
            out.append((st.balances, self._balance_out))
        return out

    def seal(self) -> None:
        """After the last event: every paged table's entries written out and dropped, so the
        scratch file holds every value; reads that follow (replay's comparison) load what
        they look up and :meth:`drop` lets it go again, unwritten."""
        for table, out in self._paged():
            out(list(dict.items(table)))
            dict.clear(table)  # the count (len) stays: every row is in the file

    def drop(self) -> None:
        """Between reads after :meth:`seal`: a paged table past the cap forgets what it
        loaded (the file holds it)."""
        for table, _ in self._paged():
            if dict.__len__(table) > self.cap:
                dict.clear(table)

    def _record_writer(self, r: str) -> Any:
        st = self.state

        def out(items: list[tuple[Any, Any]]) -> None:
            self._write("record", [(store_key((r, k)), None if v is GONE else
                                    row_json(st.record_row(r, v))) for k, v in items])
        return out

    def _meta_out(self, items: list[tuple[Any, Any]]) -> None:
        self._write("meta", [(k, None if v is GONE else int.__repr__(v) if type(v) is int
                              else row_json({"v": to_json_value(v)})) for k, v in items])

    def _balance_out(self, items: list[tuple[Any, Any]]) -> None:
        self._write("balance", [(k, None if v is GONE else int.__repr__(v)) for k, v in items])

    def _write(self, kind: str, rows: list[tuple[str, Optional[str]]]) -> None:
        assert self.scratch is not None
        self.scratch.write(kind, [(k, t) for k, t in rows if t is not None],
                           [k for k, t in rows if t is None])

    def close(self) -> None:
        if self.scratch is not None:
            self.scratch.close()
            self.scratch = None


class SpillingStore(MemoryStore):
    """An in-memory store whose runtime's state stays bounded: every :data:`EVERY` entries
    its big tables spill over a scratch file (:class:`Spiller`).  ``append`` is called
    once an event's changes are all made (only the frame's close follows), so what is
    evicted is final; a store failure there undoes the event as any store failure does."""

    def __init__(self, window: Optional[int] = DEFAULT_WINDOW, cap: Optional[int] = None):
        super().__init__(window)
        self.cap = CAP if cap is None else cap
        self.spiller: Optional[Spiller] = None
        self._due = EVERY

    def append(self, row: JournalRow, frame: Any, state: Any) -> None:
        MemoryStore.append(self, row, frame, state)
        self._due -= 1
        if not self._due:
            self._due = EVERY
            sp = self.spiller
            if sp is None or sp.state is not state:
                sp = self.spiller = Spiller(state, self.cap)
            sp()

    def seal(self) -> None:
        """See :meth:`Spiller.seal` (no events may follow)."""
        if self.spiller is not None:
            self.spiller.seal()

    def drop(self) -> None:
        if self.spiller is not None:
            self.spiller.drop()

    def close(self) -> None:
        if self.spiller is not None:
            self.spiller.close()
