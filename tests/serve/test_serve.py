"""``charter serve`` against a REAL uvicorn process on a free port (no TestClient).

Covers the HTTP contract (receipts, idempotency, status codes, paging, audit,
OpenAPI), signed events over HTTP, hostile bodies (a hypothesis fuzzer of every
JSON type plus raw bytes), and durability: ``kill -9`` in the middle of 8
concurrent clients loses no acknowledged event, SIGTERM stops cleanly.
"""

from __future__ import annotations

import http.client
import json
import signal
import threading
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from charter.runtime import signing
from charter.runtime.api import audit_ledger, replay

pytest.importorskip("uvicorn")
pytest.importorskip("starlette")


def _ev(eid, typ, sub, **args):
    return {"id": eid, "type": typ, "submitter": sub, "args": args}


def _setup(s):
    for e in (
        _ev("j-ann", "join", "ann"),
        _ev("j-bob", "join", "bob"),
        _ev("appoint", "appoint", "operator", gateway="gw"),
        _ev("d-ann", "deposit", "gw", to="ann", amount="500.00"),
    ):
        status, body = s.post(e)
        assert status in (200, 201), body


def test_receipts_idempotency_codes_queries(start_server):
    s = start_server()
    t0 = int(time.time())
    status, r = s.post(_ev("j-ann", "join", "ann"))
    assert status == 201 and r["applied"] and r["tx"] == 1 and "duplicate" not in r
    again_status, again = s.post(_ev("j-ann", "join", "ann"))
    assert again_status == 200 and again["duplicate"] and again["journal_hash"] == r["journal_hash"]
    status, c = s.post(_ev("j-ann", "join", "bob"))
    assert status == 409 and c["code"] == "id_conflict"
    _setup(s)
    # the server stamps time: the journal has the server's clock, not a submitted time
    entry = s.get("/v1/history?limit=1")["entries"][0]
    assert t0 - 5 <= entry["event"]["time"] <= int(time.time()) + 5
    far = {**_ev("late", "join", "cat"), "time": t0 + 10_000}
    status, body = s.post(far)
    assert status == 422 and body["code"] == "time_skew" and body["event_id"] == "late"
    status, body = s.post({**_ev("near", "join", "cat"), "time": int(time.time())})
    assert status == 201, body
    cases = [
        (_ev("x1", "join", "ann"), 422, "require"),
        (_ev("x2", "appoint", "ann", gateway="mallory"), 403, "unauthorised"),
        (_ev("x3", "nope", "ann"), 422, "unknown_event"),
        (_ev("x4", "deposit", "gw", to="ann", amount="1.001"), 422, "bad_argument"),
        ({"id": "x5"}, 422, "bad_envelope"),
        ([1, 2], 422, "bad_envelope"),
    ]
    for ev, want_status, code in cases:
        status, body = s.post(ev)
        assert (status, body["code"]) == (want_status, code), (ev, body)
    bal = s.get("/v1/balances?party=ann")["balances"]
    assert bal == {"party:ann:Credit": 50000}
    assert s.get("/v1/balances?account=party:ann:Credit")["balances"] == {"party:ann:Credit": 50000}
    assert set(s.get("/v1/members/Agent")["members"]) == {"ann", "bob", "cat"}
    status, body = s.post(_ev("p1", "post", "ann", id="t1", budget="20.00", duration="1 days"))
    assert status == 201, body
    assert s.get("/v1/records/Task")["records"]["t1"]["budget"] == 2000
    assert s.request("GET", "/v1/records/Nope")[0] == 404
    # history pages: every entry once, in order
    seqs, after = [], 0
    while after is not None:
        page = s.get(f"/v1/history?after={after}&limit=2")
        seqs += [e["seq"] for e in page["entries"]]
        after = page["next_after"]
    assert seqs == list(range(1, s.get("/v1/health")["seq"] + 1))
    far = s.get("/v1/history?after=9223372036854775807")
    assert far["entries"] == [] and far["next_after"] is None
    touched, after = [], 0  # an account's entries, paged: only those whose postings touch it
    while after is not None:
        page = s.get(f"/v1/history?after={after}&limit=2&account=party:ann:Credit")
        touched += [e["seq"] for e in page["entries"]]
        after = page["next_after"]
    assert len(touched) == 2  # the deposit and the escrow of task t1
    for q in ("limit=0", "limit=abc", "after=-1", "limit=100000"):
        status, body = s.request("GET", f"/v1/history?{q}")
        assert status == 400 and body["code"] == "bad_query", q
    audit = s.get("/v1/audit")
    assert audit["ok"] and audit["entries"] == seqs[-1]
    led = s.get("/v1/ledger")
    assert led["clock"] == "system" and len(led["genesis"]) == 64
    # every log line is one JSON object; each request is logged with its status
    s.stop()
    lines = [json.loads(line) for line in s.logs().splitlines() if line.strip()]
    assert any(x.get("status") == 409 and x.get("code") == "id_conflict" for x in lines)
    assert not any(x["level"] == "error" for x in lines)


