"""Each event handler's path through the settle table, written out as one Python function.

:data:`charter.runtime.settle.STEPS` is the one definition of what happens to
an event.  Run step by step, it costs a call per step, an ``Env`` and a dict
of locals per handler, and attribute traffic through ``Tx``.  This module
writes, once per compiled policy (``pygen.compile_policy``), one function per
event handler that runs the table's steps after ``decode``, in the table's
order, each step contributing its own lines through its *writer*
(:data:`WRITERS`, one per step of the table, checked when a path is written):

* ``sync``, ``identify``, ``signature``, ``clock``: the test that tells the
  common case (no shared store, a new id, an unsigned event of a party without
  a key, a time not before the last one under ``clock=events``), and the
  step's own function for anything else;
* ``timers``: the event's undo frame opened as the step opens it; the step's
  firing (``settle.fire_due``) when the policy has timed handlers;
* ``convert``: the handler's generated argument converter
  (``Runtime.convert_args``);
* ``authorise`` and ``handler``: the ``by`` clause and the body written by
  :mod:`charter.runtime.pygen` into the path, the arguments and the submitter
  read as Python locals (same refusals, same spans, same step budget).  A
  body pygen cannot write out whole (a node it leaves to its closure, which
  takes an ``Env``) and the policy's ``register_key`` handler take the
  steps' own functions instead;
* ``ledger``, ``encode``, ``commit``: the steps' code, reading the path's
  locals (the arguments' JSON values are the converted arguments themselves when
  every parameter's type has only ints, texts, bools and none as values).

``settle.settle`` runs ``decode``, then the handler's path, or the table
step by step for events without one (``@tick``, ``@keys``, the ``closures``
and ``reference`` backends).  A rejection names the step whose lines failed:
the path's globals hold ``__charter_path_steps__``, the step of each of its
lines (``settle._failed_step``).  As in pygen, no text of the policy becomes
code: every name and message is a constant the code refers to by index.
"""

from __future__ import annotations

from typing import Any, Callable, Optional

from charter.compiler import ir

from . import journal, settle, signing
from .codegen import Compiler
from .pygen import _HELPERS, _WRITE_LOCALS, PyGen, _Unsupported
from .values import MAX_TEXT, Converter, PolicyNotExecutable


class _Ctx:
    """What the writers of one handler's path share."""

    def __init__(self, gen: PyGen, h: ir.Handler, inline: Optional[tuple], policy: ir.Policy):
        self.gen = gen
        self.h = h
        self.inline = inline  # (prologue, auth, body) lines, or None: the steps' functions
        self.k = gen.k
        self.policy = policy
        self._name: Optional[str] = None

    @property
    def name(self) -> str:
        """The constant of the handler's name (one for every line that names it)."""
        if self._name is None:
            self._name = self.k(self.h.name)
        return self._name

    def need_tx(self) -> str:
        """The line that makes the event's Tx when settle sent it here without one."""
        return f"if tx is None: tx = path_tx(rt, ev, eid, {self.name}, sub, now, raw)"


def _sync(c: _Ctx) -> list[str]:
    return ["if rt.store_sync is not None:", "    rt.store_sync(rt)"]


def _identify(c: _Ctx) -> list[str]:
    return [
        "if eid in rt.applied_ids or 'dissolved' in meta:",
        "    " + c.need_tx(),
        "    _out = identify(rt, tx)",
        "    if _out is not None:",
        "        return _out",
    ]


def _signature(c: _Ctx) -> list[str]:
    # an event with a Tx came by decode's own function: signed, replayed, the operator's, ...
    return [
        f"if tx is not None or {c.k(signing.META_PREFIX)} + sub in meta:",
        "    " + c.need_tx(),
        "    signature(rt, tx)",
        "    sig = tx.sig; signed = tx.signed",
    ]


def _clock(c: _Ctx) -> list[str]:
    return [
        "if rt.clock_policy != 'events' or (rt.clock is not None and now < rt.clock):",
        "    " + c.need_tx(),
        "    clock(rt, tx)",
        "    now = tx.time",
    ]


