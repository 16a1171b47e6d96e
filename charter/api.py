"""The embedding API: the names other programs use after ``import charter``.

Compile: :func:`load_policy` (path or text, parameter overrides) returns the
checked :class:`~charter.compiler.ir.Policy` or raises :class:`CharterError`
carrying every diagnostic.  Settle: the runtime's names are re-exported
here when the runtime is installed (see ``charter.runtime.api``).
"""
from __future__ import annotations

from charter.compiler.diagnostics import CharterError, Diagnostic
from charter.compiler.ir import Policy
from charter.compiler.pipeline import Compilation, load_policy

__all__ = ["CharterError", "Compilation", "Diagnostic", "Policy", "load_policy"]

import importlib as _importlib

try:  # the runtime re-exports its public names through charter.runtime.api
    _runtime_api = _importlib.import_module("charter.runtime.api")
except ModuleNotFoundError as _exc:  # pragma: no cover - only while the runtime is being built
    if _exc.name != "charter.runtime.api":
        raise
else:
    for _name in getattr(_runtime_api, "__all__", ()):
        globals()[_name] = getattr(_runtime_api, _name)
        __all__.append(_name)
