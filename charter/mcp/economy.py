"""One economy as an agent sees it: tools from handlers, resources, results, limits.

No MCP SDK here (``server.py`` is the protocol glue), so everything an agent
can do is plain, testable Python:

* :meth:`Economy.tools` - one tool per handler a party may submit (handlers
  only the clock may submit, and timed handlers, are not tools).  The input
  schema is the handler's argument schema from :mod:`charter.compiler.schemas`
  (the same one the AIGrid export publishes) plus an optional idempotency key;
  the description is the handler's doc comment, who may call it and the
  reasons the policy gives for refusing it (its ``require`` messages).
* :meth:`Economy.call` - a tool call becomes an event for the session's party,
  stamped on the runtime's thread with the server's time (never before the
  ledger's last event; an agent cannot give a time), signed with the party's
  key when the server holds one, and submitted through the runtime's one
  event pipeline (the same steps as ``charter run`` and ``charter serve``),
  then made durable before the answer.  The result is the receipt or the
  rejection, as data.
* :meth:`Economy.read` - resources: the rules in plain words, the session's
  own balances and recent history, records, the ledger's identity.

Every failure an agent can cause is a :class:`ToolError` with a code and a
message (never a traceback): unknown tool, arguments that are not an object,
oversized or too deeply nested arguments, a flood (per-session token bucket).
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections import deque
from typing import Any, Callable, Optional

import attrs

from charter.compiler import display, ir
from charter.compiler.schemas import args_schema, auth_text, type_text
from charter.runtime.values import amount_text, canonical_party, preview, show

MAX_ARGS_BYTES = 64 * 1024  # a tool call's arguments as JSON
MAX_DEPTH = 32  # nesting of arguments (no Charter argument nests deeper than a list of lists)
HISTORY = 50  # entries in the history resource
RECORDS = 500  # records listed per kind in a records resource
ID_KEY = "idempotency_key"


class ToolError(Exception):
    """A call the server refuses before it becomes an event (structured for the agent)."""

    def __init__(self, code: str, message: str, **extra: Any):
        super().__init__(message)
        self.code = code
        self.message = message
        self.extra = extra

    def to_dict(self) -> dict[str, Any]:
        return {"applied": False, "code": self.code, "message": self.message, **self.extra}


class RateLimiter:
    """A token bucket: ``burst`` calls at once, refilled at ``rate`` per second."""

    def __init__(self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic):
        self.rate, self.burst, self.clock = rate, burst, clock
        self.tokens = float(burst)
        self.stamp = clock()
        self.lock = threading.Lock()

    def take(self) -> Optional[float]:
        """None if the call may go ahead, else the seconds until it may."""
        with self.lock:
            now = self.clock()
            self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
            self.stamp = now
            if self.tokens >= 1:
                self.tokens -= 1
                return None
            return (1 - self.tokens) / self.rate if self.rate > 0 else float("inf")


@attrs.define
class Session:
    """One agent: the party it acts as (never another), its key, its rate limit."""

    party: str
    key: Any = None  # an Ed25519 private key: events are signed with it
    limiter: Optional[RateLimiter] = None

    @classmethod
    def make(cls, party: Any, key: Any = None, rate: float = 5.0, burst: int = 20) -> "Session":
        p = canonical_party(party, "session party")  # the one canonical form of party ids
        if p == "clock":
            raise ValueError("an agent session cannot act as the clock")
        return cls(p, key, RateLimiter(rate, burst) if rate > 0 else None)


def _requires(stmts: tuple, out: list[str]) -> list[str]:
    for s in stmts:
        if isinstance(s, ir.Require) and s.message and s.message not in out:
            out.append(s.message)
        for name in ("then", "orelse", "body"):
            inner = getattr(s, name, None)
            if isinstance(inner, tuple):
                _requires(inner, out)
    return out


def handler_docs(compilation: Any) -> dict[str, str]:
    """Each declaration's doc comment (the comments right above it), by qualified name."""
    out: dict[str, str] = {}
    sym = getattr(compilation, "symbols", None)
    if sym is None:
        return out
    for table in (sym.handlers, sym.params, sym.records, sym.pools):
        for name, (decl, scope) in table.items():
            doc = scope.module.doc(decl)
            if doc:
                out[name] = doc
    for name, decl in list(sym.assets.items()) + list(sym.roles.items()):
        if sym.root is not None:
            doc = sym.root.module.doc(decl)
            if doc:
                out[name] = doc
    return out


