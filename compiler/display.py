"""Values as authors write them: the one formatter for every message Charter prints.

Inside the compiler and runtime an amount is a count of minor units, a ratio
an exact fraction and a duration a count of seconds.  Authors write
``12.50 Credit``, ``5%`` and ``30 days``; diagnostics, ``charter test``
failures, runtime rejections, ledger commands and ``charter diff`` all print
values through :func:`value` (or the helpers below), so the same value reads
the same everywhere.

Every function here is total: any int (even one past Python's 4,300-digit
str() limit), any Fraction, any type.
"""
from __future__ import annotations

from fractions import Fraction
from typing import Any, Callable, Mapping, Optional, Union

from . import ir

# The longest integer printed in full; a longer one is summarised by its size
# (it can only come from arithmetic on the largest literals, never from a ledger).
MAX_DIGITS = 80

# Units tried from the largest, as in `every 7 days` / `within 1 hour..365 days`.
_DURATION_UNITS = ((86_400, "day"), (3_600, "hour"), (60, "minute"), (1, "second"))

Decimals = Union[Mapping[str, int], Callable[[str], int], "ir.Policy", None]


def integer(n: int) -> str:
    """An int in full, or ``a 5,001-digit number`` when it is absurdly long."""
    if n.bit_length() > MAX_DIGITS * 3.33:
        digits = int(n.bit_length() * 0.30103) + 1
        return f"{'-' if n < 0 else ''}a number of about {digits:,} digits"
    return str(n)


def amount(minor: int, decimals: int, asset: str) -> str:
    """``1250, 2, "Credit"`` -> ``"12.50 Credit"``."""
    if abs(minor).bit_length() > MAX_DIGITS * 3.33:
        return f"{integer(minor)} minor units of {asset}"
    sign, mag = ("-" if minor < 0 else ""), abs(minor)
    whole, frac = divmod(mag, 10**decimals)
    text = f"{whole}.{frac:0{decimals}d}" if decimals else str(whole)
    return f"{sign}{text} {asset}"


def amount_number(minor: int, decimals: int) -> str:
    """``1250, 2`` -> ``"12.50"``: an amount without its asset (ledger tables)."""
    return amount(minor, decimals, "").rstrip()


def ratio(r: Union[Fraction, int]) -> str:
    """``1/20`` -> ``"5%"``, ``1/400`` -> ``"0.25%"``, ``2/21`` -> ``"2/21 (about 9.52%)"``.

    A ratio is shown as a percentage when that is exact with up to four decimals;
    otherwise as the exact fraction with a rounded percentage beside it."""
    r = Fraction(r)
    if max(abs(r.numerator), r.denominator).bit_length() > MAX_DIGITS * 3.33:
        return f"a ratio of {integer(r.numerator)} to {integer(r.denominator)}"
    pct = r * 100
    for places in range(5):
        scaled = pct * 10**places
        if scaled.denominator == 1:
            return _decimal(int(scaled), places) + "%"
    approx = round(pct * 100)  # hundredths of a percent
    return f"{r.numerator}/{r.denominator} (about {_decimal(approx, 2)}%)"


def _decimal(n: int, places: int) -> str:
    sign, mag = ("-" if n < 0 else ""), abs(n)
    if not places:
        return f"{sign}{mag}"
    whole, frac = divmod(mag, 10**places)
    return f"{sign}{whole}.{frac:0{places}d}".rstrip("0").rstrip(".")


def duration(seconds: int) -> str:
    """``2_592_000`` -> ``"30 days"``, ``5400`` -> ``"90 minutes"``, ``1`` -> ``"1 second"``.

    The largest unit that divides the duration exactly, as an author would write it."""
    if abs(seconds).bit_length() > MAX_DIGITS * 3.33:
        return f"{integer(seconds)} seconds"
    for size, unit in _DURATION_UNITS:
        if seconds % size == 0 and (seconds != 0 or size == 1):
            n = seconds // size
            return f"{n} {unit}{'' if abs(n) == 1 else 's'}"
    raise AssertionError(seconds)  # pragma: no cover - size 1 always divides


def time(t: int) -> str:
    """A point in time: the seconds an event's ``at`` gives (``at 5000``)."""
    return integer(t)


