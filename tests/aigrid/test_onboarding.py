"""Issue 20: every example onboards to AIGrid unchanged and settles as `charter run` does.

Each example is exported, POSTed to a faithful copy of AIGrid's registry
(``aigrid_faithful.Registry``: ``PolicyRule.from_dict`` of system/core/schema.py),
read back through the local SDK's reader, and run the ways AIGrid's executors
run a rule (a new instance per call with the registry's settings merged over
the caller's, and one long-lived instance), on a SQLite ledger under an
operator data directory.  Each must end with the journal hash `charter run`
prints for the same events.
"""
from __future__ import annotations

import json
import multiprocessing
import os
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings as hsettings, strategies as st

from charter.cli import cli as cli_main
from charter.compiler import aigrid_rule
from charter.compiler.aigrid_rule import BundleError, check_settings
from charter.compiler.export_aigrid import ExportError, export

sys.path.insert(0, str(Path(__file__).parent))
from aigrid_faithful import (  # noqa: E402
    LongLivedExecutor,
    Registry,
    RegistryPolicyRule,
    SdkLocalExecutor,
    executor_service_call,
    sdk_read_policy,
)
from test_aigrid import GIG, example_cases  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _fresh_process_state(monkeypatch: pytest.MonkeyPatch) -> Any:
    aigrid_rule.close_all()
    monkeypatch.delenv(aigrid_rule.DATA_DIR_ENV, raising=False)
    yield
    aigrid_rule.close_all()
    sys.modules.pop("function", None)


def onboard(policy: Path, out: Path, **kw: Any) -> tuple[Registry, dict]:
    """Export, point `code` at the zip (as an operator does after upload), POST it."""
    res = export(policy, out, **kw)
    doc = dict(res.policy_rule, code=str(res.zip_path))
    registry = Registry()
    reply = registry.post_policy(doc)
    assert reply == {"success": True, "data": "Policy created successfully."}, reply
    return registry, doc


def charter_run_head(policy: Path, events: list[dict], tmp: Path) -> dict:
    """`charter run --memory --json`, with the policy named relative to the checkout (as
    a user types it): the bundle must hash its sources the same way."""
    ev = tmp / "events.jsonl"
    ev.write_text("".join(json.dumps(e) + "\n" for e in events), "utf-8")
    cwd = os.getcwd()
    os.chdir(ROOT)
    try:
        result = CliRunner().invoke(cli_main, ["run", "--memory", "--json", "-q",
                                               str(policy.relative_to(ROOT)), str(ev)])
    finally:
        os.chdir(cwd)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


CASES = [c for c in example_cases() if c[0] != "stdlib_gig_market_generated"]


@pytest.mark.parametrize("name,policy,events", CASES, ids=[c[0] for c in CASES])
def test_example_onboards_and_settles_like_charter_run(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, policy: Path,
        events: list[dict]) -> None:
    # NORMAL: fsync per event is the operator's choice (FULL, the default, is tested below);
    # here it would only make the suite wait on the disk
    registry, doc = onboard(policy, tmp_path / "out",
                            settings={"store": "sqlite", "synchronous": "NORMAL"})
    uri = doc["policy_rule_uri"]
    # the registry keeps the document whole: what comes back is what went in
    stored = registry.get_policy(uri)
    assert stored["success"] and stored["data"] == json.loads(json.dumps(doc))
    sdk_doc = sdk_read_policy(registry, uri)
    assert sdk_doc is not None and sdk_doc.code_type == "zip"
    assert {e["type"] for e in sdk_doc.functionality_data["events"]} <= \
        {h for h in doc["policy_input_schema"]["properties"]["type"]["enum"]}

    want = charter_run_head(policy, events, tmp_path)
    # 1. the local SDK: a new rule instance per call; the caller's db_path loses to the
    # registry's settings, and the ledger lands under the operator's data directory
    monkeypatch.setenv(aigrid_rule.DATA_DIR_ENV, str(tmp_path / "data-sdk"))
    monkeypatch.chdir(tmp_path)
    sdk = SdkLocalExecutor(registry, uri, tmp_path / "sdk",
                           settings={"db_path": "caller-choice.sqlite"})
    receipts = [sdk.execute_policy_rule(json.loads(json.dumps(e))) for e in events]
    assert sum(r["applied"] for r in receipts) == want["applied"] + want["duplicates"]
    assert not [r for r in receipts if r["code"] == "internal_error"]
    assert receipts[-1]["journal_hash"] == want["journal_hash"]
    # the ledger is under the data directory, never in the executor's working directory
    assert [p.name for p in (tmp_path / "data-sdk").glob("*.sqlite")] == ["caller-choice.sqlite"]
    assert not list(tmp_path.glob("*.sqlite"))
    assert sdk.execute_mgmt_command("balances", {})["journal_hash"] == want["journal_hash"]
    aigrid_rule.close_all()

    # 2. the long-lived container: one instance for every call, a fresh ledger
    monkeypatch.setenv(aigrid_rule.DATA_DIR_ENV, str(tmp_path / "data-t4"))
    t4 = LongLivedExecutor(registry, uri, tmp_path / "t4")
    receipts = [t4.execute(json.loads(json.dumps(e))) for e in events]
    assert receipts[-1]["journal_hash"] == want["journal_hash"]
    assert sum(not r["applied"] for r in receipts) == want["rejected"]


