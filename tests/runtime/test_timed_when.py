"""`when <timed handler>() by clock at T` in a test block advances the clock; the next
`expect` looks at that handler's firing.  And `charter run --check` reports declared
invariants that fail, never a traceback whatever the events file holds."""

from __future__ import annotations

import json

from click.testing import CliRunner
from hypothesis import given, settings, strategies as st

from charter.cli import cli
from charter.compiler.pipeline import Compilation
from charter.runtime.testing import run_tests

POLICY = """policy timed version "1"
asset Credit: token, decimals 2, mintable
role Agent
pool commons of Credit
record Box holds Credit { owner: party, due: time, open: bool = true }
on join() by p: party {
    require not (p is Agent) else "member"
    admit p as Agent
}
on fund(amount: Credit) by p: party {
    require amount > 0 Credit else "positive"
    mint amount to commons
}
on make(id: text, amount: Credit, wait: duration) by p: party {
    require not exists Box(id) else "exists"
    require amount > 0 Credit else "positive"
    mint amount to p
    create Box(id) { owner = p, due = now + wait }
    escrow amount from p into Box(id)
}
when Box.due passes as b {
    {expiry}
}
every 1 days as epoch {
    split all of commons among a in Agent by 1 rounding largest_remainder
}
property closed_boxes_are_empty: for each b in Box always b.open or balance(b) == 0 Credit
"""

GOOD = "refund rest of b to b.owner\n    set b.open = false"
BAD = "set b.open = false"  # forgets the refund: a closed box keeps its money

TESTS = """
test "the deadline fires when the clock passes it" {
    when make(id = "b1", amount = 5 Credit, wait = 1 hours) by @ann at 0
    expect ok
    when Box.due.passes() by clock at 3600
    expect ok
    expect balance(@ann, Credit) == 5 Credit
    expect not Box("b1").open
}

test "an every handler fires a period after the first event" {
    when join() by @ann at 0
    when fund(amount = 2 Credit) by @ann at 0
    when epoch() by clock at 1 days
    expect ok
    expect balance(@ann, Credit) == 2 Credit
}

test "a timed handler not yet due" {
    when join() by @ann at 0
    when epoch() by clock at 10
    expect rejected "not due"
}
"""


def _policy(expiry: str, tests: str = ""):
    return Compilation.from_text(POLICY.replace("{expiry}", expiry) + tests, file="t.charter").ir


def test_timed_when_steps():
    results = run_tests(_policy(GOOD, TESTS))
    assert [r.passed for r in results] == [True, True, True], [r.failures for r in results]


def test_timed_when_needs_the_clock_and_a_time():
    from charter.compiler.diagnostics import CharterError

    for bad in ("when epoch() by @ann at 10", "when epoch() by clock"):
        try:
            _policy(GOOD, 'test "x" {\n    ' + bad + "\n}\n")
        except CharterError as exc:
            assert "timed handler" in str(exc)
        else:
            raise AssertionError(f"{bad!r} compiled")


def _run(tmp_path, expiry: str, lines: list[str], *extra: str) -> tuple[int, str]:
    pol = tmp_path / "p.charter"
    pol.write_text(POLICY.replace("{expiry}", expiry))
    ev = tmp_path / "e.jsonl"
    ev.write_text("\n".join(lines) + "\n")
    r = CliRunner().invoke(cli, ["run", str(pol), str(ev), "--memory", "--check", *extra])
    return r.exit_code, r.output


EVENTS = [
    json.dumps({"id": "e1", "type": "make", "submitter": "ann", "time": 0,
                "args": {"id": "b1", "amount": 500, "wait": 60}}),
    json.dumps({"id": "e2", "type": "@tick", "submitter": "clock", "time": 60, "args": {}}),
]


def test_run_check_reports_the_first_event_after_which_an_invariant_fails(tmp_path):
    code, out = _run(tmp_path, BAD, EVENTS)
    assert code == 1
    assert 'VIOLATED property closed_boxes_are_empty for Box("b1"): false after event e2' in out
    code, out = _run(tmp_path, GOOD, EVENTS, "--json")
    assert code == 0 and json.loads(out)["violations"] == []


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20)
    | st.floats(allow_nan=True),
    lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=8), c, max_size=4),
    max_leaves=12,
)
EVENT = st.fixed_dictionaries(
    {"id": st.text(min_size=1, max_size=6), "type": st.sampled_from(
        ["make", "join", "fund", "@tick", "nope"]) | st.text(max_size=6),
     "submitter": st.text(min_size=1, max_size=6), "time": JSON | st.integers(0, 10**6),
     "args": JSON}
)


@settings(max_examples=40, deadline=None)
@given(st.lists(EVENT | JSON, max_size=6))
def test_run_check_never_tracebacks(tmp_path_factory, events):
    tmp = tmp_path_factory.mktemp("fuzz")
    code, out = _run(tmp, BAD, [json.dumps(e) for e in events], "--json")
    assert code in (0, 1), out
    data = json.loads(out)
    assert isinstance(data["violations"], list)
