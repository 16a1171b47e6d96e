"""Exact arithmetic and split algorithms shared by the runtime and the verifier.

Everything here is pure and exact: amounts are ``int`` counts of an asset's
minor unit, ratios are ``fractions.Fraction``.  No floats.  The verifier
(``charter.compiler.verify``) imports these functions so that what it proves
is what the runtime does.

Rounding (``floor``/``ceil``/``round``) is defined for ints and Fractions;
``round`` is *half up*, i.e. towards +infinity on an exact half
(``round(-5/2) == -2``), matching ``floor(x + 1/2)``.

Split rules (:func:`split`), for ``amount`` split among ``n`` recipients by
non-negative integer ``weights`` (list order = key order = tie order):

1. ``n == 0``: nothing is paid, the whole amount is leftover (stays in the source).
2. ``minimum``: every recipient first gets ``minimum``; if
   ``amount < n * minimum`` the split fails (:class:`SplitError`, code
   ``split_minimum``).  The rest is split by weight.
3. **All weights zero**: no recipient has a claim, so nothing is split by
   weight; that part is leftover and stays in the source (minimums are still
   paid).  This never rejects, conserves value, and matches ``floor_dust``'s
   "carried into the next distribution".
4. The weighted part ``R`` is allocated by ``method``:

   * ``largest_remainder`` (default): each gets ``floor(R*w/W)``; the units
     left go one each to the largest fractional remainders ``(R*w) mod W``,
     ties to the earlier recipient.  Every share is within 1 unit of exact.
   * ``sequential_floor``: each gets ``floor(R*w/W)``; everything left goes
     to the *last recipient with a positive weight*.
   * ``dhondt`` / ``sainte_lague``: divisor methods, the result of awarding
     the R units one at a time to the recipient with the largest
     ``w / d(s)`` where ``s`` is what it has so far and ``d(s) = s + 1``
     (D'Hondt/Jefferson) or ``s + 1/2`` (Sainte-Laguë/Webster); ties to the
     earlier recipient.  Computed without the unit-by-unit loop: start from
     the floor quotas and move single units with priority queues until the
     allocation is the top-R awards (so huge amounts are cheap).
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
from typing import Optional, Union

Number = Union[int, Fraction]

METHODS = ("largest_remainder", "sequential_floor", "dhondt", "sainte_lague", "floor_dust")


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
) -> tuple[list[int], int]:
    """Split ``amount`` by ``weights``; returns ``(shares, leftover)``.  See the module doc."""
    if method not in METHODS:
        raise SplitError("split_method", f"unknown split method {method!r}")
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
    rest = amount - n * base
    total = sum(weights)
    if total == 0 or rest == 0:
        shares = [0] * n
    elif method == "largest_remainder":
        shares = _largest_remainder(rest, weights, total)
    elif method == "sequential_floor":
        shares = [rest * w // total for w in weights]
        last = max(i for i, w in enumerate(weights) if w > 0)
        shares[last] += rest - sum(shares)
    elif method == "floor_dust":
        shares = [rest * w // total for w in weights]
    elif method == "dhondt":
        shares = _divisor(rest, weights, total, 2, 2)  # d(s) = (2s + 2) / 2 = s + 1
    else:  # sainte_lague
        shares = _divisor(rest, weights, total, 2, 1)  # d(s) = (2s + 1) / 2 = s + 1/2
    if base:
        shares = [s + base for s in shares]
    if cap is not None:
        shares = [s if s <= cap else cap for s in shares]
    return shares, amount - sum(shares)


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


def _divisor(rest: int, weights: list[int], total: int, a: int, b: int) -> list[int]:
    """Divisor method with ``d(s) = (a*s + b) / 2`` (scaled by 2 to stay in ints).

    The unit-by-unit procedure gives recipient i exactly its awards among the
    ``rest`` best of all awards ``(i, s)`` ordered by value ``w_i / d(s)``
    descending, then by ``i`` ascending.  Starting from the floor quotas, we
    add the best missing award, drop the worst held one, or swap the two,
    until the held set is exactly that top set.
    """
    n = len(weights)
    shares = [rest * w // total for w in weights]
    held = sum(shares)

    # value of award (i, s) is w_i * 2 / (a*s + b); compare as Fractions.
    def value(i: int, s: int) -> Fraction:
        return Fraction(2 * weights[i], a * s + b)

    # max-heap of next award per recipient: key (-value, i)
    add: list[tuple[Fraction, int, int]] = [(-value(i, shares[i]), i, shares[i]) for i in range(n)]
    heapq.heapify(add)
    # min-heap of last held award per recipient: worst = lowest value, then highest i
    drop: list[tuple[Fraction, int, int]] = [
        (value(i, shares[i] - 1), -i, shares[i]) for i in range(n) if shares[i] > 0
    ]
    heapq.heapify(drop)

    def top_add() -> Optional[tuple[Fraction, int]]:
        while add:
            nv, i, s = add[0]
            if shares[i] == s:
                return -nv, i
            heapq.heappop(add)
        return None

    def top_drop() -> Optional[tuple[Fraction, int]]:
        while drop:
            v, ni, s = drop[0]
            if shares[-ni] == s and s > 0:
                return v, -ni
            heapq.heappop(drop)
        return None

    def give(i: int) -> None:
        shares[i] += 1
        heapq.heappush(add, (-value(i, shares[i]), i, shares[i]))
        heapq.heappush(drop, (value(i, shares[i] - 1), -i, shares[i]))

    def take(i: int) -> None:
        shares[i] -= 1
        heapq.heappush(add, (-value(i, shares[i]), i, shares[i]))
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


def divisor_reference(rest: int, weights: list[int], method: str) -> list[int]:
    """The literal unit-by-unit divisor procedure (slow; for tests and small inputs)."""
    b = 2 if method == "dhondt" else 1
    shares = [0] * len(weights)
    if sum(weights) == 0:
        return shares
    for _ in range(rest):
        best = max(
            range(len(weights)), key=lambda i: (Fraction(2 * weights[i], 2 * shares[i] + b), -i)
        )
        shares[best] += 1
    return shares


def proportional_share(amount: int, weight: int, total: int) -> Fraction:
    """The exact (unrounded) share ``amount * weight / total``; 0 when total is 0."""
    if total == 0:
        return Fraction(0)
    return Fraction(amount * weight, total)
