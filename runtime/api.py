"""The runtime's embedding API (re-exported by ``charter``).

::

    import charter
    policy = charter.load_policy("gig.charter")
    rt = charter.open_runtime(policy, "ledger.sqlite", params={"fee": "3%"}, batch=100)
    r = rt.submit({"id": "e1", "type": "join", "submitter": "alice", "time": 0, "args": {}})
    r.applied, r.to_dict()
    rt.balance("alice", "Credit"); rt.records("Task"); rt.history("pool:commons")
    rt.audit().ok
    charter.replay("ledger.sqlite").ok

A ledger file records its policy (IR, fingerprint, parameters), so
``open_runtime(None, "ledger.sqlite")``, :func:`replay` and
:func:`audit_ledger` work from the file alone.
"""

from __future__ import annotations

import json
import os
from typing import Any, Optional, Union

import attrs
import msgspec

from charter.compiler import ir
from charter.compiler.diagnostics import CharterError

from .codegen import DEFAULT_STEP_BUDGET
from .engine import TICK, Outcome, ParamError, Receipt, Rejection, Runtime, resolve_params
from .settle import CLOCKS, DEFAULT_MAX_SKEW
from .journal import AuditReport, with_hashes
from .ledger import Posting
from .integrity import recorded_policy
from .spill import SpillingStore
from .sqlite_store import SqliteStore
from .store_url import open_store
from .store import (
    LedgerBusyError,
    LedgerIntegrityError,
    DEFAULT_WINDOW,
    MemoryStore,
    NotALedgerError,
    Store,
    StoreError,
)
from .testing import TestResult, run_tests
from .values import PolicyNotExecutable, Rejected

PolicyLike = Union[ir.Policy, str, os.PathLike, None]
StoreLike = Union[str, os.PathLike, Store]


def _load_policy(policy: PolicyLike) -> Optional[ir.Policy]:
    if policy is None or isinstance(policy, ir.Policy):
        return policy
    from charter.compiler.pipeline import Compilation

    return Compilation.from_path(str(policy)).ir  # raises CharterError with diagnostics


def _open_store(
    store: StoreLike,
    batch: int,
    synchronous: str,
    create: bool = True,
    readonly: bool = False,
    wait: float = 0.0,
    journal: str = "window",
    check_state: bool = True,
) -> Store:
    """A path, a store URL (``runtime/store_url.py``) or a store object."""
    if isinstance(store, str) and store == ":memory:":
        return MemoryStore(None if journal == "full" else DEFAULT_WINDOW)
    return open_store(
        store, batch=batch, synchronous=synchronous, create=create, readonly=readonly, wait=wait,
        check_state=check_state,
    )


def _where(store: Any) -> str:
    """How messages name a store: its file, never an object repr."""
    return str(getattr(store, "path", None) or store)


def ledger_policy(store: StoreLike) -> ir.Policy:
    """The policy a ledger was started with (from its own metadata)."""
    s = _open_store(store, 1, "FULL", create=False, readonly=True)
    try:
        pol, _, problems = recorded_policy(s.meta())
    finally:
        if s is not store:  # opened here (a database connection, say): closed here
            s.close()
    if pol is None:
        raise StoreError(f"{_where(s)}: {problems[0]}")
    return pol


def _runtime(pol: ir.Policy, st: Any, recorded: bool, **kw: Any) -> Runtime:
    """``Runtime(pol, st, **kw)``.  A policy read from the ledger itself (``recorded``) is
    the file's content: one the compiler cannot take (an edited or damaged policy IR
    whose recorded fingerprint still matches) is a :class:`StoreError` naming the ledger,
    never a traceback."""
    try:
        return Runtime(pol, st, **kw)
    except (StoreError, PolicyNotExecutable):
        raise
    except Exception as exc:  # noqa: BLE001 - untrusted file contents through the compiler
        if not recorded:
            raise
        raise StoreError(
            f"{_where(st)}: the policy this ledger records cannot be compiled "
            f"({type(exc).__name__}: {str(exc)[:200]}); the ledger is damaged or was edited"
        ) from None


