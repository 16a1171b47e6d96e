"""Procedures (`proc p(x: T) { ... }`, run with `do p(a)`), through every layer.

The policy beside this file (``procs.charter``) holds the runtime cases as its own `test`
blocks (a wind-up shared by a handler and a deadline handler, an argument read once,
names that do not clash, a `require` inside a procedure rejecting the whole event); here
they run on every backend, the formatter round-trips the policy, the IR holds only
ordinary statements (a `do` is expanded by the compiler), and the verifier proves a
correct twin and refutes its buggy twin.
"""
from __future__ import annotations

from pathlib import Path

import pytest

from charter.compiler import ir
from charter.compiler import verify as V
from charter.compiler.fmt import format_source
from charter.compiler.pipeline import Compilation
from charter.runtime.testing import run_tests
from helpers import formatted, walk

HERE = Path(__file__).resolve().parent
POLICY = HERE / "procs.charter"
STDLIB = HERE.parent.parent / "stdlib_policies"


@pytest.fixture(scope="module")
def pol() -> ir.Policy:
    return Compilation.from_path(POLICY).ir


def test_policy_tests_pass_and_every_backend_agrees(pol):
    runs = {b: run_tests(pol, backend=b) for b in ("python", "closures", "reference")}
    assert len(runs["python"]) == 4
    for r in runs["python"]:
        assert r.passed, (r.name, r.failures)
    for b in ("closures", "reference"):
        assert [(r.name, r.passed, r.outcomes, r.journal_hash) for r in runs[b]] == [
            (r.name, r.passed, r.outcomes, r.journal_hash) for r in runs["python"]], b


def test_formatter_round_trips_procedures():
    text, once = formatted(POLICY, ("proc close_round(r: Round) {",
                                    "    do take_fee(balance(fund))", "        do close_round(r)"))
    assert once == text


def _shape(stmts) -> list[str]:
    return [type(s).__name__ for s in stmts]


def test_a_do_is_expanded_into_ordinary_statements(pol):
    close = pol.handler("close")
    # the caller's own statements, then one `let` per parameter, then the body (with the
    # nested `do take_fee` expanded in it)
    assert _shape(close.body) == ["Let", "Require", "Let", "Let", "Let", "Move", "Split",
                                  "Move", "SetField", "SetField"]
    # the body is the same in both handlers that do it, apart from the fresh names
    expiry = pol.handler("Round.ends.passes")
    (inner,) = [s for s in expiry.body if isinstance(s, ir.If)]
    assert _shape(inner.then) == _shape(close.body[2:])
    # every name the body binds was made fresh: none is the caller's `r` or `share`
    bound = {s.name for s in close.body if isinstance(s, ir.Let)}
    assert "r" in bound and len(bound) == 4
    assert all("~" in n for n in bound - {"r"})
    refund = pol.handler("refund_two")
    lets = [s.name for s in walk(refund.body) if isinstance(s, ir.Let)]
    assert len(lets) == len(set(lets)) == 5  # share + (to, amount) twice
    assert ir.from_data(ir.to_data(pol)) == pol


def test_the_argument_is_bound_before_the_body_moves_anything(pol):
    tidy = pol.handler("tidy")
    first = tidy.body[0]
    assert isinstance(first, ir.Let) and isinstance(first.value, ir.AccBalance)
    assert all(isinstance(s, ir.Move) for s in tidy.body[1:])


def test_spans_inside_an_expanded_body_point_into_the_procedure(pol):
    text = POLICY.read_text("utf-8").splitlines()
    close = pol.handler("close")
    split = next(s for s in close.body if isinstance(s, ir.Split))
    assert text[split.span.line - 1].strip().startswith("split all of fund")
    assert split.span.line < 30  # inside `proc close_round`, not in `on close`


def test_split_properties_find_splits_that_came_from_a_procedure():
    text = POLICY.read_text("utf-8") + (
        "\nproperty by_hand: split in close is proportional within 0.01 Credit\n"
        "property by_clock: split in Round.ends.passes is proportional within 0.01 Credit\n")
    c = Compilation.from_text(text, "procs.charter")
    assert c.ok, c.diagnostics
    got = {r.name: r.status for r in V.verify(c.ir, V.Options(), use_cache=False)
           if r.name in ("by_hand", "by_clock")}
    assert got == {"by_hand": "proved", "by_clock": "proved"}


# ---- verifier twins: the correct policy is proved, the buggy twin refuted -------------

