"""Hostile HTTP bodies and signed events against a real ``charter serve`` (100,000 by default).

    python tools/fuzz_serve.py [--inputs N] [--seed S]

Starts ``charter serve`` (uvicorn) on the gig-market example with a free port,
sets up parties, a gateway and an Ed25519 key for ``ann``, then sends N
request bodies over one keep-alive connection:

* JSON values of every type at the top level and in every envelope field
  (null, booleans, huge and negative integers, floats, lone surrogates,
  1 MB strings, deeply nested lists and objects, far-future times);
* well-formed events (deposits, withdrawals, joins) - ann's signed, some
  with the signature, key, id, time or arguments mutated afterwards, some
  re-sent, some moved to another id;
* raw bytes: truncated JSON, invalid UTF-8, byte-order marks, NaN,
  10,000-digit numbers, duplicate keys, 2 MB bodies, 100,000 open brackets.

Counts every status and rejection code.  Fails (exit 1) on any 5xx, any
answer that is not a JSON rejection or receipt, an accepted event of ann
that was not correctly signed, a server that dies, or a ledger that does
not audit (chain, balances, every signature) and replay at the end.
"""

from __future__ import annotations

import argparse
import http.client
import json
import random
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
POLICY = str(ROOT / "examples" / "gig_market" / "policy.charter")

HOSTILE: list[Any] = [
    None, True, False, 0, -1, 2**63, -(2**63) - 1, 10**40, 1.5, -0.0, 1e308, "", "x" * 1000,
    "\ud800", "a\udfffb", "\x00", "@", "@@ann", "ann\n", [], {}, [[[[[]]]]], {"a": {"b": {}}},
    "x" * (1 << 20), list(range(50)), {"": None}, 4102444800, "12.50", "-1", "1e3",
]  # fmt: skip
FIELDS = ("id", "type", "submitter", "time", "args", "sig")


def _nested(rng: random.Random) -> Any:
    v: Any = rng.choice([1, "x", None])
    for _ in range(rng.randint(1, 200)):
        v = [v] if rng.random() < 0.5 else {"k": v}
    return v


def _raw(rng: random.Random) -> bytes:
    return rng.choice(
        [
            b"", b"{", b"[1,", b'{"id": NaN}', b'{"id": Infinity}', b"\xff\xfe\x00",
            "\ufeff{}".encode(), b'{"id": 1' + b"9" * 10_000 + b"}", b'{"a":1,"a":2}',
            b"[" * 100_000, b'"' + b"y" * (2 << 20) + b'"', bytes(rng.randrange(256) for _ in range(64)),
            b'{"id":"\\ud800","type":"join","submitter":"ann"}', b"null", b"true", b"12",
        ]
    )  # fmt: skip