def _diagnose(path: StoreLike, pol: Optional[ir.Policy], exc: LedgerIntegrityError) -> Exception:
    """A refused ledger's error, with what a replay says changed when the chain and balance
    audit (already in ``exc``) could not say it."""
    if not exc.replay_may_say_more:
        return exc
    found = list(exc.audit)
    try:
        rep = replay(path, pol)
        found += [p for p in rep.problems if p not in found]
    except Exception:  # noqa: BLE001 - a diagnosis of a damaged file is best effort; the refusal stands
        pass
    return exc.with_audit(tuple(found)) if found != list(exc.audit) else exc


def open_runtime(
    policy: PolicyLike = None,
    store: StoreLike = ":memory:",
    *,
    params: Optional[dict[str, Any]] = None,
    batch: int = 1,
    synchronous: str = "FULL",
    step_budget: int = DEFAULT_STEP_BUDGET,
    backend: str = "python",
    clock: str = "events",
    max_skew: int = DEFAULT_MAX_SKEW,
    time_source: Any = None,
    readonly: bool = False,
    wait: float = 0.0,
    journal: str = "window",
    self_register: bool = False,
    max_timer_firings: Optional[int] = None,
    load_state: bool = True,
    check_state: bool = True,
) -> Runtime:
    """Open a runtime for ``policy`` (IR, or a path to compile) on ``store``.

    ``store`` is ``":memory:"``, a path to a SQLite ledger (created if new),
    a store URL (``sqlite:///PATH``, ``postgresql://USER@HOST/DB?schema=NAME``:
    see ``runtime/store_url.py``; several processes may share a PostgreSQL
    ledger) or a :class:`~charter.runtime.store.Store`.  ``params`` overrides
    parameters (values as in events: ``"3%"``, ints, decimal strings),
    each checked against its declared range (:class:`ParamError`).  With
    ``policy=None`` the ledger's recorded policy is used.  ``batch`` commits
    every N events (SQLite); call ``flush()``/``close()`` at the end.
    ``backend`` is ``"python"`` (the engine: handler bodies as generated
    functions, the default), ``"closures"`` (the engine's closures alone) or
    ``"reference"`` (the independent IR interpreter the fuzzers compare the
    engine with; slow); all settle identically.  ``step_budget`` bounds one
    event's work (default 10,000,000 steps).  ``clock`` is the time policy:
    ``"events"`` (trusted files, replay, simulation: the event's ``time``)
    or ``"system"`` (untrusted submitters: the runtime stamps each event from
    ``time_source``, default the system clock, and refuses a submitted time
    more than ``max_skew`` seconds off); see ``docs/runtime.rst``.
    ``max_timer_firings`` bounds the timed-handler firings one event may make
    due (default 1,000; counted before any fires, so an event whose time is far
    ahead is refused as ``timer_overflow`` without running a handler).

    A ledger file has one writer at a time: opening one that another
    runtime (in any process) has open raises :class:`charter.LedgerBusyError`
    naming that process, or with ``wait=S`` waits up to S seconds for it to
    close.  A ledger that fails its open-time integrity check
    (``runtime/integrity.py``) raises :class:`charter.LedgerIntegrityError`
    with the check's and the audit's findings and is never written to; a
    file that is not a Charter ledger (empty, another program's) raises
    :class:`charter.NotALedgerError` and is left untouched.  ``self_register=True``
    lets a party without a key register its first one itself, with an ``@keys``
    add event signed by that key (see ``docs/deployment.rst``).  ``readonly=True`` takes
    no lock and refuses nothing (audits use it); submitting then fails.

    ``journal`` (in-memory stores): ``"window"`` (default) keeps the newest
    10,000 entries, so memory does not grow with a long run; ``"full"``
    keeps every entry (what ``replay``/``audit`` of an in-memory runtime need).
    A ledger file always keeps everything on disk and little in memory.

    ``load_state=False`` (with ``readonly=True``) opens a ledger for reading its stored
    rows and journal only (``rt.store.kind_rows``, ``history``, ``audit``, ``replay``):
    memory does not grow with the state, and the runtime cannot settle events.
    ``check_state=False`` (with ``readonly=True`` and ``load_state=False``) also leaves the
    state digest out of the open-time check: a reader of the journal alone (``ledger
    history``) then opens in time that does not grow with the ledger; the stored state
    rows are not checked against the checkpoint (``audit`` and ``ledger balances`` do).
    """
    if journal not in ("window", "full"):
        raise ValueError(f"journal must be 'window' or 'full', got {journal!r}")
    pol = _load_policy(policy)
    try:
        st = _open_store(
            store, batch, synchronous, create=policy is not None, readonly=readonly, wait=wait,
            journal=journal, check_state=check_state or load_state,
        )
    except LedgerIntegrityError as exc:
        # a replay reopens the ledger by what the caller gave (a URL keeps its password)
        raise _diagnose(store if isinstance(store, (str, os.PathLike)) else exc.path, pol, exc) from None
    try:
        if pol is None:
            if isinstance(st, MemoryStore):
                raise ValueError("open_runtime needs a policy for an in-memory store")
            pol = ledger_policy(st)
        return _runtime(
            pol,
            st,
            policy is None,
            params=params,
            step_budget=step_budget,
            backend=backend,
            clock=clock,
            max_skew=max_skew,
            time_source=time_source,
            self_register=self_register,
            max_timer_firings=max_timer_firings,
            load_state=load_state,
        )
    except BaseException:
        if st is not store:  # opened here: close it (and release its writer lock)
            st.close()
        raise


