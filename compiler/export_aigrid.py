"""Export a policy as an AIGrid policy rule: a code bundle and its PolicyRule document.

AIGrid's policy system runs a policy as a dynamically loaded Python class,
``AIOSv1PolicyRule`` in ``code/function.py`` of a zip bundle, onboarded by a
PolicyRule JSON document (name, version, release_tag, code URL, type
``python_class_v1`` and JSON schemas of its input, output, settings,
parameters and management commands).  :func:`export` writes both:

* ``NAME-VERSION.zip``: ``code/function.py`` (a few lines binding the
  bundled policy to :class:`PolicyRuleAdapter`, defined in this module),
  ``code/requirements.txt`` pinning the exporting Charter version,
  ``code/policy/`` with the policy source and every file it imports, and
  ``code/charter-bundle.json`` recording the source hash;
* ``NAME-VERSION.policy.json``: the PolicyRule document, with every schema
  generated from the compiled policy.

The bundle is deterministic: exporting the same policy twice gives
byte-identical files (sorted entries, fixed timestamps).
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import threading
import zipfile
from fractions import Fraction
from pathlib import Path
from typing import Any, Optional

import attrs

from . import ir
from .pipeline import Compilation

# the JSON Schemas of Charter values, shared with `charter mcp`'s tools (one place: schemas.py)
from .schemas import (  # noqa: F401 - re-exported: callers import them from here too
    SCHEMA_DIALECT, args_schema, auth_text, events, expr_text, json_value, type_schema,
    type_text, _show,
)
POLICY_TYPE = "python_class_v1"
DEFAULT_RELEASE_TAG = "stable"
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)
TICK = "@tick"  # the runtime's explicit clock event (charter.runtime.engine.TICK)


class ExportError(Exception):
    """The policy cannot be exported (it has errors, or its imports cannot be bundled)."""


def charter_version() -> str:
    from charter import __version__

    return __version__


# --------------------------------------------------------------------------
# JSON values and schemas of Charter types


def _submitter_schema(policy: ir.Policy, h: ir.Handler) -> dict[str, Any]:
    a = h.auth
    if isinstance(a, ir.AuthClock):
        # Authorisation is the runtime's decision (an unauthorised event is a
        # rejection with a reason), so the schema states it without enforcing it.
        return {"type": "string", "minLength": 1, "examples": ["clock"],
                "description": 'only "clock" may submit this event'}
    s: dict[str, Any] = {"type": "string", "minLength": 1, "description": auth_text(policy, h)}
    if isinstance(a, ir.AuthRole) and a.role:
        s["x-charter-role"] = a.role
    return s


def input_schema(policy: ir.Policy) -> dict[str, Any]:
    """JSON Schema of ``eval``'s ``input_data``: one event, discriminated by ``type``."""
    evs = events(policy)
    variants = []
    for h in evs:
        variants.append({
            "title": h.name,
            "properties": {
                "type": {"const": h.name},
                "submitter": _submitter_schema(policy, h),
                "args": args_schema(policy, h),
            },
        })
    schema: dict[str, Any] = {
        "$schema": SCHEMA_DIALECT,
        "title": f"{policy.name} event",
        "description": ("One Charter event (the same JSON object `charter run` reads from a "
                        "JSON Lines file)."),
        "type": "object",
        "required": ["id", "type", "submitter", "time"],
        "properties": {
            "id": {"type": "string", "minLength": 1,
                   "description": "unique event id; resubmitting an applied id is a no-op"},
            "type": {"enum": [h.name for h in evs] + [TICK],
                     "description": f"the event (handler) name, or {TICK} (submitted by the clock: "
                                    "fires due timed handlers and nothing else)"},
            "submitter": {"type": "string", "minLength": 1,
                          "description": "the submitting party's subject id"},
            "time": {"type": "integer", "minimum": 0,
                     "description": "event time, seconds since the Unix epoch"},
            "args": {"type": "object", "description": "the event's arguments (default {})"},
        },
        "additionalProperties": False,
        "discriminator": {"propertyName": "type"},
    }
    variants.append({"title": TICK, "properties": {
        "type": {"const": TICK}, "submitter": {"const": "clock"},
        "args": {"type": "object", "maxProperties": 0}}})
    schema["oneOf"] = variants
    return schema


