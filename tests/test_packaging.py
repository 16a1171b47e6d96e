"""The wheel is what users get: build it, look inside, install it, use it.

Builds the project's wheel from a copy of the sources, checks that
everything is under the one import name ``charter`` (grammar and stdlib as
package data, no top-level ``compiler``/``runtime``), installs it into an
empty folder and, from outside the repository, runs the console script and
compiles policies whose grammar and imports are found only through
``importlib.resources``.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SOURCES = ("pyproject.toml", "README.md", "charter", "compiler", "runtime", "grammar",
           "stdlib_policies")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    work = tmp_path_factory.mktemp("pkg")
    src = work / "src"
    src.mkdir()
    # Build from a copy: an in-tree build writes build/ and *.egg-info into
    # the checkout, which other test runs may be reading at the same time.
    skip = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info", "build")
    for name in SOURCES:
        p = ROOT / name
        if p.is_dir():
            shutil.copytree(p, src / name, ignore=skip)
        else:
            shutil.copy2(p, src / name)
    out = work / "wheels"
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(out), str(src)],
        capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    wheels = list(out.glob("charter_policy-*.whl"))
    assert len(wheels) == 1, wheels
    return wheels[0]


def _names(wheel: Path) -> set[str]:
    with zipfile.ZipFile(wheel) as zf:
        return set(zf.namelist())


def _expected_members() -> list[str]:
    out = ["charter/__init__.py", "charter/cli.py", "charter/api.py",
           "charter/grammar/charter.lark"]
    for sub, pkg in (("compiler", "compiler"), ("runtime", "runtime")):
        out += [f"charter/{pkg}/{p.name}" for p in sorted((ROOT / sub).glob("*.py"))]
    out += [f"charter/stdlib_policies/{p.name}"
            for p in sorted((ROOT / "stdlib_policies").glob("*.charter"))]
    out += [f"charter/{p.name}" for p in sorted((ROOT / "charter").glob("cli_*.py"))]
    return out


def test_wheel_contains_every_module_and_data_file(wheel: Path) -> None:
    names = _names(wheel)
    missing = [m for m in _expected_members() if m not in names]
    assert not missing, f"not in the wheel: {missing}"


def test_wheel_has_one_top_level_package(wheel: Path) -> None:
    tops = {n.split("/", 1)[0] for n in _names(wheel)}
    packages = {t for t in tops if not t.endswith((".dist-info", ".data"))}
    assert packages == {"charter"}, packages


def test_wheel_declares_console_script(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as zf:
        ep = next(n for n in zf.namelist() if n.endswith(".dist-info/entry_points.txt"))
        text = zf.read(ep).decode()
    assert "charter = charter.cli:main" in text


# What the installed package must do, run in a separate interpreter whose
# only source of `charter` is the installed wheel.
_PROBE = r"""
import json, sys
from importlib import resources
import charter, charter.compiler.parse, charter.runtime
site = sys.argv[1]
files = {m.__name__: m.__file__ for m in (charter, charter.compiler.parse, charter.runtime)}
stdlib = sorted(p.name for p in resources.files("charter.stdlib_policies").iterdir()
                if p.name.endswith(".charter"))
compiled = {}
for name in stdlib:
    text = resources.files("charter.stdlib_policies").joinpath(name).read_text("utf-8")
    policy = charter.load_policy(text)
    compiled[name] = [policy.name, len(policy.handlers)]
importer = None
if stdlib:
    first = stdlib[0][:-len(".charter")]
    p = charter.load_policy('policy uses_stdlib version "1"\nimport "%s" as m\n' % first)
    importer = sorted(h.name for h in p.handlers)
print(json.dumps({"files": files, "stdlib": stdlib, "compiled": compiled,
                  "importer": importer,
                  "grammar": len(charter.compiler.parse.grammar_text())}))
