"""`charter export aigrid`: the bundle, the PolicyRule document and the rule class.

Each test exports a policy, unzips the bundle and loads ``code/function.py``
the way AIGrid's loader does (from a file path, under a fresh module name,
with no package context), then drives ``AIOSv1PolicyRule`` and compares it
with the runtime that ``charter run`` uses.
"""
from __future__ import annotations

import importlib.util
import itertools
import json
import random
import sys
import zipfile
from pathlib import Path
from typing import Any, Callable

import pytest

from charter.compiler.export_aigrid import export

ROOT = Path(__file__).resolve().parents[2]
GIG = ROOT / "stdlib_policies" / "gig_market.charter"
_fresh = itertools.count()


def load_function_py(path: Path) -> Any:
    """Import ``function.py`` from a file path as a new, package-less module."""
    name = f"aigrid_policy_{next(_fresh)}"
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.__package__ in ("", None)
    return module


class Bundle:
    def __init__(self, out: Path, zip_path: Path, json_path: Path):
        self.zip_path = zip_path
        self.json_path = json_path
        self.rule = json.loads(json_path.read_text("utf-8"))
        self.dir = out / "unzipped"
        with zipfile.ZipFile(zip_path) as zf:
            zf.extractall(self.dir)
        self.code = self.dir / "code"

    def load(self) -> Any:
        return load_function_py(self.code / "function.py")

    def rule_instance(self, settings: dict | None = None, parameters: dict | None = None) -> Any:
        return self.load().AIOSv1PolicyRule("rule-1", settings or {"store": "memory", "ephemeral": True},
                                            parameters or {})


@pytest.fixture
def exporter(tmp_path: Path) -> Callable[..., Bundle]:
    counter = itertools.count()

    def make(policy: Path = GIG, **kw: Any) -> Bundle:
        out = tmp_path / f"export{next(counter)}"
        res = export(policy, out, **kw)
        return Bundle(out, res.zip_path, res.json_path)

    return make


def gig_events(n: int = 300, seed: int = 7) -> list[dict]:
    """A deterministic stream over the stdlib gig market: joins, deposits, posts,
    bids, awards, assignments, milestones, completions, cancellations, some
    events that must be rejected, and time passing over several 30-day epochs
    and task deadlines."""
    rng = random.Random(seed)
    agents = [f"agent{i}" for i in range(6)]
    events: list[dict] = []
    t = 1_000_000
    tasks: list[str] = []
    poster: dict[str, str] = {}
    budget: dict[str, int] = {}

    def add(etype: str, sub: str, args: dict) -> None:
        events.append({"id": f"e{len(events) + 1}", "type": etype, "submitter": sub,
                       "time": t, "args": args})

    for a in agents:
        add("join", a, {})
        add("deposit", "gateway", {"account": a, "amount": rng.choice([5000, "120.50", 99999])})
    for i in range(n):
        t += rng.choice([60, 3600, 6 * 3600, 86400, 86400, 4 * 86400])
        a = rng.choice(agents)
        r = rng.random()
        # mostly recent tasks, mostly by their poster: so that many events apply
        tid = rng.choice(tasks[-4:]) if tasks else ""
        owner = poster.get(tid, a) if rng.random() < 0.85 else a
        if r < 0.22 or not tasks:
            tid = f"t{i}"
            tasks.append(tid)
            poster[tid] = a
            budget[tid] = rng.randint(100, 3000)
            payout = rng.choice(["fixed", "quality", "milestone"])
            add("post", a, {"id": tid, "budget": budget[tid], "skill": "s",
                            "payout": payout,
                            "milestones": rng.randint(2, 4) if payout == "milestone" else 1,
                            "duration": rng.choice([5, 10, 20, 20, 40]) * 86400})
        elif r < 0.45:
            add("bid", a, {"id": tid, "price": rng.randint(50, budget[tid] + 100)})
        elif r < 0.55:
            add("award", owner, {"id": tid})
        elif r < 0.62:
            add("assign", owner, {"id": tid, "worker": rng.choice(agents),
                                  "price": rng.randint(1, budget[tid])})
        elif r < 0.70:
            add("milestone", owner, {"id": tid})
        elif r < 0.85:
            add("complete", owner, {"id": tid, "quality": rng.randint(1, 5)})
        elif r < 0.92:
            add("cancel", owner, {"id": tid})
        else:
            add("deposit", rng.choice(["gateway", a]), {"account": a, "amount": 250})
    return events


