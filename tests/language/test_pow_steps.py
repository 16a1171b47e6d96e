"""`pow(x, n, d)`: each of the n products rounded down to d decimals (issue 17 item 4, the
rounding of each step when x is a ratio at a fixed scale).  The engine and the reference
agree with a plain-Python statement of the rule; the verifier proves the stated error bound
and refutes the claim that the steps are exact."""
from __future__ import annotations

import math
from fractions import Fraction

from hypothesis import HealthCheck, given, settings, strategies as st

from charter.compiler import verify as V
from charter.compiler.pipeline import Compilation
from charter.runtime.api import open_runtime

SRC = """policy p version "1.0"
role Agent
record R { v: ratio }
on f(x: ratio, k: int within 0..12) by a: Agent {
    create R("r") { v = pow(x, k, PLACES) }
}
"""


def _steps(x: Fraction, n: int, d: int) -> Fraction:
    out = Fraction(1)
    for _ in range(n):
        out = Fraction(math.floor(out * x * 10**d), 10**d)
    return out


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(x=st.fractions(min_value=-3, max_value=3, max_denominator=10**4),
       k=st.integers(0, 12), d=st.integers(0, 18))
def test_each_step_is_rounded_down_on_every_backend(x, k, d):
    pol = Compilation.from_text(SRC.replace("PLACES", str(d)), "p.charter").ir
    for backend in ("python", "closures", "reference"):
        rt = open_runtime(pol, backend=backend)
        rt.genesis_apply(lambda s: s.set_role("Agent", "a", {}))
        out = rt.submit({"id": "e", "type": "f", "submitter": "@a", "time": 0,
                         "args": {"x": {"num": x.numerator, "den": x.denominator}, "k": k}})
        want = _steps(x, k, d)
        if max(abs(want.numerator), want.denominator) > 2**63 - 1:
            # a stored ratio is bounded: the event is refused, the same on every backend
            assert not out.applied and out.code == "out_of_bounds", backend
            continue
        assert out.applied, (backend, out.code, out.message)
        assert Fraction(rt.records("R")["r"]["v"]) == want, backend


TWIN = """policy ptwin version "1.0"
role Agent
record R { v: ratio }
on f(k: int within 0..10) by a: Agent
    ensures R(a).v <= pow(95%, k)
    ensures R(a).v >= pow(95%, k) - k / 10000
{
    create R(a) { v = pow(95%, k, 4) }
}
"""


def _status(text: str) -> dict[str, str]:
    c = Compilation.from_text(text, "ptwin.charter")
    assert not [d for d in c.diagnostics if d.severity == "error"], c.diagnostics
    return {r.name: r.status for r in V.verify(c.ir, V.Options(), use_cache=False)
            if ".ensures." in r.name}


def test_twins():
    # rounded down at each step: never above the exact power, at most k units of 10^-4 below
    assert _status(TWIN) == {"f.ensures.1": "proved", "f.ensures.2": "proved"}
    # the steps are not exact: 0.95^3 = 0.857375, stepwise 0.8573
    got = _status(TWIN.replace("ensures R(a).v <= pow(95%, k)", "ensures R(a).v == pow(95%, k)"))
    assert got == {"f.ensures.1": "refuted", "f.ensures.2": "proved"}
    # a tighter error bound than the steps allow is refuted
    got = _status(TWIN.replace("k / 10000", "k / 100000"))
    assert got == {"f.ensures.1": "proved", "f.ensures.2": "refuted"}
