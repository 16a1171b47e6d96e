"""The OpenAPI 3.1 document of ``charter serve`` (served at ``/openapi.json``).

Written out rather than generated: the request body of ``POST /v1/events``
is any JSON (the runtime, not a schema validator, decides what is wrong
with it and says so with a rejection code), and the document is the
contract a client in any language codes against.  ``tests/serve`` checks
that its paths are exactly the server's routes.
"""

from __future__ import annotations

from typing import Any

from charter import __version__

_J = "application/json"


def _ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def _resp(desc: str, schema: str) -> dict:
    return {"description": desc, "content": {_J: {"schema": _ref(schema)}}}


_ERR = {
    "400": _resp("Unreadable body or query (code bad_json, bad_query)", "Rejection"),
    "413": _resp("Body over the server's --max-body (code too_large)", "Rejection"),
    "415": _resp("Content-Type is not JSON (code bad_content_type)", "Rejection"),
    "503": _resp("Shutting down, or the store failed (nothing acknowledged)", "Rejection"),
}

_SCHEMAS: dict[str, Any] = {
    "Event": {
        "type": "object",
        "description": "One event. Amounts are text in major units ('12.50') or integers in "
        "minor units. Under clock=system the server stamps the time; a submitted 'time' more "
        "than max_skew seconds off is refused (time_skew). Signed events carry 'time'.",
        "required": ["id", "type", "submitter"],
        "properties": {
            "id": {"type": "string", "maxLength": 256, "description": "Idempotency key."},
            "type": {"type": "string"},
            "submitter": {"type": "string", "description": "Canonical party id."},
            "time": {"type": "integer", "minimum": 0},
            "args": {"type": "object"},
            "sig": _ref("Signature"),
        },
        "additionalProperties": False,
    },
    "Signature": {
        "type": "object",
        "description": "Ed25519 over 'charter-event-v1\\n' + genesis + '\\n' + canonical JSON "
        "of the event without 'sig' (see docs/deployment.rst).",
        "required": ["key", "value"],
        "properties": {
            "key": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
            "value": {"type": "string", "pattern": "^[0-9a-f]{128}$"},
        },
        "additionalProperties": False,
    },
    "Posting": {
        "type": "object",
        "properties": {
            "from": {"type": "string"},
            "to": {"type": "string"},
            "asset": {"type": "string"},
            "amount": {"type": "integer"},
            "kind": {"type": "string"},
        },
    },
    "Receipt": {
        "type": "object",
        "required": ["applied", "event_id", "tx", "postings", "journal_hash"],
        "properties": {
            "applied": {"const": True},
            "event_id": {"type": "string"},
            "tx": {"type": "integer", "description": "Journal sequence number."},
            "postings": {"type": "array", "items": _ref("Posting")},
            "journal_hash": {"type": "string"},
            "flags": {"type": "array"},
            "timers": {"type": "array"},
            "duplicate": {"type": "boolean"},
        },
    },
    "Rejection": {
        "type": "object",
        "required": ["applied", "code", "message"],
        "properties": {
            "applied": {"const": False},
            "event_id": {"type": ["string", "null"]},
            "code": {"type": "string", "description": "The runtime's rejection code."},
            "message": {"type": "string"},
            "span": {"type": "object"},
        },
    },
    "Balances": {
        "type": "object",
        "properties": {
            "balances": {"type": "object", "additionalProperties": {"type": "integer"}},
            "seq": {"type": "integer"},
        },
    },
    "HistoryPage": {
        "type": "object",
        "properties": {
            "entries": {"type": "array", "items": {"type": "object"}},
            "next_after": {"type": ["integer", "null"]},
            "seq": {"type": "integer"},
        },
    },
    "Audit": {
        "type": "object",
        "properties": {
            "ok": {"type": "boolean"},
            "entries": {"type": "integer"},
            "head": {"type": "string"},
            "problems": {"type": "array", "items": {"type": "string"}},
            "balances_checked": {"type": "integer"},
            "signatures": {"type": "integer"},
        },
    },
    "Ledger": {"type": "object"},
    "Records": {"type": "object"},
    "Health": {"type": "object"},
    "Keys": {"type": "object"},
    "KeyChange": {
        "type": "object",
        "required": ["op", "party"],
        "properties": {
            "op": {"enum": ["add", "rotate", "revoke"]},
            "party": {"type": "string"},
            "key": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
            "id": {"type": "string"},
        },
    },
}


