"""The runtime's commands: run, ledger, audit, replay, test (exit codes, no tracebacks)."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import invoke

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "gig_market"
POLICY = str(EXAMPLE / "policy.charter")
EVENTS = str(EXAMPLE / "events.jsonl")
EXPECTED = json.loads((EXAMPLE / "expected_balances.json").read_text())


@pytest.fixture
def ledger(tmp_path):
    db = tmp_path / "gig.sqlite"
    r = invoke("run", POLICY, EVENTS, "--db", db)
    assert r.exit_code == 0, r.output
    return db


def test_run_prints_a_summary_and_writes_rejections(ledger):
    r = invoke("run", POLICY, EVENTS, "--db", ledger)  # again: everything is already processed
    assert r.exit_code == 0
    assert "resumed after line 53" in r.output
    rej = Path(str(ledger) + ".rejections.jsonl")
    first = invoke("run", POLICY, EVENTS, "--db", ledger.with_name("other.sqlite"))
    assert "applied:          27" in first.output and "rejected:         25" in first.output
    assert "417.94" in first.output  # ann's Credit in the balances table, in major units
    lines = [
        json.loads(x)
        for x in Path(str(ledger.with_name("other.sqlite")) + ".rejections.jsonl")
        .read_text()
        .splitlines()
    ]
    assert len(lines) == 25 and {"line", "event_id", "code", "message"} <= set(lines[0])
    assert rej.exists()


def test_strict_run_fails_on_rejections(tmp_path):
    r = invoke("run", POLICY, EVENTS, "--memory", "--strict")
    assert r.exit_code == 1


def test_ledger_commands_work_from_the_file_alone(ledger):
    r = invoke("ledger", "balances", ledger, "--json")
    assert r.exit_code == 0 and json.loads(r.output) == EXPECTED
    r = invoke("ledger", "history", ledger, "--account", "pool:commons", "--json")
    hist = json.loads(r.output)
    assert [h["event"]["id"] for h in hist] == ["e24", "e32", "e35", "e37"]
    r = invoke("ledger", "accounts", ledger)
    assert "escrow:Task:t1:Credit" in r.output
    r = invoke("ledger", "records", ledger, "Task")
    assert json.loads(r.output)["t1"]["worker"] == "cat"
    r = invoke("ledger", "members", ledger, "Agent")
    assert r.exit_code == 0 and "cat" in json.loads(r.output)
    r = invoke("ledger", "members", ledger, "Nope")
    assert r.exit_code != 0 and "no role 'Nope'" in r.output


def test_every_ledger_command_prints_amounts_in_asset_units(ledger):
    # balances, accounts and history agree: `417.94`, never the minor units `41794`
    # (--json keeps minor units, the documented machine form)
    balances = invoke("ledger", "balances", ledger).output
    accounts = invoke("ledger", "accounts", ledger).output
    assert "417.94" in balances and "417.94" in accounts and "41794" not in accounts
    history = invoke("ledger", "history", ledger, "--account", "pool:commons").output
    as_json = json.loads(invoke("ledger", "history", ledger, "--account", "pool:commons",
                                "--json").output)
    for entry in as_json:
        for p in entry["postings"]:
            if p["asset"] == "Credit":
                whole, cents = divmod(p["amount"], 100)
                assert f"{whole}.{cents:02d} Credit" in history


def test_audit_and_replay_pass_then_catch_tampering(ledger):
    r = invoke("audit", ledger)
    assert r.exit_code == 0 and "OK" in r.output
    r = invoke("replay", ledger)
    assert r.exit_code == 0 and "match" in r.output
    from charter.runtime.sqlite_store import tamper_connection

    c = tamper_connection(ledger)
    c.execute("UPDATE journal SET entry = entry_blob(replace(entry_text(entry, seq, event_id), '14250', '14251')) "
              "WHERE event_id = 'e24'")
    c.commit()
    c.close()
    r = invoke("audit", ledger)
    assert r.exit_code == 1 and "modified row" in r.output
    r = invoke("replay", ledger)
    assert r.exit_code == 1 and "MISMATCH" in r.output


@pytest.mark.parametrize(
    "args,text",
    [
        (("run", "nope.charter", EVENTS), "no such policy file"),
        (("run", POLICY, "nope.jsonl", "--memory"), "no such events file"),
        (("run", POLICY, EVENTS, "--memory", "--param", "fee=50%"), "above the maximum"),
        (("run", POLICY, EVENTS, "--memory", "--param", "colour=1"), "unknown parameter"),
        (("ledger", "balances", "missing.sqlite"), "no such ledger file"),
    ],
)
def test_usage_and_io_errors_exit_2(args, text):
    r = invoke(*args)
    assert r.exit_code == 2, r.output
    assert text in r.output
    assert "Traceback" not in r.output


def test_corrupt_ledger_is_a_clear_error(tmp_path):
    db = tmp_path / "bad.sqlite"
    db.write_text("this is not a database")
    for cmd in (("audit", db), ("replay", db), ("ledger", "balances", db)):
        r = invoke(*cmd)
        assert (
            r.exit_code == 2 and "not a Charter ledger" in r.output and "Traceback" not in r.output
        )


def test_param_override_changes_the_settlement(tmp_path):
    r = invoke("run", POLICY, EVENTS, "--memory", "--param", "fee=0%", "--json")
    assert r.exit_code == 0
    out = json.loads(r.output)
    assert "pool:commons" not in out["balances"]  # no fee, nothing to split
    assert out["balances"]["party:cat:Credit"] != EXPECTED["party:cat:Credit"]


def test_charter_test_command(tmp_path):
    r = invoke("test", POLICY)
    assert r.exit_code == 0 and "2 passed" in r.output
    bad = tmp_path / "bad.charter"
    bad.write_text(
        Path(POLICY)
        .read_text()
        .replace(
            "expect balance(@bob, Credit) == 28.50 Credit",
            "expect balance(@bob, Credit) == 28.51 Credit",
        )
    )
    r = invoke("test", bad)
    assert r.exit_code == 1
    assert "1 failed" in r.output
    # the failing `expect` by file:line, both sides in the units the test is written in
    line = next(i for i, ln in enumerate(bad.read_text().split("\n"), 1) if "28.51 Credit" in ln)
    assert f"{bad}:{line}: expect balance(@bob, Credit) == 28.51 Credit is false " \
           "(left is 28.50 Credit, right is 28.51 Credit)" in r.output
    broken = tmp_path / "broken.charter"
    broken.write_text('policy x version "1"\non oops(')
    r = invoke("test", broken)
    assert r.exit_code == 1 and "does not compile" in r.output


def test_the_charter_program_writes_its_whole_summary_and_rejections(tmp_path):
    # as the program (python -m charter.cli, the console script) run ends with os._exit, no
    # interpreter teardown: the piped summary, the rejections file and the status are whole
    rej = tmp_path / "r.jsonl"
    done = subprocess.run(
        [sys.executable, "-m", "charter.cli", "run", POLICY, EVENTS, "--memory", "--json",
         "--strict", "--rejections", str(rej)],
        capture_output=True, text=True, timeout=300, cwd=ROOT,
    )
    assert done.returncode == 1, done.stderr  # --strict, and 25 events are rejected
    summary = json.loads(done.stdout)
    assert (summary["applied"], summary["rejected"]) == (27, 25)
    assert summary["balances"] == EXPECTED
    assert len(rej.read_text().splitlines()) == 25
