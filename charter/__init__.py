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


def __getattr__(name: str):  # PEP 562: the API is imported on first use
    """``charter.open_runtime`` & co. come from :mod:`charter.api`, imported when first asked
    for: ``import charter`` (and ``charter --version``) stays cheap, and the compiler, Lark
    and Z3 load only for what needs them."""
    if name.startswith("__") and name != "__all__":
        raise AttributeError(name)
    import importlib

    api = importlib.import_module("charter.api")
    if name == "__all__":
        return api.__all__
    try:
        value = getattr(api, name)
    except AttributeError:
        raise AttributeError(f"module 'charter' has no attribute {name!r}") from None
    globals()[name] = value
    return value
