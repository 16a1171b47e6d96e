"""The audit's pass over a journal in memory that does not grow with the ledger.

``charter audit`` re-hashes every entry (``journal.verify_chain``), sums every
posting into balances and compares them with the stored ones, and checks the
per-account index (``account_block``) against the pairs the postings imply.  Held
whole, the sums and the implied pairs grow with the accounts and the journal (a
million-event gig ledger: ~220k accounts, ~420k pairs, ~130 MB).  Here:

* :class:`Sums` -- ``verify_chain`` sums into a dict of deltas; past :data:`CAP`
  accounts it is added into a private scratch SQLite table (``sqlite3.connect("")``,
  deleted by SQLite when closed) and emptied.  The comparison then walks the
  summed and the stored balances together in key order (both sorted by code point:
  keys are kept as UTF-8 with surrogates passed, stored keys come ``ORDER BY key``),
  so neither is held whole.  Sums are exact ints (kept as signed bytes).
* :class:`IndexCheck` -- the implied pairs of finished blocks (every entry of a
  block lies before the next block's first; an entry out of order is a problem
  ``verify_chain`` reports anyway) are looked up in the index a few hundred accounts
  a query, as ``history --account`` reads it, and dropped; pairs the index holds
  beyond those found are counted from one scan of it.

Findings and their order are those of ``journal.audit_rows`` and
``engine._index_problems``.
"""

from __future__ import annotations

import sqlite3
from typing import Any, Iterable, Iterator, Optional

from . import paged
from .journal import BLOCK_SHIFT, balance_problem, negative_problem
from .store import StoreError

CAP = paged.PAGE_CAP  # accounts summed / index pairs pending in memory (tests set a tiny one)
EVERY = 1024  # journal rows between two looks at the sizes
_END: Any = object()
_CHUNK = 500  # keys a query (SQLite's default limit on variables is 32,766; old ones: 999)


def _utf8(key: str) -> bytes:
    return key.encode("utf-8", "surrogatepass")