def test_document_without_a_required_field_is_refused_by_the_registry(tmp_path: Path) -> None:
    """The faithful registry fails where AIGrid's does (so the test above can fail)."""
    _, doc = onboard(GIG, tmp_path)
    for key in ("code_type", "functionality_data", "resource_estimates"):
        reply = Registry().post_policy({k: v for k, v in doc.items() if k != key})
        assert reply["success"] is False and key in reply["message"]
    # a field the registry does not keep is dropped: the export has none
    assert set(doc) == set(RegistryPolicyRule.__dataclass_fields__)


def test_functionality_data_and_resource_estimates_mean_something(tmp_path: Path) -> None:
    ev = ROOT / "examples" / "asset_royalties" / "events.jsonl"
    _, doc = onboard(ROOT / "examples" / "asset_royalties" / "policy.charter", tmp_path,
                     measure_events=ev)
    fd = doc["functionality_data"]
    assert {c["name"] for c in fd["management_commands"]} >= {"balances", "audit", "history"}
    assert fd["events"] and all(e["submitter"] for e in fd["events"])
    assert fd["source_hash"] == doc["metadata"]["charter_source_hash"]
    est = doc["resource_estimates"]
    assert est["basis"]["method"] == "measured"
    assert est["basis"]["events"] == len(ev.read_text().splitlines())
    assert est["ms_per_event"]["p50"] > 0 and est["memory_mb"] > 0
    assert est["ledger_bytes_per_event"] > 0 and est["gpu_count"] == 0
    _, plain = onboard(GIG, tmp_path / "plain")
    assert plain["resource_estimates"]["basis"]["method"] == "recorded"


def test_composed_policy_hash_is_the_same_wherever_it_is_compiled(tmp_path: Path,
                                                                  monkeypatch: Any) -> None:
    from charter.compiler.pipeline import Compilation

    lib = tmp_path / "src" / "lib"
    lib.mkdir(parents=True)
    (lib / "fees.charter").write_text(
        'policy fees version "1"\nasset Credit: token, decimals 2, mintable, burnable\n'
        'role Member\n', "utf-8")
    main = tmp_path / "src" / "app" / "main.charter"
    main.parent.mkdir()
    main.write_text(
        'policy app version "1"\nimport "../lib/fees.charter" as fees\n'
        'import "asset_royalties" as roy\n', "utf-8")
    monkeypatch.chdir(tmp_path)
    hashes = {Compilation.from_path(p).ir.source_hash
              for p in (main, Path("src/app/main.charter"), Path("src/app/../app/main.charter"))}
    assert len(hashes) == 1
    res = export(Path("src/app/main.charter"), tmp_path / "out")
    rule_cls = _load_bundle(res.zip_path, tmp_path / "unz")
    rule = rule_cls("", {"store": "memory", "ephemeral": True}, {})
    assert rule.policy.source_hash in hashes