def _timers(c: _Ctx) -> list[str]:
    lines = [
        "st.postings = []",
        "st.flags = []",
        "st.begin()",
        "frame = st.frames[-1]",
        "if 't0' not in meta:",
        "    st.set_meta('t0', now)",
    ]
    kinds = [h.kind for h in c.policy.handlers if h.kind in ("every", "deadline")]
    if not kinds:
        return lines
    if "every" in kinds:
        due = "rt.timed"  # fire_due asks
    else:
        # deadline handlers only (Runtime._heaps, in the policy's order): fire_due's first
        # test, whether some heap's earliest entry is due, written out
        heaps = [f"rt._heaps[{i}]" for i in range(len(kinds))]
        due = " or ".join(f"({hp} and {hp}[0][0] <= now)" for hp in heaps)
    return lines + [
        f"if {due}:",
        "    " + c.need_tx(),
        "    fire_due(rt, tx)",
        "    timers = tx.timers",
    ]


def _convert(c: _Ctx) -> list[str]:
    name = c.name
    general = [  # Runtime.convert_args, its lookup inline
        f"_c = rt._converters.get({name})",
        f"args = _c(raw, st) if _c is not None else rt.convert_args(rt.events[{name}], raw)",
    ]
    params = c.h.params
    conv = Converter(c.policy)
    tests = [conv.fast_test(f.type, f.lo, f.hi) for f in params]
    if not params or any(t is None for t in tests):
        return general
    # the converter's common case written out: exactly the declared arguments, each passing
    # its type's fast test (Converter.fast_test), so each is its own converted value and the
    # converted arguments are ``raw`` as it is; anything else: the converter, which words it
    lines = [f"if len(raw) == {len(params)}:"]
    for i, (f, (test, consts)) in enumerate(zip(params, tests)):
        pad = "    " * (i + 1)
        own = {k: c.k(v) for k, v in consts.items()}
        lines += [f"{pad}v = raw.get({c.k(f.name)})", f"{pad}if {test.format(**own)}:"]
    lines += ["    " * (len(params) + 1) + "args = raw"]
    return ["args = None", "state = st"] + lines + ["if args is None:"] + [
        "    " + ln for ln in general
    ]


def _authorise(c: _Ctx) -> list[str]:
    if c.inline is None:
        return [c.need_tx(), "tx.conv = args", "authorise(rt, tx)"]
    prologue, auth, _ = c.inline
    return ["recs = st.records; bal = st.balances; P = rt.params"] + _dedent(prologue + auth)


def _handler(c: _Ctx) -> list[str]:
    if c.inline is None:
        return ["handler(rt, tx)"]
    lines = [
        "if sub != 'clock' and sub not in st.parties:",
        "    st.add_party(sub)",
        "_steps = 0; _budget = rt.step_budget",
    ]
    if c.gen.writes:  # the body writes state itself, into the event's frame (pygen)
        lines.append("_F = frame; " + _WRITE_LOCALS)
    return lines + _dedent(c.inline[2])


def _ledger(c: _Ctx) -> list[str]:
    return [
        "_fb = frame.bal",
        "if st.soft_credit and _fb:",
        "    st.flag_soft_credit(_fb)",
        "if st.postings or _fb:",
        "    check_transaction(st.postings, _fb, st.balances, st.asset_of_get,",
        "                      st.floor_of if st.credit else None)",
    ]


def _encode(c: _Ctx) -> list[str]:
    lines = []
    if not all(_native(f.type) for f in c.h.params):
        # an argument that is no JSON value as it is (a ratio, a list, ...)
        lines += [
            "for _x in args.values():",
            "    if not (_x is None or type(_x) in _NATIVE):",
            "        args = {_n: to_json_value(_x) for _n, _x in args.items()}",
            "        break",
        ]
    return lines + [
        "seq = rt.seq + 1",
        "postings = tuple(st.postings)",
        "flags = tuple(st.flags) if st.flags else ()",
        "try:",
        "    entry = None",
        # encode_entry's msgspec call written out for an unsigned event; anything it refuses
        # goes to encode_entry, which decides (and words any failure)
        "    if sig is None and _fast_canon is not None:",
        "        try:",
        f"            entry = _fast_canon(_Entry(_Event(args, eid, sub, now, {c.k(c.h.name)}), "
        "flags, postings, seq, timers)).decode()",
        "        except Exception:",
        "            pass",
        "    if entry is None:",
        "        if sig is not None:",
        "            sig = {'key': sig['key'], 'signed': signed, 'value': sig['value']}",
        f"        entry = encode_entry(seq, eid, sub, now, {c.k(c.h.name)}, args, timers, "
        "postings, flags, sig)",
        "    head = _sha256((rt.head + entry).encode()).hexdigest()",
        "except (ValueError, TypeError, UnicodeError, RecursionError) as _exc:",
        "    raise Rejected('unencodable', 'the journal entry cannot be encoded ('",
        "                   + type(_exc).__name__ + ')') from None",
    ]


