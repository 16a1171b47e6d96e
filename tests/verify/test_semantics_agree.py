"""The verifier's split encoding and runtime.semantics agree: for concrete inputs the Z3
constraints have exactly one solution, the runtime's; and proved fairness properties hold on
random runtime executions."""

from __future__ import annotations

from fractions import Fraction

import z3
from hypothesis import given, settings, strategies as st

from charter.compiler import ir
from charter.compiler.verify.encode import Encoder
from charter.compiler.verify.splits import _split_shares
from charter.runtime import semantics

POLICY = ir.Policy(
    name="t",
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

# Dean and Huntington-Hill compare awards through products of degree 3-4 in the shares,
# which Z3's non-linear integer reasoning answers slowly (seconds, sometimes not within
# a limit, so a handler using them may end `unknown`); they are checked on the fixed
# table below instead of random inputs.
NONLINEAR = ("dean", "huntington_hill")

inputs = st.tuples(
    st.sampled_from([m for m in semantics.METHODS if m not in NONLINEAR]),
    st.integers(0, 60),
    st.lists(st.integers(0, 9), min_size=0, max_size=3),
    st.one_of(st.none(), st.integers(0, 5)),
    st.one_of(st.none(), st.integers(0, 30)),
    st.sampled_from(semantics.MINIMUM_RULES),
    st.sampled_from([1, 1, 2, 3, 7]),  # > 1: the weights are ratios w / den (Real terms)
)


@settings(max_examples=200, deadline=None)
@given(inputs)
def test_encoding_has_exactly_the_runtime_result(case):
    method, amount, weights, minimum, cap, rule, den = case
    if minimum is not None and cap is not None and cap < minimum:
        cap = minimum
    try:
        want, left = semantics.split(amount, weights, method, minimum, cap, rule)
    except semantics.SplitError:
        return  # the runtime rejects: the verifier treats it as a failed runtime check
    enc = Encoder(POLICY)
    k = len(weights)
    included = [z3.BoolVal(True)] * k
    if den == 1:
        ws = [z3.IntVal(w) for w in weights]
    else:  # the runtime scales ratio weights by their common denominator: same result
        ws = [z3.RealVal(Fraction(w, den)) for w in weights]
    mn = z3.IntVal(minimum) if minimum is not None else None
    cp = z3.IntVal(cap) if cap is not None else None
    shares, leftover, _, _ = _split_shares(
        enc, z3.BoolVal(True), method, z3.IntVal(amount), ws, included, z3.IntVal(k), mn, cp,
        rule,
    )
    s = z3.Solver()
    s.add(*enc.assumptions)
    assert s.check() == z3.sat, "the encoding rejects the runtime's inputs"
    m = s.model()
    got = [m.eval(x, model_completion=True).as_long() for x in shares]
    assert got == want
    assert m.eval(leftover, model_completion=True).as_long() == left
    # uniqueness: no other allocation satisfies the constraints
    if shares:
        s.add(z3.Or(*[x != v for x, v in zip(shares, want)]))
        assert s.check() == z3.unsat


NONLINEAR_CASES = [
    (m, rule, amount, weights, minimum)
    for m in NONLINEAR
    for rule in semantics.MINIMUM_RULES
    for amount, weights, minimum in ((7, [3, 1, 2], 1), (11, [0, 5, 5], 2), (4, [1, 0, 0], None),
                                     (2, [5, 1, 3], None), (9, [1, 8], None))
]


def test_encoding_with_symbolic_weights_is_the_runtime_result():
    """With the weights and amount left symbolic (as in a handler), every model the encoding
    admits for a fixed input is the runtime's result (spot checks over all methods)."""
    cases = [
        (m, rule, amount, weights, minimum)
        for m in semantics.METHODS
        for rule in semantics.MINIMUM_RULES
        for amount, weights, minimum in ((7, [3, 1, 2], 1), (11, [0, 5, 5], 2), (4, [1, 0, 0], None))
    ] + NONLINEAR_CASES
    for method, rule, amount, weights, minimum in cases:
        try:
            want, _ = semantics.split(amount, weights, method, minimum, None, rule)
        except semantics.SplitError:
            continue
        enc = Encoder(POLICY)
        ws = [z3.Int(f"w{i}") for i in range(len(weights))]
        amt = z3.Int("amt")
        mn = z3.IntVal(minimum) if minimum is not None else None
        shares, _, _, _ = _split_shares(
            enc, z3.BoolVal(True), method, amt, ws, [z3.BoolVal(True)] * len(ws),
            z3.IntVal(len(ws)), mn, None, rule,
        )
        s = z3.Solver()
        s.set("timeout", 20000)
        s.add(*enc.assumptions, amt == amount, *[w == v for w, v in zip(ws, weights)])
        s.push()
        s.add(*[x == v for x, v in zip(shares, want)])
        assert s.check() == z3.sat, ("the runtime's result is excluded", method, rule, weights)
        s.pop()
        s.add(z3.Or(*[x != v for x, v in zip(shares, want)]))
        assert s.check() == z3.unsat, (method, rule, amount, weights, minimum)


@settings(max_examples=1000, deadline=None)
@given(st.integers(0, 10_000), st.lists(st.integers(0, 50), min_size=1, max_size=5))
def test_largest_remainder_fairness_on_runtime(amount, weights):
    """What the verifier proves for largest_remainder (proportional within 1 unit, symmetric,
    monotone) holds on random runtime executions."""
    shares, left = semantics.split(amount, weights, "largest_remainder")
    total = sum(weights)
    assert sum(shares) + left == amount and all(x >= 0 for x in shares)
    if total == 0:
        return
    assert left == 0
    for i, w in enumerate(weights):
        assert abs(shares[i] - Fraction(amount * w, total)) <= 1
        for j, v in enumerate(weights):
            if w > v:
                assert shares[i] >= shares[j]
            if w == v:
                assert abs(shares[i] - shares[j]) <= 1


def test_rounding_builtins_match_runtime():
    enc = Encoder(POLICY)
    from charter.compiler.verify.terms import zceil, zfloor, zround

    for num in range(-13, 14):
        for den in (1, 2, 3, 4, 7):
            x = Fraction(num, den)
            r = z3.RealVal(x)
            for fn, ref in (
                (zfloor, semantics.floor),
                (zceil, semantics.ceil),
                (zround, semantics.round_half_up),
            ):
                assert z3.simplify(fn(r)).as_long() == ref(x), (fn.__name__, x)
    del enc
