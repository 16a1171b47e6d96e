"""Pass 3, typecheck: elaborate AST expressions and statements into typed IR.

Every expression is checked and turned into an IR expression that carries
its type; every statement into an IR statement.  The economic rules live
here too: amounts of different assets never mix, a fractional amount must
state its rounding, scores never move between accounts, fixed supplies are
never minted, pools only hold their own asset.  Errors are reported to the
shared :class:`Diagnostics` sink and an ``ERR`` placeholder lets checking
continue, so one run reports every independent error.

``lower`` calls :class:`Checker` for each declaration and assembles the
:class:`charter.compiler.ir.Policy`.
"""
from __future__ import annotations

from fractions import Fraction
from typing import Any, Callable, Optional

import attrs

from . import ast, display, inline, ir, procs
from .diagnostics import Diagnostics, did_you_mean, source_lines
from .ir import Span
from .resolve import ModuleScope, Symbols, strip_spans


@attrs.frozen
class TError:
    """The type of an expression that already failed: compatible with anything."""


TFrac = ir.TFrac  # a fractional amount: must be rounded before use


@attrs.frozen
class TNone:
    """The type of the literal ``none``."""


ERR = TError()
INT, BOOL, TEXT, RATIO, TIME, DURATION = ir.TInt(), ir.TBool(), ir.TText(), ir.TRatio(), \
    ir.TTime(), ir.TDuration()
PARTY = ir.TParty()

DURATION_UNITS = {"second": 1, "seconds": 1, "minute": 60, "minutes": 60, "hour": 3600,
                  "hours": 3600, "day": 86400, "days": 86400, "week": 604800, "weeks": 604800}
RATIO_UNITS = {"bps": Fraction(1, 10_000), "ppm": Fraction(1, 1_000_000)}
ROUNDING_METHODS = ("largest_remainder", "sequential_floor", "sequential_floor_listed",
                    "dhondt", "sainte_lague", "adams", "dean", "huntington_hill", "floor_dust")
# the methods `with minimum` (a statutory floor under the result) is defined for
STATUTORY_METHODS = ("largest_remainder", "dhondt", "sainte_lague", "adams", "dean",
                     "huntington_hill")
SPLIT_ORDERS = ("listed", "key", "weight")
# The largest exponent of `pow` (constant, or the upper end of a declared range).
MAX_POW = 256
# the most items `list of T max N` may declare (state rows and verifier models stay small)
MAX_LIST_BOUND = 1024
# The longest numeric literal accepted (digits, not counting `_` and `.`).
MAX_LITERAL_DIGITS = 60
# The deepest statement nesting accepted (blocks inside blocks); expressions are
# limited by the parser (parse.MAX_DEPTH).  Both together keep every recursive
# later stage (code generation, the verifier's encoding) far from Python's stack limit.
MAX_BLOCK_DEPTH = 64
SPLIT_KINDS = ("proportional", "monotone", "symmetric")
BASE_TYPES = {"int": INT, "bool": BOOL, "text": TEXT, "ratio": RATIO, "percent": RATIO,
              "time": TIME, "duration": DURATION, "party": PARTY}


def unit(t: Any) -> Any:
    """What an amount is counted in: its asset and, for a family, its member."""
    return (t.asset, strip_spans(t.member) if t.member is not None else None)


unit_name = display.amount_unit


def show(t: Any) -> str:
    """A type as the author would write it."""
    if isinstance(t, ir.TInt):
        return "int" if t.lo is None else f"int within {t.lo}..{t.hi}"
    if isinstance(t, ir.TAmount):
        return unit_name(t)
    if isinstance(t, TFrac):
        return f"fractional {unit_name(t)}"
    if isinstance(t, ir.TParty):
        return t.role or "party"
    if isinstance(t, ir.TRecord):
        return t.record
    if isinstance(t, ir.TOptional):
        return show(t.inner) + "?"
    if isinstance(t, ir.TList):
        return "list of " + show(t.inner) + (f" max {t.bound}" if t.bound is not None else "")
    if isinstance(t, TNone):
        return "none"
    names = {ir.TBool: "bool", ir.TText: "text", ir.TRatio: "ratio", ir.TTime: "time",
             ir.TDuration: "duration", TError: "?"}
    return names.get(type(t), type(t).__name__)


def base(t: Any) -> Any:
    """Forget ranges and roles: the type used for compatibility checks."""
    if isinstance(t, ir.TInt):
        return INT
    if isinstance(t, ir.TParty):
        return PARTY
    return t


def compatible(want: Any, got: Any) -> bool:
    if isinstance(want, TError) or isinstance(got, TError):
        return True
    if isinstance(want, ir.TOptional):
        return isinstance(got, TNone) or compatible(want.inner, got) or (
            isinstance(got, ir.TOptional) and compatible(want.inner, got.inner))
    if isinstance(want, ir.TList) and isinstance(got, ir.TList):
        return compatible(want.inner, got.inner)
    if isinstance(want, ir.TRecord) and isinstance(got, (ir.TText,)):
        return True  # a key given as text is checked to exist when used
    if isinstance(want, ir.TText) and isinstance(got, ir.TRecord):
        return True
    if isinstance(want, ir.TRatio) and isinstance(got, ir.TInt):
        return True  # a whole number is an exact ratio
    if isinstance(want, ir.TParty) and isinstance(got, ir.TParty):
        return True  # role membership is checked at run time where it matters
    return base(want) == base(got)


def is_numeric(t: Any) -> bool:
    return isinstance(t, (ir.TInt, ir.TRatio, ir.TAmount, TFrac, ir.TDuration, TError))


def _join(a: Span, b: Span) -> Span:
    return Span(file=a.file, line=a.line, col=a.col, end_line=b.end_line, end_col=b.end_col)


def _ordered(a: Any, b: Any) -> bool:
    """Whether two constants can be compared (both numbers), so `a > b` cannot raise."""
    return all(isinstance(x, (int, Fraction)) and not isinstance(x, bool) for x in (a, b))


def key_of(e: Any) -> Any:
    return strip_spans(e)


@attrs.frozen
class _Procedure:
    """A checked procedure: its parameters (name, type, lo, hi, span) and its body as IR
    statements over :class:`ir.Local` parameters, ready to be expanded at each ``do``."""

    name: str
    params: tuple
    body: tuple


@attrs.frozen
class _Function:
    """A checked function: its parameters (name, type, lo, hi, span), its ``let`` bindings
    and result as IR over :class:`ir.Local` parameters, ready to be inlined."""

    name: str
    params: tuple
    lets: tuple
    result: Any
    returns: Any


def _as_ratio(x: Any) -> Any:
    """An int expression as an exact ratio (``x / 1``) where a ratio is declared."""
    return ir.Binary(op="/", left=x, right=ir.Const(value=1, type=INT), type=RATIO)


def static_range(x: Any) -> Optional[tuple[int, int]]:
    """The smallest and largest value an int expression can take, known from its constants
    and declared ranges (None: not known before the event).  Bounds `for i in a..b` and
    the exponent of `pow`; the verifier reads the same bounds."""
    if isinstance(x, ir.Const) and isinstance(x.value, int) and not isinstance(x.value, bool):
        return x.value, x.value
    if isinstance(x, ir.Unary) and x.op == "-":
        # `for i in -5..-1`: a negated bound is as static as the bound
        r = static_range(x.operand)
        return None if r is None else (-r[1], -r[0])
    if isinstance(x, ir.Binary) and x.op in ("+", "-", "*"):
        a, b = static_range(x.left), static_range(x.right)
        if a is None or b is None:
            return None
        if x.op == "+":
            return a[0] + b[0], a[1] + b[1]
        if x.op == "-":
            return a[0] - b[1], a[1] - b[0]
        corners = [p * q for p in a for q in b]
        return min(corners), max(corners)
    if isinstance(x, ir.Builtin) and x.name in ("min", "max") and x.args:
        rs = [static_range(a) for a in x.args]
        if any(r is None for r in rs):
            return None
        pick = min if x.name == "min" else max
        return pick(r[0] for r in rs), pick(r[1] for r in rs)
    t = getattr(x, "type", None)
    if isinstance(t, ir.TInt) and t.lo is not None and t.hi is not None:
        return t.lo, t.hi
    return None


class NotConstant(Exception):
    pass


def const_value(e: Any) -> Any:
    """Evaluate a constant IR expression (literals and arithmetic on them)."""
    if isinstance(e, ir.Const):
        return e.value
    if isinstance(e, ir.ListLit):
        return tuple(const_value(i) for i in e.items)
    if isinstance(e, ir.Unary) and e.op == "-":
        v = const_value(e.operand)
        if not isinstance(v, (int, Fraction)) or isinstance(v, bool):
            raise NotConstant("not a number")
        return -v
    if isinstance(e, ir.Binary) and e.op in "+-*/":
        a, b = const_value(e.left), const_value(e.right)
        if not all(isinstance(v, (int, Fraction)) and not isinstance(v, bool) for v in (a, b)):
            raise NotConstant("not a number")
        if e.op == "+":
            return a + b
        if e.op == "-":
            return a - b
        if e.op == "*":
            r = Fraction(a) * Fraction(b)
        else:
            if b == 0:
                raise NotConstant("division by zero")
            r = Fraction(a) / Fraction(b)
        return int(r) if isinstance(e.type, (ir.TInt, ir.TAmount, ir.TDuration)) and \
            r.denominator == 1 else r
    raise NotConstant()


@attrs.define
class Env:
    """What a name means at one point of a handler."""

    scope: ModuleScope
    locals: dict[str, Any] = attrs.field(factory=dict)
    narrowed: set = attrs.field(factory=set)
    used: set = attrs.field(factory=set)
    in_handler: bool = True
    let_spans: dict[str, Span] = attrs.field(factory=dict)
    # names bound with `var` (reassignable with `set x = ...`)
    vars: set = attrs.field(factory=set)
    # "ensures" inside a handler's postcondition (where `old(...)` is allowed), "old" inside
    # an `old(...)` (which must not nest)
    spec: str = ""
    # inside a `fn` body (pure: no `now`, which its callers pass in)
    in_fn: bool = False

    def child(self) -> "Env":
        return Env(scope=self.scope, locals=dict(self.locals), narrowed=set(self.narrowed),
                   used=self.used, in_handler=self.in_handler, let_spans=self.let_spans,
                   vars=set(self.vars), spec=self.spec, in_fn=self.in_fn)


