"""`charter fmt` from the command line: modes, directories, exit codes, messages."""
from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from charter.cli import cli

MESSY = 'policy p version "1"\nasset A:token # the asset\n'
CLEAN = 'policy p version "1"\n\nasset A: token  # the asset\n'


def run(*args: str):
    return CliRunner().invoke(cli, ["fmt", *args], catch_exceptions=False)


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    (tmp_path / "sub").mkdir()
    (tmp_path / "a.charter").write_text(MESSY, encoding="utf-8")
    (tmp_path / "sub" / "b.charter").write_text(CLEAN, encoding="utf-8")
    (tmp_path / "sub" / "notes.txt").write_text("not a policy", encoding="utf-8")
    return tmp_path


def test_rewrites_in_place_recursing_into_directories(tree: Path) -> None:
    r = run(str(tree))
    assert r.exit_code == 0, r.output
    assert (tree / "a.charter").read_text("utf-8") == CLEAN
    assert (tree / "sub" / "b.charter").read_text("utf-8") == CLEAN
    assert "formatted" in r.output and "a.charter" in r.output and "b.charter" not in r.output
    assert run(str(tree)).output.startswith("ok: 2 files already formatted")


def test_check_lists_files_and_changes_nothing(tree: Path) -> None:
    r = run("--check", str(tree))
    assert r.exit_code == 1
    assert f"would reformat {tree / 'a.charter'}" in r.output
    assert "b.charter" not in r.output
    assert (tree / "a.charter").read_text("utf-8") == MESSY
    assert run("--check", str(tree / "sub")).exit_code == 0


def test_diff_prints_unified_diff_and_changes_nothing(tree: Path) -> None:
    r = run("--diff", str(tree / "a.charter"))
    assert r.exit_code == 0
    assert "-asset A:token # the asset" in r.output
    assert "+asset A: token  # the asset" in r.output
    assert r.output.startswith("--- ")
    assert (tree / "a.charter").read_text("utf-8") == MESSY
    assert run("--diff", "--check", str(tree / "a.charter")).exit_code == 1


def test_parse_error_is_rendered_with_exit_1(tmp_path: Path) -> None:
    f = tmp_path / "bad.charter"
    f.write_text('policy p version "1"\nasset A token\n', encoding="utf-8")
    r = run(str(f))
    assert r.exit_code == 1
    assert "bad.charter:2:9: error[E0101]" in r.output
    assert "2 | asset A token" in r.output
    assert f.read_text("utf-8") == 'policy p version "1"\nasset A token\n'


@pytest.mark.parametrize("content,code,exit_code", [
    (b"\xff\xfe\x00policy", "E0002", 2),
    (b"x" * 2_000_001, "E0003", 2),
    (b"", "E0004", 1),
    (b"  \n\t\n", "E0004", 1),
    (b"\x89PNG\r\n\x1a\n\x00\x00", "E0002", 2),
    (b"\x00\x01\x02 binary", "E0102", 1),
])
def test_unusable_files_get_a_clear_message(tmp_path: Path, content: bytes, code: str,
                                             exit_code: int) -> None:
    f = tmp_path / "f.charter"
    f.write_bytes(content)
    r = run(str(f))
    assert r.exit_code == exit_code
    assert f"error[{code}]" in r.output
    assert "Traceback" not in r.output
    assert f.read_bytes() == content


def test_missing_path_is_an_io_error(tmp_path: Path) -> None:
    r = run(str(tmp_path / "nope.charter"))
    assert r.exit_code == 2
    assert "E0001" in r.output and "nope.charter" in r.output


def test_empty_directory(tmp_path: Path) -> None:
    r = run(str(tmp_path))
    assert r.exit_code == 2
    assert "no .charter files" in r.output


def test_one_bad_file_does_not_stop_the_others(tree: Path) -> None:
    (tree / "bad.charter").write_text("policy", encoding="utf-8")
    r = run(str(tree))
    assert r.exit_code == 1
    assert (tree / "a.charter").read_text("utf-8") == CLEAN


def test_stdin_to_stdout() -> None:
    r = CliRunner().invoke(cli, ["fmt", "-"], input=MESSY.encode())
    assert r.exit_code == 0 and r.output == CLEAN
    assert CliRunner().invoke(cli, ["fmt", "--check", "-"], input=MESSY.encode()).exit_code == 1
    assert CliRunner().invoke(cli, ["fmt", "--check", "-"], input=CLEAN.encode()).exit_code == 0
    bad = CliRunner().invoke(cli, ["fmt", "-"], input=b"policy p")
    assert bad.exit_code == 1 and "<stdin>:1:9: error[E0103]" in bad.output
    assert CliRunner().invoke(cli, ["fmt", "-"], input=b"\xff").exit_code == 2
