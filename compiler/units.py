"""Reading values from outside a policy: one convention for every entry point.

Event JSON arguments, ``--param NAME=VALUE``, parameters given to ``load_policy`` /
``open_runtime`` and scenario files all read amounts, ratios and durations the same way:

=========  ====================================  =====================================
type       a JSON number (programs)              a string (people)
=========  ====================================  =====================================
amount     an integer count of minor units       ``"12.50"`` or ``"12.50 Credit"``:
           (``1250`` is 12.50 Credit)            asset units, at most its decimals
ratio      an integer (``1`` is 100%)            ``"3%"``, ``"25 bps"``, ``"10 ppm"``,
           or ``{"num": 1, "den": 50}``          ``"1/50"``, ``"0.03"``
duration   an integer count of seconds           ``"2 days"``, ``"90 minutes"``,
                                                 ``"1 week 2 days"``, ``"3600"`` (seconds)
time       an integer count of seconds           on the command line only: ``"5000"``
int        an integer                            on the command line only: ``"42"``
=========  ====================================  =====================================

The command line has only strings, so ``--param bounty=11`` is 11.00 Credit,
``--param voting_period=2 days`` is two days and ``--param quorum=4`` is 4; in JSON
and through the API an int or a time is a JSON integer.  :func:`read` converts one value or
raises :class:`UnitError` with a message that says what was expected.
"""
from __future__ import annotations

import re
from fractions import Fraction
from typing import Any, Callable

from . import ir

DURATION_UNITS = {"second": 1, "seconds": 1, "minute": 60, "minutes": 60, "hour": 3600,
                  "hours": 3600, "day": 86_400, "days": 86_400, "week": 604_800,
                  "weeks": 604_800}
RATIO_UNITS = {"%": 100, "bps": 10_000, "ppm": 1_000_000}
_DECIMAL = re.compile(r"-?[0-9][0-9_]*(\.[0-9][0-9_]*)?")
_INT = re.compile(r"-?[0-9][0-9_]*")
_PART = re.compile(r"\s*(-?[0-9][0-9_]*)\s*([a-z]+)\s*")
# Strings longer than this are no value anyone typed (and must not reach int()).
MAX_TEXT = 200


class UnitError(ValueError):
    """A value that does not read as its type; the message says what would."""


def parse_decimal(text: str, decimals: int) -> int | None:
    """``"50.25"`` in asset units -> minor units, or None if not exact at ``decimals``."""
    text = text.strip().replace("_", "")
    if len(text) > MAX_TEXT or not _DECIMAL.fullmatch(text):
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


def parse_ratio(v: Any) -> Fraction | None:
    """A ratio from any of its accepted forms, or None."""
    if isinstance(v, bool):
        return None
    if isinstance(v, Fraction):
        return v
    if isinstance(v, int):
        return Fraction(v)
    if isinstance(v, dict) and set(v) == {"num", "den"}:
        n, d = v["num"], v["den"]
        if isinstance(n, int) and isinstance(d, int) and not isinstance(n, bool) \
                and not isinstance(d, bool) and d != 0:
            return Fraction(n, d)
        return None
    if isinstance(v, str) and len(v) <= MAX_TEXT:
        s = v.strip()
        for unit, scale in RATIO_UNITS.items():
            if s.endswith(unit):
                num = s[: -len(unit)].strip().replace("_", "")
                return Fraction(num) / scale if _DECIMAL.fullmatch(num) else None
        if re.fullmatch(r"-?[0-9]+/[0-9]+", s):
            n, d = s.split("/")
            return Fraction(int(n), int(d)) if int(d) else None
        if _DECIMAL.fullmatch(s):
            return Fraction(s.replace("_", ""))
    return None


def parse_duration(v: Any) -> int | None:
    """Seconds from an integer or from ``"2 days"``, ``"1 week 3 days"``, ``"3600"``."""
    if isinstance(v, bool):
        return None
    if isinstance(v, int):
        return v
    if not isinstance(v, str) or len(v) > MAX_TEXT:
        return None
    s = v.strip().lower()
    if _INT.fullmatch(s):
        return int(s.replace("_", ""))
    total, pos = 0, 0
    for m in _PART.finditer(s):
        if m.start() != pos or m.group(2) not in DURATION_UNITS:
            return None
        total += int(m.group(1).replace("_", "")) * DURATION_UNITS[m.group(2)]
        pos = m.end()
    return total if pos == len(s) and pos else None


def parse_int(v: Any) -> int | None:
    if isinstance(v, bool):
        return None
    if isinstance(v, int):
        return v
    if isinstance(v, str) and len(v) <= MAX_TEXT and _INT.fullmatch(v.strip()):
        return int(v.strip().replace("_", ""))
    return None


def expected(t: Any, decimals: int = 0) -> str:
    """What a value of type ``t`` may look like, for error messages."""
    if isinstance(t, ir.TAmount):
        example = "12." + "5" * decimals if decimals else "12"
        return (f'an amount of {t.asset}: "{example}" in {t.asset} (at most {decimals} '
                "decimals) or an integer of minor units")
    if isinstance(t, ir.TRatio):
        return 'a ratio: "3%", "25 bps", "1/50" or {"num": 1, "den": 50}'
    if isinstance(t, ir.TDuration):
        return 'a duration: "2 days", "90 minutes" or an integer of seconds'
    if isinstance(t, ir.TTime):
        return "a time: an integer of seconds"
    return "an integer"



def read(t: Any, v: Any, decimals: Callable[[str], int] | int = 0, *, text: bool = False) -> Any:
    """``v`` as a value of numeric type ``t`` (amount, ratio, duration, time, int).

    ``text``: ``v`` comes from a text-only input (the command line), where an int or a
    time is written in digits.  Raises :class:`UnitError` when it does not read."""
    dec = decimals(t.asset) if callable(decimals) and isinstance(t, ir.TAmount) else \
        (decimals if isinstance(decimals, int) else 0)
    out: Any = None
    if isinstance(t, ir.TAmount):
        if isinstance(v, int) and not isinstance(v, bool):
            out = v
        elif isinstance(v, str):
            text = v.strip()
            if text.endswith(" " + t.asset):
                text = text[: -len(t.asset)].strip()
            out = parse_decimal(text, dec)
    elif isinstance(t, ir.TRatio):
        out = parse_ratio(v)
    elif isinstance(t, ir.TDuration):
        out = parse_duration(v)
    elif isinstance(t, (ir.TTime, ir.TInt)):
        out = parse_int(v) if text or not isinstance(v, str) else None
    else:
        raise UnitError(f"not a numeric type: {t!r}")
    if out is None:
        raise UnitError(f"expected {expected(t, dec)}")
    return out


def is_numeric(t: Any) -> bool:
    return isinstance(t, (ir.TAmount, ir.TRatio, ir.TDuration, ir.TTime, ir.TInt))
