"""``charter mcp``: agents in a Charter economy through the Model Context Protocol.

* the worked example (examples/gig_market/mcp_agents.py): two agents, with the
  operator and the gateway, settle a gig through a real ``charter mcp --http``
  process and the SDK's own client; the ledger audits, its agents' events are
  signed with their registered keys, and the same events through ``charter run``
  give a byte-identical journal;
* stdio: the SDK's client launches ``charter mcp --party`` and acts as that party,
  stamped with the server's time;
* every tool schema validates every example event of every stdlib economy (one
  generator, ``compiler/schemas.py``, shared with the AIGrid export);
* hostile tool calls (any JSON in the name and in every argument, floods,
  oversized payloads) get structured errors and change nothing.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import anyio
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

pytest.importorskip("mcp")
jsonschema = pytest.importorskip("jsonschema")

from charter.compiler.pipeline import Compilation  # noqa: E402
from charter.compiler.schemas import args_schema  # noqa: E402
from charter.mcp.economy import Economy, RateLimiter, Session, ToolError  # noqa: E402
from charter.runtime import signing  # noqa: E402
from charter.runtime.api import audit_ledger, open_runtime  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
GIG = ROOT / "examples" / "gig_market" / "policy.charter"
sys.path.insert(0, str(ROOT / "examples" / "gig_market"))

import mcp_agents  # noqa: E402


class McpServer:
    """``charter mcp POLICY --db DB --http 127.0.0.1:0 --agents FILE`` as a child process."""

    def __init__(self, tmp: Path, db: str, agents: Path):
        self.port_file = tmp / "mcp.port"
        self.log_path = tmp / "mcp.log"
        self.log = open(self.log_path, "ab")
        cmd = [sys.executable, "-m", "charter.cli", "mcp", str(GIG), "--db", db,
               "--http", "127.0.0.1:0", "--agents", str(agents), "--port-file",
               str(self.port_file), "--rate", "50", "--burst", "50"]  # fmt: skip
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=self.log, cwd=tmp)
        deadline = time.monotonic() + 90
        while not self.port_file.exists():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.proc.kill()
                raise RuntimeError(f"charter mcp did not start:\n{self.logs()}")
            time.sleep(0.05)
        port = json.loads(self.port_file.read_text())["port"]
        self.url = f"http://127.0.0.1:{port}/mcp"

    def logs(self) -> str:
        self.log.flush()
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


def _journal(db):
    # every row as text with its chain hash (the file keeps entries packed, hashes at anchors)
    rt = open_runtime(None, db, readonly=True)
    try:
        return [tuple(r) for r in rt.journal_rows()]
    finally:
        rt.close()


@pytest.fixture(scope="module")
def gig_session(tmp_path_factory):
    """The worked example played over HTTP: (transcript, ledger path, tmp dir, server logs)."""
    tmp = tmp_path_factory.mktemp("mcp")
    db = str(tmp / "gig.sqlite")
    rt = open_runtime(str(GIG), db)
    keys = {}
    for party in ("ann", "bob"):  # the operator registers the agents' keys
        sk, pk = signing.generate_key()
        (tmp / f"{party}.key").write_bytes(signing.private_key_pem(sk))
        keys[party] = pk
        assert rt.register_key("add", party, pk).applied
    rt.close()
    tokens = {p: f"token-of-{p}-{os.urandom(8).hex()}" for p in ("ann", "bob", "operator", "gw")}
    agents = {t: ({"party": p, "key": f"{p}.key"} if p in keys else {"party": p})
              for p, t in tokens.items()}  # fmt: skip
    (tmp / "agents.json").write_text(json.dumps(agents))
    srv = McpServer(tmp, db, tmp / "agents.json")
    try:
        log = anyio.run(lambda: mcp_agents.play(url=srv.url, tokens=tokens))
        extra = anyio.run(lambda: _intruders(srv.url, tokens))
    finally:
        srv.stop()
    return log, db, tmp, keys, extra


async def _intruders(url, tokens):
    """bob may not complete ann's task; a request without a known token is refused."""
    import httpx2
    from mcp import Client

    async with Client(mcp_agents.http_agent(url, tokens["bob"])) as bob:
        res = await bob.call_tool("complete", {"id": "logo", "quality": 1})
        sneaky = await bob.call_tool("bid", {"id": "logo", "price": 1, "submitter": "ann"})
    async with httpx2.AsyncClient() as h:
        anon = await h.post(url, json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
                            headers={"Authorization": "Bearer wrong-token-xxxxxxxx"})  # fmt: skip
    return res.structured_content, sneaky.structured_content, anon.status_code


