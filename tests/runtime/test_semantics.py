"""Exact arithmetic and split algorithms (charter.runtime.semantics).

Expected values below are worked by hand; the comments show the arithmetic.
"""

from __future__ import annotations

from fractions import Fraction as F

import pytest
from hypothesis import given, settings, strategies as st

from charter.runtime import semantics as sem
from charter.runtime.semantics import SplitError, split

# ---------------------------------------------------------------- rounding

ROUNDING_CASES = [
    # fn, x, expected
    (sem.floor, F(7, 2), 3),
    (sem.floor, F(-7, 2), -4),
    (sem.ceil, F(7, 2), 4),
    (sem.ceil, F(-7, 2), -3),
    (sem.round_half_up, F(5, 2), 3),  # 2.5 -> 3
    (sem.round_half_up, F(-5, 2), -2),  # -2.5 -> -2 (half towards +inf)
    (sem.round_half_up, F(7, 3), 2),  # 2.33 -> 2
    (sem.round_half_up, F(8, 3), 3),  # 2.67 -> 3
    (sem.floor, 5, 5),
    (sem.ceil, 5, 5),
    (sem.round_half_up, 5, 5),
]


@pytest.mark.parametrize("fn,x,expected", ROUNDING_CASES)
def test_rounding(fn, x, expected):
    assert fn(x) == expected


@pytest.mark.parametrize("a,b,fl,ce", [(7, 2, 3, 4), (-7, 2, -4, -3), (6, 3, 2, 2), (0, 5, 0, 0)])
def test_int_division(a, b, fl, ce):
    assert sem.floor_div(a, b) == fl
    assert sem.ceil_div(a, b) == ce


def test_division_by_zero_is_an_error():
    with pytest.raises(sem.SemanticsError) as e:
        sem.floor_div(1, 0)
    assert e.value.code == "division_by_zero"
    with pytest.raises(sem.SemanticsError):
        sem.exact_div(F(1), 0)


@pytest.mark.parametrize(
    "x,r", [(0, 0), (1, 1), (15, 3), (16, 4), (10**40, 10**20), (10**40 - 1, 10**20 - 1)]
)
def test_isqrt(x, r):
    assert sem.isqrt(x) == r


def test_isqrt_negative_rejects():
    with pytest.raises(sem.SemanticsError) as e:
        sem.isqrt(-1)
    assert e.value.code == "negative_sqrt"


@pytest.mark.parametrize(
    "amount,ratio,rounding,expected",
    [
        (5000, F(1, 50), "floor", 100),  # 2% of 50.00 = 1.00
        (1999, F(1, 50), "floor", 39),  # 39.98 -> 39
        (1999, F(1, 50), "ceil", 40),
        (1999, F(1, 50), "round", 40),  # 39.98 -> 40
        (25, F(1, 10), "round", 3),  # 2.5 -> 3 (half up)
        (123456789, F(25, 10000), "floor", 308641),  # 25 bps: 308641.97 -> 308641
    ],
)
def test_apply_ratio(amount, ratio, rounding, expected):
    assert sem.apply_ratio(amount, ratio, rounding) == expected


def test_decay_amount():
    assert sem.decay_amount(15, F(1, 10)) == 1  # floor(1.5)
    assert sem.decay_amount(9, F(1, 10)) == 0


# ---------------------------------------------------------------- splits (hand-worked)

