"""`charter verify` and `charter diff` from the command line: formats, exit codes, cache."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

import verify_policies as P
from charter.cli import cli


@pytest.fixture
def files(tmp_path):
    good = tmp_path / "good.charter"
    good.write_text(P.FEE.format(name="fee", hi="10%"))
    bad = tmp_path / "bad.charter"
    bad.write_text(P.FEE.format(name="fee", hi="150%"))
    return tmp_path, good, bad


def invoke(*args):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def test_text_report_and_exit_codes(files):
    tmp, good, bad = files
    r = invoke("verify", str(good), "--cache-dir", str(tmp / "c"))
    assert r.exit_code == 0, r.output
    assert "0 refuted" in r.output
    r = invoke("verify", str(bad), "--cache-dir", str(tmp / "c"))
    assert r.exit_code == 1
    assert "REFUTED" in r.output and "non_negative" in r.output and "fee = " in r.output
    assert "when complete(" in r.output  # the replayable scenario


def test_json_format(files):
    tmp, _, bad = files
    r = invoke(
        "verify", str(bad), "--format", "json", "--no-cache", "--bound", "2", "--timeout-ms", "3000"
    )
    data = json.loads(r.output)
    assert data["bound"] == 2 and data["timeout_ms"] == 3000
    refuted = [x for x in data["results"] if x["status"] == "refuted"]
    assert refuted and refuted[0]["counterexample"]["handler"] == "complete"
    assert data["summary"]["refuted"] == len(refuted)


def test_sarif_format(files):
    tmp, _, bad = files
    r = invoke("verify", str(bad), "--format", "sarif", "--no-cache")
    doc = json.loads(r.output)
    assert doc["version"] == "2.1.0"
    run = doc["runs"][0]
    errors = [x for x in run["results"] if x["level"] == "error"]
    assert errors
    loc = errors[0]["locations"][0]["physicalLocation"]
    assert loc["artifactLocation"]["uri"].endswith("bad.charter") and loc["region"]["startLine"] > 1
    rule_ids = {rule["id"] for rule in run["tool"]["driver"]["rules"]}
    assert {x["ruleId"] for x in run["results"]} <= rule_ids


def test_cache_reuses_results(files):
    tmp, good, _ = files
    cache = tmp / "cache"
    first = invoke("verify", str(good), "--cache-dir", str(cache))
    assert "(from cache)" not in first.output
    assert list(cache.glob("*.json"))
    second = invoke("verify", str(good), "--cache-dir", str(cache))
    assert "(from cache)" in second.output
    assert (
        first.output.splitlines()[-1].split(" (")[0]
        == second.output.splitlines()[-1].split(" (")[0]
    )


def test_strict_fails_on_guard_missing(tmp_path):
    p = tmp_path / "g.charter"
    p.write_text(
        P.FEE.format(name="g", hi="10%").replace(
            'require balance(poster, Credit) >= budget else "insufficient funds"', ""
        )
    )
    assert invoke("verify", str(p), "--no-cache").exit_code == 0
    r = invoke("verify", str(p), "--no-cache", "--strict")
    assert r.exit_code == 1 and "GUARD-MISSING" in r.output


@pytest.mark.parametrize(
    "args",
    [
        ["verify", "missing.charter"],
        ["verify", "--bound", "0", "x"],
        ["verify", "--format", "xml", "x"],
        ["diff", "a.charter"],
    ],
)
def test_usage_errors_exit_2(args, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert invoke(*args).exit_code == 2


def test_policy_with_errors_exits_1(tmp_path):
    p = tmp_path / "e.charter"
    p.write_text('policy e version "1"\non x() by p: Nobody { }\n')
    r = invoke("verify", str(p), "--no-cache")
    assert r.exit_code == 1 and "error" in r.output.lower()


def test_diff_equivalent_and_different(tmp_path):
    old = tmp_path / "old.charter"
    new = tmp_path / "new.charter"
    same = tmp_path / "same.charter"
    text = P.FEE.format(name="fee", hi="10%")
    old.write_text(text)
    same.write_text(text.replace("\n\n", "\n\n# a comment changes nothing\n", 1))
    new.write_text(text.replace("floor(t.budget * fee)", "ceil(t.budget * fee)"))
    r = invoke("diff", str(old), str(same))
    assert r.exit_code == 0 and r.output.strip().endswith("equivalent"), r.output
    r = invoke("diff", str(old), str(new))
    assert r.exit_code == 1, r.output
    assert "different" in r.output and "complete" in r.output
    assert "old: applied" in r.output and "new: applied" in r.output
    r = invoke("diff", str(old), str(new), "--format", "json")
    data = json.loads(r.output)
    (h,) = [h for h in data["handlers"] if h["status"] == "different"]
    ex = h["example"]
    assert ex["old"]["postings"] != ex["new"]["postings"]


def test_per_handler_cache(tmp_path):
    """Editing one handler re-checks it; the unchanged handler's results come from the cache."""
    from charter.compiler import verify as V
    from verify_helpers import compile_text

    opts = V.Options(cache_dir=tmp_path)
    text = P.FEE.format(name="fee", hi="10%")
    first = V.verify(compile_text(text), opts)
    assert not any(r.cached for r in first)
    # same line count, different `complete` body: `post` keeps its spans and its cache entry
    edited = text.replace("floor(t.budget * fee)", "ceil(t.budget * fee)")
    second = V.verify(compile_text(edited), opts)
    by = {r.name: r for r in second}
    assert by["post.no_overdraft"].cached
    assert not by["complete.non_negative"].cached
    assert [(r.name, r.status) for r in first] == [(r.name, r.status) for r in second]


def test_param_fixes_a_value(tmp_path):
    p = tmp_path / "bad.charter"
    p.write_text(P.FEE.format(name="fee", hi="150%"))
    # at 5% the payout is never negative; over the whole range it can be
    assert invoke("verify", str(p), "--no-cache", "--param", "fee=5%").exit_code == 0
    r = invoke("verify", str(p), "--no-cache", "--param", "fee=120%")
    assert r.exit_code == 1 and "fee = 120%" in r.output
    assert invoke("verify", str(p), "--no-cache", "--param", "fee=200%").exit_code == 2
    assert invoke("verify", str(p), "--no-cache", "--param", "nope=1").exit_code == 2


def test_diff_sees_state_changes_not_only_money(tmp_path):
    """Forgetting `set t.open = false` moves the same money now but changes what later events do."""
    old = tmp_path / "old.charter"
    new = tmp_path / "new.charter"
    text = P.FEE.format(name="fee", hi="10%")
    old.write_text(text)
    new.write_text(text.replace("set t.open = false", ""))
    r = invoke("diff", str(old), str(new))
    assert r.exit_code == 1, r.output
    assert "field Task.open" in r.output


def test_diff_shows_an_input_one_version_rejects(tmp_path):
    """A new require changes which events apply: the diff shows one and why it is rejected."""
    old = tmp_path / "old.charter"
    new = tmp_path / "new.charter"
    text = P.FEE.format(name="fee", hi="10%")
    old.write_text(text)
    new.write_text(
        text.replace(
            'require budget > 0 Credit else "budget must be positive"',
            'require budget > 1 Credit else "budget must exceed one Credit"',
        )
    )
    r = invoke("diff", str(old), str(new), "--format", "json")
    data = json.loads(r.output)
    (h,) = [h for h in data["handlers"] if h["status"] == "different"]
    assert h["handler"] == "post"
    ex = h["example"]
    assert ex["old"]["applied"] and not ex["new"]["applied"]
    assert "whether the event is applied" in ex["differs_in"]