def _get(summary: str, schema: str, params: tuple = (), extra: dict | None = None) -> dict:
    op: dict[str, Any] = {"summary": summary, "responses": {"200": _resp("OK", schema), **_ERR}}
    if params:
        op["parameters"] = [
            {"name": n, "in": where, "required": where == "path", "schema": {"type": t}}
            for n, where, t in params
        ]
    op["responses"].update(extra or {})
    return {"get": op}


def openapi_document() -> dict[str, Any]:
    submit = {
        "summary": "Submit one event",
        "requestBody": {"required": True, "content": {_J: {"schema": _ref("Event")}}},
        "responses": {
            "201": _resp("Applied and committed (durable before this response)", "Receipt"),
            "200": _resp("Already applied (same id, same content): the original receipt", "Receipt"),
            "401": _resp("Signature missing or wrong (unsigned, bad_signature, ...)", "Rejection"),
            "403": _resp("The submitter may not submit this event (unauthorised)", "Rejection"),
            "409": _resp("id_conflict: the id was applied to a different event", "Rejection"),
            "410": _resp("The policy is dissolved", "Rejection"),
            "422": _resp("Rejected by the envelope, arguments or the policy", "Rejection"),
            **_ERR,
        },
    }
    keys_post = {
        "summary": "Operator key change (add, rotate, revoke); needs the admin bearer token",
        "security": [{"admin": []}],
        "requestBody": {"required": True, "content": {_J: {"schema": _ref("KeyChange")}}},
        "responses": {
            "201": _resp("Journalled", "Receipt"),
            "401": _resp("No or wrong admin token", "Rejection"),
            "403": _resp("Key changes over HTTP are off", "Rejection"),
            "422": _resp("Refused (key_exists, key_in_use, no_key, ...)", "Rejection"),
            **_ERR,
        },
    }
    return {
        "openapi": "3.1.0",
        "info": {"title": "Charter ledger", "version": __version__},
        "paths": {
            "/v1/events": {"post": submit},
            "/v1/balances": _get(
                "Balances", "Balances",
                (("account", "query", "string"), ("party", "query", "string"),
                 ("include_zero", "query", "boolean")),
            ),  # fmt: skip
            "/v1/records/{name}": _get(
                "A record type's live records", "Records", (("name", "path", "string"),),
                {"404": _resp("No such record type", "Rejection")},
            ),
            "/v1/members/{role}": _get(
                "A role's members", "Records", (("role", "path", "string"),),
                {"404": _resp("No such role", "Rejection")},
            ),
            "/v1/history": _get(
                "Journal entries, oldest first, paged", "HistoryPage",
                (("after", "query", "integer"), ("limit", "query", "integer"),
                 ("account", "query", "string")),
            ),  # fmt: skip
            "/v1/keys": {**_get("The key registry", "Keys"), "post": keys_post},
            "/v1/keys/{party}": _get("A party's keys", "Keys", (("party", "path", "string"),)),
            "/v1/audit": _get("Re-verify chain, balances and signatures", "Audit"),
            "/v1/ledger": _get("Policy, genesis hash (signed over), clock policy", "Ledger"),
            "/v1/health": _get(
                "Health", "Health", (), {"503": _resp("Stopping or broken", "Health")}
            ),
            "/openapi.json": _get("This document", "Ledger"),
        },
        "components": {
            "schemas": _SCHEMAS,
            "securitySchemes": {"admin": {"type": "http", "scheme": "bearer"}},
        },
    }