class Fuzzer:
    def __init__(self, seed: int, genesis: str, sk: Any):
        from charter.runtime import signing

        self.signing = signing
        self.rng = random.Random(seed)
        self.genesis = genesis
        self.sk = sk
        self.sent_signed: list[dict] = []
        self.n = 0

    def event(self) -> dict:
        rng = self.rng
        self.n += 1
        eid = f"f{self.n}" if rng.random() < 0.9 else f"f{rng.randrange(max(1, self.n))}"
        kind = rng.randrange(4)
        if kind == 0:
            ev = {"id": eid, "type": "deposit", "submitter": "gw",
                  "args": {"to": rng.choice(["ann", "bob", "zed"]), "amount": rng.choice([1, "0.01", "3.00", -5])}}  # fmt: skip
        elif kind == 1:
            ev = {"id": eid, "type": "withdraw", "submitter": rng.choice(["ann", "bob"]),
                  "args": {"amount": rng.choice([1, "0.02", 0])}}  # fmt: skip
        elif kind == 2:
            ev = {"id": eid, "type": "join", "submitter": f"p{rng.randrange(1000)}", "args": {}}
        else:
            ev = {"id": eid, "type": rng.choice(["@keys", "@tick", "bid", "post"]),
                  "submitter": rng.choice(["ann", "operator", "clock"]), "args": {}}  # fmt: skip
        if rng.random() < 0.5:
            ev["time"] = int(time.time()) + rng.choice([0, 0, 1, -2, 10_000])
        return ev

    def body(self) -> tuple[str, bytes, bool]:
        """(kind, body, whether an acceptance would be a signing failure)."""
        rng = self.rng
        r = rng.random()
        if r < 0.15:
            return "raw", _raw(rng), False
        if r < 0.30:
            v = rng.choice(HOSTILE) if rng.random() < 0.8 else _nested(rng)
            return "json", json.dumps(v).encode(), False
        ev = self.event()
        signed = ev["submitter"] == "ann" and rng.random() < 0.8
        if signed:
            ev["time"] = int(time.time())
            ev = self.signing.sign_event(ev, self.sk, self.genesis)
            self.sent_signed.append(ev)
        if r < 0.55:  # mutate a field with a hostile value
            f = rng.choice(FIELDS + ("extra",))
            ev[f] = rng.choice(HOSTILE) if rng.random() < 0.8 else _nested(rng)
            return "mutated", json.dumps(ev).encode(), False
        if signed and r < 0.70:  # tamper after signing: must never apply
            t = rng.randrange(4)
            if t == 0:
                ev["args"] = {"amount": "0.03"}
            elif t == 1:
                ev["sig"] = {**ev["sig"], "value": "%0128x" % rng.getrandbits(512)}
            elif t == 2:
                ev["id"] = ev["id"] + "x"
            else:
                ev["sig"] = {**ev["sig"], "key": "%064x" % rng.getrandbits(256)}
            return "tampered", json.dumps(ev).encode(), True
        if self.sent_signed and r < 0.75:
            return "resent", json.dumps(rng.choice(self.sent_signed)).encode(), False
        return "event", json.dumps(ev).encode(), False


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--inputs", type=int, default=100_000)
    ap.add_argument("--seed", type=int, default=18)
    args = ap.parse_args()
    from charter.runtime import signing
    from charter.runtime.api import audit_ledger, replay

    work = Path(tempfile.mkdtemp(prefix="charter-fuzz-serve-"))
    db = work / "ledger.sqlite"
    token = "fuzz-admin-token-0123456789"
    (work / "token").write_text(token)
    pf = work / "port"
    log = open(work / "serve.log", "wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "charter.cli", "serve", POLICY, "--db", str(db), "--port", "0",
         "--port-file", str(pf), "--admin-token-file", str(work / "token"),
         "--log-level", "warning"],
        stdout=log, stderr=log,
    )  # fmt: skip
    while not pf.exists():
        if proc.poll() is not None:
            raise SystemExit((work / "serve.log").read_text())
        time.sleep(0.05)
    port = json.loads(pf.read_text())["port"]
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)

    def post(path: str, body: bytes, auth: bool = False) -> tuple[int, Any]:
        nonlocal conn
        headers = {"content-type": "application/json"}
        if auth:
            headers["authorization"] = f"Bearer {token}"
        for attempt in range(3):
            try:
                conn.request("POST", path, body, headers)
                resp = conn.getresponse()
                raw = resp.read()
                try:
                    return resp.status, json.loads(raw)
                except ValueError:
                    return resp.status, raw[:200]
            except (OSError, http.client.HTTPException):
                # the server may close a connection after a 413 or a bad request: reconnect
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
                if proc.poll() is not None:
                    raise SystemExit("the server died:\n" + (work / "serve.log").read_text()[-3000:])
        raise SystemExit("no answer three times")

    for ev in (
        {"id": "s1", "type": "appoint", "submitter": "operator", "args": {"gateway": "gw"}},
        {"id": "s2", "type": "join", "submitter": "ann", "args": {}},
        {"id": "s3", "type": "join", "submitter": "bob", "args": {}},
        {"id": "s4", "type": "deposit", "submitter": "gw", "args": {"to": "ann", "amount": "900.00"}},
    ):
        post("/v1/events", json.dumps(ev).encode())
    sk, pk = signing.generate_key()
    st, body = post("/v1/keys", json.dumps({"op": "add", "party": "ann", "key": pk}).encode(), True)
    assert st == 201, body
    conn.request("GET", "/v1/ledger")
    genesis = json.loads(conn.getresponse().read())["genesis"]

    fz = Fuzzer(args.seed, genesis, sk)
    statuses: Counter = Counter()
    codes: Counter = Counter()
    kinds: Counter = Counter()
    failures: list[str] = []
    t0 = time.perf_counter()
    for i in range(args.inputs):
        kind, body, must_not_apply = fz.body()
        kinds[kind] += 1
        st, resp = post("/v1/events", body)
        statuses[st] += 1
        ok_shape = isinstance(resp, dict) and (
            resp.get("applied") is True or (resp.get("applied") is False and resp.get("code"))
        )
        if isinstance(resp, dict) and resp.get("code"):
            codes[resp["code"]] += 1
        if st >= 500 or not ok_shape:
            failures.append(f"{kind}: {body[:120]!r} -> {st} {str(resp)[:200]}")
        elif must_not_apply and resp.get("applied") and not resp.get("duplicate"):
            failures.append(f"tampered signed event applied: {body[:200]!r}")
        if (i + 1) % 10_000 == 0:
            print(f"  {i + 1} inputs, {time.perf_counter() - t0:.0f} s", flush=True)
    wall = time.perf_counter() - t0
    conn.close()
    proc.terminate()
    rc = proc.wait(60)
    log.close()
    audit = audit_ledger(str(db))
    rpl = replay(str(db))
    print(f"\n{args.inputs} inputs in {wall:.0f} s ({args.inputs / wall:.0f}/s), seed {args.seed}")
    print("kinds:   ", dict(sorted(kinds.items())))
    print("statuses:", dict(sorted(statuses.items())))
    print("codes:   ", dict(codes.most_common()))
    print(f"5xx: {sum(v for k, v in statuses.items() if k >= 500)}   failures: {len(failures)}   "
          f"server exit: {rc}")  # fmt: skip
    print(f"audit: ok={audit.ok} entries={audit.entries} signatures re-verified="
          f"{audit.signatures}   replay: ok={rpl.ok}")  # fmt: skip
    for f in failures[:10]:
        print("  FAIL", f)
    for p in list(audit.problems[:5]) + list(rpl.problems[:5]):
        print("  AUDIT", p)
    sys.exit(1 if failures or not audit.ok or not rpl.ok or rc != 0 else 0)


if __name__ == "__main__":
    main()