def test_openapi_document_matches_the_routes(shared_server):
    from charter.serve.app import create_app

    doc = shared_server.get("/openapi.json")
    assert doc["openapi"].startswith("3.1")
    app = create_app(worker=None)  # routes only; nothing is served from it
    served = {(r.path, m.lower()) for r in app.routes for m in r.methods if m != "HEAD"}
    documented = {(p, m) for p, ops in doc["paths"].items() for m in ops}
    assert served == documented
    for p, ops in doc["paths"].items():
        for m, op in ops.items():
            assert op["responses"] and op["summary"], (p, m)


def test_signed_events_over_http(start_server, tmp_path):
    token = tmp_path / "token"
    token.write_text("s3cret-admin-token-0123456789")
    s = start_server(None, "--admin-token-file", str(token))
    _setup(s)
    sk, pk = signing.generate_key()
    change = {"op": "add", "party": "ann", "key": pk}
    assert s.request("POST", "/v1/keys", change)[0] == 401
    bad = {"authorization": "Bearer wrong-token-wrong-token"}
    assert s.request("POST", "/v1/keys", change, headers=bad)[0] == 401
    auth = {"authorization": "Bearer s3cret-admin-token-0123456789"}
    status, body = s.request("POST", "/v1/keys", change, headers=auth)
    assert status == 201, body
    assert s.get("/v1/keys/ann")["keys"]["ann"]["active"] == pk
    genesis = s.get("/v1/ledger")["genesis"]
    w = {**_ev("w1", "withdraw", "ann", amount="1.00"), "time": int(time.time())}
    status, body = s.post(w)
    assert status == 401 and body["code"] == "unsigned"
    status, body = s.post(signing.sign_event(w, sk, "00" * 32))
    assert status == 401 and body["code"] == "bad_signature"
    status, body = s.post(signing.sign_event(w, sk, genesis))
    assert status == 201, body
    status, again = s.post(signing.sign_event(w, sk, genesis))
    assert status == 200 and again["duplicate"]
    audit = s.get("/v1/audit")
    assert audit["ok"] and audit["signatures"] == 1


BAD_BODIES = [
    (b"{not json", 400, "bad_json"),
    (b"\xff\xfe{}", 400, "bad_json"),
    ("\ufeff{}".encode(), 400, "bad_json"),
    (b"[" * 100_000 + b"]" * 100_000, 400, "bad_json"),
    (b'{"id": NaN}', 400, "bad_json"),
    (b'{"id": 1' + b"0" * 10_000 + b"}", 400, "bad_json"),
    (b'{"id": "a", "id": "b"}', 400, "bad_json"),
    (b'{"id": "\\ud800", "type": "join", "submitter": "ann"}', 422, "bad_envelope"),
    (b'{"id": "z", "type": "join", "submitter": "\\udfff"}', 422, "bad_envelope"),
    (b'{"id": "a", "type": "join", "submitter": "ann", "args": ' + b'{"a":' * 60 + b"1"
     + b"}" * 60 + b"}", 422, "unknown_argument"),
    (b'"' + b"x" * (2 << 20) + b'"', 413, "too_large"),
    (b"", 400, "bad_json"),
]  # fmt: skip


def test_bad_requests_get_clear_4xx(shared_server):
    s = shared_server
    for raw, status, code in BAD_BODIES:
        got, body = s.request("POST", "/v1/events", raw=raw)
        assert (got, body["code"]) == (status, code), (raw[:60], body)
    got, body = s.request("POST", "/v1/events", raw=b"{}", headers={"content-type": "text/plain"})
    assert (got, body["code"]) == (415, "bad_content_type")
    assert s.request("GET", "/v1/events")[0] == 405
    assert s.request("DELETE", "/v1/balances")[0] == 405
    assert s.request("GET", "/nope")[0] == 404
    assert s.get("/v1/health")["status"] == "ok"


