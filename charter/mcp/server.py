"""``charter mcp``: one economy served to AI agents over the Model Context Protocol.

Built on the ``mcp`` SDK's low-level :class:`mcp.server.lowlevel.Server`
(tools and resources are generated from the policy, so they are listed and
dispatched here rather than declared as Python functions):

* **stdio** (``charter mcp POLICY --db URL --party P``): one agent per
  process; the operator who launches it says which party it acts as
  (``--party``) and, for a party with a registered key, gives the private
  key to sign with (``--key FILE``).
* **streamable HTTP** (``--http HOST:PORT --agents FILE``): many agents; each
  request carries ``Authorization: Bearer TOKEN`` and the agents file maps
  tokens to parties (and keys).  A request without a known token gets 401;
  there is no way to name another party.

Either way the runtime is owned by one thread (``charter.serve.worker``);
the server stamps each event with its own clock on that thread (the runtime
runs ``clock=events`` on those server-given times, so the time a signature
covers is the time journalled), events go through the runtime's one
pipeline, and every answer is data: a receipt, a rejection, or a structured
error for a call the server refuses.
"""

from __future__ import annotations

import hmac
import json
from pathlib import Path
from typing import Any, Optional

from .economy import Economy, Session, ToolError, handler_docs

SERVER_NAME = "charter"


def _text(data: Any) -> str:
    return json.dumps(data, ensure_ascii=False, indent=1, default=str)


def build_server(economy: Economy, session_of: Any) -> Any:
    """The low-level MCP server for ``economy``.  ``session_of(ctx)`` is the calling agent's
    :class:`Session` (raises :class:`ToolError` when the caller is not one)."""
    import mcp_types as types
    from mcp.server.lowlevel import Server

    from charter import __version__

    async def list_tools(ctx: Any, params: Any) -> Any:
        return types.ListToolsResult(tools=[types.Tool(**t) for t in economy.tools()])

    async def call_tool(ctx: Any, params: Any) -> Any:
        try:
            session = session_of(ctx)
        except ToolError as err:
            data = err.to_dict()
        else:
            data = await economy.call(session, params.name, params.arguments)
        summary = _summary(params.name, data)
        return types.CallToolResult(
            content=[types.TextContent(type="text", text=summary + "\n" + _text(data))],
            structured_content=data,
            is_error=not data.get("applied", False),
        )

    async def list_resources(ctx: Any, params: Any) -> Any:
        return types.ListResourcesResult(
            resources=[types.Resource(**r) for r in economy.resources()]
        )

    async def read_resource(ctx: Any, params: Any) -> Any:
        from mcp.shared.exceptions import MCPError

        uri = str(params.uri)
        try:
            mime, text = await economy.read(session_of(ctx), uri)
        except ToolError as err:
            # a resource read has no "error result": a JSON-RPC error carrying our code
            raise MCPError(-32602, f"{err.code}: {err.message}", err.to_dict()) from None
        return types.ReadResourceResult(
            contents=[types.TextResourceContents(uri=uri, mime_type=mime, text=text)]
        )

    pol = economy.policy
    return Server(
        SERVER_NAME,
        version=__version__,
        title=f"Charter economy {pol.name} {pol.version}",
        instructions=(
            f"You take part in the Charter economy {pol.name!r} as one party.  Read "
            "charter://rules first; each tool submits one event; results are receipts "
            "or rejections whose message says what to change.  Amounts are strings in "
            'asset units ("12.50") or integers of minor units.'
        ),
        on_list_tools=list_tools,
        on_call_tool=call_tool,
        on_list_resources=list_resources,
        on_read_resource=read_resource,
    )


def _summary(name: Any, data: dict) -> str:
    if data.get("applied"):
        moved = "; ".join(f"{p['amount']} {p['from']} -> {p['to']}" for p in data["postings"])
        again = " (already applied: this is the first receipt)" if data.get("duplicate") else ""
        return f"applied {name} as entry {data['seq']}{again}" + (f": {moved}" if moved else "")
    return f"refused ({data.get('code')}): {data.get('message')}"


# ------------------------------------------------------------------ running


def open_economy(policy_path: str, db: str, *, params: Optional[dict] = None,
                 wait: float = 0.0) -> tuple[Economy, Any]:  # fmt: skip
    """Compile the policy, start the runtime's worker thread on ``db``; (economy, worker)."""
    from charter.compiler.pipeline import Compilation
    from charter.runtime.api import open_runtime
    from charter.serve.worker import RuntimeWorker

    comp = Compilation.from_path(policy_path)
    pol = comp.ir
    worker = RuntimeWorker(
        lambda: open_runtime(pol, db, params=params, wait=wait)  # times: Economy.stamp
    )
    worker.start()
    genesis = worker.rt.genesis
    return Economy(pol, worker, handler_docs(comp), genesis), worker


