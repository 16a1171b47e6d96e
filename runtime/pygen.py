"""The engine's handler compiler: each handler body as one generated Python function.

This is THE backend events run on (``backend="python"``, the default).  The
engine's closure layer, :mod:`charter.runtime.codegen`, turns every IR node
into a closure; a body then costs one Python call per node.  This module writes the common nodes
(constants, names, record fields, arithmetic, comparisons, ``require``,
``let``, ``if``, ``set``, moves) as Python *source* for one function per
handler, compiled with :func:`compile` once per policy.  Nodes it does not
write (loops, splits, aggregates, roles, rights, records created or
deleted, ...) are called as their closure from :mod:`codegen`.  Both are
the engine; the independent oracle it is compared with is
:mod:`charter.runtime.reference` (``tests/runtime/test_backends.py``,
the event fuzzers).

Safety: no text of the policy ever becomes code.  Every value (numbers,
strings, names, spans) is passed through a constant table ``K`` and only
referenced by index; the generated text consists of this module's own
templates, indices and Python operators.
"""

from __future__ import annotations

import re
import sys
from fractions import Fraction
from typing import Any, Callable

import attrs

from charter.compiler import ir

from . import semantics as sem
from .codegen import CompiledHandler, Compiler, Env, _norm, _over_budget
from .ledger import Posting, escrow_account, party_account, stake_account
from .state import ABSENT, _check_values
from .values import MAX_INT, PolicyNotExecutable, Rejected, amount_text, show

_CMP = {"==", "!=", "<", "<=", ">", ">="}
_PLAIN = re.compile(r"(?:_v|K)[0-9]+\Z")  # a generated local or constant: evaluated as it is


# ------------------------------------------------------------ helpers the generated code calls


def _rec(recs: dict, k: Any, r: str) -> dict:
    rec = recs.get(k)
    if rec is None:
        raise Rejected("missing_record", f"no {r} with key {show(k)}")
    return rec


def _rref(recs: dict, k: Any, r: str) -> Any:
    if k not in recs:
        raise Rejected("missing_record", f"no {r} with key {show(k)}")
    return k


def _pacc(p: Any, asset: str) -> str:
    if p is None:
        raise Rejected("none_value", f"account of none ({asset})")
    if p == "clock":
        raise Rejected("bad_party", "the clock holds no accounts")
    return party_account(p, asset)


def _sacc(p: Any, asset: str) -> str:
    if p is None:
        raise Rejected("none_value", f"stake of none ({asset})")
    if p == "clock":
        raise Rejected("bad_party", "the clock holds no accounts")
    return stake_account(p, asset)


def _eacc(recs: dict, k: Any, r: str, asset: str) -> str:
    if k not in recs:
        raise Rejected("missing_record", f"no {r} with key {show(k)}")
    return escrow_account(r, k, asset)


def _div(a: Any, b: Any) -> Any:
    if b == 0:
        raise Rejected("division_by_zero", "division by zero")
    return Fraction(a) / b


def _none(op: str) -> Rejected:
    return Rejected("none_value", f"{op} with none")


def _rounded(name: str, lv: Any, rv: Any, div: bool) -> int:
    if lv is None or rv is None:
        raise _none("arithmetic")
    ln, ld = (lv, 1) if type(lv) is int else (lv.numerator, lv.denominator)
    rn, rd = (rv, 1) if type(rv) is int else (rv.numerator, rv.denominator)
    if div:
        if rn == 0:
            raise Rejected("division_by_zero", "division by zero")
        n, d = ln * rd, ld * rn
        if d < 0:
            n, d = -n, -d
    else:
        n, d = ln * rn, ld * rd
    return sem.round_quotient(n, d, name)


def _floor_mul(lv: Any, rv: Any) -> int:
    """``floor(lv * rv)``: :func:`_rounded`'s common case (an int times an int or a ratio, a
    Fraction, whose denominator is positive) without its calls; the rest goes to it."""
    if lv.__class__ is int:
        if rv.__class__ is Fraction:
            return lv * rv.numerator // rv.denominator
        if rv.__class__ is int:
            return lv * rv
    return _rounded("floor", lv, rv, False)


def _move(
    st: Any,
    amt: Any,
    s_acc: str,
    d_acc: str,
    asset: str,
    kind: str,
    supply_acc: Any,
    cap: Any,
    span: Any,
    dec: int = 0,
) -> None:
    if amt < 0:
        raise Rejected("negative_amount", f"cannot {kind} a negative amount ({amt} {asset})", span)
    bal = st.balances
    if supply_acc is not None:
        if cap is not None:
            supply = -bal.get(supply_acc, 0)
            if supply + amt > cap:
                raise Rejected(
                    "cap_exceeded",
                    f"minting {amount_text(amt, dec, asset)} would exceed its cap of "
                    f"{amount_text(cap, dec, asset)} (supply {amount_text(supply, dec, asset)})",
                    span,
                )
    else:
        have = bal.get(s_acc, 0)
        if have < amt:
            raise Rejected(
                "insufficient_funds",
                f"{kind}: {s_acc} holds {amount_text(have, dec, asset)}, "
                f"needs {amount_text(amt, dec, asset)}",
                span,
            )
    if amt:
        st.post(s_acc, d_acc, asset, amt, kind)