TWINS = '''
policy proc_twins version "1.0"

asset Credit: token, decimals 2
role Agent
pool commons of Credit
pool reserve of Credit
param fee: percent = 2% within 0%..10%

proc pay_fee(p: Agent, amount: Credit) {
    require balance(p, Credit) >= floor(amount * fee)
    transfer floor(amount * fee) from p to commons
}

proc sweep(total: Credit) {
    transfer floor(total / 2) from commons to reserve
    transfer floor(total / 2) from commons to reserve
}

on pay(amount: Credit) by p: Agent
    ensures balance(commons) == old(balance(commons)) + floor(amount * fee)
{
    require amount > 0 Credit
    do pay_fee(p, amount)
}

on tidy() by p: Agent
    ensures balance(reserve) == old(balance(reserve)) + 2 * floor(old(balance(commons)) / 2)
{
    do sweep(balance(commons))
}
'''

BUGS = {
    # the procedure rounds up while the postcondition (and the caller) round down
    "pay": ("    transfer floor(amount * fee) from p to commons",
            "    transfer ceil(amount * fee) from p to commons"),
    # the second half re-reads the balance after the first half moved: less is swept
    "tidy": ("    transfer floor(total / 2) from commons to reserve\n}",
             "    transfer floor(balance(commons) / 2) from commons to reserve\n}"),
}


def _ensures(text: str) -> dict[str, str]:
    c = Compilation.from_text(text, "twins.charter")
    assert not [d for d in c.diagnostics if d.severity == "error"], c.diagnostics
    return {r.name: r.status for r in V.verify(c.ir, V.Options(), use_cache=False)
            if r.name.endswith(".ensures.1")}


def test_correct_twin_is_proved():
    assert _ensures(TWINS) == {f"{h}.ensures.1": "proved" for h in BUGS}


@pytest.mark.parametrize("handler", sorted(BUGS))
def test_buggy_twin_is_refuted(handler):
    old, new = BUGS[handler]
    assert TWINS.count(old) == 1
    got = _ensures(TWINS.replace(old, new))
    assert got[f"{handler}.ensures.1"] == "refuted"
    assert all(s == "proved" for h, s in got.items() if h != f"{handler}.ensures.1")


# ---- hostile and misuse: errors are diagnostics, never a traceback -----------------------

HEAD = '''policy p version "1.0"
asset Credit: token, decimals 2
role Member
treasury fund of Credit
'''

MISUSE = [
    # (body, expected code)
    ("proc a(x: Credit) { do a(x) }\non h() by m: Member { do a(1 Credit) }", "E0701"),
    ("proc a(x: Credit) { transfer x from fund to m }\non h() by m: Member { do a(1 Credit) }",
     "E0201"),
    ("proc a(x: Credit) { transfer x from fund to @z }\non h() by m: Member { do a() }", "E0305"),
    ("proc a(x: Credit) { transfer x from fund to @z }\n"
     "on h() by m: Member { require a(1 Credit) > 0 Credit }", "E0709"),
    ("proc a(x: Credit) { transfer x from fund to @z }\n"
     "fn a(x: Credit) -> Credit { return x }\non h() by m: Member { do a(1 Credit) }",
     "E0202"),
    ("proc a(x: int within 1..3) { transfer x * 1 Credit from fund to @z }\n"
     "on h(n: int) by m: Member { do a(n) }", "E0308"),
    ("proc a(x: Credit) { transfer x from fund to @z }\n"
     "on h() by m: Member { do a(balance(fund) / 3) }", "E0303"),
    # a chain of procedures, each doing the next twice: refused before it is built
    ("".join(f"proc p{i}() {{ do p{i + 1}()\n do p{i + 1}() }}\n" for i in range(20))
     + "proc p20() { transfer 1 Credit from fund to @z }\non h() by m: Member { do p0() }",
     "E0702"),
]


@pytest.mark.parametrize("body,code", MISUSE, ids=[c for _, c in MISUSE])
def test_misuse_is_a_diagnostic(body, code):
    c = Compilation.from_text(HEAD + body, "misuse.charter")
    codes = {d.code for d in c.diagnostics if d.severity == "error"}
    assert code in codes, c.diagnostics


def test_purpose_economy_writes_its_wind_up_once():
    text = (STDLIB / "purpose_economy.charter").read_text("utf-8")
    assert text.count("split all of fund") == 1
    assert text.count("do wind_up(g)") == 2
    pol = Compilation.from_text(text, "purpose_economy.charter").ir
    conclude = pol.handler("conclude")
    expiry = pol.handler("Mission.expires.passes")
    (inner,) = [s for s in expiry.body if isinstance(s, ir.If)]
    assert _shape(conclude.body[-6:]) == _shape(inner.then) == [
        "Let", "Split", "Split", "Move", "SetField", "Dissolve"]


def test_an_imported_procedure_is_done_through_its_alias():
    text = ('policy imp version "1.0"\n\nimport "purpose_economy" as pe\n\n'
            'on finish() by pe.founder {\n    do pe.wind_up(pe.Mission("mission"))\n}\n')
    assert format_source(text) == text
    pol = Compilation.from_text(text, "imp.charter").ir
    assert _shape(pol.handler("finish").body) == [
        "Let", "Split", "Split", "Move", "SetField", "Dissolve"]
