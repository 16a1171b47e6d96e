"""Pure functions, `var` locals, `for i in a..b`, `pow` with a ranged exponent, fixed-point
`sqrt`, `max_by`/`min_by`, text building (`+`, `text`, `format`) and composite record keys
(issue 17 part A), through every layer.

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
from charter.compiler.fmt import format_source
from charter.compiler.pipeline import Compilation
from charter.runtime.api import open_runtime
from charter.runtime.testing import run_tests
from helpers import formatted, walk

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
    _, once = formatted(POLICY, ("fn cut(amount: Credit, rate: ratio) -> Credit {",
                                 "    return floor(", "    var total = 0 Credit",
                                 "        set total = total + step",
                                 "    for i in 1..Job(id).count + n {", "    for i in n..2 {"))
    assert format_source(once) == once


def test_calls_are_inlined_and_the_ir_round_trips_through_json(pol):
    nodes = list(walk(pol.handlers))
    kinds = {type(n).__name__ for n in nodes}
    assert {"Var", "SetLocal", "ForEach"} <= kinds
    # `net(amount)` became `amount - floor(amount * fee)`: the handler reads the parameter
    pay = pol.handler("pay")
    assert any(isinstance(n, ir.ParamRef) and n.name == "fee" for n in walk(pay.body))
    assert ir.from_data(ir.to_data(pol)) == pol
    # the aggregate variable of `total_weight` was renamed apart from the caller's `a`
    weigh = pol.handler("weigh")
    aggs = [n for n in walk(weigh.body) if isinstance(n, ir.Aggregate)]
    assert len({a.var for a in aggs}) == len(aggs) >= 2


def test_range_loop_variable_has_the_static_range(pol):
    loops = [n for n in walk(pol.handler("count_up").body) if isinstance(n, ir.ForEach)]
    assert loops[0].var_type == ir.TInt(lo=1, hi=25)
    # the upper bound reads a record field: bound once, before the loop
    lets = [s for s in pol.handler("count_up").body if isinstance(s, ir.Let)]
    assert lets and lets[0].name.startswith("i$hi")



NEGATIVE_RANGE = """policy neg version "1.0"
role M
record R { total: int = 0 }
on f(n: int within 0..3) by p: M
    ensures R("r").total == 0 - n * (n + 1) / 2
{
    var t = 0
    for i in -n..-1 {
        set t = t + i
    }
    create R("r") { total = t }
}
"""


def test_a_negated_bound_is_static():
    """`for i in -n..-1` (and `-5..-1`) is bounded like `1..n`: the loop variable gets
    -3..-1's static range, every backend sums it the same, and the verifier proves the sum."""
    c = Compilation.from_text(NEGATIVE_RANGE, "neg.charter")
    assert not [d for d in c.diagnostics if d.severity == "error"], c.diagnostics
    [loop] = [n for n in walk(c.ir.handler("f").body) if isinstance(n, ir.ForEach)]
    assert loop.var_type == ir.TInt(lo=-3, hi=-1)
    for backend in ("python", "closures", "reference"):
        rt = open_runtime(c.ir, backend=backend)
        rt.genesis_apply(lambda s: s.set_role("M", "a", {}))
        out = rt.submit({"id": "e", "type": "f", "submitter": "@a", "time": 0,
                         "args": {"n": 3}})
        assert out.applied, (backend, out.code, out.message)
        assert rt.records("R")["r"]["total"] == -6, backend
    res = {r.name: r.status for r in V.verify(c.ir, V.Options(), use_cache=False)}
    assert res["f.ensures.1"] == "proved"

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


# ---- max_by / min_by ---------------------------------------------------------------------

BEST = HERE / "max_by.charter"


TEXT = HERE / "text.charter"


KEYS = HERE / "composite_keys.charter"


@pytest.mark.parametrize("path", [POLICY, BEST, TEXT, KEYS], ids=lambda p: p.stem)
def test_the_reference_interpreter_agrees(path):
    pol = Compilation.from_path(path).ir
    ref = run_tests(pol, backend="reference")
    eng = run_tests(pol, backend="python")
    assert all(r.passed for r in ref), [(r.name, r.failures) for r in ref]
    assert [(r.name, r.outcomes, r.journal_hash) for r in ref] == [
        (r.name, r.outcomes, r.journal_hash) for r in eng]


