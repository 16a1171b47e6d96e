"""Pure functions, `var` locals, `for i in a..b`, `pow` with a ranged exponent and fixed-point
`sqrt` (issue 17 part A), through every layer.

The policy beside this file (``fn_var_range.charter``) holds the runtime cases as its own
`test` blocks; here they run on both backends, the formatter round-trips the policy, the IR
carries no trace of a call (calls are inlined), hostile event arguments are rejected
cleanly, and the verifier proves a correct twin and refutes its buggy twin for each feature.
"""
from __future__ import annotations

import functools
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from charter.compiler import ir
from charter.compiler import verify as V
from charter.compiler.fmt import format_source, strip_positions
from charter.compiler.parse import parse_source
from charter.compiler.pipeline import Compilation
from charter.runtime.api import open_runtime
from charter.runtime.testing import run_tests

HERE = Path(__file__).resolve().parent
POLICY = HERE / "fn_var_range.charter"


@functools.lru_cache(maxsize=1)
def _POLICY() -> ir.Policy:
    return Compilation.from_path(POLICY).ir


@pytest.fixture(scope="module")
def pol() -> ir.Policy:
    return _POLICY()


def test_policy_tests_pass_and_both_backends_agree(pol):
    fast = run_tests(pol, backend="python")
    slow = run_tests(pol, backend="closures")
    assert len(fast) == 7
    for a, b in zip(fast, slow):
        assert a.passed, (a.name, a.failures)
        assert (a.name, a.passed, a.outcomes, a.journal_hash) == (
            b.name, b.passed, b.outcomes, b.journal_hash)


def test_formatter_round_trips_the_new_forms():
    text = POLICY.read_text("utf-8")
    once = format_source(text)
    assert format_source(once) == once
    assert strip_positions(parse_source(once)) == strip_positions(parse_source(text))
    for form in ("fn cut(amount: Credit, rate: ratio) -> Credit {", "    return floor(",
                 "    var total = 0 Credit", "        set total = total + step",
                 "    for i in 1..Job(id).count + n {", "    for i in n..2 {"):
        assert form in once, form


def _walk(x):
    yield x
    if isinstance(x, tuple):
        for i in x:
            yield from _walk(i)
    elif hasattr(type(x), "__attrs_attrs__"):
        for f in type(x).__attrs_attrs__:
            yield from _walk(getattr(x, f.name))


def test_calls_are_inlined_and_the_ir_round_trips_through_json(pol):
    nodes = list(_walk(pol.handlers))
    kinds = {type(n).__name__ for n in nodes}
    assert {"Var", "SetLocal", "ForEach"} <= kinds
    # `net(amount)` became `amount - floor(amount * fee)`: the handler reads the parameter
    pay = pol.handler("pay")
    assert any(isinstance(n, ir.ParamRef) and n.name == "fee" for n in _walk(pay.body))
    assert ir.from_data(ir.to_data(pol)) == pol
    # the aggregate variable of `total_weight` was renamed apart from the caller's `a`
    weigh = pol.handler("weigh")
    aggs = [n for n in _walk(weigh.body) if isinstance(n, ir.Aggregate)]
    assert len({a.var for a in aggs}) == len(aggs) >= 2


def test_range_loop_variable_has_the_static_range(pol):
    loops = [n for n in _walk(pol.handler("count_up").body) if isinstance(n, ir.ForEach)]
    assert loops[0].var_type == ir.TInt(lo=1, hi=25)
    # the upper bound reads a record field: bound once, before the loop
    lets = [s for s in pol.handler("count_up").body if isinstance(s, ir.Let)]
    assert lets and lets[0].name.startswith("i$hi")


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-10**30, max_value=10**30)
    | st.floats(allow_nan=True) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner,
                                                                 max_size=3),
    max_leaves=6)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(event=st.sampled_from(["ladder", "count_up", "decay_pay", "backwards"]),
       a=_JSON, b=_JSON)