def _some(v: Any) -> Any:
    if v is None:
        raise Rejected("none_value", "value is none")
    return v


def _isqrt(v: Any) -> int:
    if v < 0:
        raise Rejected("negative_sqrt", f"isqrt of a negative value ({v})")
    return sem.isqrt(v)


def _ratio(a: Any, b: Any) -> Fraction:
    if b == 0:
        raise Rejected("division_by_zero", "ratio with a zero denominator")
    return Fraction(a, b)


class _Budget:
    __slots__ = ("budget",)

    def __init__(self, budget: int):
        self.budget = budget


def _over_at(budget: int) -> None:
    """:func:`codegen._over_budget` for a body written into an event path (no Env)."""
    _over_budget(_Budget(budget))  # type: ignore[arg-type] - it reads .budget alone


_HELPERS = {
    "_over_at": _over_at,
    "_rec": _rec,
    "_rref": _rref,
    "_pacc": _pacc,
    "_sacc": _sacc,
    "_eacc": _eacc,
    "_div": _div,
    "_rounded": _rounded,
    "_floor_mul": _floor_mul,
    "_move": _move,
    "_some": _some,
    "_isqrt": _isqrt,
    "_ratio": _ratio,
    "_norm": _norm,
    "_over": _over_budget,
    "Rejected": Rejected,
    "_floor": sem.floor,
    "_ceil": sem.ceil,
    "_round": sem.round_half_up,
    "_pow": sem.ipow,
    "_none": _none,
    # the state writes written out (see PyGen.write_lines)
    "_ABSENT": ABSENT,
    "_intern": sys.intern,
    "_check_values": _check_values,
    "_new_tuple": tuple.__new__,
    "Posting": Posting,
}

# the names the written-out state writes read, bound once per body (``_F``: the open frame)
_WRITE_LOCALS = ("_fb = _F.bal; _fr = _F.rec; _known = st.asset_of_acc; "
                 "_pappend = st.postings.append")


class _Unsupported(Exception):
    pass