def run_stdio(economy: Economy, session: Session) -> None:
    import anyio
    from mcp.server.stdio import stdio_server

    server = build_server(economy, lambda ctx: session)

    async def main() -> None:
        async with stdio_server() as (read_stream, write_stream):
            await server.run(read_stream, write_stream, server.create_initialization_options())

    anyio.run(main)


def load_agents(path: str, rate: float, burst: int) -> dict[str, Session]:
    """``{"TOKEN": {"party": "ann", "key": "ann.key"}, ...}`` (``key`` optional, relative to
    the file) -> sessions by token."""
    from charter.runtime import signing

    base = Path(path).parent
    data = json.loads(Path(path).read_text("utf-8"))
    if not isinstance(data, dict) or not data:
        raise ValueError(f"{path}: expected an object of tokens to agents")
    out: dict[str, Session] = {}
    for token, agent in data.items():
        if not isinstance(token, str) or len(token) < 16:
            raise ValueError(f"{path}: each token must be text of at least 16 characters")
        if isinstance(agent, str):
            agent = {"party": agent}
        if not isinstance(agent, dict) or "party" not in agent:
            raise ValueError(f"{path}: token {token[:4]}...: expected {{\"party\": ...}}")
        key = None
        if agent.get("key"):
            key = signing.load_private_key((base / agent["key"]).read_bytes())
        out[token] = Session.make(agent["party"], key, rate, burst)
    return out


def http_app(economy: Economy, agents: dict[str, Session], host: str = "127.0.0.1") -> Any:
    """The streamable-HTTP ASGI app (``/mcp``); the bearer token picks the session."""

    def session_of(ctx: Any) -> Session:
        request = getattr(ctx, "request", None)
        header = request.headers.get("authorization", "") if request is not None else ""
        token = header[7:].strip() if header[:7].lower() == "bearer " else ""
        for known, session in agents.items():
            if token and hmac.compare_digest(known.encode(), token.encode()):
                return session
        raise ToolError("unauthorised", "no agent with this bearer token")

    server = build_server(economy, session_of)
    app = server.streamable_http_app(host=host, json_response=True)

    async def guard(scope: Any, receive: Any, send: Any) -> None:
        # no session may even start without a token the agents file knows
        if scope["type"] == "http":
            headers = dict(scope.get("headers") or [])
            header = headers.get(b"authorization", b"").decode("latin-1")
            token = header[7:].strip() if header[:7].lower() == "bearer " else ""
            if not any(token and hmac.compare_digest(k.encode(), token.encode()) for k in agents):
                body = json.dumps({"error": "unauthorised", "message": "missing or unknown "
                                   "bearer token (charter mcp --agents)"}).encode()
                await send({"type": "http.response.start", "status": 401,
                            "headers": [(b"content-type", b"application/json"),
                                        (b"www-authenticate", b"Bearer")]})
                await send({"type": "http.response.body", "body": body})
                return
        await app(scope, receive, send)

    return guard


def run_http(economy: Economy, agents: dict[str, Session], host: str, port: int,
             port_file: Optional[str] = None) -> None:  # fmt: skip
    """Serve until SIGTERM/SIGINT.  ``port`` 0 picks a free port, written to ``port_file``."""
    import asyncio
    import signal

    import uvicorn

    config = uvicorn.Config(http_app(economy, agents, host), host=host, port=port,
                            log_config=None, access_log=False, lifespan="on",
                            server_header=False)  # fmt: skip
    server = uvicorn.Server(config)

    async def main() -> None:
        task = asyncio.create_task(server.serve())
        while not server.started and not task.done():
            await asyncio.sleep(0.02)
        if server.started and port_file:
            bound_host, bound_port = server.servers[0].sockets[0].getsockname()[:2]
            tmp = Path(port_file + ".tmp")
            tmp.write_text(json.dumps({"host": bound_host, "port": bound_port}))
            tmp.replace(port_file)  # readers never see half a file
        await task

    for sig in (signal.SIGTERM, signal.SIGINT):  # uvicorn re-raises to these: exit quietly
        signal.signal(sig, lambda signum, frame: None)
    asyncio.run(main())


__all__ = ["build_server", "open_economy", "run_stdio", "run_http", "http_app", "load_agents"]