def parameters_schema(policy: ir.Policy) -> dict[str, Any]:
    """JSON Schema of the policy's parameters (each optional; defaults and ranges shown)."""
    props = {}
    for p in policy.params:
        s = type_schema(policy, p.type, p.lo, p.hi)
        s = dict(s)
        s["default"] = json_value(p.default)
        ranged = p.lo is not None or p.hi is not None
        rng = f" within {_show(p.lo)}..{_show(p.hi)}" if ranged else ""
        s["description"] = f"{type_text(p.type)}{rng}; default {_show(p.default)}"
        props[p.name] = s
    return {"$schema": SCHEMA_DIALECT, "title": f"{policy.name} parameters", "type": "object",
            "properties": props, "additionalProperties": False}


def settings_schema(policy: ir.Policy) -> dict[str, Any]:
    return {
        "$schema": SCHEMA_DIALECT,
        "title": f"{policy.name} settings",
        "type": "object",
        "properties": {
            "store": {"enum": ["sqlite", "memory", "postgresql"], "default": "sqlite",
                      "description": "where the ledger lives: a SQLite file, memory "
                                     "(lost when the process ends), or PostgreSQL (db_url; "
                                     "several processes may share the ledger)"},
            "db_url": {"type": "string", "pattern": "^postgres(ql)?://",
                       "description": "store=postgresql: the ledger's URL, "
                                      "postgresql://USER:PASSWORD@HOST/DB?schema=NAME"},
            "db_path": {"type": "string", "minLength": 1,
                        "default": default_db_path(policy),
                        "description": "SQLite file of the ledger (store=sqlite); relative "
                                       "paths are relative to the process's working directory"},
            "step_budget": {"type": "integer", "minimum": 1, "default": 10_000_000,
                            "description": "most work one event may do (statements plus "
                                           "loop, aggregate and split items)"},
        },
        "additionalProperties": False,
    }


def default_db_path(policy: ir.Policy) -> str:
    return f"{policy.name}.sqlite"


_POSTING_SCHEMA = {
    "type": "object",
    "properties": {"from": {"type": "string"}, "to": {"type": "string"},
                   "asset": {"type": "string"}, "amount": {"type": "integer"},
                   "kind": {"type": "string"}},
    "required": ["from", "to", "asset", "amount"],
}


def output_schema(policy: ir.Policy) -> dict[str, Any]:
    """JSON Schema of what ``eval`` returns: a receipt or a rejection."""
    return {
        "$schema": SCHEMA_DIALECT,
        "title": f"{policy.name} receipt",
        "type": "object",
        "required": ["status", "event_id", "applied"],
        "properties": {
            "status": {"enum": ["applied", "rejected", "duplicate"],
                       "description": "applied; rejected (nothing changed); duplicate "
                                      "(this same event was applied before: nothing changed, "
                                      "the original receipt; a different event reusing an "
                                      "applied id is rejected as id_conflict)"},
            "applied": {"type": "boolean"},
            "event_id": {"type": ["string", "null"]},
            "code": {"type": ["string", "null"],
                     "description": "rejection reason code (null when applied)"},
            "message": {"type": ["string", "null"],
                        "description": "rejection message (null when applied)"},
            "tx": {"type": ["integer", "null"], "description": "ledger transaction number"},
            "postings": {"type": "array", "items": _POSTING_SCHEMA},
            "journal_hash": {"type": ["string", "null"],
                             "description": "hash of the journal after this event"},
            "flags": {"type": "array", "items": {"type": "object"}},
        },
    }


MANAGEMENT_COMMANDS: tuple[tuple[str, str, dict[str, Any]], ...] = (
    ("balances", "Balances of every account, or of one party / one asset",
     {"type": "object", "properties": {"party": {"type": "string"}, "asset": {"type": "string"}},
      "additionalProperties": False}),
    ("history", "Journal entries (applied events and their postings), optionally for one party",
     {"type": "object", "properties": {"party": {"type": "string"},
                                       "limit": {"type": "integer", "minimum": 1}},
      "additionalProperties": False}),
    ("records", "Live records of one kind (or of every kind)",
     {"type": "object", "properties": {"record": {"type": "string"}, "key": {"type": "string"}},
      "additionalProperties": False}),
    ("audit", "Re-verify the journal's hash chain and the ledger's balances",
     {"type": "object", "properties": {}, "additionalProperties": False}),
    ("replay", "Rebuild the state from the journal alone and compare the final hash",
     {"type": "object", "properties": {}, "additionalProperties": False}),
    ("params", "The parameter values in force, with their declared ranges",
     {"type": "object", "properties": {}, "additionalProperties": False}),
    ("describe", "The policy's events, their argument types and who may submit them",
     {"type": "object", "properties": {}, "additionalProperties": False}),
    ("verify", "Prove the policy's properties with Z3: proved, refuted or unknown each",
     {"type": "object", "properties": {"timeout_ms": {"type": "integer", "minimum": 1}},
      "additionalProperties": False}),
)