def _calls(log, party, call):
    return [s["result"] for s in log if s.get("party") == party and s.get("call") == call]


def test_two_agents_settle_a_gig_through_mcp(gig_session):
    log, db, _tmp, _keys, _extra = gig_session
    tools = next(s["tools"] for s in log if "tools" in s)
    assert {"post", "bid", "complete", "join", "deposit"} <= set(tools)
    assert "epoch_end" not in tools  # the clock's handler is no agent's tool
    rules = next(s["result"] for s in log if s.get("read") == "charter://rules")
    assert "## What you can do (tools)" in rules and "bid out of range" in rules
    assert all(r["applied"] for r in _calls(log, "ann", "post") + _calls(log, "ann", "complete"))
    refused, first, retry = _calls(log, "bob", "bid")
    assert (refused["applied"], refused["code"], refused["message"]) == (
        False, "require", "bid out of range")  # fmt: skip
    assert first["applied"] and retry["applied"] and retry["duplicate"]
    assert retry["seq"] == first["seq"]  # the retry with the same key is the same event
    ann = next(s["result"] for s in log
               if s.get("party") == "ann" and s.get("read") == "charter://me/balances")
    bob = [s["result"] for s in log if s.get("party") == "bob" and s.get("read")]
    assert ann["balances"] == {"Credit": "420.00 Credit"}
    assert bob[0]["balances"] == {"Credit": "96.00 Credit", "Reputation": "50 Reputation"}
    assert [e["event"]["type"] for e in bob[1]["entries"]] == ["join", "deposit", "bid", "complete"]


def test_sessions_act_only_as_their_party(gig_session):
    _log, _db, _tmp, _keys, (complete, sneaky, anon_status) = gig_session
    assert complete["code"] == "unauthorised" and "only ann" in complete["message"]
    assert sneaky["code"] == "unknown_argument" and "submitter" in sneaky["message"]
    assert anon_status == 401


def test_the_ledger_audits_is_signed_and_equals_charter_run(gig_session, tmp_path):
    _log, db, _tmp, keys, _extra = gig_session
    report = audit_ledger(db)
    assert report.ok, report.problems
    rows = _journal(db)
    events = [json.loads(r[2])["event"] for r in rows]
    signed = [e for e in events if e.get("sig")]
    assert {e["submitter"] for e in signed} == {"ann", "bob"}
    assert all(e["sig"]["key"] == keys[e["submitter"]] for e in signed)
    now = time.time()
    assert all(abs(e["time"] - now) < 3600 for e in events if e["type"] != "@keys")
    # the same events through `charter run` (the key registrations as `charter keys add`
    # makes them): a byte-identical journal
    other = str(tmp_path / "again.sqlite")
    rt = open_runtime(str(GIG), other)
    lines = []
    for e in events:
        if e["type"] == "@keys":
            a = e["args"]
            assert rt.register_key(a["op"], a["party"], a.get("key"), event_id=e["id"],
                                   time=e["time"]).applied  # fmt: skip
            continue
        if e.get("sig"):  # the event exactly as the server signed it
            ev = json.loads(e["sig"]["signed"])
            ev["sig"] = {"key": e["sig"]["key"], "value": e["sig"]["value"]}
        else:
            ev = {k: e[k] for k in ("id", "type", "submitter", "time", "args")}
        lines.append(json.dumps(ev, ensure_ascii=False))
    rt.close()
    (tmp_path / "events.jsonl").write_text("\n".join(lines) + "\n")
    out = subprocess.run([sys.executable, "-m", "charter.cli", "run", str(GIG),
                          str(tmp_path / "events.jsonl"), "--db", other, "--strict", "-q"],
                         capture_output=True, text=True, timeout=120)  # fmt: skip
    assert out.returncode == 0, out.stdout + out.stderr
    assert _journal(other) == rows


def test_stdio_session_is_one_party_on_server_time(tmp_path):
    db = str(tmp_path / "stdio.sqlite")

    async def go():
        from mcp import Client

        async with Client(mcp_agents.server(db, "cat")) as cat:
            listed = await cat.list_tools()
            joined = await cat.call_tool("join", {})
            again = await cat.call_tool("join", {})
            who = await cat.read_resource("charter://ledger")
        return listed, joined, again, json.loads(who.contents[0].text)

    listed, joined, again, who = anyio.run(go)
    bid = next(t for t in listed.tools if t.name == "bid")
    assert bid.input_schema["required"] == ["id", "price"]
    assert not joined.is_error and joined.structured_content["seq"] == 1
    assert again.is_error and again.structured_content["message"] == "already an agent"
    assert who["you"] == "cat" and who["your_roles"] == ["Agent"]
    (entry,) = [json.loads(r[2]) for r in _journal(db)]
    assert entry["event"]["submitter"] == "cat"
    assert abs(entry["event"]["time"] - time.time()) < 600


