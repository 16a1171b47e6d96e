"""Where a runtime keeps its journal and state: the store interface and the in-memory store.

A store persists two things, always together: journal rows (append-only,
hash-chained, see :mod:`charter.runtime.journal`) and the current state as
``(kind, key) -> JSON value`` rows (balances, records, roles, rights, clock).
The runtime tells the store which keys an applied event changed; the store
writes their values (read from the live state) with the journal rows in one
atomic unit, so a restart sees a state that matches the journal exactly.
"""

from __future__ import annotations

import json
from collections import deque
from typing import Any, Iterable, Iterator, Optional, Protocol

from .idset import IdSet
from .journal import JournalRow


class StoreError(Exception):
    """The store cannot be used (unreadable file, wrong policy, I/O failure)."""


def _entry_shape(text: Any) -> bool:
    """Whether ``text`` is a journal entry a reader can show: JSON with an event (id, type,
    submitter: text; time: an int), postings ``[from, to, asset, amount, kind]``, timers
    and flags as lists of objects (what history and the exports index into)."""
    if type(text) is not str:
        return False
    try:
        data = json.loads(text)
    except (ValueError, RecursionError):
        return False
    if type(data) is not dict:
        return False
    ev, ps, ts, fs = data.get("event"), data.get("postings"), data.get("timers"), data.get("flags")
    if type(ev) is not dict or type(ps) is not list or type(ts) is not list or \
            type(fs) is not list:
        return False
    if not all(type(ev.get(k)) is str for k in ("id", "type", "submitter")) or \
            type(ev.get("time")) is not int:
        return False
    for p in ps:
        if type(p) is not list or len(p) != 5 or type(p[3]) is not int or \
                not all(type(p[i]) is str for i in (0, 1, 2, 4)):
            return False
    for t in ts:
        if type(t) is not dict or not (type(t.get("handler")) is str
                                       and type(t.get("due")) is int
                                       and type(t.get("status")) is str):
            return False
    return all(type(f) is dict for f in fs)


def shown_rows(rows: Iterable[JournalRow], where: object) -> Iterator[JournalRow]:
    """``rows`` for a reader that shows entries (``ledger history``): an entry that is not
    readable as a journal entry (a damaged or edited file) stops it with a
    :class:`StoreError` naming the ledger and the entry, never a traceback.  The chain
    is not checked here (``charter audit`` does)."""
    for row in rows:
        if not _entry_shape(row.entry):
            raise StoreError(
                f"{where}: journal entry {row.seq} (event {str(row.event_id)[:80]!r}) cannot be "
                f"read as a journal entry (the ledger is damaged or was edited); `charter "
                f"audit {where}` gives the full report"
            )
        yield row


class NotALedgerError(StoreError):
    """The file exists but is not a Charter ledger (empty, foreign, another app's SQLite).

    Such a file is never initialised as a new ledger: it may be someone's data."""

    def __init__(self, path: object, why: str):
        self.path = str(path)
        self.why = why
        super().__init__(f"{path} {why}")


class LedgerBusyError(StoreError):
    """Another writer (process ``pid``, when known) has the ledger open."""

    def __init__(self, path: object, pid: Optional[int], holder: str, shared: bool = False):
        self.path = str(path)
        self.pid = pid
        who = f"process {pid}" + (f" ({holder})" if holder else "") if pid else "another process"
        if shared and not pid and holder:
            who = holder
        if shared:  # a ledger several processes share (PostgreSQL): its lock was held too long
            super().__init__(
                f"ledger {path}: its lock is held by {who} for longer than the lock timeout "
                "(a writer that hangs in a transaction or a batch); the event was not applied"
            )
            return
        super().__init__(
            f"ledger {path} is in use by {who}: one writer per ledger; wait for it to "
            "finish (charter run --wait SECONDS, open_runtime(..., wait=SECONDS)) or open "
            "it read-only"
        )


class LedgerIntegrityError(StoreError):
    """The ledger fails its integrity check at open, so nothing is appended to it.

    ``problems`` are the open-time check's findings (checkpoint, chain head,
    state digest, recorded policy); ``audit`` the full audit's findings
    when it was run to say exactly what changed."""

    def __init__(
        self,
        path: object,
        problems: list[str],
        audit: tuple[str, ...] = (),
        replay_may_say_more: bool = False,
    ):
        self.path = str(path)
        self.problems = tuple(problems)
        self.audit = tuple(audit)
        # the chain and balances audit found nothing though the check failed (an edited
        # record, say): only a replay can name the row
        self.replay_may_say_more = replay_may_say_more
        lines = [f"refusing to write to {path}: the ledger fails its integrity check"]
        lines += [f"  - {p}" for p in self.problems[:10]]
        extra = [p for p in self.audit if p not in self.problems]
        if extra:
            lines.append("  audit:")
            lines += [f"  - {p}" for p in extra[:10]]
            if len(extra) > 10:
                lines.append(f"  - ... {len(extra) - 10} more")
        lines.append(f"  (`charter audit {path}` gives the full report)")
        super().__init__("\n".join(lines))

    def with_audit(self, audit: tuple[str, ...]) -> "LedgerIntegrityError":
        return LedgerIntegrityError(self.path, list(self.problems), tuple(audit))