def management_commands_schema(policy: ir.Policy) -> list[dict[str, Any]]:
    return [{"name": n, "description": d, "schema": s} for n, d, s in MANAGEMENT_COMMANDS]


def describe(policy: ir.Policy) -> dict[str, Any]:
    """Events, argument types and submitters, as ``management("describe")`` returns them."""
    return {
        "name": policy.name,
        "version": policy.version,
        "source_hash": policy.source_hash,
        "events": [{"type": h.name,
                    "args": {f.name: type_text(f.type) for f in h.params},
                    "submitter": auth_text(policy, h)} for h in events(policy)],
        "timed": [{"name": h.name, "kind": h.kind, "period": h.period,
                   "record": h.record, "field": h.field}
                  for h in policy.handlers if h.kind != "event"],
        "assets": [{"name": a.name, "kind": a.kind, "decimals": a.decimals}
                   for a in policy.assets],
        "roles": [r.name for r in policy.roles],
        "pools": [{"name": p.name, "asset": p.asset} for p in policy.pools],
        "records": [r.name for r in policy.records],
        "properties": [p.name for p in policy.properties],
    }


# --------------------------------------------------------------------------
# The bundle


@attrs.frozen
class Exported:
    zip_path: Path
    json_path: Path
    policy_rule: dict[str, Any]


def _bundle_files(c: Compilation, root: Path) -> dict[str, str]:
    """``{path inside code/policy/: text}`` for the policy and every file it imports.

    Imported files keep their place relative to the root policy, so relative
    imports resolve the same way inside the bundle; stdlib modules go under
    ``stdlib/`` (for the record: at run time they come from the pinned
    Charter package, and the source hash proves they are the same).
    """
    files: dict[str, str] = {}
    local = {}
    for name, text in c.sources.items():
        if name.startswith("<stdlib>/"):
            files["stdlib/" + name[len("<stdlib>/"):]] = text
        else:
            local[Path(name).resolve()] = text
    base = Path(os.path.commonpath([str(p.parent) for p in local])) if local else root.parent
    for path, text in local.items():
        files[path.relative_to(base).as_posix()] = text
    return files


def _function_py(policy: ir.Policy, root_rel: str) -> str:
    return f'''"""AIGrid policy rule for the Charter policy `{policy.name}` {policy.version}.

Generated by `charter export aigrid` (Charter {charter_version()}).  The rule
settles each event given to `eval` through the embedded Charter runtime;
see the Charter docs, "Running on AIGrid".  At start-up it compiles
policy/{root_rel} and refuses to run if the source hash differs from the
one recorded at export.
"""
import os

from charter.compiler.export_aigrid import PolicyRuleAdapter

_HERE = os.path.dirname(os.path.abspath(__file__))


class AIOSv1PolicyRule(PolicyRuleAdapter):
    POLICY_FILE = os.path.join(_HERE, "policy", *{root_rel.split("/")!r})
    SOURCE_HASH = {policy.source_hash!r}
    CHARTER_VERSION = {charter_version()!r}
'''


