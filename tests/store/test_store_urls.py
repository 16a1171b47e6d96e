"""Stores chosen by URL everywhere a ``--db`` is taken, with clear errors and no passwords shown."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

import charter
from charter.cli import cli
from charter.runtime.store import StoreError
from charter.runtime.store_url import parse, redact

ROOT = Path(__file__).resolve().parents[2]
GIG = ROOT / "examples" / "gig_market"


@pytest.mark.parametrize(
    "text,kind,target,schema",
    [
        ("ledger.sqlite", "sqlite", "ledger.sqlite", None),
        ("/var/lib/x.db", "sqlite", "/var/lib/x.db", None),
        ("dir/with:colon.db", "sqlite", "dir/with:colon.db", None),
        ("sqlite:///ledger.sqlite", "sqlite", "ledger.sqlite", None),
        ("sqlite:////var/lib/x.db", "sqlite", "/var/lib/x.db", None),
        ("sqlite:///a%20b.db", "sqlite", "a b.db", None),
        (":memory:", "memory", ":memory:", None),
        ("sqlite:///:memory:", "memory", ":memory:", None),
        ("postgresql://u:pw@db.example:5433/econ", "postgresql",
         "postgresql://u:pw@db.example:5433/econ", "charter"),
        ("postgres://u@h/econ?schema=market_a&sslmode=require", "postgresql",
         "postgres://u@h/econ?sslmode=require", "market_a"),
        ("postgresql:///econ?host=/run/postgresql", "postgresql",
         "postgresql:///econ?host=/run/postgresql", "charter"),
    ],
)  # fmt: skip
def test_store_urls_name_stores(text, kind, target, schema):
    spec = parse(text)
    assert (spec.kind, spec.target, spec.schema) == (kind, target, schema)


@pytest.mark.parametrize(
    "text,says",
    [
        ("mysql://u:hunter2@h/db", "unknown store scheme 'mysql'"),
        ("sqlite://host/x.db", "sqlite:////absolute/path"),
        ("sqlite:", "names no file"),
        ("postgresql://u:hunter2@h:notaport/db", "not a valid PostgreSQL URL"),
        ("postgresql://u:hunter2@h/db?schema=a&schema=b", "'schema' given twice"),
        ("postgresql://u:hunter2@h/db?nonsense_option=1", "not a valid PostgreSQL URL"),
        ("", "a store is a path or a URL"),
        ("a\x00b", "NUL"),
    ],
)
def test_bad_store_urls_say_why_without_the_password(text, says):
    with pytest.raises(StoreError) as info:
        parse(text)
    assert says in str(info.value)
    assert "hunter2" not in str(info.value)


def test_a_bad_schema_name_is_refused_before_connecting():
    with pytest.raises(StoreError, match="schema name"):
        charter.open_runtime(None, "postgresql://u:hunter2@127.0.0.1:1/db?schema=Drop;Table")


def test_redact_hides_passwords_in_both_places():
    assert redact("postgresql://ann:s3cret@h/db") == "postgresql://ann:***@h/db"
    assert redact("postgresql://h/db?user=ann&password=s3cret") == (
        "postgresql://h/db?user=ann&password=***"
    )
    assert redact("postgresql:///econ?host=/run/pg") == "postgresql:///econ?host=/run/pg"


@given(
    st.text(max_size=60)
    | st.from_regex(r"(postgres(ql)?|sqlite)://[^\s]{0,40}", fullmatch=True)
)
@settings(max_examples=300, deadline=None)
def test_any_text_is_a_store_or_a_clear_error(text):
    try:
        spec = parse(text)
    except StoreError as exc:
        assert str(exc) and "Traceback" not in str(exc)
        return
    assert spec.kind in ("memory", "sqlite", "postgresql")


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed again when this returns: nobody listens there


def test_an_unreachable_server_is_a_clear_error(gig_policy):
    url = f"postgresql://ann:hunter2@127.0.0.1:{_closed_port()}/db"
    with pytest.raises(StoreError) as info:
        charter.open_runtime(gig_policy, url)
    text = str(info.value)
    assert text.startswith("cannot connect to postgresql://ann:***@127.0.0.1:")
    assert "hunter2" not in text


def test_a_wrong_password_is_refused_and_not_echoed(pg_server, gig_policy):
    url = pg_server.new_url().replace("charter-test-pw", "wrong-pw-hunter2")
    with pytest.raises(StoreError) as info:
        charter.open_runtime(gig_policy, url)
    assert "password authentication failed" in str(info.value)
    assert "hunter2" not in str(info.value)


# ------------------------------------------------------------------ the CLI


def test_every_db_command_takes_a_postgresql_url(pg_server, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the rejections file of a database ledger lands here
    url = pg_server.new_url()
    runner = CliRunner()
    r = runner.invoke(cli, ["run", str(GIG / "policy.charter"), str(GIG / "events.jsonl"),
                            "--db", url, "--json"])
    assert r.exit_code == 0, r.output
    summary = json.loads(r.output)
    assert summary["ledger"] == url.replace("charter-test-pw", "***")
    assert "charter-test-pw" not in r.output
    lite = runner.invoke(cli, ["run", str(GIG / "policy.charter"), str(GIG / "events.jsonl"),
                               "--db", f"sqlite:///{tmp_path / 'l.sqlite'}", "--json"])
    assert lite.exit_code == 0, lite.output
    assert json.loads(lite.output)["journal_hash"] == summary["journal_hash"]
    assert (tmp_path / "l.sqlite").is_file()
    for args in (["ledger", "balances", url, "--json"], ["ledger", "history", url],
                 ["ledger", "records", url, "Task"], ["audit", url], ["replay", url]):
        r = runner.invoke(cli, args)
        assert r.exit_code == 0, (args, r.output)
        assert "charter-test-pw" not in r.output
    r = runner.invoke(cli, ["audit", url, "--json"])
    assert json.loads(r.output)["ok"] and json.loads(r.output)["head"] == summary["journal_hash"]
    # resuming the same file against the shared ledger applies nothing twice
    again = runner.invoke(cli, ["run", str(GIG / "policy.charter"), str(GIG / "events.jsonl"),
                                "--db", url, "--json"])
    assert again.exit_code == 0 and json.loads(again.output)["applied"] == 0


@pytest.mark.parametrize(
    "args",
    [
        ["audit", "postgresql://ann:hunter2@127.0.0.1:{port}/db"],
        ["replay", "postgresql://ann:hunter2@127.0.0.1:{port}/db"],
        ["ledger", "balances", "postgresql://ann:hunter2@127.0.0.1:{port}/db"],
        ["run", str(GIG / "policy.charter"), str(GIG / "events.jsonl"), "--db",
         "postgresql://ann:hunter2@127.0.0.1:{port}/db"],
        ["audit", "mysql://ann:hunter2@h/db"],
        ["run", str(GIG / "policy.charter"), str(GIG / "events.jsonl"), "--db",
         "postgresql://ann:hunter2@h:99999999/db"],
        ["replay", "sqlite:///no/such/file.sqlite"],
    ],
)
def test_cli_store_errors_are_one_clear_line(args):
    port = _closed_port()
    r = CliRunner().invoke(cli, [a.replace("{port}", str(port)) for a in args])
    assert r.exit_code == 2, r.output
    assert "Traceback" not in r.output and "hunter2" not in r.output
    assert r.output.startswith("charter: ") or "Error" in r.output, r.output