def _decimals_of(decimals: Decimals) -> Callable[[str], int]:
    if decimals is None:
        return lambda asset: 0
    if isinstance(decimals, ir.Policy):
        table = ir.AssetMap((a.name, a.decimals) for a in decimals.assets)
        return lambda asset: table.get(asset, 0)
    if callable(decimals):
        return decimals
    table = ir.AssetMap(decimals)
    return lambda asset: table.get(asset, 0)


def value(v: Any, t: Any = None, decimals: Decimals = None) -> str:
    """``v`` of IR type ``t`` as an author writes it.

    ``decimals`` says each asset's decimals: a mapping, a function, or the policy.
    Without a type, the value's Python type decides (a Fraction is a ratio)."""
    if v is None:
        return "none"
    if isinstance(t, ir.TOptional):
        return value(v, t.inner, decimals)
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(t, ir.TAmount) and isinstance(v, int):
        return amount(v, _decimals_of(decimals)(t.asset), t.asset)
    if isinstance(t, ir.TAmount) and isinstance(v, Fraction):  # a fractional amount
        dec = _decimals_of(decimals)(t.asset)
        major = v / 10**dec
        return f"{ratio_plain(major)} {t.asset}"
    if isinstance(t, ir.TRatio) and isinstance(v, (int, Fraction)):
        return ratio(v)
    if isinstance(t, ir.TDuration) and isinstance(v, int):
        return duration(v)
    if isinstance(t, ir.TTime) and isinstance(v, int):
        return time(v)
    if isinstance(t, ir.TParty) and isinstance(v, str):
        return "@" + v
    if isinstance(t, ir.TList) and isinstance(v, (list, tuple)):
        return "[" + ", ".join(value(x, t.inner, decimals) for x in v) + "]"
    if isinstance(v, Fraction):
        return ratio(v) if t is None else ratio_plain(v)
    if isinstance(v, int):
        return integer(v)
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(value(x, None, decimals) for x in v) + "]"
    return str(v)


def ratio_plain(r: Fraction) -> str:
    """An exact number: ``3``, ``2.5`` or ``2/21``."""
    r = Fraction(r)
    if r.denominator == 1:
        return integer(r.numerator)
    for places in range(1, 7):
        scaled = r * 10**places
        if scaled.denominator == 1:
            return _decimal(int(scaled), places)
    if max(abs(r.numerator), r.denominator).bit_length() > MAX_DIGITS * 3.33:
        return f"a ratio of {integer(r.numerator)} to {integer(r.denominator)}"
    return f"{r.numerator}/{r.denominator}"


def value_range(lo: Any, hi: Any, t: Any = None, decimals: Decimals = None) -> str:
    """``lo..hi`` in the type's units: ``1 hour..365 days``, ``0%..20%``."""
    return f"{'…' if lo is None else value(lo, t, decimals)}.." \
           f"{'…' if hi is None else value(hi, t, decimals)}"


def type_name(t: Any) -> str:
    """A type as the author writes it (``Credit``, ``list of Agent``, ``int``)."""
    if isinstance(t, ir.TOptional):
        return type_name(t.inner) + "?"
    if isinstance(t, ir.TList):
        bound = f" max {t.bound}" if getattr(t, "bound", None) is not None else ""
        return "list of " + type_name(t.inner) + bound
    if isinstance(t, ir.TAmount):
        return amount_unit(t)
    if isinstance(t, ir.TParty):
        return t.role or "party"
    if isinstance(t, ir.TRecord):
        return t.record
    names = {ir.TInt: "int", ir.TBool: "bool", ir.TText: "text", ir.TRatio: "ratio",
             ir.TTime: "time", ir.TDuration: "duration", ir.TFrac: "frac"}
    return names.get(type(t), type(t).__name__)


def amount_unit(t: Any) -> str:
    """``Credit``, ``Token[sym]`` or ``Token["USDC"]``: an amount type's asset as written."""
    m = getattr(t, "member", None)
    if m is None:
        return t.asset
    if isinstance(m, ir.Const):
        return f'{t.asset}["{m.value}"]'
    return f"{t.asset}[{getattr(m, 'name', '?')}]"
