"""A real ``charter serve`` process (uvicorn) on a free port, and a tiny HTTP client."""

from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Optional

import pytest

ROOT = Path(__file__).resolve().parents[2]
GIG = str(ROOT / "examples" / "gig_market" / "policy.charter")


class Server:
    """``charter serve POLICY --db DB --port 0`` as a child process; stop() sends SIGTERM."""

    def __init__(self, tmp: Path, db: str, policy: str = GIG, *args: str, name: str = "srv"):
        self.port_file = tmp / f"{name}.port"
        self.log_path = tmp / f"{name}.log"
        if self.port_file.exists():
            self.port_file.unlink()
        self.log = open(self.log_path, "ab")
        cmd = [sys.executable, "-m", "charter.cli", "serve", policy, "--db", db, "--port", "0",
               "--port-file", str(self.port_file), *args]  # fmt: skip
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=self.log, cwd=tmp)
        deadline = time.monotonic() + 60
        while not self.port_file.exists():
            if self.proc.poll() is not None:
                raise RuntimeError(f"charter serve exited {self.proc.returncode}:\n{self.logs()}")
            if time.monotonic() > deadline:
                self.proc.kill()
                raise RuntimeError(f"charter serve did not start:\n{self.logs()}")
            time.sleep(0.05)
        self.port = json.loads(self.port_file.read_text())["port"]

    def logs(self) -> str:
        if not self.log.closed:
            self.log.flush()
        return self.log_path.read_text(errors="replace")

    def request(
        self, method: str, path: str, body: Any = None, raw: Optional[bytes] = None,
        headers: Optional[dict] = None,
    ) -> tuple[int, Any]:  # fmt: skip
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        try:
            hdrs = {"content-type": "application/json", **(headers or {})}
            data = raw if raw is not None else (
                None if body is None else json.dumps(body).encode("utf-8", "surrogatepass")
            )
            conn.request(method, path, body=data, headers=hdrs)
            resp = conn.getresponse()
            text = resp.read()
            try:
                return resp.status, json.loads(text)
            except ValueError:
                return resp.status, text
        finally:
            conn.close()

    def post(self, event: Any) -> tuple[int, Any]:
        return self.request("POST", "/v1/events", event)

    def get(self, path: str) -> Any:
        status, body = self.request("GET", path)
        assert status == 200, (path, status, body)
        return body

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 60) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        return self.proc.returncode


@pytest.fixture
def start_server(tmp_path):
    started: list[Server] = []

    def start(db: Optional[str] = None, *args: str, policy: str = GIG, name: str = "srv") -> Server:
        s = Server(tmp_path, db or f"sqlite:///{tmp_path / 'ledger.sqlite'}", policy, *args,
                   name=name)  # fmt: skip
        started.append(s)
        return s

    yield start
    for s in started:
        s.stop(signal.SIGKILL if os.environ.get("CHARTER_TEST_FAST_STOP") else signal.SIGTERM)


@pytest.fixture(scope="module")
def shared_server(tmp_path_factory):
    """One server for the read-mostly tests and the fuzzer (a module's worth of requests)."""
    tmp = tmp_path_factory.mktemp("serve")
    s = Server(tmp, f"sqlite:///{tmp / 'ledger.sqlite'}")
    yield s
    s.stop()