class PyGen:
    """Writes one handler body as Python source; falls back to closures per statement/expression."""

    def __init__(self, compiler: Compiler, fast_locals: bool = False, inline: bool = False):
        self.c = compiler
        self.consts: list[Any] = []
        self.lines: list[str] = []
        self.tmp = 0
        self.tables: dict[str, str] = {}
        # fast_locals: the handler's names are Python locals (``_v<i>``), not ``loc`` entries;
        # only for a body written out whole (a closure called from it would read ``loc``)
        self.fast_locals = fast_locals
        self.pynames: dict[str, str] = {}
        self.assigned: set[str] = set()
        self.fallbacks = 0
        # inline: the body is written into a handler's event path (runtime/pathgen.py), which
        # has no Env: the time, the step count and the budget are the path's own locals, and
        # a node that needs its closure (which takes an Env) makes the body unwritable there
        self.inline = inline
        self.now = "now" if inline else "e.now"
        self.steps = "_steps" if inline else "e.steps"
        self.budget = "_budget" if inline else "e.budget"
        self.over = "_over_at(_budget)" if inline else "_over(e)"
        # whether the body writes state itself (the locals of _WRITE_LOCALS: the inline path
        # binds them from its own frame, pathgen's handler writer)
        self.writes = False
        # deadline handlers by record: [(handler, field)] in the policy's order (State's)
        self.deadlines: dict[str, list[tuple[str, str]]] = {}
        for h in compiler.policy.handlers:
            if h.kind == "deadline":
                self.deadlines.setdefault(h.record, []).append((h.name, h.field))

    def name(self, n: str) -> str:
        v = self.pynames.get(n)
        if v is None:
            v = self.pynames[n] = f"_v{len(self.pynames)}"
        return v

    def local(self, n: str) -> str:
        """The generated text of local ``n`` (read or assigned)."""
        return self.name(n) if self.fast_locals else f"loc[{self.k(n)}]"

    def temp(self, prefix: str) -> str:
        """A fresh name for a value the generated code evaluates once."""
        self.tmp += 1
        return f"{prefix}{self.tmp}"

    def once(self, prefix: str, text: str) -> tuple[str, str]:
        """(the text that evaluates ``text`` first, the name to use after it): a plain name
        or constant is used as it is, anything else is bound to a fresh name (``:=``)."""
        if _PLAIN.match(text):
            return text, text
        v = self.temp(prefix)
        return f"({v} := {text})", v

    def closure(self, fn: Any) -> str:
        """A call of the closure backend's node from the generated code."""
        if self.inline:
            raise _Unsupported
        self.fallbacks += 1
        return f"{self.k(fn)}(e)"

    def k(self, v: Any) -> str:
        # each constant is a global of the function's own namespace, ``K<i>`` (one cached
        # global load where ``K[i]`` is a load and a subscript); ``K`` holds them all too
        self.consts.append(v)
        return f"K{len(self.consts) - 1}"

    def table(self, record: str) -> str:
        """The name of a record's table (``st.records[name]``), looked up once per call at the
        top of the body: the tables are fixed for the state's life (rows come and go)."""
        name = self.tables.get(record)
        if name is None:
            name = self.tables[record] = f"R{len(self.tables)}"
        return name

    def emit(self, depth: int, text: str) -> None:
        self.lines.append("    " * depth + text)

    # ------------------------------------------------------------ handler

    def _guarded_body(self, h: ir.Handler, steps: str, budget: str, over: str) -> None:
        """The body's statements inside the ``try`` that gives a rejection without a span the
        span of the statement it came from (``_s``).  As in the closure backend, the top-level
        step check comes first, outside any statement.  ``steps``/``budget``/``over`` name the
        step counter, the budget and the call that refuses the event when it is exceeded."""
        if h.body:
            self.emit(1, f"{steps} += {len(h.body)}")
            self.emit(1, f"if {steps} > {budget}:")
            self.emit(2, over)
        self.emit(1, "_s = 0")
        self.emit(1, "try:")
        self.block(h.body, 2, count=False)
        self.emit(2, "pass")
        self.emit(1, "except Rejected as r:")
        self.emit(2, "if r.span is None:")
        self.emit(3, "r.span = K[_s]")
        self.emit(2, "raise")

    def body(self, h: ir.Handler) -> Callable[[Env], None]:
        self.emit(1, "st = e.st; loc = e.loc; recs = st.records; bal = st.balances; P = e.params")
        self._guarded_body(h, "e.steps", "e.budget", "_over(e)")
        if self.fast_locals:
            given = {f.name for f in h.params} | {getattr(h.auth, "binder", None), h.binder}
            if self.fallbacks or self.assigned & given:
                raise _Unsupported  # written again with ``loc`` (see compile_body)
            # the arguments and the bound submitter/record, read once from ``loc``
            loads = [f"{v} = loc[{self.k(n)}]" for n, v in self.pynames.items()
                     if n not in self.assigned]
            if loads:
                self.lines.insert(1, "    " + "; ".join(loads))
        if self.writes:
            self.lines.insert(1, "    _F = st.frames[-1]; " + _WRITE_LOCALS)
        if self.tables:
            self.lines.insert(1, "    " + "; ".join(
                f"{name} = recs[{self.k(record)}]" for record, name in self.tables.items()))
        src = "def body(e):\n" + "\n".join(self.lines) + "\n"
        ns = dict(_HELPERS)
        ns["K"] = tuple(self.consts)
        ns.update((f"K{i}", v) for i, v in enumerate(self.consts))
        exec(compile(src, f"<charter handler {h.name!r}>", "exec"), ns)  # noqa: S102 - our own templates
        fn = ns["body"]
        fn.__charter_source__ = src
        return fn

    def inline_handler(self, h: ir.Handler) -> tuple[list[str], list[str], list[str]]:
        """The ``by`` clause and the body of event handler ``h`` as lines of a function that
        has ``st``, ``recs``, ``bal``, ``P``, ``now``, ``sub`` (the submitter), ``args`` (the
        converted arguments), ``_steps`` and ``_budget`` (runtime/pathgen.py writes it):
        ``(prologue, auth, body)``, the prologue reading the tables and names both use.
        Raises :class:`_Unsupported` when a node needs its closure."""
        if not self.inline or not self.fast_locals:
            raise ValueError("inline_handler needs PyGen(..., fast_locals=True, inline=True)")
        auth = self._inline_auth(h)
        mark = len(self.lines)
        self._guarded_body(h, "_steps", "_budget", "_over_at(_budget)")
        body = self.lines[mark:]
        params = {f.name for f in h.params}
        binder = getattr(h.auth, "binder", None)
        if self.assigned & (params | {binder, h.binder}):
            raise _Unsupported
        loads = []
        for n, v in self.pynames.items():
            if n in self.assigned:
                continue
            if n in params:
                loads.append(f"{v} = args[{self.k(n)}]")
            elif n == binder:
                loads.append(f"{v} = sub")
            else:
                raise _Unsupported  # a name the handler does not bind (the checker refuses it)
        prologue = ["    " + "; ".join(
            f"{name} = recs[{self.k(record)}]" for record, name in self.tables.items())
        ] if self.tables else []
        if loads:
            prologue.append("    " + "; ".join(loads))
        return prologue, auth, body

    def _inline_auth(self, h: ir.Handler) -> list[str]:
        """``h``'s ``by`` clause (``codegen.Compiler.auth``, the same refusals word for word)."""
        a, span = h.auth, self.k(h.span)
        mark = len(self.lines)
        if isinstance(a, ir.AuthClock):
            self.emit(1, "if sub != 'clock':")
            self.emit(2, f"raise Rejected('unauthorised', "
                         f"{self.k(f'{h.name} may only be submitted by the clock, not ')} + sub, "
                         f"{span})")
        elif isinstance(a, ir.AuthRole) and a.role is None:
            self.emit(1, "if sub == 'clock':")
            self.emit(2, f"raise Rejected('unauthorised', "
                         f"{self.k(f'{h.name} must be submitted by a party, not the clock')}, "
                         f"{span})")
        elif isinstance(a, ir.AuthRole):
            self.emit(1, f"if sub not in st.roles[{self.k(a.role)}]:")
            self.emit(2, f"raise Rejected('unauthorised', sub + "
                         f"{self.k(f' does not hold the {a.role} role and may not submit {h.name}')}"
                         f", {span})")
        elif isinstance(a, ir.AuthParty):
            self.emit(1, f"_w = {self.x(a.party)}")
            self.emit(1, "if _w != sub:")
            self.emit(2, f"raise Rejected('unauthorised', f'only {{_w}} may submit "
                         f"{{{self.k(h.name)}}}, not {{sub}}', {span})")
        else:
            raise _Unsupported
        auth = self.lines[mark:]
        del self.lines[mark:]
        return auth

    def block(self, stmts: tuple[ir.Stmt, ...], depth: int, count: bool = True) -> None:
        if not stmts:
            return
        if count:
            self.emit(depth, f"{self.steps} += {len(stmts)}")
            self.emit(depth, f"if {self.steps} > {self.budget}:")
            self.emit(depth + 1, self.over)
        for s in stmts:
            self.emit(depth, f"_s = {self.consts_index(s.span)}")
            self.stmt(s, depth)

    def consts_index(self, v: Any) -> int:
        self.consts.append(v)
        return len(self.consts) - 1

    # ------------------------------------------------------------ statements

    def stmt(self, s: ir.Stmt, depth: int) -> None:
        m = getattr(self, "s_" + type(s).__name__, None)
        mark = len(self.lines)
        try:
            if m is None:
                raise _Unsupported
            m(s, depth)
        except _Unsupported:
            del self.lines[mark:]
            # the closure backend's statement, called from the generated code
            self.emit(depth, self.closure(self.c.stmt(s)))

    def s_Require(self, s: ir.Require, d: int) -> None:
        self.emit(d, f"if not ({self.x(s.cond)}):")
        self.emit(
            d + 1,
            f"raise Rejected('require', {self.k(s.message or 'requirement failed')}, "
            f"{self.k(s.span)})",
        )

    def s_Reject(self, s: ir.Reject, d: int) -> None:
        self.emit(d, f"raise Rejected('rejected', {self.k(s.message)}, {self.k(s.span)})")

    def s_Let(self, s: ir.Let, d: int) -> None:
        self.assign(s.name, s.value, d)

    def s_Var(self, s: ir.Var, d: int) -> None:
        self.assign(s.name, s.value, d)

    def s_SetLocal(self, s: ir.SetLocal, d: int) -> None:
        self.assign(s.name, s.value, d)

    def assign(self, name: str, value: ir.Expr, d: int) -> None:
        text = self.x(value)
        self.assigned.add(name)
        self.emit(d, f"{self.local(name)} = {text}")

    def s_If(self, s: ir.If, d: int) -> None:
        self.emit(d, f"if {self.x(s.cond)}:")
        self.block(s.then, d + 1)
        self.emit(d + 1, "pass")
        if s.orelse:
            self.emit(d, "else:")
            self.block(s.orelse, d + 1)
        else:
            # the closure backend counts the empty else block's zero steps too: nothing to do
            pass

    def s_SetField(self, s: ir.SetField, d: int) -> None:
        key = self.x(s.key)
        r = self.k(s.record)
        self.emit(d, f"_k = {key}")
        self.emit(d, f"if _k not in {self.table(s.record)}:")
        self.emit(
            d + 1, f"raise Rejected('missing_record', 'no ' + {r} + ' with key ' + _show(_k))"
        )
        self.write_field(d, s.record, s.field, s.value)

    def checked_value(self, d: int, record: str, field: str, value: ir.Expr) -> str:
        """The text of ``value`` as a record keeps it: evaluated into a fresh name whose text is
        interned and whose other values are held to the bounds (``State.set_field``'s
        checks, its refusal word for word); a constant that needs neither as it is."""
        if isinstance(value, ir.Const) and (
            value.value is None or isinstance(value.value, bool)
            or (type(value.value) is int and -MAX_INT <= value.value <= MAX_INT)
        ):
            return self.x(value)
        v = self.temp("_c")
        self.emit(d, f"{v} = {self.x(value)}")
        self.emit(d, f"if {v}.__class__ is str: {v} = _intern({v})")
        self.emit(d, f"elif not ({v} is None or {v}.__class__ is bool or ({v}.__class__ is int "
                     f"and -{MAX_INT} <= {v} <= {MAX_INT})):")
        self.emit(d + 1, f"_check_values({self.k(record)}, {{{self.k(field)}: {v}}})")
        return v

    def write_field(self, d: int, record: str, field: str, value: ir.Expr) -> None:
        """``State.set_field(record, _k, field, value)`` written out (``_k`` names a live
        record): the record copied on its first write in the frame, the old dict kept as
        its before image, the deadline re-armed when the field is one."""
        if not self.inline and not self.fast_locals:
            # a body that calls closures: they write through State, so does it
            self.emit(d, f"st.set_field({self.k(record)}, _k, {self.k(field)}, {self.x(value)})")
            return
        self.writes = True
        v = self.checked_value(d, record, field, value)
        t = self.table(record)
        self.emit(d, f"_rk = ({self.k(record)}, _k)")
        self.emit(d, "if _rk in _fr:")
        self.emit(d + 1, f"_r = {t}[_k]")  # a dict this frame made: nobody else holds it
        self.emit(d, "else:")
        self.emit(d + 1, f"_o = {t}[_k]; _fr[_rk] = _o; _r = {t}[_k] = _o.copy()")
        self.emit(d, f"_r[{self.k(field)}] = {v}")
        for handler, f in self.deadlines.get(record, ()):
            if f == field:
                self.emit(d, f"st._arm({self.k(handler)}, _r[{self.k(field)}], _k)")

    def s_Create(self, s: ir.Create, d: int) -> None:
        # the closure backend's create (codegen.Compiler.s_Create) written out: the key, its
        # checks, then every declared field in order (given, its default, or none)
        decl = self.c.records.get(s.record)
        if decl is None:
            raise _Unsupported  # the closure backend refuses it
        given = dict(s.values)
        r = self.k(s.record)
        span = self.k(s.span)
        self.emit(d, f"_k = {self.x(s.key)}")
        self.emit(d, "if not isinstance(_k, str):")
        self.emit(d + 1, f"raise Rejected('bad_key', {r} + ' key must be text, got ' + _show(_k), "
                         f"{span})")
        self.emit(d, f"if _k in {self.table(s.record)}:")
        self.emit(d + 1, f"raise Rejected('record_exists', {r} + ' ' + repr(_k) + "
                         f"' already exists', {span})")
        values = [(f.name, given.get(f.name) or f.default) for f in decl.fields]
        if not self.inline and not self.fast_locals:
            fields = [f"{self.k(n)}: {self.x(x) if x is not None else 'None'}" for n, x in values]
            self.emit(d, f"st.create_record({r}, _k, {{{', '.join(fields)}}})")
            return
        # State.create_record written out: every value evaluated in order, then checked in
        # order (State._check_values' refusal), the before image (no record: the key was
        # just found free), the record made as State.compact_record makes it (a copy of the
        # kind's prototype, filled in the declared order), its deadlines armed
        self.writes = True
        texts = []
        for n, x in values:
            if x is None or (isinstance(x, ir.Const) and (
                    x.value is None or isinstance(x.value, bool)
                    or (type(x.value) is int and -MAX_INT <= x.value <= MAX_INT))):
                texts.append((n, self.x(x) if x is not None else "None", False))
            else:
                v = self.temp("_c")
                self.emit(d, f"{v} = {self.x(x)}")
                texts.append((n, v, True))
        for n, v, check in texts:
            if check:
                self.emit(d, f"if {v}.__class__ is str: {v} = _intern({v})")
                self.emit(d, f"elif not ({v} is None or {v}.__class__ is bool or "
                             f"({v}.__class__ is int and -{MAX_INT} <= {v} <= {MAX_INT})):")
                self.emit(d + 1, f"_check_values({r}, {{{self.k(n)}: {v}}})")
        self.emit(d, f"_rk = ({r}, _k)")
        self.emit(d, "if _rk not in _fr:")
        self.emit(d + 1, "_fr[_rk] = _ABSENT")
        self.emit(d, f"_r = st._record_cls[{r}]().__dict__")
        for n, v, _check in texts:
            self.emit(d, f"_r[{self.k(n)}] = {v}")
        self.emit(d, f"{self.table(s.record)}[_k] = _r")
        for handler, f in self.deadlines.get(s.record, ()):
            self.emit(d, f"st._arm({self.k(handler)}, _r[{self.k(f)}], _k)")

    def s_Update(self, s: ir.Update, d: int) -> None:
        key = self.x(s.key)
        r = self.k(s.record)
        self.emit(d, f"_k = {key}")
        self.emit(d, f"if _k not in {self.table(s.record)}:")
        self.emit(
            d + 1, f"raise Rejected('missing_record', 'no ' + {r} + ' with key ' + _show(_k))"
        )
        if len(s.values) == 1:
            (n, v), = s.values
            self.write_field(d, s.record, n, v)
            return
        items = ", ".join(f"{self.k(n)}: {self.x(v)}" for n, v in s.values)
        self.emit(d, f"st.set_fields({r}, _k, {{{items}}})")

    def s_Move(self, s: ir.Move, d: int) -> None:
        a = self.c.assets.get(s.asset)
        if s.member is not None:
            raise _Unsupported  # a family member's move: the closure backend's statement
        if a is None or a.kind == "right":
            raise _Unsupported  # the closure backend reports it
        from_supply = isinstance(s.src, ir.AccSupply)
        if from_supply and not a.mintable:
            raise _Unsupported
        if isinstance(s.dst, ir.AccSupply) and not (a.burnable or a.decay is not None):
            raise _Unsupported
        if a.has_credit and isinstance(s.src, ir.AccParty):
            raise _Unsupported  # a move on a credit line: the closure backend's statement
        supply = self.k(f"supply:{s.asset}") if from_supply else "None"
        # the closure backend's order: amount, its sign check, then source and destination
        self.emit(d, f"_a = {self.x(s.amount)}")
        self.emit(d, "if _a < 0:")
        self.emit(
            d + 1,
            f"raise Rejected('negative_amount', 'cannot ' + {self.k(s.kind)} + ' a negative "
            f"amount (' + str(_a) + ' ' + {self.k(s.asset)} + ')', {self.k(s.span)})",
        )
        self.emit(d, f"_sa = {self.acc(s.src)}")
        self.emit(d, f"_da = {self.acc(s.dst)}")
        move = (
            f"_move(st, _a, _sa, _da, {self.k(s.asset)}, {self.k(s.kind)}, {supply}, "
            f"{self.k(a.cap)}, {self.k(s.span)}, {self.k(a.decimals)})"
        )
        if not self.inline and not self.fast_locals:
            post = [f"st.post(_sa, _da, {self.k(s.asset)}, _a, {self.k(s.kind)})"]
        else:
            post = self.post_lines(s.asset, s.kind)
        # _move's checks written out for the common cases (it words the refusal when one
        # fails): funds at the source, or a mint's cap
        if from_supply and a.cap is not None:
            self.emit(d, f"if -bal.get({supply}, 0) + _a > {self.k(a.cap)}:")
            self.emit(d + 1, move)  # refuses it
            self.emit(d, "elif _a:")
        elif from_supply:
            self.emit(d, "if _a:")
        else:
            self.emit(d, "if bal.get(_sa, 0) < _a:")
            self.emit(d + 1, move)  # refuses it
            self.emit(d, "elif _a:")
        for ln in post:
            self.emit(d + 1, ln)

    def post_lines(self, asset: str, kind: str) -> list[str]:
        """``State.post(_sa, _da, asset, _a, kind)`` written out: each balance's before image
        (None: no account yet) kept in the frame on its first change, the accounts new to the
        state registered, the posting appended."""
        self.writes = True
        a = self.k(asset)
        return [
            "_o = bal.get(_sa)",
            "if _sa not in _fb: _fb[_sa] = _o",
            "bal[_sa] = (_o or 0) - _a",
            "_o = bal.get(_da)",
            "if _da not in _fb: _fb[_da] = _o",
            "bal[_da] = (_o or 0) + _a",
            f"if _da not in _known: st._new_account(_da, {a})",
            f"if _sa not in _known: st._new_account(_sa, {a})",
            f"_pappend(_new_tuple(Posting, (_sa, _da, {a}, _a, {self.k(kind)})))",
        ]

    # ------------------------------------------------------------ accounts

    def acc(self, a: ir.Account) -> str:
        if a.member is not None:
            raise _Unsupported  # an account of a family member: the closure backend's
        if isinstance(a, ir.AccPool):
            return self.k(f"pool:{a.pool}")
        if isinstance(a, ir.AccSupply):
            return self.k(f"supply:{a.asset}")
        if isinstance(a, ir.AccParty):
            # the account name built inline for a party id (text, not the clock); _pacc
            # words the refusal otherwise
            first, v = self.once("_p", self.x(a.party))
            return (
                f"({self.k('party:')} + {v} + {self.k(':' + a.asset)} if "
                f"{first}.__class__ is str and {v} != 'clock' "
                f"else _pacc({v}, {self.k(a.asset)}))"
            )
        if isinstance(a, ir.AccStake):
            return f"_sacc({self.x(a.party)}, {self.k(a.asset)})"
        if isinstance(a, ir.AccEscrow):
            r = self.k(a.record)
            t = self.table(a.record)
            # inline for a text key of a live record (escrow_account's name); _eacc otherwise
            first, v = self.once("_e", self.x(a.key))
            return (
                f"({self.k(f'escrow:{a.record}:')} + {v} + {self.k(':' + a.asset)} if "
                f"{first} in {t} and {v}.__class__ is str "
                f"else _eacc({t}, {v}, {r}, {self.k(a.asset)}))"
            )
        raise _Unsupported

    # ------------------------------------------------------------ expressions

    def x(self, x: ir.Expr) -> str:
        m = getattr(self, "x_" + type(x).__name__, None)
        if m is not None:
            try:
                return m(x)
            except _Unsupported:
                pass
        return self.closure(self.c.expr(x))

    def x_Const(self, x: ir.Const) -> str:
        v = x.value
        if v is None or isinstance(v, bool):
            return repr(v)
        if type(v) is int:
            return f"({v})"
        return self.k(v)

    def x_Local(self, x: ir.Local) -> str:
        return self.local(x.name)

    def x_ParamRef(self, x: ir.ParamRef) -> str:
        return f"P[{self.k(x.name)}]"

    def x_Now(self, x: ir.Now) -> str:
        return self.now

    def x_RecordRef(self, x: ir.RecordRef) -> str:
        r = self.k(x.record)
        t = self.table(x.record)
        # the key of a live record as it is; _rref (which words the refusal) otherwise
        first, kv = self.once("_rk", self.x(x.key))
        return f"({kv} if {first} in {t} else _rref({t}, {kv}, {r}))"

    def x_RecordField(self, x: ir.RecordField) -> str:
        r = self.k(x.record)
        t = self.table(x.record)
        # a dict lookup inline; _rec (which words the rejection) only when it finds nothing
        # (or an empty record).  The key is evaluated once, into a name of its own.
        first, kv = self.once("_rk", self.x(x.key))
        return f"({t}.get({first}) or _rec({t}, {kv}, {r}))[{self.k(x.field)}]"

    def x_Exists(self, x: ir.Exists) -> str:
        return f"({self.x(x.key)} in {self.table(x.record)})"

    def x_Unary(self, x: ir.Unary) -> str:
        if x.op == "not":
            return f"(not {self.x(x.operand)})"
        if x.op == "-":
            return f"(-{self.x(x.operand)})"
        raise _Unsupported

    def x_Binary(self, x: ir.Binary) -> str:
        op = x.op
        if op in ("and", "or"):
            return f"({self.x(x.left)} {op} {self.x(x.right)})"
        if op in ("==", "!="):
            return f"({self.x(x.left)} {op} {self.x(x.right)})"
        if op == "/":
            return f"_div({self.x(x.left)}, {self.x(x.right)})"
        if op in _CMP or op in ("+", "-", "*"):
            # None is refused like the closure backend does (the checker makes it unreachable)
            if _maybe_none(x.left) or _maybe_none(x.right):
                raise _Unsupported
            text = f"({self.x(x.left)} {op} {self.x(x.right)})"
            if op in _CMP:
                return text
            if (
                _is_integral(x.type)
                and _is_integral(_type_of(x.left))
                and _is_integral(_type_of(x.right))
            ):
                return text
            return f"_norm{text}"  # a whole Fraction becomes an int, as in the closure backend
        raise _Unsupported

    def x_AccBalance(self, x: ir.AccBalance) -> str:
        return f"bal.get({self.acc(x.account)}, 0)"

    def x_Builtin(self, x: ir.Builtin) -> str:
        n, args = x.name, x.args
        if n in ("floor", "ceil", "round") and len(args) == 1:
            a = args[0]
            if isinstance(a, ir.Binary) and a.op == "*" and n == "floor":
                return f"_floor_mul({self.x(a.left)}, {self.x(a.right)})"
            if isinstance(a, ir.Binary) and a.op in ("*", "/"):
                return f"_rounded({self.k(n)}, {self.x(a.left)}, {self.x(a.right)}, {a.op == '/'})"
            return f"_{n}({self.x(a)})"
        if n == "is_some" and len(args) == 1:
            return f"({self.x(args[0])} is not None)"
        if n == "is_none" and len(args) == 1:
            return f"({self.x(args[0])} is None)"
        if n == "some" and len(args) == 1:
            return f"_some({self.x(args[0])})"
        if n == "isqrt" and len(args) == 1:
            return f"_isqrt({self.x(args[0])})"
        if n == "abs" and len(args) == 1:
            return f"abs({self.x(args[0])})"
        if n in ("min", "max") and len(args) >= 2:
            return f"{n}({', '.join(self.x(a) for a in args)})"
        if n == "ratio" and len(args) == 2:
            return f"_ratio({self.x(args[0])}, {self.x(args[1])})"
        if n == "has_role" and len(args) == 1 and x.extra:
            return f"({self.x(args[0])} in st.roles[{self.k(x.extra[0])}])"
        if n == "supply" and x.extra and not x.args:
            return f"(-bal.get({self.k('supply:' + x.extra[0])}, 0))"
        raise _Unsupported