def example_cases() -> list[tuple[str, Path, list[dict]]]:
    """Every runnable example (examples/NAME/policy.charter + events.jsonl), plus the
    generated gig-market stream."""
    cases = [("stdlib_gig_market_generated", GIG, gig_events())]
    for events in sorted(ROOT.glob("examples/*/events.jsonl")):
        policy = events.parent / "policy.charter"
        if not policy.is_file():
            continue
        evs = [json.loads(line) for line in events.read_text("utf-8").splitlines() if line.strip()]
        cases.append((events.parent.name, policy, evs))
    return cases


@pytest.fixture(autouse=True)
def _no_shared_runtimes() -> Any:
    """Each test starts with no SQLite runtime shared from an earlier test."""
    from charter.compiler import aigrid_rule

    aigrid_rule.close_all()
    yield
    aigrid_rule.close_all()
    sys.modules.pop("aigrid_policy", None)


def reference_run(policy_path: Path, events: list[dict], params: dict | None = None) -> Any:
    """The runtime `charter run` settles with, on the same events."""
    from charter import load_policy
    from charter.runtime.engine import Runtime
    from charter.runtime.store import MemoryStore

    rt = Runtime(load_policy(Path(policy_path)), MemoryStore(), params=params or {})
    outcomes = [rt.submit(json.loads(json.dumps(e))) for e in events]
    rt.flush()
    return rt, outcomes


# ---- the bundle ---------------------------------------------------------


def test_bundle_layout(exporter: Callable[..., Bundle]) -> None:
    from charter import __version__, load_policy

    b = exporter()
    with zipfile.ZipFile(b.zip_path) as zf:
        names = sorted(zf.namelist())
    assert names == ["code/charter-bundle.json", "code/function.py",
                     "code/policy/gig_market.charter", "code/requirements.txt"]
    assert (b.code / "requirements.txt").read_text() == f"charter-policy=={__version__}\n"
    assert (b.code / "policy" / "gig_market.charter").read_bytes() == GIG.read_bytes()
    manifest = json.loads((b.code / "charter-bundle.json").read_text())
    policy = load_policy(GIG)
    assert manifest["source_hash"] == policy.source_hash
    assert manifest["root"] == "gig_market.charter"
    assert policy.source_hash in (b.code / "function.py").read_text()


def test_bundle_carries_imports(exporter: Callable[..., Bundle], tmp_path: Path) -> None:
    src = tmp_path / "src"
    (src / "lib").mkdir(parents=True)
    (src / "lib" / "fees.charter").write_text(
        'policy fees version "1"\n'
        'asset Credit: token, decimals 2, mintable, burnable\nrole Member\n'
        'pool fund of Credit\n'
        'on give(amount: Credit) by m: Member {\n    transfer amount from m to fund\n}\n')
    (src / "main.charter").write_text(
        'policy combo version "2.1"\nimport "./lib/fees.charter" as fees\n'
        'import "gig_market" as gig\n'
        'on hello() by p: party {\n    admit p as Member\n}\n')
    b = exporter(src / "main.charter")
    with zipfile.ZipFile(b.zip_path) as zf:
        names = set(zf.namelist())
    assert {"code/policy/main.charter", "code/policy/lib/fees.charter",
            "code/policy/stdlib/gig_market.charter"} <= names
    assert b.zip_path.name == "combo-2.1.zip" and b.json_path.name == "combo-2.1.policy.json"
    rule = b.rule_instance()
    events = rule.management("describe", {})["policy"]["events"]
    assert {"hello", "fees.give", "gig.post"} <= {e["type"] for e in events}


def test_export_is_deterministic(exporter: Callable[..., Bundle]) -> None:
    a, b = exporter(), exporter()
    assert a.zip_path.read_bytes() == b.zip_path.read_bytes()
    assert a.json_path.read_bytes() == b.json_path.read_bytes()


