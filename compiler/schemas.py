"""JSON Schemas of Charter values and events: one place for every generator.

The AIGrid export (``compiler/export_aigrid.py``: the PolicyRule's input and
parameter schemas) and ``charter mcp`` (each tool's ``inputSchema``) describe
an event's arguments with these functions, so the two can never disagree.
A schema accepts what the runtime's conversion accepts (``compiler/units.py``:
amounts as integers of minor units or decimal strings in asset units, ratios
as ``"2%"``/``"25 bps"``/``"1/50"``/``{"num", "den"}``, durations and times
as integer seconds), within the declared ranges; what only the live state
can decide (role membership, that a record exists) is stated in the
description and the ``x-charter-*`` keywords, and left to the runtime,
whose rejection names the argument.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any

from . import display, ir

SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
# A ratio argument: "2%", "25 bps", "10 ppm", "1/50", "0.02" (compiler/units.py: parse_ratio).
_RATIO_PATTERN = r"^\s*-?[0-9]+(\.[0-9]+)?\s*(%|bps|ppm)?\s*$|^\s*-?[0-9]+/[0-9]+\s*$"


def json_value(v: Any) -> Any:
    """A constant as event-payload JSON (ratios as ``{"num", "den"}``)."""
    if isinstance(v, Fraction):
        return {"num": v.numerator, "den": v.denominator}
    if isinstance(v, tuple):
        return [json_value(x) for x in v]
    return v


def type_text(t: ir.Type) -> str:
    """The Charter spelling of a type, with int ranges, for descriptions and ``describe``."""
    if isinstance(t, ir.TInt) and (t.lo is not None or t.hi is not None):
        return f"int within {t.lo}..{t.hi}"
    if isinstance(t, ir.TOptional):
        return type_text(t.inner) + "?"
    if isinstance(t, ir.TList):
        bound = f" max {t.bound}" if t.bound is not None else ""
        return "list of " + type_text(t.inner) + bound
    return display.type_name(t)


def _decimal_pattern(decimals: int) -> str:
    frac = rf"(\.[0-9]{{1,{decimals}}})?" if decimals else ""
    return rf"^-?[0-9][0-9_]*{frac}$"


def type_schema(policy: ir.Policy, t: ir.Type, lo: Any = None, hi: Any = None) -> dict[str, Any]:
    """JSON Schema of one value of type ``t`` as it appears in an event payload.

    ``lo``/``hi`` are a declared inclusive range (of a field or parameter),
    in the value's own units.
    """
    if isinstance(t, ir.TOptional):
        inner = type_schema(policy, t.inner, lo, hi)
        return {"anyOf": [inner, {"type": "null"}],
                "description": f"{type_text(t.inner)} or null"}
    if isinstance(t, ir.TList):
        out = {"type": "array", "items": type_schema(policy, t.inner),
               "description": type_text(t)}
        if t.bound is not None:
            out["maxItems"] = t.bound  # `list of T max N`: the runtime refuses more
        return out
    if isinstance(t, (ir.TInt, ir.TTime, ir.TDuration)):
        s: dict[str, Any] = {"type": "integer"}
        if isinstance(t, ir.TInt):
            lo = t.lo if lo is None else lo
            hi = t.hi if hi is None else hi
            s["description"] = type_text(t)
        elif isinstance(t, ir.TTime):
            s["description"] = "time: seconds since the Unix epoch"
        else:
            s["description"] = "duration in seconds"
        if isinstance(lo, int) and not isinstance(lo, bool):
            s["minimum"] = lo
        if isinstance(hi, int) and not isinstance(hi, bool):
            s["maximum"] = hi
        return s
    if isinstance(t, ir.TAmount):
        decimals = next((a.decimals for a in policy.assets if a.name == t.asset), 0)
        as_int: dict[str, Any] = {"type": "integer"}
        if isinstance(lo, int):
            as_int["minimum"] = lo
        if isinstance(hi, int):
            as_int["maximum"] = hi
        return {
            "anyOf": [as_int, {"type": "string", "pattern": _decimal_pattern(decimals)}],
            "description": (f"amount of {t.asset}: an integer of minor units "
                            f"(1 {t.asset} = {10 ** decimals}), or a decimal string in "
                            f"{t.asset} with at most {decimals} decimals"),
            "x-charter-asset": t.asset,
        }
    if isinstance(t, ir.TRatio):
        desc = 'exact ratio: "2%", "25 bps", "10 ppm", "1/50" or {"num": 1, "den": 50}'
        if lo is not None or hi is not None:
            desc += f" (within {_show(lo)}..{_show(hi)})"
        return {"anyOf": [
            {"type": "string", "pattern": _RATIO_PATTERN},
            {"type": "integer"},
            {"type": "object", "required": ["num", "den"], "additionalProperties": False,
             "properties": {"num": {"type": "integer"},
                            "den": {"type": "integer", "not": {"const": 0}}}},
        ], "description": desc}
    if isinstance(t, ir.TBool):
        return {"type": "boolean"}
    if isinstance(t, ir.TText):
        return {"type": "string"}
    if isinstance(t, ir.TParty):
        s = {"type": "string", "minLength": 1,
             "description": "party id (an AIGrid/AgentGrid subject id)"}
        if t.role:
            s["description"] = f"party id of a member of role {t.role}"
            s["x-charter-role"] = t.role
        return s
    if isinstance(t, ir.TRecord):
        return {"type": "string", "description": f"key of an existing {t.record} record",
                "x-charter-record": t.record}
    return {"description": type_text(t)}


def _show(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, Fraction):
        return f"{v.numerator}/{v.denominator}" if v.denominator != 1 else str(v.numerator)
    return str(v)


def auth_text(policy: ir.Policy, h: ir.Handler) -> str:
    """Who may submit a handler's event, in words."""
    a = h.auth
    if isinstance(a, ir.AuthClock):
        return "clock"
    if isinstance(a, ir.AuthRole):
        return f"any member of role {a.role}" if a.role else "any party"
    return f"only {expr_text(a.party)}"


def expr_text(e: Any) -> str:
    """A short Charter-like spelling of the IR expressions a ``by`` clause uses."""
    if isinstance(e, (ir.Local, ir.ParamRef)):
        return e.name
    if isinstance(e, ir.RecordField):
        return f"{e.record}({expr_text(e.key)}).{e.field}"
    if isinstance(e, ir.RoleAttr):
        return f"{expr_text(e.party)}.{e.attr}"
    if isinstance(e, ir.Const):
        return f"@{e.value}" if isinstance(e.type, ir.TParty) else repr(e.value)
    if isinstance(e, ir.Builtin) and e.name == "some" and e.args:
        return expr_text(e.args[0])
    return "the party named by the handler's `by` clause"


def events(policy: ir.Policy) -> list[ir.Handler]:
    """The handlers that are submitted as events (timed handlers fire by themselves)."""
    return [h for h in policy.handlers if h.kind == "event"]


def args_schema(policy: ir.Policy, h: ir.Handler) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {f.name: type_schema(policy, f.type, f.lo, f.hi) for f in h.params},
        # an optional argument may be left out (the runtime reads it as none)
        "required": [f.name for f in h.params if not isinstance(f.type, ir.TOptional)],
        "additionalProperties": False,
    }
