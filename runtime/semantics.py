"""Exact arithmetic and split algorithms shared by the runtime and the verifier.

Everything here is pure and exact: amounts are ``int`` counts of an asset's
minor unit, ratios are ``fractions.Fraction``.  No floats.  The verifier
(``charter.compiler.verify``) imports these functions so that what it proves
is what the runtime does.

Rounding (``floor``/``ceil``/``round``) is defined for ints and Fractions;
``round`` is *half up*, i.e. towards +infinity on an exact half
(``round(-5/2) == -2``), matching ``floor(x + 1/2)``.

Split rules (:func:`split`), for ``amount`` split among ``n`` recipients by
non-negative weights (ints; the runtime scales ratio weights by their common
denominator first, which changes no method's result).  List order is the
recipient order (``in listed|key|weight order``, see :func:`order_recipients`)
and the tie order.

1. ``n == 0``: nothing is paid, the whole amount is leftover (stays in the source).
2. ``minimum`` with ``minimum_rule="first"`` (``at least m``): every recipient
   first gets ``m``; if ``amount < n * m`` the split fails (:class:`SplitError`,
   code ``split_minimum``).  The rest is split by weight.
   ``minimum_rule="quota"`` (``with minimum m``) is the statutory minimum of
   apportionment laws, where a minimum is a floor under the result rather than
   a first payment.  Largest remainder: a recipient whose quota ``R * w / W``
   is below ``m`` gets exactly ``m`` and leaves the count; the quotas of the
   others are recomputed with what is left (``R - m * fixed``) and their
   weights; repeated until no remaining quota is below ``m``; the rest is then
   split among the others by largest remainder (their shares are ``>= m``
   because their quotas are).  Divisor methods: every recipient starts at
   ``m`` and the remaining units are awarded one by one from there (award
   values ``w / d(s)`` for ``s >= m``), which is ``max(m, w / D rounded)`` for
   one common divisor ``D``, as the US House apportionment (Huntington–Hill,
   at least one seat) computes it.  ``amount < n * m`` fails as above; the
   other methods take no statutory minimum (``split_method``).
3. **All weights zero**: no recipient has a claim, so nothing is split by
   weight; that part is leftover and stays in the source (minimums are still
   paid).  This never rejects, conserves value, and matches ``floor_dust``'s
   "carried into the next distribution".
4. The weighted part ``R`` (out of total weight ``W``) is allocated by ``method``:

   * ``largest_remainder`` (Hamilton, the default): each gets
     ``floor(R*w/W)``; the units left go one each to the largest fractional
     remainders ``(R*w) mod W``, ties to the earlier recipient.  Every share
     is within 1 unit of exact.
   * ``sequential_floor``: each gets ``floor(R*w/W)``; everything left goes
     to the *last recipient with a positive weight* (so a zero weight never
     receives anything).  ``split(3, [1,1,1,1])`` gives ``[0,0,0,3]``.
   * ``sequential_floor_listed``: the loop ported splitters run, in listed
     order: each recipient but the last gets ``floor(left * w / W_left)``
     where ``left`` is what is still unallocated and ``W_left`` the weight of
     this recipient and all after it (0 when ``W_left`` is 0); the *last
     listed* recipient takes whatever is left, whatever its weight.
     ``split(3, [1,1,1,1])`` gives ``[0,1,1,1]`` (``sequential_floor``:
     ``[0,0,0,3]``); ``split(3, [1,1,0])`` gives ``[1,2,0]``.
   * Divisor methods: the result of awarding the ``R`` units one at a time to
     the recipient whose next award has the largest value ``w / d(s)``, ``s``
     being what it holds so far; ties to the earlier recipient.
     ``d(s) = s + 1`` (``dhondt``, Jefferson), ``s + 1/2`` (``sainte_lague``,
     Webster), ``s`` (``adams``), ``2s(s+1)/(2s+1)`` (``dean``, harmonic
     mean), ``sqrt(s(s+1))`` (``huntington_hill``, geometric mean; compared
     exactly through squares).  Where ``d(0) = 0`` (Adams, Dean,
     Huntington–Hill) a first award is worth more than any later one: every
     recipient with a positive weight gets a unit before any gets a second,
     and first awards go to larger weights first, then to the earlier
     recipient.  A zero weight never gets a unit.  Computed without the
     unit-by-unit loop: start from the floor quotas and move single units with
     priority queues until the allocation is the top-R awards (so huge
     amounts are cheap).
   * ``floor_dust``: each gets ``floor(R*w/W)``; the dust is leftover.

5. ``cap``: each share is cut to ``cap``; the excess is leftover.  A cap
   below the minimum fails (``split_cap``).

Negative amounts, weights, minimums or caps fail with :class:`SplitError`.
The result always satisfies ``sum(shares) + leftover == amount`` with every
share and the leftover ``>= 0``.
"""