# ------------------------------------------------------------------ schemas


def _example_targets():
    for ex in sorted((ROOT / "examples").iterdir()):
        if (ex / "policy.charter").is_file() and (ex / "events.jsonl").is_file():
            yield ex


_ARG_CODES = {"bad_argument", "missing_argument", "unknown_argument", "out_of_range",
              "out_of_bounds"}


@pytest.mark.parametrize("example", list(_example_targets()), ids=lambda p: p.name)
def test_tool_schemas_validate_every_example_event(example):
    """Every example event the runtime applies is valid against its tool's schema, and every
    event the schema refuses the runtime refuses too, for its arguments (the schema is
    never stricter than the runtime; it cannot see the live state, e.g. role membership)."""
    pol = Compilation.from_path(example / "policy.charter").ir
    economy = Economy(pol, worker=None)
    tools = {t["name"]: t["input_schema"] for t in economy.tools()}
    rt = open_runtime(pol)
    applied = refused = 0
    for line in (example / "events.jsonl").read_text().splitlines():
        if not line.strip():
            continue
        ev = json.loads(line)
        out = rt.submit(ev)
        h = next((h for h in pol.handlers if h.name == ev.get("type")), None)
        if h is None:
            continue  # @tick: the clock's, not a handler
        # an agent's tool, or (clock-only handlers) the same generator's argument schema
        schema = tools.get(h.name) or args_schema(pol, h)
        ok = jsonschema.Draft202012Validator(schema).is_valid(ev.get("args", {}))
        if out.applied:
            assert ok, f"{ev} applied but its tool schema refuses it"
            applied += 1
        if not ok:
            assert not out.applied and out.code in _ARG_CODES, (ev, out)
            refused += 1
    assert applied > 0
    # and the schemas refuse what the runtime refuses: a float amount, a malformed decimal
    post = next((n for n, s in tools.items() if any(
        "x-charter-asset" in p for p in s["properties"].values())), None)  # fmt: skip
    if post is not None:
        name = next(k for k, p in tools[post]["properties"].items() if "x-charter-asset" in p)
        v = jsonschema.Draft202012Validator(tools[post])
        assert not v.is_valid({name: 1.5}) and not v.is_valid({name: "1.2.3"})


# ------------------------------------------------------------------ hostile calls


class _Worker:
    """The runtime worker's interface, in this thread (the economy's calls, without MCP)."""

    def __init__(self, rt):
        self.rt = rt

    async def submit(self, event):
        return self.rt.submit(event)

    async def run(self, fn):
        return fn(self.rt)


@pytest.fixture(scope="module")
def live():
    pol = Compilation.from_path(GIG).ir
    rt = open_runtime(pol)
    for line in GIG.with_name("events.jsonl").read_text().splitlines()[:12]:
        rt.submit(json.loads(line))
    return Economy(pol, _Worker(rt)), rt


_json = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(2**80), max_value=2**80)
    | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=12)
    | st.sampled_from(["ann", "bob", "t1", "12.50", "5%", "\ud800", "9" * 5000, "x" * 70_000]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner,
                                                                  max_size=3),
    max_leaves=10,
)  # fmt: skip


@settings(max_examples=150, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])  # fmt: skip
@given(
    name=st.sampled_from(["post", "bid", "complete", "deposit", "join", "withdraw", "appoint"])
    | _json,
    arguments=st.dictionaries(
        st.sampled_from(["id", "budget", "duration", "price", "quality", "to", "amount",
                         "gateway", "idempotency_key", "submitter", ""]), _json, max_size=4)
    | _json,
    party=st.sampled_from(["ann", "bob", "gw", "stranger"]),
)  # fmt: skip
def test_hostile_calls_get_structured_answers(live, name, arguments, party):
    economy, rt = live
    before = (rt.state_rows(), rt.seq, rt.head)
    out = anyio.run(economy.call, Session.make(party, rate=0), name, arguments)
    assert isinstance(out, dict) and isinstance(out["applied"], bool)
    if not out["applied"]:
        assert isinstance(out["code"], str) and isinstance(out["message"], str)
        assert (rt.state_rows(), rt.seq, rt.head) == before
    else:
        assert out["event_id"].startswith("mcp:") and rt.seq == out["seq"]