@attrs.frozen
class ReplayReport:
    ok: bool
    entries: int
    head: str
    stored_head: str
    problems: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return attrs.asdict(self)


class _EntryEvent(msgspec.Struct):
    event: dict


_decode_event = msgspec.json.Decoder(_EntryEvent).decode


def _event_of(entry: Any) -> dict:
    """A journal entry's event, as ``json.loads(entry)["event"]`` gives it: decoded by
    msgspec, which builds the event alone (not the postings, timers and flags replay
    re-derives; ~2x faster a row), or by ``json.loads`` for any text msgspec refuses
    (a lone surrogate, NaN, a number out of range: ``json`` reads those, and a replay
    must say the same of them as before)."""
    try:
        return _decode_event(entry).event
    except (msgspec.DecodeError, msgspec.ValidationError, TypeError):
        return json.loads(entry)["event"]


class _Replay:
    """A fresh in-memory runtime the journal's events are submitted to again, one row at a
    time (:meth:`feed`): each must apply and give back the stored entry text.  The first
    difference is recorded and the rest only counted (a replay cannot go on past it)."""

    def __init__(self, live: Runtime, pol: ir.Policy, params: Any):
        # compared entry by entry: one entry is enough; the rebuilt state's big tables page
        # over a scratch file past the cap (spill.py): memory does not grow with the ledger
        self.store = SpillingStore(window=1)
        try:
            self.fresh = Runtime(
                pol,
                self.store,
                params=params,
                step_budget=live.step_budget,
                backend=getattr(live, "backend", "python"),
            )
        except (StoreError, PolicyNotExecutable):
            raise
        except Exception as exc:  # noqa: BLE001 - a ledger's recorded policy and parameters
            if not live.store.persistent:
                raise
            raise StoreError(
                f"{_where(live.store)}: the policy and parameters this ledger records cannot be "
                f"replayed ({type(exc).__name__}: {str(exc)[:200]}); the ledger is damaged or "
                "was edited"
            ) from None
        self.problems: list[str] = []
        self.entries = 0

    def feed(self, row: Any, hashes: bool = True) -> None:
        """Replay ``row``; ``hashes``: its hash is filled in (``with_hashes``) and compared
        too (without, the caller verifies the chain: equal entries from the same genesis
        chain to equal hashes)."""
        self.entries += 1
        if self.problems:
            return
        try:
            ev = _event_of(row.entry)
        except (ValueError, KeyError, TypeError, RecursionError) as exc:
            self.problems.append(f"journal entry {row.seq}: unreadable ({exc})")
            return
        out = self.fresh._submit(ev, True)  # timer entries keep their reserved ids
        if not out.applied:
            self.problems.append(
                f"journal entry {row.seq} (event {row.event_id!r}) does not apply on replay: {out}"
            )
        elif (hashes and out.journal_hash != row.hash) or self.store.last_row().entry != row.entry:
            self.problems.append(
                f"journal entry {row.seq} (event {row.event_id!r}) replays to a different "
                "entry (postings or content differ from the stored row)"
            )

    def feed_unhashed(self, row: Any) -> None:
        """:meth:`feed` without the hash (the caller verifies the chain)."""
        self.feed(row, False)

    def close(self) -> None:
        """Delete the scratch file (if the state spilled)."""
        self.store.close()

    def report(self, live: Runtime, store: Any) -> ReplayReport:
        """The final state against the stored one, and the report."""
        problems = self.problems
        fresh = self.fresh
        stored_head = live.head  # what the ledger recorded (a file: its checkpoint's head)
        if not problems and hasattr(store, "state_texts"):
            self.store.seal()  # the comparison's reads are let go as it goes (drop)
            problems += compare_state(store, fresh.state, forget=self.store.drop)
        elif not problems:
            stored_rows = list(live.state.rows()) if not store.persistent else sorted(store.rows())
            fresh_rows = sorted(fresh.state.rows()) if store.persistent else list(fresh.state.rows())
            if stored_rows != fresh_rows:
                a = {(k, key): v for k, key, v in stored_rows}
                b = {(k, key): v for k, key, v in fresh_rows}
                for key in sorted(set(a) | set(b)):
                    if a.get(key) != b.get(key):
                        problems.append(
                            f"stored {key[0]} {key[1]} is {a.get(key)} but replay gives {b.get(key)}"
                        )
                        if len(problems) >= 20:
                            break
        return ReplayReport(
            ok=not problems and fresh.head == stored_head,
            entries=self.entries,
            head=fresh.head,
            stored_head=stored_head,
            problems=tuple(problems),
        )


