"""Charter: a policy language for programmable economies.

This package is the single import name of the project.  Installed, the
compiler, runtime, grammar and standard library are its sub-packages
(``charter.compiler``, ``charter.runtime``, ...).  In a source checkout they
live beside this folder (the design card's layout), so the package path is
extended to find them there too.
"""
from __future__ import annotations

from pathlib import Path as _Path

_here = _Path(__file__).resolve().parent
if not (_here / "compiler").is_dir() and (_here.parent / "compiler" / "__init__.py").is_file():
    # Source checkout: compiler/, runtime/, grammar/ ... are siblings of charter/.
    __path__.append(str(_here.parent))  # type: ignore[name-defined]

__version__ = "0.1.0"

from charter.api import *  # noqa: E402,F401,F403
from charter.api import __all__  # noqa: E402,F401