def _commit(c: _Ctx) -> list[str]:
    return [
        "store = rt.store",
        "store.append(_new_tuple(JournalRow, (seq, eid, entry, head)),",
        "             frame if store.persistent else None, st)",
        "st.commit()",
        "rt.seq = seq",
        "rt.head = head",
        "rt.clock = now",
        "if rt.add_applied_id is not None:",
        "    rt.add_applied_id(eid)",
        "return _new_tuple(Receipt, (eid, seq, postings, head, flags, tuple(timers), False))",
    ]


def _native(t: ir.Type) -> bool:
    """Whether every converted value of type ``t`` is None, an int, a text or a bool (its
    own JSON value: ``settle.encode`` leaves it as it is)."""
    if isinstance(t, ir.TOptional):
        return _native(t.inner)
    return isinstance(t, (ir.TInt, ir.TAmount, ir.TTime, ir.TDuration, ir.TText, ir.TBool,
                          ir.TParty, ir.TRecord))


# the writer of every step of settle.STEPS, in its order (decode runs before a path is chosen)
WRITERS: dict[str, Optional[Callable[[_Ctx], list[str]]]] = {
    "decode": None,
    "sync": _sync,
    "identify": _identify,
    "signature": _signature,
    "clock": _clock,
    "timers": _timers,
    "convert": _convert,
    "authorise": _authorise,
    "handler": _handler,
    "ledger": _ledger,
    "encode": _encode,
    "commit": _commit,
}

# what the written lines call: the steps' own functions and the firing of due timers
_CALLS = {name: fn for name, fn in settle.STEPS}
_CALLS.update(
    fire_due=settle.fire_due,
    check_transaction=settle.check_transaction,
    encode_entry=settle.encode_entry,
    _fast_canon=journal._fast_canon,
    _Entry=getattr(journal, "_Entry", None),
    _Event=getattr(journal, "_Event", None),
    to_json_value=settle.to_json_value,
    JournalRow=settle.JournalRow,
    Receipt=settle.Receipt,
    _NATIVE=settle._NATIVE,
    _sha256=settle._sha256,
    _new_tuple=settle._new_tuple,
    path_tx=settle.path_tx,
    MAX_TEXT=MAX_TEXT,
)


def _dedent(lines: list[str]) -> list[str]:
    """pygen's lines (at function level: four spaces) as the writers return them."""
    return [ln[4:] if ln.startswith("    ") else ln for ln in lines]


def write_path(compiler: Compiler, h: ir.Handler) -> Callable[[Any, Any], Any]:
    """The path of event handler ``h`` (``path(rt, tx)``, after ``decode``)."""
    names = [name for name, _ in settle.STEPS]
    if list(WRITERS) != names or names[0] != "decode":
        raise RuntimeError(f"pathgen.WRITERS {list(WRITERS)} do not match settle.STEPS {names}")
    gen = PyGen(compiler, fast_locals=True, inline=True)
    inline: Optional[tuple] = None
    if h.name != signing.KEY_HANDLER:
        try:
            inline = gen.inline_handler(h)
        except (_Unsupported, PolicyNotExecutable, RecursionError):
            gen = PyGen(compiler, fast_locals=True, inline=True)  # a fresh constant table
    ctx = _Ctx(gen, h, inline, compiler.policy)
    lines = [
        "def path(rt, tx, ev, eid, sub, now, raw):",
        "    st = rt.state; meta = st.meta; sig = signed = None; timers = ()",
    ]
    steps = ["", "", ""]  # the step of each line, by line number (1-based; [0] unused)
    for name, _fn in settle.STEPS[1:]:
        write = WRITERS[name]
        assert write is not None
        for ln in write(ctx):
            lines.append("    " + ln)
            steps.append(name)
    src = "\n".join(lines) + "\n"
    ns: dict[str, Any] = dict(_HELPERS)
    ns.update(_CALLS)
    ns["K"] = tuple(gen.consts)
    ns.update((f"K{i}", v) for i, v in enumerate(gen.consts))
    ns["__charter_path_steps__"] = tuple(steps)
    exec(compile(src, f"<charter event path {h.name!r}>", "exec"), ns)  # noqa: S102 - our own templates
    fn = ns["path"]
    fn.__charter_source__ = src
    return fn


def write_paths(compiler: Compiler, policy: ir.Policy) -> dict[str, Callable[[Any, Any], Any]]:
    """The path of every event handler of ``policy``, by event type."""
    return {h.name: write_path(compiler, h) for h in policy.handlers if h.kind == "event"}