def replay(source: Union[Runtime, StoreLike], policy: PolicyLike = None) -> ReplayReport:
    """Rebuild state from the journal alone, on a fresh in-memory runtime.

    Every journal entry's event is submitted again; each must apply and
    reproduce the stored entry hash, and the final state must equal the
    stored state.  ``source`` is a runtime, a store or a ledger path.
    """
    if isinstance(source, Runtime):
        source.flush()
        store, pol, params, live = source.store, source.policy, source.params, source
    else:
        store = _open_store(source, 1, "FULL", create=False, readonly=True)
        try:
            pol = _load_policy(policy) or ledger_policy(store)
            # the stored rows are compared below
            live = _runtime(pol, store, policy is None, load_state=False)
        except BaseException:
            store.close()
            raise
        params = live.params
    try:
        gone = live.journal_gone()
        if gone:
            return ReplayReport(False, live.seq, live.head, live.head, (gone,))
        rep = _Replay(live, pol, params)
        try:
            for row in with_hashes(store.journal(), live.genesis):
                rep.feed(row)
            return rep.report(live, store)
        finally:
            rep.close()
    finally:
        if not isinstance(source, Runtime) and store is not source:
            store.close()


def audit_and_replay(rt: Runtime) -> tuple[AuditReport, ReplayReport]:
    """:meth:`Runtime.audit` and :func:`replay` of a ledger (``charter audit``) in one read
    of its journal instead of two: each row goes to the chain and balance check, to the
    signature check and to the replay, which need not re-hash (the chain check compares
    every kept hash; equal entries from the same genesis chain to equal hashes).  Both
    keep memory bounded (``auditpass``, ``spill``), so holding them together costs no
    more than one of them did.

    Finds what the two find apart: the chain and balances (``journal.verify_chain``), the
    per-account index, every signature (``signing.SignatureAudit``), the open-time check
    of the ledger as it is now, and replay's entry-by-entry and final-state comparison."""
    if rt.store_sync is not None and not getattr(rt.store, "readonly", False):
        # a writer on a shared ledger audits holding its lock (Runtime.audit does)
        return rt.audit(), replay(rt)
    rt.flush()
    gone = rt.journal_gone()
    if gone:
        return (AuditReport(False, rt.seq, rt.head, (gone,), 0),
                ReplayReport(False, rt.seq, rt.head, rt.head, (gone,)))
    rep = _Replay(rt, rt.policy, rt.params)
    try:
        audit = rt._audit(also=rep.feed_unhashed)
        return audit, rep.report(rt, rt.store)
    finally:
        rep.close()


