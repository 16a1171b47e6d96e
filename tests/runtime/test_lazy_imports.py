"""Start-up stays cheap: each command imports only what it needs (issue 19).

Asserted on the import graph of a fresh interpreter (``-X importtime``), never on timings:
``charter --version`` and ``import charter`` load no compiler; ``run`` and the ledger
commands never load Z3; the ledger commands do not load Lark either (the ledger records
its policy as IR, so nothing is parsed)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
GIG = ROOT / "examples" / "gig_market"


def _imported(*args: str, cwd: Path) -> set[str]:
    """Top-level names of every module a fresh ``python -X importtime ARGS`` imported."""
    out = subprocess.run(
        [sys.executable, "-X", "importtime", *args], cwd=cwd, capture_output=True, text=True,
        timeout=300,
    )
    assert out.returncode in (0, 1), out.stderr[-2000:]
    mods = set()
    for line in out.stderr.splitlines():
        if line.startswith("import time:") and "|" in line:
            mods.add(line.rsplit("|", 1)[1].strip())
    assert mods, out.stderr[-2000:]
    return mods


@pytest.fixture(scope="module")
def ledger(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("lazy")
    r = subprocess.run(
        [sys.executable, "-m", "charter.cli", "run", str(GIG / "policy.charter"),
         str(GIG / "events.jsonl"), "--db", str(d / "l.sqlite"), "-q"],
        capture_output=True, text=True, timeout=300,
    )
    assert r.returncode == 0, r.stderr
    return d / "l.sqlite"


def test_version_and_import_charter_load_no_compiler(tmp_path):
    for args in (("-m", "charter.cli", "--version"), ("-c", "import charter")):
        mods = _imported(*args, cwd=tmp_path)
        assert "charter" in mods
        assert not {"z3", "lark", "charter.compiler.pipeline", "charter.runtime.api"} & mods, args


@pytest.mark.parametrize("cmd", [
    ("ledger", "balances"), ("ledger", "history", "--limit", "3"), ("ledger", "accounts"),
])
def test_ledger_commands_load_neither_z3_nor_lark(ledger, cmd):
    mods = _imported("-m", "charter.cli", *cmd[:2], str(ledger), *cmd[2:], cwd=ledger.parent)
    assert "charter.runtime.sqlite_store" in mods  # it did read the ledger
    assert "z3" not in mods and "lark" not in mods


def test_run_and_audit_never_load_z3(ledger, tmp_path):
    mods = _imported("-m", "charter.cli", "run", str(GIG / "policy.charter"),
                     str(GIG / "events.jsonl"), "--memory", "-q", cwd=tmp_path)
    assert "charter.runtime.engine" in mods and "z3" not in mods
    mods = _imported("-m", "charter.cli", "audit", str(ledger), cwd=tmp_path)
    assert "charter.runtime.engine" in mods and "z3" not in mods and "lark" not in mods


def test_the_embedding_api_loads_z3_only_for_verify(tmp_path):
    """``charter.load_policy`` / ``open_runtime`` (simulate, serve, embedders) never load the
    verifier; ``charter.verify`` and ``charter.VerifyResult`` still work, loading it then."""
    mods = _imported("-c", "import charter; charter.open_runtime; charter.load_policy; "
                     "charter.Runtime", cwd=tmp_path)
    assert "charter.runtime.api" in mods  # (charter.api comes through importlib: not logged)
    assert "z3" not in mods and not any(m.startswith("charter.compiler.verify") for m in mods)
    mods = _imported("-c", "import charter; charter.VerifyResult", cwd=tmp_path)
    assert "z3" in mods


@pytest.mark.parametrize("cmd", [
    ("check",), ("fmt", "--check"), ("test",), ("compile", "-o", "{tmp}/p.json"),
])
def test_front_end_commands_never_load_z3(cmd, tmp_path):
    """Only verify and diff need the solver; the parser's table cache (compiler/parse_tables.py,
    charter/dirs.py) must not pull it in either."""
    args = [a.format(tmp=tmp_path) for a in cmd]
    mods = _imported("-m", "charter.cli", args[0], str(GIG / "policy.charter"), *args[1:],
                     cwd=tmp_path)
    assert "charter.compiler.parse_tables" in mods and "z3" not in mods
    assert not any(m.startswith("charter.compiler.verify") for m in mods)


@pytest.fixture(scope="module")
def long_ledger(tmp_path_factory) -> Path:
    import json as _json

    sys.path.insert(0, str(GIG))
    from generate import gig_events

    d = tmp_path_factory.mktemp("long")
    (d / "e.jsonl").write_text("".join(_json.dumps(e) + "\n" for e in gig_events(300, seed=3)))
    r = subprocess.run(
        [sys.executable, "-m", "charter.cli", "run", str(GIG / "policy.charter"),
         str(d / "e.jsonl"), "--db", str(d / "l.sqlite"), "-q", "--batch", "50"],
        capture_output=True, text=True, timeout=300,
    )
    assert r.returncode == 0, r.stderr
    return d / "l.sqlite"


def test_history_limit_is_the_newest_entries_with_their_hashes(long_ledger):
    """--limit N reads the newest N entries (newest first through the sequence index); each
    shown hash is the chain hash (re-hashed from the nearest kept one), as a full read gives."""
    import json as _json

    def hist(*extra: str) -> list:
        r = subprocess.run([sys.executable, "-m", "charter.cli", "ledger", "history",
                            str(long_ledger),
                            "--json", *extra], capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, r.stderr
        return _json.loads(r.stdout)

    full = hist()
    assert len(full) > 40  # spans more than one kept hash (journal.ANCHOR_EVERY)
    for n in (1, 7, 40):
        assert hist("--limit", str(n)) == full[-n:]
    acc = full[-1]["postings"][0]["to"] if full[-1]["postings"] else "pool:commons"
    mine = [h for h in full if any(acc in (p["from"], p["to"]) for p in h["postings"])]
    assert hist("--account", acc, "--limit", "3") == mine[-3:]