def test_max_by_formats_and_lowers_to_one_node():
    text = BEST.read_text("utf-8")
    assert format_source(text) == text
    pol = Compilation.from_path(BEST).ir
    best = [n for n in walk(pol.handlers) if isinstance(n, ir.Best)]
    assert [(b.kind, len(b.keys)) for b in best] == [("min", 2), ("max", 2)]


@settings(max_examples=60, deadline=None)
@given(rows=st.lists(st.tuples(st.integers(0, 3), st.integers(0, 3)), min_size=1, max_size=6))
def test_max_by_picks_the_first_best_like_python(rows):
    """The three backends agree with a plain-Python statement of the rule."""
    src = ["policy pick version \"1.0\"", "role Agent { p: int = 0, q: int = 0 }",
           "record Win { who: party }",
           "on pick() by clock {",
           "    create Win(\"w\") { who = max_by(a.p then by -a.q for a in Agent) }", "}"]
    pol = Compilation.from_text("\n".join(src), "pick.charter").ir
    members = {f"m{i}": (p, q) for i, (p, q) in enumerate(rows)}
    want = None
    for name in sorted(members):
        p, q = members[name]
        if want is None or (p, -q) > (members[want][0], -members[want][1]):
            want = name
    for backend in ("python", "closures", "reference"):
        rt = open_runtime(pol, backend=backend)
        for name, (p, q) in members.items():
            rt.genesis_apply(lambda s, n=name, p=p, q=q: s.set_role("Agent", n, {"p": p, "q": q}))
        assert rt.submit({"id": "e", "type": "pick", "submitter": "clock", "time": 0,
                          "args": {}}).applied
        assert rt.records("Win")["w"]["who"] == want, backend


BEST_TWIN = """
policy btwin version "1.0"

role Agent
record Entry { who: Agent, score: int within 0..100, late: int within 0..10 }
record Board { top: int = 0, runner: int = 0 }

on award() by clock
    ensures all(e.score <= Board("b").top for e in Entry)
    ensures all(e.score < Board("b").top or e.late >= Board("b").runner for e in Entry)
{
    let w = max_by(e.score then by -e.late for e in Entry)
    set Board("b").top = Entry(w).score
    set Board("b").runner = Entry(w).late
}
"""


def _award(text: str) -> list[str]:
    c = Compilation.from_text(text, "btwin.charter")
    res = {r.name: r.status for r in V.verify(c.ir, V.Options(), use_cache=False)}
    return [res["award.ensures.1"], res["award.ensures.2"]]


def test_max_by_twins():
    assert _award(BEST_TWIN) == ["proved", "proved"]
    # the smallest score wins: the first postcondition fails
    assert _award(BEST_TWIN.replace("max_by(e.score", "min_by(e.score"))[0] == "refuted"
    # the tie-break is the wrong way round: only the second fails
    assert _award(BEST_TWIN.replace("then by -e.late", "then by e.late")) == [
        "proved", "refuted"]


# ---- text --------------------------------------------------------------------------------

def test_text_policy_formats_and_closures_agree():
    text = TEXT.read_text("utf-8")
    assert format_source(text) == text
    pol = Compilation.from_path(TEXT).ir
    fast, slow = run_tests(pol, backend="python"), run_tests(pol, backend="closures")
    assert all(r.passed for r in fast), [(r.name, r.failures) for r in fast]
    assert [r.journal_hash for r in fast] == [r.journal_hash for r in slow]


def test_constant_texts_are_joined_by_the_checker():
    pol = Compilation.from_text('policy t version "1"\nrole M\nrecord R { x: text }\n'
                                'on f() by m: M {\n    create R("k") { x = "a" + "b" + "c" }\n}',
                                "t.charter").ir
    create = pol.handler("f").body[0]
    assert create.values == (("x", ir.Const(value="abc", type=ir.TText())),)


@settings(max_examples=60, deadline=None)
@given(x=st.fractions(min_value=-10**9, max_value=10**9, max_denominator=10**6),
       places=st.integers(0, 8), group=st.sampled_from(["", ",", "_", " ", "'"]))
