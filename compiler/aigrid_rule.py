"""The AIGrid policy rule class that an exported bundle's ``code/function.py`` subclasses.

AIGrid runs a policy rule as ``AIOSv1PolicyRule(rule_id, settings,
parameters)`` and calls ``eval(parameters, input_data, context)`` and
``management(action, data)``.  How long an instance lives depends on the
executor (read from AIGrid's own code): the local SDK builds a new instance
for every call in the caller's process, the executor service starts a new
process for every call, and the long-lived container (Type 4) keeps one
instance.  This class settles correctly under all three:

* the ledger location never depends on the executor's working directory:
  a relative ``db_path`` lives under a data directory (the ``data_dir``
  setting, else ``$CHARTER_DATA_DIR``, else ``$XDG_DATA_HOME/charter/aigrid``),
  and an unwritable location is a clear start-up error;
* runtimes (and compiled policies) are shared by every instance of the
  process, so a new instance per call sees the ledger as the last call left it;
* the writer lock of a SQLite ledger is held only while an event settles,
  so several executor processes take turns on one file; a process that finds
  the file changed by another reloads it before settling;
* ``store = "memory"`` keeps the ledger only as long as the process: it is
  refused unless the settings say ``ephemeral = true``, and then every receipt
  carries a warning.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
from fractions import Fraction
from pathlib import Path
from typing import Any, Optional

import attrs

from . import ir
from .export_aigrid import MANAGEMENT_COMMANDS, describe, type_text
from .pipeline import Compilation

log = logging.getLogger("charter.aigrid")

DATA_DIR_ENV = "CHARTER_DATA_DIR"
DEFAULT_LOCK_WAIT = 30.0  # seconds a call waits for another process's event to settle
SETTINGS = ("store", "db_path", "data_dir", "db_url", "step_budget", "lock_wait", "ephemeral",
            "synchronous")
MEMORY_WARNING = ("store=memory: this ledger lives only in this process; an executor that "
                  "starts a new process per call loses it (use store=sqlite)")


class BundleError(RuntimeError):
    """The bundle refuses to start: its source changed, or settings/parameters are invalid."""


_COMMANDS = tuple(name for name, _, _ in MANAGEMENT_COMMANDS)


@attrs.define
class _Ledger:
    """One open ledger, shared by every rule instance of the process that uses it."""

    key: str  # the resolved file path, or "memory:<hash>"
    runtime: Any
    lock: Any  # threading.RLock: one event at a time per process
    source_hash: str
    params: dict
    open_args: dict  # to reopen the file when another process changed it
    suspended: bool = False


_SHARED: dict[str, _Ledger] = {}
_SHARED_LOCK = threading.Lock()
# compiled policies by the hash of their bundled files: a new instance per call
# must not recompile (AIGrid's SDK builds one per call)
_COMPILED: dict[str, ir.Policy] = {}


def default_data_dir() -> Path:
    """Where ledgers live when the settings name no ``data_dir``."""
    env = os.environ.get(DATA_DIR_ENV)
    if env:
        return Path(env)
    xdg = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local",
                                                           "share")
    return Path(xdg) / "charter" / "aigrid"


def ledger_path(settings: dict, policy: ir.Policy) -> Path:
    """The absolute SQLite path the settings mean (whatever the working directory)."""
    name = settings.get("db_path") or f"{policy.name}-{policy.version}.sqlite"
    path = Path(name)
    if not path.is_absolute():
        base = Path(settings["data_dir"]) if settings.get("data_dir") else default_data_dir()
        if not base.is_absolute():
            raise BundleError(f"the ledger's data directory {str(base)!r} is not an absolute "
                              f"path (set the data_dir setting or ${DATA_DIR_ENV} to one)")
        path = base / path
    return Path(os.path.normpath(path))


def check_writable(path: Path) -> None:
    """Make the ledger's folder if need be; refuse a location this process cannot write."""
    how = (f"set ${DATA_DIR_ENV} on the executor node, or data_dir / db_path in the "
           "PolicyRule's policy_settings, to a writable location")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise BundleError(f"cannot create the ledger folder {path.parent}: "
                          f"{err.strerror or err}; {how}") from None
    if not os.access(path.parent, os.W_OK | os.X_OK):
        raise BundleError(f"the ledger folder {path.parent} is not writable by this process; "
                          f"{how}")
    if path.exists() and not os.access(path, os.R_OK | os.W_OK):
        raise BundleError(f"the ledger {path} is not writable by this process; {how}")