def test_hostile_arguments_are_rejected_without_a_trace(event, a, b):
    rt = open_runtime(_POLICY())
    rt.genesis_apply(lambda s: s.set_role("Agent", "x", {"weight": 1}))
    rt.genesis_apply(lambda s: s.post("supply:Credit", "party:x:Credit", "Credit", 10_000,
                                      "given"))
    assert rt.submit({"id": "o", "type": "open", "submitter": "@x", "time": 0,
                      "args": {"id": "j"}}).applied
    names = {"ladder": ("amount", "n"), "count_up": ("id", "n"), "decay_pay": ("amount", "k"),
             "backwards": ("n", "x")}[event]
    before = (rt.head, rt.seq, rt.balances())
    out = rt.submit({"id": "e1", "type": event, "submitter": "@x", "time": 1,
                     "args": dict(zip(names, (a, b)))})
    assert out.applied or (out.code and out.message and (rt.head, rt.seq, rt.balances()) == before)


# ---- verifier twins: the correct policy is proved, the buggy twin refuted -------------

TWINS = '''
policy twins version "1.0"

asset Credit: token, decimals 2
role Agent
pool commons of Credit
param fee: percent = 2% within 0%..10%

fn cut(amount: Credit, rate: ratio) -> Credit {
    let raw = floor(amount * rate)
    return raw
}

on pay(amount: Credit) by p: Agent
    ensures balance(commons) == old(balance(commons)) + cut(amount, fee)
{
    require amount > 0 Credit
    require balance(p, Credit) >= amount
    transfer cut(amount, fee) from p to commons
}

on repeat(amount: Credit, n: int within 0..5) by p: Agent
    ensures balance(commons) == old(balance(commons)) + amount * n
{
    require amount > 0 Credit
    var total = 0 Credit
    for i in 1..n {
        set total = total + amount
    }
    require balance(p, Credit) >= total
    transfer total from p to commons
}

on decay(amount: Credit, k: int within 0..8) by p: Agent
    ensures balance(commons) <= old(balance(commons)) + amount
{
    require amount > 0 Credit
    require balance(p, Credit) >= amount
    transfer floor(amount * pow(90%, k)) from p to commons
}

on match(contribution: Credit) by p: Agent
    ensures balance(commons) <= old(balance(commons)) + contribution
{
    require contribution >= 1 Credit
    require balance(p, Credit) >= contribution
    transfer floor(from_minor(100, Credit) * sqrt(minor(contribution) / 100, 2)) from p to commons
}
'''

BUGS = {
    # the body rounds up while the function (and the postcondition) rounds down
    "pay": ("transfer cut(amount, fee)", "transfer ceil(amount * fee)"),
    # a var assigned in a branch inside the loop: one cent too much from the 4th round on
    "repeat": ("for i in 1..n {", "for i in 1..n {\n        if i > 3 {\n"
                                  "            set total = total + 0.01 Credit\n        }"),
    # a growth factor instead of a decay: pow with a variable exponent is encoded exactly
    "decay": ("pow(90%, k)", "pow(110%, k)"),
    # sqrt(x) <= x only from x = 1 on: below it the root pays more than was given
    "match": ("require contribution >= 1 Credit", "require contribution > 0 Credit"),
}


def _ensures(text: str) -> dict[str, str]:
    c = Compilation.from_text(text, "twins.charter")
    assert not [d for d in c.diagnostics if d.severity == "error"]
    return {r.name: r.status for r in V.verify(c.ir, V.Options(), use_cache=False)
            if r.name.endswith(".ensures.1")}


def test_correct_twin_is_proved():
    assert _ensures(TWINS) == {f"{h}.ensures.1": "proved" for h in BUGS}


@pytest.mark.parametrize("handler", sorted(BUGS))
def test_buggy_twin_is_refuted(handler):
    old, new = BUGS[handler]
    assert old in TWINS
    got = _ensures(TWINS.replace(old, new))
    assert got[f"{handler}.ensures.1"] == "refuted"
    assert all(s == "proved" for h, s in got.items() if h != f"{handler}.ensures.1")