def test_changed_source_is_refused(exporter: Callable[..., Bundle]) -> None:
    from charter.compiler.export_aigrid import BundleError

    b = exporter()
    policy = b.code / "policy" / "gig_market.charter"
    policy.write_text(policy.read_text().replace("2% within", "3% within"))
    with pytest.raises(BundleError, match="source hash"):
        b.rule_instance()


# ---- the PolicyRule document ---------------------------------------------


def test_policy_rule_document(exporter: Callable[..., Bundle]) -> None:
    import jsonschema

    b = exporter(release_tag="beta", code_url="https://example.org/gig.zip")
    rule = b.rule
    for key in ("name", "version", "release_tag", "metadata", "tags", "code", "type",
                "policy_input_schema", "policy_output_schema", "policy_settings_schema",
                "policy_parameters_schema", "policy_settings", "policy_parameters",
                "description", "code_type", "functionality_data", "resource_estimates"):
        assert key in rule, key
    # the registry keeps no management_commands_schema field: they live in functionality_data
    assert "management_commands_schema" not in rule
    assert rule["policy_rule_uri"] == "gig_market:1.0-beta"
    assert rule["type"] == "python_class_v1"
    assert rule["code"] == "https://example.org/gig.zip"
    for key in ("policy_input_schema", "policy_output_schema", "policy_settings_schema",
                "policy_parameters_schema"):
        jsonschema.Draft202012Validator.check_schema(rule[key])
    jsonschema.validate(rule["policy_parameters"], rule["policy_parameters_schema"])
    jsonschema.validate(rule["policy_settings"], rule["policy_settings_schema"])
    commands = {c["name"] for c in rule["functionality_data"]["management_commands"]}
    assert commands == {"balances", "history", "records", "audit", "replay", "params",
                        "describe", "verify"}
    for c in rule["functionality_data"]["management_commands"]:
        jsonschema.Draft202012Validator.check_schema(c["schema"])


@pytest.mark.parametrize("bad", [
    {"fee": "50%"},            # above 10%
    {"fee": "-1%"},            # below 0%
    {"min_bid": 10**9},        # above 1000 Credit
    {"rep_per_grade": "x"},    # not an int
])
def test_parameters_schema_refuses_what_the_rule_refuses(exporter: Callable[..., Bundle],
                                                          bad: dict) -> None:
    from charter.compiler.export_aigrid import BundleError

    b = exporter()
    rule = b.rule_instance()
    out = rule.eval(bad, {"id": "p1", "type": "join", "submitter": "a", "time": 1}, {})
    assert out["applied"] is False and out["code"] == "bad_parameter", out
    with pytest.raises(BundleError, match="parameters refused"):
        b.rule_instance(parameters=bad)


def test_constructor_parameters_override_defaults(exporter: Callable[..., Bundle]) -> None:
    rule = exporter().rule_instance(parameters={"fee": "5%", "min_bid": "2.50"})
    params = rule.management("params", {})["params"]
    assert params["fee"]["value"] == {"num": 1, "den": 20}
    assert params["min_bid"]["value"] == 250
    # the same values again are accepted; other in-range values are refused
    ok = rule.eval({"fee": "5%"}, {"id": "x1", "type": "join", "submitter": "a", "time": 5}, {})
    assert ok["applied"] is True, ok
    other = rule.eval({"fee": "3%"}, {"id": "x2", "type": "join", "submitter": "b", "time": 6}, {})
    assert other["applied"] is False and other["code"] == "params_fixed"


# ---- eval against charter run ---------------------------------------------

# Rejection codes of the runtime for an event whose JSON shape is wrong.
SHAPE_CODES = {"bad_envelope", "unknown_event", "unknown_argument", "missing_argument",
               "bad_argument", "out_of_range"}


@pytest.mark.parametrize("name,policy,events", example_cases(),
                         ids=[c[0] for c in example_cases()])