def _zip_bytes(entries: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name in sorted(entries):
            info = zipfile.ZipInfo(name, date_time=_ZIP_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            zf.writestr(info, entries[name])
    return buf.getvalue()


def bundle_entries(c: Compilation, policy: ir.Policy, policy_path: Path) -> dict[str, bytes]:
    files = _bundle_files(c, policy_path)
    root_rel = next(k for k, v in files.items()
                    if not k.startswith("stdlib/") and Path(k).name == policy_path.name
                    and v == c.text)
    manifest = {
        "charter_version": charter_version(),
        "policy": policy.name,
        "version": policy.version,
        "root": root_rel,
        "source_hash": policy.source_hash,
        "files": {k: hashlib.sha256(v.encode()).hexdigest() for k, v in sorted(files.items())},
    }
    entries = {f"code/policy/{k}": v.encode("utf-8") for k, v in files.items()}
    entries["code/function.py"] = _function_py(policy, root_rel).encode()
    entries["code/requirements.txt"] = f"charter-policy=={charter_version()}\n".encode()
    entries["code/charter-bundle.json"] = (json.dumps(manifest, indent=2, sort_keys=True)
                                           + "\n").encode()
    return entries


def policy_rule(policy: ir.Policy, *, release_tag: str, code_url: str,
                description: Optional[str] = None) -> dict[str, Any]:
    """The PolicyRule document that onboards the bundle into AIGrid's policy system."""
    return {
        "name": policy.name,
        "version": policy.version,
        "release_tag": release_tag,
        "policy_rule_uri": f"{policy.name}:{policy.version}-{release_tag}",
        "metadata": {
            "generator": f"charter {charter_version()}",
            "charter_source_hash": policy.source_hash,
            "execution_environment": "Python 3.10+",
            "category": "economy",
        },
        "tags": ",".join(["charter", "economy", policy.name]),
        "code": code_url,
        "type": POLICY_TYPE,
        "policy_input_schema": input_schema(policy),
        "policy_output_schema": output_schema(policy),
        "policy_settings_schema": settings_schema(policy),
        "policy_parameters_schema": parameters_schema(policy),
        "policy_settings": {"store": "sqlite", "db_path": default_db_path(policy)},
        "policy_parameters": {p.name: json_value(p.default) for p in policy.params},
        "management_commands_schema": management_commands_schema(policy),
        "description": description or (
            f"Charter economy `{policy.name}` {policy.version}: settles each event through "
            f"the Charter runtime on a double-entry ledger and returns its receipt."),
    }


def export(policy_path: str | Path, out_dir: str | Path, *,
           release_tag: str = DEFAULT_RELEASE_TAG, code_url: Optional[str] = None,
           params: Optional[dict[str, Any]] = None) -> Exported:
    """Compile ``policy_path`` and write ``NAME-VERSION.zip`` and ``NAME-VERSION.policy.json``.

    ``params`` overrides parameter values in the document's
    ``policy_parameters`` (what AIGrid hands the rule's constructor), written
    as in events or as runtime values, each checked against its declared
    range.  Raises :class:`charter.compiler.diagnostics.CharterError` when
    the policy has errors, :class:`ExportError` when it cannot be bundled or
    a parameter is refused, ``OSError`` when the files cannot be written.
    """
    from charter.runtime.api import ParamError, resolve_params
    from charter.runtime.values import to_json_value

    policy_path = Path(policy_path)
    c = Compilation.from_path(policy_path)
    policy = c.ir  # raises CharterError with every diagnostic
    try:
        values = resolve_params(policy, params or {})
    except ParamError as err:
        raise ExportError(f"parameter refused: {err}") from None
    entries = bundle_entries(c, policy, policy_path)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    stem = f"{policy.name}-{policy.version}"
    zip_path = out / f"{stem}.zip"
    json_path = out / f"{stem}.policy.json"
    doc = policy_rule(policy, release_tag=release_tag, code_url=code_url or zip_path.name)
    doc["policy_parameters"] = {name: to_json_value(v) for name, v in values.items()}
    zip_path.write_bytes(_zip_bytes(entries))
    json_path.write_text(json.dumps(doc, indent=2, ensure_ascii=False) + "\n", "utf-8")
    return Exported(zip_path=zip_path, json_path=json_path, policy_rule=doc)


# --------------------------------------------------------------------------
# The adapter that the bundle's function.py subclasses.  It lives here, in the
# pinned Charter package, so a bundle carries only its policy and a few lines.


class BundleError(RuntimeError):
    """The bundle refuses to start: its source changed, or settings/parameters are invalid."""


_COMMANDS = tuple(name for name, _, _ in MANAGEMENT_COMMANDS)
# Runtimes on one SQLite file are shared by every rule instance of the process,
# so two threads (or two instances) never keep two diverging copies of a ledger.
_SHARED: dict[str, tuple[Any, "threading.RLock", str, dict]] = {}
_SHARED_LOCK = threading.Lock()


def _json_safe(v: Any) -> Any:
    if isinstance(v, Fraction):
        return {"num": v.numerator, "den": v.denominator}
    if isinstance(v, dict):
        return {str(k): _json_safe(x) for k, x in v.items()}
    if isinstance(v, (list, tuple, set, frozenset)):
        return [_json_safe(x) for x in v]
    if v is None or isinstance(v, (bool, int, float, str)):
        return v
    if attrs.has(type(v)):
        return _json_safe(attrs.asdict(v, recurse=False))
    return str(v)


def _check_data(action: str, data: Any) -> Optional[str]:
    """Validate a management payload against its schema (a flat object of typed keys)."""
    schema = next(s for n, _, s in MANAGEMENT_COMMANDS if n == action)
    if data is None:
        return None
    if not isinstance(data, dict):
        return f"{action}: data must be an object"
    props = schema["properties"]
    for key, value in data.items():
        if key not in props:
            known = ", ".join(props) or "none"
            return f"{action}: unknown key {key!r} (allowed: {known})"
        want = props[key]["type"]
        ok = (isinstance(value, str) if want == "string" else
              isinstance(value, int) and not isinstance(value, bool) and
              value >= props[key].get("minimum", value))
        if not ok:
            expected = "text" if want == "string" else "a positive integer"
            return f"{action}: {key!r} must be {expected}"
    return None


class PolicyRuleAdapter:
    """AIGrid's ``AIOSv1PolicyRule`` contract on top of the Charter runtime.

    ``eval`` settles one event and returns its receipt as a dict; it never
    raises.  ``management`` answers the commands of
    :data:`MANAGEMENT_COMMANDS`.  Subclasses (the bundle's ``function.py``)
    set :attr:`POLICY_FILE`, :attr:`SOURCE_HASH` and :attr:`CHARTER_VERSION`.
    """

    POLICY_FILE: str = ""
    SOURCE_HASH: str = ""
    CHARTER_VERSION: str = ""

    def __init__(self, rule_id: Any, settings: Optional[dict], parameters: Optional[dict]):
        self.rule_id = rule_id
        self.settings = self._check_settings(settings)
        self.parameters = dict(parameters or {})
        self.policy = self._compile()
        self._runtime, self._lock = self._open()
        self._accepted_params: Any = None
        self._persistent = bool(getattr(self._runtime.store, "persistent", True))

    # ---- start-up

    @staticmethod
    def _check_settings(settings: Optional[dict]) -> dict[str, Any]:
        s = dict(settings or {})
        unknown = set(s) - {"store", "db_path", "db_url", "step_budget"}
        if unknown:
            raise BundleError(f"unknown setting(s): {', '.join(sorted(map(str, unknown)))} "
                              "(allowed: store, db_path, db_url, step_budget)")
        budget = s.get("step_budget", 10_000_000)
        if isinstance(budget, bool) or not isinstance(budget, int) or budget < 1:
            raise BundleError("setting step_budget must be a positive integer")
        s["step_budget"] = budget
        store = s.get("store", "sqlite")
        if store not in ("sqlite", "memory", "postgresql"):
            raise BundleError("setting store must be 'sqlite', 'memory' or 'postgresql', "
                              f"not {str(store)[:40]!r}")
        if store == "postgresql":
            url = s.get("db_url")
            if not isinstance(url, str) or not url.startswith(("postgresql://", "postgres://")):
                raise BundleError("store=postgresql needs the setting db_url: "
                                  "postgresql://USER:PASSWORD@HOST/DB?schema=NAME")
        if "db_path" in s and (not isinstance(s["db_path"], str) or not s["db_path"]):
            raise BundleError("setting db_path must be a non-empty path")
        s["store"] = store
        return s

    def _compile(self) -> ir.Policy:
        from charter.compiler.diagnostics import CharterError, render_text

        c = Compilation.from_path(self.POLICY_FILE)
        try:
            policy = c.ir
        except CharterError as err:
            raise BundleError("the bundled policy does not compile:\n"
                              + render_text(err.diagnostics, err.sources)) from None
        if self.SOURCE_HASH and policy.source_hash != self.SOURCE_HASH:
            raise BundleError(
                f"refusing to run: the policy's source hash is {policy.source_hash}, but the "
                f"bundle was exported with {self.SOURCE_HASH} (the policy or a module it imports "
                f"changed, or the installed Charter's standard library differs from "
                f"charter-policy=={self.CHARTER_VERSION})")
        return policy

    def _open(self) -> tuple[Any, "threading.RLock"]:
        from charter.runtime.api import ParamError, StoreError, open_runtime, resolve_params

        try:
            wanted = resolve_params(self.policy, self.parameters)
        except ParamError as err:
            raise BundleError(f"parameters refused: {err}") from None
        try:
            if self.settings["store"] == "memory":
                rt = open_runtime(self.policy, ":memory:", params=self.parameters,
                                  step_budget=self.settings["step_budget"])
                return rt, threading.RLock()
            if self.settings["store"] == "postgresql":
                # a shared ledger: this process's runtimes and other processes' all settle on
                # it (the store serialises them); one runtime per URL in this process
                path = self.settings["db_url"]
            else:
                path = os.path.realpath(
                    self.settings.get("db_path") or default_db_path(self.policy)
                )
            with _SHARED_LOCK:
                shared = _SHARED.get(path)
                if shared is None:
                    rt = open_runtime(self.policy, path, params=self.parameters,
                                      step_budget=self.settings["step_budget"])
                    shared = (rt, threading.RLock(), self.policy.source_hash, wanted)
                    _SHARED[path] = shared
            rt, lock, source_hash, params = shared
            if source_hash != self.policy.source_hash or params != wanted:
                from charter.runtime.store_url import redact

                raise BundleError(f"{redact(path)} is already open in this process for another "
                                  "policy or other parameters")
            return rt, lock
        except (StoreError, ParamError) as err:
            raise BundleError(f"cannot open the ledger: {err}") from None

    # ---- eval

    def _effective_params_error(self, parameters: Any) -> Optional[dict]:
        # AIGrid passes the rule's parameters on every call: remember the last
        # accepted ones so the common case costs one dict comparison.
        if not parameters or parameters == self._accepted_params:
            return None
        from charter.runtime.api import ParamError, resolve_params

        if not isinstance(parameters, dict):
            return self._refusal(None, "bad_parameter", "parameters must be an object")
        try:
            wanted = resolve_params(self.policy, {**self.parameters, **parameters})
        except ParamError as err:
            return self._refusal(None, "bad_parameter", f"parameters refused: {err}")
        if wanted != self._runtime.params:
            diff = sorted(k for k in wanted if wanted[k] != self._runtime.params.get(k))
            return self._refusal(None, "params_fixed",
                                 f"parameters differ from those this ledger was started with "
                                 f"({', '.join(diff)}); a ledger's parameters are fixed for its "
                                 f"life: onboard another rule instance with another db_path to "
                                 f"settle with other values")
        self._accepted_params = json.loads(json.dumps(parameters))  # a private copy
        return None

    def _refusal(self, event_id: Any, code: str, message: str) -> dict[str, Any]:
        head = getattr(getattr(self, "_runtime", None), "journal_hash", None)
        return {"status": "rejected", "applied": False,
                "event_id": event_id if isinstance(event_id, str) else None,
                "code": code, "message": message, "tx": None, "postings": [],
                "journal_hash": head, "flags": []}

    def eval(self, parameters: Any, input_data: Any, context: Any = None) -> dict[str, Any]:
        """Settle one event; return its receipt or its rejection.  Never raises."""
        event_id = input_data.get("id") if isinstance(input_data, dict) else None
        try:
            if isinstance(input_data, (bytes, bytearray)):
                input_data = input_data.decode("utf-8")
            if isinstance(input_data, str):
                try:
                    input_data = json.loads(input_data)
                except ValueError as err:
                    return self._refusal(None, "bad_envelope", f"input is not JSON: {err}")
                event_id = input_data.get("id") if isinstance(input_data, dict) else None
            with self._lock:
                refused = self._effective_params_error(parameters)
                if refused is not None:
                    refused["event_id"] = event_id if isinstance(event_id, str) else None
                    return refused
                rt = self._runtime
                outcome = rt.submit(input_data)
                if self._persistent:
                    rt.flush()  # durable before the receipt is returned
                head = rt.journal_hash
            # Receipts are plain JSON data already (the journal is canonical
            # JSON), so they are returned as they are: no per-event re-walk.
            if outcome.applied:
                out = {"status": "duplicate" if outcome.duplicate else "applied", "applied": True, "event_id": outcome.event_id,
                       "code": None, "message": None, "tx": outcome.tx,
                       "postings": [p.to_dict() for p in outcome.postings],
                       "journal_hash": outcome.journal_hash, "flags": list(outcome.flags),
                       "timers": list(outcome.timers)}
            else:
                out = {"status": "rejected",
                       "applied": False, "event_id": outcome.event_id, "code": outcome.code,
                       "message": outcome.message, "tx": None, "postings": [],
                       "journal_hash": head, "flags": []}
            return out
        except Exception as exc:  # the contract: eval never raises
            return self._refusal(event_id, "internal_error", f"{type(exc).__name__}: {exc}")

    # ---- management

    def management(self, action: str, data: Optional[dict] = None) -> dict[str, Any]:
        """Answer one management command (see ``management_commands_schema``).  Never raises."""
        if action not in _COMMANDS:
            return {"status": "error",
                    "message": f"unknown action {action!r}; known actions: {', '.join(_COMMANDS)}"}
        problem = _check_data(action, data)
        if problem:
            return {"status": "error", "message": problem}
        try:
            handler = getattr(self, f"_m_{action}")
            if action in ("describe", "verify"):
                # read only the compiled policy: a long proof must not hold up eval
                result = handler(dict(data or {}))
            else:
                with self._lock:
                    # a ledger other processes also write (PostgreSQL): read it as it is now
                    self._runtime.refresh()
                    result = handler(dict(data or {}))
            return _json_safe({"status": "ok", **result})
        except Exception as exc:
            return {"status": "error", "message": f"{action} failed: {type(exc).__name__}: {exc}"}

    def _m_balances(self, data: dict) -> dict:
        rt = self._runtime
        party, asset = data.get("party"), data.get("asset")
        pools = {p.name: p.asset for p in self.policy.pools}
        out = {}
        for acc, amount in rt.balances().items():
            parts = acc.split(":")
            acc_asset = pools.get(parts[1]) if parts[0] == "pool" else parts[-1]
            if party is not None and not (parts[0] in ("party", "stake") and parts[1] == party):
                continue
            if asset is not None and acc_asset != asset:
                continue
            out[acc] = amount
        return {"balances": out, "journal_hash": rt.journal_hash}

    def _m_history(self, data: dict) -> dict:
        party, limit = data.get("party"), data.get("limit")
        entries = self._runtime.history()
        if party is not None:
            mine = (f"party:{party}:", f"stake:{party}:")
            entries = [e for e in entries if e["event"].get("submitter") == party
                       or any(p["from"].startswith(mine) or p["to"].startswith(mine)
                              for p in e["postings"])]
        if limit is not None:
            entries = entries[-limit:]
        return {"entries": entries}

    def _m_records(self, data: dict) -> dict:
        names = [r.name for r in self.policy.records]
        name = data.get("record")
        if name is not None and name not in names:
            raise ValueError(f"no record kind {name!r} (records: {', '.join(names) or 'none'})")
        out = {n: self._runtime.records(n) for n in ([name] if name else names)}
        if data.get("key") is not None:
            key = data["key"]
            out = {n: {k: v for k, v in recs.items() if k == key} for n, recs in out.items()}
        return {"records": out}

    def _m_audit(self, data: dict) -> dict:
        return {"audit": self._runtime.audit().to_dict()}

    def _m_replay(self, data: dict) -> dict:
        from charter.runtime.api import replay

        return {"replay": replay(self._runtime).to_dict()}

    def _m_params(self, data: dict) -> dict:
        return {"params": {p.name: {"value": self._runtime.params[p.name],
                                    "type": type_text(p.type), "default": p.default,
                                    "lo": p.lo, "hi": p.hi} for p in self.policy.params}}

    def _m_describe(self, data: dict) -> dict:
        return {"policy": describe(self.policy)}

    def _m_verify(self, data: dict) -> dict:
        from charter.compiler.verify import Options, verify

        results = verify(self.policy, Options(timeout_ms=data.get("timeout_ms", 5000)),
                         use_cache=False)
        counts: dict[str, int] = {}
        for r in results:
            counts[r.status] = counts.get(r.status, 0) + 1
        return {"summary": counts, "results": [r.to_dict() for r in results]}
