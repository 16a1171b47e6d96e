"""A Bloom filter of applied event ids: "certainly new" without asking the ledger file.

Every event's ``identify`` step asks whether its id was applied before.  A
ledger file answers from its ``event_id`` index (one SQL query, ~3 us); a
writer must not keep a set of every id it ever applied (memory would grow with
the ledger).  This filter keeps 16 bits per id (2 bytes; two probes, about 1.4%
false positives): when it says *no*, the id is certainly new and no query is
made; when it says *maybe*, the index decides.  So it changes the cost of the
answer, never the answer.

The bits come from Python's own ``hash()`` of the id, which differs between
processes, so a filter is built by the process that uses it (from the stored
ids) and never stored.
"""

from __future__ import annotations

from typing import Iterable

BITS_PER_ID = 16
MIN_BITS = 1 << 16
MAX_BITS = 1 << 31  # 256 MB: past ~130M ids the filter only answers "no" less often


class IdFilter:
    __slots__ = ("bits", "mask", "count", "capacity")

    def __init__(self, expected: int):
        size = MIN_BITS
        while size < BITS_PER_ID * expected and size < MAX_BITS:
            size <<= 1
        self.bits = bytearray(size >> 3)
        self.mask = size - 1
        self.count = 0
        self.capacity = size // BITS_PER_ID  # ids it holds before it should be rebuilt larger

    def add_all(self, ids: Iterable[str]) -> None:
        bits, mask = self.bits, self.mask
        n = 0
        for event_id in ids:
            h = hash(event_id)
            a = h & mask
            b = (h >> 32) & mask
            bits[a >> 3] |= 1 << (a & 7)
            bits[b >> 3] |= 1 << (b & 7)
            n += 1
        self.count += n

    def may_hold(self, event_id: str) -> bool:
        """False: ``event_id`` was certainly never added.  True: it may have been."""
        h = hash(event_id)
        mask = self.mask
        a = h & mask
        b = (h >> 32) & mask
        bits = self.bits
        return bool(bits[a >> 3] >> (a & 7) & 1 and bits[b >> 3] >> (b & 7) & 1)

    @property
    def full(self) -> bool:
        return self.count > self.capacity and len(self.bits) << 3 < MAX_BITS
