"""IR expressions and values back as Charter source, for the ``expect`` lines of a
counterexample's ``test`` block (values as authors write them: ``12.50 Credit``, ``5%``,
``30 days``).  Expressions are fully parenthesised, so precedence never changes meaning.
"""

from __future__ import annotations

import json
from fractions import Fraction
from typing import Any

from .. import ir
from .naming import _show

_DURATIONS = (("weeks", 604800), ("days", 86400), ("hours", 3600), ("minutes", 60))


class NotExpressible(ValueError):
    """The expression uses something a test step cannot spell."""


def duration_literal(seconds: int) -> str:
    """``30 days``, ``90 minutes``, ``0 seconds``: the largest unit that divides exactly."""
    if seconds:
        for unit, n in _DURATIONS:
            if seconds % n == 0:
                return f"{seconds // n} {unit}"
    return f"{seconds} seconds"


def ratio_literal(f: Fraction) -> str:
    for unit, scale in (("%", 100), (" bps", 10_000), (" ppm", 1_000_000)):
        x = f * scale
        if x.denominator == 1:
            return f"{x.numerator}{unit}"
    return f"({f.numerator} / {f.denominator})"


def value_literal(v: Any, t: ir.Type, policy: ir.Policy) -> str:
    """A runtime/payload value of type ``t`` as a Charter literal."""
    if isinstance(t, ir.TOptional):
        return "none" if v is None else value_literal(v, t.inner, policy)
    if v is None:
        return "none"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(t, ir.TAmount):
        return _show(v, t, policy)
    if isinstance(t, ir.TRatio):
        f = Fraction(v["num"], v["den"]) if isinstance(v, dict) else Fraction(v)
        return ratio_literal(f)
    if isinstance(t, ir.TDuration):
        return duration_literal(int(v))
    if isinstance(t, ir.TParty):
        return "@" + str(v)
    if isinstance(t, (ir.TText, ir.TRecord)):
        return json.dumps(v)
    if isinstance(t, ir.TList):
        return "[" + ", ".join(value_literal(x, t.inner, policy) for x in v) + "]"
    if isinstance(t, ir.TFrac):
        raise NotExpressible("a fractional amount constant")
    return str(v)


def _key(record: str, key: Any, policy: ir.Policy, env: dict) -> str:
    return f"{record}({expr_source(key, policy, env)})"


def _account(a: Any, policy: ir.Policy, env: dict) -> str:
    if isinstance(a, ir.AccParty):
        return f"{expr_source(a.party, policy, env)}, {a.asset}"
    if isinstance(a, ir.AccPool):
        return a.pool
    if isinstance(a, ir.AccEscrow):
        k = a.key
        if isinstance(k, ir.Local) and k.name in env:
            return expr_source(k, policy, env)
        return _key(a.record, k, policy, env)
    raise NotExpressible(f"account {type(a).__name__}")


def expr_source(e: Any, policy: ir.Policy, env: dict) -> str:
    """``e`` as Charter source; ``env`` maps a bound variable to ``(record, key)`` (the record
    it stands for) or to a literal text."""
    if isinstance(e, ir.Const):
        return value_literal(e.value, e.type, policy)
    if isinstance(e, ir.Local):
        if e.name in env:
            b = env[e.name]
            return f"{b[0]}({json.dumps(b[1])})" if isinstance(b, tuple) else str(b)
        return e.name  # a variable bound inside the expression (an aggregate's)
    if isinstance(e, ir.ParamRef):
        return e.name
    if isinstance(e, ir.Now):
        return "now"
    if isinstance(e, ir.RecordRef):
        k = e.key
        if isinstance(k, ir.Local) and isinstance(env.get(k.name), tuple):
            return expr_source(k, policy, env)  # already the record (`R(id)`, id: R)
        return _key(e.record, k, policy, env)
    if isinstance(e, ir.RecordField):
        k = e.key
        if (isinstance(k, ir.RecordRef) and k.record == e.record) or (
            isinstance(k, ir.Local) and (k.name in env or isinstance(k.type, ir.TRecord))
        ):
            return f"{expr_source(k, policy, env)}.{e.field}"
        return f"{_key(e.record, k, policy, env)}.{e.field}"
    if isinstance(e, ir.RoleAttr):
        return f"{expr_source(e.party, policy, env)}.{e.attr}"
    if isinstance(e, ir.Exists):
        return f"(exists {_key(e.record, e.key, policy, env)})"
    if isinstance(e, ir.Unary):
        sep = " " if e.op == "not" else ""
        return f"({e.op}{sep}{expr_source(e.operand, policy, env)})"
    if isinstance(e, ir.Binary):
        return f"({expr_source(e.left, policy, env)} {e.op} {expr_source(e.right, policy, env)})"
    if isinstance(e, ir.Cond):
        return (
            f"(if {expr_source(e.cond, policy, env)} then {expr_source(e.then, policy, env)} "
            f"else {expr_source(e.orelse, policy, env)})"
        )
    if isinstance(e, ir.AccBalance):
        a = e.account
        if isinstance(a, ir.AccSupply):
            return f"supply({a.asset})"
        if isinstance(a, ir.AccStake):
            return f"stake({expr_source(a.party, policy, env)}, {a.asset})"
        return f"balance({_account(a, policy, env)})"
    if isinstance(e, ir.Builtin):
        args = [expr_source(a, policy, env) for a in e.args]
        if e.name == "supply":
            return f"supply({e.extra[0]})"
        if e.name == "has_role":
            return f"({args[0]} is {e.extra[0]})"
        if e.name == "is_some":
            return f"({args[0]} is some)"
        if e.name == "is_none":
            return f"({args[0]} is none)"
        if e.name == "some":
            return args[0]
        if e.name == "has_right":
            key = f"[{args[1]}]" if len(args) > 1 else ""
            return f"({args[0]} has {e.extra[0]}{key})"
        if e.name in ("floor", "ceil", "round", "min", "max", "abs", "isqrt", "pow", "len"):
            return f"{e.name}({', '.join(args)})"
        raise NotExpressible(f"built-in {e.name}")
    if isinstance(e, ir.Aggregate):
        src = e.source
        if isinstance(src, ir.RecordsOf):
            coll = src.record
        elif isinstance(src, ir.RoleMembers):
            coll = src.role or "party"  # `for m in party`: every known party
        else:
            raise NotExpressible("an aggregate over this collection")
        inner = dict(env)
        inner.pop(e.var, None)
        where = f" where {expr_source(e.where, policy, inner)}" if e.where is not None else ""
        return f"{e.kind}({expr_source(e.body, policy, inner)} for {e.var} in {coll}{where})"
    if isinstance(e, ir.ListLit):
        return "[" + ", ".join(expr_source(x, policy, env) for x in e.items) + "]"
    raise NotExpressible(type(e).__name__)
