"""Values at the runtime's edges: event payload conversion, canonical JSON, rejections.

Inside the runtime values are exactly what ``charter.compiler.ir`` says
(ints, Fractions, bools, strs, None, tuples).  This module turns JSON event
arguments into those values (checking them against the handler signature),
turns values back into JSON for the journal and the store, and defines the
internal :class:`Rejected` exception that every failed check raises.
"""

from __future__ import annotations

import json
import re
from fractions import Fraction
from typing import Any, Optional

from charter.compiler import display, ir, units


class Rejected(Exception):
    """Raised inside evaluation; the engine turns it into a :class:`Rejection`."""

    def __init__(self, code: str, message: str, span: Optional[ir.Span] = None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.span = span


class PolicyNotExecutable(Exception):
    """The IR uses something this runtime cannot execute (a compiler/runtime mismatch)."""


# --------------------------------------------------------------------------
# canonical JSON


def to_json_value(v: Any) -> Any:
    """A value as JSON data; Fractions become ``{"num", "den"}``, tuples lists."""
    if v is None or isinstance(v, (bool, int, str)):
        return v
    if isinstance(v, Fraction):
        if v.denominator == 1:
            return {"num": v.numerator, "den": 1}
        return {"num": v.numerator, "den": v.denominator}
    if isinstance(v, (tuple, list)):
        return [to_json_value(x) for x in v]
    if isinstance(v, dict):
        return {str(k): to_json_value(x) for k, x in v.items()}
    raise TypeError(f"not a runtime value: {v!r}")


def from_json_value(v: Any) -> Any:
    """Inverse of :func:`to_json_value` (lists come back as tuples)."""
    if isinstance(v, dict):
        if set(v) == {"num", "den"}:
            return Fraction(v["num"], v["den"])
        return {k: from_json_value(x) for k, x in v.items()}
    if isinstance(v, list):
        return tuple(from_json_value(x) for x in v)
    return v


def canonical(data: Any) -> str:
    """The one JSON encoding that is hashed: sorted keys, no spaces, UTF-8."""
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


# --------------------------------------------------------------------------
# payload conversion

_DECIMAL = re.compile(r"^-?[0-9]+(\.[0-9]+)?$")
_RATIO_UNITS = {"%": 100, "bps": 10_000, "ppm": 1_000_000}


def type_name(t: ir.Type) -> str:
    if isinstance(t, ir.TInt):
        return "int"
    if isinstance(t, ir.TAmount):
        return t.asset
    if isinstance(t, ir.TParty):
        return t.role or "party"
    if isinstance(t, ir.TRecord):
        return t.record
    if isinstance(t, ir.TOptional):
        return type_name(t.inner) + "?"
    if isinstance(t, ir.TList):
        return "list of " + type_name(t.inner)
    return type(t).__name__[1:].lower()


def parse_decimal(text: str, decimals: int) -> Optional[int]:
    """``"50.25"`` in major units -> minor units, or None if not exact at ``decimals``."""
    text = text.strip().replace("_", "")
    if not _DECIMAL.match(text):
        return None
    neg = text.startswith("-")
    if neg:
        text = text[1:]
    whole, _, frac = text.partition(".")
    if len(frac) > decimals:
        if frac[decimals:].strip("0"):
            return None
        frac = frac[:decimals]
    value = int(whole) * 10**decimals + (int(frac.ljust(decimals, "0")) if decimals else 0)
    return -value if neg else value


def parse_ratio(v: Any) -> Optional[Fraction]:
    if isinstance(v, bool):
        return None
    if isinstance(v, Fraction):
        return v
    if isinstance(v, int):
        return Fraction(v)
    if isinstance(v, dict) and set(v) == {"num", "den"}:
        n, d = v["num"], v["den"]
        if (
            isinstance(n, int)
            and isinstance(d, int)
            and not isinstance(n, bool)
            and d not in (0, False)
        ):
            return Fraction(n, d)
        return None
    if isinstance(v, str):
        s = v.strip()
        for unit, scale in _RATIO_UNITS.items():
            if s.endswith(unit):
                num = s[: -len(unit)].strip()
                if _DECIMAL.match(num):
                    return Fraction(num) / scale
                return None
        if re.match(r"^-?[0-9]+/[0-9]+$", s):
            n, d = s.split("/")
            return Fraction(int(n), int(d)) if int(d) else None
        if _DECIMAL.match(s):
            return Fraction(s)
    return None


class Converter:
    """Converts JSON payload values to runtime values for one policy."""

    def __init__(self, policy: ir.Policy):
        self.decimals = {a.name: a.decimals for a in policy.assets}

    def convert(self, t: ir.Type, v: Any, what: str, state: Any = None) -> Any:
        """Convert ``v`` to type ``t``; raise :class:`Rejected` (``bad_argument``) if it won't fit.

        ``state`` (the runtime state) is used to check role membership and record existence.
        """

        def bad(expect: str) -> Rejected:
            return Rejected("bad_argument", f"{what}: expected {expect}, got {json.dumps(v)}")

        if isinstance(t, ir.TOptional):
            return None if v is None else self.convert(t.inner, v, what, state)
        if v is None:
            raise bad(type_name(t))
        if isinstance(t, (ir.TInt, ir.TTime, ir.TDuration)):
            if isinstance(v, bool) or not isinstance(v, int):
                # the one convention (charter.compiler.units): "2 days", "7200", "42"
                try:
                    v = units.read(t, v)
                except units.UnitError:
                    raise bad(units.expected(t)) from None
            if isinstance(t, ir.TInt):
                check_range(v, t.lo, t.hi, what)
            return v
        if isinstance(t, ir.TAmount):
            if isinstance(v, bool):
                raise bad(f"an amount of {t.asset}")
            if isinstance(v, int):
                return v
            if isinstance(v, str):
                dec = self.decimals.get(t.asset, 0)
                try:
                    return units.read(t, v, dec)  # "12.50" or "12.50 Credit"
                except units.UnitError:
                    raise bad(units.expected(t, dec)) from None
            raise bad(f"an amount of {t.asset}")
        if isinstance(t, ir.TBool):
            if not isinstance(v, bool):
                raise bad("true or false")
            return v
        if isinstance(t, ir.TText):
            if not isinstance(v, str):
                raise bad("text")
            return v
        if isinstance(t, ir.TRatio):
            r = parse_ratio(v)
            if r is None:
                raise bad('a ratio ("2%", "25 bps", "1/50" or {"num": 1, "den": 50})')
            return r
        if isinstance(t, ir.TParty):
            if not isinstance(v, str) or not v:
                raise bad("a party id (text)")
            if t.role is not None and state is not None and not state.has_role(v, t.role):
                raise Rejected("bad_argument", f"{what}: {v} does not hold the {t.role} role")
            return v
        if isinstance(t, ir.TRecord):
            if not isinstance(v, str):
                raise bad(f"a {t.record} key (text)")
            if state is not None and v not in state.records[t.record]:
                raise Rejected("missing_record", f"{what}: no {t.record} with key {v!r}")
            return v
        if isinstance(t, ir.TList):
            if not isinstance(v, (list, tuple)):
                raise bad("a list")
            return tuple(self.convert(t.inner, x, f"{what}[{i}]", state) for i, x in enumerate(v))
        raise bad(type_name(t))

    def compile(self, t: ir.Type, what: str, lo: Any = None, hi: Any = None) -> Any:
        """A converter for one argument: fast paths for common JSON shapes, else :meth:`convert`.

        ``lo``/``hi`` (the field's declared range) are checked too; the result
        is ``f(value, state) -> converted``.
        """
        slow = self.convert
        decimals = self.decimals
        if isinstance(t, ir.TInt):
            lo = t.lo if lo is None else (lo if t.lo is None else max(lo, t.lo))
            hi = t.hi if hi is None else (hi if t.hi is None else min(hi, t.hi))
        if lo is not None or hi is not None:

            def ranged(v: Any, state: Any) -> Any:
                out = slow(t, v, what, state)
                if out is not None:
                    check_range(out, lo, hi, what, t, decimals)
                return out

            if isinstance(t, (ir.TInt, ir.TAmount, ir.TTime, ir.TDuration)) and all(
                b is None or type(b) is int for b in (lo, hi)
            ):
                # an int already within the range is its own value; anything else is
                # converted and checked (and worded) by the general path
                low = lo if lo is not None else -(10**400)
                high = hi if hi is not None else 10**400
                return lambda v, state: (
                    v if type(v) is int and low <= v <= high else ranged(v, state)
                )
            return ranged
        if isinstance(t, (ir.TInt, ir.TAmount, ir.TTime, ir.TDuration)):
            return lambda v, state: v if type(v) is int else slow(t, v, what, state)
        if isinstance(t, ir.TText):
            return lambda v, state: v if type(v) is str else slow(t, v, what, state)
        if isinstance(t, ir.TParty):
            role = t.role
            if role is None:
                return lambda v, state: v if type(v) is str and v else slow(t, v, what, state)
            return lambda v, state: (
                v if type(v) is str and v in state.roles[role] else slow(t, v, what, state)
            )
        if isinstance(t, ir.TRecord):
            rec = t.record
            return lambda v, state: (
                v if type(v) is str and v in state.records[rec] else slow(t, v, what, state)
            )
        return lambda v, state: slow(t, v, what, state)


def check_range(v: Any, lo: Any, hi: Any, what: str, t: Any = None,
                decimals: Any = None) -> None:
    """Refuse ``v`` outside ``lo..hi``, saying so in the policy's units (``t``, ``decimals``:
    the value's type and the assets' decimals, for :func:`charter.compiler.display.value`)."""
    if lo is not None and v < lo:
        raise Rejected("out_of_range", f"{what}: {display.value(v, t, decimals)} is below the "
                                       f"minimum {display.value(lo, t, decimals)}")
    if hi is not None and v > hi:
        raise Rejected("out_of_range", f"{what}: {display.value(v, t, decimals)} is above the "
                                       f"maximum {display.value(hi, t, decimals)}")


def amount_text(minor: int, decimals: int, asset: str) -> str:
    """``3000, 2, "Credit"`` -> ``"30.00 Credit"``: amounts in messages, as authors write them."""
    sign, mag = ("-" if minor < 0 else ""), abs(minor)
    whole, frac = divmod(mag, 10**decimals)
    return f"{sign}{whole}.{frac:0{decimals}d} {asset}" if decimals else f"{sign}{whole} {asset}"


def show(v: Any) -> str:
    if isinstance(v, Fraction):
        return f"{v.numerator}/{v.denominator}" if v.denominator != 1 else str(v.numerator)
    return repr(v) if isinstance(v, str) else str(v)