SPLIT_CASES = [
    # (amount, weights, method, minimum, cap, shares, leftover)
    # LR: 10*[1,1,1]/3 = 3.33 each; floors 3,3,3, 1 left; remainders equal -> first
    (10, [1, 1, 1], "largest_remainder", None, None, [4, 3, 3], 0),
    # LR: 100*[3,2,1]/6 = 50, 33.33, 16.67 -> floors 50,33,16; 1 left -> largest rem (16.67)
    (100, [3, 2, 1], "largest_remainder", None, None, [50, 33, 17], 0),
    # LR: 7*[5,3,2]/10 = 3.5, 2.1, 1.4 -> floors 3,2,1; 1 left -> rem .5 wins
    (7, [5, 3, 2], "largest_remainder", None, None, [4, 2, 1], 0),
    # sequential floor: floors 3,3,3, remainder 1 to the last
    (10, [1, 1, 1], "sequential_floor", None, None, [3, 3, 4], 0),
    # sequential floor: last recipient has weight 0 -> remainder to last positive
    (10, [1, 1, 0], "sequential_floor", None, None, [5, 5, 0], 0),
    (11, [1, 1, 0], "sequential_floor", None, None, [5, 6, 0], 0),
    # floor dust: 10/3 -> 3,3,3, dust 1 stays
    (10, [1, 1, 1], "floor_dust", None, None, [3, 3, 3], 1),
    # D'Hondt 5 seats, votes 100,80,30: quotients 100,80,50,40,33.3,30,26.7..
    #   seats: A(100) B(80) A(50) B(40) A(33.3) -> A3 B2 C0
    (5, [100, 80, 30], "dhondt", None, None, [3, 2, 0], 0),
    # Sainte-Lague 5 seats, votes 100,80,30: divisors 1/2,3/2,5/2 -> values
    #   A: 200, 66.7, 40; B: 160, 53.3, 32; C: 60, 20
    #   top 5: 200(A) 160(B) 66.7(A) 60(C) 53.3(B) -> A2 B2 C1
    (5, [100, 80, 30], "sainte_lague", None, None, [2, 2, 1], 0),
    # minimum: 3 recipients get 2 each (6), rest 4 by [1,1,2]: 1,1,2
    (10, [1, 1, 2], "largest_remainder", 2, None, [3, 3, 4], 0),
    # cap: 100 by [3,1] = 75, 25; cap 60 -> 60, 25, 15 leftover
    (100, [3, 1], "largest_remainder", None, 60, [60, 25], 15),
    # all-zero weights: nothing split by weight, everything stays
    (100, [0, 0], "largest_remainder", None, None, [0, 0], 100),
    # all-zero weights with a minimum: minimums paid, rest stays
    (100, [0, 0], "largest_remainder", 10, None, [10, 10], 80),
    # no recipients: whole amount stays
    (100, [], "largest_remainder", None, None, [], 100),
    # zero amount
    (0, [1, 2], "dhondt", None, None, [0, 0], 0),
    # sequential floor, listed: 3 by [1,1,1,1]: floor(3/4)=0, left 3; floor(3/3)=1, left 2;
    #   floor(2/2)=1, left 1; the last listed takes 1 (sequential_floor: [0,0,0,3])
    (3, [1, 1, 1, 1], "sequential_floor_listed", None, None, [0, 1, 1, 1], 0),
    (3, [1, 1, 1, 1], "sequential_floor", None, None, [0, 0, 0, 3], 0),
    # the last listed takes what is left whatever its weight: floor(3*1/2)=1, floor(2*1/1)=2
    (3, [1, 1, 0], "sequential_floor_listed", None, None, [1, 2, 0], 0),
    # a zero weight before the end: floor(5*0/3)=0, floor(5*2/3)=3, last takes 2
    (5, [0, 2, 1], "sequential_floor_listed", None, None, [0, 3, 2], 0),
    # Adams 5 units, weights 100,80,30: d(s)=s, so every positive weight gets a first unit
    #   (values inf), then A 100/1, B 80/1, C 30/1 -> A(100) B(80): A2 B2 C1
    (5, [100, 80, 30], "adams", None, None, [2, 2, 1], 0),
    # Adams with fewer units than recipients: first units to the larger weights
    (2, [10, 30, 20], "adams", None, None, [0, 1, 1], 0),
    # Dean 6 units, 100,80,30: after the first units, values w*(2s+1)/(2s(s+1)):
    #   s=1: A 75, B 60, C 22.5; s=2: A 41.7, B 33.3 -> A(75) B(60) A(41.7): A3 B2 C1
    (6, [100, 80, 30], "dean", None, None, [3, 2, 1], 0),
    # Huntington-Hill 6 units: values w/sqrt(s(s+1)): s=1: A 70.7, B 56.6, C 21.2;
    #   s=2: A 40.8, B 32.7 -> A B A: A3 B2 C1
    (6, [100, 80, 30], "huntington_hill", None, None, [3, 2, 1], 0),
    # a zero weight never gets a unit, even where d(0) = 0
    (3, [0, 5, 5], "huntington_hill", None, None, [0, 2, 1], 0),
    # statutory minimum, largest remainder: 20 by [1,1,1,30] with minimum 2: quotas 0.6 -> the
    #   three small ones get 2, the rest (14) goes to the last; `at least 2` pays 2 each first
    #   and splits 12 by weight: [3,2,2,13]
    (20, [1, 1, 1, 30], "largest_remainder", ("quota", 2), None, [2, 2, 2, 14], 0),
    (20, [1, 1, 1, 30], "largest_remainder", 2, None, [3, 2, 2, 13], 0),
    # quotas recomputed: 10 by [1,3,3,3] min 2: quota 1 < 2 fixes the first; 8 left by
    #   [3,3,3]: 2.67 each >= 2 -> 3,3,2 (largest remainder, ties to the earlier)
    (10, [1, 3, 3, 3], "largest_remainder", ("quota", 2), None, [2, 3, 3, 2], 0),
    # a second round: 12 by [1,2,9] min 3: quota 1 < 3 fixes the first; 9 left by [2,9]:
    #   quota 1.6 < 3 fixes the second; 6 left to the last
    (12, [1, 2, 9], "largest_remainder", ("quota", 3), None, [3, 3, 6], 0),
    # statutory minimum with a divisor method: D'Hondt continuing from 1 each:
    #   10 by [100,80,30] min 1 -> values 100/2, 80/2, 30/2, 100/3 ...: 7 more units
    (10, [100, 80, 30], "dhondt", ("quota", 1), None, [5, 4, 1], 0),
    (10, [100, 80, 30], "dhondt", 1, None, [4, 4, 2], 0),
]