def test_eval_settles_like_charter_run(exporter: Callable[..., Bundle], name: str,
                                       policy: Path, events: list[dict]) -> None:
    import jsonschema

    b = exporter(policy)
    validator = jsonschema.Draft202012Validator(b.rule["policy_input_schema"])
    rule = b.rule_instance()
    receipts = [rule.eval(b.rule["policy_parameters"], e, {}) for e in events]
    ref, outcomes = reference_run(policy, events)
    assert [r["applied"] for r in receipts] == [o.applied for o in outcomes]
    assert any(r["applied"] for r in receipts)
    out_validator = jsonschema.Draft202012Validator(b.rule["policy_output_schema"])
    for e, r, o in zip(events, receipts, outcomes):
        assert not list(out_validator.iter_errors(r)), r
        assert json.loads(json.dumps(r)) == r  # plain JSON data
        if o.applied:
            assert r["journal_hash"] == o.journal_hash
            assert r["postings"] == [p.to_dict() for p in o.postings]
        else:
            assert (r["code"], r["message"]) == (o.code, o.message)
        # The schema is sound: every event the runtime settles validates, and
        # an event the schema refuses is one the runtime refuses for its shape
        # (the examples include deliberately malformed events).
        errors = [x.message for x in validator.iter_errors(e)]
        if o.applied:
            assert not errors, (e, errors)
        elif errors:
            assert o.code in SHAPE_CODES, (e, o, errors)
    got = rule.management("balances", {})
    assert got["balances"] == ref.balances()
    assert got["journal_hash"] == ref.journal_hash
    assert rule.management("audit", {})["audit"]["ok"] is True
    replay = rule.management("replay", {})
    assert replay["replay"]["ok"] is True and replay["replay"]["head"] == ref.journal_hash


# ---- malformed input --------------------------------------------------------

_GOOD = {"id": "m1", "type": "deposit", "submitter": "gateway", "time": 10,
         "args": {"account": "alice", "amount": 100}}


def _with(**changes: Any) -> dict:
    e = json.loads(json.dumps(_GOOD))
    for k, v in changes.items():
        if k.startswith("args_"):
            e["args"][k[5:]] = v
        elif v is ...:
            e.pop(k)
        else:
            e[k] = v
    return e


MALFORMED = [
    ("no id", _with(id=...), True),
    ("empty id", _with(id=""), True),
    ("unknown event", _with(type="steal"), True),
    ("negative time", _with(time=-5), True),
    ("time as text", _with(time="10"), True),
    ("amount as float", _with(args_amount=1.5), True),
    ("amount with too many decimals", _with(args_amount="1.005"), True),
    ("amount as bool", _with(args_amount=True), True),
    ("extra argument", _with(args_extra=1), True),
    ("missing argument", {**_GOOD, "args": {"account": "alice"}}, True),
    ("extra envelope key", {**_GOOD, "sig": "x"}, True),
    ("args not an object", _with(args=[1, 2]), True),
    ("unauthorised submitter", _with(submitter="mallory"), False),
    ("not an object", [1, 2, 3], True),
    ("null", None, True),
    ("not JSON", "{not json", True),
]


@pytest.mark.parametrize("what,event,schema_rejects", MALFORMED, ids=[m[0] for m in MALFORMED])
def test_malformed_event_is_a_rejection_not_an_exception(
        exporter: Callable[..., Bundle], what: str, event: Any, schema_rejects: bool) -> None:
    import jsonschema

    b = exporter()
    rule = b.rule_instance()
    before = rule.management("balances", {})
    if not isinstance(event, str):
        valid = jsonschema.Draft202012Validator(b.rule["policy_input_schema"]).is_valid(event)
        assert valid is not schema_rejects, what
    out = rule.eval({}, event, {})
    assert isinstance(out, dict) and out["applied"] is False and out["status"] == "rejected"
    assert out["code"] and out["message"], out
    assert rule.management("balances", {}) == before
    # and a well-formed event still applies afterwards
    assert rule.eval({}, _GOOD, {})["applied"] is True


# ---- management ---------------------------------------------------------------


