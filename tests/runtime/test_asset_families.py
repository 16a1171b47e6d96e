"""Asset families on the runtime: `asset Token[symbol]` gives one ledger asset per key
(`Token[USDC]`), each conserved on its own; every backend (generated Python, closures, the
reference interpreter) settles identically; hostile keys from events are rejected with a
clear reason and change nothing; ledger commands and the audit show members as written."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from charter.cli import cli
from charter.compiler.pipeline import Compilation
from charter.runtime.api import open_runtime
from charter.runtime.testing import run_tests

POLICY = Path(__file__).resolve().parent / "families" / "token_vault.charter"
BACKENDS = ("python", "closures", "reference")


def ev(i: int, type_: str, by: str, **args) -> dict:
    return {"id": f"e{i}", "type": type_, "submitter": by, "time": 1000 + i, "args": args}


SETUP = [
    ev(1, "join", "ann"),
    ev(2, "join", "bo"),
    ev(3, "issue", "gateway", sym="USDC", to="ann", amount=1250),
    ev(4, "issue", "gateway", sym="DAI", to="ann", amount=300),
    ev(5, "deposit", "ann", sym="USDC", amount=400),
    ev(6, "open_deal", "ann", id="d1", sym="DAI", amount=100),
    ev(7, "pay_out", "gateway", sym="USDC", amount=101),
]

# (key, why it is refused): what reaches `Token[sym]` from an event's JSON
HOSTILE_KEYS = [
    ("", "cannot be empty"),
    ("x" * 65, "at most 64 characters"),
    ("US:DC", "found ':'"),
    ("US DC", "found ' '"),
    ("\x00", "found '\\x00'"),
    ("Token[USDC]", "found '['"),
    ("é", "found '\\xe9'"),
    ("x" * 100_000, None),  # long text: refused (by the argument check or as a key)
    ("\ud800", None),  # a lone surrogate
    (5, None),
    (None, None),
    (True, None),
    ({"a": 1}, None),
    ([1], None),
    (1.5, None),
]


@pytest.mark.parametrize("backend", BACKENDS)
def test_in_language_tests(backend: str) -> None:
    results = run_tests(Compilation.from_path(str(POLICY)).ir, backend=backend)
    assert len(results) == 4 and all(r.passed for r in results), \
        [(r.name, r.failures) for r in results]


def _settle(backend: str, events: list[dict]):
    rt = open_runtime(str(POLICY), backend=backend)
    return rt, [rt.submit(e) for e in events]


def test_each_member_is_its_own_asset_and_balances() -> None:
    rt, outs = _settle("python", SETUP)
    assert all(o.applied for o in outs), [(o.code, o.message) for o in outs]
    bal = rt.balances()
    assert bal["party:ann:Token[USDC]"] == 1250 - 400 + 51  # 101 split 51/50 (ann first)
    assert bal["party:bo:Token[USDC]"] == 50
    assert bal["pool:vault:Token[USDC]"] == 400 - 101
    assert bal["escrow:Deal:d1:Token[DAI]"] == 100
    assert bal["party:ann:Token[DAI]"] == 200
    per_asset: dict[str, int] = {}
    for acc, v in rt.balances(include_zero=True).items():
        a = rt.state.asset_of(acc)
        per_asset[a] = per_asset.get(a, 0) + v
    assert per_asset == {"Token[USDC]": 0, "Token[DAI]": 0}
    postings = [p for h in rt.history() for p in h["postings"]]
    assert {p["asset"] for p in postings} == {"Token[USDC]", "Token[DAI]"}
    assert rt.audit().ok


def test_backends_write_identical_journals_and_rejections() -> None:
    events = SETUP + [ev(20 + i, "deposit", "ann", sym=k, amount=1)
                      for i, (k, _) in enumerate(HOSTILE_KEYS)]
    seen = {}
    for b in BACKENDS:
        rt, outs = _settle(b, events)
        seen[b] = (rt.journal_hash,
                   [(o.applied, getattr(o, "code", None), getattr(o, "message", None)) for o in outs],
                   sorted(rt.balances(include_zero=True).items()))
    assert seen["python"] == seen["closures"] == seen["reference"]


@pytest.mark.parametrize("key,why", HOSTILE_KEYS, ids=lambda v: repr(v)[:20])
@pytest.mark.parametrize("handler", ["issue", "deposit", "pay_out", "open_deal"])
def test_hostile_keys_are_refused_and_change_nothing(handler: str, key, why) -> None:
    rt, _ = _settle("python", SETUP)
    before = (rt.journal_hash, rt.balances(include_zero=True), rt.state_rows())
    args = {"sym": key, "amount": 1}
    if handler == "issue":
        args["to"] = "ann"
    if handler == "open_deal":
        args["id"] = "d9"
    by = "gateway" if handler in ("issue", "pay_out") else "ann"
    out = rt.submit(ev(99, handler, by, **args))
    assert not out.applied
    assert out.code in ("bad_asset_key", "bad_argument"), (out.code, out.message)
    if why is not None:
        assert out.code == "bad_asset_key" and why in out.message, out.message
    assert len(out.message) < 300
    assert (rt.journal_hash, rt.balances(include_zero=True), rt.state_rows()) == before


def test_ledger_commands_show_members_as_written(tmp_path: Path) -> None:
    db = tmp_path / "ledger.sqlite"
    events = tmp_path / "events.jsonl"
    events.write_text("".join(json.dumps(e) + "\n" for e in SETUP))
    runner = CliRunner()
    r = runner.invoke(cli, ["run", str(POLICY), str(events), "--db", str(db), "-q"])
    assert r.exit_code == 0, r.output
    r = runner.invoke(cli, ["ledger", "balances", str(db)])
    assert r.exit_code == 0, r.output
    assert "pool:vault:Token[USDC]" in r.output and "2.99" in r.output
    r = runner.invoke(cli, ["ledger", "history", str(db)])
    assert "12.50 Token[USDC] supply:Token[USDC] -> party:ann:Token[USDC]" in r.output
    r = runner.invoke(cli, ["ledger", "export", str(db), "--format", "beancount"])
    assert r.exit_code == 0, r.output
    assert "TOKEN.USDC" in r.output and "TOKEN.DAI" in r.output
    r = runner.invoke(cli, ["audit", str(db)])
    assert r.exit_code == 0 and "OK" in r.output, r.output
