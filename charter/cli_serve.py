"""``charter serve`` (the HTTP JSON API) and ``charter keys`` (signing keys of parties)."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
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
    @click.option("--host", default="127.0.0.1", show_default=True)
    @click.option("--port", default=8000, show_default=True, type=click.IntRange(0, 65535),
                  help="0 picks a free port (see --port-file).")
    @click.option("--port-file", default=None, metavar="PATH",
                  help="Write {\"host\", \"port\"} here once listening.")
    @click.option("--param", "params", multiple=True, metavar="NAME=VALUE",
                  help="Parameter override for a new ledger (as for charter run).")
    @click.option("--clock", type=click.Choice(["system", "events"]), default="system",
                  show_default=True,
                  help="'system': the server stamps each event (untrusted clients); 'events': "
                  "the events' own times (trusted submitters only).")
    @click.option("--max-skew", default=300, show_default=True, type=click.IntRange(0, None),
                  help="Seconds a submitted time may differ from the server's clock.")
    @click.option("--max-body", default=1 << 20, show_default=True,
                  type=click.IntRange(64, 1 << 30), help="Largest request body in bytes.")
    @click.option("--max-group", default=256, show_default=True, type=click.IntRange(1, 100000),
                  help="Most queued events committed in one transaction (group commit).")
    @click.option("--limit-concurrency", default=None, type=click.IntRange(1, None),
                  help="Most connections at once; more get 503.")
    @click.option("--admin-token-file", default=None, type=click.Path(dir_okay=False),
                  help="Enables POST /v1/keys for bearers of the token in this file.")
    @click.option("--self-register-keys", is_flag=True,
                  help="A party without a key may register its first one itself, with an @keys "
                  "add event signed by that key (agents that join by themselves).")
    @click.option("--wait", default=0.0, type=click.FloatRange(0, None), metavar="SECONDS",
                  help="Wait up to SECONDS for another writer of a SQLite ledger to finish.")
    @click.option("--log-level", default="info", show_default=True,
                  type=click.Choice(["debug", "info", "warning", "error"]))
    def serve(
        policy: str, db: str, host: str, port: int, port_file: Optional[str],
        params: tuple[str, ...], clock: str, max_skew: int, max_body: int, max_group: int,
        limit_concurrency: Optional[int], admin_token_file: Optional[str],
        self_register_keys: bool, wait: float, log_level: str,
    ) -> None:  # fmt: skip
        """Serve POLICY's ledger over HTTP (JSON; OpenAPI at /openapi.json).

        Events are acknowledged only after their commit, so `kill -9` loses no
        acknowledged event; SIGTERM finishes the requests in flight and closes
        the ledger.  Logs are JSON lines on stderr.  See docs/deployment.rst.
        """
        try:
            import starlette  # noqa: F401
            import uvicorn  # noqa: F401
        except ImportError:
            _fail("charter serve needs the [serve] extra: pip install 'charter-policy[serve]'")
        from charter.cli_runtime import _compile, _param_overrides
        from charter.runtime.api import open_runtime
        from charter.runtime.engine import ParamError
        from charter.runtime.store import StoreError
        from charter.runtime.values import PolicyNotExecutable

        from charter.runtime.store_url import redact

        from .serve.server import serve as run_server

        pol = _compile(policy)
        overrides = _param_overrides(pol, params)
        token = None
        if admin_token_file:
            try:
                token = Path(admin_token_file).read_text().strip()
            except OSError as exc:
                _fail(f"{admin_token_file}: {exc}")
            if len(token) < 16:
                _fail(f"{admin_token_file}: the admin token must be at least 16 characters")
        def opener() -> Any:
            return open_runtime(
                pol, db, params=overrides or None, clock=clock, max_skew=max_skew, wait=wait,
                self_register=self_register_keys,
            )

        try:
            status = run_server(
                opener, host=host, port=port, port_file=port_file, max_body=max_body,
                max_group=max_group, admin_token=token, limit_concurrency=limit_concurrency,
                log_level=log_level, info={"db": redact(db)},
            )  # fmt: skip
        except (StoreError, ParamError, ValueError) as exc:
            _fail(str(exc))
        except PolicyNotExecutable as exc:
            _fail(f"this runtime cannot execute the policy: {exc}", 1)
        sys.exit(status)

    @cli.group()
    def keys() -> None:
        """Signing keys of parties (Ed25519): generate, register, rotate, revoke, list.

        Registry changes are journal entries of the ledger (type @keys), so audit
        and replay rebuild the registry.  The ledger must not be open by another
        writer (stop `charter serve`, or use its POST /v1/keys)."""

    @keys.command("gen")
    @click.argument("out", type=click.Path(dir_okay=False))
    def keys_gen(out: str) -> None:
        """Write a new private key to OUT (PEM, mode 600) and print its public key."""
        from charter.runtime import signing

        if os.path.exists(out):
            _fail(f"{out} exists; not overwriting a key")
        sk, pk = signing.generate_key()
        fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(signing.private_key_pem(sk))
        click.echo(pk)

    def _key_change(db: str, op: str, party: str, key: Optional[str], wait: float) -> None:
        from charter.runtime.api import open_runtime
        from charter.runtime.store import StoreError

        try:
            rt = open_runtime(None, db, wait=wait)
        except StoreError as exc:
            _fail(str(exc))
        try:
            out = rt.register_key(op, party, key)
        finally:
            rt.close()
        if not out.applied:
            _fail(f"{out.code}: {out.message}", 1)
        click.echo(f"{op} {party}: journal entry {out.tx} ({out.event_id})")

    _wait = click.option("--wait", default=0.0, type=click.FloatRange(0, None), metavar="SECONDS")

    @keys.command("add")
    @click.argument("db")
    @click.argument("party")
    @click.argument("public_key")
    @_wait
    def keys_add(db: str, party: str, public_key: str, wait: float) -> None:
        """Register PUBLIC_KEY (64 hex digits) for PARTY; its events must then be signed."""
        _key_change(db, "add", party, public_key, wait)

    @keys.command("rotate")
    @click.argument("db")
    @click.argument("party")
    @click.argument("public_key")
    @_wait
    def keys_rotate(db: str, party: str, public_key: str, wait: float) -> None:
        """Replace PARTY's active key by PUBLIC_KEY (the old one retires)."""
        _key_change(db, "rotate", party, public_key, wait)

    @keys.command("revoke")
    @click.argument("db")
    @click.argument("party")
    @_wait
    def keys_revoke(db: str, party: str, wait: float) -> None:
        """Revoke PARTY's active key: its events are refused until a new key is added."""
        _key_change(db, "revoke", party, None, wait)

    @keys.command("list")
    @click.argument("db")
    @click.option("--json", "as_json", is_flag=True)
    def keys_list(db: str, as_json: bool) -> None:
        """The key registry of a ledger."""
        from charter.runtime.api import open_runtime
        from charter.runtime.store import StoreError

        try:
            rt = open_runtime(None, db, readonly=True)
        except StoreError as exc:
            _fail(str(exc))
        reg = rt.keys()
        genesis = rt.genesis
        rt.close()
        if as_json:
            click.echo(json.dumps({"genesis": genesis, "keys": reg}, indent=2))
            return
        click.echo(f"ledger {genesis} (sign for this)")
        for party, r in reg.items():
            for k, status in r["keys"].items():
                click.echo(f"{party}\t{status}\t{k}")

    @keys.command("sign")
    @click.argument("events", type=click.File("rb"))
    @click.option("--key", "key_file", required=True, type=click.Path(dir_okay=False),
                  help="Private key (PEM from `charter keys gen`, or a 64-hex seed).")
    @click.option("--ledger", "genesis", required=True, metavar="GENESIS",
                  help="The ledger's genesis hash (GET /v1/ledger, `charter keys list`).")
    def keys_sign(events: Any, key_file: str, genesis: str) -> None:
        """Sign each event of EVENTS (JSON Lines, '-' for stdin) and print it with its sig."""
        from charter.runtime import signing

        try:
            sk = signing.load_private_key(Path(key_file).read_bytes())
        except (OSError, ValueError) as exc:
            _fail(f"{key_file}: {exc}")
        if signing.hex_problem(genesis, 32):
            _fail(f"--ledger: {signing.hex_problem(genesis, 32)}")
        for n, line in enumerate(events, 1):
            if not line.strip():
                continue
            try:
                ev = json.loads(line)
                click.echo(json.dumps(signing.sign_event(ev, sk, genesis), ensure_ascii=False))
            except (ValueError, signing.SigningError) as exc:
                _fail(f"line {n}: {exc}", 1)