_scalar = (
    st.none() | st.booleans() | st.integers() | st.integers(min_value=10**18, max_value=10**40)
    | st.floats(allow_nan=False) | st.text(max_size=40)
    | st.text(alphabet=st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF), max_size=3)
)  # fmt: skip
_json = st.recursive(
    _scalar,
    lambda k: st.lists(k, max_size=4) | st.dictionaries(st.text(max_size=10), k, max_size=4),
    max_leaves=15,
)
_envelope = st.fixed_dictionaries(
    {},
    optional={
        "id": _json | st.text(min_size=1, max_size=12),
        "type": _json | st.sampled_from(["join", "deposit", "post", "bid", "@tick", "@keys"]),
        "submitter": _json | st.sampled_from(["ann", "gw", "operator", "clock", "@ann"]),
        "time": _json,
        "args": _json | st.dictionaries(st.sampled_from(["to", "amount", "id", "op"]), _json),
        "sig": _json,
        "extra": _json,
    },
)


def _encode(v) -> bytes:
    return json.dumps(v, ensure_ascii=True).encode()  # \\ud800 escapes survive as JSON text


@settings(
    max_examples=250, deadline=None, derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)  # fmt: skip
@given(
    body=st.one_of(
        _json.map(_encode),
        _envelope.map(_encode),
        st.binary(max_size=200),
        st.integers(1, 200).map(lambda n: b'{"id":' * n),
    )
)
def test_hostile_bodies_never_get_a_500(shared_server, body):
    status, resp = shared_server.request("POST", "/v1/events", raw=body)
    assert status < 500, (body[:200], resp)
    assert isinstance(resp, dict) and ("code" in resp or resp.get("applied")), resp
    if status >= 400:
        assert resp["applied"] is False and resp["message"]


def test_after_the_fuzzer_the_ledger_audits(shared_server):
    audit = shared_server.get("/v1/audit")
    assert audit["ok"], audit["problems"]
    assert shared_server.get("/v1/health")["status"] == "ok"


def test_kill9_loses_no_acknowledged_event_and_sigterm_is_graceful(start_server, tmp_path):
    db = tmp_path / "ledger.sqlite"
    s = start_server()
    acked: dict[str, int] = {}
    lock = threading.Lock()
    stop = threading.Event()

    def client(c: int) -> None:
        for i in range(400):
            if stop.is_set():
                return
            eid = f"c{c}-{i}"
            try:
                status, body = s.post(_ev(eid, "join", f"p{c}x{i}"))
            except (OSError, http.client.HTTPException):
                return  # the server died under us: this one was never acknowledged
            if status == 201:
                with lock:
                    acked[eid] = body["tx"]

    threads = [threading.Thread(target=client, args=(c,)) for c in range(8)]
    for t in threads:
        t.start()
    while len(acked) < 120 and any(t.is_alive() for t in threads):
        time.sleep(0.01)
    s.stop(signal.SIGKILL)
    stop.set()
    for t in threads:
        t.join(60)
    assert len(acked) >= 120
    # restart on the same file: every acknowledged event is there, exactly once
    s2 = start_server(None, name="srv2")
    seen: dict[str, int] = {}
    after = 0
    while after is not None:
        page = s2.get(f"/v1/history?after={after}&limit=1000")
        for e in page["entries"]:
            assert e["event"]["id"] not in seen
            seen[e["event"]["id"]] = e["seq"]
        after = page["next_after"]
    missing = [e for e in acked if e not in seen]
    assert not missing, missing[:5]
    assert all(seen[e] == tx for e, tx in acked.items())
    # resubmitting an acknowledged event is a no-op with its original receipt
    eid = next(iter(acked))
    c, i = eid[1:].split("-")
    status, body = s2.post(_ev(eid, "join", f"p{c}x{i}"))
    assert status == 200 and body["duplicate"] and body["tx"] == acked[eid]
    assert s2.stop(signal.SIGTERM) == 0
    assert '"msg": "stopped"' in s2.logs()
    assert audit_ledger(str(db)).ok and replay(str(db)).ok