def check_settings(settings: Any) -> dict[str, Any]:
    """Validate the rule's settings (what AIGrid hands the constructor)."""
    if settings is None:
        settings = {}
    if not isinstance(settings, dict):
        raise BundleError("settings must be an object")
    s = dict(settings)
    unknown = sorted(str(k) for k in s if k not in SETTINGS)
    if unknown:
        raise BundleError(f"unknown setting(s): {', '.join(unknown)[:200]} "
                          f"(allowed: {', '.join(SETTINGS)})")
    budget = s.get("step_budget", 10_000_000)
    if isinstance(budget, bool) or not isinstance(budget, int) or budget < 1:
        raise BundleError("setting step_budget must be a positive integer")
    s["step_budget"] = budget
    wait = s.get("lock_wait", DEFAULT_LOCK_WAIT)
    if isinstance(wait, bool) or not isinstance(wait, (int, float)) or not 0 <= wait <= 3600:
        raise BundleError("setting lock_wait must be a number of seconds within 0..3600")
    s["lock_wait"] = float(wait)
    store = s.get("store", "postgresql" if s.get("db_url") else "sqlite")
    if store not in ("sqlite", "memory", "postgresql"):
        raise BundleError(f"setting store must be 'sqlite', 'postgresql' or 'memory', "
                          f"not {_short(store)}")
    s["store"] = store
    for key in ("db_path", "data_dir", "db_url"):
        if key in s and (not isinstance(s[key], str) or not s[key] or "\0" in s[key]
                         or len(s[key]) > 4096):
            raise BundleError(f"setting {key} must be a non-empty path" if key != "db_url"
                              else "setting db_url must be a non-empty URL")
    sync = s.get("synchronous", "FULL")
    if sync not in ("FULL", "NORMAL"):
        raise BundleError("setting synchronous must be 'FULL' (fsync every event, the "
                          "default) or 'NORMAL' (safe against a killed process, not power loss)")
    if "ephemeral" in s and not isinstance(s["ephemeral"], bool):
        raise BundleError("setting ephemeral must be true or false")
    if store == "memory" and not s.get("ephemeral"):
        raise BundleError(
            "refusing store=memory: the ledger would live only as long as this process, and "
            "AIGrid's executors start a new process (or a new rule instance) per call, so "
            "every event would see an empty ledger; use store=sqlite (the default), or set "
            "ephemeral=true to accept a throw-away ledger")
    if store == "postgresql" and not str(s.get("db_url", "")).startswith(("postgresql://",
                                                                         "postgres://")):
        raise BundleError("store=postgresql needs the setting db_url: "
                          "postgresql://USER:PASSWORD@HOST/DB?schema=NAME")
    return s


def _short(value: Any, limit: int = 60) -> str:
    try:
        text = repr(value)
    except Exception:  # a value too deep to show
        text = f"<{type(value).__name__}>"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _shown(key: str) -> str:
    """A ledger's name for messages: a URL without its password."""
    if "://" not in key:
        return key
    from charter.runtime.store_url import redact

    return redact(key)