def _load_bundle(zip_path: Path, where: Path) -> Any:
    import importlib.util
    import zipfile

    with zipfile.ZipFile(zip_path) as zf:
        zf.extractall(where)
    spec = importlib.util.spec_from_file_location("function", where / "code" / "function.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.AIOSv1PolicyRule


# ---- settings --------------------------------------------------------------------------

def test_ledger_location_never_depends_on_the_working_directory(tmp_path: Path,
                                                                monkeypatch: Any) -> None:
    res = export(GIG, tmp_path / "out")
    rule_cls = _load_bundle(res.zip_path, tmp_path / "unz")
    monkeypatch.setenv(aigrid_rule.DATA_DIR_ENV, str(tmp_path / "ops"))
    for cwd in (tmp_path, tmp_path / "out"):
        monkeypatch.chdir(cwd)
        rule = rule_cls("", res.policy_rule["policy_settings"], {})
        assert rule._ledger.key == str(tmp_path / "ops" / "gig_market-1.0.sqlite")
    aigrid_rule.close_all()
    rule = rule_cls("", {"db_path": "x.sqlite", "data_dir": str(tmp_path / "d")}, {})
    assert rule._ledger.key == str(tmp_path / "d" / "x.sqlite")


@pytest.mark.parametrize("settings,message,at_export", [
    ({"data_dir": "relative/dir"}, "not an absolute path", False),
    ({"db_path": "{blocker}/sub/x.sqlite"}, "cannot create the ledger folder", False),
    ({"store": "memory"}, "refusing store=memory", True),
    ({"store": "postgresql"}, "needs the setting db_url", True),
    ({"lock_wait": -1}, "lock_wait", True),
    ({"db_dir": "/x"}, "unknown setting(s): db_dir", True),
])
def test_bad_settings_are_clear_start_up_errors(tmp_path: Path, settings: dict,
                                                message: str, at_export: bool) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    settings = {k: v.format(blocker=blocker) if isinstance(v, str) else v
                for k, v in settings.items()}
    res = export(GIG, tmp_path / "out")
    rule_cls = _load_bundle(res.zip_path, tmp_path / "unz")
    with pytest.raises(BundleError) as err:
        rule_cls("", settings, {})
    assert message in str(err.value)
    if at_export:  # refused when the document is written, not only when the node starts
        with pytest.raises(ExportError, match="setting refused"):
            export(GIG, tmp_path / "out2", settings=settings)


def test_ephemeral_memory_store_warns_on_every_receipt_and_keeps_state_in_process(
        tmp_path: Path) -> None:
    registry, doc = onboard(GIG, tmp_path, settings={"store": "memory", "ephemeral": True})
    sdk = SdkLocalExecutor(registry, doc["policy_rule_uri"], tmp_path / "sdk")
    evs = [{"id": f"d{i}", "type": "deposit", "submitter": "gateway", "time": 10,
            "args": {"account": "ann", "amount": 100}} for i in range(3)]
    receipts = [sdk.execute_policy_rule(e) for e in evs]
    assert all(r["applied"] and r["warnings"] for r in receipts)
    assert "store=memory" in receipts[0]["warnings"][0]
    # a new instance per call still sees the earlier events (the process keeps the ledger)
    bal = sdk.execute_mgmt_command("balances", {"party": "ann"})["balances"]
    assert bal == {"party:ann:Credit": 300}


@hsettings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
                    lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=8), c,
                                                                        max_size=3),
                    max_leaves=8)
       | st.dictionaries(st.sampled_from(list(aigrid_rule.SETTINGS) + ["x"]),
                         st.none() | st.booleans() | st.integers() | st.floats()
                         | st.text(max_size=30) | st.lists(st.integers(), max_size=2)
                         | st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
                         max_size=4))
def test_hostile_settings_are_refused_cleanly(value: Any) -> None:
    try:
        s = check_settings(value)
    except BundleError as err:
        assert str(err) and "Traceback" not in str(err)
        return
    assert s["store"] in ("sqlite", "postgresql", "memory")
    assert s["store"] != "memory" or s["ephemeral"] is True


# ---- concurrency ---------------------------------------------------------------------

