"""Set-up that many test files share, written once.

``tests/`` is on ``sys.path`` in every test run (pytest puts the directory of the root
``conftest.py`` there), so any test file can ``from helpers import ...``.

- ``GIG`` / ``GIG_POLICY``: the worked gig-market example and its policy file;
  ``gig_events(n, ...)``: its event generator (``examples/gig_market/generate.py``),
  imported once by path, so no test puts the example's folder on ``sys.path``.
- ``invoke(*args, env=None)``: the ``charter`` command in process (click's runner); an
  uncaught exception is raised, never turned into an exit code.
- ``walk(x)``: every value inside an IR node, tuple or value, ``x`` first, depth first.
- ``formatted(path, forms)``: ``charter fmt``'s output for a policy file, checked to parse
  to the same AST and to contain each of ``forms``.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any, Iterator

ROOT = Path(__file__).resolve().parents[1]
GIG = ROOT / "examples" / "gig_market"
GIG_POLICY = GIG / "policy.charter"


def _generate() -> Any:
    import sys

    mod = sys.modules.get("generate")
    if mod is None:
        spec = importlib.util.spec_from_file_location("generate", GIG / "generate.py")
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        sys.modules["generate"] = mod
    return mod


def gig_events(*args: Any, **kw: Any) -> Any:
    """``examples/gig_market/generate.gig_events(*args, **kw)``."""
    return _generate().gig_events(*args, **kw)


def invoke(*args: Any, env: Any = None) -> Any:
    from click.testing import CliRunner

    from charter.cli import cli

    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False, env=env)


def walk(x: Any) -> Iterator[Any]:
    yield x
    if isinstance(x, tuple):
        for i in x:
            yield from walk(i)
    elif hasattr(type(x), "__attrs_attrs__"):
        for f in type(x).__attrs_attrs__:
            yield from walk(getattr(x, f.name))


def formatted(path: Path, forms: tuple[str, ...] = ()) -> tuple[str, str]:
    """(the file's text, ``format_source`` of it); asserts both parse to the same AST and
    that the output holds every line of ``forms``."""
    from charter.compiler.fmt import format_source, strip_positions
    from charter.compiler.parse import parse_source

    text = path.read_text("utf-8")
    once = format_source(text)
    assert strip_positions(parse_source(once)) == strip_positions(parse_source(text))
    for form in forms:
        assert form in once, form
    return text, once