def test_floods_and_oversized_calls_are_bounded(live):
    economy, _rt = live
    clock = [0.0]
    s = Session("ann", None, RateLimiter(rate=1.0, burst=3, clock=lambda: clock[0]))
    got = [anyio.run(economy.call, s, "withdraw", {"amount": "0.01"})["applied"] for _ in range(3)]
    flooded = anyio.run(economy.call, s, "withdraw", {"amount": "0.01"})
    assert flooded["code"] == "rate_limited" and flooded["retry_after"] > 0
    clock[0] += 1.0  # one token back
    assert anyio.run(economy.call, s, "withdraw", {"amount": "0.01"}).get("code") != "rate_limited"
    # a retry with the same idempotency key, seconds later, is the same event; other
    # arguments under that key are a conflict, not a second event
    now = [10**9 + 5]
    economy.now, saved = (lambda: now[0]), economy.now
    try:
        first = anyio.run(economy.call, Session.make("ann", rate=0), "withdraw",
                          {"amount": "0.01", "idempotency_key": "w-1"})  # fmt: skip
        now[0] += 7
        again = anyio.run(economy.call, Session.make("ann", rate=0), "withdraw",
                          {"amount": "0.01", "idempotency_key": "w-1"})  # fmt: skip
        other = anyio.run(economy.call, Session.make("ann", rate=0), "withdraw",
                          {"amount": "0.02", "idempotency_key": "w-1"})  # fmt: skip
    finally:
        economy.now = saved
    assert first["applied"] and again["duplicate"] and again["seq"] == first["seq"]
    assert other["code"] == "id_conflict"
    big = anyio.run(economy.call, Session.make("ann", rate=0), "post", {"id": "x" * 100_000})
    assert big["code"] == "too_large"
    deep = {"id": 1}
    for _ in range(100):
        deep = {"a": deep}
    assert anyio.run(economy.call, Session.make("ann", rate=0), "post", deep)["code"] == "bad_arguments"
    with pytest.raises(ValueError):
        Session.make("clock")
    with pytest.raises(Exception):
        Session.make({"not": "a party"})
    assert got == [True, True, True] or all(isinstance(g, bool) for g in got)


def test_tool_errors_through_the_sdk_in_process(live):
    """The SDK's own client, in process: errors are results with is_error, not exceptions."""
    from mcp import Client

    from charter.mcp.server import build_server

    economy, _rt = live
    server = build_server(economy, lambda ctx: Session.make("bob", rate=0))

    async def go():
        async with Client(server) as c:
            unknown = await c.call_tool("no_such_tool", {"a": [1, {"b": None}]})
            wrong = await c.call_tool("bid", {"id": ["t1"], "price": {"num": 1}})
            try:
                await c.read_resource("charter://nothing")
                missing = None
            except Exception as exc:  # noqa: BLE001 - the SDK raises the JSON-RPC error
                missing = str(exc)
        return unknown, wrong, missing

    unknown, wrong, missing = anyio.run(go)
    assert unknown.is_error and unknown.structured_content["code"] == "unknown_tool"
    assert wrong.is_error and wrong.structured_content["code"] == "bad_argument"
    assert missing and "unknown_resource" in missing
    with pytest.raises(ToolError):
        anyio.run(economy.read, Session.make("bob"), 42)


@pytest.mark.parametrize("args, says", [
    (["--db", "{db}"], "needs --party"),
    (["--db", "{db}", "--http", "127.0.0.1:9"], "needs --agents"),
    (["--db", "{db}", "--http", "127.0.0.1:x", "--agents", "{tmp}/a.json"], "expected HOST:PORT"),
    (["--db", "{db}", "--party", "ann", "--key", "{tmp}/no.key"], "No such file"),
    (["--db", "{db}", "--party", "clock"], "cannot act as the clock"),
])  # fmt: skip
def test_cli_refuses_bad_setups_in_words(tmp_path, args, says):
    from click.testing import CliRunner

    from charter.cli import cli

    args = [a.format(db=tmp_path / "l.sqlite", tmp=tmp_path) for a in args]
    out = CliRunner().invoke(cli, ["mcp", str(GIG), *args])
    assert out.exit_code == 2 and says in out.output and "Traceback" not in out.output
