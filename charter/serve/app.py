"""The HTTP JSON API of ``charter serve``: a Starlette application over one runtime.

Routes (all JSON; the OpenAPI document is at ``/openapi.json``):

==========================  =====================================================
``POST /v1/events``         submit one event: 201 receipt, 200 the original
                            receipt of a resubmitted event (``duplicate``),
                            4xx a rejection with the library's code
``GET /v1/balances``        balances (``?account=``, ``?party=``, ``?include_zero=``)
``GET /v1/records/{name}``  a record type's live records
``GET /v1/members/{role}``  a role's members
``GET /v1/history``         journal entries, paged (``?after=SEQ&limit=N&account=``)
``GET /v1/keys[/{party}]``  the signing-key registry
``POST /v1/keys``           operator key changes (needs ``--admin-token``)
``GET /v1/audit``           re-verify chain, balances and every signature
``GET /v1/ledger``          policy, genesis hash (what clients sign for), clock
``GET /v1/health``          liveness and readiness (503 while stopping/broken)
==========================  =====================================================

Status codes are a table (:data:`STATUS`) from the runtime's rejection
codes; a request the server cannot even read is 400 (``bad_json``), 413
(``too_large``) or 415 (``bad_content_type``); nothing a client sends
yields a 500 or a traceback.  A failed store is 503 (``store_unavailable``)
and nothing in flight is acknowledged.
"""

from __future__ import annotations

import contextlib
import hmac
import json
import logging
import time
import uuid
from typing import Any, AsyncIterator, Optional

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .openapi import openapi_document
from .worker import Busy, RuntimeWorker

log = logging.getLogger("charter.serve")

MAX_DEPTH = 64  # nesting of a request body (arrays and objects)
HISTORY_MAX = 1000  # entries per history page

# rejection code -> HTTP status (anything else a policy rejects with is 422)
STATUS = {
    "bad_json": 400,
    "bad_query": 400,
    "bad_envelope": 422,
    "bad_party": 422,
    "unknown_event": 422,
    "unknown_argument": 422,
    "missing_argument": 422,
    "bad_argument": 422,
    "time_skew": 422,
    "time_regressed": 409,
    "unsigned": 401,
    "bad_signature": 401,
    "unknown_key": 401,
    "key_retired": 401,
    "key_revoked": 401,
    "unauthorised": 403,
    "id_conflict": 409,
    "dissolved": 410,
    "too_large": 413,
    "bad_content_type": 415,
    "runtime_error": 500,  # a bug in Charter, never the client's fault (the fuzzers hunt it)
    "store_unavailable": 503,
    "shutting_down": 503,
}


class BadRequest(Exception):
    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


def _error(code: str, message: str, status: Optional[int] = None, **extra: Any) -> JSONResponse:
    body = {"applied": False, "event_id": None, "code": code, "message": message, **extra}
    return JSONResponse(body, status_code=status or STATUS.get(code, 422))


def _no_duplicate_keys(pairs: list) -> dict:
    out = dict(pairs)
    if len(out) != len(pairs):
        seen: set = set()
        for k, _ in pairs:
            if k in seen:
                raise ValueError(f"duplicate object key {k[:40]!r}")
            seen.add(k)
    return out


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _depth(v: Any) -> int:
    """Nesting depth, iteratively (a deep body must not recurse here either)."""
    deepest = 0
    stack = [(v, 1)]
    while stack:
        x, d = stack.pop()
        if isinstance(x, (list, dict)):
            if d > deepest:
                deepest = d
                if deepest > MAX_DEPTH:
                    return deepest
            stack.extend((y, d + 1) for y in (x.values() if isinstance(x, dict) else x))
    return deepest


