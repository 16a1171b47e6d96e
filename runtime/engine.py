"""The settlement engine: :class:`Runtime`, a policy settled on a store.

:class:`Runtime` is what embedders use.  ``submit(event)`` returns a frozen
:class:`Receipt` (applied: journal sequence number, postings, journal hash,
flags, timed handlers that fired before it) or a frozen :class:`Rejection`
(code, message, source span, the step that refused it); a rejected event
changes nothing.  The steps every event goes through, in order, are the
table in :mod:`charter.runtime.settle` - this module holds the runtime's
state and the pieces the steps call (argument conversion, timers), and the
queries (balances, records, history, audit).

Time (``clock=``):

* ``"events"`` (default; trusted event files, replay, simulation): an
  event's ``time`` is the time; it may not be before the last applied
  event.  Only accepted events move the clock.
* ``"system"`` (live use with untrusted submitters): the runtime stamps
  every event with its own clock (``time_source``, default the system's
  UTC seconds); a submitted ``time`` more than ``max_skew`` seconds away
  is refused (``time_skew``), and may be omitted.

Either way the timed handlers due at or before an event's time fire inside
that event's own transaction, recorded in its journal entry (``timers``),
so a rejected event fires nothing.  ``{"type": "@tick", "submitter":
"clock", "time": T}`` (:meth:`Runtime.advance`) moves time explicitly.
``every`` handlers are due at ``t0 + k*period`` (``t0`` = time of the
first applied event), ``deadline`` handlers once per live record whose
time field has passed (again if the field is moved later).  A timed
handler that fails rolls back only itself and is recorded as rejected in
the entry; it is not retried.

Backends (``backend=``): ``"python"`` is the engine (handler bodies as
generated Python, :mod:`charter.runtime.pygen`, with closures from
:mod:`charter.runtime.codegen` for the rarer nodes; ``"closures"`` runs the
engine's closures alone).  ``"reference"`` is the oracle,
:mod:`charter.runtime.reference`: a plain interpreter of the IR that shares
no code with the engine's handlers, which the tests and event fuzzers
compare the engine against (``docs/runtime.rst``, "Engine and reference").
"""

from __future__ import annotations

import hashlib
import json
import os
import time as _time
from functools import partial
from typing import Any, Callable, Iterable, Iterator, Optional

import attrs

from charter.compiler import ir

from . import semantics as sem
from .codegen import DEFAULT_STEP_BUDGET, Env
from .journal import (
    ENTRY_CODEC,
    AuditReport,
    JournalRow,
    chain,
    entry_dictionary,
    genesis_hash,
    policy_fingerprint,
    verify_chain,
    with_hashes,
)
from .ledger import LedgerError, Posting, check_transaction, party_account, pool_account
from .pygen import CompiledPolicy, compile_policy
from . import auditpass, signing
from .settle import (
    CLOCKS,
    DEFAULT_MAX_SKEW,
    TICK,
    Outcome,
    Receipt,
    Rejection,
    same_event,
    settle,
    timer_overflow_message,
)
from .state import State
from .store import LedgerBusyError, MemoryStore, Store, StoreError, shown_rows
from .values import (
    MAX_TEXT, Converter, Rejected, canonical, check_range, preview, to_json_value,
)

_DEBUG = bool(os.environ.get("CHARTER_RUNTIME_DEBUG"))
_NO_ARGS: dict = {}
# Timed-handler firings one event may cause (every firing due at or before its time).  Counted
# before any fires, so an event whose time is far ahead is refused without running a handler;
# an event under the limit that is refused later still costs at most this many firings.
# ``max_timer_firings=`` / ``charter run --max-timer-firings``; replay is never limited (the
# journal's entries were accepted under whatever limit applied then).
MAX_TIMER_FIRINGS = 1_000

__all__ = [
    "Runtime", "Receipt", "Rejection", "Outcome", "ParamError", "resolve_params", "TICK",
    "CLOCKS", "DEFAULT_MAX_SKEW", "DEFAULT_STEP_BUDGET", "MAX_TIMER_FIRINGS",
]  # fmt: skip


class ParamError(ValueError):
    """A parameter override that the policy does not accept."""


def resolve_params(policy: ir.Policy, overrides: Optional[dict[str, Any]] = None) -> dict[str, Any]:
    """Parameter values: declared defaults with ``overrides`` applied (converted, range-checked)."""
    values = {p.name: p.default for p in policy.params}
    conv = Converter(policy)
    for name, raw in (overrides or {}).items():
        try:
            p = policy.param(name)
        except StopIteration:
            known = ", ".join(sorted(values)) or "none"
            raise ParamError(f"unknown parameter {name!r} (parameters: {known})") from None
        try:
            v = (
                conv.convert(p.type, raw, f"parameter {name}")
                if not _is_native(p.type, raw)
                else raw
            )
            check_range(v, p.lo, p.hi, f"parameter {name}", p.type, conv.decimals)
        except Rejected as r:
            raise ParamError(r.message) from None
        values[name] = v
    return values


def _is_native(t: ir.Type, v: Any) -> bool:
    from fractions import Fraction

    return isinstance(t, ir.TRatio) and isinstance(v, Fraction)


