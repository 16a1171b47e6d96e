"""Golden diagnostics: every error code the compiler emits has a failing policy whose
rendered diagnostics are checked in (see golden.py; regenerate with regen.py)."""
from __future__ import annotations

import re
from importlib import resources

import pytest

from charter.compiler.diagnostics import CODES
from golden import NOT_EMITTED, case_names, code_of, expected_path, run_case

NAMES = case_names()


@pytest.mark.parametrize("name", NAMES)
def test_rendered_text_matches_golden(name: str) -> None:
    diags, text = run_case(name)
    assert code_of(name) in {d.code for d in diags}, \
        f"{name} no longer produces {code_of(name)}: {[d.code for d in diags]}"
    path = expected_path(name)
    assert path.exists(), f"no golden for {name}: run tests/diagnostics/regen.py"
    assert text + "\n" == path.read_text("utf-8"), \
        f"{name}: output changed; run tests/diagnostics/regen.py and review the diff"


@pytest.mark.parametrize("name", NAMES)
def test_every_diagnostic_is_located_and_registered(name: str) -> None:
    diags, _ = run_case(name)
    for d in diags:
        assert d.code in CODES
        assert d.span.line >= 1 and d.span.col >= 1, d
        assert d.span.file == f"{name}.charter" or d.span.file.startswith("<stdlib>"), d
        assert d.message and not d.message.endswith(".")


def test_every_case_has_a_registered_code_and_a_golden() -> None:
    for name in NAMES:
        assert code_of(name) in CODES, f"{name}: unknown code"
        assert re.fullmatch(r"[EW]\d{4}_[a-z0-9_]+", name), name
    goldens = {p.stem for p in expected_path("x").parent.glob("*.expected")}
    assert goldens == set(NAMES), f"goldens without a case: {goldens - set(NAMES)}"


def _compiler_sources() -> str:
    root = resources.files("charter.compiler")
    texts = [p.read_text("utf-8") for p in root.iterdir()
             if p.name.endswith(".py") and p.name != "diagnostics.py"]
    cli = resources.files("charter")
    texts += [p.read_text("utf-8") for p in cli.iterdir() if p.name.endswith(".py")]
    return "\n".join(texts)


def test_every_emitted_code_has_a_case() -> None:
    covered = {code_of(n) for n in NAMES}
    missing = sorted(set(CODES) - set(NOT_EMITTED) - covered)
    assert not missing, f"codes without a golden case: {missing}"


@pytest.mark.parametrize("code", sorted(NOT_EMITTED))
def test_codes_listed_as_not_emitted_really_are_not(code: str) -> None:
    # When a pass starts emitting one of these, it needs a case: move it off the list.
    assert code in CODES
    assert f'"{code}"' not in _compiler_sources(), \
        f"{code} is emitted now: add tests/diagnostics/cases/{code}_<slug>.charter"
