"""``charter mcp``: serve one economy to AI agents over the Model Context Protocol."""

from __future__ import annotations

import sys
from typing import Any, Optional

import click


def _fail(msg: str, code: int = 2) -> None:
    click.echo(f"charter: {msg}", err=True)
    sys.exit(code)


def register(cli: click.Group) -> None:
    @cli.command()
    @click.argument("policy", type=click.Path(dir_okay=False))
    @click.option("--db", required=True, metavar="URL",
                  help="The ledger: sqlite:///path/ledger.sqlite (or a path), postgresql://...")
    @click.option("--party", default=None, metavar="PARTY",
                  help="stdio: the party this agent acts as (it can never act as another).")
    @click.option("--key", "key_file", default=None, type=click.Path(dir_okay=False),
                  help="stdio: the party's Ed25519 private key (PEM or 64 hex digits); every "
                  "event is signed with it (needed once the party has a registered key).")
    @click.option("--http", "http", default=None, metavar="HOST:PORT",
                  help="Serve streamable HTTP at http://HOST:PORT/mcp instead of stdio.")
    @click.option("--agents", "agents_file", default=None, type=click.Path(dir_okay=False),
                  help='HTTP: JSON {"TOKEN": {"party": "ann", "key": "ann.key"}, ...}; each '
                  "request's bearer token picks its party.")
    @click.option("--port-file", default=None, metavar="PATH",
                  help='HTTP: write {"host", "port"} here once listening (port 0 picks one).')
    @click.option("--param", "params", multiple=True, metavar="NAME=VALUE",
                  help="Parameter override for a new ledger (as for charter run).")
    @click.option("--rate", default=5.0, show_default=True, type=click.FloatRange(0, None),
                  help="Tool calls per second per session (token bucket; 0: unlimited).")
    @click.option("--burst", default=20, show_default=True, type=click.IntRange(1, None),
                  help="Tool calls a session may make at once before --rate applies.")
    @click.option("--wait", default=0.0, type=click.FloatRange(0, None), metavar="SECONDS",
                  help="Wait up to SECONDS for another writer of the ledger to finish.")
    def mcp(policy: str, db: str, party: Optional[str], key_file: Optional[str],
            http: Optional[str], agents_file: Optional[str], port_file: Optional[str],
            params: tuple[str, ...],
            rate: float, burst: int, wait: float) -> None:  # fmt: skip
        """Serve POLICY's ledger to AI agents over MCP (stdio, or streamable HTTP).

        Every handler an agent may submit is a tool (JSON Schema from its
        signature, description from its doc comment and its require messages);
        resources give the rules in plain words, your balances, records and
        recent history.  Time is the server's; each session acts as one party.
        Events go through the same pipeline as charter run and charter serve.
        """
        try:
            from charter.mcp import server as srv
        except ModuleNotFoundError as exc:
            _fail(f"charter mcp needs the mcp extra: pip install 'charter[mcp]' ({exc.name})")
        from charter.cli_runtime import _compile, _param_overrides
        from charter.mcp.economy import Session
        from charter.runtime import signing
        from charter.runtime.store import StoreError
        from charter.runtime.values import PolicyNotExecutable

        if http is None and not party:
            _fail("stdio needs --party PARTY (the party this agent acts as)")
        if http is not None and not agents_file:
            _fail("--http needs --agents FILE (bearer tokens of the agents and their parties)")
        pol = _compile(policy)  # a missing file or a policy with errors: said, exit 1 or 2
        overrides = _param_overrides(pol, params) if params else None
        if http is not None:
            host, _, port_text = http.rpartition(":")
            if not port_text.isdigit() or int(port_text) > 65535:
                _fail(f"--http {http}: expected HOST:PORT (PORT 0..65535; 0 picks a free one)")
        sessions: dict[str, Any] = {}
        try:
            if http is None:
                key = signing.load_private_key(open(key_file, "rb").read()) if key_file else None
                session = Session.make(party, key, rate, burst)
            else:
                sessions = srv.load_agents(agents_file, rate, burst)
        except Exception as exc:  # noqa: BLE001 - unreadable key/agents file, bad party: said
            _fail(str(getattr(exc, "message", None) or exc))
        try:
            economy, worker = srv.open_economy(policy, db, params=overrides, wait=wait)
        except PolicyNotExecutable as exc:
            _fail(f"this runtime cannot execute the policy: {exc}", 1)
        except (StoreError, ValueError) as exc:
            _fail(str(exc))
        try:
            if http is None:
                srv.run_stdio(economy, session)
            else:
                srv.run_http(economy, sessions, host or "127.0.0.1", int(port_text), port_file)
        finally:
            worker.stop()
