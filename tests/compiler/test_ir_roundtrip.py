"""The IR's JSON form reads back to the same IR for every stdlib policy and example.

A ledger records its policy as this JSON and decodes it on every open (the integrity
check), so a policy whose IR does not round-trip makes its own ledgers unopenable.
This happened to every policy whose `test` blocks pass a ratio argument (their wire
form ``{"num": .., "den": ..}`` was read as an IR node); the reopen test below is the
regression for it.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from charter.compiler import ir
from charter.compiler.pipeline import load_policy
from charter.runtime.api import open_runtime

ROOT = Path(__file__).resolve().parents[2]
POLICIES = sorted(ROOT.glob("stdlib_policies/*.charter")) + sorted(
    ROOT.glob("examples/*/policy.charter")) + sorted(ROOT.glob("tests/runtime/splits/*.charter"))


@pytest.mark.parametrize("path", POLICIES, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_ir_json_round_trip(path: Path) -> None:
    policy = load_policy(path)
    assert ir.from_data(json.loads(ir.to_json(policy))) == policy


@pytest.mark.parametrize("name", ["asset_royalties", "collective_creation", "digital_twins"])
def test_ledger_of_policy_with_ratio_test_arguments_reopens(name: str, tmp_path: Path) -> None:
    path = ROOT / "stdlib_policies" / f"{name}.charter"
    db = tmp_path / "ledger.db"
    open_runtime(path, str(db)).close()
    rt = open_runtime(path, str(db))  # raised LedgerIntegrityError (KeyError: None) before
    rt.close()


def test_unknown_node_is_an_error_not_a_key_error() -> None:
    with pytest.raises(ValueError, match="unknown IR node"):
        ir.from_data({"node": "NoSuchNode"})