def _type_of(x: ir.Expr) -> Any:
    return getattr(x, "type", None)


def _is_integral(t: Any) -> bool:
    return isinstance(t, (ir.TInt, ir.TAmount, ir.TTime, ir.TDuration))


def _maybe_none(x: ir.Expr) -> bool:
    t = _type_of(x)
    return t is None or isinstance(t, ir.TOptional) or (isinstance(x, ir.Const) and x.value is None)


_HELPERS["_show"] = show


def compile_body(compiler: Compiler, h: ir.Handler) -> Callable[[Env], None]:
    """The generated body of ``h`` (or its closure body if generation fails): with its names
    as Python locals when the whole body is written out, else with ``loc`` (which the
    closures it calls read and write)."""
    try:
        try:
            return PyGen(compiler, fast_locals=True).body(h)
        except _Unsupported:
            return PyGen(compiler).body(h)
    except (PolicyNotExecutable, SyntaxError, RecursionError):
        return compiler.block(h.body)


@attrs.frozen
class CompiledPolicy:
    policy: ir.Policy
    handlers: dict[str, CompiledHandler]
    timed: tuple[CompiledHandler, ...]
    exprs: "Compiler"
    # each event handler's path through the settle table (runtime/pathgen.py), by event type
    paths: dict[str, Callable[[Any, Any], Any]] = attrs.field(factory=dict)


