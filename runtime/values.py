"""Values at the runtime's edges: event payload conversion, canonical JSON, rejections.

Inside the runtime values are exactly what ``charter.compiler.ir`` says
(ints, Fractions, bools, strs, None, tuples).  This module turns JSON event
arguments into those values (checking them against the handler signature),
turns values back into JSON for the journal and the store, and defines the
internal :class:`Rejected` exception that every failed check raises.

Bounds (documented in ``docs/runtime.rst``; the same for inputs and for every
computed value that reaches the ledger, so every balance stays encodable in
the journal, SQLite and PostgreSQL):

* integers, amounts (in minor units), times and durations: ``|v| <= 2**63 - 1``
  (:data:`MAX_INT`); a ratio's numerator and denominator likewise;
* event ids, party ids and event types: 1..256 characters (:data:`MAX_ID`),
  valid Unicode (no lone surrogates), no control characters;
* text arguments: at most 65,536 characters (:data:`MAX_TEXT`), valid Unicode;
* list arguments: at most 100,000 items (:data:`MAX_LIST`).

Party ids have one canonical form: the name without the ``@`` sigil that
policy source writes (``@ann`` and ``ann`` are the same party).  Events,
parameters (API and ``--param``) and arguments all go through
:func:`canonical_party`; a party id is further required to be NFC-normalised
Unicode so that two spellings can never name two parties.
"""

from __future__ import annotations

import json
import unicodedata
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


MAX_INT = 2**63 - 1
MAX_ID = 256
MAX_TEXT = 65_536
MAX_LIST = 100_000
# a decimal string longer than this cannot be within MAX_INT at any scale


def preview(v: Any, limit: int = 60) -> str:
    """A short, always-printable rendering of any (hostile) input value for messages.

    Never fails: huge ints are described by their size, long strings and
    containers are cut, lone surrogates are escaped, nesting is not followed
    past a few levels."""
    out = _preview(v, 3)
    return out if len(out) <= limit else out[: limit - 3] + "..."


def _preview(v: Any, depth: int) -> str:
    if v is None or isinstance(v, bool):
        return json.dumps(v)
    if isinstance(v, int):
        if v.bit_length() > 200:
            return f"<an integer of about {int(v.bit_length() * 0.30103) + 1} digits>"
        return str(v)
    if isinstance(v, float):
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v[:80], ensure_ascii=True) + ("..." if len(v) > 80 else "")
    if isinstance(v, (list, tuple)):
        if depth <= 0:
            return f"[... {len(v)} items]"
        items = [_preview(x, depth - 1) for x in v[:5]]
        return "[" + ", ".join(items) + (", ..." if len(v) > 5 else "") + "]"
    if isinstance(v, dict):
        if depth <= 0:
            return f"{{... {len(v)} keys}}"
        items = [f"{_preview(k, 0)}: {_preview(x, depth - 1)}" for k, x in list(v.items())[:5]]
        return "{" + ", ".join(items) + (", ..." if len(v) > 5 else "") + "}"
    if isinstance(v, Fraction):
        return show(v) if v.numerator.bit_length() < 200 and v.denominator.bit_length() < 200 else "<a huge ratio>"
    return f"<a {type(v).__name__}>"


def text_problem(v: str, limit: int) -> Optional[str]:
    """Why ``v`` is not acceptable text (too long, lone surrogate), or None."""
    if len(v) > limit:
        return f"text of {len(v)} characters (at most {limit})"
    if not v.isascii():
        try:
            v.encode("utf-8")
        except UnicodeEncodeError:
            return "text with a lone surrogate (not valid Unicode)"
    return None


def id_problem(v: Any) -> Optional[str]:
    """Why ``v`` is not a valid id (event id, party id, event type), or None."""
    if not isinstance(v, str):
        return f"expected text, got {preview(v)}"
    if not v:
        return "expected non-empty text"
    if len(v) <= MAX_ID and v.isascii() and v.isprintable():
        return None
    bad = text_problem(v, MAX_ID)
    if bad:
        return bad + f": {preview(v)}"
    if any(unicodedata.category(c) == "Cc" for c in v):
        return f"text with control characters: {preview(v)}"
    return None


def canonical_party(v: Any, what: str) -> str:
    """A party id in its one canonical form (see the module docstring), or :class:`Rejected`."""
    if type(v) is str and v and v[0] != "@" and len(v) <= MAX_ID and v.isascii() and v.isprintable():
        return v  # the common case: already canonical
    if isinstance(v, str) and v.startswith("@"):
        v = v[1:]
    bad = id_problem(v)
    if bad is None and v.startswith("@"):
        bad = f"a party id has at most one leading '@': {preview(v)}"
    if bad is None and not v.isascii() and not unicodedata.is_normalized("NFC", v):
        bad = f"party id {preview(v)} is not NFC-normalised Unicode (write it in NFC)"
    if bad is not None:
        raise Rejected("bad_party" if what.startswith("event") else "bad_argument", f"{what}: {bad}")
    return v