@pytest.mark.parametrize("amount,weights,method,minimum,cap,shares,leftover", SPLIT_CASES)
def test_split_hand_worked(amount, weights, method, minimum, cap, shares, leftover):
    rule = "first"
    if isinstance(minimum, tuple):
        rule, minimum = minimum
    assert split(amount, weights, method, minimum, cap, rule) == (shares, leftover)


@pytest.mark.parametrize(
    "args,code",
    [
        ((5, [1, 1, 1], "largest_remainder", 2, None), "split_minimum"),  # 5 < 3*2
        ((-1, [1], "largest_remainder", None, None), "split_negative"),
        ((5, [1, -1], "largest_remainder", None, None), "split_weight"),
        ((5, [1, 1], "nonsense", None, None), "split_method"),
        ((5, [1, 1], "largest_remainder", 3, 2), "split_cap"),
        ((5, [1, 1], "sequential_floor", 1, None, "quota"), "split_method"),
        ((5, [1, 1], "largest_remainder", 1, None, "sometimes"), "split_method"),
        ((5, [1, 1, 1], "largest_remainder", 2, None, "quota"), "split_minimum"),
    ],
)
def test_split_errors(args, code):
    with pytest.raises(SplitError) as e:
        split(*args)
    assert e.value.code == code


def test_split_huge_amount_divisor_is_fast():
    # 10**30 units by divisor methods must not loop unit by unit.
    shares, left = split(10**30, [3, 2, 1, 7], "sainte_lague")
    assert sum(shares) == 10**30 and left == 0
    shares, left = split(10**30, [3, 2, 1, 7], "dhondt")
    assert sum(shares) == 10**30 and left == 0


# ---------------------------------------------------------------- properties

amounts = st.integers(min_value=0, max_value=10**6)
weight_lists = st.lists(st.integers(min_value=0, max_value=50), min_size=0, max_size=8)
methods = st.sampled_from(sem.METHODS)


@settings(max_examples=200, deadline=None)
@given(
    amounts,
    weight_lists,
    methods,
    st.none() | st.integers(0, 20),
    st.none() | st.integers(20, 10**5),
)
def test_split_conserves(amount, weights, method, minimum, cap):
    try:
        shares, left = split(amount, weights, method, minimum, cap)
    except SplitError as e:
        assert e.code == "split_minimum" and amount < len(weights) * (minimum or 0)
        return
    assert sum(shares) + left == amount
    assert left >= 0 and all(s >= 0 for s in shares)
    if cap is not None:
        assert all(s <= cap for s in shares)
    if minimum is not None:
        assert all(s >= minimum for s in shares)
    if method != "floor_dust" and cap is None and sum(weights) > 0:
        assert left == 0


@settings(max_examples=200, deadline=None)
@given(amounts, weight_lists)
def test_largest_remainder_proportional_within_one(amount, weights):
    shares, _ = split(amount, weights, "largest_remainder")
    total = sum(weights)
    if total == 0:
        return
    for s, w in zip(shares, weights):
        assert abs(F(s) - F(amount * w, total)) < 1


