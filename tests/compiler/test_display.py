"""The one value formatter: every value as an author writes it (compiler/display.py)."""
from __future__ import annotations

from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from charter.compiler import display, ir

CREDIT, HOURS = ir.TAmount(asset="Credit"), ir.TAmount(asset="Hours")
DEC = {"Credit": 2, "Hours": 2, "Grain": 0}


@pytest.mark.parametrize("v,t,shown", [
    (1250, CREDIT, "12.50 Credit"),
    (-5, CREDIT, "-0.05 Credit"),
    (50000, CREDIT, "500.00 Credit"),
    (1100, HOURS, "11.00 Hours"),
    (7, ir.TAmount(asset="Grain"), "7 Grain"),
    (Fraction(1, 20), ir.TRatio(), "5%"),
    (Fraction(1, 400), ir.TRatio(), "0.25%"),
    (Fraction(1, 5), ir.TRatio(), "20%"),
    (Fraction(2, 21), ir.TRatio(), "2/21 (about 9.52%)"),
    (Fraction(1, 2), ir.TRatio(), "50%"),
    (7, ir.TRatio(), "700%"),
    (2_592_000, ir.TDuration(), "30 days"),
    (3600, ir.TDuration(), "1 hour"),
    (31_536_000, ir.TDuration(), "365 days"),
    (5400, ir.TDuration(), "90 minutes"),
    (61, ir.TDuration(), "61 seconds"),
    (0, ir.TDuration(), "0 seconds"),
    (5000, ir.TTime(), "5000"),
    ("ann", ir.TParty(), "@ann"),
    ('a "q"', ir.TText(), '"a \\"q\\""'),
    (None, ir.TOptional(inner=CREDIT), "none"),
    (True, ir.TBool(), "true"),
    ((100, 250), ir.TList(inner=CREDIT), "[1.00 Credit, 2.50 Credit]"),
    (Fraction(5, 2), None, "250%"),
    (42, None, "42"),
])
def test_values_as_authors_write_them(v, t, shown):
    assert display.value(v, t, DEC) == shown


def test_ranges_in_the_declared_units():
    assert display.value_range(3600, 31_536_000, ir.TDuration()) == "1 hour..365 days"
    assert display.value_range(0, Fraction(1, 10), ir.TRatio()) == "0%..10%"
    assert display.value_range(0, 1000, HOURS, DEC) == "0.00 Hours..10.00 Hours"


def test_decimals_from_a_policy():
    from charter.compiler.pipeline import load_policy

    pol = load_policy('policy p version "1"\nasset Credit: token, decimals 3\n')
    assert display.value(1500, ir.TAmount(asset="Credit"), pol) == "1.500 Credit"


@settings(max_examples=200, deadline=None)
@given(st.integers(), st.sampled_from([CREDIT, ir.TRatio(), ir.TDuration(), ir.TInt(), None]),
       st.integers(1, 10**6))
def test_total_on_any_number(n, t, den):
    # never raises, even past Python's 4,300-digit int/str limit, and stays short
    for v in (n, n * 10**5000, Fraction(n, den)):
        if isinstance(v, Fraction) and isinstance(t, (ir.TDuration, ir.TInt)):
            continue
        text = display.value(v, t, DEC)
        assert text and len(text) < 300
