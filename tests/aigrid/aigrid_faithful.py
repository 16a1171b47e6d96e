"""Faithful copies of what AIGrid's own code does with a policy rule (not imported from it).

The reference is AIGrid's public code at OpenCyberspace/AIGr.id
6b2b17a67cf5850595d041ed158faf5e3e9bf3ed, kept in
``shared/reference/aigrid/``; the tests must run without that folder, so
each piece below is rewritten from it, and names the file and lines it mirrors.
Keep these as close to the reference as the tests allow: the point is to
fail where AIGrid would.
"""
from __future__ import annotations

import importlib.util
import json
import shutil
import sys
import tarfile
import uuid
import zipfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Dict, Optional


# --- system/core/schema.py lines 5-50: the registry's PolicyRule ----------------------

@dataclass
class RegistryPolicyRule:
    policy_rule_uri: str
    name: str
    version: str
    release_tag: str
    metadata: Dict
    tags: str
    code: str
    code_type: str
    type: str
    policy_input_schema: Dict
    policy_output_schema: Dict
    policy_settings_schema: Dict
    policy_parameters_schema: Dict
    policy_settings: Dict
    policy_parameters: Dict
    description: str
    functionality_data: Dict
    resource_estimates: Dict

    @staticmethod
    def from_dict(data: Dict) -> "RegistryPolicyRule":
        # every key read with data[...]: a missing one is a KeyError, and POST /policy
        # answers {"success": False, "message": str(e)} (system/core/apis.py lines 24-34)
        return RegistryPolicyRule(
            policy_rule_uri=f"{data['name']}:{data['version']}-{data['release_tag']}",
            name=data['name'],
            version=data['version'],
            release_tag=data['release_tag'],
            metadata=data['metadata'],
            tags=data['tags'],
            code=data['code'],
            code_type=data['code_type'],
            type=data['type'],
            policy_input_schema=data['policy_input_schema'],
            policy_output_schema=data['policy_output_schema'],
            policy_settings_schema=data['policy_settings_schema'],
            policy_parameters_schema=data['policy_parameters_schema'],
            policy_settings=data['policy_settings'],
            policy_parameters=data['policy_parameters'],
            description=data['description'],
            functionality_data=data['functionality_data'],
            resource_estimates=data['resource_estimates'],
        )

    def to_dict(self) -> Dict:
        return asdict(self)


class Registry:
    """The registry's POST /policy and GET /policy/<uri> (system/core/apis.py lines 24-45,
    system/core/db.py lines 21-38): from_dict, to_dict, stored; read back through
    from_dict (Mongo's ``_id`` is ignored by it).  Replies are JSON, as over HTTP."""

    def __init__(self) -> None:
        self.rows: list[dict] = []

    def post_policy(self, data: Any) -> dict:
        try:
            policy = RegistryPolicyRule.from_dict(json.loads(json.dumps(data)))
            row = policy.to_dict()
            row["_id"] = uuid.uuid4().hex  # pymongo's insert_one adds one
            self.rows.append(row)
            return {"success": True, "data": "Policy created successfully."}
        except Exception as e:
            return {"success": False, "message": str(e)}

    def get_policy(self, policy_rule_uri: str) -> dict:
        for row in self.rows:
            if row["policy_rule_uri"] == policy_rule_uri:
                return json.loads(json.dumps(
                    {"success": True, "data": RegistryPolicyRule.from_dict(row).to_dict()}))
        return {"success": False, "message": "Policy not found."}


# --- policies_local_sdk/aios_policy_sandbox/client.py lines 5-48, 71-85: the SDK reader --

@dataclass
class SdkPolicyRule:
    policy_rule_uri: str
    name: str
    version: str
    release_tag: str
    metadata: Dict
    tags: str
    code: str
    code_type: str
    type: str
    policy_input_schema: Dict
    policy_output_schema: Dict
    policy_settings_schema: Dict
    policy_parameters_schema: Dict
    policy_settings: Dict
    policy_parameters: Dict
    description: str
    functionality_data: Dict

    @staticmethod
    def from_dict(data: Dict) -> "SdkPolicyRule":
        return SdkPolicyRule(
            policy_rule_uri=f"{data['name']}:{data['version']}-{data['release_tag']}",
            name=data['name'],
            version=data['version'],
            release_tag=data['release_tag'],
            metadata=data['metadata'],
            tags=data['tags'],
            code=data['code'],
            code_type=data['code_type'],
            type=data['type'],
            policy_input_schema=data['policy_input_schema'],
            policy_output_schema=data['policy_output_schema'],
            policy_settings_schema=data['policy_settings_schema'],
            policy_parameters_schema=data['policy_parameters_schema'],
            policy_settings=data['policy_settings'],
            policy_parameters=data['policy_parameters'],
            description=data['description'],
            functionality_data=data['functionality_data'],
        )


def sdk_read_policy(registry: Registry, policy_rule_uri: str) -> Optional[SdkPolicyRule]:
    """PolicyDBClient.read_policy (client.py lines 71-85) minus the HTTP."""
    data = registry.get_policy(policy_rule_uri)
    if data.get("success"):
        return SdkPolicyRule.from_dict(data["data"])
    return None


# --- executor/core/code_executor.py lines 13-153: LocalCodeExecutor ------------------

