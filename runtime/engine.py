"""The settlement engine: validates, authorises and applies events atomically.

:class:`Runtime` is what embedders use.  ``submit(event)`` returns a frozen
:class:`Receipt` (applied: journal sequence number, postings, journal hash,
flags, timed handlers that fired) or a frozen :class:`Rejection` (code,
message, source span); a rejected event changes nothing.

Processing one event (all inside one undoable transaction, see
:mod:`charter.runtime.state`):

1. envelope: ``id`` (non-empty text), ``type``, ``submitter``, ``time``
   (int >= 0), ``args`` (object); unknown keys are refused;
2. ``id`` already applied -> ``duplicate``; ledger dissolved -> ``dissolved``;
   time before the last applied event -> ``time_regressed``;
3. timed handlers due at or before the event time fire first, in order of
   due time, handler name, record key, each with ``now`` = its due time.
   ``every`` handlers are due at ``t0 + k*period`` (``t0`` = time of the first
   applied event), ``deadline`` handlers once per live record whose time
   field has passed (again if the field is moved later).  A timed handler
   that rejects rolls back only itself and is recorded as rejected in the
   entry; it is not retried.  Time passing is a fact of its own: the firings
   are committed as a separate journal entry (type ``@tick``, id
   ``@tick#<seq>``) *before* the event is evaluated, so they stand even if
   the event is then rejected (the rejected event itself changes nothing).
   ``{"type": "@tick", "submitter": "clock", "time": T}`` submits a tick
   explicitly (fires due timers, no other effect);
4. arguments converted and checked against the handler signature (and the
   state after the timers);
5. authorisation (``by`` clause), then the handler body;
6. the ledger re-check (balanced per asset, nothing negative), then the
   journal entry is hashed and handed to the store.

Most events take a fast path (:meth:`Runtime._run_event`) that does the
same steps without the general case's branches; anything unusual (a
malformed envelope, a duplicate, timers due, a tick) takes the general
path, which also words the rejections.
"""

from __future__ import annotations

import hashlib
from typing import Any, Iterable, NamedTuple, Optional, Union

import attrs

from charter.compiler import ir

from . import semantics as sem
from .codegen import DEFAULT_STEP_BUDGET, CompiledPolicy, Env, compile_policy
from .journal import (
    AuditReport,
    JournalRow,
    audit_rows,
    encode_entry,
    genesis_hash,
    policy_fingerprint,
)
from .ledger import LedgerError, Posting, check_transaction, party_account, pool_account
from .state import Frame, State
from .store import MemoryStore, Store, StoreError
from .values import Converter, PolicyNotExecutable, Rejected, canonical, check_range, to_json_value

import os

_DEBUG = bool(os.environ.get("CHARTER_RUNTIME_DEBUG"))
TICK = "@tick"
_NATIVE = (int, str, bool)
_AUTO_TICK = TICK + "#"
_NO_ARGS: dict = {}
_sha256 = hashlib.sha256
# NamedTuple instances made per event skip the generated __new__ (a Python frame)
_new_tuple = tuple.__new__
MAX_TIMER_FIRINGS = 10_000
_ENVELOPE = {"id", "type", "submitter", "time", "args"}


class ParamError(ValueError):
    """A parameter override that the policy does not accept."""


class Receipt(NamedTuple):
    """An applied event.  Immutable (a NamedTuple: one is made per event, so it must be cheap)."""

    event_id: str
    tx: int
    postings: tuple[Posting, ...]
    journal_hash: str
    flags: tuple[dict, ...] = ()
    timers: tuple[dict, ...] = ()

    applied = True

    def to_dict(self) -> dict[str, Any]:
        return {
            "applied": True,
            "event_id": self.event_id,
            "tx": self.tx,
            "postings": [p.to_dict() for p in self.postings],
            "journal_hash": self.journal_hash,
            "flags": list(self.flags),
            "timers": list(self.timers),
        }


