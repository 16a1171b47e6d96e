"""A long-lived AIGrid container (Type 4) for a Charter bundle, with management routes.

AIGrid's own Type 4 container (``executor_server/main.py``) loads one policy
rule at start-up and exposes only ``POST /execute``, so a rule's management
commands (balances, history, audit, ...) cannot be reached there.  This
module is a drop-in for it: the same environment variables, the same start-up
(read the PolicyRule from the registry, fetch and unpack ``code``, build the
rule once, the registry's ``policy_settings`` taking precedence) and the same
``/execute`` route and reply shape, plus:

* ``POST /mgmt`` with ``{"action": ..., "data": {...}}`` calls
  ``rule.management(action, data)``, the call AIGrid's SDK makes
  (``execute_mgmt_command``);
* ``GET /mgmt`` lists the commands (from the PolicyRule's ``functionality_data``);
* ``GET /health`` says which rule is loaded.

Run it as ``python -m charter.aigrid_container`` (or ``charter-aigrid-container``)
with ``POLICY_RULE_URI`` and ``POLICY_DB_URL`` set, or with ``--bundle
X.zip --policy-rule X.policy.json`` to serve a bundle without a registry.
Needs the ``aigrid`` extra (Flask and requests, as AIGrid's container).
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
import tempfile
import uuid
import zipfile
from pathlib import Path
from typing import Any, Optional


class ContainerError(RuntimeError):
    """The container cannot start: the rule or its bundle cannot be loaded."""


def fetch_policy_rule(registry_url: str, policy_rule_uri: str) -> dict[str, Any]:
    """``GET {registry}/policy/{uri}``, as AIGrid's ``PolicyDBClient.read_policy`` does."""
    import requests

    try:
        response = requests.get(f"{registry_url.rstrip('/')}/policy/{policy_rule_uri}",
                                timeout=30)
    except requests.RequestException as err:
        raise ContainerError(f"cannot reach the policy registry {registry_url}: {err}") from None
    try:
        body = response.json()
    except ValueError:
        body = None
    if response.status_code != 200 or not isinstance(body, dict) or not body.get("success"):
        why = body.get("message") if isinstance(body, dict) else response.text[:200]
        raise ContainerError(f"the registry has no policy rule {policy_rule_uri!r}: {why}")
    return body["data"]


def unpack(code: str, into: Path) -> Path:
    """Fetch ``code`` (a local zip or folder, or an http(s) URL) and unpack it; the
    folder that holds ``code/function.py``."""
    into.mkdir(parents=True, exist_ok=True)
    local = Path(code)
    if local.is_dir():
        return local if (local / "function.py").is_file() else local / "code"
    if not local.is_file():
        import requests

        try:
            response = requests.get(code, timeout=120)
            response.raise_for_status()
        except requests.RequestException as err:
            raise ContainerError(f"cannot download the bundle {code}: {err}") from None
        local = into / "archive.zip"
        local.write_bytes(response.content)
    try:
        with zipfile.ZipFile(local) as zf:
            zf.extractall(into)
    except (zipfile.BadZipFile, OSError) as err:
        raise ContainerError(f"{code} is not a readable zip bundle: {err}") from None
    code_dir = into / "code"
    if not (code_dir / "function.py").is_file():
        raise ContainerError(f"{code}: no code/function.py in the bundle")
    return code_dir


def load_rule(code_dir: Path, settings: dict, parameters: dict) -> Any:
    """Import ``function.py`` as AIGrid's loader does and build ``AIOSv1PolicyRule`` once."""
    spec = importlib.util.spec_from_file_location("function", code_dir / "function.py")
    if spec is None or spec.loader is None:
        raise ContainerError(f"cannot import {code_dir / 'function.py'}")
    module = importlib.util.module_from_spec(spec)
    sys.modules["function"] = module
    spec.loader.exec_module(module)
    cls = getattr(module, "AIOSv1PolicyRule", None)
    if cls is None:
        raise ContainerError("function.py defines no AIOSv1PolicyRule")
    return cls("", settings, parameters)


