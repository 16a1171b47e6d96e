"""Running ``charter serve``: the runtime worker, the Starlette app, uvicorn, JSON logs.

Shutdown: on SIGTERM or SIGINT uvicorn stops accepting connections and
finishes the requests in flight (each waits for its commit), then the app's
lifespan ends and the worker settles what is queued, flushes and closes the
ledger.  On ``kill -9`` nothing is flushed, but nothing needs to be: a
response is sent only after its event's commit returned.
"""

from __future__ import annotations

import json
import logging
import signal
import sys
import time
from pathlib import Path
from typing import Any, Callable, Optional

from .app import create_app
from .worker import RuntimeWorker

_STD = set(vars(logging.makeLogRecord({})))


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, msg, and every ``extra`` field."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for k, v in vars(record).items():
            if k not in _STD and k not in out and not k.startswith("_") and k != "color_message":
                out[k] = v
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str, ensure_ascii=True)


def configure_logging(level: str = "info", stream: Any = None) -> None:
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter())
    for name in ("charter.serve", "uvicorn", "uvicorn.error"):
        lg = logging.getLogger(name)
        lg.handlers = [handler]
        lg.setLevel(level.upper())
        lg.propagate = False
    logging.getLogger("uvicorn.access").disabled = True  # the app logs each request itself


def serve(
    open_runtime: Callable[[], Any],
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    port_file: Optional[str] = None,
    max_body: int = 1 << 20,
    max_group: int = 256,
    admin_token: Optional[str] = None,
    limit_concurrency: Optional[int] = None,
    log_level: str = "info",
    info: Optional[dict[str, Any]] = None,
    graceful_timeout: float = 30.0,
) -> int:
    """Serve until SIGTERM/SIGINT; returns the exit status."""
    import asyncio

    import uvicorn

    configure_logging(log_level)
    log = logging.getLogger("charter.serve")
    worker = RuntimeWorker(open_runtime, max_group=max_group)
    worker.start()  # opens the ledger (refusals surface here, before we listen)
    rt = worker.rt
    ledger_info = {
        "policy": rt.policy.name,
        "version": rt.policy.version,
        "genesis": rt.genesis,
        "params": {k: _show(v) for k, v in sorted(rt.params.items())},
        "clock": rt.clock_policy,
        "max_skew": rt.max_skew,
        "signing": {
            "algorithm": "Ed25519",
            "domain": "charter-event-v1",
            "message": "domain + '\\n' + genesis + '\\n' + canonical JSON of the event "
            "without 'sig'",
        },
        **(info or {}),
    }
    app = create_app(worker, max_body=max_body, admin_token=admin_token, on_shutdown=worker.stop)
    app.state.api.info = ledger_info
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_config=None,
        access_log=False,
        lifespan="on",
        limit_concurrency=limit_concurrency,
        timeout_graceful_shutdown=graceful_timeout,
        server_header=False,
    )
    server = uvicorn.Server(config)

    async def main() -> None:
        task = asyncio.create_task(server.serve())
        while not server.started:
            if task.done():
                break
            await asyncio.sleep(0.02)
        if server.started:
            sock = server.servers[0].sockets[0]
            bound_host, bound_port = sock.getsockname()[:2]
            log.info("listening", extra={"host": bound_host, "port": bound_port, **{
                k: ledger_info[k] for k in ("policy", "genesis", "clock")}})
            if port_file:
                tmp = Path(port_file + ".tmp")
                tmp.write_text(json.dumps({"host": bound_host, "port": bound_port}))
                tmp.replace(port_file)  # readers never see half a file
        await task

    # uvicorn handles SIGTERM/SIGINT while serving, then re-raises the signal to the handler
    # installed before it; this one lets the process finish: log, close, exit 0
    stopped_by: list[int] = []
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda signum, frame: stopped_by.append(signum))
    try:
        asyncio.run(main())
    finally:
        if not worker.stopping:
            worker.stop()
    log.info(
        "stopped",
        extra={"events": worker.events, "commits": worker.groups, "signal": stopped_by[:1]},
    )
    return 0 if server.started else 1


def _show(v: Any) -> Any:
    from charter.runtime.values import to_json_value

    return to_json_value(v)