class Checker:
    def __init__(self, syms: Symbols, diags: Diagnostics,
                 on_expr: Optional[Callable[[ast.Expr, Any], None]] = None):
        self.syms = syms
        self.d = diags
        # Told every checked expression with its typed IR (the language server's hover).
        self.on_expr = on_expr
        self.block_depth = 0
        self.depth_reported = False
        # checked functions: qualified name -> _Function (None: its body has errors)
        self.functions: dict[str, Optional["_Function"]] = {}
        self.fn_stack: list[str] = []  # functions being checked (a call back into one recurses)
        # checked procedures: qualified name -> _Procedure (None: its body has errors)
        self.procedures: dict[str, Optional["_Procedure"]] = {}
        self.proc_stack: list[str] = []  # procedures being checked (a `do` of one recurses)
        # `do`s expanded so far in the handler (or procedure body) being checked
        self.expansions = 0
        self.range_lets = 0  # names for the bounds of `for i in a..b`
        self.declaring: Optional[str] = None  # the asset whose options are being read

    # ------------------------------------------------------------------ types
    def type_of(self, t: ast.TypeRef, env: Env) -> tuple[Any, Any, Any]:
        """(IR type, lo, hi) of a written type."""
        if t.name is None:
            inner, _, _ = self.type_of(t.item, env)
            # an invalid bound is reported once, where the type is declared (check_list_type)
            bound = t.bound if t.bound is not None and 1 <= t.bound <= MAX_LIST_BOUND else None
            return ir.TList(inner=inner, bound=bound), None, None
        name = t.name
        lo = hi = None
        if name in BASE_TYPES:
            typ: Any = BASE_TYPES[name]
        elif name in self.syms.assets:
            asset = self.syms.assets[name]
            if asset.kind == "right":
                self.d.error("E0301", f"`{name}` is a right, not an amount", t.span,
                             hint="hold rights with `grant`; test them with `has`")
                typ = ERR
            else:
                member = self.member_of(name, t.member, env, t.span)
                typ = ERR if member is False else ir.TAmount(asset=name, member=member)
        elif t.member is not None:
            self.d.error("E0743", f"`{name}[...]` names a member of an asset family, and "
                                  f"`{name}` is not one", t.span,
                         hint="declare a family as `asset Token[symbol]: token, ...`")
            typ = ERR
        elif name in self.syms.roles:
            typ = ir.TParty(role=name)
        elif self.qualify(name, env, t.span) in self.syms.records:
            typ = ir.TRecord(record=self.qualify(name, env, t.span))
        else:
            self.d.error("E0201", f"unknown type `{name}`", t.span,
                         hint=self._suggest(name, list(BASE_TYPES) + list(self.syms.assets)
                                            + list(self.syms.roles)
                                            + self.names(self.syms.records)) or None)
            typ = ERR
        if t.lo is not None:
            lo_e, hi_e = self.expr(t.lo, env), self.expr(t.hi, env)
            lo, hi = self.constant(lo_e, t.lo.span), self.constant(hi_e, t.hi.span)
            for e, src in ((lo_e, t.lo), (hi_e, t.hi)):
                if not compatible(typ, e.type):
                    self.d.error("E0301", f"range bound is {show(e.type)}, not {show(typ)}",
                                 src.span)
            if isinstance(typ, ir.TInt) and isinstance(lo, int) and isinstance(hi, int):
                typ = ir.TInt(lo=lo, hi=hi)
            if _ordered(lo, hi) and lo > hi:
                shown = display.value_range(lo, hi, typ, self.decimals)
                self.d.error("E0308", f"empty range {shown}", t.span,
                             hint="the lower bound comes first")
        if t.optional:
            typ = ir.TOptional(inner=typ)
        return typ, lo, hi

    def is_family(self, asset: Optional[str]) -> bool:
        decl = self.syms.assets.get(asset) if asset is not None else None
        return decl is not None and getattr(decl, "key", None) is not None

    def member_of(self, asset: str, e: Optional[ast.Expr], env: Env, span: Span) -> Any:
        """The member expression of ``asset[e]`` (None for an asset that is not a family;
        False, reported, when it is missing or not a constant text or an immutable name)."""
        family = self.is_family(asset)
        if e is None:
            if not family or self.declaring == asset:
                return None
            key = self.syms.assets[asset].key
            self.d.error("E0741", f"`{asset}` is an asset family: say which member", span,
                         hint=f'write `{asset}[{key}]` with a text `{key}` in scope, or '
                              f'`{asset}["USDC"]`')
            return False
        if not family:
            self.d.error("E0743", f"`{asset}[...]` names a member of an asset family, and "
                                  f"`{asset}` is not one", span,
                         hint=f"write `{asset}` alone, or declare `asset {asset}[key]: ...`")
            return False
        if isinstance(e, ast.String):
            why = ir.member_key_error(e.value)
            if why is not None:
                self.d.error("E0744", f"not a member of {asset}: {why}", e.span,
                             hint="a member key is 1 to 64 letters, digits, '_', '.' or '-', "
                                  'like `"USDC"`')
                return False
            return ir.Const(value=e.value, type=TEXT)
        if isinstance(e, ast.Name) and e.id in env.locals and not self.fn_stack:
            t = env.locals[e.id]
            env.used.add(e.id)
            if e.id in env.vars:
                self.d.error("E0742", f"`{e.id}` is a `var`: a member named by it could change "
                                      "between two uses of one amount", e.span,
                             hint=f"bind it once with `let {e.id}_key = {e.id}` and use that")
                return False
            if not isinstance(t, (ir.TText, TError)):
                self.d.error("E0742", f"the member of {asset} is text, not {show(t)}", e.span,
                             hint="name members with text, like a token symbol")
                return False
            env.used.add(e.id)
            return ir.Local(name=e.id, type=TEXT)
        self.d.error("E0742", f"the member of {asset} must be a text constant or a name bound "
                              "to text (an argument, a `let` or a loop variable)", e.span,
                     hint=f"bind it first: `let k = ...` then `{asset}[k]`"
                     + ("; a function's amounts name a constant member" if self.fn_stack
                        else ""))
        return False

    def constant(self, e: Any, span: Span) -> Any:
        try:
            return const_value(e)
        except NotConstant:
            if not isinstance(e.type, TError):
                self.d.error("E0310", "this must be a constant", span,
                             hint="use literals and arithmetic on them")
            return None

    # ------------------------------------------------------------ expressions
    def expr(self, e: ast.Expr, env: Env) -> Any:
        method = getattr(self, "x_" + type(e).__name__)
        out = method(e, env)
        t = out.type
        if isinstance(t, ir.TOptional) and key_of(e) in env.narrowed and attrs.has(type(out)) \
                and "type" in attrs.fields_dict(type(out)):
            out = attrs.evolve(out, type=t.inner)
        if self.on_expr is not None:
            self.on_expr(e, out)
        return out

    def err(self) -> ir.Const:
        return ir.Const(value=None, type=ERR)

    def literal(self, text: str, span: Span) -> Optional[Fraction]:
        """The value of a numeric literal, or None (reported) when it is too long.

        The limit keeps every later step (exact arithmetic, Z3, printing) fast and
        far from Python's int/str conversion limit."""
        digits = text.replace("_", "")
        if len(digits) - digits.count(".") > MAX_LITERAL_DIGITS:
            self.d.error("E0105", f"a number literal of {len(digits):,} digits; literals are "
                                  f"limited to {MAX_LITERAL_DIGITS} digits", span,
                         hint="amounts this large do not fit any ledger; check the value")
            return None
        return Fraction(digits)

    def x_Number(self, e: ast.Number, env: Env) -> Any:
        value = self.literal(e.text, e.span)
        if value is None:
            return self.err()
        if "." in e.text:
            return ir.Const(value=value, type=RATIO)
        return ir.Const(value=int(value), type=INT)

    def x_Percent(self, e: ast.Percent, env: Env) -> Any:
        value = self.literal(e.text, e.span)
        if value is None:
            return self.err()
        return ir.Const(value=value / 100, type=RATIO)

    def x_Index(self, e: ast.Index, env: Env) -> Any:
        if isinstance(e.obj, ast.Quantity) and e.obj.unit in self.syms.assets:
            return self.x_Quantity(e.obj, env, member=e.index, span=e.span)
        if isinstance(e.obj, ast.Name) and e.obj.id in self.syms.assets and \
                e.obj.id not in env.locals:
            self.d.error("E0301", f"`{e.obj.id}[...]` names an asset, not a value", e.span,
                         hint=f"an amount is `5 {e.obj.id}[...]`; a balance is "
                              f"`balance(p, {e.obj.id}[...])`")
            return self.err()
        obj = self.expr(e.obj, env)
        if isinstance(obj.type, ir.TList):
            return self.list_index(obj, e.index, e.span, env)
        if not isinstance(obj.type, TError):
            self.d.error("E0743", f"cannot index {show(obj.type)}", e.span,
                         hint="`xs[i]` is the item at position i of a list; `Token[key]` "
                              "names a member of an asset family")
        return self.err()

    def x_Quantity(self, e: ast.Quantity, env: Env, member: Any = None,
                   span: Optional[Span] = None) -> Any:
        value = self.literal(e.text, e.span)
        if value is None:
            return self.err()
        unit = e.unit
        if member is not None or self.is_family(unit):
            m = self.member_of(unit, member, env, span or e.span)
            if m is False:
                return self.err()
        else:
            m = None
        if unit in self.syms.assets:
            asset = self.syms.assets[unit]
            if asset.kind == "right":
                self.d.error("E0301", f"`{unit}` is a right; it has no amounts", e.span)
                return self.err()
            decimals = self.asset_decimals(unit)
            minor = value * 10 ** decimals
            if minor.denominator != 1:
                self.d.error("E0105", f"{e.text} {unit} is finer than {unit}'s minor unit "
                                      f"({decimals} decimals)", e.span,
                             hint="amounts are whole counts of the minor unit")
                return self.err()
            return ir.Const(value=int(minor), type=ir.TAmount(asset=unit, member=m))
        if unit in DURATION_UNITS:
            secs = value * DURATION_UNITS[unit]
            if secs.denominator != 1:
                self.d.error("E0105", f"{e.text} {unit} is not a whole number of seconds", e.span)
                return self.err()
            return ir.Const(value=int(secs), type=DURATION)
        if unit in RATIO_UNITS:
            return ir.Const(value=value * RATIO_UNITS[unit], type=RATIO)
        self.d.error("E0210", f"unknown unit `{unit}`", e.span,
                     hint="a unit is an asset name, bps, ppm, or seconds/minutes/hours/days/"
                          "weeks" + self._suggest(unit, list(self.syms.assets)
                                                  + list(DURATION_UNITS), lead="; "))
        return self.err()

    def decimals(self, asset: str) -> int:
        """An asset's decimals for printing values (0 for an unknown asset)."""
        return self.asset_decimals(asset) if asset in self.syms.assets else 0

    def asset_decimals(self, name: str) -> int:
        for opt in self.syms.assets[name].options:
            if opt.name == "decimals" and isinstance(opt.value, ast.Number):
                digits = opt.value.text.replace("_", "")
                # an invalid `decimals` is reported by lower; count whole units meanwhile
                ok = digits.isdigit() and len(digits) <= 2 and int(digits) <= 18
                return int(digits) if ok else 0
        return 0

    def x_String(self, e: ast.String, env: Env) -> Any:
        return ir.Const(value=e.value, type=TEXT)

    def x_ListLit(self, e: ast.ListLit, env: Env) -> Any:
        items = tuple(self.expr(i, env) for i in e.items)
        if not items:
            self.d.error("E0301", "an empty list has no item type here", e.span,
                         hint="leave the argument out or give at least one item")
            return self.err()
        t = items[0].type
        for x, src in zip(items[1:], e.items[1:]):
            if not compatible(t, x.type):
                self.d.error("E0301", f"a list of {show(t)} cannot hold {show(x.type)}", src.span)
        if isinstance(t, ir.TParty):
            t = PARTY
        return ir.ListLit(items=items, type=ir.TList(inner=base(t) if isinstance(
            t, ir.TInt) else t))

    def x_PartyLit(self, e: ast.PartyLit, env: Env) -> Any:
        return ir.Const(value=e.name, type=PARTY)

    def x_Name(self, e: ast.Name, env: Env) -> Any:
        name = e.id
        if name in env.locals:
            env.used.add(name)
            return ir.Local(name=name, type=env.locals[name])
        if name == "now":
            if not env.in_handler:
                self.d.error("E0201", "`now` is only known inside a handler", e.span,
                             hint="a function is pure: take the time as a parameter "
                                  "(`at: time`) and pass `now` where it is called"
                             if env.in_fn else None)
                return self.err()
            return ir.Now()
        if name in ("true", "false"):
            return ir.Const(value=name == "true", type=BOOL)
        if name == "none":
            return ir.Const(value=None, type=TNone())
        if name == "clock":
            return ir.Const(value="clock", type=PARTY)
        q = env.scope.q(name)
        if q in self.syms.params:
            return ir.ParamRef(name=q, type=self.param_type(q))
        if q in self.syms.pools:
            self.d.error("E0301", f"`{name}` is a {self.syms.pools[q][0].kind}, an account, "
                                  "not a value", e.span, hint=f"use `balance({name})`")
            return self.err()
        if name in self.syms.assets or name in self.syms.roles or q in self.syms.records:
            self.d.error("E0301", f"`{name}` is a type, not a value", e.span)
            return self.err()
        self.d.error("E0201", f"unknown name `{name}`", e.span,
                     hint=self._suggest(name, [*env.locals, *self.names(self.syms.params),
                                               *self.names(self.syms.pools),
                                               *self.names(self.syms.records),
                                               *self.syms.roles, "now", "clock", "true",
                                               "false", "none"]) or (
                         "a procedure sees only its parameters and the policy's names: pass "
                         f"`{name}` as an argument" if self.proc_stack and not self.fn_stack
                         else None))
        return self.err()

    @staticmethod
    def names(table: Any) -> list[str]:
        """Names of a symbol table as authors write them: `fee` and `gig.fee`."""
        return [*table, *(q.rsplit(".", 1)[-1] for q in table if "." in q)]

    def param_type(self, q: str) -> Any:
        decl, scope = self.syms.params[q]
        t, _, _ = self.type_of(decl.type, Env(scope=scope, in_handler=False))
        return t

    def _suggest(self, name: str, options: list[str], lead: str = "") -> str:
        hint = did_you_mean(name, options)
        return lead + hint if hint else ""

    def x_FieldAccess(self, e: ast.FieldAccess, env: Env) -> Any:
        if isinstance(e.obj, ast.Name) and e.obj.id not in env.locals and \
                e.obj.id in env.scope.aliases:
            sub = env.scope.aliases[e.obj.id]
            return self.x_Name(ast.Name(id=e.name, span=e.span), Env(
                scope=sub, in_handler=env.in_handler))
        obj = self.expr(e.obj, env)
        t = obj.type
        if isinstance(t, TError):
            return self.err()
        if isinstance(t, ir.TOptional):
            self.d.error("E0309", f"`{self.text(e.obj)}` may be none", e.obj.span,
                         hint=f"check it first: `require {self.text(e.obj)} is some`")
            return self.err()
        if isinstance(t, ir.TRecord):
            decl, _scope = self.syms.records[t.record]
            field = next((f for f in decl.fields if f.name == e.name), None)
            if field is None:
                self.d.error("E0207", f"record `{decl.name}` has no field `{e.name}`", e.span,
                             hint=self._suggest(e.name, [f.name for f in decl.fields]) or None)
                return self.err()
            ftype, _, _ = self.type_of(field.type, Env(scope=_scope, in_handler=False))
            key = obj.key if isinstance(obj, ir.RecordRef) else obj
            return ir.RecordField(record=t.record, key=key, field=e.name, type=ftype)
        if isinstance(t, ir.TParty) and not t.role:
            # a party whose role is not known statically (a literal, `party` argument):
            # an attribute name that only one role declares says which role is meant
            holders = [r.name for r in self.syms.roles.values()
                       if any(f.name == e.name for f in r.fields)]
            if len(holders) == 1:
                t = ir.TParty(role=holders[0])
            elif len(holders) > 1:
                self.d.error("E0207", f"`{e.name}` is an attribute of roles "
                                      f"{', '.join(holders)}: which one is meant is unclear",
                             e.span, hint="bind the party with its role, e.g. `by p: Role`")
                return self.err()
        if isinstance(t, ir.TParty) and t.role:
            role = self.syms.roles[t.role]
            attr = next((f for f in role.fields if f.name == e.name), None)
            if attr is None:
                self.d.error("E0207", f"role `{t.role}` has no attribute `{e.name}`", e.span,
                             hint=self._suggest(e.name, [f.name for f in role.fields]) or None)
                return self.err()
            atype, _, _ = self.type_of(attr.type, env)
            return ir.RoleAttr(role=t.role, party=obj, attr=e.name, type=atype)
        self.d.error("E0207", f"a value of type {show(t)} has no field `{e.name}`", e.span,
                     hint="fields belong to records and role attributes to parties with a role"
                     if isinstance(t, ir.TParty) else None)
        return self.err()

    def text(self, e: Any) -> str:
        src = self.syms.sources.get(e.span.file)
        if src is None or e.span.line != e.span.end_line:
            return "…"
        lines = source_lines(src)
        if e.span.line > len(lines):
            return "…"
        line = lines[e.span.line - 1]
        return line[e.span.col - 1:e.span.end_col - 1]

    def x_Unary(self, e: ast.Unary, env: Env) -> Any:
        if e.op == "exists":
            ref = e.operand
            if isinstance(ref, ast.Call) and self.qualify(ref.func, env, ref.span) in \
                    self.syms.records and len(ref.args) >= 1:
                key = self.record_key(ref.args, env, ref.span)
                return ir.Exists(record=self.qualify(ref.func, env, ref.span), key=key)
            self.d.error("E0301", "`exists` takes a record reference like `exists Task(id)`",
                         e.span)
            return self.err()
        operand = self.expr(e.operand, env)
        t = operand.type
        if e.op == "not":
            if not compatible(BOOL, t):
                self.d.error("E0304", f"`not` needs a bool, found {show(t)}", e.operand.span)
            return ir.Unary(op="not", operand=operand, type=BOOL)
        if not is_numeric(t) and not isinstance(t, TError):
            self.d.error("E0301", f"cannot negate {show(t)}", e.span)
        return ir.Unary(op="-", operand=operand, type=t)

    def x_BinOp(self, e: ast.BinOp, env: Env) -> Any:
        op = e.op
        if op in ("and", "or"):
            left = self.expr(e.left, env)
            right_env = env
            if op == "and":
                right_env = env.child()
                self.narrow(e.left, right_env)
            right = self.expr(e.right, right_env)
            for side, src in ((left, e.left), (right, e.right)):
                if not compatible(BOOL, side.type):
                    self.d.error("E0304", f"`{op}` needs bools, found {show(side.type)}",
                                 src.span)
            return ir.Binary(op=op, left=left, right=right, type=BOOL)
        left, right = self.expr(e.left, env), self.expr(e.right, env)
        lt, rt = left.type, right.type
        if isinstance(lt, TError) or isinstance(rt, TError):
            t: Any = BOOL if op in ("==", "!=", "<", "<=", ">", ">=") else ERR
            return ir.Binary(op=op, left=left, right=right, type=t)
        if op in ("==", "!=", "<", "<=", ">", ">="):
            return self.compare(e, op, left, right)
        if op == "+" and isinstance(lt, (ir.TText, ir.TRecord)) and isinstance(
                rt, (ir.TText, ir.TRecord)):
            return self.concat(left, right)
        t = self.arith(e, op, lt, rt)
        return ir.Binary(op=op, left=left, right=right, type=t)

    def concat(self, left: Any, right: Any) -> Any:
        """``a + b`` of texts: one text (constants are joined here)."""
        if isinstance(left, ir.Const) and isinstance(right, ir.Const) and \
                isinstance(left.value, str) and isinstance(right.value, str):
            return ir.Const(value=left.value + right.value, type=TEXT)
        return ir.Builtin(name="concat", args=(left, right), type=TEXT)

    def compare(self, e: ast.BinOp, op: str, left: Any, right: Any) -> Any:
        lt, rt = left.type, right.type
        for t, src in ((lt, e.left), (rt, e.right)):
            if isinstance(t, TFrac):
                self.d.error("E0303", f"a fractional {unit_name(t)} cannot be compared exactly "
                                      "here", src.span, hint="round it with floor(), ceil() or "
                                                             "round() first")
                return ir.Binary(op=op, left=left, right=right, type=BOOL)
        ordered = op not in ("==", "!=")
        num = (ir.TInt, ir.TRatio)
        ok = compatible(lt, rt) or compatible(rt, lt) or (
            isinstance(base(lt), num) and isinstance(base(rt), num))
        if isinstance(lt, ir.TAmount) and isinstance(rt, ir.TAmount) and unit(lt) != unit(rt):
            self.d.error("E0302", f"cannot compare {unit_name(lt)} with {unit_name(rt)}", e.span)
        elif isinstance(lt, TNone) or isinstance(rt, TNone):
            self.d.error("E0301", "compare with none using `is none` / `is some`", e.span)
        elif not ok:
            self.d.error("E0301", f"cannot compare {show(lt)} with {show(rt)}", e.span)
        elif ordered and not isinstance(base(lt), self.ORDERED):
            self.d.error("E0301", f"`{op}` does not order values of type {show(lt)}", e.span)
        return ir.Binary(op=op, left=left, right=right, type=BOOL)

    def arith(self, e: ast.BinOp, op: str, lt: Any, rt: Any) -> Any:
        bl, br = base(lt), base(rt)
        A, F = ir.TAmount, TFrac
        if isinstance(bl, A) and isinstance(br, A) and unit(bl) != unit(br) or (
                isinstance(bl, (A, F)) and isinstance(br, (A, F)) and unit(bl) != unit(br)):
            self.d.error("E0302", f"cannot {'add' if op == '+' else 'combine'} "
                                  f"{unit_name(bl)} and {unit_name(br)}", e.span,
                         hint="amounts of different assets never mix; convert with an "
                              "explicit rate and rounding")
            return ERR
        if op in ("+", "-"):
            if bl == br and isinstance(bl, (ir.TInt, ir.TRatio, A, F, ir.TDuration)):
                return bl
            if {type(bl), type(br)} <= {ir.TInt, ir.TRatio}:
                return RATIO
            if isinstance(bl, (A, F)) and isinstance(br, (A, F)):
                return F(asset=bl.asset, member=bl.member)
            if isinstance(bl, ir.TTime) and isinstance(br, ir.TDuration):
                return TIME
            if op == "+" and isinstance(bl, ir.TDuration) and isinstance(br, ir.TTime):
                return TIME
            if op == "-" and isinstance(bl, ir.TTime) and isinstance(br, ir.TTime):
                return DURATION
        elif op == "*":
            pair = (type(bl), type(br))
            if pair == (ir.TInt, ir.TInt):
                return INT
            if set(pair) <= {ir.TInt, ir.TRatio}:
                return RATIO
            for x, y in ((bl, br), (br, bl)):
                if isinstance(x, A) and isinstance(y, ir.TInt):
                    return x
                if isinstance(x, (A, F)) and isinstance(y, (ir.TRatio, ir.TInt)):
                    return F(asset=x.asset, member=x.member)
                if isinstance(x, ir.TDuration) and isinstance(y, ir.TInt):
                    return DURATION
            if isinstance(bl, (A, F)) and isinstance(br, (A, F)):
                self.d.error("E0301", f"cannot multiply two amounts of {unit_name(bl)}", e.span,
                             hint="multiply an amount by a count or a ratio")
                return ERR
        elif op == "/":
            if isinstance(br, (A, F)) and isinstance(bl, (A, F)):
                return RATIO
            if set((type(bl), type(br))) <= {ir.TInt, ir.TRatio}:
                return RATIO
            if isinstance(bl, (A, F)) and isinstance(br, (ir.TInt, ir.TRatio)):
                return F(asset=bl.asset, member=bl.member)
            if isinstance(bl, ir.TDuration) and isinstance(br, ir.TDuration):
                return RATIO
        hint = None
        if op == "+" and (isinstance(bl, (ir.TText, ir.TRecord)) or isinstance(
                br, (ir.TText, ir.TRecord))):
            hint = ("`+` joins two texts; make the other side text with `text(x)` "
                    "(or `format(x, places)`)")
        self.d.error("E0301", f"cannot apply `{op}` to {show(lt)} and {show(rt)}", e.span,
                     hint=hint)
        return ERR

    def x_CondExpr(self, e: ast.CondExpr, env: Env) -> Any:
        c = self.cond(e.cond, env)
        then_env = env.child()
        self.narrow(e.cond, then_env)
        a = self.expr(e.then, then_env)
        else_env = env.child()
        self.narrow_negated(e.cond, else_env)
        b = self.expr(e.orelse, else_env)
        t = self.join(a.type, b.type)
        if t is None:
            self.d.error("E0301", f"the branches give {show(a.type)} and {show(b.type)}", e.span,
                         hint="both branches of `if ... then ... else ...` need one type")
            t = ERR
        return ir.Cond(cond=c, then=a, orelse=b, type=t)

    def join(self, a: Any, b: Any) -> Any:
        """The type of a value that is either an ``a`` or a ``b`` (None: no such type)."""
        if isinstance(a, TError) or isinstance(b, TError):
            return ERR
        if isinstance(a, TNone) and not isinstance(b, TNone):
            return b if isinstance(b, ir.TOptional) else ir.TOptional(inner=b)
        if isinstance(b, TNone):
            return self.join(b, a)
        if isinstance(a, ir.TAmount) and isinstance(b, ir.TAmount):
            return a if unit(a) == unit(b) else None
        if {type(base(a)), type(base(b))} == {ir.TInt, ir.TRatio}:
            return RATIO
        if isinstance(a, ir.TOptional) or isinstance(b, ir.TOptional):
            inner = self.join(a.inner if isinstance(a, ir.TOptional) else a,
                              b.inner if isinstance(b, ir.TOptional) else b)
            return None if inner is None else ir.TOptional(inner=inner)
        if isinstance(a, ir.TParty) and isinstance(b, ir.TParty):
            return a if a == b else PARTY
        if base(a) == base(b):
            return base(a)
        return None

    def x_IsTest(self, e: ast.IsTest, env: Env) -> Any:
        operand = self.expr(e.operand, env) if e.what in ("some", "none") else None
        if e.what in ("some", "none"):
            t = operand.type
            if not isinstance(t, (ir.TOptional, TError)):
                self.d.warning("W0303", f"`{self.text(e.operand)}` is never none", e.span)
            return ir.Builtin(name="is_" + e.what, args=(operand,), type=BOOL)
        operand = self.expr(e.operand, env)
        if e.what not in self.syms.roles:
            self.d.error("E0201", f"unknown role `{e.what}`", e.span,
                         hint=self._suggest(e.what, [*self.syms.roles, "some", "none"])
                         or "`x is some`, `x is none` or `p is Role`")
            return self.err()
        if not compatible(PARTY, operand.type):
            self.d.error("E0301", f"only parties hold roles, not {show(operand.type)}", e.span)
        return ir.Builtin(name="has_role", args=(operand,), type=BOOL, extra=(e.what,))

    def x_HasRight(self, e: ast.HasRight, env: Env) -> Any:
        party = self.expr(e.party, env)
        if not compatible(PARTY, party.type):
            self.d.error("E0301", f"only parties hold rights, not {show(party.type)}",
                         e.party.span)
        self.right_name(e.right, e.span)
        args = (party,) + ((self.key_expr(e.key, env),) if e.key is not None else ())
        return ir.Builtin(name="has_right", args=args, type=BOOL, extra=(e.right,))

    def right_name(self, name: str, span: Span) -> None:
        asset = self.syms.assets.get(name)
        if asset is None:
            self.d.error("E0201", f"unknown right `{name}`", span,
                         hint=self._suggest(name, [a for a, d in self.syms.assets.items()
                                                   if d.kind == "right"]) or None)
        elif asset.kind != "right":
            self.d.error("E0406", f"`{name}` is a {asset.kind}, not a right", span,
                         hint=f"declare it as `asset {name}: right`")

    def key_expr(self, e: ast.Expr, env: Env) -> Any:
        k = self.expr(e, env)
        if not isinstance(k.type, (ir.TText, ir.TParty, ir.TRecord, TError, ir.TInt)):
            self.d.error("E0301", "a key is text, a party, a record or an int, "
                         f"not {show(k.type)}", e.span)
        return k

    MAX_KEY_PARTS = 8

    def record_key(self, parts: tuple, env: Env, span: Span) -> Any:
        """A record's key: one value, or a composite key of several (``Vote(claim, voter)``),
        which is one text joining its parts (see docs/language.rst, composite keys)."""
        if len(parts) == 1:
            return self.key_expr(parts[0], env)
        if len(parts) > self.MAX_KEY_PARTS:
            self.d.error("E0305", f"a composite key of {len(parts)} parts; a key has at most "
                                  f"{self.MAX_KEY_PARTS}", span,
                         hint="key a record by a few of the parts and use that record's key "
                              "as one part (`Ballot(round, m)` with `round: Round`)")
            return self.err()
        out, kinds = [], []
        for p in parts:
            x = self.expr(p, env)
            t = x.type
            kind = "party" if isinstance(t, ir.TParty) else "int" if isinstance(
                t, ir.TInt) else "text" if isinstance(t, (ir.TText, ir.TRecord, TError)) else None
            out.append(x)
            kinds.append(kind or "text")
            if kind is None:
                self.d.error("E0301", f"a part of a key is text, a party, a record or an int, "
                                      f"not {show(t)}", p.span,
                             hint="make it text first with text(x) or format(x, places)"
                             if not isinstance(t, ir.TOptional) else
                             f"check it first: `require {self.text(p)} is some`")
        # each part's kind says how it is printed (a party with its `@`, an int in digits)
        return ir.Builtin(name="key", args=tuple(out), type=TEXT, extra=tuple(kinds))

    def qualify(self, name: str, env: Env, span: Span) -> str:
        """The program-wide name of a possibly alias-qualified local name."""
        if "." not in name:
            return env.scope.q(name)
        *aliases, local = name.split(".")
        scope = env.scope
        for alias in aliases:
            if alias not in scope.aliases:
                self.d.error("E0201", f"no import named `{alias}`", span,
                             hint=self._suggest(alias, list(scope.aliases)) or None)
                return name
            scope = scope.aliases[alias]
        return scope.q(local)

    def x_Call(self, e: ast.Call, env: Env) -> Any:
        name, args = e.func, e.args
        q = self.qualify(name, env, e.span)
        if q in self.syms.records:
            if not args:
                self.d.error("E0305", f"`{name}(key)` needs a key", e.span)
                return self.err()
            return ir.RecordRef(record=q, key=self.record_key(args, env, e.span),
                                type=ir.TRecord(record=q))
        if q in self.syms.functions:
            return self.call_function(q, e, env)
        if q in self.syms.procedures:
            self.d.error("E0709", f"`{name}` is a procedure: it has no value", e.span,
                         hint=f"run it as a statement, `do {name}(...)`; a value comes from a "
                              "`fn`")
            return self.err()
        fn = getattr(self, "fn_" + name, None)
        if fn is None:
            self.d.error("E0201", f"unknown function `{name}`", e.span,
                         hint=self._suggest(name, [n[3:] for n in dir(self) if n.startswith("fn_")]
                                            + self.names(self.syms.records)
                                            + self.names(self.syms.functions)) or None)
            return self.err()
        return fn(e, env)

    def _args(self, e: ast.Call, env: Env, n: int | tuple[int, ...]) -> Optional[list[Any]]:
        ns = (n,) if isinstance(n, int) else n
        if len(e.args) not in ns:
            want = " or ".join(str(k) for k in ns)
            self.d.error("E0305", f"`{e.func}` takes {want} argument{'s' if ns != (1,) else ''},"
                                  f" got {len(e.args)}", e.span)
            return None
        return [self.expr(a, env) for a in e.args]

    def _round(self, e: ast.Call, env: Env) -> Any:
        args = self._args(e, env, 1)
        if args is None:
            return self.err()
        t = args[0].type
        if isinstance(t, TFrac):
            out: Any = ir.TAmount(asset=t.asset, member=t.member)
        elif isinstance(t, ir.TRatio):
            out = INT
        elif isinstance(t, (ir.TInt, ir.TAmount, TError)):
            out = t
        else:
            self.d.error("E0301", f"`{e.func}` rounds numbers, not {show(t)}", e.span)
            out = ERR
        return ir.Builtin(name=e.func, args=tuple(args), type=out)

    fn_floor = fn_ceil = fn_round = _round

    def _minmax(self, e: ast.Call, env: Env) -> Any:
        if len(e.args) < 2:
            self.d.error("E0305", f"`{e.func}` takes two or more arguments", e.span)
            return self.err()
        args = [self.expr(a, env) for a in e.args]
        t = args[0].type
        for a, src in zip(args[1:], e.args[1:]):
            if isinstance(t, ir.TAmount) and isinstance(a.type, ir.TAmount) and \
                    unit(a.type) != unit(t):
                self.d.error("E0302", f"`{e.func}` of {unit_name(t)} and {unit_name(a.type)}", src.span)
            elif not compatible(t, a.type) and not (is_numeric(t) and is_numeric(a.type)):
                self.d.error("E0301", f"`{e.func}` of {show(t)} and {show(a.type)}", src.span)
            elif isinstance(a.type, ir.TRatio) and isinstance(t, ir.TInt):
                t = RATIO
        if isinstance(t, TFrac) or any(isinstance(a.type, TFrac) for a in args):
            self.d.error("E0303", "round fractional amounts before comparing them", e.span)
        return ir.Builtin(name=e.func, args=tuple(args), type=base(t))

    fn_min = fn_max = _minmax

    def fn_abs(self, e: ast.Call, env: Env) -> Any:
        args = self._args(e, env, 1)
        return ir.Builtin(name="abs", args=tuple(args), type=args[0].type) if args else self.err()

    def fn_isqrt(self, e: ast.Call, env: Env) -> Any:
        args = self._args(e, env, 1)
        if args is None:
            return self.err()
        t = args[0].type
        if not isinstance(t, (ir.TInt, ir.TAmount, TError)):
            self.d.error("E0301", f"`isqrt` takes an int or an amount, not {show(t)}", e.span,
                         hint="isqrt is the floor of the square root of a whole number")
        return ir.Builtin(name="isqrt", args=tuple(args), type=base(t))

    TEXT_KINDS = ((ir.TInt, "int"), (ir.TRatio, "ratio"), (ir.TAmount, "amount"),
                  (ir.TDuration, "duration"), (ir.TTime, "time"), (ir.TParty, "party"),
                  (ir.TText, "text"), (ir.TRecord, "text"), (ir.TBool, "bool"))

    def fn_text(self, e: ast.Call, env: Env) -> Any:
        """``text(x)``: a value as authors write it (``12.50 Credit``, ``5%``, ``30 days``,
        ``@alice``); a text or record key is itself."""
        args = self._args(e, env, 1)
        if args is None:
            return self.err()
        t = args[0].type
        kind = next((k for cls, k in self.TEXT_KINDS if isinstance(t, cls)), None)
        if isinstance(t, TError):
            return self.err()
        if kind is None:
            self.d.error("E0301", f"`text` cannot print {show(t)}", e.args[0].span,
                         hint="text() prints ints, ratios, amounts, times, durations, parties, "
                              "bools and texts; check an optional with `is some` first"
                         if isinstance(t, ir.TOptional) else
                         "text() prints ints, ratios, amounts, times, durations, parties, "
                         "bools and texts")
            return self.err()
        if kind == "text":
            return args[0]
        extra = (kind, t.asset) if isinstance(t, ir.TAmount) else (kind,)
        return ir.Builtin(name="text", args=(args[0],), type=TEXT, extra=extra)

    def fn_format(self, e: ast.Call, env: Env) -> Any:
        """``format(x, places [, group [, suffix]])``: a number as text, rounded half up to
        ``places`` decimals, digits grouped in threes by ``group``, then ``suffix``."""
        if len(e.args) not in (2, 3, 4):
            self.d.error("E0305", f"`format` takes 2 to 4 arguments, got {len(e.args)}", e.span,
                         hint='format(x, places), format(x, 2, ","), format(x, 2, ",", " g")')
            return self.err()
        args = [self.expr(a, env) for a in e.args]
        t = args[0].type
        ok = True
        if isinstance(t, TFrac):
            t = ir.TAmount(asset=t.asset, member=t.member)  # an exact fractional amount formats exactly
        if not isinstance(t, (ir.TInt, ir.TRatio, ir.TAmount, TError)):
            self.d.error("E0301", f"`format` prints numbers and amounts, not {show(t)}",
                         e.args[0].span, hint="use text(x) for other values")
            ok = False
        places = self.constant(args[1], e.args[1].span)
        if places is not None and (not isinstance(places, int) or isinstance(places, bool)
                                   or not 0 <= places <= 18):
            self.d.error("E0308", "the decimal places of `format` must be a whole number "
                                  "within 0..18", e.args[1].span)
            ok = False
        group = ""
        if len(args) > 2:
            g = args[2]
            if not (isinstance(g, ir.Const) and g.value in ("", ",", "_", " ", "'")):
                self.d.error("E0708", "the digit grouping of `format` is one of \"\", \",\", "
                                      "\"_\", \" \" or \"'\"", e.args[2].span,
                             hint="the decimal point is always `.`: formats do not depend on "
                                  "a locale")
                ok = False
            else:
                group = g.value
        suffix: Any = ir.Const(value="", type=TEXT)
        if len(args) > 3:
            suffix = args[3]
            if not isinstance(suffix.type, (ir.TText, TError)):
                self.d.error("E0301", f"the suffix of `format` is text, not {show(suffix.type)}",
                             e.args[3].span)
                ok = False
        if not ok or places is None or isinstance(t, TError):
            return self.err()
        extra = ("amount", t.asset) if isinstance(t, ir.TAmount) else ("number",)
        return ir.Builtin(name="format", args=(args[0], ir.Const(value=places, type=INT),
                                               ir.Const(value=group, type=TEXT), suffix),
                          type=TEXT, extra=extra)

    def fn_sqrt(self, e: ast.Call, env: Env) -> Any:
        """``sqrt(x, d)``: the square root of an int or ratio, rounded down to ``d`` decimals
        (a constant 0..18); an exact ratio."""
        args = self._args(e, env, 2)
        if args is None:
            return self.err()
        t = args[0].type
        if not isinstance(t, (ir.TInt, ir.TRatio, TError)):
            self.d.error("E0301", f"`sqrt` takes an int or a ratio, not {show(t)}", e.args[0].span,
                         hint="for an amount, take the root of `minor(x)` with `isqrt`, or of "
                              "a ratio of amounts")
        d = self.constant(args[1], e.args[1].span)
        if d is not None and (not isinstance(d, int) or isinstance(d, bool) or not 0 <= d <= 18):
            self.d.error("E0308", "the decimals of `sqrt` must be a whole number within 0..18",
                         e.args[1].span, hint="sqrt(x, 6) rounds the root down to 6 decimals")
            return self.err()
        if d is None:
            return self.err()
        return ir.Builtin(name="sqrt", args=(args[0], ir.Const(value=d, type=INT)), type=RATIO)

    def fn_pow(self, e: ast.Call, env: Env) -> Any:
        """``pow(x, n)`` exact; ``pow(x, n, d)``: each of the ``n`` products rounded down
        to ``d`` decimals (a constant 0..18), as fixed-point contracts compute it."""
        args = self._args(e, env, (2, 3))
        if args is None:
            return self.err()
        if len(args) == 3:
            d = self.constant(args[2], e.args[2].span)
            if d is None:
                return self.err()
            if not isinstance(d, int) or isinstance(d, bool) or not 0 <= d <= 18:
                self.d.error("E0308", "the decimals of `pow` must be a whole number within "
                                      "0..18", e.args[2].span,
                             hint="pow(x, n, 18) rounds each step down to 18 decimals")
                return self.err()
            args[2] = ir.Const(value=d, type=INT)
        nt = args[1].type
        if not isinstance(nt, (ir.TInt, TError)):
            self.d.error("E0301", f"the exponent of `pow` is an int, not {show(nt)}",
                         e.args[1].span)
        elif isinstance(nt, ir.TInt):
            r = static_range(args[1])
            if r is None or r[0] < 0 or r[1] > MAX_POW:
                shown = "any int" if r is None else display.value_range(r[0], r[1], INT,
                                                                         self.decimals)
                self.d.error("E0308", f"the exponent of `pow` must lie within 0..{MAX_POW}, "
                                      f"and this one is {shown}", e.args[1].span,
                             hint="use a constant, or an argument or parameter declared "
                                  f"`int within 0..N` (N at most {MAX_POW})")
        t = args[0].type
        if not isinstance(t, (ir.TInt, ir.TRatio, TError)):
            self.d.error("E0301", f"`pow` raises ints or ratios, not {show(t)}", e.span,
                         hint="raise the ratio, then multiply the amount and round")
        if len(args) == 3:
            return ir.Builtin(name="pow", args=tuple(args), type=RATIO)
        return ir.Builtin(name="pow", args=tuple(args), type=base(t))

    def fn_ratio(self, e: ast.Call, env: Env) -> Any:
        args = self._args(e, env, 2)
        if args is None:
            return self.err()
        a, b = args
        if isinstance(a.type, ir.TAmount) and isinstance(b.type, ir.TAmount) and \
                unit(a.type) != unit(b.type):
            self.d.error("E0302", f"ratio of {unit_name(a.type)} to {unit_name(b.type)}", e.span)
        return ir.Binary(op="/", left=a, right=b, type=RATIO)

    def fn_minor(self, e: ast.Call, env: Env) -> Any:
        """``minor(x)``: an amount as the plain count of its minor units (an int).

        Amounts already are such counts at run time, so this only changes the type."""
        args = self._args(e, env, 1)
        if args is None:
            return self.err()
        if not isinstance(args[0].type, (ir.TAmount, TError)):
            self.d.error("E0301", f"`minor` takes an amount, not {show(args[0].type)}", e.span)
            return self.err()
        return attrs.evolve(args[0], type=INT)

    def fn_from_minor(self, e: ast.Call, env: Env) -> Any:
        """``from_minor(n, Asset)``: ``n`` minor units of ``Asset`` (the inverse of minor)."""
        if len(e.args) != 2:
            self.d.error("E0305", "`from_minor` takes a count and an asset: from_minor(n, Credit)",
                         e.span)
            return self.err()
        n = self.expr(e.args[0], env)
        asset, member = self.asset_arg(e.args[1], env)
        if asset is None:
            return self.err()
        if not isinstance(n.type, (ir.TInt, TError)):
            self.d.error("E0301", f"`from_minor` counts minor units with an int, not "
                                  f"{show(n.type)}", e.args[0].span)
            return self.err()
        return attrs.evolve(n, type=ir.TAmount(asset=asset, member=member))

    # ------------------------------------------------------------ bounded lists
    def check_list_type(self, t: ast.TypeRef, typ: Any, field: bool) -> None:
        """Where a type is declared: a list bound is 1..MAX_LIST_BOUND; a record field's
        list must have a bound (state stays bounded) and hold plain values."""
        if t.item is None:
            return
        if t.bound is not None and not 1 <= t.bound <= MAX_LIST_BOUND:
            self.d.error("E0750", f"a list holds 1 to {MAX_LIST_BOUND:,} items; "
                                  f"`max` must be a whole number in that range", t.span)
        elif field and t.bound is None:
            self.d.error("E0751", "a list field needs a bound", t.span,
                         hint=f"say how many items it may hold: "
                              f"`list of {display.type_name(typ.inner)} max 16`")
        if field and isinstance(typ, ir.TList) and isinstance(
                typ.inner, (ir.TList, ir.TOptional, TFrac)):
            self.d.error("E0752", f"a list field holds plain values, not {show(typ.inner)}",
                         t.item.span, hint="keep the items in records of their own and "
                                           "list their keys")
        elif field and t.item.lo is not None:
            self.d.error("E0752", "the items of a list field have no declared range",
                         t.item.span, hint="check each item with `require` before `push`")

    def list_field(self, target: ast.Expr, env: Env, verb: str) -> Any:
        """The bounded list field ``R(k).f`` a statement changes, or None (reported)."""
        x = self.expr(target, env)
        if isinstance(x, ir.RecordField) and isinstance(x.type, ir.TList) and \
                x.type.bound is not None:
            return x
        if not isinstance(x.type, TError):
            self.d.error("E0753", f"`{verb}` changes a list field of a record, not "
                                  f"{show(x.type)}", target.span,
                         hint="declare the field as `list of T max N` and name it as "
                              "`R(key).field`")
        return None

    def list_item(self, lst: Any, t: Any, value: ast.Expr, env: Env, verb: str) -> Any:
        v = self.expr(value, env)
        if isinstance(v.type, TFrac):
            self.d.error("E0303", f"this {v.type.asset} amount may be fractional", value.span,
                         hint="state the rounding: floor(...), ceil(...) or round(...)")
        elif not compatible(t.inner, v.type) or isinstance(v.type, TNone):
            self.d.error("E0301", f"cannot {verb} {show(v.type)} "
                                  f"{'to' if verb == 'push' else 'from'} a list of "
                                  f"{show(t.inner)}", value.span)
        return v

    def s_Push(self, s: ast.Push, env: Env) -> Any:
        f = self.list_field(s.target, env, "push")
        if f is None:
            self.expr(s.value, env)
            return None
        v = self.list_item(f, f.type, s.value, env, "push")
        grown = ir.Builtin(name="push", args=(f, v), type=f.type, extra=(str(f.type.bound),))
        return ir.SetField(record=f.record, key=f.key, field=f.field, value=grown, span=s.span)

    def s_Remove(self, s: ast.Remove, env: Env) -> Any:
        if s.value is None:
            target = s.target
            index_node = getattr(ast, "Index", None)
            if index_node is None or not isinstance(target, index_node):
                self.d.error("E0753", "`remove` takes an item: `remove x from R(k).f` or "
                                      "`remove R(k).f[i]`", target.span)
                return None
            f = self.list_field(target.obj, env, "remove")
            i = self.expr(target.index, env)
            if not isinstance(i.type, (ir.TInt, TError)):
                self.d.error("E0301", f"a list index is an int, not {show(i.type)}",
                             target.index.span)
            if f is None:
                return None
            shorter = ir.Builtin(name="drop", args=(f, i), type=f.type)
        else:
            f = self.list_field(s.target, env, "remove")
            if f is None:
                self.expr(s.value, env)
                return None
            v = self.list_item(f, f.type, s.value, env, "remove")
            shorter = ir.Builtin(name="without", args=(f, v), type=f.type)
        return ir.SetField(record=f.record, key=f.key, field=f.field, value=shorter, span=s.span)

    def list_index(self, obj: Any, index: ast.Expr, span: Span, env: Env) -> Any:
        """``xs[i]``: the item at position ``i`` (from 0) of a list value."""
        i = self.expr(index, env)
        if not isinstance(i.type, (ir.TInt, TError)):
            self.d.error("E0301", f"a list index is an int, not {show(i.type)}", index.span)
        if not isinstance(obj.type, ir.TList):
            return self.err()
        return ir.Builtin(name="item", args=(obj, i), type=obj.type.inner)

    def fit_list(self, want: Any, v: Any, span: Span) -> Any:
        """A list value stored in a field of at most ``want.bound`` items: a longer
        literal is an error here; a value that may be longer is checked when the event runs
        (``fit`` rejects it)."""
        if not (isinstance(want, ir.TList) and want.bound is not None
                and isinstance(v.type, ir.TList)):
            return v
        if isinstance(v, ir.ListLit):
            if len(v.items) > want.bound:
                self.d.error("E0754", f"a list of {len(v.items)} items does not fit a field "
                                      f"of at most {want.bound}", span)
            return attrs.evolve(v, type=want)
        if v.type.bound is not None and v.type.bound <= want.bound:
            return v
        return ir.Builtin(name="fit", args=(v,), type=want, extra=(str(want.bound),))

    def fn_contains(self, e: ast.Call, env: Env) -> Any:
        """``contains(xs, x)``: whether the list holds an item equal to ``x``."""
        args = self._args(e, env, 2)
        if args is None:
            return self.err()
        lst, v = args
        if isinstance(lst.type, ir.TList):
            if not compatible(lst.type.inner, v.type) or isinstance(v.type, TNone):
                self.d.error("E0301", f"a list of {show(lst.type.inner)} never holds "
                                      f"{show(v.type)}", e.args[1].span)
        elif not isinstance(lst.type, TError):
            self.d.error("E0301", f"`contains` takes a list, not {show(lst.type)}",
                         e.args[0].span)
        return ir.Builtin(name="contains", args=(lst, v), type=BOOL)

    def fn_len(self, e: ast.Call, env: Env) -> Any:
        args = self._args(e, env, 1)
        if args is None:
            return self.err()
        if not isinstance(args[0].type, (ir.TList, TError)):
            self.d.error("E0301", f"`len` takes a list, not {show(args[0].type)}", e.span)
        return ir.Builtin(name="len", args=tuple(args), type=INT)

    def fn_old(self, e: ast.Call, env: Env) -> Any:
        """``old(e)``: ``e`` before the handler ran; only in an ``ensures`` clause."""
        if env.spec != "ensures":
            if env.spec == "old":
                self.d.error("E0505", "`old(...)` inside `old(...)`: the inner one already "
                                      "reads the state before the event", e.span,
                             hint="remove the inner `old`")
            else:
                self.d.error("E0504", "`old(...)` is only meaningful in an `ensures` clause",
                             e.span, hint="`old(e)` is `e` before the event; in a handler "
                                          "body, keep the earlier value with `let`")
            return self.err()
        inner = env.child()
        inner.spec = "old"
        args = self._args(e, inner, 1)
        if args is None:
            return self.err()
        return ir.Old(expr=args[0], type=args[0].type)

    def fn_supply(self, e: ast.Call, env: Env) -> Any:
        named = e.args[0].obj if len(e.args) == 1 and isinstance(e.args[0], ast.Index) else \
            (e.args[0] if len(e.args) == 1 else None)
        if not isinstance(named, ast.Name) or named.id not in self.syms.assets:
            self.d.error("E0305", "`supply` takes an asset name, like `supply(Credit)`", e.span)
            return self.err()
        asset, member = self.asset_arg(e.args[0], env)
        if asset is None:
            return self.err()
        # a family member's supply: the member's key is the builtin's argument
        return ir.Builtin(name="supply", args=(member,) if member is not None else (),
                          type=ir.TAmount(asset=asset, member=member), extra=(asset,))

    def fn_balance(self, e: ast.Call, env: Env) -> Any:
        if len(e.args) == 2:
            asset, member = self.asset_arg(e.args[1], env)
            acc = self.account(e.args[0], env, asset, member=member) if asset else None
        elif len(e.args) == 1:
            acc = self.account(e.args[0], env, None)
        else:
            self.d.error("E0305", "`balance` takes an account and, for a party, an asset",
                         e.span, hint="balance(commons), balance(Task(id)), "
                                      "balance(p, Credit)")
            return self.err()
        if acc is None:
            return self.err()
        return ir.AccBalance(account=acc, type=ir.TAmount(asset=acc.asset, member=acc.member))

    def fn_stake(self, e: ast.Call, env: Env) -> Any:
        if len(e.args) != 2:
            self.d.error("E0305", "`stake` takes a party and an asset: stake(p, Credit)", e.span)
            return self.err()
        party = self.expr(e.args[0], env)
        asset, member = self.asset_arg(e.args[1], env)
        if asset is None:
            return self.err()
        if not compatible(PARTY, party.type):
            self.d.error("E0306", f"only parties stake, not {show(party.type)}", e.args[0].span)
        return ir.AccBalance(account=ir.AccStake(party=party, asset=asset, member=member),
                             type=ir.TAmount(asset=asset, member=member))

    def asset_arg(self, e: ast.Expr, env: Env) -> tuple[Optional[str], Any]:
        """``(asset, member)`` of an asset argument: ``Credit``, or ``Token[sym]`` for a
        member of a family (member None otherwise); ``(None, None)`` when reported."""
        index = None
        if isinstance(e, ast.Index) and isinstance(e.obj, ast.Name):
            e, index = e.obj, e.index
        if isinstance(e, ast.Name) and e.id in self.syms.assets:
            if self.syms.assets[e.id].kind == "right":
                self.d.error("E0301", f"`{e.id}` is a right; it has no balance", e.span)
                return None, None
            member = self.member_of(e.id, index, env, e.span)
            if member is False:
                return None, None
            return e.id, member
        if isinstance(e, ast.Name):
            self.d.error("E0201", f"unknown asset `{e.id}`", e.span,
                         hint=self._suggest(e.id, list(self.syms.assets)) or None)
        else:
            self.d.error("E0301", "expected an asset name", e.span)
        return None, None

    def x_Aggregate(self, e: ast.Aggregate, env: Env) -> Any:
        kinds = ["sum", "count", "min", "max", "all", "any", "max_by", "min_by"]
        if e.func not in kinds:
            self.d.error("E0201", f"unknown aggregate `{e.func}`", e.span,
                         hint=self._suggest(e.func, kinds)
                         or "sum, count, min, max, all, any, max_by or min_by")
            return self.err()
        if e.func in ("max_by", "min_by"):
            return self.best(e, env)
        if e.then:
            self.d.error("E0707", f"`then by` orders the items of max_by and min_by; `{e.func}` "
                                  "takes one expression", e.then[0].span,
                         hint=f"remove `then by ...`, or pick an item with max_by/min_by")
            return self.err()
        source, var_type = self.collection(e.source, env)
        inner = env.child()
        inner.locals[e.var] = var_type
        where = self.cond(e.where, inner) if e.where is not None else None
        if where is not None:
            self.narrow(e.where, inner)
        body = self.expr(e.body, inner)
        t = body.type
        if e.func == "count":
            out: Any = INT
        elif e.func in ("all", "any"):
            if not compatible(BOOL, t):
                self.d.error("E0304", f"`{e.func}` needs a condition", e.body.span)
            out = BOOL
        else:
            if not is_numeric(t) or isinstance(t, TFrac):
                self.d.error("E0301", f"`{e.func}` adds numbers or amounts, not {show(t)}",
                             e.body.span)
            out = base(t)
        if source is None:
            return self.err()
        return ir.Aggregate(kind=e.func, var=e.var, source=source, where=where, body=body,
                            type=out)

    # parties (role values) are ordered by their id, as role members are iterated
    ORDERED = (ir.TInt, ir.TRatio, ir.TAmount, ir.TTime, ir.TDuration, ir.TParty)

    def order_key(self, t: Any, what: str, span: Span) -> None:
        """A key that items are ordered by must be a number, amount, time, duration or party."""
        if not isinstance(t, self.ORDERED + (TError,)):
            self.d.error("E0707", f"{what} orders by numbers, amounts, times, durations or "
                                  f"parties, not {show(t)}", span,
                         hint="ties between items are decided by their order in the "
                              "collection (key or party id): no key is needed for that")

    def best(self, e: ast.Aggregate, env: Env) -> Any:
        """``max_by``/``min_by``: the item with the largest/smallest keys (see ir.Best)."""
        source, var_type = self.collection(e.source, env)
        inner = env.child()
        inner.locals[e.var] = var_type
        where = self.cond(e.where, inner) if e.where is not None else None
        if where is not None:
            self.narrow(e.where, inner)
        keys = []
        for k in (e.body, *e.then):
            x = self.expr(k, inner)
            t = x.type
            if isinstance(t, TFrac):
                self.d.error("E0303", f"a fractional {unit_name(t)} cannot be compared exactly here",
                             k.span, hint="round it with floor(), ceil() or round() first")
            else:
                self.order_key(t, f"`{e.func}`", k.span)
            keys.append(x)
        if source is None:
            return self.err()
        return ir.Best(kind=e.func[:3], var=e.var, source=source, where=where,
                       keys=tuple(keys), type=var_type)

    def collection(self, e: ast.Expr, env: Env) -> tuple[Any, Any]:
        if isinstance(e, ast.FieldAccess) and isinstance(e.obj, ast.Name) and \
                e.obj.id not in env.locals and e.obj.id in env.scope.aliases:
            q = self.qualify(f"{e.obj.id}.{e.name}", env, e.span)
            if q in self.syms.records:
                return ir.RecordsOf(record=q), ir.TRecord(record=q)
        if isinstance(e, ast.Name) and e.id not in env.locals:
            if e.id in self.syms.roles:
                return ir.RoleMembers(role=e.id), ir.TParty(role=e.id)
            if e.id == "party":
                return ir.RoleMembers(role=None), PARTY
            q = env.scope.q(e.id)
            if q in self.syms.records:
                return ir.RecordsOf(record=q), ir.TRecord(record=q)
        x = self.expr(e, env)
        if isinstance(x.type, ir.TList):
            return ir.ListItems(expr=x), x.type.inner
        if not isinstance(x.type, TError):
            self.d.error("E0307", f"cannot iterate over {show(x.type)}", e.span,
                         hint="iterate over a role, a record kind or a list")
        return None, ERR

    def cond(self, e: ast.Expr, env: Env) -> Any:
        c = self.expr(e, env)
        if not compatible(BOOL, c.type):
            self.d.error("E0304", f"a condition must be a bool, found {show(c.type)}", e.span)
        return c

    def narrow(self, e: ast.Expr, env: Env) -> None:
        """Record what a true condition proves: `x is some` makes `x` usable."""
        if isinstance(e, ast.BinOp) and e.op == "and":
            self.narrow(e.left, env)
            self.narrow(e.right, env)
        elif isinstance(e, ast.IsTest) and e.what == "some":
            env.narrowed.add(key_of(e.operand))
        elif isinstance(e, ast.BinOp) and e.op == "!=" and isinstance(e.right, ast.Name) and \
                e.right.id == "none":
            env.narrowed.add(key_of(e.left))

    def narrow_negated(self, e: ast.Expr, env: Env) -> None:
        if isinstance(e, ast.BinOp) and e.op == "or":
            self.narrow_negated(e.left, env)
            self.narrow_negated(e.right, env)
        elif isinstance(e, ast.IsTest) and e.what == "none":
            env.narrowed.add(key_of(e.operand))
        elif isinstance(e, ast.Unary) and e.op == "not":
            self.narrow(e.operand, env)

    # --------------------------------------------------------------- accounts
    def account(self, e: Any, env: Env, asset: Optional[str], *, party_ok: bool = True,
                what: str = "account", member: Any = None) -> Optional[Any]:
        """An account expression; ``asset`` is the asset moved (None: take the account's),
        ``member`` its family member's key (an account of a family holds one per member)."""
        acc = self._account(e, env, asset, party_ok=party_ok, what=what)
        if acc is None or member is not None or not self.is_family(acc.asset):
            return attrs.evolve(acc, member=member) if acc is not None and member is not None \
                else acc
        key = self.syms.assets[acc.asset].key
        self.d.error("E0741", f"`{self.text(e)}` holds every member of the {acc.asset} family: "
                              "say which one", e.span,
                     hint=f"balance({self.text(e)}, {acc.asset}[{key}]); move a stated amount "
                          f"(`AMOUNT from ACC`) instead of `rest of`/`all of`")
        return None

    def _account(self, e: Any, env: Env, asset: Optional[str], *, party_ok: bool = True,
                 what: str = "account") -> Optional[Any]:
        if isinstance(e, ast.Name) and e.id not in env.locals:
            q = env.scope.q(e.id)
            if q in self.syms.pools:
                pool = self.syms.pools[q][0]
                if pool.asset not in self.syms.assets:
                    return None  # its unknown asset is reported at the declaration
                if asset is not None and pool.asset != asset:
                    self.d.error("E0404", f"{pool.kind} `{e.id}` holds {pool.asset}, not {asset}",
                                 e.span)
                return ir.AccPool(pool=q, asset=pool.asset)
        if isinstance(e, ast.FieldAccess) and isinstance(e.obj, ast.Name) and \
                e.obj.id in env.scope.aliases and e.obj.id not in env.locals:
            sub = env.scope.aliases[e.obj.id]
            return self._account(ast.Name(id=e.name, span=e.span), Env(scope=sub), asset,
                                 party_ok=party_ok, what=what)
        x = self.expr(e, env)
        t = x.type
        if isinstance(t, TError):
            return None
        if isinstance(t, ir.TRecord):
            decl = self.syms.records[t.record][0]
            if decl.holds is None:
                self.d.error("E0405", f"record `{decl.name}` holds no asset", e.span,
                             hint=f"declare `record {decl.name} holds <Asset> {{ ... }}`")
                return None
            if decl.holds not in self.syms.assets:
                return None  # its unknown asset is reported at the declaration
            if asset is not None and decl.holds != asset:
                self.d.error("E0404", f"record `{decl.name}` holds {decl.holds}, not {asset}",
                             e.span)
            key = x.key if isinstance(x, ir.RecordRef) else x
            return ir.AccEscrow(record=t.record, key=key, asset=decl.holds)
        if isinstance(t, ir.TParty) and party_ok:
            if asset is None:
                self.d.error("E0305", "a party holds many assets: name one, like "
                                      "`balance(p, Credit)`", e.span)
                return None
            return ir.AccParty(party=x, asset=asset)
        if isinstance(t, ir.TOptional):
            self.d.error("E0309", f"`{self.text(e)}` may be none", e.span,
                         hint=f"check it first: `require {self.text(e)} is some`")
            return None
        self.d.error("E0306", f"{show(t)} is not an {what}", e.span,
                     hint="an account is a party, a pool or treasury, or a record that holds "
                          "an asset")
        return None

    def amount(self, e: Any, env: Env) -> tuple[Any, Optional[str]]:
        x = self.expr(e, env)
        t = x.type
        if isinstance(t, ir.TAmount):
            return x, t.asset
        if isinstance(t, TFrac):
            self.d.error("E0303", f"this {unit_name(t)} amount may be fractional", e.span,
                         hint="state the rounding: floor(...), ceil(...) or round(...), "
                              "or distribute it with `split`")
            return x, t.asset
        if not isinstance(t, TError):
            self.d.error("E0301", f"expected an amount, found {show(t)}", e.span,
                         hint="write amounts with their asset, like `5 Credit`")
        return x, None

    def recipient(self, e: Any, env: Env, asset: Optional[str], member: Any = None) -> Any:
        """Who a split pays: a party, or a record (into its escrow, which must hold the
        split asset)."""
        x = self.expr(e, env)
        if isinstance(x.type, ir.TRecord):
            # reports a record that holds no or another asset
            self.account(e, env, asset, member=member)
            return x
        if not isinstance(x.type, (ir.TParty, TError)):
            if isinstance(x.type, ir.TOptional):
                self.d.error("E0309", f"`{self.text(e)}` may be none", e.span,
                             hint=f"check it first: `require {self.text(e)} is some`")
            else:
                self.d.error("E0301", f"a split pays a party or a record's escrow, not "
                                      f"{show(x.type)}", e.span)
        return x

    def party(self, e: Any, env: Env) -> Any:
        x = self.expr(e, env)
        if not isinstance(x.type, (ir.TParty, TError)):
            if isinstance(x.type, ir.TOptional):
                self.d.error("E0309", f"`{self.text(e)}` may be none", e.span,
                             hint=f"check it first: `require {self.text(e)} is some`")
            else:
                self.d.error("E0301", f"expected a party, found {show(x.type)}", e.span)
        return x

    # ------------------------------------------------------------- statements
    def block(self, stmts: tuple, env: Env) -> tuple:
        if not stmts:
            return ()
        self.block_depth += 1
        try:
            if self.block_depth > MAX_BLOCK_DEPTH + 1:  # a handler's own body is level 0
                if self.depth_reported:
                    return ()
                self.depth_reported = True  # once per outermost statement
                self.d.error("E0104", f"statements nested more than {MAX_BLOCK_DEPTH} levels "
                                      "deep", stmts[0].span,
                             notes=("an `else if` chain nests too: each `else if` is one level",),
                             hint="move the inner part into its own handler or flatten the "
                                  "conditions with `and`")
                return ()
            return self._block(stmts, env)
        finally:
            self.block_depth -= 1
            if self.block_depth == 0:
                self.depth_reported = False

    def _block(self, stmts: tuple, env: Env) -> tuple:
        out: list[Any] = []
        dead = False
        for s in stmts:
            if dead:
                self.d.warning("W0301", "this statement can never run", s.span,
                               notes=("an earlier statement in this block always rejects the "
                                      "event",))
                dead = False  # once per block: the rest follows from it
            r = self.stmt(s, env)
            if isinstance(r, tuple):  # a statement that lowers to several (`for i in a..b`)
                out.extend(r)
                r = r[-1] if r else None
            elif r is not None:
                out.append(r)
            if isinstance(r, ir.Reject) or (isinstance(r, ir.Require) and isinstance(
                    r.cond, ir.Const) and r.cond.value is False):
                dead = True
        return tuple(out)

    def stmt(self, s: Any, env: Env) -> Any:
        return getattr(self, "s_" + type(s).__name__)(s, env)

    def s_Require(self, s: ast.Require, env: Env) -> Any:
        c = self.cond(s.cond, env)
        self.narrow(s.cond, env)
        if isinstance(c, ir.Const) and c.value is True:
            self.d.warning("W0303", "this requirement always holds", s.span)
        msg = s.message if s.message is not None else f"requirement failed: {self.text(s.cond)}"
        return ir.Require(cond=c, message=msg, span=s.span)

    def s_Reject(self, s: ast.Reject, env: Env) -> Any:
        return ir.Reject(message=s.message, span=s.span)

    def s_Let(self, s: ast.Let, env: Env) -> Any:
        v = self.expr(s.value, env)
        if isinstance(v.type, TFrac):
            self.d.error("E0303", f"this {unit_name(v.type)} amount may be fractional", s.value.span,
                         hint="state the rounding: floor(...), ceil(...) or round(...)")
        if s.name in env.locals:
            self.d.error("E0202", f"`{s.name}` is already defined here", s.span,
                         hint="pick another name; to change a value, declare it with `var` "
                              "and reassign it with `set`")
        elif env.scope.q(s.name) in self.syms.params or s.name in ("now", "clock", "true",
                                                                     "false", "none"):
            self.d.error("E0408", f"`{s.name}` is read-only: a `let` cannot rebind it", s.span,
                         hint="parameters change only through governance; pick another name")
        if isinstance(v.type, TNone):
            self.d.error("E0301", "cannot bind `none` without a type", s.value.span)
        env.locals[s.name] = v.type
        env.let_spans[s.name] = s.span
        return ir.Let(name=s.name, value=v, span=s.span)

    # ------------------------------------------------- mutable locals and ranges
    VAR_TYPES = (ir.TInt, ir.TRatio, ir.TAmount, ir.TTime, ir.TDuration, ir.TBool, ir.TText,
                 ir.TParty, ir.TRecord)

    def s_Var(self, s: ast.Var, env: Env) -> Any:
        v = self.expr(s.value, env)
        t = v.type
        if isinstance(t, TFrac):
            self.d.error("E0303", f"this {unit_name(t)} amount may be fractional", s.value.span,
                         hint="state the rounding: floor(...), ceil(...) or round(...)")
        elif not isinstance(t, self.VAR_TYPES + (TError,)):
            self.d.error("E0705", f"a `var` cannot hold {show(t) if not isinstance(t, TNone) else 'none'}",
                         s.value.span,
                         hint="a `var` holds a number, amount, time, duration, bool, text, "
                              "party or record key; bind other values with `let`")
            t = ERR
        if s.name in env.locals:
            self.d.error("E0202", f"`{s.name}` is already defined here", s.span,
                         hint="pick another name; an existing `var` is changed with `set`")
        elif env.scope.q(s.name) in self.syms.params or s.name in ("now", "clock", "true",
                                                                     "false", "none"):
            self.d.error("E0408", f"`{s.name}` is read-only: a `var` cannot rebind it", s.span,
                         hint="pick another name")
        # a var changes: its declared range (of an int argument, say) no longer holds
        t = base(t) if isinstance(t, ir.TInt) else t
        env.locals[s.name] = t
        env.vars.add(s.name)
        env.let_spans[s.name] = s.span
        return ir.Var(name=s.name, value=v, span=s.span)

    def s_SetLocal(self, s: ast.SetLocal, env: Env) -> Any:
        span = s.name_span or s.span
        if s.name not in env.locals:
            self.d.error("E0201", f"unknown name `{s.name}`", span,
                         hint=self._suggest(s.name, [n for n in env.locals if n in env.vars])
                         or f"declare it first: `var {s.name} = ...`")
            self.expr(s.value, env)
            return None
        if s.name not in env.vars:
            self.d.error("E0408", f"`{s.name}` cannot be reassigned: it is not a `var`", span,
                         hint=f"declare it with `var {s.name} = ...` to change it later")
            self.expr(s.value, env)
            return None
        want = env.locals[s.name]
        v = self.expr(s.value, env)
        t = v.type
        if isinstance(t, TFrac):
            self.d.error("E0303", f"this {unit_name(t)} amount may be fractional", s.value.span,
                         hint="state the rounding: floor(...), ceil(...) or round(...)")
        elif isinstance(want, ir.TAmount) and isinstance(t, ir.TAmount) and \
                unit(want) != unit(t):
            self.d.error("E0302", f"`{s.name}` holds {unit_name(want)}, not {unit_name(t)}", s.value.span)
        elif not compatible(want, t) or isinstance(t, TNone):
            self.d.error("E0301", f"`{s.name}` holds {show(want)}, not {show(t)}", s.value.span)
        env.used.add(s.name)
        env.narrowed.discard(key_of(ast.Name(id=s.name, span=span)))
        return ir.SetLocal(name=s.name, value=v, span=s.span)

    MAX_RANGE_ITEMS = 1_000

    def s_ForRange(self, s: ast.ForRange, env: Env) -> Any:
        lo_x, hi_x = self.expr(s.lo, env), self.expr(s.hi, env)
        ok = True
        for x, src in ((lo_x, s.lo), (hi_x, s.hi)):
            if not isinstance(x.type, (ir.TInt, TError)):
                self.d.error("E0301", f"a range runs over ints, not {show(x.type)}", src.span)
                ok = False
        lo_r, hi_r = static_range(lo_x), static_range(hi_x)
        if ok and (lo_r is None or hi_r is None) and not isinstance(
                lo_x.type, TError) and not isinstance(hi_x.type, TError):
            which = s.lo if lo_r is None else s.hi
            self.d.error("E0706", f"the range of this loop has no bound known before the "
                                  f"event: `{self.text(which)}` can be any int", which.span,
                         hint="use constants, or an argument or parameter declared "
                              "`int within LO..HI` (every loop in Charter is bounded)")
            ok = False
        first = last = 0
        if ok and lo_r is not None and hi_r is not None:
            first, last = lo_r[0], hi_r[1]
            if last - first + 1 > self.MAX_RANGE_ITEMS:
                rng = ir.Span(file=s.lo.span.file, line=s.lo.span.line, col=s.lo.span.col,
                              end_line=s.hi.span.end_line, end_col=s.hi.span.end_col)
                self.d.error("E0706", f"this loop may run {last - first + 1:,} times; a range "
                                      f"loop runs at most {self.MAX_RANGE_ITEMS:,} times",
                             rng, hint="iterate over records or role members instead, or "
                                          "narrow the declared ranges")
                ok = False
        inner = env.child()
        if s.var in env.locals:
            self.d.error("E0202", f"`{s.var}` is already defined here", s.span,
                         hint="pick another name for the loop variable")
        var_type = ir.TInt(lo=first, hi=last) if ok and last >= first else INT
        inner.locals[s.var] = var_type
        inner.vars.discard(s.var)
        body = self.block(s.body, inner)
        if not ok:
            return None
        if last < first:
            return ()  # statically empty: the loop never runs
        out: list[Any] = []
        conds: list[Any] = []
        loop_var = ir.Local(name=s.var, type=var_type)
        for x, op, static in ((lo_x, ">=", lo_r), (hi_x, "<=", hi_r)):
            if static[0] == static[1]:
                if (op == ">=" and static[0] == first) or (op == "<=" and static[1] == last):
                    continue  # the constant end is the list's own end
            bound = x
            if not isinstance(x, (ir.Const, ir.ParamRef)) and not (
                    isinstance(x, ir.Local) and x.name not in env.vars):
                # evaluated once, before the loop, like the author reads it
                self.range_lets += 1
                name = f"{s.var}${'lo' if op == '>=' else 'hi'}{self.range_lets}"
                out.append(ir.Let(name=name, value=x, span=s.span))
                bound = ir.Local(name=name, type=x.type)
            conds.append(ir.Binary(op=op, left=loop_var, right=bound, type=BOOL))
        where = None
        for c in conds:
            where = c if where is None else ir.Binary(op="and", left=where, right=c, type=BOOL)
        items = tuple(ir.Const(value=i, type=INT) for i in range(first, last + 1))
        source = ir.ListItems(expr=ir.ListLit(items=items, type=ir.TList(inner=INT)))
        out.append(ir.ForEach(var=s.var, var_type=var_type, source=source, where=where,
                              body=body, span=s.span))
        return tuple(out)

    # -------------------------------------------------------------- functions
    def function(self, q: str, span: Span) -> Optional["_Function"]:
        """The checked body of function ``q`` (None when it has errors or recurses)."""
        return self._checked_once(
            "function", q, span, self.fn_stack, self.functions,
            lambda: self._check_function(q, *self.syms.functions[q]),
            hint="functions cannot recurse; iterate with `for i in a..b` or `for each` in a "
                 "handler instead",
            fresh={"block_depth": 0})

    def _checked_once(self, kind: str, q: str, span: Span, stack: list[str],
                      done: dict[str, Any], check: Callable[[], Any], hint: str,
                      fresh: dict[str, Any]) -> Any:
        """``check()``'s result for the function or procedure ``q``, computed once (kept in
        ``done``); None with an E0701 at ``span`` when ``q`` is already on ``stack``, i.e.
        reaches itself.  While ``check`` runs, ``q`` is on ``stack`` and the checker's
        attributes named in ``fresh`` hold the given values (the body is checked as if it
        stood alone); they are restored after."""
        if q in stack:
            cycle = stack[stack.index(q):] + [q]
            self.d.error("E0701", f"{kind} `{q}` calls itself" + (
                f" (through {' -> '.join(cycle)})" if len(cycle) > 2 else ""), span, hint=hint)
            return None
        if q in done:
            return done[q]
        saved = {name: getattr(self, name) for name in fresh}
        stack.append(q)
        for name, value in fresh.items():
            setattr(self, name, value)
        try:
            done[q] = out = check()
        finally:
            stack.pop()
            for name, value in saved.items():
                setattr(self, name, value)
        return out

    def _check_function(self, q: str, decl: ast.FnDecl, scope: ModuleScope) -> Optional[
            "_Function"]:
        errors_before = sum(1 for x in self.d.items if x.severity == "error")
        env = Env(scope=scope, in_handler=False, in_fn=True)
        params = []
        for p in decl.params:
            t, lo, hi = self.type_of(p.type, env)
            if p.name in env.locals:
                self.d.error("E0202", f"parameter `{p.name}` is declared twice", p.span)
            env.locals[p.name] = t
            params.append((p.name, t, lo, hi, p.span))
        want, _, _ = self.type_of(decl.returns, env)
        if decl.returns.lo is not None:
            self.d.error("E0704", "a function's result type takes no range", decl.returns.span,
                         hint="state the range where the result is stored or checked")
        lets = []
        for st in decl.body[:-1]:
            lets.append(self.s_Let(st, env))
        ret = decl.body[-1]
        result = self.expr(ret.value, env)
        t = result.type
        if isinstance(t, TFrac):
            self.d.error("E0303", f"this {unit_name(t)} amount may be fractional", ret.value.span,
                         hint="state the rounding: floor(...), ceil(...) or round(...)")
        elif isinstance(want, ir.TAmount) and isinstance(t, ir.TAmount) and \
                unit(want) != unit(t):
            self.d.error("E0302", f"function `{decl.name}` returns {unit_name(want)}, not {unit_name(t)}",
                         ret.value.span)
        elif not compatible(want, t):
            self.d.error("E0301", f"function `{decl.name}` returns {show(want)}, not {show(t)}",
                         ret.value.span, hint=f"the declared result type is `{show(want)}`")
        self.warn_unused(env)
        if sum(1 for x in self.d.items if x.severity == "error") > errors_before:
            return None
        if isinstance(want, ir.TRatio) and isinstance(t, ir.TInt):
            result = _as_ratio(result)
        return _Function(name=decl.name, params=tuple(params), lets=tuple(
            (lt.name, lt.value) for lt in lets), result=result, returns=want)

    def arity_ok(self, kind: str, called: str, decl: Any, got: int, span: Any) -> bool:
        """E0305 when a fn or proc is given the wrong number of arguments (the hint shows
        its declaration's head); True when the count is right."""
        n = len(decl.params)
        if got == n:
            return True
        self.d.error("E0305", f"`{called}` takes {n} argument{'s' if n != 1 else ''}, got {got}",
                     span, hint=f"{kind} {decl.name}(" + ", ".join(p.name for p in decl.params)
                     + ")")
        return False

    def call_function(self, q: str, e: ast.Call, env: Env) -> Any:
        decl, _scope = self.syms.functions[q]
        args = [self.expr(a, env) for a in e.args]
        fn = self.function(q, e.span)
        if not self.arity_ok("fn", e.func, decl, len(args), e.span):
            return self.err()
        if fn is None:
            return self.err()
        mapping = self._bind_args(e.func, fn.params, args, e.args)
        if mapping is None:
            return self.err()
        for name, value in fn.lets:
            mapping[name] = inline.substitute(value, mapping)
        out = inline.substitute(fn.result, mapping)
        size = inline.tree_size(out)
        if size > inline.MAX_INLINED_NODES:
            self.d.error("E0702", f"this call of `{e.func}` expands to more than "
                                  f"{inline.MAX_INLINED_NODES:,} expression nodes", e.span,
                         notes=("a call is replaced by the function's body, its arguments "
                                "copied into each use",),
                         hint="bind repeated arguments with `let` before the call, or call the "
                              "function fewer levels deep")
            return self.err()
        return out

    def _bind_args(self, func: str, params: tuple, args: list, srcs: tuple) -> Optional[
            dict[str, Any]]:
        """Arguments checked against parameters (name, type, lo, hi, span), as a mapping from
        parameter name to argument IR; None (after reporting) when one does not fit."""
        mapping: dict[str, Any] = {}
        bad = False
        for (name, t, lo, hi, _sp), a, src in zip(params, args, srcs):
            at = a.type
            if isinstance(at, TError):
                bad = True
                continue
            if isinstance(at, TFrac):
                self.d.error("E0303", f"this {unit_name(at)} amount may be fractional", src.span,
                             hint="state the rounding: floor(...), ceil(...) or round(...)")
                bad = True
            elif isinstance(t, ir.TAmount) and isinstance(at, ir.TAmount) and \
                    unit(t) != unit(at):
                self.d.error("E0302", f"argument `{name}` of `{func}` is {unit_name(t)}, not "
                                      f"{unit_name(at)}", src.span)
                bad = True
            elif not compatible(t, at):
                self.d.error("E0301", f"argument `{name}` of `{func}` is {show(t)}, not "
                                      f"{show(at)}", src.span)
                bad = True
            elif isinstance(t, ir.TInt) and t.lo is not None:
                r = static_range(a)
                if r is None or r[0] < t.lo or r[1] > t.hi:
                    shown = "any int" if r is None else f"{r[0]}..{r[1]}"
                    self.d.error("E0308", f"argument `{name}` of `{func}` must be within "
                                          f"{t.lo}..{t.hi}, and this one is {shown}", src.span,
                                 hint="pass a value whose declared range fits, e.g. an "
                                      f"argument declared `int within {t.lo}..{t.hi}`")
                    bad = True
            if isinstance(t, ir.TRatio) and isinstance(at, ir.TInt):
                a = _as_ratio(a)
            mapping[name] = a
        return None if bad else mapping

    # ------------------------------------------------------------- procedures
    def procedure(self, q: str, span: Span) -> Optional["_Procedure"]:
        """The checked body of procedure ``q`` (None when it has errors or recurses)."""
        return self._checked_once(
            "procedure", q, span, self.proc_stack, self.procedures,
            lambda: self._check_procedure(*self.syms.procedures[q]),
            hint="procedures cannot recurse: each `do` is replaced by the procedure's body; "
                 "iterate with `for i in a..b` or `for each`",
            fresh={"block_depth": 0, "depth_reported": False, "expansions": 0})

    def _check_procedure(self, decl: ast.ProcDecl, scope: ModuleScope) -> Optional[
            "_Procedure"]:
        errors_before = sum(1 for x in self.d.items if x.severity == "error")
        # a handler's context (`now` is the event's time), but only the parameters as locals
        env = Env(scope=scope)
        params = []
        for p in decl.params:
            t, lo, hi = self.type_of(p.type, env)
            self.check_list_type(p.type, t, field=False)
            if p.name in env.locals:
                self.d.error("E0202", f"parameter `{p.name}` is declared twice", p.span)
            env.locals[p.name] = t
            params.append((p.name, t, lo, hi, p.span))
        body = self.block(decl.body, env)
        self.warn_unused(env)
        if sum(1 for x in self.d.items if x.severity == "error") > errors_before:
            return None
        return _Procedure(name=decl.name, params=tuple(params), body=body)

    def warn_unused(self, env: Env) -> None:
        """W0302 for every let bound in ``env`` and never read (``_name`` opts out): the one
        wording for functions, procedures and handlers."""
        for name, sp in env.let_spans.items():
            if name not in env.used and not name.startswith("_"):
                self.d.warning("W0302", f"`{name}` is bound but never used", sp,
                               hint=f"remove it, or name it `_{name}`")

    def s_Do(self, s: ast.Do, env: Env) -> Any:
        q = self.qualify(s.proc, env, s.span)
        args = [self.expr(a, env) for a in s.args]
        if q not in self.syms.procedures:
            if q in self.syms.functions:
                self.d.error("E0709", f"`{s.proc}` is a function: `do` runs a procedure",
                             s.span, hint=f"use its value, e.g. `let x = {s.proc}(...)`")
            else:
                self.d.error("E0201", f"unknown procedure `{s.proc}`", s.span,
                             hint=self._suggest(s.proc, self.names(self.syms.procedures)) or (
                                 "declare it: `proc " + s.proc + "(...) { ... }`"))
            return ()
        decl, _scope = self.syms.procedures[q]
        if not self.arity_ok("proc", s.proc, decl, len(args), s.span):
            return ()
        proc = self.procedure(q, s.span)
        if proc is None:
            return ()
        mapping = self._bind_args(s.proc, proc.params, args, s.args)
        if mapping is None:
            return ()
        names = tuple(p[0] for p in proc.params)
        self.expansions += 1
        out = procs.expand(decl.name, names, proc.body, tuple(mapping[n] for n in names),
                           s.span, self.expansions)
        if self.block_depth + procs.depth(proc.body) > MAX_BLOCK_DEPTH + 1:
            self.d.error("E0104", f"`do {s.proc}` nests statements more than {MAX_BLOCK_DEPTH} "
                                  "levels deep", s.span,
                         notes=("a `do` is replaced by the procedure's body, at the depth of "
                                "the `do`",),
                         hint="call it from a shallower place, or flatten its conditions")
            return ()
        if inline.tree_size(out, procs.MAX_EXPANDED_NODES) > procs.MAX_EXPANDED_NODES:
            self.d.error("E0702", f"`do {s.proc}` expands to more than "
                                  f"{procs.MAX_EXPANDED_NODES:,} IR nodes", s.span,
                         notes=("a `do` is replaced by the procedure's body, and each `do` "
                                "inside it by that procedure's body",),
                         hint="share less by `do`, or loop with `for each` instead")
            return ()
        return out

    def _record_target(self, e: Any, env: Env, verb: str) -> tuple[Optional[str], Any]:
        x = self.expr(e, env)
        if isinstance(x.type, ir.TRecord):
            return x.type.record, (x.key if isinstance(x, ir.RecordRef) else x)
        if not isinstance(x.type, TError):
            self.d.error("E0301", f"`{verb}` needs a record, found {show(x.type)}", e.span)
        return None, None

    def _field_values(self, record: str, assigns: tuple, env: Env, span: Span, *,
                      complete: bool) -> tuple:
        decl, scope = self.syms.records[record]
        fields = {f.name: f for f in decl.fields}
        given: dict[str, Any] = {}
        for a in assigns:
            f = fields.get(a.name)
            if f is None:
                self.d.error("E0207", f"record `{decl.name}` has no field `{a.name}`", a.span,
                             hint=self._suggest(a.name, list(fields)) or None)
                continue
            if a.name in given:
                self.d.error("E0202", f"field `{a.name}` is set twice", a.span)
            given[a.name] = self.value_for(f, a.value, env, scope)
        if complete:
            out = []
            for f in decl.fields:
                if f.name in given:
                    out.append((f.name, given[f.name]))
                    continue
                ftype, _, _ = self.type_of(f.type, Env(scope=scope, in_handler=False))
                if f.default is not None:
                    out.append((f.name, self.value_for(f, f.default, Env(
                        scope=scope, in_handler=False), scope)))
                elif isinstance(ftype, ir.TOptional):
                    out.append((f.name, ir.Const(value=None, type=ftype)))
                elif isinstance(ftype, ir.TList):
                    out.append((f.name, ir.ListLit(items=(), type=ftype)))  # starts empty
                else:
                    self.d.error("E0208", f"field `{f.name}` of `{decl.name}` is not set", span,
                                 hint=f"add `{f.name} = ...` or give the field a default")
            return tuple(out)
        return tuple(given.items())

    def value_for(self, f: ast.FieldDecl, value: Any, env: Env, scope: ModuleScope) -> Any:
        ftype, lo, hi = self.type_of(f.type, Env(scope=scope, in_handler=False))
        if isinstance(value, ast.ListLit) and not value.items and isinstance(ftype, ir.TList):
            return ir.ListLit(items=(), type=ftype)  # `[]`: the field's own item type
        v = self.expr(value, env)
        if isinstance(v.type, TFrac):
            self.d.error("E0303", f"this {unit_name(v.type)} amount may be fractional", value.span,
                         hint="state the rounding: floor(...), ceil(...) or round(...)")
        elif isinstance(ftype, ir.TAmount) and isinstance(v.type, ir.TAmount) and \
                unit(ftype) != unit(v.type):
            self.d.error("E0302", f"field `{f.name}` holds {unit_name(ftype)}, not {unit_name(v.type)}",
                         value.span)
        elif not compatible(ftype, v.type):
            self.d.error("E0301", f"field `{f.name}` is {show(ftype)}, not {show(v.type)}",
                         value.span)
        if isinstance(v.type, TNone):
            v = ir.Const(value=None, type=ftype)
        return self.fit_list(ftype, v, value.span)

    def s_SetField(self, s: ast.SetField, env: Env) -> Any:
        obj = s.target.obj
        if isinstance(obj, ast.Name) and obj.id not in env.locals and \
                obj.id in env.scope.aliases:
            self.d.error("E0408", f"`{obj.id}.{s.target.name}` is read-only", s.target.span,
                         hint="an imported policy's parameters are set with `import ... with`")
            return None
        probe = self.expr(obj, env.child()) if not isinstance(obj, ast.Call) else None
        if probe is not None and isinstance(probe.type, ir.TParty):
            self.d.error("E0408", f"role attribute `{s.target.name}` is read-only", s.target.span,
                         hint="role attributes are given when a party is admitted: "
                              "`admit p as Role { attr = ... }`")
            return None
        record, key = self._record_target(s.target.obj, env, "set")
        if record is None:
            return None
        decl, scope = self.syms.records[record]
        f = next((f for f in decl.fields if f.name == s.target.name), None)
        if f is None:
            self.d.error("E0207", f"record `{decl.name}` has no field `{s.target.name}`",
                         s.target.span,
                         hint=self._suggest(s.target.name, [f.name for f in decl.fields]) or None)
            return None
        v = self.value_for(f, s.value, env, scope)
        env.narrowed.discard(key_of(s.target))
        return ir.SetField(record=record, key=key, field=f.name, value=v, span=s.span)

    def s_If(self, s: ast.If, env: Env) -> Any:
        c = self.cond(s.cond, env)
        then_env = env.child()
        self.narrow(s.cond, then_env)
        then = self.block(s.then, then_env)
        else_env = env.child()
        self.narrow_negated(s.cond, else_env)
        orelse = self.block(s.orelse, else_env)
        return ir.If(cond=c, then=then, orelse=orelse, span=s.span)

    def s_ForEach(self, s: ast.ForEach, env: Env) -> Any:
        source, var_type = self.collection(s.source, env)
        inner = env.child()
        inner.locals[s.var] = var_type
        where = None
        if s.where is not None:
            where = self.cond(s.where, inner)
            self.narrow(s.where, inner)
        keys = []
        for k, _down in s.order:
            # keys see the loop variable (narrowed by `where`: they are computed only for
            # items it keeps)
            x = self.expr(k, inner)
            if isinstance(x.type, TFrac):
                self.d.error("E0303", f"a fractional {x.type.asset} cannot be compared exactly "
                                      "here", k.span,
                             hint="round it with floor(), ceil() or round() first")
            else:
                self.order_key(x.type, "`ordered by`", k.span)
            keys.append(x)
        body = self.block(s.body, inner)
        if source is None:
            return None
        return ir.ForEach(var=s.var, var_type=var_type, source=source, where=where, body=body,
                          span=s.span, keys=tuple(keys),
                          descending=tuple(down for _k, down in s.order))

    def _check_transferable(self, asset: Optional[str], verb: str, span: Span) -> None:
        decl = self.syms.assets.get(asset) if asset is not None else None
        if decl is None:  # none, or an undeclared asset (reported where it is named)
            return
        if decl.kind == "score":
            self.d.error("E0401", f"{asset} is a score: it cannot be moved between accounts "
                                  f"(`{verb}`)",
                         span, hint=f"scores are only minted, burned and decayed; "
                                    f"`mint ... {asset} to p` or `burn ... from p`")

    def _opt(self, asset: Optional[str], name: str) -> bool:
        decl = self.syms.assets.get(asset) if asset is not None else None
        if decl is None:  # none, or an undeclared asset (reported where it is named)
            return True
        return any(o.name == name for o in decl.options)

    def s_Move(self, s: ast.Move, env: Env) -> Any:
        verb = s.verb
        if verb == "refund":
            if isinstance(s.amount, ast.RestOf):
                src = self.account(s.amount.source, env, None)
                if src is None:
                    return None
                amount: Any = ir.AccBalance(account=src, type=ir.TAmount(asset=src.asset))
                asset: Optional[str] = src.asset
                member = None
            else:
                amount, asset = self.amount(s.amount.amount, env)
                member = getattr(amount.type, "member", None)
                src = self.account(s.amount.source, env, asset, member=member)
            dst = self.account(s.dst, env, asset, member=member)
            self._check_transferable(asset, verb, s.span)
        else:
            amount, asset = self.amount(s.amount, env)
            if asset is None:  # already reported; the accounts cannot be checked without it
                return None
            member = getattr(amount.type, "member", None)
            if verb in ("transfer", "escrow", "release"):
                src = self.account(s.src, env, asset, member=member)
                dst = self.account(s.dst, env, asset, member=member)
                if verb == "escrow" and dst is not None and not isinstance(dst, ir.AccEscrow):
                    self.d.error("E0306", "`escrow` moves value into a record", s.dst.span,
                                 hint="escrow AMOUNT from PARTY into Record(key)")
                if verb == "release" and src is not None and not isinstance(src, ir.AccEscrow):
                    self.d.error("E0306", "`release` moves value out of a record", s.src.span)
                self._check_transferable(asset, verb, s.span)
            elif verb == "mint":
                src = ir.AccSupply(asset=asset, member=member) if asset else None
                dst = self.account(s.dst, env, asset, member=member)
                if asset and not self._opt(asset, "mintable"):
                    self.d.error("E0402", f"{asset} has a fixed supply: it cannot be minted",
                                 s.span, hint=f"declare `asset {asset}: ..., mintable` if the "
                                              "community allows issuing it")
            elif verb == "burn":
                src = self.account(s.src, env, asset, member=member)
                dst = ir.AccSupply(asset=asset, member=member) if asset else None
                if asset and not self._opt(asset, "burnable"):
                    self.d.error("E0403", f"{asset} is not burnable", s.span,
                                 hint=f"declare `asset {asset}: ..., burnable`")
            elif verb in ("lock", "unlock", "slash"):
                p = self.party(s.src, env)
                # Staking keeps value with its holder (own account <-> own stake), so a
                # score may be staked; only slashing it *to* another account moves it.
                if verb == "slash" and s.dst is not None:
                    self._check_transferable(asset, verb, s.span)
                if asset is None:
                    return None
                mine = ir.AccParty(party=p, asset=asset, member=member)
                staked = ir.AccStake(party=p, asset=asset, member=member)
                if verb == "lock":
                    src, dst = mine, staked
                elif verb == "unlock":
                    src, dst = staked, mine
                else:
                    src = staked
                    if s.dst is None:
                        dst = ir.AccSupply(asset=asset, member=member)
                        if not self._opt(asset, "burnable"):
                            self.d.error("E0403", f"slashing without `to` burns, and {asset} is "
                                                  "not burnable", s.span,
                                         hint="slash ... of p to <pool>, or make it burnable")
                    else:
                        dst = self.account(s.dst, env, asset, member=member)
            else:  # pragma: no cover - the grammar has no other verbs
                raise AssertionError(verb)
        if asset is None or src is None or dst is None:
            return None
        return ir.Move(kind=verb, amount=amount, asset=asset, src=src, dst=dst, span=s.span,
                       member=src.member if src.member is not None else dst.member)

    def s_Split(self, s: ast.Split, env: Env) -> Any:
        if isinstance(s.source, ast.RestOf):
            src = self.account(s.source.source, env, None)
            if src is None:
                return None
            asset: Optional[str] = src.asset
            amount: Any = ir.AccBalance(account=src, type=ir.TAmount(asset=src.asset))
            member = None
        else:
            amount, asset = self.amount(s.source.amount, env)
            member = getattr(amount.type, "member", None)
            src = self.account(s.source.source, env, asset, member=member)
        self._check_transferable(asset, "split", s.span)
        source, var_type = self.collection(s.among, env)
        inner = env.child()
        inner.locals[s.var] = var_type
        where = None
        if s.where is not None:
            where = self.cond(s.where, inner)
            self.narrow(s.where, inner)
        if s.to is not None:
            to = self.recipient(s.to, inner, asset, member)
        else:
            to = ir.Local(name=s.var, type=var_type)
            if isinstance(var_type, ir.TRecord):
                to = self.recipient(ast.Name(id=s.var, span=s.among.span), inner, asset, member)
            elif not isinstance(var_type, (ir.TParty, TError)):
                self.d.error("E0301", f"split recipients are {show(var_type)}, not parties",
                             s.among.span, hint="say who is paid with `to <party>`")
        weight = self.expr(s.weight, inner)
        if not isinstance(weight.type, (ir.TInt, ir.TAmount, ir.TRatio, TError)):
            self.d.error("E0301", f"a split weight must be an int, an amount or a ratio, not "
                                  f"{show(weight.type)}", s.weight.span)
        method, order, minimum, cap = self._split_options(s, env, asset, member, amount)
        if asset is None or src is None or source is None:
            return None
        return ir.Split(amount=amount, asset=asset, src=src, var=s.var, var_type=var_type,
                        source=source, where=where, to=to, weight=weight, method=method,
                        minimum=minimum, cap=cap, minimum_rule=s.minimum_rule, order=order,
                        span=s.span, member=member)

    def _split_options(self, s: Any, env: Env, asset: Optional[str], member: Any,
                       amount: Any) -> tuple:
        """``(method, order, minimum, cap)`` of a split's options, checked."""
        method = s.rounding or "largest_remainder"
        if method not in ROUNDING_METHODS:
            self.d.error("E0407", f"unknown rounding method `{method}`", s.span,
                         hint="one of " + ", ".join(ROUNDING_METHODS))
        elif s.minimum_rule == "quota" and method not in STATUTORY_METHODS:
            self.d.error("E0409", f"`with minimum` is not defined for `{method}`",
                         s.minimum.span if s.minimum is not None else s.span,
                         notes=("`with minimum m` is a statutory floor under the result: "
                                "recipients below m get m and the others' quotas are "
                                "recomputed, which only quota and divisor methods define",),
                         hint="use `at least` (m paid to everyone first, the rest split by "
                              "weight) or one of " + ", ".join(STATUTORY_METHODS))
        order = s.order or "listed"
        if order not in SPLIT_ORDERS:
            self.d.error("E0409", f"unknown recipient order `{order}`", s.span,
                         hint="`in listed order`, `in key order` or `in weight order`")
        minimum = cap = None
        for bound, name in ((s.minimum, "minimum"), (s.cap, "cap")):
            if bound is None:
                continue
            b, b_asset = self.amount(bound, env)
            if asset and b_asset and (b_asset, strip_spans(b.type.member)) != (
                    asset, strip_spans(member)):
                self.d.error("E0302", f"split of {unit_name(amount.type)} with a {name} in "
                                      f"{unit_name(b.type)}", bound.span)
            if name == "minimum":
                minimum = b
            else:
                cap = b
        return method, order, minimum, cap

    def s_SplitBetween(self, s: ast.SplitBetween, env: Env) -> Any:
        """``split SOURCE between { ACC: W, ... }``: lowered to an ir.Split over the
        positions 0..n-1 of the table, position i paying ``accounts[i]`` with weight W_i."""
        if isinstance(s.source, ast.RestOf):
            src = self.account(s.source.source, env, None)
            if src is None:
                return None
            asset: Optional[str] = src.asset
            amount: Any = ir.AccBalance(account=src, type=ir.TAmount(asset=src.asset))
            member = None
        else:
            amount, asset = self.amount(s.source.amount, env)
            member = getattr(amount.type, "member", None)
            src = self.account(s.source.source, env, asset, member=member)
        self._check_transferable(asset, "split", s.span)
        accounts, weights = [], []
        wtype: Any = None
        for acc_e, w_e in s.shares:
            acc = self.account(acc_e, env, asset, member=member, what="account to split into")
            if isinstance(acc, ir.AccSupply):  # pragma: no cover - not writable as an account
                acc = None
            accounts.append(acc)
            w = self.expr(w_e, env)
            if not isinstance(w.type, (ir.TInt, ir.TAmount, ir.TRatio, TError)):
                self.d.error("E0301", f"a split weight must be an int, an amount or a ratio, "
                                      f"not {show(w.type)}", w_e.span)
            elif wtype is None or isinstance(wtype, TError):
                wtype = base(w.type)
            else:
                joined = self.join(wtype, w.type)
                if joined is None:
                    self.d.error("E0301", f"the weights of one split are of one kind: "
                                          f"{show(wtype)} and {show(w.type)}", w_e.span)
                else:
                    wtype = joined
            weights.append(w)
        method, order, minimum, cap = self._split_options(s, env, asset, member, amount)
        if order == "key":
            self.d.error("E0409", "the accounts of `split ... between` are paid in the order "
                                  "written (or `in weight order`); they have no keys", s.span,
                         hint="write them in the order they should be paid")
        if asset is None or src is None or any(a is None for a in accounts):
            return None
        var = "$share"
        slot = ir.Local(name=var, type=INT)
        weight: Any = weights[-1]
        for i in range(len(weights) - 2, -1, -1):
            weight = ir.Cond(cond=ir.Binary(op="==", left=slot, right=ir.Const(value=i, type=INT),
                                            type=BOOL),
                             then=weights[i], orelse=weight, type=wtype or ERR)
        items = tuple(ir.Const(value=i, type=INT) for i in range(len(accounts)))
        source = ir.ListItems(expr=ir.ListLit(items=items, type=ir.TList(inner=INT)))
        return ir.Split(amount=amount, asset=asset, src=src, var=var, var_type=INT,
                        source=source, where=None, to=slot, weight=weight, method=method,
                        minimum=minimum, cap=cap, minimum_rule=s.minimum_rule, order=order,
                        span=s.span, member=member, accounts=tuple(accounts))

    def s_Grant(self, s: ast.Grant, env: Env) -> Any:
        self.right_name(s.right, s.span)
        key = self.key_expr(s.key, env) if s.key is not None else None
        party = self.party(s.party, env)
        until = None
        if s.until is not None:
            until = self.expr(s.until, env)
            if not compatible(TIME, until.type):
                self.d.error("E0301", f"`until` needs a time, found {show(until.type)}",
                             s.until.span, hint="for example `until now + 30 days`")
        return ir.Grant(right=s.right, key=key, party=party, until=until, span=s.span)

    def s_Revoke(self, s: ast.Revoke, env: Env) -> Any:
        self.right_name(s.right, s.span)
        key = self.key_expr(s.key, env) if s.key is not None else None
        return ir.Revoke(right=s.right, key=key, party=self.party(s.party, env), span=s.span)

    def s_Admit(self, s: ast.Admit, env: Env) -> Any:
        party = self.party(s.party, env)
        role = self.syms.roles.get(s.role)
        if role is None:
            self.d.error("E0201", f"unknown role `{s.role}`", s.span,
                         hint=self._suggest(s.role, list(self.syms.roles)) or None)
            return None
        attrs_out = self.role_attrs(role, s.assigns, env, s.span)
        return ir.Admit(party=party, role=s.role, attrs=attrs_out, span=s.span)

    def role_attrs(self, role: ast.RoleDecl, assigns: tuple, env: Env, span: Span) -> tuple:
        fields = {f.name: f for f in role.fields}
        out = []
        given = {a.name: a for a in assigns}
        for a in assigns:
            if a.name not in fields:
                self.d.error("E0207", f"role `{role.name}` has no attribute `{a.name}`", a.span,
                             hint=self._suggest(a.name, list(fields)) or None)
        for f in role.fields:
            if f.name in given:
                out.append((f.name, self.value_for(f, given[f.name].value, env, env.scope)))
            elif f.default is not None:
                out.append((f.name, self.value_for(f, f.default, env, env.scope)))
            else:
                ftype, _, _ = self.type_of(f.type, env)
                if isinstance(ftype, ir.TOptional):
                    out.append((f.name, ir.Const(value=None, type=ftype)))
                else:
                    self.d.error("E0208", f"attribute `{f.name}` of role `{role.name}` is not "
                                          "set", span)
        return tuple(out)

    def s_Expel(self, s: ast.Expel, env: Env) -> Any:
        if s.role not in self.syms.roles:
            self.d.error("E0201", f"unknown role `{s.role}`", s.span,
                         hint=self._suggest(s.role, list(self.syms.roles)) or None)
            return None
        return ir.Expel(party=self.party(s.party, env), role=s.role, span=s.span)

    def s_Create(self, s: ast.Create, env: Env) -> Any:
        q = self.qualify(s.record, env, s.span)
        if q not in self.syms.records:
            self.d.error("E0201", f"unknown record `{s.record}`", s.span,
                         hint=self._suggest(s.record, self.names(self.syms.records)) or None)
            return None
        key = self.record_key(s.key.parts, env, s.key.span) if isinstance(
            s.key, ast.KeyTuple) else self.key_expr(s.key, env)
        values = self._field_values(q, s.assigns, env, s.span, complete=True)
        return ir.Create(record=q, key=key, values=values, span=s.span)

    def s_Update(self, s: ast.Update, env: Env) -> Any:
        record, key = self._record_target(s.target, env, "update")
        if record is None:
            return None
        values = self._field_values(record, s.assigns, env, s.span, complete=False)
        return ir.Update(record=record, key=key, values=values, span=s.span)

    def s_Delete(self, s: ast.Delete, env: Env) -> Any:
        record, key = self._record_target(s.target, env, "delete")
        if record is None:
            return None
        return ir.Delete(record=record, key=key, span=s.span)

    def s_Decay(self, s: ast.Decay, env: Env) -> Any:
        decl = self.syms.assets.get(s.asset)
        if decl is None:
            self.d.error("E0201", f"unknown asset `{s.asset}`", s.span,
                         hint=self._suggest(s.asset, list(self.syms.assets)) or None)
            return None
        rate = self.decay_rate(decl)
        if rate is None:
            self.d.error("E0211", f"{s.asset} declares no decay", s.span,
                         hint=f"declare `asset {s.asset}: ..., decays 10%`")
            return None
        return ir.Decay(asset=s.asset, rate=rate, span=s.span)

    def decay_rate(self, decl: ast.AssetDecl) -> Optional[Fraction]:
        for o in decl.options:
            if o.name == "decays" and o.value is not None:
                v = self.expr(o.value, Env(scope=self.syms.root, in_handler=False))
                r = self.constant(v, o.value.span)
                if isinstance(r, (Fraction, int)):
                    return Fraction(r)
        return None

    def s_Flag(self, s: ast.Flag, env: Env) -> Any:
        return ir.Flag(party=self.party(s.party, env), message=s.message, span=s.span)

    def s_Dissolve(self, s: ast.Dissolve, env: Env) -> Any:
        return ir.Dissolve(span=s.span)
