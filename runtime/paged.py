"""State tables that a ledger file backs: a bounded cache over its state rows once they grow.

A :class:`~charter.runtime.state.State` keeps each record kind's table and its
``meta`` (clock entries, deadline markers) in plain dicts.  On a ledger file the
file holds every row too, so after each commit (``State.trim``, called by
``SqliteStore.flush``, and while a ledger loads) a table that has grown past
:data:`PAGE_CAP` entries is replaced by a :class:`PagedTable` (:func:`trimmed`):
a dict of some rows and of the changes since the last commit, which reads a key
it lacks from the file (``Pager.fetch``), decoded as loading decodes it.  So
``charter run``'s memory stops growing with the number of records (tasks,
deadline markers) in the ledger.  Tables are looked up by name on every use
(``st.records[name]``, ``st.meta``), never held across a commit, so replacing
one is seen by everyone.

What keeps it exact:

* entries are evicted only right after a commit, when the file holds every
  value the table holds; the undo log (``State.rollback``) writes before
  images back through ``__setitem__``/``pop`` like any other change, so a
  rejected event changes nothing here either;
* a deleted key stays in the cache as :data:`GONE` until the next commit
  (the file still has its row until then);
* ``len()`` is a count kept exact (the table's size at the switch, then +1/-1
  as keys appear and disappear), iteration merges the file's rows with the
  cache (the callers that iterate sort what they get).

In-memory runtimes and tables below the cap stay plain dicts (no cost on the hot
path).
"""

from __future__ import annotations

from typing import Any, Callable, Iterator, Optional

PAGE_CAP = 1 << 15  # entries a table keeps in memory before it pages (each table on its own)


class _Gone:
    __slots__ = ()

    def __repr__(self) -> str:
        return "GONE"


GONE: Any = _Gone()  # a cached "no such row" (deleted since the commit, or absent in the file)
_MISS = object()


class Pager:
    """How a paged table reads the file: ``fetch(key)`` -> the decoded value or
    :data:`GONE`; ``scan()`` -> every stored ``(key, decoded value)`` of the table (at
    the last commit)."""

    __slots__ = ("fetch", "scan")

    def __init__(self, fetch: Callable[[Any], Any], scan: Callable[[], Iterator[tuple[Any, Any]]]):
        self.fetch = fetch
        self.scan = scan


def trimmed(table: dict, pager: Optional[Pager], cap: int,
            evict: Optional[Callable[[list[tuple[Any, Any]]], None]] = None) -> dict:
    """``table`` after a commit: as it is below ``cap`` entries (or without a pager), else
    a :class:`PagedTable` holding at most half the cap (the newest entries: recent records
    are the ones events touch again); the file holds every value then.  ``evict``, when
    given, is handed the ``(key, value)`` pairs about to leave the cache first (a value
    may be :data:`GONE`): a store whose file does not yet hold them writes them there
    (``runtime/spill.py``'s scratch file)."""
    if pager is None or dict.__len__(table) <= cap:
        return table
    if type(table) is not PagedTable:
        out = PagedTable()
        dict.update(out, table)  # whole so far: every row is here, none GONE
        out._n = dict.__len__(table)
        table = out
    table._pager = pager
    drop = dict.__len__(table) - cap // 2
    out_keys = [k for _, k in zip(range(drop), dict.__iter__(table))]
    if evict is not None:
        evict([(k, dict.__getitem__(table, k)) for k in out_keys])
    for k in out_keys:
        dict.__delitem__(table, k)
    return table


class PagedTable(dict):
    """A state table past the cap: a bounded cache over the file's rows."""

    __slots__ = ("_pager", "_n")

    def _load(self, k: Any) -> Any:
        v = dict.get(self, k, _MISS)
        if v is _MISS:
            v = self._pager.fetch(k)
            dict.__setitem__(self, k, v)
        return v

    def get(self, k: Any, default: Any = None) -> Any:
        v = dict.get(self, k, _MISS)
        if v is _MISS:
            v = self._load(k)
        return default if v is GONE else v

    def __contains__(self, k: Any) -> bool:
        v = dict.get(self, k, _MISS)
        if v is _MISS:
            v = self._load(k)
        return v is not GONE

    def __getitem__(self, k: Any) -> Any:
        v = dict.get(self, k, _MISS)
        if v is _MISS:
            v = self._load(k)
        if v is GONE:
            raise KeyError(k)
        return v

    def __setitem__(self, k: Any, v: Any) -> None:
        if self._load(k) is GONE:
            self._n += 1
        dict.__setitem__(self, k, v)

    def __delitem__(self, k: Any) -> None:
        if self._load(k) is GONE:
            raise KeyError(k)
        self._n -= 1
        dict.__setitem__(self, k, GONE)

    def pop(self, k: Any, *default: Any) -> Any:
        v = self._load(k)
        if v is GONE:
            if default:
                return default[0]
            raise KeyError(k)
        self._n -= 1
        dict.__setitem__(self, k, GONE)
        return v

    def setdefault(self, k: Any, default: Any = None) -> Any:
        v = self._load(k)
        if v is GONE:
            self[k] = v = default
        return v

    def __len__(self) -> int:
        return self._n

    def __bool__(self) -> bool:
        return self._n > 0

    def items(self) -> Iterator[tuple[Any, Any]]:  # type: ignore[override]
        """Every (key, value): the file's rows with the cache's changes over them, then the
        keys made since the commit."""
        cached = dict(dict.items(self))  # bounded by the cap
        for k, v in self._pager.scan():
            c = cached.pop(k, _MISS)
            if c is _MISS:
                yield k, v
            elif c is not GONE:
                yield k, c
        for k, c in cached.items():
            if c is not GONE:
                yield k, c

    def __iter__(self) -> Iterator[Any]:
        return (k for k, _ in self.items())

    def keys(self) -> Iterator[Any]:  # type: ignore[override]
        return iter(self)

    def values(self) -> Iterator[Any]:  # type: ignore[override]
        return (v for _, v in self.items())

    def copy(self) -> dict:  # type: ignore[override]
        return dict(self.items())

    def __eq__(self, other: object) -> bool:
        return dict(self.items()) == other

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"PagedTable({self._n} entries, {dict.__len__(self)} in memory)"