def _one_process(row: dict, events: list[dict], tmp: str, data_dir: str, q: Any) -> None:
    os.environ[aigrid_rule.DATA_DIR_ENV] = data_dir
    out = []
    for e in events:  # like MultiprocessingPolicyRuleExecutor: one call per event
        out.append(executor_service_call(row, e, Path(tmp)))
    q.put(out)


def test_eight_executor_processes_on_one_ledger_lose_nothing(tmp_path: Path) -> None:
    registry, doc = onboard(GIG, tmp_path)
    row = registry.rows[0]
    data_dir = tmp_path / "data"
    ctx = multiprocessing.get_context("fork")
    q = ctx.Queue()
    per, procs = 6, []
    for k in range(8):
        evs = [{"id": f"p{k}-{i}", "type": "deposit", "submitter": "gateway", "time": 100,
                "args": {"account": f"acct{k}", "amount": i + 1}} for i in range(per)]
        evs.append(dict(evs[0]))  # a retry of an applied event: a duplicate, never twice
        procs.append(ctx.Process(target=_one_process,
                                 args=(row, evs, str(tmp_path / "x"), str(data_dir), q)))
    for p in procs:
        p.start()
    results = [q.get(timeout=240) for _ in procs]
    for p in procs:
        p.join(timeout=60)
    receipts = [r for rs in results for r in rs]
    assert [r for r in receipts if not r["applied"]] == []
    assert sum(r["status"] == "duplicate" for r in receipts) == 8
    from charter import open_runtime
    from charter.runtime.api import audit_ledger

    rt = open_runtime(None, data_dir / "gig_market-1.0.sqlite")
    try:
        assert len(rt.history()) == 8 * per
        for k in range(8):
            assert rt.balances()[f"party:acct{k}:Credit"] == sum(range(1, per + 1))
        assert audit_ledger(rt).ok
    finally:
        rt.close()


def test_a_process_sees_events_another_process_settled(tmp_path: Path) -> None:
    """Two long-lived instances in two processes on one file take turns."""
    registry, doc = onboard(GIG, tmp_path, settings={"store": "sqlite",
                                                     "data_dir": str(tmp_path / "d")})
    here = LongLivedExecutor(registry, doc["policy_rule_uri"], tmp_path / "a")
    ev = {"id": "a1", "type": "deposit", "submitter": "gateway", "time": 5,
          "args": {"account": "ann", "amount": 7}}
    assert here.execute(ev)["applied"]
    ctx = multiprocessing.get_context("fork")
    q = ctx.Queue()
    other = {"id": "b1", "type": "deposit", "submitter": "gateway", "time": 6,
             "args": {"account": "ann", "amount": 5}}
    p = ctx.Process(target=_one_process, args=(registry.rows[0], [other], str(tmp_path / "b"),
                                                 str(tmp_path / "unused"), q))
    p.start()
    assert q.get(timeout=120)[0]["applied"]
    p.join(timeout=60)
    third = dict(ev, id="a2", time=7)
    out = here.execute(third)
    assert out["applied"]
    bal = here.executor.mgmt("balances", {"party": "ann"})["balances"]
    assert bal == {"party:ann:Credit": 19}


# ---- shipping ------------------------------------------------------------------------

def test_wheelhouse_ships_in_the_bundle_for_offline_nodes(tmp_path: Path) -> None:
    import zipfile

    from charter import __version__

    house = tmp_path / "wheels"
    house.mkdir()
    with pytest.raises(ExportError, match="no .whl files"):
        export(GIG, tmp_path / "o0", wheelhouse=house)
    (house / f"charter_policy-{__version__}-py3-none-any.whl").write_bytes(b"w1")
    with pytest.raises(ExportError, match="lark, attrs, z3-solver, click"):
        export(GIG, tmp_path / "o1", wheelhouse=house)
    for name in ("lark-1.2.2-py3-none-any.whl", "attrs-25.1.0-py3-none-any.whl",
                 "z3_solver-4.13.4.0-py3-none-manylinux_2_17_x86_64.whl",
                 "click-8.1.8-py3-none-any.whl"):
        (house / name).write_bytes(name.encode())
    res = export(GIG, tmp_path / "o2", wheelhouse=house)
    with zipfile.ZipFile(res.zip_path) as zf:
        names = zf.namelist()
        req = zf.read("code/requirements.txt").decode()
        manifest = json.loads(zf.read("code/charter-bundle.json"))
    assert f"code/wheels/charter_policy-{__version__}-py3-none-any.whl" in names
    assert req.splitlines()[1:] == ["--no-index", "--find-links wheels",
                                    f"charter-policy=={__version__}"]
    assert len(manifest["wheels"]) == 5
    plain = export(GIG, tmp_path / "o3")
    with zipfile.ZipFile(plain.zip_path) as zf:
        assert zf.read("code/requirements.txt").decode() == f"charter-policy=={__version__}\n"


