"""Sphinx configuration for the Charter documentation.

Built in CI with ``sphinx-build -W -b html docs docs/_build/html`` (warnings
are errors).  The economy pages are rendered from ``stdlib_policies/`` by
``_ext/charter_economies.py`` at build time (nothing is written into the
source tree), so they never fall out of step with the policies.  Charter
snippets are ``.. code-block:: charter``, highlighted by
:mod:`charter.pygments_lexer` (also registered as a Pygments entry point).
"""
from __future__ import annotations

import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
sys.path.insert(0, str(DOCS / "_ext"))
# Import the checkout's charter for autodoc and the economy pages (its
# __init__ finds compiler/, runtime/ beside it).
sys.path.insert(0, str(ROOT))

project = "Charter"
author = "The Charter authors"
copyright = "2026, The Charter authors"

import tomllib  # noqa: E402

with open(ROOT / "pyproject.toml", "rb") as _f:
    release = version = tomllib.load(_f)["project"]["version"]

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "charter_economies",
    "charter_cli",
    "charter_simulate",
]

autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_default_options = {"members": True, "undoc-members": False}
# Every reference to a `charter.` name must resolve (a dead :class: is a
# warning, so an error under -W); attrs/typing/stdlib names in signatures have
# no target here and are not checked.
nitpicky = True
nitpick_ignore_regex = [(r"py:.*", r"(?!charter\.).*"),
                        (r"py:.*", r"charter\.(compiler|runtime)\..*")]

exclude_patterns = ["_build"]
templates_path: list[str] = []
html_theme = "alabaster"
html_static_path: list[str] = []
highlight_language = "text"
pygments_style = "sphinx"


def setup(app):  # type: ignore[no-untyped-def]
    # The entry point registers the lexer when the package is installed; a
    # build from a bare checkout gets it from here.
    from charter.pygments_lexer import CharterLexer

    app.add_lexer("charter", CharterLexer)
