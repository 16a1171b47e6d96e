"""The one path of an event: an ordered table of named steps (as ``compiler/pipeline.py``).

==========  ===============================================================  =====================
step        what it does                                                     rejects with
==========  ===============================================================  =====================
decode      the envelope: keys, ``id``, ``type``, ``submitter`` (canonical  ``bad_envelope``,
            party id), ``time``, ``args`` (an object with text keys)         ``unknown_event``
sync        a ledger shared by several processes (PostgreSQL): takes the     (a store failure is
            ledger's lock and replays what other processes committed        raised, not rejected)
            since this runtime last looked (``runtime/postgres_store.py``)
identify    an applied id: the same event again is an idempotent no-op       ``id_conflict``,
            (the original receipt, ``duplicate=True``); another event        ``dissolved``
            with that id is refused
signature   a party with a registered key must sign with its active key     ``unsigned``,
            (:mod:`charter.runtime.signing`: canonical bytes, Ed25519);     ``bad_signature``,
            a signature by a party without a key is refused                 ``unknown_key``,
                                                                            ``key_retired``, ...
clock       the time policy: ``events`` (the event's time, not before the    ``time_regressed``,
            last applied one) or ``system`` (the runtime stamps the event;   ``time_skew``
            a submitted time beyond the allowed skew is refused)
timers      opens the event's undo frame, counts the timed handlers due at   ``timer_overflow``,
            or before its time (more than ``max_timer_firings``: refused     ``dissolved``
            before any runs), then fires them (each in a nested frame)
convert     arguments against the handler's signature, in the state after   ``bad_argument``, ...
            the timers (role membership, record keys, bounds)
authorise   the handler's ``by`` clause                                      ``unauthorised``
handler     the body                                                         the policy's codes
ledger      balanced per asset, nothing negative, every touched balance     ``ledger_check``,
            and posting within ``+-(2**63-1)``                              ``out_of_bounds``
encode      the journal entry (canonical JSON, timers included) and its     ``unencodable``
            chained hash
commit      hands entry and changed state to the store; only then are seq,  (a store failure is
            head, clock and applied ids advanced (nothing there can fail)    raised, not rejected)
==========  ===============================================================  =====================

Everything before ``commit`` either reads only or writes under the undo log
of :mod:`charter.runtime.state`; any failure at any step - a rejection, a
broken invariant, an unexpected exception - rolls the frame back, so a
rejected event leaves balances, records, roles, rights, the clock, timers,
the journal and the applied ids exactly as they were.  Time therefore moves
only with accepted events (or an explicit ``@tick`` from the clock): the
timers an event makes due are part of that event's transaction and journal
entry.  Why ``clock``/``timers`` come before ``authorise``: a party's roles
and rights are those at the event's time, after what fell due before it.

There is no second path: replay, ``submit_batch``, the CLI and the AIGrid
bundle all run this table.  For an event of a policy's handler, the steps after
``decode`` run as that handler's *path*: the same steps in the same order, each
written out for the handler by its writer in :mod:`charter.runtime.pathgen`
(the common case inline, the step's own function for the rest), one Python
function instead of a call per step.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Callable, NamedTuple, Optional, Union

import attrs

from charter.compiler import ir

from . import semantics as sem
from .codegen import Env
from . import signing
from .journal import JournalRow, encode_entry
from .ledger import BoundsError, LedgerError, Posting, check_transaction
from .store import LedgerBusyError, StoreError
from .values import (
    MAX_INT,
    Rejected,
    canonical_party,
    id_problem,
    preview,
    to_json_value,
)

TICK = "@tick"
RESERVED_PREFIX = TICK + "#"  # ids of the timer entries older ledgers hold
KEYS = signing.KEYS  # the reserved type of key registry entries
ENVELOPE = frozenset({"id", "type", "submitter", "time", "args", "sig"})
CLOCKS = ("events", "system")
DEFAULT_MAX_SKEW = 300  # seconds a submitted time may differ from the system clock
_NATIVE = (int, str, bool)
_NO_ARGS: dict = {}
_sha256 = hashlib.sha256
_new_tuple = tuple.__new__  # NamedTuples made per event skip the generated __new__


class Receipt(NamedTuple):
    """An applied event.  Immutable (a NamedTuple: one is made per event, so it must be cheap).

    ``duplicate`` is True when the event had already been applied (same id,
    same content): nothing happened now, the receipt is the original one."""

    event_id: str
    tx: int
    postings: tuple[Posting, ...]
    journal_hash: str
    flags: tuple[dict, ...] = ()
    timers: tuple[dict, ...] = ()
    duplicate: bool = False

    applied = True

    def to_dict(self) -> dict[str, Any]:
        out = {
            "applied": True,
            "event_id": self.event_id,
            "tx": self.tx,
            "postings": [p.to_dict() for p in self.postings],
            "journal_hash": self.journal_hash,
            "flags": list(self.flags),
            "timers": list(self.timers),
        }
        if self.duplicate:
            out["duplicate"] = True
        return out


@attrs.frozen
class Rejection:
    event_id: Optional[str]
    code: str
    message: str
    span: Optional[ir.Span] = None
    step: str = ""  # the step of the table that refused the event

    applied = False
    duplicate = False

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


class Tx:
    """One event on its way through the table."""

    __slots__ = (
        "event", "replaying", "eid", "etype", "sub", "time", "args", "ch", "conv", "env",
        "timers", "frame", "depth", "entry", "hash", "seq", "postings", "flags", "sig", "signed",
        "operator",
    )  # fmt: skip

    def __init__(self, event: Any, replaying: bool, operator: bool = False):
        self.event = event
        self.replaying = replaying
        self.operator = operator  # an @keys entry from the operator (Runtime.register_key)
        self.sig: Any = None
        self.signed: Optional[str] = None
        self.eid: Optional[str] = None
        self.ch: Any = None
        self.timers: Any = ()  # a list once timers fire
        self.frame: Any = None


# ------------------------------------------------------------------ the steps


def decode(rt: Any, tx: Tx) -> None:
    ev = tx.event
    if type(ev) is not dict and not isinstance(ev, dict):
        raise Rejected("bad_envelope", f"an event must be a JSON object, got {preview(ev)}")
    if not ev.keys() <= ENVELOPE:
        extra = ", ".join(sorted(preview(k) for k in ev if k not in ENVELOPE))
        raise Rejected(
            "bad_envelope",
            f"unknown envelope key(s): {extra} (allowed: id, type, submitter, time, args, sig)",
        )
    eid = ev.get("id")
    # the common case in one test (a short printable ASCII id); anything else is worded below
    if type(eid) is not str or not (0 < len(eid) <= 256 and eid.isascii() and eid.isprintable()):
        if "id" not in ev:
            raise Rejected("bad_envelope", "event has no 'id'")
        bad = id_problem(eid)
        if bad:
            raise Rejected("bad_envelope", f"event 'id': {bad}")
    tx.eid = eid
    if eid[0] == "@" and eid.startswith(RESERVED_PREFIX) and not tx.replaying:
        raise Rejected(
            "bad_envelope",
            f"event ids starting with {RESERVED_PREFIX!r} are reserved for the runtime's "
            "timer entries",
        )
    etype = ev.get("type")
    sub = ev.get("submitter")
    if type(etype) is not str:
        if "type" not in ev:
            raise Rejected("bad_envelope", "event has no 'type'")
        raise Rejected("bad_envelope", f"event 'type': expected text, got {preview(etype)}")
    if type(sub) is str and sub and sub[0] != "@" and len(sub) <= 256 and sub.isascii() and (
        sub.isprintable()
    ):
        tx.sub = sub
    else:
        if "submitter" not in ev:
            raise Rejected("bad_envelope", "event has no 'submitter'")
        try:
            tx.sub = canonical_party(sub, "event 'submitter'")
        except Rejected as r:
            raise Rejected("bad_envelope", r.message) from None
    t = ev.get("time")
    if type(t) is not int or not 0 <= t <= MAX_INT:
        if t is not None or rt.clock_policy == "events":
            if "time" not in ev:
                raise Rejected(
                    "bad_envelope", "event has no 'time' (clock=events: events carry their time)"
                )
            raise Rejected(
                "bad_envelope",
                f"event 'time': expected an integer 0..2**63-1 (seconds), got {preview(t)}",
            )
    tx.time = t
    args = ev.get("args", _NO_ARGS)
    if type(args) is not dict:
        raise Rejected("bad_envelope", f"event 'args': expected an object, got {preview(args)}")
    tx.args = args
    tx.etype = etype
    if "sig" in ev:
        tx.sig = signing.decode_sig(ev["sig"], tx.replaying)
    ch = rt.events.get(etype)
    if ch is not None:
        tx.ch = ch
        return
    if etype == TICK:
        if args:
            raise Rejected("unknown_argument", f"{TICK} takes no arguments")
        return
    if etype == KEYS:
        tx.conv = signing.decode_key_op(args)
        return
    raise Rejected("unknown_event", rt.unknown_event_message(etype))


def sync(rt: Any, tx: Tx) -> None:
    # after decode (a malformed event takes no lock), before anything that reads the state
    if rt.store_sync is not None:
        rt.store_sync(rt)


def identify(rt: Any, tx: Tx) -> Optional[Outcome]:
    if tx.eid in rt.applied_ids:
        row = rt.applied_entry(tx.eid)
        diff = rt.difference(row, tx)
        if diff is None:
            return rt.receipt_of(row)  # the same event again: done, nothing changes
        where = f" (journal entry {row.seq})" if row is not None else ""
        raise Rejected(
            "id_conflict",
            f"event id {preview(tx.eid)} was already applied{where} to a different event "
            f"({diff}); give this event an id of its own",
        )
    if "dissolved" in rt.state.meta:
        raise Rejected("dissolved", "the policy has been dissolved; no further events apply")
    return None


def signature(rt: Any, tx: Tx) -> None:
    sig = tx.sig
    if tx.operator:
        return
    text = None
    if sig is not None:
        if tx.replaying and "signed" in sig:
            text = sig["signed"]
            rt.check_signed_text(text, tx)
        else:
            if rt.clock_policy == "system" and not tx.replaying and tx.time is None:
                raise Rejected(
                    "bad_envelope",
                    "a signed event carries its 'time' (clock=system: it must lie within the "
                    f"runtime's skew window of {rt.max_skew} s, so a captured signature expires)",
                )
            try:
                text = signing.canonical_event(tx.event)
            except signing.SigningError as exc:
                raise Rejected("bad_signature", f"{exc}") from None
    elif signing.META_PREFIX + tx.sub not in rt.state.meta:
        return  # the common case: an unsigned event of a party without a key
    if tx.etype == KEYS:
        own = signing.self_key(KEYS, tx.conv, tx.sub)
    else:
        own = signing.handler_key(tx.etype, tx.args, rt.key_handler)
    signing.check_signature(rt.state.meta, rt.genesis, tx.sub, sig, text, own)
    tx.signed = text


def clock(rt: Any, tx: Tx) -> None:
    last = rt.clock
    if rt.clock_policy == "system" and not tx.replaying:
        now = rt.system_time()
        if tx.time is not None and abs(tx.time - now) > rt.max_skew:
            raise Rejected(
                "time_skew",
                f"event 'time' {tx.time} is {abs(tx.time - now)} s from the runtime's clock "
                f"({now}); clock=system accepts at most {rt.max_skew} s of skew",
            )
        tx.time = now if last is None or now > last else last
        return
    if last is not None and tx.time < last:
        raise Rejected(
            "time_regressed",
            f"event time {tx.time} is before the last applied event ({last})",
        )


def timers(rt: Any, tx: Tx) -> None:
    st = rt.state
    st.postings = []
    st.flags = []
    tx.depth = len(st.frames)
    st.begin()
    tx.frame = st.frames[-1]
    if "t0" not in st.meta:
        st.set_meta("t0", tx.time)
    if rt.timed:
        tx.timers = fire_due(rt, tx.time, tx.replaying, tx.ch is not None)


def fire_due(rt: Any, now: int, replaying: bool, handled: bool) -> Any:
    """The ``timers`` step once the event's frame is open: the timed handlers due at or
    before ``now``, counted, then fired; what fired (a list), or ``()`` when none was due.
    ``handled``: the event is a policy handler's (refused if a firing dissolves the policy).
    (Its arguments are the Tx's fields, not the Tx: a path calls it without making one.)"""
    if rt._only_deadlines:
        # deadline handlers only: nothing to do unless some heap's earliest entry is due (an
        # entry may be stale, a record closed or moved since: firing finds none, pops it, and
        # the event's entry records no timers, as when none was due)
        for heap in rt._heaps:
            if heap and heap[0][0] <= now:
                break
        else:
            return ()
    elif not rt.timers_due(now):
        return ()
    limit = None if replaying else rt.max_timer_firings
    if limit is not None and rt.firings_may_exceed(limit, now):
        due = rt.due_firings(now, limit)
        if due > limit:  # refused before a single handler runs
            raise Rejected("timer_overflow", timer_overflow_message(limit))
    fired: list = []
    rt.fire_timers(now, fired, limit)
    if handled and "dissolved" in rt.state.meta:
        raise Rejected(
            "dissolved",
            "the policy is dissolved by a timed handler due before this event; "
            "no further events apply",
        )
    return fired


def convert(rt: Any, tx: Tx) -> None:
    ch = tx.ch
    if ch is not None:
        conv = rt._converters.get(ch.name)  # Runtime.convert_args, its lookup inline
        tx.conv = conv(tx.args, rt.state) if conv is not None else rt.convert_args(ch, tx.args)
    elif tx.etype != KEYS:
        tx.conv = _NO_ARGS


def authorise(rt: Any, tx: Tx) -> None:
    ch = tx.ch
    if ch is None:
        if tx.etype == KEYS:
            op = tx.conv
            # the operator (charter keys), or a party rotating/revoking its own key with an
            # event the signature step verified against that key
            own = tx.sub == op["party"] and tx.signed is not None
            if not (tx.operator or tx.replaying) and not (
                own and (op["op"] != "add" or (rt.self_register and not rt.has_key_entry(tx.sub)))
            ):
                raise Rejected(
                    "unauthorised",
                    f"{KEYS} entries come from the operator (charter keys); a party may only "
                    "rotate or revoke its own key, with an event signed by that key"
                    + ("" if rt.self_register else " (self-registration of keys is off)"),
                )
            return
        if tx.sub != "clock":
            raise Rejected("unauthorised", f"{TICK} may only be submitted by the clock")
        return
    env = tx.env = Env(rt.state, rt.params, tx.time, tx.sub, rt.step_budget)
    env.loc.update(tx.conv)
    ch.auth(env)


def handler(rt: Any, tx: Tx) -> None:
    ch = tx.ch
    if ch is None:
        if tx.etype == KEYS:
            st = rt.state
            signing.apply_key_op(st.meta, st.set_meta, tx.conv)
        return
    st = rt.state
    sub = tx.sub
    if sub != "clock" and sub not in st.parties:
        st.add_party(sub)
    ch.body(tx.env)
    if tx.etype == rt.key_handler:  # the policy's register_key: its body allowed it
        sig = tx.sig
        signing.register_own_key(
            st.meta, st.set_meta, sub, tx.conv["key"], sig["key"] if sig is not None else None
        )


def ledger(rt: Any, tx: Tx) -> None:
    st = rt.state
    if st.soft_credit and tx.frame.bal:
        st.flag_soft_credit(tx.frame.bal)
    if st.postings or tx.frame.bal:
        check_transaction(st.postings, tx.frame.bal, st.balances, st.asset_of_get,
                          st.floor_of if st.credit else None)


def encode(rt: Any, tx: Tx) -> None:
    st = rt.state
    args = tx.conv
    for v in args.values():
        if not (v is None or type(v) in _NATIVE):
            args = {k: to_json_value(v) for k, v in args.items()}
            break
    seq = tx.seq = rt.seq + 1
    postings = tx.postings = tuple(st.postings)
    flags = tx.flags = tuple(st.flags)
    try:
        sig = tx.sig
        if sig is not None:  # the journal keeps the signature with the text it signed
            sig = {"key": sig["key"], "signed": tx.signed, "value": sig["value"]}
        tx.entry = encode_entry(
            seq, tx.eid, tx.sub, tx.time, tx.etype, args, tx.timers, postings, flags, sig
        )
        tx.hash = _sha256((rt.head + tx.entry).encode()).hexdigest()
    except (ValueError, TypeError, UnicodeError, RecursionError) as exc:
        raise Rejected(
            "unencodable", f"the journal entry cannot be encoded ({type(exc).__name__})"
        ) from None


def commit(rt: Any, tx: Tx) -> Outcome:
    st = rt.state
    store = rt.store
    row = _new_tuple(JournalRow, (tx.seq, tx.eid, tx.entry, tx.hash))
    # a store failure is not the event's fault: the event is undone and the error raised
    store.append(row, tx.frame if store.persistent else None, st)
    st.commit()
    tx.frame = None
    rt.seq = tx.seq
    rt.head = tx.hash
    rt.clock = tx.time
    if rt.add_applied_id is not None:  # else the store's append recorded the id
        rt.add_applied_id(tx.eid)
    return _new_tuple(
        Receipt, (tx.eid, tx.seq, tx.postings, tx.hash, tx.flags, tuple(tx.timers), False)
    )


# Each step takes (runtime, tx); it returns None to go on, or the outcome when the event is
# done (``identify`` for an idempotent resubmission, ``commit`` at the end); it raises to reject.
STEPS: tuple[tuple[str, Callable[[Any, Tx], Optional[Outcome]]], ...] = (
    ("decode", decode),
    ("sync", sync),
    ("identify", identify),
    ("signature", signature),
    ("clock", clock),
    ("timers", timers),
    ("convert", convert),
    ("authorise", authorise),
    ("handler", handler),
    ("ledger", ledger),
    ("encode", encode),
    ("commit", commit),
)
_FNS = tuple(f for _, f in STEPS)
_AFTER_DECODE = _FNS[1:]
_STEP_OF_CODE = {f.__code__: i for i, (_, f) in enumerate(STEPS)}


def settle(rt: Any, event: Any, replaying: bool = False, operator: bool = False) -> Outcome:
    """Run ``event`` through :data:`STEPS` on runtime ``rt``: a Receipt or a Rejection.

    Never raises for anything an event contains; raises only when the store
    fails (:class:`StoreError`, after undoing the event) or on
    KeyboardInterrupt and the like (likewise undone first).

    ``decode``'s common case is written out here: an unsigned event, neither
    replayed nor the operator's, whose envelope passes decode's first test of
    every key (exactly the keys ``id``, ``type``, ``submitter``, ``time`` and
    maybe ``args``; a printable ASCII ``id`` not starting with ``@``, a plain
    ``submitter``, an int ``time``, an ``args`` object) goes to its handler's
    path as locals, with no :class:`Tx` (``tx`` None: the path makes one if a
    step's own function is needed).  Anything else takes :func:`decode`, which
    accepts what that test accepts with the same values and words each refusal."""
    depth = len(rt.state.frames)  # the frames the event opens are undone down to this
    tx = None
    eid = etype = None
    try:
        if type(event) is dict and not (replaying or operator):
            # exactly the keys id, type, submitter, time (and args): four or five keys, the
            # four found (a KeyError: another key, or one missing - decode says which)
            n = len(event)
            try:
                eid = event["id"]
                etype = event["type"]
                sub = event["submitter"]
                now = event["time"]
                args = event["args"] if n == 5 else _NO_ARGS
            except KeyError:
                n = 0
            if (
                (n == 4 or n == 5)
                and type(eid) is str and 0 < len(eid) <= 256 and eid[0] != "@" and eid.isascii()
                and eid.isprintable() and type(etype) is str
                and type(sub) is str and (sub in _SUBMITTERS or (
                    0 < len(sub) <= 256 and sub[0] != "@" and sub.isascii() and sub.isprintable()
                    and _submitter_seen(sub)))
                and type(now) is int and 0 <= now <= MAX_INT
                and type(args) is dict
            ):  # fmt: skip
                path = rt.paths.get(etype)
                if path is not None:
                    return path(rt, None, event, eid, sub, now, args)
        tx = Tx(event, replaying, operator)
        decode(rt, tx)
        # the handler's path: the steps after decode written out as one function
        # (runtime/pathgen.py); else the steps one by one
        path = rt.paths.get(tx.etype) if tx.ch is not None else None
        if path is not None:
            return path(rt, tx, event, tx.eid, tx.sub, tx.time, tx.args)
        for step in _AFTER_DECODE:
            out = step(rt, tx)
            if out is not None:
                return out
    except Rejected as r:
        return _reject(rt, depth, tx, eid, etype, r, r.code, r.message, r.span)
    except BoundsError as exc:
        return _reject(rt, depth, tx, eid, etype, exc, "out_of_bounds", f"{exc}")
    except LedgerError as exc:
        return _reject(rt, depth, tx, eid, etype, exc, "ledger_check",
                       f"ledger re-check failed: {exc}")
    except sem.SemanticsError as exc:
        return _reject(rt, depth, tx, eid, etype, exc, exc.code, exc.message)
    except LedgerBusyError:
        _undo(rt, depth)  # a shared ledger's lock not had in time: nothing happened, retry later
        raise
    except StoreError as exc:
        _undo(rt, depth)
        rt.broken = f"store failed, reopen the ledger: {exc}"
        raise
    except Exception as exc:  # noqa: BLE001 - whatever it is, the event must not half-apply
        if rt.debug:
            _undo(rt, depth)
            raise
        name = type(exc).__name__
        try:
            text = preview(str(exc), 200)
        except Exception:  # noqa: BLE001 - str() of an exception can itself fail
            text = "(no message)"
        return _reject(rt, depth, tx, eid, etype, exc, "runtime_error", f"{name}: {text}")
    except BaseException:
        _undo(rt, depth)
        raise
    finally:
        # a shared ledger's lock is let go when the event is done, unless a batch holds it
        if rt.store_release is not None:
            rt.store_release()
    raise AssertionError("the commit step returns the receipt")  # pragma: no cover


# submitters that passed settle's test of a plain party id (a party submits event after event,
# and the test's four string methods cost more than a lookup); a cache of at most 4096 texts
_SUBMITTERS: set[str] = set()


def _submitter_seen(sub: str) -> bool:
    if len(_SUBMITTERS) >= 4096:
        _SUBMITTERS.clear()
    _SUBMITTERS.add(sub)
    return True


def path_tx(rt: Any, event: dict, eid: str, etype: str, sub: str, time: Any, args: dict) -> Tx:
    """The :class:`Tx` of an event :func:`settle` sent to its handler's path without one (its
    common case: unsigned, not replayed, not the operator's), made by the path when a step's
    own function needs it (an applied id, a party's key, ``clock=system``, due timers, a
    handler not written out)."""
    tx = Tx(event, False)
    tx.eid = eid
    tx.etype = etype
    tx.sub = sub
    tx.time = time
    tx.args = args
    tx.ch = rt.events[etype]
    return tx


def _undo(rt: Any, depth: int) -> None:
    st = rt.state
    while len(st.frames) > depth:
        st.rollback()


def _reject(
    rt: Any, depth: int, tx: Optional[Tx], eid: Any, etype: Any, exc: BaseException, code: str,
    message: str, span: Optional[ir.Span] = None,
) -> Rejection:  # fmt: skip
    """The rejection of an event (``tx`` None: it went to its path from settle's common case
    of decode, whose ``eid`` and ``etype`` are then the event's own)."""
    _undo(rt, depth)
    step = _failed_step(exc)
    if tx is not None:
        eid, ch = tx.eid, tx.ch
    else:
        ch = rt.events.get(etype)
    if span is None and ch is not None and step in ("authorise", "handler"):
        span = ch.handler.span
    return Rejection(eid, code, message, span, step)


def _failed_step(exc: BaseException) -> str:
    """The step whose frame the exception came from (read off the traceback: free when
    nothing fails, which is why the loop keeps no index); in a handler's path, the step
    that wrote the failing line (the path's ``__charter_path_steps__``).  The traceback's
    first entry is :func:`settle`'s own frame, which is no step: the walk starts after it
    (each frame looked at costs a frame object)."""
    tb = exc.__traceback__
    tb = tb.tb_next if tb is not None else None
    while tb is not None:
        frame = tb.tb_frame
        i = _STEP_OF_CODE.get(frame.f_code)
        if i is not None:
            return STEPS[i][0]
        lines = frame.f_globals.get("__charter_path_steps__")
        if lines is not None and frame.f_code.co_name == "path" and tb.tb_lineno < len(lines):
            return lines[tb.tb_lineno]
        tb = tb.tb_next
    return ""


def timer_overflow_message(limit: int) -> str:
    return (
        f"more than {limit} timed handler firings are due before this event; one event may "
        f"make at most {limit} due (max_timer_firings, charter run --max-timer-firings): "
        "submit @tick events in between to let time pass in steps"
    )


def step_names() -> list[str]:
    return [name for name, _ in STEPS]


def same_event(journal_event: dict[str, Any], tx: Tx, args: Any, compare_time: bool) -> Optional[str]:
    """None when ``tx`` is the journal's event again, else what differs (for ``id_conflict``)."""
    if journal_event.get("type") != tx.etype:
        return "type differs"
    if journal_event.get("submitter") != tx.sub:
        return "submitter differs"
    if compare_time and journal_event.get("time") != tx.time:
        return "time differs"
    jsig = journal_event.get("sig")
    if (jsig and (jsig.get("key"), jsig.get("value"))) != (
        tx.sig and (tx.sig["key"], tx.sig["value"])
    ):
        return "signature differs"
    if args is None or json.dumps(journal_event.get("args"), sort_keys=True) != json.dumps(
        args, sort_keys=True
    ):
        return "arguments differ"
    return None
