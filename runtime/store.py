"""Where a runtime keeps its journal and state: the store interface and the in-memory store.

A store persists two things, always together: journal rows (append-only,
hash-chained, see :mod:`charter.runtime.journal`) and the current state as
``(kind, key) -> JSON value`` rows (balances, records, roles, rights, clock).
The runtime tells the store which keys an applied event changed; the store
writes their values (read from the live state) with the journal rows in one
atomic unit, so a restart sees a state that matches the journal exactly.
"""

from __future__ import annotations

from typing import Any, Iterator, Optional, Protocol

from .journal import JournalRow


class StoreError(Exception):
    """The store cannot be used (unreadable file, wrong policy, I/O failure)."""


class Store(Protocol):
    persistent: bool

    def meta(self) -> dict[str, Any]:
        """Stored metadata (policy, params, genesis); empty for a new store."""

    def init(self, meta: dict[str, Any]) -> None:
        """Record metadata of a new ledger."""

    def rows(self) -> Iterator[tuple[str, str, Any]]:
        """Every stored state row."""

    def journal(self) -> Iterator[JournalRow]:
        """Every journal row in order."""

    def entry(self, seq: int) -> Optional[JournalRow]:
        """The journal row with sequence number ``seq``, or None (idempotent resubmission)."""

    def append(self, row: JournalRow, frame: Any, state: Any) -> None:
        """Record one applied event (may be buffered until :meth:`flush`).

        ``frame`` is the event's :class:`~charter.runtime.state.Frame`: its
        before images name every key the event changed (None for stores that
        keep no state)."""

    def flush(self, state: Any) -> None:
        """Make everything appended so far durable."""

    def close(self) -> None: ...


class MemoryStore:
    """Keeps the journal in a list; the runtime's own state is the state."""

    persistent = False

    def __init__(self) -> None:
        self._meta: dict[str, Any] = {}
        self._journal: list[JournalRow] = []

    def meta(self) -> dict[str, Any]:
        return dict(self._meta)

    def init(self, meta: dict[str, Any]) -> None:
        self._meta = dict(meta)

    def rows(self) -> Iterator[tuple[str, str, Any]]:
        return iter(())

    def journal(self) -> Iterator[JournalRow]:
        return iter(list(self._journal))

    def entry(self, seq: int) -> Optional[JournalRow]:
        if 1 <= seq <= len(self._journal):
            return self._journal[seq - 1]
        return None

    def append(self, row: JournalRow, frame: Any, state: Any) -> None:
        self._journal.append(row)

    def flush(self, state: Any) -> None:
        pass

    def close(self) -> None:
        pass

    def last_row(self) -> Optional[JournalRow]:
        return self._journal[-1] if self._journal else None

    def tamper(self, seq: int, entry: Optional[str] = None, hash: Optional[str] = None) -> None:
        """Overwrite a journal row (for tests that prove audit notices)."""
        old = self._journal[seq - 1]
        self._journal[seq - 1] = JournalRow(
            seq=old.seq,
            event_id=old.event_id,
            entry=entry if entry is not None else old.entry,
            hash=hash if hash is not None else old.hash,
        )