def parse_json(raw: bytes) -> Any:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadRequest("bad_json", f"the body is not UTF-8 (byte {exc.start})") from None
    if text.startswith("\ufeff"):
        raise BadRequest("bad_json", "the body starts with a byte-order mark")
    try:
        data = json.loads(text, object_pairs_hook=_no_duplicate_keys, parse_constant=_no_constant)
    except RecursionError:
        raise BadRequest("bad_json", f"the body is nested more than {MAX_DEPTH} levels") from None
    except ValueError as exc:  # JSONDecodeError, 4,300+ digit numbers, duplicate keys, NaN
        raise BadRequest("bad_json", f"the body is not JSON: {str(exc)[:200]}") from None
    if _depth(data) > MAX_DEPTH:
        raise BadRequest("bad_json", f"the body is nested more than {MAX_DEPTH} levels")
    return data


class Api:
    """The routes, bound to a worker and the server's limits."""

    def __init__(self, worker: RuntimeWorker, max_body: int, admin_token: Optional[str]):
        self.worker = worker
        self.max_body = max_body
        self.admin_token = admin_token
        self.info: dict[str, Any] = {}

    # ---------------------------------------------------------------- plumbing

    async def body(self, request: Request) -> Any:
        ctype = request.headers.get("content-type")
        if ctype is not None:
            mt = ctype.split(";")[0].strip().lower()
            if mt != "application/json" and not mt.endswith("+json"):
                raise BadRequest("bad_content_type", f"send application/json, not {mt[:60]!r}")
        length = request.headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > self.max_body:
            raise BadRequest("too_large", f"the body is over {self.max_body} bytes")
        chunks = []
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > self.max_body:
                raise BadRequest("too_large", f"the body is over {self.max_body} bytes")
            chunks.append(chunk)
        return parse_json(b"".join(chunks))

    @staticmethod
    def query_int(request: Request, name: str, default: int, lo: int, hi: int) -> int:
        raw = request.query_params.get(name)
        if raw is None:
            return default
        if not (raw.isascii() and raw.isdigit() and len(raw) <= 19) or not lo <= int(raw) <= hi:
            raise BadRequest("bad_query", f"'{name}' must be an integer {lo}..{hi}, got {raw[:40]!r}")
        return int(raw)

    # ---------------------------------------------------------------- routes

    async def submit(self, request: Request) -> Response:
        event = await self.body(request)
        out = await self.worker.submit(event)
        request.state.event_id = out.event_id if isinstance(out.event_id, str) else None
        body = out.to_dict()
        if out.applied:
            return JSONResponse(body, status_code=200 if out.duplicate else 201)
        request.state.code = out.code
        return JSONResponse(body, status_code=STATUS.get(out.code, 422))

    async def balances(self, request: Request) -> Response:
        account = request.query_params.get("account")
        party = request.query_params.get("party")
        zero = request.query_params.get("include_zero", "false").lower() in ("1", "true", "yes")

        def read(rt: Any) -> dict:
            _refresh(rt)
            bal = rt.balances(include_zero=zero)
            if account is not None:
                bal = {account: rt.state.balances.get(account, 0)}
            elif party is not None:
                pre = f"party:{party}:"
                bal = {a: b for a, b in bal.items() if a.startswith(pre)}
            return {"balances": bal, "seq": rt.seq}

        return JSONResponse(await self.worker.run(read))

    async def records(self, request: Request) -> Response:
        name = request.path_params["name"]

        def read(rt: Any) -> Any:
            _refresh(rt)
            if name not in rt.state.records:
                return None
            from charter.runtime.values import to_json_value

            return {"records": to_json_value(rt.records(name)), "seq": rt.seq}

        out = await self.worker.run(read)
        if out is None:
            return _error("not_found", f"no record type {name[:80]!r} in this policy", 404)
        return JSONResponse(out)

    async def members(self, request: Request) -> Response:
        role = request.path_params["role"]

        def read(rt: Any) -> Any:
            _refresh(rt)
            if role not in rt.state.roles:
                return None
            from charter.runtime.values import to_json_value

            return {"members": to_json_value(rt.members(role)), "seq": rt.seq}

        out = await self.worker.run(read)
        if out is None:
            return _error("not_found", f"no role {role[:80]!r} in this policy", 404)
        return JSONResponse(out)

    async def history(self, request: Request) -> Response:
        after = self.query_int(request, "after", 0, 0, 2**63 - 1)
        limit = self.query_int(request, "limit", 100, 1, HISTORY_MAX)
        account = request.query_params.get("account")

        def read(rt: Any) -> dict:
            from charter.runtime.ledger import Posting

            _refresh(rt)
            rows = _journal_page(rt.store, after, limit + 1)
            more = len(rows) > limit
            rows = rows[:limit]
            out = []
            for row in rows:
                data = row.data()
                ps = data["postings"]
                if account is not None:
                    ps = [p for p in ps if account in (p[0], p[1])]
                    if not ps:
                        continue
                out.append(
                    {
                        "seq": row.seq,
                        "event": data["event"],
                        "hash": row.hash,
                        "postings": [Posting(*p).to_dict() for p in ps],
                        "timers": data["timers"],
                        "flags": data["flags"],
                    }
                )
            # with ?account= a page may hold fewer entries (even none): follow next_after
            return {"entries": out, "next_after": rows[-1].seq if more else None, "seq": rt.seq}

        return JSONResponse(await self.worker.run(read))

    async def keys(self, request: Request) -> Response:
        party = request.path_params.get("party")
        def read(rt: Any) -> dict:
            _refresh(rt)
            return rt.keys(party)

        return JSONResponse({"keys": await self.worker.run(read)})

    async def change_key(self, request: Request) -> Response:
        if not self.admin_token:
            return _error(
                "forbidden",
                "operator key changes over HTTP are off (start the server with --admin-token-file)",
                403,
            )
        auth = request.headers.get("authorization", "")
        given = auth[7:] if auth.lower().startswith("bearer ") else ""
        if not hmac.compare_digest(given.encode(), self.admin_token.encode()):
            return _error("unauthorised", "a valid 'Authorization: Bearer <admin token>' is needed", 401)
        body = await self.body(request)
        if not isinstance(body, dict) or not set(body) <= {"op", "party", "key", "id"}:
            return _error("bad_envelope", 'expected {"op", "party", "key"?, "id"?}')
        op, party, key, eid = body.get("op"), body.get("party"), body.get("key"), body.get("id")
        if not isinstance(op, str) or not isinstance(party, str):
            return _error("bad_envelope", "'op' and 'party' are text")
        out = await self.worker.run(lambda rt: _register(rt, op, party, key, eid))
        body = out.to_dict()
        if out.applied:
            return JSONResponse(body, status_code=200 if out.duplicate else 201)
        return JSONResponse(body, status_code=STATUS.get(out.code, 422))

    async def audit(self, request: Request) -> Response:
        rep = await self.worker.run(lambda rt: rt.audit())
        return JSONResponse(rep.to_dict(), status_code=200)

    async def ledger(self, request: Request) -> Response:
        return JSONResponse(self.info)

    async def health(self, request: Request) -> Response:
        if self.worker.stopping:
            return JSONResponse({"status": "stopping"}, status_code=503)

        def read(rt: Any) -> dict:
            if rt.broken is None:
                _refresh(rt)
            return {"broken": rt.broken, "seq": rt.seq, "head": rt.head, "clock": rt.clock}

        st = await self.worker.run(read)
        ok = st["broken"] is None
        return JSONResponse(
            {"status": "ok" if ok else "broken", **st}, status_code=200 if ok else 503
        )

    async def openapi(self, request: Request) -> Response:
        return JSONResponse(openapi_document())


