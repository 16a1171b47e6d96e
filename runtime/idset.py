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

:meth:`IdSet.add_new` appends an id its caller has just looked up (a runtime's
``identify`` step) without a second search of its bucket.

Python's ``hash()`` of a string differs between processes, so a set is
built by the process that uses it and never stored.
"""

from __future__ import annotations

from typing import Iterable, Iterator

_PER_BUCKET = 32  # ids per bucket, on average, before the buckets grow eightfold


class IdSet:
    """``in``, ``add``, ``len`` and iteration of a set of strings (see the module)."""

    __slots__ = ("_buckets", "_mask", "_count", "_odd")

    def __init__(self, ids: Iterable[str] = ()):
        self._buckets: list[str] = ["\n"] * 64
        self._mask = 63
        self._count = 0
        self._odd: set[str] = set()
        self.update(ids)

    def __contains__(self, event_id: object) -> bool:
        if type(event_id) is not str:
            return False
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
            self._buckets[hash(event_id) & self._mask] += event_id + "\n"
        self._count += 1
        if self._count > _PER_BUCKET * len(self._buckets):
            self._grow()

    def _grow(self) -> None:
        size = len(self._buckets) * 8  # (each id re-bucketed ~1.14 times in all, not ~2)
        mask = size - 1
        parts: list[list[str]] = [[""] for _ in range(size)]  # "": the leading separator
        for blob in self._buckets:
            if len(blob) > 1:
                for i in blob[1:-1].split("\n"):
                    parts[hash(i) & mask].append(i)
        self._buckets = ["\n".join(p) + "\n" for p in parts]
        self._mask = mask

    def __len__(self) -> int:
        return self._count

    def __iter__(self) -> Iterator[str]:
        for blob in list(self._buckets):
            if len(blob) > 1:
                yield from blob[1:-1].split("\n")
        yield from list(self._odd)

    def update(self, ids: Iterable[str]) -> None:
        for i in ids:
            self.add(i)