@attrs.frozen
class Rejection:
    event_id: Optional[str]
    code: str
    message: str
    span: Optional[ir.Span] = None

    applied = False

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "applied": False,
            "event_id": self.event_id,
            "code": self.code,
            "message": self.message,
        }
        if self.span is not None and self.span != ir.NOSPAN:
            out["span"] = {
                "file": self.span.file,
                "line": self.span.line,
                "col": self.span.col,
                "end_line": self.span.end_line,
                "end_col": self.span.end_col,
            }
        return out

    def __str__(self) -> str:
        where = f" at {self.span}" if self.span is not None and self.span != ir.NOSPAN else ""
        return f"{self.code}: {self.message}{where}"


Outcome = Union[Receipt, Rejection]


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
    """A policy settled on a store.  Not thread-safe: one writer per runtime."""

    def __init__(
        self,
        policy: ir.Policy,
        store: Optional[Store] = None,
        *,
        params: Optional[dict[str, Any]] = None,
        step_budget: int = DEFAULT_STEP_BUDGET,
        backend: str = "python",
    ):
        self.policy = policy
        self.store: Store = store if store is not None else MemoryStore()
        self.compiled: CompiledPolicy = compile_policy(policy, backend)
        self.backend = backend
        self.step_budget = step_budget
        self.converter = Converter(policy)
        self.state = State(policy)
        self._timed = [(ch, ch.handler) for ch in self.compiled.timed]
        self._only_deadlines = all(h.kind == "deadline" for _, h in self._timed)
        self._heaps = [self.state.heaps[h.name] for _, h in self._timed if h.kind == "deadline"]
        # a policy whose only timer is one deadline handler (common): the fast path looks
        # at that heap's earliest entry itself before asking _timers_due
        self._one_heap = self._heaps[0] if self._only_deadlines and len(self._heaps) == 1 else None
        self._broken: Optional[str] = None
        self._specs: dict[str, Any] = {}
        self._events = {n: ch for n, ch in self.compiled.handlers.items() if ch.kind == "event"}
        meta = self.store.meta()
        if meta:
            fp = policy_fingerprint(policy)
            if meta.get("fingerprint") != fp:
                raise StoreError(
                    f"this ledger belongs to policy {meta.get('policy_name')!r} "
                    f"(fingerprint {str(meta.get('fingerprint'))[:12]}...), "
                    f"not {policy.name!r} ({fp[:12]}...)"
                )
            stored_params = {k: _decode_param(v) for k, v in meta.get("params", {}).items()}
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
                }
            )
        self.applied_ids: set[str] = set()
        self.head = self.genesis
        self.seq = 0
        self.clock: Optional[int] = None
        self.last_tick: Optional[Outcome] = (
            None  # the timers entry the last submit committed, if any
        )
        for kind, key, value in self.store.rows():
            self.state.load_row(kind, key, value)
        import json

        # the ids and the newest entry, not every entry: opening stays cheap on long journals
        self.applied_ids.update(self.store.event_ids())
        last = self.store.last_row()
        if last is not None:
            self.seq = last.seq
            self.head = last.hash
            self.clock = json.loads(last.entry)["event"]["time"]

    # ================================================================ submitting

    def submit(self, event: Any) -> Outcome:
        """Apply one event (a dict as in the JSON Lines input) or reject it."""
        return self._submit(event, False)

    def _submit(self, event: Any, replaying: bool) -> Outcome:
        if self._broken:
            raise StoreError(self._broken)
        self.last_tick = None
        # Fast path (most events): a well-formed envelope for an ordinary handler, nothing
        # unusual about id or time, no timer due.  Everything else takes the general path
        # below, which also produces the precise rejection messages.
        if type(event) is dict and event.keys() <= _ENVELOPE:
            eid = event.get("id")
            sub = event.get("submitter")
            now = event.get("time")
            args = event.get("args", _NO_ARGS)
            ch = self._events.get(event.get("type"))
            clock = self.clock
            one_heap = self._one_heap
            if (
                ch is not None
                and type(eid) is str
                and eid
                and type(sub) is str
                and sub
                and type(now) is int
                and now >= 0
                and type(args) is dict
                and eid not in self.applied_ids
                and (clock is None or now >= clock)
                and not eid.startswith(_AUTO_TICK)
                and "dissolved" not in self.state.meta
                and not (
                    self._timed
                    and (one_heap is None or (one_heap and one_heap[0][0] <= now))
                    and self._timers_due(now)
                )
            ):
                try:
                    conv = self._convert_args(ch, args)
                except Rejected as r:
                    return Rejection(eid, r.code, r.message, r.span)
                return self._run_event(eid, ch, sub, now, conv)
        eid = event.get("id") if isinstance(event, dict) else None
        eid = eid if isinstance(eid, str) else None
        self.last_tick = None
        try:
            ev, ch = self._validate(event)
            if eid.startswith(_AUTO_TICK) and not replaying:
                raise Rejected(
                    "bad_envelope",
                    f"event ids starting with {_AUTO_TICK!r} are reserved "
                    "for the runtime's timer entries",
                )
        except Rejected as r:
            return Rejection(eid, r.code, r.message, r.span)
        return self._apply(ev, ch)

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

    def flush(self) -> None:
        if self.store.persistent:
            try:
                self.store.flush(self.state)
            except StoreError as exc:
                self._broken = f"store failed, reopen the ledger: {exc}"
                raise

    def close(self) -> None:
        self.flush()
        self.store.close()

    def __enter__(self) -> "Runtime":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # ---------------------------------------------------------------- validation

    def _validate(self, event: Any) -> tuple[dict[str, Any], Any]:
        if type(event) is dict and event.keys() <= _ENVELOPE:
            eid, etype, sub, time = (
                event.get("id"),
                event.get("type"),
                event.get("submitter"),
                event.get("time"),
            )
            args = event.get("args", {})
            if not (
                type(eid) is str
                and eid
                and type(etype) is str
                and type(sub) is str
                and sub
                and type(time) is int
                and time >= 0
                and type(args) is dict
            ):
                self._envelope_error(event)
        else:
            self._envelope_error(event)
        if eid in self.applied_ids:
            raise Rejected("duplicate", f"event {eid!r} was already applied")
        if self.state.meta.get("dissolved"):
            raise Rejected("dissolved", "the policy has been dissolved; no further events apply")
        if self.clock is not None and time < self.clock:
            raise Rejected(
                "time_regressed",
                f"event time {time} is before the last applied event ({self.clock})",
            )
        if etype == TICK:
            if sub != "clock":
                raise Rejected("unauthorised", f"{TICK} may only be submitted by the clock")
            if args:
                raise Rejected("unknown_argument", f"{TICK} takes no arguments")
            return {"id": eid, "type": etype, "submitter": sub, "time": time, "args": {}}, None
        ch = self.compiled.handlers.get(etype)
        if ch is None:
            raise Rejected(
                "unknown_event",
                f"unknown event type {etype!r}" + _suggest(etype, self.compiled.handlers),
            )
        if ch.kind != "event":
            raise Rejected(
                "unknown_event",
                f"{etype!r} is a timed handler; it fires from event time and cannot be submitted",
            )
        return {"id": eid, "type": etype, "submitter": sub, "time": time, "args": args}, ch

    @staticmethod
    def _envelope_error(event: Any) -> None:
        """Raise the precise reason an envelope is malformed."""
        if not isinstance(event, dict):
            raise Rejected("bad_envelope", "an event must be a JSON object")
        extra = set(event) - _ENVELOPE
        if extra:
            raise Rejected(
                "bad_envelope",
                f"unknown envelope key(s): {', '.join(sorted(extra))} "
                "(allowed: id, type, submitter, time, args)",
            )
        for key in ("id", "type", "submitter", "time"):
            if key not in event:
                raise Rejected("bad_envelope", f"event has no {key!r}")
        eid, etype, sub, time = event["id"], event["type"], event["submitter"], event["time"]
        if not isinstance(eid, str) or not eid:
            raise Rejected("bad_envelope", "event 'id' must be non-empty text")
        if not isinstance(etype, str):
            raise Rejected("bad_envelope", "event 'type' must be text")
        if not isinstance(sub, str) or not sub:
            raise Rejected("bad_envelope", "event 'submitter' must be non-empty text")
        if isinstance(time, bool) or not isinstance(time, int) or time < 0:
            raise Rejected("bad_envelope", "event 'time' must be an integer >= 0 (seconds)")
        raise Rejected("bad_envelope", "event 'args' must be an object")

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

    def _convert_args(self, ch: Any, args: dict[str, Any]) -> dict[str, Any]:
        names, fields = self._arg_spec(ch)
        if len(args) > len(fields) or not names.issuperset(args):
            from charter.compiler.diagnostics import closest

            unknown = sorted(k for k in args if k not in names)
            missing = [f[0] for f in fields if f[0] not in args]
            meant = [(k, closest(str(k), missing)) for k in unknown]
            hints = "; ".join(f"did you mean {m!r} for {k!r}?" for k, m in meant if m)
            raise Rejected(
                "unknown_argument",
                f"{ch.name}: unknown argument(s) {', '.join(unknown)}"
                + (f"; {hints}" if hints else "")
                + f" (expected: {', '.join(f[0] for f in fields) or 'none'})",
            )
        out: dict[str, Any] = {}
        state = self.state
        for name, conv, optional in fields:
            if name in args:
                out[name] = conv(args[name], state)
            elif optional:
                out[name] = None
            else:
                raise Rejected("missing_argument", f"{ch.name}: missing argument {name!r}")
        return out

    # ---------------------------------------------------------------- applying

    def _apply(self, ev: dict[str, Any], ch: Any) -> Outcome:
        now = ev["time"]
        if ch is None:  # an explicit @tick: timers only, always journaled
            return self._run(ev, None, fire=True)
        if self._timed and self._timers_due(now):
            tick = {
                "id": f"{TICK}#{self.seq + 1}",
                "type": TICK,
                "submitter": "clock",
                "time": now,
                "args": {},
            }
            out = self._run(tick, None, fire=True)
            if not out.applied:
                # time cannot pass timers that could not fire: refuse the event, say why
                return Rejection(
                    ev["id"],
                    out.code,
                    f"timed handlers due before this event failed: {out.message}",
                    out.span,
                )
            self.last_tick = out
            if self.state.meta.get("dissolved"):
                return Rejection(
                    ev["id"],
                    "dissolved",
                    "the policy was dissolved by a timed handler "
                    "before this event; no further events apply",
                )
        # arguments are checked against the state after the timers ran
        try:
            ev["args"] = self._convert_args(ch, ev["args"])
        except Rejected as r:
            return Rejection(ev["id"], r.code, r.message, r.span)
        # the event itself: the same steps as the fast path's (no timers left to fire)
        return self._run_event(ev["id"], ch, ev["submitter"], now, ev["args"])

    def _timers_due(self, now: int) -> bool:
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

    def _run(self, ev: dict[str, Any], ch: Any, fire: bool) -> Outcome:
        st = self.state
        st.postings = []
        st.flags = []
        st.begin()
        timers: list[dict] = []
        try:
            now = ev["time"]
            if st.meta.get("t0") is None:
                st.set_meta("t0", now)
            if fire and self._timed:
                self._fire_timers(now, timers)
            if ch is not None:
                env = Env(st, self.params, now, ev["submitter"], self.step_budget)
                env.loc.update(ev["args"])
                ch.auth(env)
                if ev["submitter"] != "clock":
                    st.add_party(ev["submitter"])
                ch.body(env)
            frame = st.frames[-1]
            if st.postings or frame.bal:
                check_transaction(st.postings, frame.bal, st.balances, st.asset_of_acc.__getitem__)
        except Rejected as r:
            st.rollback()
            span = r.span if r.span is not None else (ch.handler.span if ch is not None else None)
            return Rejection(ev["id"], r.code, r.message, span)
        except LedgerError as exc:
            st.rollback()
            return Rejection(ev["id"], "ledger_check", f"ledger re-check failed: {exc}")
        except sem.SemanticsError as exc:
            st.rollback()
            return Rejection(ev["id"], exc.code, exc.message, ch.handler.span if ch else None)
        except (
            PolicyNotExecutable,
            ArithmeticError,
            TypeError,
            KeyError,
            ValueError,
            RecursionError,
        ) as exc:
            if _DEBUG:
                raise
            # a compiler/runtime mismatch or ill-typed IR: never half-apply, say what happened
            st.rollback()
            return Rejection(
                ev["id"],
                "runtime_error",
                f"{type(exc).__name__}: {exc}",
                ch.handler.span if ch else None,
            )
        return self._commit(ev, timers)

    def _run_event(self, eid: str, ch: Any, sub: str, now: int, args: dict[str, Any]) -> Outcome:
        """:meth:`_run` + :meth:`_commit` for the fast path (an ordinary event, no timers):
        the same steps, written out once without the general case's branches."""
        st = self.state
        postings: list = []
        st.postings = postings
        st.flags = []
        frame = Frame(0, 0)
        st.frames.append(frame)
        try:
            if "t0" not in st.meta:
                st.set_meta("t0", now)
            env = Env(st, self.params, now, sub, self.step_budget)
            env.loc.update(args)
            ch.auth(env)
            if sub != "clock" and sub not in st.parties:
                st.add_party(sub)
            ch.body(env)
            if postings or frame.bal:
                check_transaction(postings, frame.bal, st.balances, st.asset_of_acc.__getitem__)
        except (
            Rejected,
            LedgerError,
            sem.SemanticsError,
            PolicyNotExecutable,
            ArithmeticError,
            TypeError,
            KeyError,
            ValueError,
            RecursionError,
        ) as exc:
            st.rollback()
            return self._rejection(eid, ch, exc)
        seq = self.seq + 1
        for v in args.values():
            if not (v is None or type(v) in _NATIVE):
                args = {k: to_json_value(v) for k, v in args.items()}
                break
        ptuple = tuple(postings)
        flags = tuple(st.flags)
        entry_json = encode_entry(seq, eid, sub, now, ch.name, args, (), ptuple, flags)
        h = _sha256((self.head + entry_json).encode()).hexdigest()
        store = self.store
        if store.persistent:
            try:
                store.append(_new_tuple(JournalRow, (seq, eid, entry_json, h)), frame, st)
            except StoreError as exc:
                st.rollback()
                self._broken = f"store failed, reopen the ledger: {exc}"
                raise
        else:
            store.append(_new_tuple(JournalRow, (seq, eid, entry_json, h)), None, st)
        st.frames.pop()
        self.seq = seq
        self.head = h
        self.clock = now
        self.applied_ids.add(eid)
        return _new_tuple(Receipt, (eid, seq, ptuple, h, flags, ()))

    def _rejection(self, eid: str, ch: Any, exc: BaseException) -> Rejection:
        span = ch.handler.span if ch is not None else None
        if isinstance(exc, Rejected):
            return Rejection(eid, exc.code, exc.message, exc.span if exc.span is not None else span)
        if isinstance(exc, LedgerError):
            return Rejection(eid, "ledger_check", f"ledger re-check failed: {exc}")
        if isinstance(exc, sem.SemanticsError):
            return Rejection(eid, exc.code, exc.message, span)
        if _DEBUG:
            raise exc
        # a compiler/runtime mismatch or ill-typed IR: never half-apply, say what happened
        return Rejection(eid, "runtime_error", f"{type(exc).__name__}: {exc}", span)

    def _commit(self, ev: dict[str, Any], timers: list[dict]) -> Receipt:
        st = self.state
        postings = tuple(st.postings)
        flags = tuple(st.flags)
        seq = self.seq + 1
        args = ev["args"]
        for v in args.values():
            if not (v is None or type(v) in _NATIVE):
                args = {k: to_json_value(v) for k, v in args.items()}
                break
        # Postings are NamedTuples: JSON writes them as lists, as the journal wants.
        entry_json = encode_entry(
            seq, ev["id"], ev["submitter"], ev["time"], ev["type"], args, timers, postings, flags
        )
        h = _sha256((self.head + entry_json).encode()).hexdigest()
        row = JournalRow(seq, ev["id"], entry_json, h)
        frame = st.frames[-1]
        if self.store.persistent:
            try:
                self.store.append(row, frame, st)
            except StoreError as exc:
                st.rollback()
                self._broken = f"store failed, reopen the ledger: {exc}"
                raise
        else:
            self.store.append(row, None, st)
        st.commit()
        self.seq = seq
        self.head = h
        self.clock = ev["time"]
        self.applied_ids.add(ev["id"])
        return Receipt(
            event_id=ev["id"],
            tx=seq,
            postings=postings,
            journal_hash=h,
            flags=flags,
            timers=tuple(timers),
        )

    def _fire_timers(self, now: int, out: list[dict]) -> None:
        st = self.state
        meta = st.meta
        fired = 0
        while True:
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
            if best is None:
                return
            fired += 1
            if fired > MAX_TIMER_FIRINGS:
                raise Rejected(
                    "timer_overflow",
                    f"more than {MAX_TIMER_FIRINGS} timed handler firings are due "
                    "before this event; submit @tick events in between",
                )
            (due, name, key), ch, h = best
            info: dict[str, Any] = {
                "handler": name,
                "due": due,
                "key": key if h.kind == "deadline" else None,
            }
            if h.kind == "every":
                st.set_meta("every:" + name, meta.get("every:" + name, 0) + 1)
            else:
                st.pop_deadline(name)
                st.set_meta(f"fired:{name}:{key}", due)
            st.begin()
            try:
                env = Env(st, self.params, due, "clock", self.step_budget)
                if h.kind == "deadline":
                    env.loc[h.binder or "it"] = key
                ch.body(env)
            except (Rejected, sem.SemanticsError) as r:
                st.rollback()
                info["status"] = "rejected"
                info["reason"] = getattr(r, "message", str(r))
            except (PolicyNotExecutable, ArithmeticError, TypeError, KeyError, ValueError) as exc:
                if _DEBUG:
                    raise
                st.rollback()
                info["status"] = "rejected"
                info["reason"] = f"runtime_error: {type(exc).__name__}: {exc}"
            else:
                st.commit()
                info["status"] = "applied"
            out.append(info)

    # ================================================================ queries

    def balances(self, include_zero: bool = False) -> dict[str, int]:
        """Every account's balance (supply accounts are minus the supply)."""
        return {a: b for a, b in sorted(self.state.balances.items()) if b or include_zero}

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

    def history(self, account: Optional[str] = None) -> list[dict[str, Any]]:
        """Journal entries (oldest first); with ``account``, only those whose postings touch it."""
        self.flush()
        out = []
        for row in self.store.journal():
            data = row.data()
            ps = data["postings"]
            if account is not None:
                ps = [p for p in ps if account in (p[0], p[1])]
                if not ps:
                    continue
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

    def state_rows(self) -> list[tuple[str, str, Any]]:
        """The whole state as sorted store rows (what a store would persist)."""
        return list(self.state.rows())

    def audit(self) -> AuditReport:
        """Re-verify the journal chain and recompute balances from its postings."""
        self.flush()
        if self.store.persistent:
            stored = {k: v for kind, k, v in self.store.rows() if kind == "balance"}
        else:
            stored = dict(self.state.balances)
        report = audit_rows(self.store.journal(), self.genesis, stored)
        problems = list(report.problems)
        if self.store.persistent:
            live = {k: v for k, v in self.state.balances.items()}
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
        check = getattr(self.store, "check_integrity", None)
        if check is not None:
            problems += [p for p in check() if p not in problems]
        return attrs.evolve(report, ok=not problems, problems=tuple(problems))

    # ================================================================ tests support

    def set_param(self, name: str, value: Any) -> None:
        """Change a parameter (within its range) — for in-language tests before any event."""
        self.params = {**self.params, name: resolve_params(self.policy, {name: value})[name]}
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
            check_transaction(st.postings, st.frames[-1].bal, st.balances, st.asset_of)
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
    close = difflib.get_close_matches(name, events, n=1)
    if close:
        return f"; did you mean {close[0]!r}?"
    return f" (events: {', '.join(sorted(events))})" if events else ""


def fingerprint(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()
