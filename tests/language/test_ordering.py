"""`for each ... ordered by ... then by ...` and role values ordered by party id (issue 17,
item 5), through every layer: the policy beside this file runs its `test` blocks on the three
backends (engine: generated Python and closures; the reference interpreter), a hypothesis
test states the rule in plain Python and checks every backend against it, the formatter
round-trips the form, and the verifier proves a correct twin and refutes its buggy twins.
"""
from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from charter.compiler import ir
from charter.compiler import verify as V
from charter.compiler.fmt import format_source
from charter.compiler.pipeline import Compilation
from charter.runtime.api import open_runtime
from charter.runtime.testing import run_tests

POLICY = Path(__file__).resolve().parent / "ordering.charter"


def test_policy_tests_pass_on_every_backend_with_one_journal():
    pol = Compilation.from_path(POLICY).ir
    runs = {b: run_tests(pol, backend=b) for b in ("python", "closures", "reference")}
    assert len(runs["python"]) == 3
    for b, res in runs.items():
        assert all(r.passed for r in res), (b, [(r.name, r.failures) for r in res])
    want = [(r.name, r.outcomes, r.journal_hash) for r in runs["reference"]]
    for b in ("python", "closures"):
        assert [(r.name, r.outcomes, r.journal_hash) for r in runs[b]] == want


def test_the_form_formats_and_lowers_to_keys_on_the_loop():
    text = POLICY.read_text("utf-8")
    assert format_source(text) == text
    assert "ordered by a.priority descending then by a.joined {" in text
    pol = Compilation.from_path(POLICY).ir
    loop = pol.handler("reward").body[0]
    assert isinstance(loop, ir.ForEach) and len(loop.keys) == 2
    assert loop.descending == (True, False)
    assert ir.from_data(ir.to_data(pol)) == pol


ORDER_SRC = """policy pick version "1.0"
role Agent { p: int = 0, q: int = 0 }
record Seen { n: int = 0, log: text = "" }
on visit() by clock {
    create Seen("s") { n = 0 }
    for each a in Agent where a.p != 2 ordered by a.p DIR1 then by a.q DIR2 {
        update Seen("s") { n = Seen("s").n + 1, log = Seen("s").log + text(a) + ";" }
        if a.q == 3 {
            expel a from Agent
        }
    }
}
"""


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=st.lists(st.tuples(st.integers(0, 3), st.integers(0, 3)), max_size=6),
       d1=st.booleans(), d2=st.booleans())
def test_visit_order_is_the_stated_rule(rows, d1, d2):
    """Every backend visits exactly the items `where` keeps, sorted by (p, q) with the
    stated directions, ties by party id; expelling the visited member changes nothing."""
    src = ORDER_SRC.replace("DIR1", "descending" if d1 else "").replace(
        "DIR2", "descending" if d2 else "ascending")
    pol = Compilation.from_text(src, "pick.charter").ir
    members = {f"m{i}": r for i, r in enumerate(rows)}
    kept = sorted(m for m, (p, _q) in members.items() if p != 2)
    kept.sort(key=lambda m: members[m][1], reverse=d2)
    kept.sort(key=lambda m: members[m][0], reverse=d1)
    want = "".join(f"@{m};" for m in kept)
    for backend in ("python", "closures", "reference"):
        rt = open_runtime(pol, backend=backend)
        for name, (p, q) in members.items():
            rt.genesis_apply(lambda s, n=name, p=p, q=q: s.set_role("Agent", n, {"p": p, "q": q}))
        out = rt.submit({"id": "e", "type": "visit", "submitter": "clock", "time": 0,
                         "args": {}})
        assert out.applied, (backend, out.code, out.message)
        assert rt.records("Seen")["s"]["log"] == want, backend


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(a=st.text(min_size=1, max_size=4), b=st.text(min_size=1, max_size=4))
def test_parties_compare_by_id_on_every_backend(a, b):
    src = ('policy c version "1"\nrole M\nrecord R { lt: bool, le: bool }\n'
           'on f(x: party, y: party) by m: M {\n'
           '    create R("k") { lt = x < y, le = x <= y }\n}')
    pol = Compilation.from_text(src, "c.charter").ir
    for backend in ("python", "closures", "reference"):
        rt = open_runtime(pol, backend=backend)
        rt.genesis_apply(lambda s: s.set_role("M", "m", {}))
        out = rt.submit({"id": "e", "type": "f", "submitter": "@m", "time": 0,
                         "args": {"x": "@" + a, "y": "@" + b}})
        if not out.applied:  # a party id the runtime refuses, the same on every backend
            assert out.code == "bad_argument", (backend, out.code, out.message)
            continue
        got = rt.records("R")["k"]
        assert (got["lt"], got["le"]) == (a < b, a <= b), backend


# ---- verifier twins ------------------------------------------------------------------------

TWIN = """
policy otwin version "1.0"

role Agent
record Entry { score: int within 0..100, rank: int within 0..10 = 0 }

on rank() by clock
    ensures all(all(Entry(x).score >= Entry(y).score or Entry(x).rank < Entry(y).rank
                    for y in Entry) for x in Entry)
{
    var n = 1
    for each e in Entry ordered by Entry(e).score {
        set Entry(e).rank = n
        set n = n + 1
    }
}

on pay_later(to: Agent) by p: Agent
    ensures p < to
{
    require p < to else "only to a later party"
}
"""


def _status(text: str) -> dict[str, str]:
    c = Compilation.from_text(text, "otwin.charter")
    assert not [d for d in c.diagnostics if d.severity == "error"], c.diagnostics
    res = {r.name: r.status for r in V.verify(c.ir, V.Options(), use_cache=False)}
    return {k: v for k, v in res.items() if ".ensures." in k}


def test_correct_twin_is_proved():
    assert _status(TWIN) == {"rank.ensures.1": "proved", "pay_later.ensures.1": "proved"}


@pytest.mark.parametrize("old,new,handler", [
    # visited largest first: ranks come out the wrong way round
    ("ordered by Entry(e).score {", "ordered by Entry(e).score descending {", "rank"),
    # one visit is skipped: its rank stays 0
    ("ordered by Entry(e).score {", "where Entry(e).score != 50 ordered by Entry(e).score {",
     "rank"),
    # `<=` lets a party pay itself
    ("require p < to", "require p <= to", "pay_later"),
])
def test_buggy_twins_are_refuted(old, new, handler):
    assert old in TWIN
    got = _status(TWIN.replace(old, new))
    assert got.pop(f"{handler}.ensures.1") == "refuted"
    assert set(got.values()) == {"proved"}
