"""`charter ledger export`: Beancount accepted by bean-check with balances agreeing to the
minor unit; CSV and JSON Lines carrying every posting and chain hash (issue 19)."""

from __future__ import annotations

import csv
import io
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from charter.cli import cli
from charter.runtime.api import open_runtime
from charter.runtime.export import bean_account, component

GIG = Path(__file__).resolve().parents[2] / "examples" / "gig_market"


@pytest.fixture(scope="module")
def ledger(tmp_path_factory) -> Path:
    sys.path.insert(0, str(GIG))
    from generate import gig_events

    d = tmp_path_factory.mktemp("export")
    (d / "e.jsonl").write_text("".join(json.dumps(e) + "\n" for e in gig_events(1200, seed=5)))
    r = CliRunner().invoke(cli, ["run", str(GIG / "policy.charter"), str(d / "e.jsonl"),
                                 "--db", str(d / "l.sqlite"), "-q", "--batch", "100"])
    assert r.exit_code == 0, r.output
    return d / "l.sqlite"


def _export(ledger: Path, fmt: str) -> str:
    out = ledger.parent / f"out.{fmt}"
    r = CliRunner().invoke(cli, ["ledger", "export", str(ledger), "--format", fmt, "-o", str(out)])
    assert r.exit_code == 0, r.output
    return out.read_text()


def test_beancount_passes_bean_check_and_balances_agree(ledger):
    text = _export(ledger, "beancount")
    path = ledger.parent / "out.beancount"
    check = shutil.which("bean-check") or str(Path(sys.executable).parent / "bean-check")
    r = subprocess.run([check, str(path)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    # the balance assertions bean-check just proved are the ledger's own balances
    with open_runtime(None, str(ledger), readonly=True) as rt:
        bal = rt.balances()
    assert bal
    for acc, v in bal.items():
        line = [ln for ln in text.splitlines() if f" balance {bean_account(acc)} " in ln]
        assert len(line) == 1, acc
        amount = line[0].split()[-2]
        assert int(amount.replace(".", "").replace("-", "")) == abs(v) and (
            amount.startswith("-") == (v < 0)), (acc, amount, v)
    # a forged amount is caught by bean-check: the assertions are not decoration
    forged = text.replace("  -", "  -1", 1)
    path.write_text(forged)
    r = subprocess.run([check, str(path)], capture_output=True, text=True, timeout=300)
    assert r.returncode != 0


def test_csv_and_jsonl_hold_every_posting_and_hash(ledger):
    with open_runtime(None, str(ledger), readonly=True) as rt:
        rows = list(rt.journal_rows())
        bal = rt.balances()
    lines = [json.loads(x) for x in _export(ledger, "jsonl").splitlines()]
    assert [x["hash"] for x in lines] == [r.hash for r in rows]
    assert [x["seq"] for x in lines] == [r.seq for r in rows]
    got: dict[str, int] = {}
    for rec in csv.DictReader(io.StringIO(_export(ledger, "csv"))):
        a = int(rec["amount"])
        got[rec["from"]] = got.get(rec["from"], 0) - a
        got[rec["to"]] = got.get(rec["to"], 0) + a
    assert {k: v for k, v in got.items() if v} == bal


def test_account_names_stay_distinct():
    names = ["party:a.b:Credit", "party:a-2Eb:Credit", "party:ab:Credit", "pool:x y"]
    mapped = [bean_account(n) for n in names]
    assert len(set(mapped)) == len(mapped)
    assert component("a.b") != component("a-2Eb")


def test_parquet_postings_sum_to_the_balances(ledger):
    pq = pytest.importorskip("pyarrow.parquet")
    out = ledger.parent / "out.parquet"
    r = CliRunner().invoke(cli, ["ledger", "export", str(ledger), "--format", "parquet",
                                 "-o", str(out)])
    assert r.exit_code == 0, r.output
    t = pq.read_table(out).to_pydict()
    got: dict[str, int] = {}
    for src, dst, a in zip(t["from"], t["to"], t["amount"]):
        got[src] = got.get(src, 0) - a
        got[dst] = got.get(dst, 0) + a
    with open_runtime(None, str(ledger), readonly=True) as rt:
        assert {k: v for k, v in got.items() if v} == rt.balances()