class Store(Protocol):
    persistent: bool

    def meta(self) -> dict[str, Any]:
        """Stored metadata (policy, params, genesis); empty for a new store."""

    def init(self, meta: dict[str, Any]) -> None:
        """Record metadata of a new ledger."""

    def rows(self) -> Iterator[tuple[str, str, Any]]:
        """Every stored state row."""

    def journal(self, start: int = 1) -> Iterator[JournalRow]:
        """Journal rows in order from ``start`` (streamed); ``hash`` may be None where the
        store keeps none (``journal.with_hashes`` fills it in)."""

    def event_ids(self) -> Iterator[str]:
        """The id of every journal row (opening a ledger reads these, not whole entries)."""

    def last_row(self) -> Optional[JournalRow]:
        """The newest journal row, or None."""

    def entry_for(self, event_id: str) -> Optional[JournalRow]:
        """The journal row that applied ``event_id``, or None (an idempotent resubmission
        is compared with it and answered with its receipt)."""

    def append(self, row: JournalRow, frame: Any, state: Any) -> None:
        """Record one applied event (may be buffered until :meth:`flush`).

        ``frame`` is the event's :class:`~charter.runtime.state.Frame`: its
        before images name every key the event changed (None for stores that
        keep no state)."""

    def flush(self, state: Any) -> None:
        """Make everything appended so far durable."""

    def close(self) -> None: ...


DEFAULT_WINDOW = 10_000  # journal entries an in-memory runtime keeps by default


class MemoryStore:
    """Keeps the journal in memory; the runtime's own state is the state.

    ``window`` bounds the entries kept (the newest ``window``; default
    :data:`DEFAULT_WINDOW`) so a long in-memory run does not grow with its
    journal; ``window=None`` keeps every entry (``journal="full"`` in
    ``open_runtime``), which ``replay`` and a full ``audit`` of an in-memory
    runtime need.  The applied ids are always kept (idempotency), every one, exactly, in an
    :class:`~charter.runtime.idset.IdSet` (~10 bytes an id where a set takes ~100)."""

    persistent = False

    def __init__(self, window: Optional[int] = DEFAULT_WINDOW) -> None:
        if window is not None and (isinstance(window, bool) or not isinstance(window, int) or window < 1):
            raise ValueError(f"window must be a positive number of entries or None, got {window!r}")
        self.window = window
        self._meta: dict[str, Any] = {}
        self._journal: deque[JournalRow] = deque(maxlen=window)
        self._ids = IdSet()
        self.dropped = 0  # entries no longer kept (older than the window)
        self._before_window = ""  # the hash of the newest entry no longer kept

    def meta(self) -> dict[str, Any]:
        return dict(self._meta)

    def init(self, meta: dict[str, Any]) -> None:
        self._meta = dict(meta)

    def rows(self) -> Iterator[tuple[str, str, Any]]:
        return iter(())

    def first_seq(self) -> int:
        return self._journal[0].seq if self._journal else self.dropped + 1

    def hash_before(self, seq: int) -> str:
        if seq <= 1:
            return str(self._meta.get("genesis", ""))
        first = self.first_seq()
        if not first <= seq <= first + len(self._journal):
            raise StoreError(f"journal entry {seq - 1} is no longer kept in memory")
        if seq == first:
            # the entry before the window: its hash is the first kept entry's predecessor,
            # which is not kept either, except as the prefix the window was cut from
            return self._before_window
        return self._journal[seq - 1 - first].hash  # type: ignore[return-value]

    def journal(self, start: int = 1) -> Iterator[JournalRow]:
        rows = list(self._journal)
        if start > 1 and rows:
            rows = rows[max(start - rows[0].seq, 0):]
        return iter(rows)

    def journal_desc(self, before: Optional[int] = None) -> Iterator[JournalRow]:
        return iter([r for r in reversed(self._journal) if before is None or r.seq < before])

    def event_ids(self) -> Iterator[str]:
        return iter(list(self._ids))

    def applied_ids(self) -> IdSet:
        """The live set of applied ids (``append`` adds to it): the runtime shares it
        instead of keeping a second set of every id."""
        return self._ids

    def entry_for(self, event_id: str) -> Optional[JournalRow]:
        if event_id not in self._ids:
            return None
        for row in reversed(self._journal):
            if row.event_id == event_id:
                return row
        return None

    def append(self, row: JournalRow, frame: Any, state: Any) -> None:
        j = self._journal
        if self.window is not None and len(j) == self.window:
            self._before_window = j[0].hash
            self.dropped += 1
        j.append(row)
        self._ids.add_new(row.event_id)  # the identify step found it new

    def flush(self, state: Any) -> None:
        pass

    def close(self) -> None:
        pass

    def last_row(self) -> Optional[JournalRow]:
        return self._journal[-1] if self._journal else None

    def tamper(self, seq: int, entry: Optional[str] = None, hash: Optional[str] = None) -> None:
        """Overwrite a journal row (for tests that prove audit notices)."""
        i = seq - self.first_seq()
        old = self._journal[i]
        self._journal[i] = JournalRow(
            seq=old.seq,
            event_id=old.event_id,
            entry=entry if entry is not None else old.entry,
            hash=hash if hash is not None else old.hash,
        )