def _journal_page(store: Any, after: int, limit: int) -> list:
    """Journal rows after ``after``: the store's indexed page read, or a scan (memory store)."""
    page = getattr(store, "journal_page", None)
    if page is not None:
        return page(after, limit)
    out = []
    for row in store.journal():
        if row.seq > after:
            out.append(row)
            if len(out) == limit:
                break
    return out


def _refresh(rt: Any) -> None:
    """Catch up with other processes' commits first (a shared PostgreSQL ledger; no-op else)."""
    refresh = getattr(rt, "refresh", None)
    if refresh is not None:
        refresh()


def _register(rt: Any, op: str, party: str, key: Any, eid: Any) -> Any:
    from charter.runtime.settle import Rejection

    if eid is not None and not isinstance(eid, str):
        return Rejection(None, "bad_envelope", "'id' is text")
    if key is not None and not isinstance(key, str):
        return Rejection(eid, "bad_argument", "'key' is hex text")
    return rt.register_key(op, party, key, event_id=eid)


def create_app(
    worker: RuntimeWorker,
    *,
    max_body: int = 1 << 20,
    admin_token: Optional[str] = None,
    on_shutdown: Any = None,
) -> Starlette:
    api = Api(worker, max_body, admin_token)

    def wrap(fn: Any) -> Any:
        async def endpoint(request: Request) -> Response:
            start = time.perf_counter()
            rid = request.headers.get("x-request-id") or uuid.uuid4().hex[:16]
            rid = rid[:64] if rid.isascii() and rid.isprintable() else uuid.uuid4().hex[:16]
            request.state.event_id = None
            request.state.code = None
            try:
                resp = await fn(request)
            except BadRequest as exc:
                request.state.code = exc.code
                resp = _error(exc.code, exc.message)
            except Busy as exc:
                request.state.code = "shutting_down"
                resp = _error("shutting_down", str(exc))
            except Exception as exc:  # noqa: BLE001 - a store failure or a bug: never a traceback
                from charter.runtime.store import StoreError

                if isinstance(exc, StoreError):
                    request.state.code = "store_unavailable"
                    resp = _error("store_unavailable", f"the ledger's store failed: {exc}")
                else:
                    request.state.code = "internal_error"
                    log.exception("internal error", extra={"request_id": rid})
                    resp = _error(
                        "internal_error", f"internal error (request {rid}; see the server log)", 500
                    )
            resp.headers["x-request-id"] = rid
            log.info(
                "request",
                extra={
                    "request_id": rid,
                    "method": request.method,
                    "path": request.url.path,
                    "status": resp.status_code,
                    "ms": round((time.perf_counter() - start) * 1000, 3),
                    "event_id": request.state.event_id,
                    "code": request.state.code,
                },
            )
            return resp

        return endpoint

    routes = [
        Route("/v1/events", wrap(api.submit), methods=["POST"]),
        Route("/v1/balances", wrap(api.balances), methods=["GET"]),
        Route("/v1/records/{name}", wrap(api.records), methods=["GET"]),
        Route("/v1/members/{role}", wrap(api.members), methods=["GET"]),
        Route("/v1/history", wrap(api.history), methods=["GET"]),
        Route("/v1/keys", wrap(api.keys), methods=["GET"]),
        Route("/v1/keys", wrap(api.change_key), methods=["POST"]),
        Route("/v1/keys/{party}", wrap(api.keys), methods=["GET"]),
        Route("/v1/audit", wrap(api.audit), methods=["GET"]),
        Route("/v1/ledger", wrap(api.ledger), methods=["GET"]),
        Route("/v1/health", wrap(api.health), methods=["GET"]),
        Route("/openapi.json", wrap(api.openapi), methods=["GET"]),
    ]

    async def http_error(request: Request, exc: Exception) -> Response:
        code = getattr(exc, "status_code", 500)
        name = {404: "not_found", 405: "method_not_allowed"}.get(code, "http_error")
        return _error(name, str(getattr(exc, "detail", "")) or name, code)

    async def server_error(request: Request, exc: Exception) -> Response:
        log.exception("internal error")
        return _error("internal_error", "internal error (see the server log)", 500)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        if on_shutdown is not None:  # after uvicorn has finished the requests in flight
            on_shutdown()

    app = Starlette(
        routes=routes,
        exception_handlers={HTTPException: http_error, Exception: server_error},
        lifespan=lifespan,
    )
    app.state.api = api
    return app