class Sums:
    """Balances summed from the postings, bounded by ``cap`` accounts in memory."""

    def __init__(self, cap: Optional[int] = None):
        self.delta: dict[str, int] = {}  # verify_chain sums into this very dict
        self.cap = CAP if cap is None else cap
        self.conn: Optional[sqlite3.Connection] = None

    def maybe_spill(self) -> None:
        if len(self.delta) > self.cap:
            self._spill()

    def _spill(self) -> None:
        c = self.conn
        try:
            if c is None:
                c = self.conn = sqlite3.connect("", isolation_level=None)
                c.execute("PRAGMA journal_mode = OFF")
                c.execute("PRAGMA synchronous = OFF")
                c.execute("CREATE TABLE sums (key BLOB PRIMARY KEY, value BLOB NOT NULL) "
                          "WITHOUT ROWID")
            items = [(_utf8(k), v) for k, v in self.delta.items()]
            old: dict[bytes, int] = {}
            for i in range(0, len(items), _CHUNK):
                chunk = [k for k, _ in items[i:i + _CHUNK]]
                for k, v in c.execute("SELECT key, value FROM sums WHERE key IN "
                                      f"({','.join('?' * len(chunk))})", chunk):
                    old[k] = int.from_bytes(v, "big", signed=True)
            rows = []
            for k, v in items:
                v += old.get(k, 0)
                rows.append((k, v.to_bytes(v.bit_length() // 8 + 1, "big", signed=True)))
            c.execute("BEGIN")
            c.executemany("INSERT OR REPLACE INTO sums VALUES (?, ?)", rows)
            c.execute("COMMIT")
        except sqlite3.Error as exc:
            raise StoreError(f"the audit's scratch file failed: {exc}") from None
        self.delta.clear()  # in place: verify_chain holds it

    def sorted_items(self) -> Iterator[tuple[str, int]]:
        """Every (account, summed balance), in key order."""
        if self.conn is None:
            yield from sorted(self.delta.items())
            return
        self._spill()
        cur = self.conn.execute("SELECT key, value FROM sums ORDER BY key")
        while rows := cur.fetchmany(4096):
            for k, v in rows:
                yield k.decode("utf-8", "surrogatepass"), int.from_bytes(v, "big", signed=True)

    def compare(self, stored: Iterable[tuple[str, Any]],
                credit: Optional[dict[str, int]]) -> tuple[list[str], int]:
        """(problems, accounts checked) of the sums against ``stored`` (key order): what
        ``journal.audit_rows`` finds (differences, then accounts negative in the journal)."""
        problems: list[str] = []
        negative: list[str] = []
        checked = 0
        mine = self.sorted_items()
        theirs = iter(stored)
        a = next(mine, _END)
        b = next(theirs, _END)
        last: Any = None
        while a is not _END or b is not _END:
            if b is not _END:
                if last is not None and not (type(b[0]) is str and b[0] > last):
                    problems.append("the stored balance rows do not come back in key order "
                                    "(the ledger file is damaged)")
                    break
            if b is _END or (a is not _END and a[0] < b[0]):
                acc, got, have = a[0], a[1], 0
                a = next(mine, _END)
            elif a is _END or b[0] < a[0]:
                acc, got, have = b[0], 0, b[1]
                last = acc
                b = next(theirs, _END)
            else:
                acc, got, have = a[0], a[1], b[1]
                last = acc
                a = next(mine, _END)
                b = next(theirs, _END)
            checked += 1
            if got != have:
                problems.append(balance_problem(acc, got, have))
            if got:
                p = negative_problem(acc, got, credit)
                if p is not None:
                    negative.append(p)
        return problems + negative, checked

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()  # SQLite deletes the file
            self.conn = None


class IndexCheck:
    """The per-account index against the ``tag << 32 | block`` pairs the postings imply
    (``pending``: ``verify_chain`` adds to this very set), checked a stretch of finished
    blocks at a time."""

    def __init__(self, store: Any, cap: Optional[int] = None):
        self.store = store
        self.pending: set[int] = set()
        self.cap = CAP if cap is None else cap
        self.found = 0
        self.lacking = 0

    def maybe_check(self, seq: Any) -> None:
        if len(self.pending) > self.cap and type(seq) is int:
            self._check(seq >> BLOCK_SHIFT)

    def _check(self, below: Optional[int]) -> None:
        """Look up the pending pairs of blocks before ``below`` (None: all of them)."""
        pending = self.pending
        done = [p for p in pending if below is None or p & 0xFFFFFFFF < below]
        pending.difference_update(done)  # in place: verify_chain holds it
        want: dict[int, set[int]] = {}
        for p in done:
            want.setdefault(p >> 32, set()).add(p & 0xFFFFFFFF)
        if not want:
            return
        lo = min(p & 0xFFFFFFFF for p in done)
        hi = max(p & 0xFFFFFFFF for p in done)
        q = self.store._query
        tags = list(want)
        for i in range(0, len(tags), _CHUNK):
            chunk = tags[i:i + _CHUNK]
            for tag, blk in q("SELECT account, block FROM account_block WHERE block >= ? AND "
                              f"block <= ? AND account IN ({','.join('?' * len(chunk))})",
                              (lo, hi, *chunk)):
                # a damaged page can return rows its WHERE excludes, or of other types
                s = want.get(tag) if type(tag) is int and type(blk) is int else None
                if s is not None and blk in s:
                    s.discard(blk)
                    self.found += 1
        self.lacking += sum(len(s) for s in want.values())

    def problems(self) -> list[str]:
        """The findings once every row was fed (``engine._index_problems``' wording)."""
        self._check(None)
        extra = sum(1 for _ in self.store.account_blocks()) - self.found
        out = []
        if self.lacking:
            out.append(f"the per-account index lacks {self.lacking} (account, block) pair(s) "
                       "the journal's postings imply: history --account would miss entries "
                       "(edited outside Charter)")
        if extra:
            out.append(f"the per-account index holds {extra} (account, block) pair(s) no "
                       "posting implies (edited outside Charter)")
        return out