@settings(max_examples=200, deadline=None)
@given(
    st.integers(0, 60),
    st.lists(st.integers(0, 6), min_size=1, max_size=6),
    st.sampled_from(sem.DIVISOR_METHODS),
    st.integers(0, 3),
)
def test_divisor_matches_unit_by_unit(amount, weights, method, start):
    # small weights make ties common: the fast path must break them exactly like the loop;
    # `start` > 0 is a statutory minimum (every recipient starts there)
    n = len(weights)
    if start:
        shares, _ = split(amount + start * n, weights, method, start, None, "quota")
    else:
        shares, _ = split(amount, weights, method)
    if sum(weights) == 0:
        assert shares == [start] * n
    else:
        assert shares == sem.divisor_reference(amount, weights, method, start)


@settings(max_examples=100, deadline=None)
@given(amounts, st.lists(st.integers(1, 50), min_size=2, max_size=6), methods)
def test_split_symmetric_equal_weights(amount, weights, method):
    # equal weights => shares within one unit (sequential_floor excepted: the last gets all)
    weights = [weights[0]] * len(weights)
    shares, _ = split(amount, weights, method)
    if method not in ("sequential_floor", "sequential_floor_listed"):
        assert max(shares) - min(shares) <= 1


# ---------------------------------------------------------------- codegen's integer rounding path


@settings(max_examples=300, deadline=None)
@given(
    st.integers(-(10**6), 10**6),
    st.integers(-(10**4), 10**4),
    st.integers(1, 10**4),
    st.sampled_from(["*", "/"]),
    st.sampled_from(["floor", "ceil", "round"]),
)
def test_rounded_product_matches_fraction_rounding(a, n, d, op, name):
    """floor/ceil/round of a*r and a/r compiled without Fractions equal the Fraction result."""
    from charter.compiler import ir
    from charter.runtime.codegen import Compiler, Env

    r = F(n, d)
    if op == "/" and r == 0:
        return
    expr = ir.Builtin(
        name=name,
        args=(
            ir.Binary(
                op=op,
                left=ir.Const(value=a, type=ir.TInt()),
                right=ir.Const(value=r, type=ir.TRatio()),
                type=ir.TRatio(),
            ),
        ),
        type=ir.TInt(),
    )
    pol = ir.Policy(
        name="p",
        version="1",
        assets=(),
        roles=(),
        params=(),
        pools=(),
        records=(),
        handlers=(),
        properties=(),
        tests=(),
    )
    got = Compiler(pol).expr(expr)(Env(None, {}, 0, "clock", 10))
    exact = F(a) * r if op == "*" else F(a) / r
    assert got == sem.ROUNDINGS[name](exact)


@pytest.mark.parametrize("n,d", [(7, 2), (-7, 2), (5, 2), (-5, 2), (6, 3), (1, 3), (-1, 3), (0, 5)])
def test_round_quotient_agrees_with_fraction_rounding(n: int, d: int) -> None:
    from fractions import Fraction

    x = Fraction(n, d)
    assert sem.round_quotient(n, d, "floor") == sem.floor(x)
    assert sem.round_quotient(n, d, "ceil") == sem.ceil(x)
    assert sem.round_quotient(n, d, "round") == sem.round_half_up(x)


# ---------------------------------------------------------------- statutory minimum, orders


@settings(max_examples=300, deadline=None)
@given(st.integers(0, 500), st.lists(st.integers(0, 60), min_size=1, max_size=8),
       st.integers(1, 5))
def test_statutory_minimum_is_a_floor_with_recomputed_quotas(amount, weights, m):
    n = len(weights)
    try:
        shares, left = split(amount, weights, "largest_remainder", m, None, "quota")
    except SplitError as e:
        assert e.code == "split_minimum" and amount < n * m
        return
    assert all(s >= m for s in shares) and sum(shares) + left == amount
    free = [i for i, s in enumerate(shares) if s > m]
    if sum(weights):
        assert left == 0
    # the recipients above the minimum split what the fixed ones left by largest remainder,
    # each within one unit of its recomputed quota
    rest = amount - m * (n - len(free))
    w_free = sum(weights[i] for i in free)
    for i in free:
        assert abs(F(shares[i]) - F(rest * weights[i], w_free)) < 1
        assert F(rest * weights[i], w_free) >= m


def test_order_recipients():
    keys, weights = ["@b", "@a", "@c"], [1, 5, 5]
    assert sem.order_recipients(keys, weights, "listed") == [0, 1, 2]
    assert sem.order_recipients(keys, weights, "key") == [1, 0, 2]
    assert sem.order_recipients(keys, weights, "weight") == [1, 2, 0]
    with pytest.raises(SplitError):
        sem.order_recipients([1, "a"], [1, 1], "key")