from __future__ import annotations

import heapq
import math
from fractions import Fraction
from typing import Any, Optional, Union

Number = Union[int, Fraction]

DIVISOR_METHODS = ("dhondt", "sainte_lague", "adams", "dean", "huntington_hill")
METHODS = (
    "largest_remainder",
    "sequential_floor",
    "sequential_floor_listed",
    *DIVISOR_METHODS,
    "floor_dust",
)
MINIMUM_RULES = ("first", "quota")
ORDERS = ("listed", "key", "weight")


class SemanticsError(Exception):
    """An evaluation that has no value (negative isqrt, division by zero, bad split)."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


class SplitError(SemanticsError):
    pass


# --------------------------------------------------------------------------
# Rounding and integer helpers


def floor_div(a: int, b: int) -> int:
    """Floor of a/b for ints (b != 0)."""
    if b == 0:
        raise SemanticsError("division_by_zero", "division by zero")
    return a // b


def ceil_div(a: int, b: int) -> int:
    """Ceiling of a/b for ints (b != 0)."""
    if b == 0:
        raise SemanticsError("division_by_zero", "division by zero")
    return -((-a) // b)


def floor(x: Number) -> int:
    if isinstance(x, int):
        return x
    return x.numerator // x.denominator


def ceil(x: Number) -> int:
    if isinstance(x, int):
        return x
    return -((-x.numerator) // x.denominator)


def round_half_up(x: Number) -> int:
    """Nearest integer, exact halves towards +infinity: ``floor(x + 1/2)``."""
    if isinstance(x, int):
        return x
    return (2 * x.numerator + x.denominator) // (2 * x.denominator)


ROUNDINGS = {"floor": floor, "ceil": ceil, "round": round_half_up}


def round_quotient(n: int, d: int, mode: str) -> int:
    """``floor``/``ceil``/``round`` (half up) of ``n / d`` for ``d > 0``, without a Fraction:
    the runtime's fused form of ``floor(a * b)`` and ``floor(a / b)``."""
    if mode == "floor":
        return n // d
    if mode == "ceil":
        return -((-n) // d)
    return (2 * n + d) // (2 * d)


def isqrt(x: int) -> int:
    """Floor of the square root of a non-negative int."""
    if x < 0:
        raise SemanticsError("negative_sqrt", f"isqrt of a negative value ({x})")
    return math.isqrt(x)


def text_of(v: Any, kind: str, decimals: int = 0, asset: str = "") -> str:
    """``text(x)``: ``x`` as an author writes it; ``kind`` is the checker's tag of its type
    (int, ratio, amount, duration, time, party, bool).  The formatting is the one every
    Charter message uses (:mod:`charter.compiler.display`)."""
    from charter.compiler import display

    if kind == "amount":
        return display.amount(v, decimals, asset)
    if kind == "ratio":
        return display.ratio(v)
    if kind == "duration":
        return display.duration(v)
    if kind == "party":
        return "@" + v
    if kind == "bool":
        return "true" if v else "false"
    return display.integer(v)  # int, time (seconds)


def check_text_length(text: str, limit: int) -> str:
    if len(text) > limit:
        raise SemanticsError("text_too_long", f"a text of {len(text):,} characters was built; "
                                              f"texts are limited to {limit:,}")
    return text


def composite_key(parts: list) -> str:
    """A composite record key ``R(a, b, ...)`` as one text: the parts (each already text)
    joined by ``|``, a ``|`` or ``\\`` inside a part escaped with ``\\``, so two different
    lists of parts never give the same key."""
    return "|".join(p.replace("\\", "\\\\").replace("|", "\\|") for p in parts)


GROUPINGS = ("", ",", "_", " ", "'")


def format_number(x: Number, places: int, group: str = "", suffix: str = "") -> str:
    """``format(x, places, group, suffix)``: ``x`` rounded half up (``floor(x * 10^places +
    1/2)``, as ``round``) to ``places`` decimals, ``.`` as the decimal point, the whole part
    in groups of three digits separated by ``group`` (one of :data:`GROUPINGS`), then
    ``suffix``.  Locale-free: the same text on every machine."""
    scale = 10**places
    n = math.floor(Fraction(x) * scale + Fraction(1, 2))
    sign, mag = ("-" if n < 0 else ""), abs(n)
    if mag.bit_length() > 13_000:  # about 3,900 digits: past any text a policy may build
        raise SemanticsError("text_too_long", "format of a number of more than 3,900 digits")
    whole, frac = divmod(mag, scale)
    digits = str(whole)
    if group:
        head = len(digits) % 3 or 3
        parts = [digits[:head]] + [digits[i:i + 3] for i in range(head, len(digits), 3)]
        digits = group.join(parts)
    text = sign + digits
    if places:
        text += "." + str(frac).rjust(places, "0")
    return text + suffix


def fixed_sqrt(x: Number, decimals: int) -> Fraction:
    """``sqrt(x, d)``: the square root of ``x >= 0`` rounded down to ``d`` decimal places,
    i.e. ``isqrt(floor(x * 10**(2d))) / 10**d`` (exact: ``floor(sqrt(floor(y))) ==
    floor(sqrt(y))`` for every ``y >= 0``)."""
    if x < 0:
        raise SemanticsError("negative_sqrt", f"sqrt of a negative value ({x})")
    scale = 10**decimals
    y = Fraction(x) * scale * scale
    return Fraction(math.isqrt(y.numerator // y.denominator), scale)


def ipow(x: Number, n: int) -> Number:
    """``x ** n`` for a constant ``n >= 0`` (exact for ints and Fractions)."""
    if n < 0:
        raise SemanticsError("negative_power", f"pow with a negative exponent ({n})")
    return x**n


def ipow_steps(x: Number, n: int, places: int) -> Number:
    """``pow(x, n, d)``: ``x`` multiplied in ``n`` times from 1, left to right, each
    product rounded *down* (toward minus infinity) to ``d`` decimal places, as a
    fixed-point contract computes a power step by step; ``pow(x, 0, d)`` is 1."""
    if n < 0:
        raise SemanticsError("negative_power", f"pow with a negative exponent ({n})")
    scale = 10**places
    out: Number = 1
    for _ in range(n):
        out = Fraction(math.floor(Fraction(out) * x * scale), scale)
    return out


def exact_div(a: Number, b: Number) -> Fraction:
    """``a / b`` as an exact ratio (the language's ``/``)."""
    if b == 0:
        raise SemanticsError("division_by_zero", "division by zero")
    return Fraction(a) / Fraction(b)


def apply_ratio(amount: int, ratio: Number, rounding: str = "floor") -> int:
    """``amount * ratio`` rounded by ``rounding`` (floor | ceil | round)."""
    try:
        fn = ROUNDINGS[rounding]
    except KeyError:
        raise SemanticsError("bad_rounding", f"unknown rounding {rounding!r}") from None
    return fn(amount * ratio)


def decay_amount(balance: int, rate: Number) -> int:
    """What one ``decay`` removes from a balance: ``floor(balance * rate)``."""
    return floor(balance * rate)


# --------------------------------------------------------------------------
# Splits


def split(
    amount: int,
    weights: list[int],
    method: str = "largest_remainder",
    minimum: Optional[int] = None,
    cap: Optional[int] = None,
    minimum_rule: str = "first",
) -> tuple[list[int], int]:
    """Split ``amount`` by ``weights``; returns ``(shares, leftover)``.  See the module doc."""
    if method not in METHODS:
        raise SplitError("split_method", f"unknown split method {method!r}")
    if minimum_rule not in MINIMUM_RULES:
        raise SplitError("split_method", f"unknown minimum rule {minimum_rule!r}")
    if minimum_rule == "quota" and method not in ("largest_remainder", *DIVISOR_METHODS):
        raise SplitError("split_method", "a statutory minimum (`with minimum`) needs "
                                         "largest_remainder or a divisor method")
    if amount < 0:
        raise SplitError("split_negative", f"cannot split a negative amount ({amount})")
    for w in weights:
        if w < 0:
            raise SplitError("split_weight", f"split weight is negative ({w})")
    n = len(weights)
    if minimum is not None and minimum < 0:
        raise SplitError("split_minimum", f"split minimum is negative ({minimum})")
    if cap is not None and cap < 0:
        raise SplitError("split_cap", f"split cap is negative ({cap})")
    if cap is not None and minimum is not None and cap < minimum:
        raise SplitError("split_cap", f"split cap {cap} is below the minimum {minimum}")
    if n == 0:
        return [], amount
    base = minimum or 0
    if amount < n * base:
        raise SplitError(
            "split_minimum",
            f"amount {amount} does not cover the minimum {base} for {n} recipients",
        )
    if minimum_rule == "quota" and base and method == "largest_remainder":
        shares = _statutory_minimum(amount, weights, base)
    elif minimum_rule == "quota" and base:
        # awards continue from s = m: the value of award s is the method's value at s + m
        value_of = _DIVISOR_VALUES[method]
        rest = amount - n * base
        if sum(weights) == 0 or rest == 0:
            shares = [base] * n
        else:
            shifted = lambda w, s: value_of(w, s + base)  # noqa: E731
            shares = [s + base for s in _divisor(rest, weights, sum(weights), shifted)]
    else:
        rest = amount - n * base
        shares = _weighted(rest, weights, method)
        if base:
            shares = [s + base for s in shares]
    if cap is not None:
        shares = [s if s <= cap else cap for s in shares]
    return shares, amount - sum(shares)


def _weighted(rest: int, weights: list[int], method: str) -> list[int]:
    """``rest`` allocated by ``method`` (all weights zero or nothing to split: all zero)."""
    n = len(weights)
    total = sum(weights)
    if total == 0 or rest == 0:
        return [0] * n
    if method == "largest_remainder":
        return _largest_remainder(rest, weights, total)
    if method == "sequential_floor":
        shares = [rest * w // total for w in weights]
        last = max(i for i, w in enumerate(weights) if w > 0)
        shares[last] += rest - sum(shares)
        return shares
    if method == "sequential_floor_listed":
        shares = []
        left, w_left = rest, total
        for w in weights[:-1]:
            share = left * w // w_left if w_left else 0
            shares.append(share)
            left -= share
            w_left -= w
        shares.append(left)
        return shares
    if method == "floor_dust":
        return [rest * w // total for w in weights]
    return _divisor(rest, weights, total, _DIVISOR_VALUES[method])


def _statutory_minimum(amount: int, weights: list[int], m: int) -> list[int]:
    """Largest remainder with a statutory minimum ``m`` (``amount >= n * m``, ``m > 0``):
    recipients whose quota falls below ``m`` get ``m`` and leave; quotas recomputed."""
    n = len(weights)
    fixed = [False] * n
    while True:
        left = amount - m * sum(fixed)
        w_left = sum(w for w, f in zip(weights, fixed) if not f)
        # quota left * w / w_left < m  <=>  left * w < m * w_left (w_left > 0); with no weight
        # left every remaining quota is 0
        newly = [
            i for i in range(n)
            if not fixed[i] and (w_left == 0 or left * weights[i] < m * w_left)
        ]
        if not newly:
            break
        for i in newly:
            fixed[i] = True
    free = [i for i in range(n) if not fixed[i]]
    shares = [m] * n
    if free:
        alloc = _largest_remainder(left, [weights[i] for i in free], w_left)
        for i, share in zip(free, alloc):
            shares[i] = share
    return shares


def _largest_remainder(rest: int, weights: list[int], total: int) -> list[int]:
    shares = []
    rems = []
    for w in weights:
        q, r = divmod(rest * w, total)
        shares.append(q)
        rems.append(r)
    left = rest - sum(shares)  # < n
    if left:
        order = sorted(range(len(weights)), key=lambda i: (-rems[i], i))
        for i in order[:left]:
            shares[i] += 1
    return shares


# The value of award (s -> s+1) of a recipient with weight w, as a key that orders awards
# (larger key = awarded earlier).  ``(1, w)`` is an award worth infinity (d(s) = 0): among
# those the larger weight wins.  A zero weight is worth nothing.  Huntington-Hill compares
# w^2 / (s(s+1)), the square of w / sqrt(s(s+1)), which orders the same way.
Key = tuple


def _key(num: int, den: int, w: int) -> Key:
    if w == 0:
        return (0, Fraction(0))
    if den == 0:
        return (1, Fraction(w))
    return (0, Fraction(num, den))


_DIVISOR_VALUES = {
    "dhondt": lambda w, s: _key(w, s + 1, w),
    "sainte_lague": lambda w, s: _key(2 * w, 2 * s + 1, w),
    "adams": lambda w, s: _key(w, s, w),
    "dean": lambda w, s: _key(w * (2 * s + 1), 2 * s * (s + 1), w),
    "huntington_hill": lambda w, s: _key(w * w, s * (s + 1), w),
}


def _neg(k: Key) -> Key:
    return (-k[0], -k[1])


def _divisor(rest: int, weights: list[int], total: int, value_of) -> list[int]:
    """Divisor method whose award ``(i, s)`` (recipient i's unit number s+1) is worth
    ``value_of(w_i, s)``.

    The unit-by-unit procedure gives recipient i exactly its awards among the
    ``rest`` best of all awards ``(i, s)`` ordered by value descending, then by
    ``i`` ascending.  Starting from the floor quotas, we add the best missing
    award, drop the worst held one, or swap the two, until the held set is
    exactly that top set.
    """
    n = len(weights)
    shares = [rest * w // total for w in weights]
    held = sum(shares)

    def value(i: int, s: int) -> Key:
        return value_of(weights[i], s)

    # max-heap of next award per recipient: key (-value, i)
    add: list = [(_neg(value(i, shares[i])), i, shares[i]) for i in range(n)]
    heapq.heapify(add)
    # min-heap of last held award per recipient: worst = lowest value, then highest i
    drop: list = [
        (value(i, shares[i] - 1), -i, shares[i]) for i in range(n) if shares[i] > 0
    ]
    heapq.heapify(drop)

    def top_add() -> Optional[tuple[Key, int]]:
        while add:
            nv, i, s = add[0]
            if shares[i] == s:
                return _neg(nv), i
            heapq.heappop(add)
        return None

    def top_drop() -> Optional[tuple[Key, int]]:
        while drop:
            v, ni, s = drop[0]
            if shares[-ni] == s and s > 0:
                return v, -ni
            heapq.heappop(drop)
        return None

    def give(i: int) -> None:
        shares[i] += 1
        heapq.heappush(add, (_neg(value(i, shares[i])), i, shares[i]))
        heapq.heappush(drop, (value(i, shares[i] - 1), -i, shares[i]))

    def take(i: int) -> None:
        shares[i] -= 1
        heapq.heappush(add, (_neg(value(i, shares[i])), i, shares[i]))
        if shares[i] > 0:
            heapq.heappush(drop, (value(i, shares[i] - 1), -i, shares[i]))

    while True:
        best = top_add()
        if held < rest:
            assert best is not None
            give(best[1])
            held += 1
            continue
        worst = top_drop()
        if held > rest:
            assert worst is not None
            take(worst[1])
            held -= 1
            continue
        if best is None or worst is None:
            break
        # best missing award beats worst held award in the (value desc, index asc) order?
        if best[0] > worst[0] or (best[0] == worst[0] and best[1] < worst[1]):
            take(worst[1])
            give(best[1])
        else:
            break
    return shares


def divisor_reference(rest: int, weights: list[int], method: str, start: int = 0) -> list[int]:
    """The literal unit-by-unit divisor procedure (slow; for tests and small inputs), every
    recipient starting at ``start`` (a statutory minimum) with ``rest`` units to award."""
    value_of = _DIVISOR_VALUES[method]
    shares = [start] * len(weights)
    if sum(weights) == 0:
        return shares
    for _ in range(rest):
        best = max(range(len(weights)), key=lambda i: (value_of(weights[i], shares[i]), -i))
        shares[best] += 1
    return shares


def order_recipients(keys: list, weights: list, order: str) -> list[int]:
    """The positions of the recipients in the stated order: ``listed`` (as the collection
    gives them: list order, or key order for roles and records), ``key`` (by item key) or
    ``weight`` (heaviest first, equal weights by key)."""
    idx = list(range(len(keys)))
    if order == "listed":
        return idx
    try:
        if order == "key":
            return sorted(idx, key=lambda i: keys[i])
        if order == "weight":
            return sorted(idx, key=lambda i: (-weights[i], keys[i]))
    except TypeError:
        raise SplitError("split_order", "split recipients have keys that cannot be "
                                        "ordered against each other") from None
    raise SplitError("split_order", f"unknown recipient order {order!r}")


def proportional_share(amount: int, weight: int, total: int) -> Fraction:
    """The exact (unrounded) share ``amount * weight / total``; 0 when total is 0."""
    if total == 0:
        return Fraction(0)
    return Fraction(amount * weight, total)