class Container:
    """One loaded rule and the PolicyRule document it came from."""

    def __init__(self, rule: Any, policy_rule: dict[str, Any]):
        self.rule = rule
        self.policy_rule = policy_rule

    @classmethod
    def from_policy_rule(cls, doc: dict[str, Any], *, parameters: Optional[dict] = None,
                         settings: Optional[dict] = None, workdir: Optional[Path] = None,
                         code: Optional[str] = None) -> "Container":
        """Build the rule as AIGrid's Type 4 executor does: the caller's parameters if
        given, else the registry's; the caller's settings overlaid by the registry's."""
        params = parameters if parameters is not None else doc.get("policy_parameters") or {}
        merged = dict(settings or {})
        merged.update(doc.get("policy_settings") or {})
        where = workdir or Path(tempfile.gettempdir()) / f"charter-aigrid-{uuid.uuid4()}"
        code_dir = unpack(code or doc["code"], where)
        return cls(load_rule(code_dir, merged, params), doc)

    def commands(self) -> list[dict[str, Any]]:
        return list((self.policy_rule.get("functionality_data") or {})
                    .get("management_commands") or [])


def create_app(container: Container) -> Any:
    """The Flask app: AIGrid's ``/execute`` plus the management routes."""
    from flask import Flask, jsonify, request

    app = Flask("charter_aigrid_container")

    @app.post("/execute")
    def execute() -> Any:
        try:
            input_data = request.get_json(force=True, silent=True)
            if input_data is None:
                return jsonify({"success": False, "message": "the body is not JSON"}), 400
            result = container.rule.eval(container.rule.parameters, input_data, None)
            return jsonify({"success": True, "data": result}), 200
        except Exception as e:  # AIGrid's container answers 500 with the message
            return jsonify({"success": False, "message": str(e)}), 500

    @app.post("/mgmt")
    def mgmt() -> Any:
        body = request.get_json(force=True, silent=True)
        if not isinstance(body, dict) or not isinstance(body.get("action"), str):
            return jsonify({"success": False,
                            "message": 'send {"action": NAME, "data": {...}}'}), 400
        result = container.rule.management(body["action"], body.get("data"))
        ok = isinstance(result, dict) and result.get("status") == "ok"
        return jsonify({"success": ok, "data": result}), 200 if ok else 400

    @app.get("/mgmt")
    def mgmt_commands() -> Any:
        return jsonify({"success": True, "data": container.commands()})

    @app.get("/health")
    def health() -> Any:
        return jsonify({"success": True, "data": {
            "policy_rule_uri": container.policy_rule.get("policy_rule_uri"),
            "journal_hash": container.rule.management("balances", {}).get("journal_hash")}})

    return app


def main(argv: Optional[list[str]] = None) -> int:
    ap = argparse.ArgumentParser(prog="charter-aigrid-container", description=__doc__.split(
        "\n\n")[0])
    ap.add_argument("--bundle", help="a local bundle zip (instead of the PolicyRule's code)")
    ap.add_argument("--policy-rule", help="a PolicyRule JSON file (instead of the registry)")
    ap.add_argument("--host", default="0.0.0.0")
    ap.add_argument("--port", type=int, default=int(os.environ.get("PORT", "5000")))
    args = ap.parse_args(argv)
    try:
        if args.policy_rule:
            doc = json.loads(Path(args.policy_rule).read_text("utf-8"))
        else:
            uri, registry = os.getenv("POLICY_RULE_URI"), os.getenv("POLICY_DB_URL")
            if not uri or not registry:
                raise ContainerError("set POLICY_RULE_URI and POLICY_DB_URL (or pass "
                                     "--policy-rule FILE)")
            doc = fetch_policy_rule(registry, uri)
        raw = os.getenv("POLICY_RULE_PARAMETERS")
        params = json.loads(raw) if raw else None
        container = Container.from_policy_rule(doc, parameters=params, code=args.bundle)
    except (ContainerError, OSError, ValueError, KeyError) as err:
        print(f"charter-aigrid-container: {err}", file=sys.stderr)
        return 2
    except Exception as err:  # the rule's own start-up refusal (BundleError) among them
        print(f"charter-aigrid-container: cannot start the rule: {err}", file=sys.stderr)
        return 2
    create_app(container).run(host=args.host, port=args.port)
    return 0


if __name__ == "__main__":
    sys.exit(main())