class Runtime:
    """A policy settled on a store.  Not thread-safe: one writer per runtime.

    ``clock`` is the time policy (``"events"`` or ``"system"``, see the module
    docstring), ``max_skew`` the seconds a submitted time may differ from the
    system clock under ``clock="system"``, ``time_source`` that clock (a
    callable returning seconds; default: the system's UTC time).
    ``step_budget`` bounds the work of one event (statements plus loop,
    aggregate and split items); ``max_timer_firings`` the timed-handler firings one
    event may make due (default :data:`MAX_TIMER_FIRINGS`; ``None``: the module's
    current default)."""

    def __init__(
        self,
        policy: ir.Policy,
        store: Optional[Store] = None,
        *,
        params: Optional[dict[str, Any]] = None,
        step_budget: int = DEFAULT_STEP_BUDGET,
        backend: str = "python",
        clock: str = "events",
        max_skew: int = DEFAULT_MAX_SKEW,
        time_source: Optional[Callable[[], Any]] = None,
        self_register: bool = False,
        max_timer_firings: Optional[int] = None,
        load_state: bool = True,
    ):
        if max_timer_firings is None:
            max_timer_firings = MAX_TIMER_FIRINGS
        if (
            isinstance(max_timer_firings, bool)
            or not isinstance(max_timer_firings, int)
            or max_timer_firings < 0
        ):
            raise ValueError(
                f"max_timer_firings must be an integer >= 0, got {max_timer_firings!r}"
            )
        self.max_timer_firings = max_timer_firings
        if clock not in CLOCKS:
            raise ValueError(f"unknown clock policy {clock!r} (one of {', '.join(CLOCKS)})")
        if isinstance(step_budget, bool) or not isinstance(step_budget, int) or step_budget < 1:
            raise ValueError(f"step_budget must be a positive integer, got {step_budget!r}")
        if isinstance(max_skew, bool) or not isinstance(max_skew, int) or max_skew < 0:
            raise ValueError(f"max_skew must be an integer >= 0 (seconds), got {max_skew!r}")
        self.policy = policy
        self.store: Store = store if store is not None else MemoryStore()
        self.compiled: CompiledPolicy = compile_policy(policy, backend)
        self.backend = backend
        self.step_budget = step_budget
        self.clock_policy = clock
        self.max_skew = max_skew
        self.time_source = time_source or _time.time
        # a party without a key may add its first one itself (signed by it): runtime/signing.py
        self.self_register = bool(self_register)
        self.debug = _DEBUG
        self.converter = Converter(policy)
        self.state = State(policy)
        self._timed = [(ch, ch.handler) for ch in self.compiled.timed]
        self.timed = bool(self._timed)
        self._only_deadlines = all(h.kind == "deadline" for _, h in self._timed)
        self._heaps = [self.state.heaps[h.name] for _, h in self._timed if h.kind == "deadline"]
        self.broken: Optional[str] = None
        # a store that several processes write (PostgreSQL): the settle table's ``sync`` step
        # calls store_sync before an event, and store_release after it
        self.store_sync: Optional[Callable[[Any], None]] = getattr(self.store, "sync", None)
        self.store_release: Optional[Callable[[], None]] = getattr(self.store, "release", None)
        self._specs: dict[str, Any] = {}
        self._converters: dict[str, Callable[[dict, Any], dict]] = {}
        self.events = {n: ch for n, ch in self.compiled.handlers.items() if ch.kind == "event"}
        # each event handler's path through the settle table (runtime/pathgen.py; none for
        # the closures and reference backends, which run the table step by step)
        self.paths: dict[str, Callable[[Any, Any], Any]] = getattr(self.compiled, "paths", {})
        # a policy's own key registration handler (runtime/signing.py: KEY_HANDLER)
        self.key_handler = signing.key_handler_of(self.events)
        meta = self.store.meta()
        if meta:
            fp = policy_fingerprint(policy)
            where = getattr(self.store, "path", None)
            where = f"{where}: " if where else ""
            if meta.get("fingerprint") != fp:
                raise StoreError(
                    f"{where}this ledger belongs to policy {str(meta.get('policy_name'))[:80]!r} "
                    f"(fingerprint {str(meta.get('fingerprint'))[:12]}...), "
                    f"not {policy.name!r} ({fp[:12]}...)"
                )
            recorded = meta.get("params", {})
            if not isinstance(recorded, dict):
                raise StoreError(f"{where}the ledger's recorded parameters are unreadable "
                                 "(the file is damaged or was edited)")
            stored_params = {k: _decode_param(v) for k, v in recorded.items()}
            if params:
                wanted = resolve_params(policy, params)
                if wanted != stored_params:
                    raise StoreError(
                        "parameter overrides differ from those this ledger was started with "
                        f"({_show_params(stored_params)})"
                    )
            self.params = stored_params
        else:
            self.params = resolve_params(policy, params)
        self.state.set_params(self.params)  # credit lines a parameter sets
        self.genesis = genesis_hash(policy, self.params)
        if not meta:
            self.store.init(
                {
                    "fingerprint": policy_fingerprint(policy),
                    "policy_name": policy.name,
                    "policy_version": policy.version,
                    "source_hash": policy.source_hash,
                    "params": {k: to_json_value(v) for k, v in self.params.items()},
                    "genesis": self.genesis,
                    "policy_ir": ir.to_json(policy, indent=None),
                    "entry_codec": ENTRY_CODEC,
                    "entry_dict": entry_dictionary(policy),
                }
            )
        self.applied_ids: Any = set()
        self.head = self.genesis
        self.seq = 0
        self.clock: Optional[int] = None
        # load_state=False: a reader of the stored rows and journal alone (ledger commands,
        # audit, replay), whose memory must not grow with the state; it cannot settle
        self.state_loaded = load_state
        if load_state:
            self.state.load_rows(self.store)  # a ledger file's big tables page as they load
        else:
            self.broken = "this runtime was opened without its state (for reading the ledger)"
        # a store that looks ids up itself (a ledger file's index) is asked per event; others
        # give their ids once.  Either way opening reads the newest entry, not every entry.
        # add_applied_id: what the commit step calls with an applied id (None: appending the
        # entry to the store records it, as a ledger file's index and the in-memory set do)
        self.add_applied_id: Optional[Callable[[str], None]] = None
        if hasattr(self.store, "has_event"):
            self.applied_ids = _StoredIds(self.store)
        elif hasattr(self.store, "applied_ids"):  # the in-memory store's own set, shared
            self.applied_ids = self.store.applied_ids()
        else:
            self.applied_ids.update(self.store.event_ids())
            self.add_applied_id = self.applied_ids.add
        last = self.store.last_row()
        if last is not None:
            self.seq = last.seq
            self.head = last.hash or ""
            try:
                self.clock = json.loads(last.entry)["event"]["time"]
            except (TypeError, ValueError, KeyError):
                self.clock = None  # an unreadable entry (read-only inspection of a damaged file)
        if self.store_release is not None:
            self.store_release()  # loaded: a shared store's read transaction ends here

    # ================================================================ submitting

    def submit(self, event: Any) -> Outcome:
        """Apply one event (a dict as in the JSON Lines input) or reject it.

        Never raises for anything the event contains; raises
        :class:`StoreError` only when the store fails (the event is undone)."""
        if self.broken:
            raise StoreError(self.broken)
        return settle(self, event)

    def _submit(self, event: Any, replaying: bool) -> Outcome:
        """``submit`` for replay: the journal's own timer-entry ids are accepted."""
        if self.broken:
            raise StoreError(self.broken)
        return settle(self, event, replaying)

    def submit_batch(self, events: Iterable[Any]) -> list[Outcome]:
        """Submit several events; a persistent store commits them in one transaction.

        Each event still applies or is rejected on its own; the batch only
        shares the commit (a crash before it loses the whole batch, never part
        of an event)."""
        store = self.store
        saved = getattr(store, "batch", None)
        if saved is not None:
            store.batch = 1 << 62
        try:
            out = [self.submit(e) for e in events]
        finally:
            if saved is not None:
                store.batch = saved
        self.flush()
        return out

    def advance(self, time: int, event_id: Optional[str] = None) -> Outcome:
        """Advance the clock to ``time``, firing due timed handlers (a ``@tick`` event)."""
        return self.submit(
            {
                "id": event_id or f"@tick:{time}",
                "type": TICK,
                "submitter": "clock",
                "time": time,
                "args": {},
            }
        )

    def refresh(self) -> None:
        """Catch up with what other processes committed to a shared ledger (PostgreSQL);
        a no-op for stores with one writer.  Reads (balances, records, history) show this
        runtime's state, which :meth:`submit` brings up to date before each event."""
        if self.broken:
            raise StoreError(self.broken)
        if self.store_sync is None:
            return
        try:
            self._hold_ledger()
        finally:
            self.store_release()

    def flush(self) -> None:
        if self.store.persistent:
            try:
                self.store.flush(self.state)
            except StoreError as exc:
                self.broken = f"store failed, reopen the ledger: {exc}"
                raise

    def close(self) -> None:
        self.flush()
        self.store.close()

    def __enter__(self) -> "Runtime":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # ---------------------------------------------------------------- what the steps call

    def system_time(self) -> int:
        """The runtime's clock in whole seconds (``clock="system"``)."""
        now = self.time_source()
        if isinstance(now, bool) or not isinstance(now, (int, float)) or now != now:
            raise Rejected("time_source", f"the runtime's time source gave {preview(now)}")
        return int(now)

    def unknown_event_message(self, etype: str) -> str:
        h = self.compiled.handlers.get(etype)
        if h is not None:
            return f"{etype!r} is a timed handler; it fires from event time and cannot be submitted"
        return f"unknown event type {preview(etype)}" + _suggest(etype, self.compiled.handlers)

    def applied_entry(self, event_id: str) -> Optional[JournalRow]:
        """The journal entry that applied ``event_id`` (None if there is none)."""
        get = getattr(self.store, "entry_for", None)
        if get is not None:
            return get(event_id)
        for row in self.store.journal():  # a store without the lookup: read the journal
            if row.event_id == event_id:
                return row
        return None

    @staticmethod
    def receipt_of(row: JournalRow) -> Receipt:
        """The receipt of an applied entry, marked as a duplicate (idempotent resubmission)."""
        data = row.data()
        return Receipt(
            row.event_id,
            row.seq,
            tuple(Posting(*p) for p in data["postings"]),
            row.hash,
            tuple(data["flags"]),
            tuple(data["timers"]),
            True,
        )

    def difference(self, row: Optional[JournalRow], tx: Any) -> Optional[str]:
        """None if ``tx`` is the event applied as ``row`` again, else what differs."""
        if row is None:
            window = getattr(self.store, "window", None)
            if window is not None:
                return (
                    f"its journal entry is no longer kept in memory (the last {window} entries "
                    "are; open_runtime(..., journal='full') keeps every entry), so it cannot "
                    "be compared"
                )
            return "its journal entry cannot be found"
        ev = row.data()["event"]
        args: Any = None
        if tx.etype == signing.KEYS:
            args = tx.conv
        elif tx.ch is None:
            args = {}
        else:
            try:
                args = to_json_value(self._stateless_args(tx.ch, tx.args))
            except Rejected:
                args = None
        return same_event(ev, tx, args, self.clock_policy == "events" or tx.replaying)

    def same_signed_args(self, etype: str, signed: Any, journalled: Any) -> bool:
        """Whether arguments a client signed convert to the journalled ones (audit, replay)."""
        try:
            if type(signed) is not dict or type(journalled) is not dict:
                return False
            if etype == signing.KEYS:
                return signing.decode_key_op(signed) == signing.decode_key_op(journalled)
            if etype == TICK:
                return signed == journalled == {}
            ch = self.events.get(etype)
            if ch is None:
                return False
            return to_json_value(self._stateless_args(ch, signed)) == to_json_value(
                self._stateless_args(ch, journalled)
            )
        except Rejected:
            return False

    def check_signed_text(self, text: str, tx: Any) -> None:
        """Replay: the text a journalled signature covers must be the journalled event."""
        try:
            signed = json.loads(text)
        except ValueError:
            signed = None
        if not isinstance(signed, dict):
            raise Rejected("bad_signature", "the journalled signed text is not an event")
        for k, v in (("id", tx.eid), ("type", tx.etype)):
            if signed.get(k) != v:
                raise Rejected("bad_signature", f"the signed event's {k} differs from the entry's")
        try:
            sub = signing.canonical_party(signed.get("submitter"), "signed submitter")
        except Rejected:
            sub = None
        if sub != tx.sub:
            raise Rejected("bad_signature", "the signed event's submitter differs from the entry's")
        if not self.same_signed_args(tx.etype, signed.get("args", {}), tx.args):
            raise Rejected("bad_signature", "the signed event's arguments differ from the entry's")

    # ---------------------------------------------------------------- keys

    def register_key(
        self,
        op: str,
        party: str,
        key: Optional[str] = None,
        *,
        event_id: Optional[str] = None,
        time: Optional[int] = None,
    ) -> Outcome:
        """An operator's key registry change (``op`` = add, rotate or revoke): a journal entry.

        ``key`` is the Ed25519 public key in hex (add, rotate).  Under
        ``clock="events"`` the entry's time is ``time`` or the ledger's clock."""
        args: dict[str, Any] = {"op": op, "party": party}
        if key is not None:
            args["key"] = key
        if time is None and self.clock_policy == "events":
            time = self.clock if self.clock is not None else 0
        ev = {
            "id": event_id or f"@keys:{op}:{party}:{self.seq + 1}",
            "type": signing.KEYS,
            "submitter": signing.OPERATOR,
            "args": args,
        }
        if time is not None:
            ev["time"] = time
        if self.broken:
            raise StoreError(self.broken)
        return settle(self, ev, operator=True)

    def has_key_entry(self, party: str) -> bool:
        """Whether ``party`` ever had a key (a revoked party may not re-register itself)."""
        return signing.META_PREFIX + party in self.state.meta

    def keys(self, party: Optional[str] = None) -> dict[str, Any]:
        """The key registry: ``{party: {"active": key or None, "keys": {key: status}}}``."""
        meta = self.state.meta
        n = len(signing.META_PREFIX)
        out = {
            k[n:]: {"active": v["active"], "keys": dict(sorted(v["keys"].items()))}
            for k, v in sorted(meta.items())
            if k.startswith(signing.META_PREFIX)
        }
        return out if party is None else {p: r for p, r in out.items() if p == party}

    def _arg_spec(self, ch: Any) -> tuple[frozenset, list]:
        spec = self._specs.get(ch.name)
        if spec is None:
            fields = [
                (
                    f.name,
                    self.converter.compile(f.type, f"{ch.name}: argument {f.name!r}", f.lo, f.hi),
                    isinstance(f.type, ir.TOptional),
                )
                for f in ch.params
            ]
            spec = self._specs[ch.name] = (frozenset(f.name for f in ch.params), fields)
        return spec

    def convert_args(self, ch: Any, args: dict[str, Any]) -> dict[str, Any]:
        """The handler's arguments, converted and checked against the live state."""
        conv = self._converters.get(ch.name)
        if conv is None:
            conv = self._converters[ch.name] = self._make_converter(ch)
        return conv(args, self.state)

    def _make_converter(self, ch: Any) -> Callable[[dict, Any], dict]:
        """``convert_args`` of one handler as one generated function: each argument in the
        order declared, taken as it is when it passes its type's fast test
        (``Converter.fast_test``), else converted (and refused, worded) by its compiled
        converter.  As in ``runtime/pygen.py``, no text of the policy becomes code: names,
        messages and converters are constants the code refers to by index."""
        names, fields = self._arg_spec(ch)
        ns: dict[str, Any] = {
            "_names": names,
            "_unknown": lambda args: self._unknown_args(ch, args, names, fields),
            "Rejected": Rejected,
            "MAX_TEXT": MAX_TEXT,
        }
        lines = [
            "def convert(args, state):",
            f"    if len(args) > {len(fields)} or not _names.issuperset(args):",
            "        _unknown(args)",
            "    out = {}",
        ]
        for i, (f, (name, conv, optional)) in enumerate(zip(ch.params, fields)):
            ns[f"N{i}"], ns[f"C{i}"] = name, conv
            lines += [f"    if N{i} in args:", f"        v = args[N{i}]"]
            fast = self.converter.fast_test(f.type, f.lo, f.hi)
            if fast is None:
                lines.append(f"        out[N{i}] = C{i}(v, state)")
            else:
                test, consts = fast
                own = {k: f"{k}{i}" for k in consts}
                ns.update({own[k]: v for k, v in consts.items()})
                lines.append(f"        out[N{i}] = v if {test.format(**own)} else C{i}(v, state)")
            lines.append("    else:")
            if optional:
                lines.append(f"        out[N{i}] = None")
            else:
                ns[f"M{i}"] = f"{ch.name}: missing argument {name!r}"
                lines.append(f"        raise Rejected('missing_argument', M{i})")
        lines.append("    return out")
        exec(compile("\n".join(lines) + "\n", f"<charter arguments of {ch.name!r}>", "exec"), ns)  # noqa: S102
        return ns["convert"]

    # the verifier's replay (compiler/verify/observed.py) converts arguments with this name
    _convert_args = convert_args

    @staticmethod
    def _unknown_args(ch: Any, args: dict, names: Any, fields: list) -> None:
        from charter.compiler.diagnostics import closest

        unknown = sorted((k for k in args if k not in names), key=preview)
        missing = [f[0] for f in fields if f[0] not in args]
        # a long name is no typo (and the suggestion's cost grows with it)
        meant = [(k, closest(k, missing)) for k in unknown if isinstance(k, str) and len(k) <= 64]
        hints = "; ".join(f"did you mean {m!r} for {k!r}?" for k, m in meant if m)
        raise Rejected(
            "unknown_argument",
            f"{ch.name}: unknown argument(s) {', '.join(preview(k) for k in unknown)}"
            + (f"; {hints}" if hints else "")
            + f" (expected: {', '.join(f[0] for f in fields) or 'none'})",
        )

    def _stateless_args(self, ch: Any, args: dict[str, Any]) -> dict[str, Any]:
        """The arguments converted without the state (to compare a resubmitted event)."""
        names, fields = self._arg_spec(ch)
        if len(args) > len(fields) or not names.issuperset(args):
            unknown = sorted(preview(k) for k in args if k not in names)
            raise Rejected(
                "unknown_argument",
                f"{ch.name}: unknown argument(s) {', '.join(unknown)}"
                f" (expected: {', '.join(f[0] for f in fields) or 'none'})",
            )
        out: dict[str, Any] = {}
        types = {f.name: f.type for f in ch.params}
        for name, conv, optional in fields:
            if name in args:
                out[name] = self.converter.convert(
                    types[name], args[name], f"{ch.name}: argument {name!r}"
                )
            elif optional:
                out[name] = None
            else:
                raise Rejected("missing_argument", f"{ch.name}: missing argument {name!r}")
        return out

    def timers_due(self, now: int) -> bool:
        st = self.state
        # cheap exit: every deadline heap's earliest entry is later and no `every` handler
        if self._only_deadlines:
            for heap in self._heaps:
                if heap and heap[0][0] <= now:
                    break
            else:
                return False
        t0 = st.meta.get("t0")
        for ch, h in self._timed:
            if h.kind == "every":
                if (
                    t0 is not None
                    and t0 + (st.meta.get("every:" + h.name, 0) + 1) * h.period <= now
                ):
                    return True
            else:
                top = st.deadline_top(h.name, h.record, h.field, now)
                if top is not None and top[0] <= now:
                    return True
        return False

    def firings_may_exceed(self, limit: int, now: int) -> bool:
        """False when the event at ``now`` cannot make more than ``limit`` firings due:
        deadline handlers only, and either their heaps hold at most ``limit`` entries in all
        (each firing pops one) or no heap has more than its earliest entry due (a heap's
        second-earliest entry is one of the root's children) and there are at most ``limit``
        heaps.  Then :meth:`due_firings` need not count them."""
        if not self._only_deadlines:
            return True
        heaps = self._heaps
        if sum(map(len, heaps)) <= limit:
            return False
        if len(heaps) > limit:
            return True
        for heap in heaps:
            if (len(heap) > 1 and heap[1][0] <= now) or (len(heap) > 2 and heap[2][0] <= now):
                return True
        return False

    def due_firings(self, now: int, limit: int) -> int:
        """How many timed-handler firings are due at or before ``now`` in the current state,
        counted without running any (stops counting past ``limit``).  A lower bound of what
        firing them does (a firing may arm more), so more than ``limit`` here means more than
        ``limit`` in all: the event is refused before anything runs."""
        st = self.state
        meta = st.meta
        t0 = meta.get("t0", now)
        n = 0
        for _ch, h in self._timed:
            if n > limit:
                break
            if h.kind == "every":
                n += max(0, (now - t0) // h.period - meta.get("every:" + h.name, 0))
                continue
            # the heap's entries due by `now`, visiting only those (and their children)
            heap = st.heaps[h.name]
            recs = st.records[h.record]
            size, field, fired = len(heap), h.field, st.fired_key(h.name, "")
            stack = [0] if heap else []
            visits = 0
            while stack and n <= limit and visits <= 4 * limit + 64:
                i = stack.pop()
                due, key = heap[i]
                if due > now:
                    continue  # its whole subtree is later
                visits += 1
                rec = recs.get(key)
                if rec is not None and rec.get(field) == due and meta.get(fired + key) != due:
                    n += 1
                j = 2 * i + 1  # its children, left first
                if j < size:
                    stack.append(j)
                    if j + 1 < size:
                        stack.append(j + 1)
        return n

    def fire_timers(self, now: int, out: list[dict], limit: Optional[int] = None) -> None:
        """Fire every timed handler due at or before ``now`` (inside the event's frame).

        Each firing runs in a nested frame with its own ledger re-check; one
        that fails is rolled back alone and recorded as rejected.  More than
        ``limit`` firings (timers can arm further timers) refuse the event."""
        st = self.state
        meta = st.meta
        fired = 0
        timed = self._timed
        # one deadline handler (the common case): its earliest due, unfired entry is the next
        # firing, no comparison among handlers to make
        one = timed[0] if len(timed) == 1 and timed[0][1].kind == "deadline" else None
        while True:
            if one is not None:
                ch, h = one
                top = st.deadline_top(h.name, h.record, h.field, now)
                if top is None or top[0] > now:
                    return
                best = ((top[0], h.name, top[1]), ch, h)
            else:
                best = self._next_firing(now)
                if best is None:
                    return
            fired += 1
            if limit is not None and fired > limit:
                raise Rejected("timer_overflow", timer_overflow_message(limit))
            (due, name, key), ch, h = best
            info: dict[str, Any] = {
                "handler": name,
                "due": due,
                "key": key if h.kind == "deadline" else None,
            }
            if h.kind == "every":
                st.set_meta("every:" + name, meta.get("every:" + name, 0) + 1)
            else:
                st.fire_deadline(name, key, due)
            st.begin()
            frame = st.frames[-1]
            try:
                env = Env(st, self.params, due, "clock", self.step_budget)
                if h.kind == "deadline":
                    env.loc[h.binder or "it"] = key
                ch.body(env)
                n = frame.npostings
                if len(st.postings) > n or frame.bal:
                    check_transaction(
                        st.postings[n:] if n else st.postings, frame.bal, st.balances,
                        st.asset_of_get, st.floor_of if st.credit else None,
                    )
            except (Rejected, sem.SemanticsError) as r:
                st.rollback()
                info["status"] = "rejected"
                info["reason"] = preview(getattr(r, "message", str(r)), 500)
            except LedgerError as exc:
                st.rollback()
                info["status"] = "rejected"
                info["reason"] = f"ledger re-check failed: {exc}"
            except Exception as exc:  # noqa: BLE001 - a timer never half-applies either
                if _DEBUG:
                    raise
                st.rollback()
                info["status"] = "rejected"
                info["reason"] = f"runtime_error: {type(exc).__name__}: {preview(str(exc), 200)}"
            else:
                st.commit()
                info["status"] = "applied"
            out.append(info)

    def _next_firing(self, now: int) -> Any:
        """The earliest firing due at or before ``now`` among the timed handlers, as
        ``((due, handler, key), compiled handler, handler)``, or None."""
        st = self.state
        meta = st.meta
        best = None
        for ch, h in self._timed:
            if h.kind == "every":
                t0 = meta.get("t0")
                k = meta.get("every:" + h.name, 0)
                due = t0 + (k + 1) * h.period
                cand = (due, h.name, "")
            else:
                top = st.deadline_top(h.name, h.record, h.field, now)
                if top is None:
                    continue
                cand = (top[0], h.name, top[1])
            if cand[0] <= now and (best is None or cand < best[0]):
                best = (cand, ch, h)
        return best

    # ================================================================ queries

    def balances(self, include_zero: bool = False) -> dict[str, int]:
        """Every account's balance (supply accounts are minus the supply).  A runtime opened
        without its state reads them from the store's balance rows."""
        if self.state_loaded:
            # filtered before sorting: a paged ledger's closed escrow accounts are most rows
            return dict(sorted((a, b) for a, b in self.state.balances.items()
                               if b or include_zero))
        out = {}
        for a, b in self.store.kind_rows("balance"):
            if type(b) is not int:  # a row edited by hand: readers format it as an amount
                raise StoreError(f"{getattr(self.store, 'path', 'ledger')}: the stored balance "
                                 f"of {preview(a)} is {preview(b)}, not an amount (the ledger "
                                 "is damaged or was edited)")
            if b or include_zero:
                out[a] = b
        return out

    def balance(self, account: str, asset: Optional[str] = None) -> int:
        """``balance("alice", "Credit")``, ``balance("commons")`` (a pool), or an account name."""
        if asset is not None and ":" not in account:
            return self.state.balances.get(party_account(account, asset), 0)
        if ":" not in account:
            if any(p.name == account for p in self.policy.pools):
                return self.state.balances.get(pool_account(account), 0)
            raise KeyError(f"{account!r} is not a pool; give an asset for a party's balance")
        return self.state.balances.get(account, 0)

    def supply(self, asset: str) -> int:
        return -self.state.balances.get(f"supply:{asset}", 0)

    def records(self, name: str) -> dict[str, dict[str, Any]]:
        return {k: dict(v) for k, v in sorted(self.state.records[name].items())}

    def members(self, role: str) -> dict[str, dict[str, Any]]:
        return {p: dict(a) for p, a in sorted(self.state.roles[role].items())}

    def rights(self) -> list[dict[str, Any]]:
        return [
            {"right": r, "key": k, "party": p, "until": u}
            for (r, k, p), u in sorted(
                self.state.rights.items(), key=lambda kv: canonical(list(kv[0]))
            )
        ]

    @property
    def dissolved(self) -> bool:
        return bool(self.state.meta.get("dissolved"))

    @property
    def journal_hash(self) -> str:
        return self.head

    def history(self, account: Optional[str] = None, limit: int = 0) -> list[dict[str, Any]]:
        """Journal entries (oldest first); with ``account``, only those whose postings touch
        it; with ``limit``, only the newest ``limit`` of them, read newest first from the
        store (a ledger file's sequence index), so the cost follows ``limit``, not the
        journal's length."""
        self.flush()
        out = []
        for row, data in self._history_rows(account, limit):
            ps = data["postings"]
            if account is not None:
                ps = [p for p in ps if account in (p[0], p[1])]
            out.append(
                {
                    "seq": row.seq,
                    "event": data["event"],
                    "hash": row.hash,
                    "postings": [Posting(*p).to_dict() for p in ps],
                    "timers": data["timers"],
                    "flags": data["flags"],
                }
            )
        return out

    def _history_rows(self, account: Optional[str], limit: int) -> list[tuple[JournalRow, Any]]:
        store = self.store

        def touches(data: Any) -> bool:
            return account is None or any(account in (p[0], p[1]) for p in data["postings"])

        desc = getattr(store, "journal_desc", None)
        if account is not None and hasattr(store, "account_desc"):
            # the per-account index: only blocks of entries that touch the account are read
            desc = partial(store.account_desc, account)
        if limit > 0 and desc is not None:
            picked = []
            for row in desc():
                data = json.loads(row.entry)
                if touches(data):
                    picked.append((row, data))
                    if len(picked) >= limit:
                        break
            picked.reverse()
            out = []
            for row, data in picked:
                if row.hash is None and hasattr(store, "hash_before"):  # not kept: re-hashed
                    row = row._replace(hash=chain(store.hash_before(row.seq), row.entry))
                out.append((row, data))
            return out
        # a damaged or edited entry stops the reader with an error naming it (store.shown_rows)
        rows = shown_rows(self.journal_rows(), getattr(store, "path", None) or "the ledger")
        out = [(row, data) for row in rows if touches(data := json.loads(row.entry))]
        return out[-limit:] if limit > 0 else out

    def journal_rows(self, start: int = 1) -> Iterator[JournalRow]:
        """Journal rows from ``start`` on with every hash filled in (a store keeps some hashes
        only, see ``journal.ANCHOR_EVERY``): streamed, for readers such as history."""
        self.flush()
        store = self.store
        if not hasattr(store, "hash_before"):  # a store that keeps every hash
            return (r for r in store.journal() if r.seq >= start)
        first = getattr(store, "first_seq", lambda: 1)()
        start = max(start, first)
        prev = self.genesis if start <= 1 else store.hash_before(start)
        return with_hashes(store.journal(start), prev)

    def journal_gone(self) -> Optional[str]:
        """Why the full journal cannot be read (an in-memory window dropped entries), or None."""
        dropped = getattr(self.store, "dropped", 0)
        if not dropped:
            return None
        return (
            f"the in-memory runtime keeps only its last {self.store.window} journal entries "
            f"({dropped} older ones are gone); audit and replay need every entry: open it "
            "with open_runtime(..., journal='full')"
        )

    def state_rows(self) -> list[tuple[str, str, Any]]:
        """The whole state as sorted store rows (what a store would persist)."""
        return list(self.state.rows())

    def audit(self) -> AuditReport:
        """Re-verify the journal chain and recompute balances from its postings."""
        self.flush()
        # a shared ledger (PostgreSQL) is audited holding its lock, caught up: every read
        # below sees the same ledger, which other processes cannot change meanwhile
        hold = self.store_sync is not None and not getattr(self.store, "readonly", False)
        if hold:
            self._hold_ledger()
        try:
            gone = self.journal_gone()
            if gone:
                return AuditReport(False, self.seq, self.head, (gone,), 0)
            return self._audit()
        finally:
            if hold:
                self.store_release()

    def _hold_ledger(self) -> None:
        try:
            self.store_sync(self)
        except LedgerBusyError:
            raise  # the lock not had in time: nothing changed, try again later
        except StoreError as exc:
            self.broken = f"store failed, reopen the ledger: {exc}"
            raise

    def _audit(self, also: Optional[Callable[[JournalRow], None]] = None) -> AuditReport:
        """The chain and balances (``journal.verify_chain``, ``auditpass``), the per-account index, every
        signature (``signing.SignatureAudit``, fed the same rows: one read of the journal),
        the stored balances against the running state, and the open-time check of the ledger
        as it is now.  ``also``: handed each row too (``api.audit_and_replay``'s replay: one
        read of the journal for both)."""
        store = self.store
        # the sums and the implied index pairs are bounded (auditpass.py): memory does not
        # grow with the ledger
        sums = auditpass.Sums()
        index = auditpass.IndexCheck(store) if hasattr(store, "account_blocks") else None
        # every signature again, against the key registry rebuilt from the journal itself
        sigs = signing.SignatureAudit(self.genesis, self.same_signed_args, self.key_handler)

        def rows() -> Iterator[JournalRow]:
            feed = sigs.feed
            every = auditpass.EVERY
            for i, row in enumerate(store.journal(), 1):
                feed(row)
                if also is not None:
                    also(row)
                yield row  # verify_chain has summed it when this resumes
                if not i % every:
                    sums.maybe_spill()
                    if index is not None:
                        index.maybe_check(row.seq)

        try:
            found, head, n, _ = verify_chain(
                rows(), self.genesis, blocks=None if index is None else index.pending,
                bal=sums.delta)
            stored = store.kind_rows("balance") if store.persistent else \
                sorted(self.state.balances.items())
            more, checked = sums.compare(stored, self.state.audit_lines())
        finally:
            sums.close()
        report = AuditReport(not found and not more, n, head, tuple(found + more), checked)
        problems = list(report.problems)
        if index is not None:
            problems += index.problems()
        problems += sigs.problems
        if store.persistent and self.state_loaded:
            stored = dict(store.kind_rows("balance"))  # a loaded state holds as much
            live = self.state.balances
            for acc in sorted(set(live) | set(stored)):
                if live.get(acc, 0) != stored.get(acc, 0):
                    problems.append(
                        f"stored balance of {acc} ({stored.get(acc, 0)}) differs from the "
                        f"running state ({live.get(acc, 0)})"
                    )
        if report.head != self.head:
            problems.append(
                f"journal head {report.head[:16]} differs from the runtime's {self.head[:16]}"
            )
        # a ledger file's checkpoint (runtime/integrity.py): what the open-time check says
        check = getattr(store, "check_integrity", None)
        if check is not None:
            problems += [p for p in check() if p not in problems]
        return attrs.evolve(report, ok=not problems, problems=tuple(problems),
                            signatures=sigs.verified)

    # ================================================================ tests support

    def set_param(self, name: str, value: Any) -> None:
        """Change a parameter (within its range) — for in-language tests before any event."""
        self.params = {**self.params, name: resolve_params(self.policy, {name: value})[name]}
        self.state.set_params(self.params)
        self.genesis = genesis_hash(self.policy, self.params)
        if self.seq == 0:
            self.head = self.genesis

    def genesis_apply(self, fn: Any) -> None:
        """Run ``fn(state)`` as an unjournaled setup step (test ``given`` clauses only)."""
        st = self.state
        st.postings = []
        st.flags = []
        st.begin()
        try:
            fn(st)
            check_transaction(st.postings, st.frames[-1].bal, st.balances, st.asset_of,
                              st.floor_of if st.credit else None)
        except BaseException:
            st.rollback()
            raise
        st.commit()


def _decode_param(v: Any) -> Any:
    from .values import from_json_value

    return from_json_value(v)


def _show_params(params: dict[str, Any]) -> str:
    from .values import show

    return ", ".join(f"{k}={show(v)}" for k, v in sorted(params.items())) or "none"


def _suggest(name: str, handlers: dict[str, Any]) -> str:
    import difflib

    events = [n for n, h in handlers.items() if h.kind == "event"]
    # a long name is no typo (and difflib's cost grows with it: a 1 MB type took 0.4 s)
    close = difflib.get_close_matches(name, events, n=1) if len(name) <= 64 else []
    if close:
        return f"; did you mean {close[0]!r}?"
    return f" (events: {', '.join(sorted(events))})" if events else ""


def fingerprint(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


class _StoredIds:
    """The applied ids of a store that looks them up itself (``has_event``): a writer on a
    ledger file keeps no set of every id it ever applied."""

    __slots__ = ("_store",)

    def __init__(self, store: Any):
        self._store = store

    def __contains__(self, event_id: object) -> bool:
        return isinstance(event_id, str) and self._store.has_event(event_id)

    def add(self, event_id: str) -> None:
        pass  # the store has it with the pending entry

    def __iter__(self) -> Any:
        return iter(self._store.event_ids())

    def __len__(self) -> int:
        return self._store.count()
