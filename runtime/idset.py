"""An exact set of applied event ids in about a tenth of a ``set[str]``'s memory.

An in-memory runtime must answer "was this id applied?" exactly for every id
it ever applied (idempotency: a resubmission is a duplicate, a fresh event
never is), and it has no ledger file to ask.  A ``set`` of the id strings
costs ~100 bytes per id (a 50-byte string object plus its slots), ~100 MB
per million events: most of an in-memory run's memory, and of a replay's.

:class:`IdSet` keeps the ids themselves, so it is exact (no hash stands in
for an id): each id is appended, newline-terminated, to one string of a bucket
chosen by the id's hash, and a lookup searches its bucket (4 to 32 ids long)
for ``\\n<id>\\n``.  An id that itself holds a newline (never one a generator
makes) is kept in a plain set beside, so the separator never splits an id.
~10 bytes per id plus ~60 a bucket (ASCII ids; a bucket holding another
character takes 2 or 4 bytes a character).

Adding to a bucket copies its string, so ids are first added to a small plain set
(:data:`_YOUNG` of them at most) and folded into their buckets together: one copy of a
bucket per fold instead of one per id (a settling runtime adds an id per event).
:meth:`IdSet.add_new` skips the membership test for a caller that has made it.

Python's ``hash()`` of a string differs between processes, so a set is
built by the process that uses it and never stored.
"""

from __future__ import annotations

from typing import Iterable, Iterator

_PER_BUCKET = 32  # ids per bucket, on average, before the buckets grow eightfold
_YOUNG = 2048  # ids kept in the plain set before they are folded into their buckets


class IdSet:
    """``in``, ``add``, ``len`` and iteration of a set of strings (see the module)."""

    __slots__ = ("_buckets", "_mask", "_count", "_odd", "_young")

    def __init__(self, ids: Iterable[str] = ()):
        self._buckets: list[str] = ["\n"] * 64
        self._mask = 63
        self._count = 0
        self._odd: set[str] = set()
        self._young: set[str] = set()  # added, not yet folded into the buckets
        self.update(ids)

    def __contains__(self, event_id: object) -> bool:
        if type(event_id) is not str:
            return False
        if event_id in self._young:
            return True
        if "\n" in event_id:
            return event_id in self._odd
        return "\n" + event_id + "\n" in self._buckets[hash(event_id) & self._mask]

    def add(self, event_id: str) -> None:
        if type(event_id) is not str:
            raise TypeError(f"an id is text, not {type(event_id).__name__}")
        if event_id not in self:
            self.add_new(event_id)

    def add_new(self, event_id: str) -> None:
        """:meth:`add` of an id the caller knows is not in the set (a runtime's ``identify``
        step has asked): no membership test."""
        if "\n" in event_id:
            self._odd.add(event_id)
        else:
            young = self._young
            young.add(event_id)
            if len(young) >= _YOUNG:
                self._fold()
        self._count += 1
        if self._count > _PER_BUCKET * len(self._buckets):
            self._grow()

    def _fold(self) -> None:
        """The young ids into their buckets, each bucket copied once."""
        mask = self._mask
        groups: dict[int, list[str]] = {}
        for i in self._young:
            groups.setdefault(hash(i) & mask, []).append(i)
        b = self._buckets
        for j, ids in groups.items():
            b[j] += "\n".join(ids) + "\n"
        self._young.clear()

    def _grow(self) -> None:
        self._fold()
        size = len(self._buckets) * 8  # (each id re-bucketed ~1.14 times in all, not ~2)
        mask = size - 1
        parts: list[list[str]] = [["\n"] for _ in range(size)]
        for blob in self._buckets:
            if len(blob) > 1:
                for i in blob[1:-1].split("\n"):
                    parts[hash(i) & mask].append(i + "\n")
        self._buckets = ["".join(p) for p in parts]
        self._mask = mask

    def __len__(self) -> int:
        return self._count

    def __iter__(self) -> Iterator[str]:
        young, buckets, odd = list(self._young), list(self._buckets), list(self._odd)
        yield from young
        for blob in buckets:
            if len(blob) > 1:
                yield from blob[1:-1].split("\n")
        yield from odd

    def update(self, ids: Iterable[str]) -> None:
        for i in ids:
            self.add(i)
