"""`charter verify` on several files and directories, and where its cache lives."""

from __future__ import annotations

import json
import os

import pytest
from click.testing import CliRunner

import verify_policies as P
from charter.cli import cli
from charter.compiler import verify as V


def invoke(*args, env=None):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False, env=env)


@pytest.fixture
def tree(tmp_path):
    d = tmp_path / "policies"
    (d / "sub").mkdir(parents=True)
    (d / "good.charter").write_text(P.FEE.format(name="fee", hi="10%"))
    (d / "sub" / "bad.charter").write_text(P.FEE.format(name="fee", hi="150%"))
    (d / "notes.txt").write_text("not a policy")
    broken = tmp_path / "broken.charter"
    broken.write_text("policy broken version 1\nthis is not charter\n")
    return tmp_path, d, broken


def test_directory_and_files_text(tree):
    tmp, d, _ = tree
    r = invoke("verify", str(d), str(d / "good.charter"), "--cache-dir", str(tmp / "c"))
    assert r.exit_code == 1, r.output  # the refuted one decides the exit status
    # one report per policy (good twice: it was named twice), then the total
    assert r.output.count("verify fee 1:") == 3
    assert "3 of 3 policies verified:" in r.output and " refuted" in r.output
    assert "REFUTED" in r.output


def test_several_files_json_and_sarif(tree):
    tmp, d, _ = tree
    r = invoke("verify", str(d), "--format", "json", "--no-cache")
    doc = json.loads(r.output)
    assert [p["policy"] for p in doc["policies"]] == ["fee", "fee"]
    assert doc["summary"]["refuted"] == sum(p["summary"]["refuted"] for p in doc["policies"]) > 0
    r = invoke("verify", str(d / "good.charter"), str(d / "sub" / "bad.charter"),
               "--format", "sarif", "--no-cache")
    sarif = json.loads(r.output)
    uris = {x["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
            for x in sarif["runs"][0]["results"] if "locations" in x}
    assert any(u.endswith("good.charter") for u in uris)
    assert any(u.endswith("bad.charter") for u in uris)
    # a single file keeps the single-policy JSON shape
    one = json.loads(invoke("verify", str(d / "good.charter"), "--format", "json",
                            "--no-cache").output)
    assert one["policy"] == "fee" and "results" in one


def test_a_broken_policy_does_not_hide_the_others(tree):
    tmp, d, broken = tree
    r = invoke("verify", str(broken), str(d / "good.charter"), "--no-cache")
    assert r.exit_code == 1
    assert "verify fee 1:" in r.output  # the good one was still verified
    assert "1 of 2 policies verified" in r.output


@pytest.mark.parametrize("args", [[], ["nothing-here/"]])
def test_no_policies_is_a_usage_error(tmp_path, args):
    empty = tmp_path / "empty"
    empty.mkdir()
    r = invoke("verify", str(empty), *args)
    assert r.exit_code == 2


def test_cache_lives_in_the_user_cache_directory(tree, tmp_path, monkeypatch):
    _, d, _ = tree
    work = tmp_path / "cwd"
    work.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.delenv("CHARTER_CACHE_DIR", raising=False)
    xdg = tmp_path / "xdg"
    monkeypatch.setenv("XDG_CACHE_HOME", str(xdg))
    if os.name != "posix" or os.uname().sysname == "Darwin":
        pytest.skip("XDG layout is the Linux convention")
    assert V.user_cache_dir() == xdg / "charter" / "verify"
    r = invoke("verify", str(d / "good.charter"))
    assert r.exit_code == 0
    assert list((xdg / "charter" / "verify").glob("*.json"))
    assert list(work.iterdir()) == []  # nothing written into the current directory
    # a second run is served from there
    assert "(from cache)" in invoke("verify", str(d / "good.charter")).output
    # --cache-dir wins; a relative XDG_CACHE_HOME is invalid (XDG spec) and ignored
    r = invoke("verify", str(d / "good.charter"), "--cache-dir", str(tmp_path / "mine"))
    assert list((tmp_path / "mine").glob("*.json"))
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/dir")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert V.user_cache_dir() == tmp_path / "home" / ".cache" / "charter" / "verify"
    monkeypatch.setenv("CHARTER_CACHE_DIR", str(tmp_path / "env"))
    assert V.user_cache_dir() == tmp_path / "env"


def test_rlimit_option_reaches_the_report(tree):
    _, d, _ = tree
    r = invoke("verify", str(d / "good.charter"), "--format", "json", "--no-cache",
               "--rlimit", "500", "--timeout-ms", "90000")
    doc = json.loads(r.output)
    assert doc["rlimit"] == 500 and doc["timeout_ms"] == 90000
    assert doc["summary"]["unknown"] > 0  # 500 units cannot decide everything
    assert doc["summary"]["refuted"] == 0  # and a limit never refutes
    help_text = invoke("verify", "--help").output
    assert f"{V.DEFAULT_RLIMIT:,}" in help_text