class Economy:
    """The tools and resources of one policy on one ledger.

    ``worker`` runs jobs on the runtime's own thread (:class:`charter.serve.worker.
    RuntimeWorker`); ``docs`` are doc comments by name (:func:`handler_docs`)."""

    def __init__(self, policy: ir.Policy, worker: Any, docs: Optional[dict[str, str]] = None,
                 genesis: str = "", now: Callable[[], float] = time.time):  # fmt: skip
        self.policy = policy
        self.worker = worker
        self.docs = docs or {}
        self.genesis = genesis
        self.now = now
        self.decimals = ir.AssetMap((a.name, a.decimals) for a in policy.assets)
        self.handlers = {
            h.name: h
            for h in policy.handlers
            if h.kind == "event" and not isinstance(h.auth, ir.AuthClock)
        }
        self._tools = {name: self._tool(h) for name, h in self.handlers.items()}

    # ================================================================ tools

    def _tool(self, h: ir.Handler) -> dict[str, Any]:
        schema = args_schema(self.policy, h)
        key = ID_KEY
        while key in schema["properties"]:
            key = "_" + key
        schema["properties"][key] = {
            "type": "string", "minLength": 1, "maxLength": 200,
            "description": "optional: the same key again is the same event (an idempotent "
                           "retry returns the first receipt); leave out for a new event",
        }  # fmt: skip
        lines = [self.docs.get(h.name) or f"Submit the {h.name} event of {self.policy.name}."]
        lines.append(f"Who may call it: {auth_text(self.policy, h)} (you act as yourself).")
        if h.params:
            lines.append(
                "Arguments: "
                + "; ".join(f"{f.name}: {self._field(f)}" for f in h.params)
                + ".  Amounts are strings in asset units (\"12.50\") or integers of minor units."
            )
        reqs = _requires(h.body, [])
        if reqs:
            lines.append(
                "The policy refuses it, saying why, in these cases: "
                + "; ".join(f'"{r}"' for r in reqs) + "."
            )
        return {"name": h.name, "description": "\n".join(lines), "input_schema": schema,
                "id_key": key}  # fmt: skip

    def tools(self) -> list[dict[str, Any]]:
        return [
            {k: v for k, v in t.items() if k != "id_key"} for _, t in sorted(self._tools.items())
        ]

    def check_call(self, session: Session, name: Any, arguments: Any) -> dict[str, Any]:
        """The event a tool call stands for, or a :class:`ToolError` (nothing is submitted)."""
        if session.limiter is not None:
            wait = session.limiter.take()
            if wait is not None:
                raise ToolError(
                    "rate_limited",
                    f"too many calls from this session; retry in {wait:.1f} s",
                    retry_after=round(wait, 3),
                )
        tool = self._tools.get(name) if isinstance(name, str) else None
        if tool is None:
            known = ", ".join(sorted(self._tools)) or "none"
            raise ToolError("unknown_tool", f"no tool {preview(name)} (tools: {known})")
        if arguments is None:
            arguments = {}
        if not isinstance(arguments, dict):
            raise ToolError("bad_arguments", f"arguments must be an object, got {preview(arguments)}")
        try:
            size = len(json.dumps(arguments, ensure_ascii=False).encode("utf-8", "surrogatepass"))
        except (ValueError, TypeError, RecursionError):
            raise ToolError("bad_arguments", "arguments are not JSON (or nest too deeply)") from None
        if size > MAX_ARGS_BYTES:
            raise ToolError(
                "too_large", f"arguments are {size} bytes; at most {MAX_ARGS_BYTES} are accepted"
            )
        if _depth(arguments) > MAX_DEPTH:
            raise ToolError("bad_arguments", f"arguments nest deeper than {MAX_DEPTH} levels")
        args = dict(arguments)
        key = args.pop(tool["id_key"], None)
        if key is not None and not (isinstance(key, str) and 0 < len(key) <= 200):
            raise ToolError("bad_arguments", f"{tool['id_key']}: expected text of 1..200 characters")
        event_id = f"mcp:{session.party}:{key}" if key is not None else f"mcp:{uuid.uuid4().hex}"
        return {"id": event_id, "type": name, "submitter": session.party, "args": args}

    def stamp(self, rt: Any, session: Session, event: dict[str, Any]) -> dict[str, Any]:
        """The event with the server's time (never before the ledger's last event), signed
        with the session's key if it has one.  Runs on the runtime's thread, just before
        the event is submitted, so the signed time is the journalled time."""
        last = rt.clock if rt.clock is not None else 0
        t = max(int(self.now()), last)
        if event["id"] in rt.applied_ids:
            # a retry (same idempotency key): the time it was stamped with the first time, so
            # the same call is the same event (an idempotent no-op), whenever it is retried
            row = rt.applied_entry(event["id"])
            if row is not None:
                t = row.data()["event"].get("time", t)
        event = dict(event, time=t)
        if session.key is not None:
            from charter.runtime import signing

            try:
                event = signing.sign_event(event, session.key, self.genesis or rt.genesis)
            except signing.SigningError as exc:
                raise ToolError("bad_arguments", f"cannot sign these arguments: {exc}") from None
        return event

    def settle(self, rt: Any, session: Session, event: dict[str, Any]) -> dict[str, Any]:
        try:
            stamped = self.stamp(rt, session, event)
        except ToolError as err:
            return err.to_dict()
        out = rt.submit(stamped)
        rt.flush()  # answered only once durable
        return self.outcome(out)

    async def call(self, session: Session, name: Any, arguments: Any) -> dict[str, Any]:
        """Run a tool call: the receipt or rejection as data (``applied`` says which)."""
        try:
            event = self.check_call(session, name, arguments)
        except ToolError as err:
            return err.to_dict()
        return await self.worker.run(lambda rt: self.settle(rt, session, event))

    def outcome(self, out: Any) -> dict[str, Any]:
        if not out.applied:
            d = {"applied": False, "event_id": out.event_id, "code": out.code,
                 "message": out.message}  # fmt: skip
            if out.span is not None and out.span != ir.NOSPAN:
                d["where"] = f"{out.span.file.rpartition('/')[2]} line {out.span.line}"
            return d
        return {
            "applied": True,
            "duplicate": bool(out.duplicate),
            "event_id": out.event_id,
            "seq": out.tx,
            "journal_hash": out.journal_hash,
            "postings": [self.posting(p) for p in out.postings],
            "timers": list(out.timers),
            "flags": list(out.flags),
        }

    def posting(self, p: Any) -> dict[str, Any]:
        return {"from": p.src, "to": p.dst, "amount": self.amount(p.amount, p.asset),
                "kind": p.kind}  # fmt: skip

    def amount(self, minor: int, asset: str) -> str:
        return amount_text(minor, self.decimals.get(asset, 0), asset)

    # ================================================================ resources

    RESOURCES = (
        ("charter://rules", "rules", "The economy's rules in plain words", "text/markdown"),
        ("charter://me/balances", "my balances", "Your balances and stakes", "application/json"),
        ("charter://me/history", "my history", f"Your last {HISTORY} ledger entries",
         "application/json"),
        ("charter://ledger", "ledger", "Which ledger this is, its clock, and who you are",
         "application/json"),
    )  # fmt: skip

    def resources(self) -> list[dict[str, Any]]:
        out = [{"uri": u, "name": n, "description": d, "mime_type": m} for u, n, d, m in self.RESOURCES]
        for r in self.policy.records:
            out.append({
                "uri": f"charter://records/{r.name}", "name": f"{r.name} records",
                "description": f"Live {r.name} records (the first {RECORDS} by key)",
                "mime_type": "application/json",
            })  # fmt: skip
        return out

    async def read(self, session: Session, uri: Any) -> tuple[str, str]:
        """(mime type, text) of a resource, or a :class:`ToolError`."""
        if uri == "charter://rules":
            return "text/markdown", self.rules()
        if uri == "charter://ledger":
            return "application/json", _dump(await self.worker.run(lambda rt: self._ledger(rt, session)))
        if uri == "charter://me/balances":
            return "application/json", _dump(await self.worker.run(lambda rt: self._balances(rt, session)))
        if uri == "charter://me/history":
            return "application/json", _dump(await self.worker.run(lambda rt: self._history(rt, session)))
        if isinstance(uri, str) and uri.startswith("charter://records/"):
            name = uri[len("charter://records/"):]
            if any(r.name == name for r in self.policy.records):
                return "application/json", _dump(await self.worker.run(lambda rt: self._records(rt, name)))
        raise ToolError("unknown_resource", f"no resource {preview(uri)}")

    def _ledger(self, rt: Any, session: Session) -> dict[str, Any]:
        return {
            "policy": rt.policy.name, "version": rt.policy.version, "genesis": rt.genesis,
            "entries": rt.seq, "clock": rt.clock, "server_time": int(self.now()),
            "you": session.party,
            "your_roles": sorted(r for r, m in rt.state.roles.items() if session.party in m),
            "signing": session.key is not None,
        }  # fmt: skip

    def _balances(self, rt: Any, session: Session) -> dict[str, Any]:
        p = session.party
        own, stakes = {}, {}
        for acc, bal in sorted(rt.state.balances.items()):
            kind, _, rest = acc.partition(":")
            party, _, asset = rest.rpartition(":")
            if party == p and kind in ("party", "stake"):
                (own if kind == "party" else stakes)[asset] = self.amount(bal, asset)
        return {"party": p, "balances": own, "stakes": stakes}

    def _history(self, rt: Any, session: Session) -> dict[str, Any]:
        p = session.party
        mine: deque = deque(maxlen=HISTORY)
        rt.flush()
        for row in rt.store.journal():
            data = row.data()
            ev = data["event"]
            touched = [q for q in data["postings"] if _party_of(q[0]) == p or _party_of(q[1]) == p]
            if ev.get("submitter") == p or touched:
                mine.append({
                    "seq": row.seq, "event": {k: ev.get(k) for k in ("id", "type", "submitter",
                                                                     "time", "args")},
                    "postings": [self.posting(_P(*q)) for q in touched],
                })  # fmt: skip
        return {"party": p, "entries": list(mine)}

    def _records(self, rt: Any, name: str) -> dict[str, Any]:
        recs = rt.state.records[name]
        keys = sorted(recs)[:RECORDS]
        types = {f.name: f.type for f in self.policy.record(name).fields}
        return {
            "record": name, "count": len(recs),
            "records": {k: {f: self._value(v, types.get(f)) for f, v in recs[k].items()}
                        for k in keys},
        }  # fmt: skip

    def _value(self, v: Any, t: Any) -> Any:
        if isinstance(t, ir.TOptional):
            t = t.inner
        if isinstance(t, ir.TAmount) and isinstance(v, int):
            return self.amount(v, t.asset)
        if isinstance(v, (int, str, bool)) or v is None:
            return v
        return show(v)

    # ---------------------------------------------------------------- rules in plain words

    def rules(self) -> str:
        pol, docs = self.policy, self.docs
        out = [f"# {pol.name} {pol.version}", ""]
        if docs.get(pol.name):
            out += [docs[pol.name], ""]
        out += ["Every amount is exact (integers of each asset's smallest unit).  An event "
                "applies completely or not at all; a refused event changes nothing.", ""]
        out += ["## Assets", ""]
        for a in pol.assets:
            traits = [a.kind, f"{a.decimals} decimals"] + [
                t for t, on in (("mintable", a.mintable), ("burnable", a.burnable)) if on
            ]
            if a.cap is not None:
                traits.append(f"supply capped at {self.amount(a.cap, a.name)}")
            if a.decay is not None:
                traits.append(f"decays {display.ratio(a.decay)} per decay step")
            out.append(f"- **{a.name}**: {', '.join(traits)}" + _doc(docs.get(a.name)))
        if pol.roles:
            out += ["", "## Roles", ""]
            out += [f"- **{r.name}**" + _doc(docs.get(r.name)) for r in pol.roles]
        if pol.params:
            out += ["", "## Parameters", ""]
            for p in pol.params:
                rng = ""
                if p.lo is not None or p.hi is not None:
                    rng = f" (allowed {display.value_range(p.lo, p.hi, p.type, pol)})"
                value = display.value(p.default, p.type, pol)
                out.append(f"- **{p.name}** = {value}{rng}" + _doc(docs.get(p.name)))
        if pol.pools:
            out += ["", "## Pools", ""]
            out += [f"- **{p.name}** holds {p.asset}" + _doc(docs.get(p.name)) for p in pol.pools]
        if pol.records:
            out += ["", "## Records", ""]
            for r in pol.records:
                fields = ", ".join(f"{f.name}: {type_text(f.type)}" for f in r.fields)
                out.append(f"- **{r.name}** {{{fields}}}" + _doc(docs.get(r.name)))
        out += ["", "## What you can do (tools)", ""]
        for name, t in sorted(self._tools.items()):
            out += [f"### {name}", "", t["description"], ""]
        timed = [h for h in pol.handlers if h.kind != "event" or isinstance(h.auth, ir.AuthClock)]
        if timed:
            out += ["## What happens by itself (the clock)", ""]
            for h in timed:
                when = (
                    f"every {h.period} s" if h.kind == "every"
                    else f"when a {h.record}'s {h.field} passes" if h.kind == "deadline"
                    else "when the operator's clock submits it"
                )  # fmt: skip
                out.append(f"- **{h.name}** ({when})" + _doc(docs.get(h.name)))
        return "\n".join(out) + "\n"

    def _field(self, f: ir.Field) -> str:
        text = type_text(f.type)
        if (f.lo is not None or f.hi is not None) and not (
            isinstance(f.type, ir.TInt) and (f.type.lo, f.type.hi) == (f.lo, f.hi)
        ):
            text += f" within {display.value_range(f.lo, f.hi, f.type, self.policy)}"
        return text


class _P:
    def __init__(self, src: str, dst: str, asset: str, amount: int, kind: str):
        self.src, self.dst, self.asset, self.amount, self.kind = src, dst, asset, amount, kind


def _party_of(acc: str) -> Optional[str]:
    kind, _, rest = acc.partition(":")
    if kind not in ("party", "stake"):
        return None
    return rest.rpartition(":")[0]


def _doc(text: Optional[str]) -> str:
    return f": {text}" if text else ""


def _depth(v: Any, limit: int = MAX_DEPTH + 1) -> int:
    """Nesting depth of lists and objects (stops counting past ``limit``)."""
    depth, level = 0, [v]
    while level and depth <= limit:
        nxt = []
        for x in level:
            if isinstance(x, dict):
                nxt.extend(x.values())
            elif isinstance(x, list):
                nxt.extend(x)
        if not nxt and not any(isinstance(x, (dict, list)) for x in level):
            break
        depth += 1
        level = nxt
    return depth


def _dump(data: Any) -> str:
    return json.dumps(data, indent=2, ensure_ascii=False, sort_keys=False, default=str)