# ---- Type 4: the long-lived container's routes --------------------------------------

def test_type4_container_serves_execute_and_management_routes(tmp_path: Path) -> None:
    pytest.importorskip("flask")
    import requests
    from werkzeug.serving import make_server

    from charter.aigrid_container import Container, create_app

    _, doc = onboard(GIG, tmp_path, settings={"store": "sqlite",
                                              "data_dir": str(tmp_path / "d")})
    container = Container.from_policy_rule(doc, workdir=tmp_path / "t4",
                                           settings={"data_dir": "/caller/loses"})
    server = make_server("127.0.0.1", 0, create_app(container), threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{server.server_port}"
    try:
        ev = {"id": "d1", "type": "deposit", "submitter": "gateway", "time": 5,
              "args": {"account": "ann", "amount": 250}}
        r = requests.post(f"{base}/execute", json=ev, timeout=30)
        assert r.status_code == 200 and r.json()["data"]["applied"]
        bad = requests.post(f"{base}/execute", json={"id": 3}, timeout=30).json()
        assert bad["success"] and bad["data"]["status"] == "rejected"
        r = requests.post(f"{base}/mgmt", json={"action": "balances",
                                                "data": {"party": "ann"}}, timeout=30)
        assert r.json() == {"success": True, "data": {
            "status": "ok", "balances": {"party:ann:Credit": 250},
            "journal_hash": r.json()["data"]["journal_hash"]}}
        assert requests.post(f"{base}/mgmt", json={"action": "audit"},
                             timeout=30).json()["data"]["audit"]["ok"]
        r = requests.post(f"{base}/mgmt", json={"action": "drop_tables"}, timeout=30)
        assert r.status_code == 400 and "unknown action" in r.json()["data"]["message"]
        r = requests.post(f"{base}/mgmt", data=b"\xff{", timeout=30)
        assert r.status_code == 400 and not r.json()["success"]
        names = {c["name"] for c in requests.get(f"{base}/mgmt", timeout=30).json()["data"]}
        assert "history" in names
        health = requests.get(f"{base}/health", timeout=30).json()["data"]
        assert health["policy_rule_uri"] == doc["policy_rule_uri"]
        assert (tmp_path / "d" / "gig_market-1.0.sqlite").is_file()
    finally:
        server.shutdown()
        thread.join(timeout=10)


def test_cli_export_settings_measure_and_errors(tmp_path: Path) -> None:
    ev = ROOT / "examples" / "gig_market" / "events.jsonl"
    r = CliRunner().invoke(cli_main, ["export", "aigrid", str(GIG), "-o", str(tmp_path),
                                      "--setting", "data_dir=/srv/charter",
                                      "--setting", "lock_wait=5", "--measure", str(ev)])
    assert r.exit_code == 0, r.output
    doc = json.loads((tmp_path / "gig_market-1.0.policy.json").read_text())
    assert doc["policy_settings"] == {"store": "sqlite", "data_dir": "/srv/charter",
                                      "lock_wait": 5}
    assert doc["resource_estimates"]["basis"]["method"] == "measured"
    r = CliRunner().invoke(cli_main, ["export", "aigrid", str(GIG), "-o", str(tmp_path),
                                      "--setting", "store=memory"])
    assert r.exit_code == 1 and "refusing store=memory" in r.stderr
    assert "Traceback" not in r.output
