"""Export a policy as an AIGrid policy rule: a code bundle and its PolicyRule document.

AIGrid's policy system runs a policy as a dynamically loaded Python class,
``AIOSv1PolicyRule`` in ``code/function.py`` of a zip bundle, onboarded by a
PolicyRule JSON document (name, version, release_tag, code URL, type
``python_class_v1`` and JSON schemas of its input, output, settings,
parameters and management commands).  :func:`export` writes both:

* ``NAME-VERSION.zip``: ``code/function.py`` (a few lines binding the
  bundled policy to :class:`~charter.compiler.aigrid_rule.PolicyRuleAdapter`),
  ``code/requirements.txt`` pinning the exporting Charter version,
  ``code/policy/`` with the policy source and every file it imports,
  ``code/charter-bundle.json`` recording the source hash, and (with a
  wheelhouse) ``code/wheels/`` for nodes without a package index;
* ``NAME-VERSION.policy.json``: the PolicyRule document, with exactly the
  fields AIGrid's registry keeps (``system/core/schema.py``): every schema
  generated from the compiled policy, ``functionality_data`` (events, timers,
  assets, management commands) and ``resource_estimates`` (measured).

The rule class the bundle runs is :mod:`charter.compiler.aigrid_rule`.

The bundle is deterministic: exporting the same policy twice gives
byte-identical files (sorted entries, fixed timestamps).
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import zipfile
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
    """JSON Schema of the rule's settings.  AIGrid's executors merge the registry's
    ``policy_settings`` over the caller's (or use them alone), so every setting
    here is one the operator puts in the PolicyRule document."""
    return {
        "$schema": SCHEMA_DIALECT,
        "title": f"{policy.name} settings",
        "type": "object",
        "properties": {
            "store": {"enum": ["sqlite", "postgresql", "memory"], "default": "sqlite",
                      "description": "where the ledger lives: a SQLite file (default), a "
                                     "PostgreSQL database (db_url), or memory (lost when the "
                                     "process ends: refused unless ephemeral is true)"},
            "db_path": {"type": "string", "minLength": 1,
                        "default": default_db_path(policy),
                        "description": "SQLite file of the ledger: absolute, or relative to "
                                       "data_dir (never to the executor's working directory)"},
            "data_dir": {"type": "string", "minLength": 1,
                         "description": "absolute folder for relative db_path values; default "
                                        "$CHARTER_DATA_DIR, else $XDG_DATA_HOME/charter/aigrid"},
            "db_url": {"type": "string", "pattern": "^postgres(ql)?://",
                       "description": "store=postgresql: the ledger's URL, "
                                      "postgresql://USER:PASSWORD@HOST/DB?schema=NAME "
                                      "(several processes may share the ledger)"},
            "lock_wait": {"type": "number", "minimum": 0, "maximum": 3600, "default": 30,
                          "description": "seconds a call waits while another executor process "
                                         "settles an event on the same ledger"},
            "synchronous": {"enum": ["FULL", "NORMAL"], "default": "FULL",
                            "description": "SQLite durability: FULL fsyncs every event; NORMAL "
                                           "survives a killed process but may lose the last "
                                           "events on power loss"},
            "ephemeral": {"type": "boolean", "default": False,
                          "description": "accept store=memory (a throw-away ledger per process)"},
            "step_budget": {"type": "integer", "minimum": 1, "default": 10_000_000,
                            "description": "most work one event may do (statements plus "
                                           "loop, aggregate and split items)"},
        },
        "additionalProperties": False,
    }


def default_db_path(policy: ir.Policy) -> str:
    return f"{policy.name}-{policy.version}.sqlite"


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
            "timers": {"type": "array", "description": "timed handlers this event fired"},
            "warnings": {"type": "array", "items": {"type": "string"},
                         "description": "present when the ledger is ephemeral (store=memory)"},
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


# Charter's own requirements: a wheelhouse must hold a wheel of each for an offline node.
RUNTIME_REQUIREMENTS = ("charter-policy", "lark", "attrs", "z3-solver", "click")


def _dist_name(wheel: str) -> str:
    """The normalised project name of a wheel file name (PEP 427, PEP 503)."""
    import re

    return re.sub(r"[-_.]+", "-", wheel.split("-", 1)[0]).lower()


def wheelhouse_entries(wheelhouse: Path) -> dict[str, bytes]:
    """``code/wheels/*.whl`` from a folder of wheels, checked to hold Charter (this
    version) and every package it needs, so ``pip install --no-index`` succeeds."""
    wheels = sorted(p for p in wheelhouse.glob("*.whl") if p.is_file())
    if not wheels:
        raise ExportError(f"{wheelhouse}: no .whl files (build one with "
                          f"`pip wheel charter-policy=={charter_version()} -w {wheelhouse}`)")
    have = {_dist_name(p.name) for p in wheels}
    missing = [r for r in RUNTIME_REQUIREMENTS if r not in have]
    if missing:
        raise ExportError(f"{wheelhouse} has no wheel of {', '.join(missing)} (an offline node "
                          f"installs from it alone; `pip wheel charter-policy=="
                          f"{charter_version()} -w DIR` fetches them all)")
    version = charter_version()
    if not any(_dist_name(p.name) == "charter-policy" and p.name.split("-")[1] == version
               for p in wheels):
        raise ExportError(f"{wheelhouse}: no charter_policy-{version} wheel (the bundle pins "
                          f"the Charter that exported it)")
    return {f"code/wheels/{p.name}": p.read_bytes() for p in wheels}


def requirements_txt(offline: bool) -> str:
    pin = f"charter-policy=={charter_version()}\n"
    if not offline:
        return pin
    # pip resolves --find-links relative to the requirements file itself
    return "# offline: install only from the wheels shipped in this bundle\n" \
           "--no-index\n--find-links wheels\n" + pin


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

from charter.compiler.aigrid_rule import PolicyRuleAdapter

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


def bundle_entries(c: Compilation, policy: ir.Policy, policy_path: Path,
                   wheelhouse: Optional[Path] = None) -> dict[str, bytes]:
    files = _bundle_files(c, policy_path)
    root_rel = next(k for k, v in files.items()
                    if not k.startswith("stdlib/") and Path(k).name == policy_path.name
                    and v == c.text)
    wheels = wheelhouse_entries(wheelhouse) if wheelhouse is not None else {}
    manifest = {
        "charter_version": charter_version(),
        "policy": policy.name,
        "version": policy.version,
        "root": root_rel,
        "source_hash": policy.source_hash,
        "files": {k: hashlib.sha256(v.encode()).hexdigest() for k, v in sorted(files.items())},
        "wheels": {k.rsplit("/", 1)[1]: hashlib.sha256(v).hexdigest()
                   for k, v in sorted(wheels.items())},
    }
    entries = {f"code/policy/{k}": v.encode("utf-8") for k, v in files.items()}
    entries.update(wheels)
    entries["code/function.py"] = _function_py(policy, root_rel).encode()
    entries["code/requirements.txt"] = requirements_txt(bool(wheels)).encode()
    entries["code/charter-bundle.json"] = (json.dumps(manifest, indent=2, sort_keys=True)
                                           + "\n").encode()
    return entries


CODE_TYPE = "zip"  # the `code` URL names a zip archive holding code/function.py


def functionality_data(policy: ir.Policy) -> dict[str, Any]:
    """What the rule does, for people and for AIGrid's search: the policy's events,
    timers, assets, roles, pools, records and proved properties, and its management
    commands (the registry keeps no other field for them)."""
    return {
        "summary": (f"Charter economy `{policy.name}` {policy.version}: settles each event "
                    f"on a double-entry, hash-chained ledger and returns its receipt; a "
                    f"rejected event changes nothing."),
        "kind": "charter-economy",
        "charter_version": charter_version(),
        **describe(policy),
        "management_commands": management_commands_schema(policy),
    }


def policy_rule(policy: ir.Policy, *, release_tag: str, code_url: str,
                description: Optional[str] = None,
                resource_estimates: Optional[dict[str, Any]] = None,
                settings: Optional[dict[str, Any]] = None) -> dict[str, Any]:
    """The PolicyRule document that onboards the bundle into AIGrid's policy system.

    It has exactly the fields AIGrid's ``PolicyRule`` keeps (system/core/schema.py),
    so the registry stores it whole: nothing is dropped on the way in."""
    from .aigrid_estimates import RECORDED

    return {
        "policy_rule_uri": f"{policy.name}:{policy.version}-{release_tag}",
        "name": policy.name,
        "version": policy.version,
        "release_tag": release_tag,
        "metadata": {
            "generator": f"charter {charter_version()}",
            "charter_source_hash": policy.source_hash,
            "execution_environment": "Python 3.10+",
            "category": "economy",
        },
        "tags": ",".join(["charter", "economy", policy.name]),
        "code": code_url,
        "code_type": CODE_TYPE,
        "type": POLICY_TYPE,
        "policy_input_schema": input_schema(policy),
        "policy_output_schema": output_schema(policy),
        "policy_settings_schema": settings_schema(policy),
        "policy_parameters_schema": parameters_schema(policy),
        "policy_settings": dict(settings) if settings is not None else
        {"store": "sqlite", "db_path": default_db_path(policy)},
        "policy_parameters": {p.name: json_value(p.default) for p in policy.params},
        "description": description or (
            f"Charter economy `{policy.name}` {policy.version}: settles each event through "
            f"the Charter runtime on a double-entry ledger and returns its receipt."),
        "functionality_data": functionality_data(policy),
        "resource_estimates": resource_estimates or RECORDED,
    }


def read_events(path: Path) -> list[Any]:
    """Events of a JSON Lines file, for ``--measure``."""
    out = []
    try:
        text = path.read_text("utf-8")
    except (OSError, UnicodeError) as err:
        raise ExportError(f"cannot read {path}: {err}") from None
    for n, line in enumerate(text.splitlines(), 1):
        if line.strip():
            try:
                out.append(json.loads(line))
            except ValueError as err:
                raise ExportError(f"{path}:{n}: not JSON: {err}") from None
    if not out:
        raise ExportError(f"{path}: no events to measure with")
    return out


def export(policy_path: str | Path, out_dir: str | Path, *,
           release_tag: str = DEFAULT_RELEASE_TAG, code_url: Optional[str] = None,
           params: Optional[dict[str, Any]] = None,
           settings: Optional[dict[str, Any]] = None,
           measure_events: Optional[Any] = None,
           wheelhouse: Optional[str | Path] = None) -> Exported:
    """Compile ``policy_path`` and write ``NAME-VERSION.zip`` and ``NAME-VERSION.policy.json``.

    ``params`` overrides parameter values in the document's
    ``policy_parameters`` (what AIGrid hands the rule's constructor), written
    as in events or as runtime values, each checked against its declared
    range.  ``settings`` replaces the document's ``policy_settings`` (checked
    as the rule checks them; AIGrid's executors give these precedence over a
    caller's).  ``measure_events`` (a JSON Lines path or a list of events)
    are settled once to measure ``resource_estimates``; without them the
    recorded benchmark figures are used.  ``wheelhouse`` is a folder of wheels
    (Charter and its requirements) shipped in the bundle for offline nodes.
    Raises :class:`charter.compiler.diagnostics.CharterError` when the policy
    has errors, :class:`ExportError` when it cannot be bundled or a parameter
    or setting is refused, ``OSError`` when the files cannot be written.
    """
    from charter.runtime.api import ParamError, resolve_params
    from charter.runtime.values import to_json_value

    from .aigrid_rule import BundleError, check_settings

    policy_path = Path(policy_path)
    c = Compilation.from_path(policy_path)
    policy = c.ir  # raises CharterError with every diagnostic
    try:
        values = resolve_params(policy, params or {})
    except ParamError as err:
        raise ExportError(f"parameter refused: {err}") from None
    if settings is not None:
        try:
            check_settings(settings)
        except BundleError as err:
            raise ExportError(f"setting refused: {err}") from None
    estimates = None
    if measure_events is not None:
        from_file = isinstance(measure_events, (str, Path))
        evs = read_events(Path(measure_events)) if from_file else list(measure_events)
        what = Path(measure_events).name if from_file else f"{len(evs)} events"
        try:
            estimates = measure(policy, evs, params=dict(values),
                                source=f"{what} settled once at export")
        except ValueError as err:
            raise ExportError(f"cannot measure: {err}") from None
    entries = bundle_entries(c, policy, policy_path,
                             Path(wheelhouse) if wheelhouse is not None else None)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    stem = f"{policy.name}-{policy.version}"
    zip_path = out / f"{stem}.zip"
    json_path = out / f"{stem}.policy.json"
    doc = policy_rule(policy, release_tag=release_tag, code_url=code_url or zip_path.name,
                      resource_estimates=estimates, settings=settings)
    doc["policy_parameters"] = {name: to_json_value(v) for name, v in values.items()}
    zip_path.write_bytes(_zip_bytes(entries))
    json_path.write_text(json.dumps(doc, indent=2, ensure_ascii=False) + "\n", "utf-8")
    return Exported(zip_path=zip_path, json_path=json_path, policy_rule=doc)


def measure(policy: ir.Policy, events: list, *, params: dict, source: str) -> dict[str, Any]:
    from .aigrid_estimates import measure as _measure

    return _measure(policy, events, params=params, source=source)


def __getattr__(name: str) -> Any:
    # bundles exported before the rule class moved import it from here
    if name in ("PolicyRuleAdapter", "BundleError", "_SHARED"):
        from . import aigrid_rule

        return getattr(aigrid_rule, name)
    raise AttributeError(name)