def test_management_commands(exporter: Callable[..., Bundle]) -> None:
    b = exporter()
    rule = b.rule_instance()
    events = gig_events(40)
    for e in events:
        rule.eval({}, e, {})
    for command in b.rule["functionality_data"]["management_commands"]:
        name = command["name"]
        data = {"timeout_ms": 500} if name == "verify" else {}
        out = rule.management(name, data)
        assert out["status"] == "ok", (name, out)
        json.dumps(out)  # every answer is plain JSON
    assert rule.management("records", {"record": "Task"})["records"]["Task"]
    hist = rule.management("history", {"party": "agent1", "limit": 3})["entries"]
    assert 0 < len(hist) <= 3
    mine = rule.management("balances", {"party": "agent1"})["balances"]
    assert mine and all(a.split(":")[1] == "agent1" for a in mine)
    verify = rule.management("verify", {"timeout_ms": 500})
    assert verify["results"] and set(verify["summary"]) <= {
        "proved", "refuted", "unknown", "guard_missing", "vacuous", "warning"}


@pytest.mark.parametrize("action,data", [
    ("drop_tables", {}),
    ("balances", {"party": 5}),
    ("balances", {"who": "x"}),
    ("history", {"limit": 0}),
    ("records", {"record": "Nope"}),
    ("audit", "not an object"),
])
def test_management_errors_are_dicts(exporter: Callable[..., Bundle], action: str,
                                     data: Any) -> None:
    out = exporter().rule_instance().management(action, data)
    assert out["status"] == "error" and out["message"], out


# ---- against the `charter run` command, both on SQLite files ------------------


@pytest.mark.parametrize("name,policy,events", example_cases()[:3],
                         ids=[c[0] for c in example_cases()[:3]])
def test_eval_on_sqlite_matches_charter_run_ledger(exporter: Callable[..., Bundle], tmp_path: Path,
                                                   name: str, policy: Path,
                                                   events: list[dict]) -> None:
    from click.testing import CliRunner

    from charter import open_runtime
    from charter.cli import cli

    events_file = tmp_path / "events.jsonl"
    events_file.write_text("".join(json.dumps(e) + "\n" for e in events))
    run_db = tmp_path / "run.sqlite"
    res = CliRunner().invoke(cli, ["run", str(policy), str(events_file), "--db", str(run_db),
                                   "--quiet"])
    assert res.exit_code == 0, res.output
    ran = open_runtime(None, run_db)
    expected = (ran.balances(), ran.journal_hash, [h["hash"] for h in ran.history()])
    ran.close()

    b = exporter(policy)
    rule = b.rule_instance(settings={"store": "sqlite", "db_path": str(tmp_path / "rule.sqlite")})
    for e in events:
        rule.eval({}, e, {})
    got = rule.management("balances", {})
    hist = rule.management("history", {})["entries"]
    assert (got["balances"], got["journal_hash"], [h["hash"] for h in hist]) == expected
    # the rule's ledger is a normal Charter ledger: it audits from the file alone
    from charter.runtime.api import audit_ledger

    assert audit_ledger(tmp_path / "rule.sqlite").ok


# ---- concurrency -----------------------------------------------------------------


