"""HTTP load test of ``charter serve``: N concurrent clients, events/s, latency, nothing lost or doubled.

Localhost only, bounded in count (``--events``) and time (``--time-limit``).
Each run starts real ``charter serve`` processes (uvicorn) on free ports,
sets up the gig-market example over HTTP (a gateway, one party per client,
a deposit each, an Ed25519 key each through ``POST /v1/keys``), then every
client submits *signed* withdrawals of 0.01 Credit with its own ids,
retrying an unanswered request with the same id (an idempotent resubmission)
as a real client with idempotency keys would.

Afterwards the journal is read back over HTTP and checked: every
acknowledged event is in it exactly once, nothing is in it that was not
sent, each client's balance equals its deposit minus one unit per
journalled withdrawal (nothing doubled), and ``audit`` passes re-verifying
every signature.  ``--kill-after N`` sends ``kill -9`` to the first server
after N acknowledgements and restarts it on the same ledger mid-run.

Configurations are run side by side in one invocation (the first is the
reference)::

    python benchmarks/load_serve.py                       # SQLite, 1 server, 16 clients
    python benchmarks/load_serve.py --pg                  # + PostgreSQL 1 and 4 servers
    python benchmarks/load_serve.py --pg --only pg1 --kill-after 1000
    python benchmarks/load_serve.py --pg-url postgresql://... --only pg4

``--pg`` starts a throwaway PostgreSQL (initdb/pg_ctl, as the tests do);
``--pg-url`` uses yours (one fresh schema per run).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import secrets
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any, Optional

ROOT = Path(__file__).resolve().parents[1]
POLICY = str(ROOT / "examples" / "gig_market" / "policy.charter")
DEPOSIT = 100_000  # minor units per client (1000.00 Credit)


class Server:
    def __init__(self, db: str, workdir: Path, name: str, token_file: Path):
        self.db, self.workdir, self.name, self.token_file = db, workdir, name, token_file
        self.proc: Optional[subprocess.Popen] = None
        self.port = 0
        self.restarts = 0

    def start(self) -> None:
        pf = self.workdir / f"{self.name}.port"
        if pf.exists():
            pf.unlink()
        log = open(self.workdir / f"{self.name}.log", "ab")
        cmd = [sys.executable, "-m", "charter.cli", "serve", POLICY, "--db", self.db,
               "--port", "0", "--port-file", str(pf), "--admin-token-file",
               str(self.token_file), "--log-level", "warning", "--wait", "30"]  # fmt: skip
        self.proc = subprocess.Popen(cmd, stdout=log, stderr=log)
        log.close()
        deadline = time.monotonic() + 120
        while not pf.exists():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(
                    f"{self.name} did not start:\n"
                    + (self.workdir / f"{self.name}.log").read_text()[-3000:]
                )
            time.sleep(0.05)
        self.port = json.loads(pf.read_text())["port"]

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self) -> int:
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else 0
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()


class Client:
    """One keep-alive connection to a server; reconnects (to its server's current port)."""

    def __init__(self, server: Server, token: str = ""):
        self.server = server
        self.token = token
        self.conn: Optional[http.client.HTTPConnection] = None

    def request(self, method: str, path: str, body: Any = None, admin: bool = False) -> tuple:
        if self.conn is None:
            self.conn = http.client.HTTPConnection("127.0.0.1", self.server.port, timeout=60)
        headers = {"content-type": "application/json"}
        if admin:
            headers["authorization"] = f"Bearer {self.token}"
        try:
            self.conn.request(method, path, None if body is None else json.dumps(body), headers)
            resp = self.conn.getresponse()
            return resp.status, json.loads(resp.read())
        except (OSError, http.client.HTTPException, ValueError):
            self.conn.close()
            self.conn = None
            raise


def percentile(xs: list[float], p: float) -> float:
    if not xs:
        return float("nan")
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


def run(label: str, db: str, nservers: int, nclients: int, nevents: int, time_limit: float,
        kill_after: int, workdir: Path, audit_db: Optional[str]) -> dict:  # fmt: skip
    from charter.runtime import signing

    token = secrets.token_hex(16)
    tf = workdir / f"{label}.token"
    tf.write_text(token)
    servers = [Server(db, workdir, f"{label}-{i}", tf) for i in range(nservers)]
    for s in servers:
        s.start()
    admin = Client(servers[0], token)
    genesis = admin.request("GET", "/v1/ledger")[1]["genesis"]

    def must(status_body: tuple, ok: tuple = (200, 201)) -> dict:
        status, body = status_body
        if status not in ok:
            raise SystemExit(f"setup failed: {status} {body}")
        return body

    must(admin.request("POST", "/v1/events", {"id": "appoint", "type": "appoint",
                                              "submitter": "operator", "args": {"gateway": "gw"}}))
    keys = []
    for c in range(nclients):
        party = f"c{c}"
        must(admin.request("POST", "/v1/events",
                           {"id": f"join-{c}", "type": "join", "submitter": party, "args": {}}))
        must(admin.request("POST", "/v1/events",
                           {"id": f"dep-{c}", "type": "deposit", "submitter": "gw",
                            "args": {"to": party, "amount": DEPOSIT}}))  # fmt: skip
        sk, pk = signing.generate_key()
        must(admin.request("POST", "/v1/keys", {"op": "add", "party": party, "key": pk},
                           admin=True), (201, 422))  # fmt: skip
        keys.append(sk)

    per_client = nevents // nclients
    acked: dict[str, int] = {}
    sent: set[str] = set()
    latencies: list[float] = []
    retries = [0]
    errors: list[str] = []
    lock = threading.Lock()
    start = time.perf_counter()
    deadline = start + time_limit
    killed = threading.Event()

    def worker(c: int) -> None:
        cl = Client(servers[c % nservers])
        party = f"c{c}"
        for i in range(per_client):
            if time.perf_counter() > deadline:
                return
            ev = signing.sign_event(
                {"id": f"w-{c}-{i}", "type": "withdraw", "submitter": party,
                 "time": int(time.time()), "args": {"amount": 1}},
                keys[c], genesis,
            )  # fmt: skip
            with lock:
                sent.add(ev["id"])
            while True:
                t0 = time.perf_counter()
                try:
                    status, body = cl.request("POST", "/v1/events", ev)
                except (OSError, http.client.HTTPException, ValueError):
                    with lock:
                        retries[0] += 1
                    if time.perf_counter() > deadline + 60:
                        return
                    time.sleep(0.05)  # the server is down (kill -9): retry, same id
                    continue
                if status == 503:
                    time.sleep(0.05)
                    continue
                break
            dt = time.perf_counter() - t0
            with lock:
                if status in (200, 201):
                    acked[ev["id"]] = body["tx"]
                    latencies.append(dt)
                    if kill_after and len(acked) == kill_after and not killed.is_set():
                        killed.set()
                        threading.Thread(target=restart, daemon=True).start()
                else:
                    errors.append(f"{ev['id']}: {status} {body.get('code')} {body.get('message')}")

    def restart() -> None:
        servers[0].kill9()
        servers[0].restarts += 1
        servers[0].start()

    threads = [threading.Thread(target=worker, args=(c,)) for c in range(nclients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - start

    # ---- read the journal back and check it
    reader = Client(servers[0], token)
    seen: dict[str, int] = {}
    doubled = 0
    after = 0
    while after is not None:
        page = must(reader.request("GET", f"/v1/history?after={after}&limit=1000"))
        for e in page["entries"]:
            eid = e["event"]["id"]
            if eid in seen:
                doubled += 1
            seen[eid] = e["seq"]
        after = page["next_after"]
    lost = [e for e in acked if e not in seen]
    moved = [e for e, tx in acked.items() if e in seen and seen[e] != tx]
    unsent = [e for e in seen if e.startswith("w-") and e not in sent]
    bal = must(reader.request("GET", "/v1/balances"))["balances"]
    per = {f"c{c}": 0 for c in range(nclients)}
    for e in seen:
        if e.startswith("w-"):
            per["c" + e.split("-")[1]] += 1
    wrong_balance = [p for p, n in per.items() if bal.get(f"party:{p}:Credit") != DEPOSIT - n]
    audit = must(reader.request("GET", "/v1/audit"))
    codes = [s.stop() for s in servers]
    out = {
        "config": label,
        "servers": nservers,
        "clients": nclients,
        "acked": len(acked),
        "wall_s": round(wall, 2),
        "events_per_s": round(len(acked) / wall, 1) if wall else 0,
        "p50_ms": round(percentile(latencies, 50) * 1000, 2),
        "p99_ms": round(percentile(latencies, 99) * 1000, 2),
        "lost": len(lost),
        "doubled": doubled,
        "receipt_moved": len(moved),
        "unsent_in_journal": len(unsent),
        "balance_mismatch": len(wrong_balance),
        "rejected": len(errors),
        "retries": retries[0],
        "restarts": servers[0].restarts,
        "journal_entries": audit["entries"],
        "audit_ok": audit["ok"],
        "signatures_verified": audit["signatures"],
        "exit_codes": codes,
    }
    if errors:
        out["first_rejections"] = errors[:3]
    if audit_db is not None:  # the library's audit + replay from outside the server
        from charter.runtime.api import audit_ledger, replay

        rep = audit_ledger(audit_db)
        out["offline_audit_ok"] = rep.ok
        out["offline_replay_ok"] = replay(audit_db).ok
        out["journal_head"] = rep.head
        # and `charter audit` itself: chain, balances, every signature, a full replay
        cli = subprocess.run([sys.executable, "-m", "charter.cli", "audit", audit_db],
                             capture_output=True, text=True)  # fmt: skip
        out["charter_audit_exit"] = cli.returncode
        out["charter_audit_says"] = cli.stdout.strip().splitlines()[-2:]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--events", type=int, default=3200, help="total events (split over clients)")
    ap.add_argument("--time-limit", type=float, default=120.0, help="seconds per configuration")
    ap.add_argument("--kill-after", type=int, default=0,
                    help="kill -9 the first server after N acknowledgements, then restart it")
    ap.add_argument("--pg", action="store_true", help="also PostgreSQL (a throwaway server)")
    ap.add_argument("--pg-url", default=None, help="also PostgreSQL at this URL")
    ap.add_argument("--pg-servers", type=int, default=4)
    ap.add_argument("--only", default=None, help="comma list of: sqlite, pg1, pgN")
    args = ap.parse_args()
    if args.events > 1_000_000 or args.clients > 256:
        raise SystemExit("bounded: at most 1,000,000 events and 256 clients")
    workdir = Path(tempfile.mkdtemp(prefix="charter-load-"))
    pg = None
    base_url = args.pg_url
    if args.pg and base_url is None:
        sys.path.insert(0, str(ROOT / "tests"))
        from pg_server import PgServer, why_unavailable  # the tests' throwaway server

        why = why_unavailable()
        if why:
            raise SystemExit(f"--pg: {why}")
        pg = PgServer()
        pg.start()
        base_url = pg.url
    configs = [("sqlite", f"sqlite:///{workdir / 'load.sqlite'}", 1, str(workdir / "load.sqlite"))]
    if base_url:
        sep = "&" if "?" in base_url else "?"
        for n in (1, args.pg_servers):
            url = f"{base_url}{sep}schema=load_{n}_{uuid.uuid4().hex[:8]}"
            configs.append((f"pg{n}", url, n, url))
    if args.only:
        wanted = set(args.only.split(","))
        configs = [c for c in configs if c[0] in wanted]
    results = []
    try:
        for label, db, n, audit_db in configs:
            print(f"== {label}: {n} server(s), {args.clients} clients, {args.events} events",
                  flush=True)  # fmt: skip
            r = run(label, db, n, args.clients, args.events, args.time_limit, args.kill_after,
                    workdir, audit_db)  # fmt: skip
            print(json.dumps(r), flush=True)
            results.append(r)
    finally:
        if pg is not None:
            pg.stop()
    cols = ["config", "servers", "clients", "acked", "events_per_s", "p50_ms", "p99_ms", "lost",
            "doubled", "balance_mismatch", "restarts", "audit_ok", "signatures_verified"]
    print()
    print("  ".join(f"{c:>14}" for c in cols))
    for r in results:
        print("  ".join(f"{str(r.get(c)):>14}" for c in cols))
    bad = [r for r in results if r["lost"] or r["doubled"] or r["balance_mismatch"]
           or r["receipt_moved"] or r["unsent_in_journal"] or not r["audit_ok"]
           or not r.get("offline_audit_ok", True) or not r.get("offline_replay_ok", True)
           or r.get("charter_audit_exit", 0) != 0]
    print("\nRESULT:", "FAILED" if bad else "every acknowledged event exactly once; audits pass")
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
