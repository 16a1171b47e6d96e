"""Two AI agents settle a gig through MCP, scripted with the MCP SDK's own client (no model).

    python examples/gig_market/mcp_agents.py LEDGER.sqlite [--key PARTY=KEYFILE ...]
    python examples/gig_market/mcp_agents.py --http http://127.0.0.1:8765/mcp --agents agents.json

Over stdio each agent session is a ``charter mcp`` server process on the
ledger, launched as an MCP-capable assistant launches it; a session acts as
exactly one party (``--party``) and, for a party with a registered key,
signs with it (``--key``).  One writer at a time owns a SQLite ledger, so
stdio sessions take turns.  Over streamable HTTP one ``charter mcp --http``
server serves every agent at once; each agent's bearer token (the agents
file) says which party it is.  The script:

1. ann and bob join as agents; the operator appoints the gateway ``gw``;
   ``gw`` deposits Credit for both (each in their own session);
2. ann reads the rules and lists the tools, posts a task with a 100.00 Credit
   budget; a bid above the budget is refused with the policy's reason;
3. bob bids 80.00 Credit; ann completes the task with quality 5;
4. both read their balances: bob holds 20.00 + 76.00 Credit (the 5% fee went to
   the commons) and 50 Reputation, ann 500.00 - 80.00 Credit.

``play()`` returns the transcript (every call and its structured result);
``tests/mcp/test_mcp.py`` runs it and checks the ledger against ``charter run``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Optional

HERE = Path(__file__).resolve().parent
POLICY = HERE / "policy.charter"


def server(db: str, party: str, key: Optional[str] = None, policy: Path = POLICY) -> Any:
    """How an assistant launches the server for one agent (the SDK's stdio parameters)."""
    from mcp import StdioServerParameters

    args = ["-m", "charter.cli", "mcp", str(policy), "--db", db, "--party", party, "--wait", "30"]
    if key:
        args += ["--key", key]
    return StdioServerParameters(command=sys.executable, args=args)


def http_agent(url: str, token: str) -> Any:
    """An agent's connection to ``charter mcp --http``: the SDK's streamable-HTTP transport
    with the agent's bearer token."""
    import httpx2
    from mcp.client.streamable_http import streamable_http_client

    client = httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=60)
    return streamable_http_client(url, http_client=client)


async def play(db: Optional[str] = None, keys: Optional[dict[str, str]] = None,
               url: Optional[str] = None,
               tokens: Optional[dict[str, str]] = None) -> list[dict[str, Any]]:  # fmt: skip
    """Run the scenario over stdio (``db``, ``keys``) or HTTP (``url``, ``tokens`` by party)."""
    from mcp import Client

    keys = keys or {}
    log: list[dict[str, Any]] = []

    def connect(party: str) -> Any:
        if url is not None:
            return http_agent(url, (tokens or {})[party])
        return server(str(db), party, keys.get(party))

    async def as_agent(party: str, *calls: tuple[str, Any]) -> None:
        async with Client(connect(party)) as agent:
            for what, arg in calls:
                if what == "tools":
                    listed = await agent.list_tools()
                    log.append({"party": party, "tools": [t.name for t in listed.tools]})
                elif what == "read":
                    got = await agent.read_resource(arg)
                    text = got.contents[0].text
                    body = json.loads(text) if text.lstrip().startswith("{") else text
                    log.append({"party": party, "read": arg, "result": body})
                else:
                    res = await agent.call_tool(what, arg)
                    log.append({"party": party, "call": what, "args": arg,
                                "result": res.structured_content})  # fmt: skip

    await as_agent("ann", ("join", {}))
    await as_agent("bob", ("join", {}))
    await as_agent("operator", ("appoint", {"gateway": "gw"}))
    await as_agent("gw", ("deposit", {"to": "ann", "amount": "500.00"}),
                   ("deposit", {"to": "bob", "amount": "20.00"}))  # fmt: skip
    await as_agent(
        "ann",
        ("tools", None),
        ("read", "charter://rules"),
        ("post", {"id": "logo", "budget": "100.00", "duration": 86400}),
    )
    await as_agent(
        "bob",
        ("bid", {"id": "logo", "price": "120.00"}),  # above the budget: refused, says why
        ("bid", {"id": "logo", "price": "80.00", "idempotency_key": "bob-bid-1"}),
        ("bid", {"id": "logo", "price": "80.00", "idempotency_key": "bob-bid-1"}),  # a retry
    )
    await as_agent("ann", ("complete", {"id": "logo", "quality": 5}),
                   ("read", "charter://me/balances"))  # fmt: skip
    await as_agent("bob", ("read", "charter://me/balances"), ("read", "charter://me/history"))
    return log


def main(argv: Optional[list[str]] = None) -> int:
    import anyio

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("db", nargs="?", help="stdio: the ledger file (created if new)")
    ap.add_argument("--key", action="append", default=[], metavar="PARTY=KEYFILE")
    ap.add_argument("--http", metavar="URL", help="a charter mcp --http server's /mcp URL")
    ap.add_argument("--agents", metavar="FILE", help="with --http: the server's agents file")
    a = ap.parse_args(argv)
    keys = dict(k.split("=", 1) for k in a.key)
    tokens = None
    if a.http:
        agents = json.loads(Path(a.agents).read_text())
        tokens = {(v["party"] if isinstance(v, dict) else v): t for t, v in agents.items()}
    elif not a.db:
        ap.error("give a ledger file (stdio) or --http URL --agents FILE")
    for step in anyio.run(play, a.db, keys, a.http, tokens):
        print(json.dumps(step, ensure_ascii=False)[:400])
    return 0


if __name__ == "__main__":
    sys.exit(main())