@pytest.mark.parametrize("shared_instance", [True, False], ids=["one-instance", "two-instances"])
def test_two_threads_on_one_sqlite_store(exporter: Callable[..., Bundle], tmp_path: Path,
                                         shared_instance: bool) -> None:
    import threading

    from charter import open_runtime
    from charter.compiler import aigrid_rule

    b = exporter()
    settings = {"store": "sqlite", "db_path": str(tmp_path / "shared.sqlite")}
    first = b.rule_instance(settings=settings)
    rules = [first, first if shared_instance else b.rule_instance(settings=settings)]
    per_thread, errors = 150, []

    def work(k: int) -> None:
        rule = rules[k]
        try:
            for i in range(per_thread):
                # each deposit is submitted twice (a retry): it must apply exactly once
                e = {"id": f"th{k}-{i}", "type": "deposit", "submitter": "gateway",
                     "time": 1000, "args": {"account": f"p{k}", "amount": i + 1}}
                out1, out2 = rule.eval({}, e, {}), rule.eval({}, e, {})
                if not out1["applied"] or out2["status"] != "duplicate":
                    errors.append((e["id"], out1, out2))
        except Exception as exc:  # pragma: no cover - eval must never raise
            errors.append(repr(exc))

    threads = [threading.Thread(target=work, args=(k,)) for k in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors[:3]
    # every event applied exactly once: nothing lost, nothing doubled
    bal = first.management("balances", {})["balances"]
    hist = first.management("history", {})["entries"]
    applied = {h["event"]["id"]: h for h in hist}
    assert len(applied) == len(hist)
    assert len(applied) == 2 * per_thread
    for k in range(2):
        assert bal[f"party:p{k}:Credit"] == sum(i + 1 for i in range(per_thread))
    assert first.management("audit", {})["audit"]["ok"]
    # what is on disk is what the rule answered
    aigrid_rule.close_all()
    reopened = open_runtime(None, tmp_path / "shared.sqlite")
    assert reopened.balances() == bal
    reopened.close()


# ---- the command line --------------------------------------------------------------


def test_cli_export(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from charter.cli import cli

    runner = CliRunner()
    res = runner.invoke(cli, ["export", "aigrid", str(GIG), "-o", str(tmp_path / "out"),
                              "--release-tag", "rc1", "--code-url", "https://x/y.zip"])
    assert res.exit_code == 0, res.output
    assert "gig_market:1.0-rc1" in res.output
    rule = json.loads((tmp_path / "out" / "gig_market-1.0.policy.json").read_text())
    assert rule["code"] == "https://x/y.zip" and rule["release_tag"] == "rc1"
    assert (tmp_path / "out" / "gig_market-1.0.zip").is_file()
    # --param sets the rule's parameters (amounts in major units, as for charter run)
    res = runner.invoke(cli, ["export", "aigrid", str(GIG), "-o", str(tmp_path / "p"),
                              "--param", "fee=5%", "--param", "min_bid=2.50"])
    assert res.exit_code == 0, res.output
    rule = json.loads((tmp_path / "p" / "gig_market-1.0.policy.json").read_text())
    assert rule["policy_parameters"]["fee"] == {"num": 1, "den": 20}
    assert rule["policy_parameters"]["min_bid"] == 250


@pytest.mark.parametrize("args,code,text", [
    (["missing.charter"], 2, "E0001"),
    (["BROKEN"], 1, "error["),
    ([str(GIG), "--release-tag", "a:b"], 2, "release-tag"),
    # an out-of-range --param is a usage error, like an unknown or unreadable one
    ([str(GIG), "--param", "fee=50%"], 2, "fee=50% is above the maximum 10%"),
    ([str(GIG), "--param", "nope=1"], 2, "nope"),
])
def test_cli_export_errors(tmp_path: Path, args: list[str], code: int, text: str) -> None:
    from click.testing import CliRunner

    from charter.cli import cli

    broken = tmp_path / "broken.charter"
    broken.write_text('policy broken version "1"\non x() by p: party { transfer 5 from p to }\n')
    args = [str(broken) if a == "BROKEN" else a for a in args]
    res = CliRunner().invoke(cli, ["export", "aigrid", *args, "-o", str(tmp_path / "o")])
    assert res.exit_code == code, res.output
    assert text in res.output
    assert "Traceback" not in res.output


# ---- every stdlib economy exports ----------------------------------------------------


@pytest.mark.parametrize("policy", sorted((ROOT / "stdlib_policies").glob("*.charter")),
                         ids=lambda p: p.stem)
def test_every_stdlib_economy_exports_and_starts(exporter: Callable[..., Bundle],
                                                 policy: Path) -> None:
    import jsonschema

    b = exporter(policy)
    for key in ("policy_input_schema", "policy_output_schema", "policy_settings_schema",
                "policy_parameters_schema"):
        jsonschema.Draft202012Validator.check_schema(b.rule[key])
    jsonschema.validate(b.rule["policy_parameters"], b.rule["policy_parameters_schema"])
    rule = b.rule_instance(parameters=b.rule["policy_parameters"])
    described = rule.management("describe", {})["policy"]
    variants = {v["title"] for v in b.rule["policy_input_schema"]["oneOf"]}
    assert {e["type"] for e in described["events"]} | {"@tick"} == variants