def test_format_agrees_between_engine_and_reference(x, places, group):
    src = ('policy f version "1"\nrole M\nrecord R { s: text }\n'
           f'on f(x: ratio) by m: M {{\n    create R("k") {{ s = format(x, {places}, "{group}", "!") }}\n}}')
    pol = Compilation.from_text(src, "f.charter").ir
    got = set()
    for backend in ("python", "closures", "reference"):
        rt = open_runtime(pol, backend=backend)
        rt.genesis_apply(lambda s: s.set_role("M", "m", {}))
        out = rt.submit({"id": "e", "type": "f", "submitter": "@m", "time": 0,
                         "args": {"x": {"num": x.numerator, "den": x.denominator}}})
        assert out.applied, (backend, out.code, out.message)
        got.add(rt.records("R")["k"]["s"])
    assert len(got) == 1
    (s,) = got
    # read back: the digits (without grouping and suffix) are x rounded half up
    num = s[:-1].replace(group, "") if group else s[:-1]
    from fractions import Fraction
    assert abs(Fraction(num) - x) <= Fraction(1, 2 * 10**places)


def test_a_built_text_is_bounded():
    src = ('policy b version "1"\nrole M\nrecord R { s: text }\n'
           'on grow(seed: text) by m: M {\n    var s = seed\n    for i in 1..30 {\n'
           '        set s = s + s\n    }\n    create R("k") { s = s }\n}')
    pol = Compilation.from_text(src, "b.charter").ir
    for backend in ("python", "closures", "reference"):
        rt = open_runtime(pol, backend=backend)
        rt.genesis_apply(lambda s: s.set_role("M", "m", {}))
        out = rt.submit({"id": "e", "type": "grow", "submitter": "@m", "time": 0,
                         "args": {"seed": "ab"}})
        assert not out.applied and out.code == "text_too_long", backend


TEXT_TWIN = """
policy ttwin version "1.0"

role Member
record Vote { claim: text, voter: Member }

on vote(claim: text) by m: Member
    ensures exists Vote(claim + "|" + text(m))
{
    require not exists Vote(claim + "|" + text(m)) else "already voted"
    create Vote(claim + "|" + text(m)) { claim = claim, voter = m }
}
"""


def test_text_twins():
    def status(text):
        c = Compilation.from_text(text, "ttwin.charter")
        return {r.name: r.status for r in V.verify(c.ir, V.Options(), use_cache=False)}[
            "vote.ensures.1"]

    assert status(TEXT_TWIN) == "proved"
    assert status(TEXT_TWIN.replace('ensures exists Vote(claim + "|"',
                                    'ensures exists Vote(claim + ":"')) == "refuted"


# ---- composite keys ----------------------------------------------------------------------

def test_composite_keys_escape_their_parts():
    from charter.runtime.semantics import composite_key

    seen = {}
    for parts in (["a|b", "c"], ["a", "b|c"], ["a\\", "|b"], ["a\\|", "b"], ["a", "b", "c"],
                  ["", "a|b|c"], ["a|b|c", ""]):
        k = composite_key(parts)
        assert k not in seen, (parts, seen.get(k))
        seen[k] = parts
    assert composite_key(["c|1", "@ann", "1"]) == "c\\|1|@ann|1"
    text = KEYS.read_text("utf-8")
    assert format_source(text) == text


@settings(max_examples=80, deadline=None)
@given(parts=st.lists(st.text(alphabet="ab|\\", max_size=4), min_size=2, max_size=3),
       other=st.lists(st.text(alphabet="ab|\\", max_size=4), min_size=2, max_size=3))
def test_composite_keys_are_injective(parts, other):
    from charter.runtime.semantics import composite_key

    if len(parts) == len(other) and parts != other:
        assert composite_key(parts) != composite_key(other)


KEY_TWIN = """
policy ktwin version "1.0"

role Member
record Vote { voter: Member, round: int }

on vote(claim: text, round: int within 1..3) by m: Member
    ensures exists Vote(claim, m, round)
    ensures round == 1 or old(exists Vote(claim, m, 1)) == exists Vote(claim, m, 1)
{
    require not exists Vote(claim, m, round) else "already voted"
    create Vote(claim, m, round) { voter = m, round = round }
}
"""


def test_composite_key_twins():
    def status(text):
        c = Compilation.from_text(text, "ktwin.charter")
        res = {r.name: r.status for r in V.verify(c.ir, V.Options(), use_cache=False)}
        return [res["vote.ensures.1"], res["vote.ensures.2"]]

    # the second postcondition needs the key's parts back from the key (injectivity)
    assert status(KEY_TWIN) == ["proved", "proved"]
    assert status(KEY_TWIN.replace("create Vote(claim, m, round)",
                                   "create Vote(claim, m, 1)"))[0] == "refuted"