def bound_problem(v: Any) -> Optional[str]:
    """Why a runtime value exceeds the documented bounds, or None (ints, ratios, lists)."""
    t = type(v)
    if t is int:
        return None if -MAX_INT <= v <= MAX_INT else f"{preview(v)} is outside +-(2**63-1)"
    if v is None or t is bool or t is str:
        return None
    if t is Fraction:
        if -MAX_INT <= v.numerator <= MAX_INT and v.denominator <= MAX_INT:
            return None
        return f"{preview(v)} has a numerator or denominator outside +-(2**63-1)"
    if t is tuple or t is list:
        for x in v:
            bad = bound_problem(x)
            if bad:
                return bad
    return None


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



# A type as the author writes it, in rejection messages: the compiler's one spelling.
type_name = display.type_name


class Converter:
    """Converts JSON payload values to runtime values for one policy."""

    def __init__(self, policy: ir.Policy):
        self.decimals = ir.AssetMap((a.name, a.decimals) for a in policy.assets)

    def convert(self, t: ir.Type, v: Any, what: str, state: Any = None) -> Any:
        """Convert ``v`` to type ``t``; raise :class:`Rejected` (``bad_argument``) if it won't fit.

        ``state`` (the runtime state) is used to check role membership and record existence.
        Any Python/JSON value may come in; the result is always within the bounds
        (:data:`MAX_INT`, :data:`MAX_TEXT`, ...) and every message names ``what``.
        """

        def bad(expect: str) -> Rejected:
            return Rejected("bad_argument", f"{what}: expected {expect}, got {preview(v)}")

        if isinstance(t, ir.TOptional):
            return None if v is None else self.convert(t.inner, v, what, state)
        if v is None:
            raise bad(type_name(t))
        if isinstance(t, (ir.TInt, ir.TTime, ir.TDuration)):
            if isinstance(v, bool) or not isinstance(v, int):
                # the one convention (charter.compiler.units): "2 days", "7200", "42"
                try:
                    v = units.read(t, v)
                except (units.UnitError, ValueError):
                    raise bad(units.expected(t)) from None
            v = int(v)
            _check_bound(v, what)
            if isinstance(t, ir.TInt):
                check_range(v, t.lo, t.hi, what)
            return v
        if isinstance(t, ir.TAmount):
            if isinstance(v, bool):
                raise bad(f"an amount of {t.asset}")
            if isinstance(v, int):
                v = int(v)
                _check_bound(v, what)
                return v
            if isinstance(v, str):
                dec = self.decimals.get(t.asset, 0)
                try:
                    out = units.read(t, v, dec)  # "12.50" or "12.50 Credit"
                except (units.UnitError, ValueError):
                    raise bad(units.expected(t, dec)) from None
                _check_bound(out, what)
                return out
            raise bad(f"an amount of {t.asset}")
        if isinstance(t, ir.TBool):
            if not isinstance(v, bool):
                raise bad("true or false")
            return v
        if isinstance(t, ir.TText):
            if not isinstance(v, str):
                raise bad("text")
            problem = text_problem(v, MAX_TEXT)
            if problem:
                raise Rejected("bad_argument", f"{what}: {problem}")
            return str(v)
        if isinstance(t, ir.TRatio):
            r = units.parse_ratio(v)  # the one reader of ratios (compiler/units.py)
            if r is None:
                raise bad('a ratio ("2%", "25 bps", "1/50" or {"num": 1, "den": 50})')
            _check_bound(r, what)
            return r
        if isinstance(t, ir.TParty):
            v = canonical_party(v, what)
            if t.role is not None and state is not None and not state.has_role(v, t.role):
                raise Rejected(
                    "bad_argument", f"{what}: {preview(v)} does not hold the {t.role} role"
                )
            return v
        if isinstance(t, ir.TRecord):
            if not isinstance(v, str):
                raise bad(f"a {t.record} key (text)")
            problem = text_problem(v, MAX_TEXT)
            if problem:
                raise Rejected("bad_argument", f"{what}: {problem}")
            if state is not None and v not in state.records[t.record]:
                raise Rejected("missing_record", f"{what}: no {t.record} with key {preview(v)}")
            return str(v)
        if isinstance(t, ir.TList):
            if not isinstance(v, (list, tuple)):
                raise bad("a list")
            most = MAX_LIST if t.bound is None else min(t.bound, MAX_LIST)
            if len(v) > most:
                raise Rejected(
                    "bad_argument", f"{what}: a list of {len(v)} items (at most {most})"
                )
            return tuple(self.convert(t.inner, x, f"{what}[{i}]", state) for i, x in enumerate(v))
        raise bad(type_name(t))

    def compile(self, t: ir.Type, what: str, lo: Any = None, hi: Any = None) -> Any:
        """A converter for one argument: fast paths for common JSON shapes, else :meth:`convert`.

        ``lo``/``hi`` (the field's declared range) are checked too; the result
        is ``f(value, state) -> converted``.
        """
        slow = self._slow(t, what, lo, hi)
        fast = self.fast_test(t, lo, hi)
        if fast is None:
            return slow
        test, consts = fast
        # no text of the policy becomes code: names (roles, records) are constants in ns
        ns = {**consts, "_slow": slow, "MAX_TEXT": MAX_TEXT}
        test = test.format(**{k: k for k in consts})
        return eval(f"lambda v, state: v if {test} else _slow(v, state)", ns)  # noqa: S307

    def _slow(self, t: ir.Type, what: str, lo: Any, hi: Any) -> Any:
        """The general conversion of one argument, with its range checked."""
        slow = self.convert
        decimals = self.decimals
        if isinstance(t, ir.TInt):
            lo = t.lo if lo is None else (lo if t.lo is None else max(lo, t.lo))
            hi = t.hi if hi is None else (hi if t.hi is None else min(hi, t.hi))
        if lo is None and hi is None:
            return lambda v, state: slow(t, v, what, state)

        def ranged(v: Any, state: Any) -> Any:
            out = slow(t, v, what, state)
            if out is not None:
                check_range(out, lo, hi, what, t, decimals)
            return out

        return ranged

    def fast_test(self, t: ir.Type, lo: Any = None, hi: Any = None) -> Optional[tuple[str, dict]]:
        """The fast path of an argument of type ``t`` as a Python condition on ``v`` (and
        ``state``) that holds only when ``v`` is already its own converted, in-range value:
        ``(template, constants)``, the template naming each constant as ``{NAME}`` (the
        caller picks the name it has in the generated code); None when every value takes
        the general path.

        One definition for :meth:`compile` and the argument converters generated per
        handler (``Runtime.convert_args``)."""
        integral = (ir.TInt, ir.TAmount, ir.TTime, ir.TDuration)
        if isinstance(t, ir.TInt):
            lo = t.lo if lo is None else (lo if t.lo is None else max(lo, t.lo))
            hi = t.hi if hi is None else (hi if t.hi is None else min(hi, t.hi))
        if lo is not None or hi is not None:
            if not isinstance(t, integral) or not all(b is None or type(b) is int for b in (lo, hi)):
                return None
            # an int already within the range is its own value; anything else is converted
            # and checked (and worded) by the general path
            low = max(lo, -MAX_INT) if lo is not None else -MAX_INT
            high = min(hi, MAX_INT) if hi is not None else MAX_INT
            return f"(type(v) is int and {low} <= v <= {high})", {}
        if isinstance(t, integral):
            return f"(type(v) is int and {-MAX_INT} <= v <= {MAX_INT})", {}
        if isinstance(t, ir.TText):
            return "(type(v) is str and v.isascii() and len(v) <= MAX_TEXT)", {}
        if isinstance(t, ir.TParty) and t.role is not None:
            return "(type(v) is str and v in state.roles[{R}])", {"R": t.role}
        if isinstance(t, ir.TRecord):
            return "(type(v) is str and v in state.records[{R}])", {"R": t.record}
        return None


def _check_bound(v: Any, what: str) -> None:
    problem = bound_problem(v)
    if problem:
        raise Rejected("out_of_bounds", f"{what}: {problem}")


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
    if not isinstance(minor, int) or minor.bit_length() > 200:
        return f"{preview(minor)} {asset}"
    sign, mag = ("-" if minor < 0 else ""), abs(minor)
    whole, frac = divmod(mag, 10**decimals)
    return f"{sign}{whole}.{frac:0{decimals}d} {asset}" if decimals else f"{sign}{whole} {asset}"


def show(v: Any) -> str:
    if isinstance(v, int) and not isinstance(v, bool) and v.bit_length() > 200:
        return preview(v)
    if isinstance(v, str) and len(v) > 80:
        return preview(v)
    if isinstance(v, Fraction):
        if v.numerator.bit_length() > 200 or v.denominator.bit_length() > 200:
            return preview(v)
        return f"{v.numerator}/{v.denominator}" if v.denominator != 1 else str(v.numerator)
    return repr(v) if isinstance(v, str) else str(v)