class LocalCodeExecutor:
    """download (a local archive), unpack into /tmp/<uuid>/, initialize_function
    (``sys.modules["function"]``, ``AIOSv1PolicyRule("", settings, parameters)``),
    evaluate (``eval(self.parameters, input_data, None)``).  install_dependencies
    (``pip install -r code/requirements.txt``) is not run: the test's interpreter
    already has this Charter, which is what the pin names."""

    def __init__(self, download_url: str, settings: dict, parameters: dict, tmp_root: Path):
        self.download_url = download_url
        self.session_uuid = str(uuid.uuid4())
        self.temp_dir = tmp_root / self.session_uuid
        self.code_dir = self.temp_dir / "code"
        self.requirements_file = self.code_dir / "requirements.txt"
        self.function_file = self.code_dir / "function.py"
        self.function_class: Any = None
        self.settings = settings
        self.parameters = parameters

    def download(self) -> Optional[Path]:
        self.temp_dir.mkdir(parents=True, exist_ok=True)
        target_path = Path(self.download_url)
        if target_path.exists():
            if target_path.is_file() and (target_path.suffix in [".gz", ".zip", ".xz"]
                                          or target_path.suffixes[-2:] == [".tar", ".gz"]):
                return target_path
            elif target_path.is_dir():
                self.code_dir.mkdir(parents=True, exist_ok=True)
                shutil.copytree(target_path, self.code_dir, dirs_exist_ok=True)
                return None
            raise ValueError("Unsupported local path format or non-existing path")
        raise ValueError(f"no remote downloads in tests: {self.download_url}")

    def unpack(self, archive_path: Optional[Path]) -> None:
        if not archive_path:
            return
        if tarfile.is_tarfile(archive_path):
            with tarfile.open(archive_path) as tar:
                tar.extractall(self.temp_dir)
        elif zipfile.is_zipfile(archive_path):
            with zipfile.ZipFile(archive_path, "r") as zip_ref:
                zip_ref.extractall(self.temp_dir)
        else:
            raise ValueError("Unsupported file format")
        if not self.code_dir.exists():
            raise FileNotFoundError("code/ directory not found in archive")

    def initialize_function(self) -> None:
        spec = importlib.util.spec_from_file_location("function", self.function_file)
        module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
        sys.modules["function"] = module
        spec.loader.exec_module(module)  # type: ignore[union-attr]
        self.function_class = getattr(module, "AIOSv1PolicyRule")(
            "", self.settings, self.parameters)

    def evaluate(self, input_data: Any) -> Any:
        if not self.function_class:
            raise RuntimeError("Function class not initialized")
        return self.function_class.eval(self.parameters, input_data, None)

    def mgmt(self, action: str, mgmt_data: Any) -> Any:  # SDK code_executor.py lines 125-131
        return self.function_class.management(action, mgmt_data)

    def init(self) -> None:
        self.unpack(self.download())
        self.initialize_function()

    def execute(self, input_data: Any) -> Any:
        # every call downloads, unpacks and builds a new instance (lines 238-247)
        self.unpack(self.download())
        self.initialize_function()
        return self.evaluate(input_data)


# --- the three ways AIGrid runs a rule ---------------------------------------------------

class SdkLocalExecutor:
    """policies_local_sdk/aios_policy_sandbox/executor.py lines 56-114 and 117-143
    (mode "local"): reads the rule, merges the registry's parameters and settings OVER
    the caller's (``parameters.update(...)``, ``settings.update(...)``), then
    ``LocalCodeExecutor.execute`` per call: a new instance for every event."""

    def __init__(self, registry: Registry, policy_rule_uri: str, tmp_root: Path,
                 parameters: Optional[dict] = None, settings: Optional[dict] = None):
        policy_data = sdk_read_policy(registry, policy_rule_uri)
        if not policy_data:
            raise ValueError(f"Policy rule with URI '{policy_rule_uri}' not found.")
        policy_parameters = policy_data.policy_parameters
        if parameters is None:
            parameters = policy_parameters
        else:
            parameters.update(policy_parameters)
        if settings is None:
            settings = policy_data.policy_settings
        else:
            settings.update(policy_data.policy_settings)
        self.executor = LocalCodeExecutor(policy_data.code, settings, parameters, tmp_root)
        self.executor.init()

    def execute_policy_rule(self, input_data: Any) -> Any:
        return self.executor.execute(input_data)

    def execute_mgmt_command(self, action: str, mgmt_data: Any) -> Any:
        return self.executor.mgmt(action, mgmt_data)


def executor_service_call(registry_row: dict, input_data: Any, tmp_root: Path,
                          parameters: Optional[dict] = None) -> Any:
    """executor/core/executor.py lines 16-47 (run by MultiprocessingPolicyRuleExecutor in a
    new process per call, lines 61-94): the registry's settings alone, the caller's
    parameters or the registry's, a new LocalCodeExecutor and instance per call."""
    policy_data = RegistryPolicyRule.from_dict(registry_row)
    if parameters is None:
        parameters = policy_data.policy_parameters
    executor = LocalCodeExecutor(policy_data.code, policy_data.policy_settings, parameters,
                                 tmp_root)
    return executor.execute(input_data)


class LongLivedExecutor:
    """executor_server/core/executor.py lines 13-50 (the Type 4 container): one
    LocalCodeExecutor, ``init()`` once, ``evaluate`` per call; settings are the
    registry's."""

    def __init__(self, registry: Registry, policy_rule_uri: str, tmp_root: Path,
                 parameters: Optional[dict] = None):
        policy_data = sdk_read_policy(registry, policy_rule_uri)
        if not policy_data:
            raise ValueError(f"Policy rule with URI '{policy_rule_uri}' not found.")
        if parameters is None:
            parameters = policy_data.policy_parameters
        self.executor = LocalCodeExecutor(policy_data.code, policy_data.policy_settings,
                                          parameters, tmp_root)
        self.executor.init()

    def execute(self, input_data: Any) -> Any:
        return self.executor.evaluate(input_data)