# the policies compiled most recently (least recently used first), at most CACHE_POLICIES: a
# process that opens ledger after ledger (a server, a fuzzer) decodes a new Policy object each
# time, and an unbounded cache kept every one of them and its generated code (~130 KB a policy)
_CACHE: dict[tuple[int, str], tuple[ir.Policy, CompiledPolicy]] = {}
CACHE_POLICIES = 16
BACKENDS = ("python", "closures", "reference")


def compile_policy(policy: ir.Policy, backend: str = "python") -> CompiledPolicy:
    """Compile every handler of ``policy`` (cached: a policy object is compiled once while it
    is among the :data:`CACHE_POLICIES` most recently compiled).

    ``backend``: ``"python"`` (the engine) writes each body as one generated
    function; ``"closures"`` runs the engine's closures alone, one per node
    (:mod:`charter.runtime.codegen`); ``"reference"`` returns the handlers of
    the independent interpreter (:mod:`charter.runtime.reference`, not
    compiled, not cached), which the tests and event fuzzers compare the
    engine against.
    """
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r} (one of {', '.join(BACKENDS)})")
    if backend == "reference":  # the oracle: nothing compiled, nothing cached
        from .reference import reference_policy

        return reference_policy(policy)  # type: ignore[return-value]
    key = (id(policy), backend)
    hit = _CACHE.pop(key, None)
    if hit is not None and hit[0] is policy:
        _CACHE[key] = hit  # now the most recently used
        return hit[1]
    c = Compiler(policy)
    if backend == "python":
        handlers = {
            h.name: attrs.evolve(c.handler(h), body=compile_body(c, h)) for h in policy.handlers
        }
    else:
        handlers = {h.name: c.handler(h) for h in policy.handlers}
    timed = tuple(handlers[h.name] for h in policy.handlers if h.kind in ("every", "deadline"))
    paths: dict[str, Callable[[Any, Any], Any]] = {}
    if backend == "python":
        from .pathgen import write_paths

        paths = write_paths(c, policy)
    out = CompiledPolicy(policy=policy, handlers=handlers, timed=timed, exprs=c, paths=paths)
    while len(_CACHE) >= CACHE_POLICIES:
        del _CACHE[next(iter(_CACHE))]
    _CACHE[key] = (policy, out)
    return out