def compare_state(store: Any, state: Any, most: int = 20,
                  forget: Optional[Any] = None) -> list[str]:
    """Differences between a store's state rows and ``state`` (replay's rebuilt one), read
    row by row (memory does not grow with the state): each stored row's text must be the
    very text the store would write for the rebuilt value, and no rebuilt row may be
    missing from the store.  ``forget``: called now and then, lets a paged ``state`` drop
    the rows it read (``SpillingStore.drop``)."""
    from .sqlite_store import row_json

    def shown(text: Optional[str]) -> Any:
        try:
            return None if text is None else json.loads(text)
        except (ValueError, TypeError, RecursionError):
            return text

    problems: list[str] = []
    n = 0
    for kind, key, text in store.state_texts():
        n += 1
        if forget is not None and not n % 4096:
            forget()
        try:
            want = state.value_of(kind, key)
        except (KeyError, ValueError, TypeError, RecursionError):
            want = None  # a key of no kind or shape the state has: not rebuilt
        want_text = None if want is None else row_json(want)
        if want_text != text:
            problems.append(f"stored {kind} {key} is {shown(text)} but replay gives {want}")
            if len(problems) >= most:
                return problems
    if n != state.row_count():
        stored = {(k, key) for k, key, _ in store.state_texts()} if n < 5_000_000 else set()
        for kind, key, value in state.rows():
            if (kind, key) not in stored:
                problems.append(f"stored {kind} {key} is None but replay gives {value}")
                if len(problems) >= most:
                    break
    return problems


def audit_ledger(source: Union[Runtime, StoreLike], policy: PolicyLike = None) -> AuditReport:
    """Re-verify a ledger's hash chain and balances (see :meth:`Runtime.audit`)."""
    if isinstance(source, Runtime):
        return source.audit()
    store = _open_store(source, 1, "FULL", create=False, readonly=True)
    try:
        pol = _load_policy(policy) or ledger_policy(store)
        return _runtime(pol, store, policy is None, load_state=False).audit()
    finally:
        if store is not source:
            store.close()


__all__ = [
    "open_runtime",
    "replay",
    "audit_ledger",
    "ledger_policy",
    "run_tests",
    "resolve_params",
    "Runtime",
    "Receipt",
    "Rejection",
    "Outcome",
    "Posting",
    "AuditReport",
    "ReplayReport",
    "TestResult",
    "Store",
    "MemoryStore",
    "SqliteStore",
    "StoreError",
    "LedgerBusyError",
    "LedgerIntegrityError",
    "NotALedgerError",
    "ParamError",
    "Rejected",
    "TICK",
    "CLOCKS",
    "DEFAULT_MAX_SKEW",
    "DEFAULT_STEP_BUDGET",
]