def _bundle_key(policy_file: str) -> str:
    """A hash of every file of the bundled policy folder (the compile cache's key)."""
    root = Path(policy_file).parent
    while root.name != "policy" and root.parent != root:
        root = root.parent
    if root.name != "policy":
        root = Path(policy_file).parent
    h = hashlib.sha256(str(Path(policy_file).relative_to(root)).encode() + b"\0")
    for p in sorted(root.rglob("*.charter")):
        h.update(p.relative_to(root).as_posix().encode() + b"\0" + p.read_bytes() + b"\0")
    return h.hexdigest()


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
            return f"{action}: unknown key {str(key)[:80]!r} (allowed: {known})"
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
    :data:`~charter.compiler.export_aigrid.MANAGEMENT_COMMANDS`.  Subclasses
    (the bundle's ``function.py``) set :attr:`POLICY_FILE`,
    :attr:`SOURCE_HASH` and :attr:`CHARTER_VERSION`.
    """

    POLICY_FILE: str = ""
    SOURCE_HASH: str = ""
    CHARTER_VERSION: str = ""

    def __init__(self, rule_id: Any, settings: Optional[dict], parameters: Optional[dict]):
        self.rule_id = rule_id
        self.settings = check_settings(settings)
        if parameters is not None and not isinstance(parameters, dict):
            raise BundleError("parameters must be an object")
        self.parameters = dict(parameters or {})
        self.policy = self._compile()
        self._ledger = self._open()
        self._accepted_params: Any = None
        self._warnings = [MEMORY_WARNING] if self.settings["store"] == "memory" else []
        if self._warnings:
            log.warning("charter policy %s: %s", self.policy.name, MEMORY_WARNING)

    # ---- start-up

    def _compile(self) -> ir.Policy:
        from charter.compiler.diagnostics import CharterError, render_text

        key = _bundle_key(self.POLICY_FILE)
        policy = _COMPILED.get(key)
        if policy is None:
            c = Compilation.from_path(self.POLICY_FILE)
            try:
                policy = c.ir
            except CharterError as err:
                raise BundleError("the bundled policy does not compile:\n"
                                  + render_text(err.diagnostics, err.sources)) from None
            _COMPILED[key] = policy
        if self.SOURCE_HASH and policy.source_hash != self.SOURCE_HASH:
            raise BundleError(
                f"refusing to run: the policy's source hash is {policy.source_hash}, but the "
                f"bundle was exported with {self.SOURCE_HASH} (the policy or a module it imports "
                f"changed, or the installed Charter's standard library differs from "
                f"charter-policy=={self.CHARTER_VERSION})")
        return policy

    def _open(self) -> _Ledger:
        from charter.runtime.api import ParamError, StoreError, open_runtime, resolve_params

        try:
            wanted = resolve_params(self.policy, self.parameters)
        except ParamError as err:
            raise BundleError(f"parameters refused: {err}") from None
        s = self.settings
        if s["store"] == "memory":
            key = "memory:" + hashlib.sha256(json.dumps(
                [self.policy.source_hash, s.get("db_path"), self.parameters],
                sort_keys=True, default=str).encode()).hexdigest()
            target: Any = ":memory:"
        elif s["store"] == "postgresql":
            # a shared ledger: this process's runtimes and other processes' all settle on it
            # (the store serialises them and replays what others committed)
            key = target = s["db_url"]
        else:
            path = ledger_path(s, self.policy)
            check_writable(path)
            key, target = str(path), str(path)
        args = dict(params=self.parameters, step_budget=s["step_budget"])
        if s["store"] == "sqlite":
            args["synchronous"] = s.get("synchronous", "FULL")
        with _SHARED_LOCK:
            ledger = _SHARED.get(key)
            if ledger is None:
                try:
                    rt = open_runtime(self.policy, target, wait=s["lock_wait"], **args)
                except (StoreError, ParamError, ValueError) as err:
                    raise BundleError(f"cannot open the ledger {_shown(key)}: {err}") from None
                ledger = _Ledger(key, rt, threading.RLock(), self.policy.source_hash, wanted,
                                 dict(args, target=target, wait=s["lock_wait"]))
                _SHARED[key] = ledger
                self._suspend(ledger)
        if ledger.source_hash != self.policy.source_hash or ledger.params != wanted:
            raise BundleError(f"{_shown(key)} is already open in this process for another "
                              "policy or other parameters")
        return ledger

    @staticmethod
    def _suspend(ledger: _Ledger) -> None:
        """Let other processes write to the file until this one settles its next event."""
        suspend = getattr(ledger.runtime.store, "suspend_writer", None)
        if suspend is not None:
            suspend()
            ledger.suspended = True

    @staticmethod
    def _resume(ledger: _Ledger) -> Any:
        """The runtime, holding the writer lock, with the file's latest state."""
        from charter.runtime.api import open_runtime

        if not ledger.suspended:
            return ledger.runtime
        rt = ledger.runtime
        current = rt.store.resume_writer(ledger.open_args["wait"])
        ledger.suspended = False
        if not current:  # another process settled events meanwhile: read the file again
            args = dict(ledger.open_args)
            target, wait = args.pop("target"), args.pop("wait")
            rt.close()
            ledger.runtime = rt = open_runtime(rt.policy, target, wait=wait, **args)
        return rt

    # ---- eval

    @property
    def _runtime(self) -> Any:
        return self._ledger.runtime

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
        if wanted != self._ledger.params:
            diff = sorted(k for k in wanted if wanted[k] != self._ledger.params.get(k))
            return self._refusal(None, "params_fixed",
                                 f"parameters differ from those this ledger was started with "
                                 f"({', '.join(diff)}); a ledger's parameters are fixed for its "
                                 f"life: onboard another rule instance with another db_path to "
                                 f"settle with other values")
        self._accepted_params = json.loads(json.dumps(parameters))  # a private copy
        return None

    def _refusal(self, event_id: Any, code: str, message: str) -> dict[str, Any]:
        ledger = getattr(self, "_ledger", None)
        head = getattr(getattr(ledger, "runtime", None), "journal_hash", None)
        out = {"status": "rejected", "applied": False,
               "event_id": event_id if isinstance(event_id, str) else None,
               "code": code, "message": message, "tx": None, "postings": [],
               "journal_hash": head, "flags": []}
        if getattr(self, "_warnings", None):
            out["warnings"] = list(self._warnings)
        return out

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
            ledger = self._ledger
            with ledger.lock:
                refused = self._effective_params_error(parameters)
                if refused is not None:
                    refused["event_id"] = event_id if isinstance(event_id, str) else None
                    return refused
                rt = self._resume(ledger)
                try:
                    outcome = rt.submit(input_data)
                    if rt.store.persistent:
                        rt.flush()  # durable before the receipt is returned
                    head = rt.journal_hash
                finally:
                    self._suspend(ledger)
            # Receipts are plain JSON data already (the journal is canonical
            # JSON), so they are returned as they are: no per-event re-walk.
            if outcome.applied:
                out = {"status": "duplicate" if outcome.duplicate else "applied",
                       "applied": True, "event_id": outcome.event_id,
                       "code": None, "message": None, "tx": outcome.tx,
                       "postings": [p.to_dict() for p in outcome.postings],
                       "journal_hash": outcome.journal_hash, "flags": list(outcome.flags),
                       "timers": list(outcome.timers)}
            else:
                out = {"status": "rejected",
                       "applied": False, "event_id": outcome.event_id, "code": outcome.code,
                       "message": outcome.message, "tx": None, "postings": [],
                       "journal_hash": head, "flags": []}
            if self._warnings:
                out["warnings"] = list(self._warnings)
            return out
        except Exception as exc:  # the contract: eval never raises
            return self._refusal(event_id, "internal_error", f"{type(exc).__name__}: {exc}")

    # ---- management

    def management(self, action: Any, data: Optional[dict] = None) -> dict[str, Any]:
        """Answer one management command (see ``management_commands_schema``).  Never raises."""
        if not isinstance(action, str) or action not in _COMMANDS:
            return {"status": "error",
                    "message": f"unknown action {str(action)[:80]!r}; known actions: "
                               f"{', '.join(_COMMANDS)}"}
        problem = _check_data(action, data)
        if problem:
            return {"status": "error", "message": problem}
        try:
            handler = getattr(self, f"_m_{action}")
            if action in ("describe", "verify"):
                # read only the compiled policy: a long proof must not hold up eval
                result = handler(dict(data or {}))
            else:
                ledger = self._ledger
                with ledger.lock:
                    rt = self._resume(ledger)  # the file as other processes left it
                    refresh = getattr(rt, "refresh", None)
                    if refresh is not None:  # PostgreSQL: what other processes committed
                        refresh()
                    try:
                        result = handler(dict(data or {}))
                    finally:
                        self._suspend(ledger)
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
            raise ValueError(f"no record kind {name[:80]!r} "
                             f"(records: {', '.join(names) or 'none'})")
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


def close_all() -> None:
    """Close every ledger this process opened (tests, and a container shutting down)."""
    with _SHARED_LOCK:
        for ledger in _SHARED.values():
            try:
                ledger.runtime.close()
            except Exception:
                pass
        _SHARED.clear()