"""


@pytest.fixture(scope="module")
def installed(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    site = tmp_path_factory.mktemp("site")
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "--no-index", "--quiet",
         "--target", str(site), str(wheel)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    outside = tmp_path_factory.mktemp("elsewhere")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    env["PYTHONPATH"] = str(site)  # dependencies come from the runner's own environment
    env["PYTHONSAFEPATH"] = "1"  # no cwd on sys.path
    return {"site": site, "cwd": outside, "env": env}


def _run(installed: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(list(args), cwd=installed["cwd"], env=installed["env"],
                          capture_output=True, text=True, timeout=120)


def test_installed_console_script_runs(installed: dict) -> None:
    script = installed["site"] / "bin" / "charter"
    proc = _run(installed, str(script), "--help")
    assert proc.returncode == 0, proc.stderr
    assert "Usage:" in proc.stdout and "check" in proc.stdout


def test_installed_package_uses_package_data_only(installed: dict) -> None:
    proc = _run(installed, sys.executable, "-c", _PROBE, str(installed["site"]))
    assert proc.returncode == 0, proc.stderr
    got = json.loads(proc.stdout)
    site = str(installed["site"])
    for mod, path in got["files"].items():
        assert path.startswith(site), f"{mod} imported from {path}, not from the wheel"
        assert not path.startswith(str(ROOT)), path
    expected = sorted(p.name for p in (ROOT / "stdlib_policies").glob("*.charter"))
    assert got["stdlib"] == expected
    for name, (policy_name, n_handlers) in got["compiled"].items():
        assert policy_name and n_handlers > 0, (name, policy_name, n_handlers)
    if expected:
        assert got["importer"], "a policy importing a stdlib module has no handlers"
        assert all(h.startswith("m.") for h in got["importer"]), got["importer"]
    assert got["grammar"] > 1000


def test_installed_check_of_a_stdlib_file(installed: dict) -> None:
    stdlib = sorted((installed["site"] / "charter" / "stdlib_policies").glob("*.charter"))
    if not stdlib:
        pytest.skip("no stdlib policy yet")
    script = installed["site"] / "bin" / "charter"
    proc = _run(installed, str(script), "check", str(stdlib[0]))
    assert proc.returncode == 0, proc.stdout + proc.stderr


_AIGRID_PROBE = r"""
import importlib.util, json, sys, zipfile
from pathlib import Path
bundle, into = Path(sys.argv[1]), Path(sys.argv[2])
zipfile.ZipFile(bundle).extractall(into)
spec = importlib.util.spec_from_file_location("aigrid_probe_fn", into / "code" / "function.py")
mod = importlib.util.module_from_spec(spec)
spec.loader.exec_module(mod)
rule = mod.AIOSv1PolicyRule("r", {"store": "sqlite", "db_path": str(into / "l.sqlite")}, {})
out = [rule.eval({}, {"id": "1", "type": "join", "submitter": "ann", "time": 5, "args": {}}, {}),
       rule.eval({}, "not json", {})]
print(json.dumps({"out": out, "audit": rule.management("audit", {})}))
"""


def test_installed_aigrid_export_runs_on_the_wheel(installed: dict) -> None:
    stdlib = installed["site"] / "charter" / "stdlib_policies" / "gig_market.charter"
    if not stdlib.is_file():
        pytest.skip("no stdlib gig_market yet")
    script = installed["site"] / "bin" / "charter"
    out_dir = installed["cwd"] / "dist"
    proc = _run(installed, str(script), "export", "aigrid", str(stdlib), "-o", str(out_dir))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    bundle = next(out_dir.glob("*.zip"))
    proc = _run(installed, sys.executable, "-c", _AIGRID_PROBE, str(bundle),
                str(installed["cwd"] / "unzipped"))
    assert proc.returncode == 0, proc.stderr
    got = json.loads(proc.stdout)
    applied, garbage = got["out"]
    assert applied["status"] == "applied" and garbage["status"] == "rejected"
    assert got["audit"]["audit"]["ok"] is True
