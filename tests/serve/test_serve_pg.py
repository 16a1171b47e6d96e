"""``charter serve`` and signed events on a REAL PostgreSQL (the ``pg_server`` fixture).

Two servers share one PostgreSQL ledger; one is killed with ``kill -9`` while
8 clients submit: every acknowledged event is in the journal exactly once and
the audit re-verifies every signature.  And a stream with signed events and key
rotations gives the same journal hash on SQLite and PostgreSQL.
"""

from __future__ import annotations

import http.client
import signal
import threading
import time

import pytest

from charter.runtime import signing
from charter.runtime.api import audit_ledger, open_runtime, replay

pytest.importorskip("uvicorn")
pytest.importorskip("psycopg")

from pathlib import Path  # noqa: E402

GIG = str(Path(__file__).resolve().parents[2] / "examples" / "gig_market" / "policy.charter")


def _ev(eid, typ, sub, t=None, **args):
    ev = {"id": eid, "type": typ, "submitter": sub, "args": args}
    if t is not None:
        ev["time"] = t
    return ev


def _signed_stream(rt, keys):
    """A fixed stream: setup, keys (operator add, self rotation), signed withdrawals."""
    (ann1, ann2, bob) = keys
    outs = []
    for i, e in enumerate(
        [
            _ev("j1", "join", "ann", 100),
            _ev("j2", "join", "bob", 101),
            _ev("ap", "appoint", "operator", 102, gateway="gw"),
            _ev("d1", "deposit", "gw", 103, to="ann", amount="50.00"),
            _ev("d2", "deposit", "gw", 104, to="bob", amount="7.00"),
        ]
    ):
        outs.append(rt.submit(e))
    outs.append(rt.register_key("add", "ann", signing.public_hex(ann1), event_id="k1"))
    outs.append(rt.register_key("add", "bob", signing.public_hex(bob), event_id="k2"))
    g = rt.genesis
    for i in range(5):
        outs.append(rt.submit(signing.sign_event(
            _ev(f"w{i}", "withdraw", "ann", 200 + i, amount="1.00"), ann1, g)))  # fmt: skip
    rot = _ev("r1", "@keys", "ann", 300, op="rotate", party="ann", key=signing.public_hex(ann2))
    outs.append(rt.submit(signing.sign_event(rot, ann1, g)))
    outs.append(rt.submit(signing.sign_event(_ev("w9", "withdraw", "ann", 301, amount="2"), ann2, g)))
    outs.append(rt.submit(signing.sign_event(_ev("b1", "withdraw", "bob", 302, amount="3"), bob, g)))
    outs.append(rt.submit(_ev("b2", "withdraw", "bob", 303, amount="3")))  # unsigned: refused
    return outs


def test_signed_stream_has_the_same_journal_hash_on_sqlite_and_postgresql(pg_server, tmp_path):
    keys = [signing.private_key_from_hex(f"{i:02x}" * 32) for i in (1, 2, 3)]
    heads = []
    for store in (str(tmp_path / "l.sqlite"), pg_server.new_url()):
        rt = open_runtime(GIG, store)
        outs = _signed_stream(rt, keys)
        assert [o.applied for o in outs] == [True] * (len(outs) - 1) + [False]
        assert outs[-1].code == "unsigned"
        heads.append(rt.head)
        rt.close()
        rep = audit_ledger(store)
        assert rep.ok and rep.signatures == 8, rep
        assert replay(store).ok
    assert heads[0] == heads[1]


def test_two_servers_one_postgresql_ledger_kill9(pg_server, start_server):
    url = pg_server.new_url()
    a = start_server(url, name="a")
    b = start_server(url, name="b")
    status, _ = a.post(_ev("ap", "appoint", "operator", gateway="gw"))
    assert status == 201
    acked: dict[str, int] = {}
    lock = threading.Lock()

    def client(c: int) -> None:
        srv = a if c % 2 else b
        for i in range(60):
            eid = f"c{c}-{i}"
            for _ in range(200):
                try:
                    status, body = srv.post(_ev(eid, "join", f"p{c}x{i}"))
                    break
                except (OSError, http.client.HTTPException):
                    srv = b  # a was killed: the same event, re-sent to the other server
                    time.sleep(0.02)
            else:
                return
            if status in (200, 201):
                with lock:
                    acked[eid] = body["tx"]

    threads = [threading.Thread(target=client, args=(c,)) for c in range(8)]
    for t in threads:
        t.start()
    while len(acked) < 150 and any(t.is_alive() for t in threads):
        time.sleep(0.01)
    a.stop(signal.SIGKILL)
    for t in threads:
        t.join(120)
    assert len(acked) == 8 * 60
    seen: dict[str, int] = {}
    after = 0
    while after is not None:
        page = b.get(f"/v1/history?after={after}&limit=1000")
        for e in page["entries"]:
            assert e["event"]["id"] not in seen
            seen[e["event"]["id"]] = e["seq"]
        after = page["next_after"]
    assert all(seen.get(e) == tx for e, tx in acked.items())
    assert b.get("/v1/audit")["ok"]
    assert b.stop() == 0
    assert audit_ledger(url).ok
