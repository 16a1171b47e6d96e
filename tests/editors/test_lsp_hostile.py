"""The language server process under hostile JSON-RPC traffic.

An editor plugin with a bug, or anything else that can write to the server's
stdin, may send any JSON in any field.  This drives the real ``charter lsp``
process over raw stdio (Content-Length framing written here, so nothing
"helpful" sits between the fuzzer and the server) with hypothesis-generated
values of every JSON type in every field of the requests it serves, and checks
that each request gets an answer (a result or a JSON-RPC error), nothing
crashes the process, and a well-formed hover still works afterwards.
"""
from __future__ import annotations

import json
import queue
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any, Iterator, Optional

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

ROOT = Path(__file__).resolve().parents[2]
GIG = ROOT / "stdlib_policies" / "gig_market.charter"
URI = GIG.resolve().as_uri()
METHODS = ["textDocument/hover", "textDocument/definition", "textDocument/completion",
           "textDocument/references",
           "textDocument/documentSymbol", "textDocument/formatting"]
NOTIFICATIONS = ["textDocument/didOpen", "textDocument/didChange", "textDocument/didSave",
                 "textDocument/didClose"]


class RawServer:
    def __init__(self) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", "charter.cli", "lsp"], cwd=ROOT,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE)
        self.replies: "queue.Queue[dict]" = queue.Queue()
        self.next_id = 0
        threading.Thread(target=self._read, daemon=True).start()
        threading.Thread(target=self._drain_stderr, daemon=True).start()

    def _drain_stderr(self) -> None:
        for _ in iter(self.proc.stderr.readline, b""):
            pass

    def _read(self) -> None:
        out = self.proc.stdout
        while True:
            length = None
            while True:
                line = out.readline()
                if not line:
                    return
                if line in (b"\r\n", b"\n"):
                    break
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            body = json.loads(out.read(length or 0))
            if "id" in body and ("result" in body or "error" in body):
                self.replies.put(body)

    def send(self, message: dict) -> None:
        data = json.dumps(message).encode("utf-8")
        self.proc.stdin.write(b"Content-Length: %d\r\n\r\n" % len(data) + data)
        self.proc.stdin.flush()

    def request(self, method: str, params: Any, timeout: float = 20) -> dict:
        self.next_id += 1
        rid = self.next_id
        self.send({"jsonrpc": "2.0", "id": rid, "method": method, "params": params})
        while True:
            reply = self.replies.get(timeout=timeout)
            if reply.get("id") == rid:
                return reply

    def notify(self, method: str, params: Any) -> None:
        self.send({"jsonrpc": "2.0", "method": method, "params": params})

    def close(self) -> None:
        try:
            self.request("shutdown", None, timeout=30)
            self.notify("exit", None)
            self.proc.wait(timeout=30)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()


@pytest.fixture(scope="module")
def server() -> Iterator[RawServer]:
    s = RawServer()
    reply = s.request("initialize", {"processId": None, "rootUri": None, "capabilities": {}})
    assert "result" in reply and reply["result"]["capabilities"]["hoverProvider"]
    s.notify("initialized", {})
    s.notify("textDocument/didOpen", {"textDocument": {
        "uri": URI, "languageId": "charter", "version": 1, "text": GIG.read_text("utf-8")}})
    yield s
    s.close()


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-2**70, max_value=2**70)
    | st.floats(allow_nan=False) | st.text(max_size=30)
    | st.sampled_from(["\ud800", "x" * 100_000, URI, "file:///nonexistent/p.charter",
                       "file:///", "untitled:Untitled-1", "9" * 5000]),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                 max_size=4),
    max_leaves=12)


@st.composite
def hostile_params(draw: st.DrawFn) -> Any:
    """Well-shaped requests with hostile leaves, or any JSON at all."""
    if draw(st.booleans()):
        return draw(json_values)
    pos = {"line": draw(st.one_of(st.integers(-5, 10**12), json_values)),
           "character": draw(st.one_of(st.integers(-5, 10**12), json_values))}
    doc = {"uri": draw(st.one_of(st.just(URI), json_values))}
    params: dict[str, Any] = {"textDocument": doc, "position": pos,
                              "options": {"tabSize": 4, "insertSpaces": True},
                              "context": {"includeDeclaration": draw(st.booleans())}}
    if draw(st.booleans()):
        params[draw(st.sampled_from(list(params)))] = draw(json_values)
    return params


@st.composite
def hostile_notification(draw: st.DrawFn) -> tuple[str, Any]:
    method = draw(st.sampled_from(NOTIFICATIONS))
    text = draw(st.one_of(st.text(max_size=200), st.just("policy p version \"1\"\n" + "{" * 500),
                          st.just("\ud800 policy"), json_values))
    params = {"textDocument": {"uri": draw(st.one_of(st.just(URI + ".scratch"), json_values)),
                               "languageId": "charter", "version": draw(json_values),
                               "text": text},
              "contentChanges": draw(st.one_of(st.just([{"text": text}]), json_values))}
    return method, draw(st.one_of(st.just(params), json_values))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                   HealthCheck.function_scoped_fixture])
@given(method=st.sampled_from(METHODS), params=hostile_params(),
       note=st.one_of(st.none(), hostile_notification()))
def test_every_hostile_request_gets_an_answer(server: RawServer, method: str, params: Any,
                                              note: Optional[tuple[str, Any]]) -> None:
    if note is not None:
        server.notify(*note)
    reply = server.request(method, params)
    assert ("result" in reply) != ("error" in reply), reply
    assert server.proc.poll() is None, "the server died"


@pytest.mark.parametrize("text", [
    "\ud800 policy p", 'policy p version "1"\nasset A: token\n' + "on x() by clock {" * 400,
    'policy p version "1"\nparam n: int = ' + "9" * 100_000, "\x00" * 10, "",
    'policy p version "\ud800"\nasset \u00e9: token\n',
    'policy p version "1"\n# a lone surrogate \ud800 in a comment\nasset A: token\n'])
def test_hostile_documents_get_diagnostics_and_answers(server: RawServer, text: str) -> None:
    uri = URI + ".hostile"
    server.notify("textDocument/didOpen", {"textDocument": {
        "uri": uri, "languageId": "charter", "version": 1, "text": text}})
    for method in METHODS:
        params: dict[str, Any] = {"textDocument": {"uri": uri},
                                  "position": {"line": 0, "character": 3},
                                  "options": {"tabSize": 4, "insertSpaces": True}}
        if method == "textDocument/references":
            params["context"] = {"includeDeclaration": True}
        reply = server.request(method, params)
        assert "result" in reply, reply
    server.notify("textDocument/didClose", {"textDocument": {"uri": uri}})


def test_the_server_still_answers_after_the_fuzzing(server: RawServer) -> None:
    text = GIG.read_text("utf-8").split("\n")
    line = next(i for i, ln in enumerate(text) if ln.startswith("param fee:"))
    reply = server.request("textDocument/hover", {"textDocument": {"uri": URI},
                                                  "position": {"line": line, "character": 7}})
    assert "Take rate on every payout" in reply["result"]["contents"]["value"]
