"""Credit lines on the runtime: a party's account of an asset with `credit L` may go down to
-L (not below: the event is rejected and changes nothing); `soft_credit S` only flags an
account that ends an event owing more than S (the flag is journalled and shown by `charter
ledger history`); every asset still balances, the audit accepts the negative balances within
the line, and all backends write byte-identical journals."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from charter.cli import cli
from charter.compiler.pipeline import Compilation
from charter.runtime.api import open_runtime
from charter.runtime.testing import run_tests

HERE = Path(__file__).resolve().parent / "credit"
POLICY = HERE / "time_bank_credit.charter"

EVENTS = [
    {"id": "e1", "type": "join", "submitter": "@ann", "time": 1, "args": {}},
    {"id": "e2", "type": "join", "submitter": "@bo", "time": 2, "args": {}},
    # ann owes 4: inside the soft limit, no flag
    {"id": "e3", "type": "pay", "submitter": "@ann", "time": 3, "args": {"to": "@bo", "hours": "4"}},
    # ann owes 6: beyond the soft limit of 5, flagged, applied
    {"id": "e4", "type": "pay", "submitter": "@ann", "time": 4, "args": {"to": "@bo", "hours": "2"}},
    # ann would owe 10.01: beyond the credit line, rejected
    {"id": "e5", "type": "pay", "submitter": "@ann", "time": 5, "args": {"to": "@bo", "hours": "4.01"}},
    # exactly at the line: applied (and flagged)
    {"id": "e6", "type": "pay", "submitter": "@ann", "time": 6, "args": {"to": "@bo", "hours": "4"}},
]


@pytest.mark.parametrize("backend", ["python", "closures", "reference"])
def test_in_language_tests(backend: str) -> None:
    results = run_tests(Compilation.from_path(str(POLICY)).ir, backend=backend)
    assert results and all(r.passed for r in results), [(r.name, r.failures) for r in results]


def _settle(backend: str, store: str = ":memory:"):
    rt = open_runtime(str(POLICY), store, backend=backend)
    outs = [rt.submit(e) for e in EVENTS]
    return rt, outs


def test_limits_block_and_flag() -> None:
    rt, outs = _settle("python")
    ok = [o.applied for o in outs]
    assert ok == [True, True, True, True, False, True], outs
    assert "credit line 10.00 Hours" in outs[4].message
    assert rt.balance("party:ann:Hours") == -1000
    assert rt.balance("party:bo:Hours") == 1000
    flags = [h["flags"] for h in rt.history()]
    assert flags[2] == []  # owes 4: no flag
    assert flags[3] == [{"party": "ann", "message":
                         "owes more than its soft credit limit of 5.00 Hours (balance -6.00 Hours)"}]
    assert flags[4][0]["message"].endswith("(balance -10.00 Hours)")
    # conservation per asset: the debt is exactly the credit held elsewhere
    assert sum(v for k, v in rt.balances(include_zero=True).items() if k.endswith(":Hours")) == 0
    assert rt.audit().ok


def test_backends_write_identical_journals() -> None:
    heads = {b: _settle(b)[0].journal_hash for b in ("python", "closures", "reference")}
    assert len(set(heads.values())) == 1, heads


def test_ledger_history_shows_the_flag_and_audit_accepts_the_line(tmp_path: Path) -> None:
    db = tmp_path / "ledger.sqlite"
    events = tmp_path / "events.jsonl"
    events.write_text("".join(json.dumps(e) + "\n" for e in EVENTS))
    runner = CliRunner()
    r = runner.invoke(cli, ["run", str(POLICY), str(events), "--db", str(db), "-q"])
    assert r.exit_code in (0, 1), r.output  # one event is rejected
    r = runner.invoke(cli, ["ledger", "history", str(db)])
    assert r.exit_code == 0, r.output
    assert "flag ann: owes more than its soft credit limit of 5.00 Hours" in r.output
    r = runner.invoke(cli, ["audit", str(db)])
    assert r.exit_code == 0 and "OK" in r.output, r.output


def test_audit_refuses_a_balance_beyond_the_line() -> None:
    from charter.runtime.journal import audit_rows

    rt, _ = _settle("python")
    rows = list(rt.store.journal())
    stored = dict(rt.state.balances)
    assert audit_rows(rows, rt.genesis, stored, credit={"Hours": 1000}).ok
    # the same journal judged against a line of 9 Hours: ann's -10 is beyond it
    bad = audit_rows(rows, rt.genesis, stored, credit={"Hours": 900})
    assert any("beyond its credit line of 900" in p for p in bad.problems), bad.problems
    assert not audit_rows(rows, rt.genesis, stored).ok  # and without any line at all


PARAM_POLICY = HERE / "param_credit.charter"


@pytest.mark.parametrize("backend", ["python", "closures", "reference"])
def test_a_parameter_sets_the_line_and_the_flag(backend: str) -> None:
    results = run_tests(Compilation.from_path(str(PARAM_POLICY)).ir, backend=backend)
    assert results and all(r.passed for r in results), [(r.name, r.failures) for r in results]
    events = EVENTS[:2] + [
        {"id": "p1", "type": "pay", "submitter": "@ann", "time": 3,
         "args": {"to": "@bo", "hours": "7"}},
        {"id": "p2", "type": "pay", "submitter": "@ann", "time": 4,
         "args": {"to": "@bo", "hours": "13.01"}},
    ]
    rt = open_runtime(str(PARAM_POLICY), params={"limit": "20", "warn": "6.5"}, backend=backend)
    outs = [rt.submit(e) for e in events]
    assert [o.applied for o in outs] == [True, True, True, False], outs
    assert "credit line 20.00 Hours" in outs[3].message
    flags = [h["flags"] for h in rt.history()]
    assert flags[2] == [{"party": "ann", "message": "owes more than its soft credit limit of "
                                                    "6.50 Hours (balance -7.00 Hours)"}]
    assert rt.audit().ok


MEMBER_POLICY = HERE / "member_credit.charter"


@pytest.mark.parametrize("backend", ["python", "closures", "reference"])
def test_each_member_sets_its_own_line(backend: str) -> None:
    results = run_tests(Compilation.from_path(str(MEMBER_POLICY)).ir, backend=backend)
    assert results and all(r.passed for r in results), [(r.name, r.failures) for r in results]
    rt = open_runtime(str(MEMBER_POLICY), backend=backend)
    evs = [
        {"id": "j1", "type": "join", "submitter": "steward", "time": 1,
         "args": {"p": "ann", "limit": "10", "warn": "4"}},
        {"id": "p1", "type": "pay", "submitter": "ann", "time": 2,
         "args": {"to": "bo", "hours": "5"}},
    ]
    outs = [rt.submit(e) for e in evs]
    assert all(o.applied for o in outs), outs
    assert rt.history()[-1]["flags"] == [{"party": "ann", "message": "owes more than its soft "
                                          "credit limit of 4.00 Hours (balance -5.00 Hours)"}]
    assert rt.audit().ok
