"""`charter check` / `charter compile` as a user runs them: exit codes, output, JSON."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from charter.cli import cli

HERE = Path(__file__).parent
GOOD = HERE / "gig_reference.charter"

BAD = """policy bad version "1"
asset Credit: token, decimals 2
pool commons of Credit
on pay(x: Credit) by p: party { transfer x * 2% from p to commons }
on nobody() { dissolve }
"""


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args))
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result.exit_code, result.output


def test_clean_policy_exits_zero() -> None:
    code, out = run("check", str(GOOD))
    assert (code, out.strip()) == (0, "ok: 1 policy checked")


def test_errors_are_located_hinted_and_all_reported(tmp_path: Path) -> None:
    bad = tmp_path / "bad.charter"
    bad.write_text(BAD)
    code, out = run("check", str(bad))
    assert code == 1
    assert f"{bad}:4:42: error[E0303]: this Credit amount may be fractional" in out
    assert "4 | on pay(x: Credit) by p: party { transfer x * 2% from p to commons }" in out
    assert "  | " + " " * 41 + "^^^^^^\n" in out
    assert "hint: state the rounding" in out
    assert f"{bad}:5:1: error[E0501]" in out
    assert "2 errors, 0 warnings" in out


def test_json_format_for_tools(tmp_path: Path) -> None:
    bad = tmp_path / "bad.charter"
    bad.write_text(BAD)
    code, out = run("check", "--format", "json", str(bad))
    assert code == 1
    items = json.loads(out)
    assert [(d["code"], d["line"], d["col"]) for d in items] == [("E0303", 4, 42),
                                                                  ("E0501", 5, 1)]
    assert all(set(d) >= {"message", "severity", "hint", "notes", "end_col"} for d in items)


# A file that is not text at all cannot be read as a policy (2, like a missing file);
# text that is not a valid policy is an error in the policy (1).
@pytest.mark.parametrize("content,code,exit", [
    (b"", "E0004", 1), (b"\xff\xfe\x00garbage", "E0002", 2), (b"policy x version '1'", "E0102", 1),
    (b"policy x version \"1\"\non f() by clock { let x = " + b"-" * 10_000 + b"1 }", "E0104",
     1),
])
def test_bad_input_is_a_diagnostic_not_a_traceback(tmp_path: Path, content: bytes,
                                                   code: str, exit: int) -> None:
    f = tmp_path / "x.charter"
    f.write_bytes(content)
    exit_code, out = run("check", "--format", "json", str(f))
    assert exit_code == exit
    assert [d["code"] for d in json.loads(out)] == [code]


def test_missing_file_is_a_usage_error(tmp_path: Path) -> None:
    code, out = run("check", str(tmp_path / "nope.charter"))
    assert code == 2 and "E0001" in out


def test_compile_emits_ir_json() -> None:
    code, out = run("compile", "--emit", "ir", str(GOOD))
    assert code == 0
    data = json.loads(out)
    assert data["node"] == "Policy" and data["name"] == "gig_market"
    assert [h["name"] for h in data["handlers"]][:3] == ["join", "deposit", "post"]


def test_param_override_on_the_command_line() -> None:
    code, out = run("compile", "--param", "fee=5%", str(GOOD))
    fee = next(p for p in json.loads(out)["params"] if p["name"] == "fee")
    assert code == 0 and fee["default"] == {"node": "Fraction", "num": 1, "den": 20}
    code, out = run("check", "--param", "fee=50%", str(GOOD))
    assert code == 1 and "E0308" in out
