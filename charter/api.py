"""The embedding API: the names other programs use after ``import charter``.

Compile: :func:`load_policy` (a path or the policy's text, parameter
overrides) returns the checked :class:`~charter.compiler.ir.Policy` or raises
:class:`CharterError` carrying every diagnostic.

Settle: :func:`open_runtime` opens a :class:`Runtime` on a store (memory or a
SQLite file); ``submit`` returns a :class:`Receipt` or a :class:`Rejection`;
:func:`replay` and :func:`audit_ledger` re-verify a ledger (see
:mod:`charter.runtime.api`).

Prove: :func:`verify` returns one :class:`VerifyResult` per property
(proved / refuted / unknown / guard_missing / vacuous), as ``charter verify``
prints them.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Optional

from charter.compiler.diagnostics import CharterError, Diagnostic
from charter.compiler.ir import Policy

from charter.compiler.pipeline import Compilation, load_policy
from charter.runtime import api as _runtime_api
from charter.runtime.api import *  # noqa: F401,F403  (the runtime's public names)

if TYPE_CHECKING:
    from charter.compiler.verify import Result as VerifyResult


def __getattr__(name: str):  # PEP 562: the verifier (and Z3) load only when asked for
    if name == "VerifyResult":
        from charter.compiler.verify import Result

        globals()[name] = Result
        return Result
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def verify(policy: Policy, *, bound: int = 3, rlimit: Optional[int] = None,
           timeout_ms: Optional[int] = None, use_cache: bool = True) -> list[VerifyResult]:
    """Prove the policy's built-in and declared properties with Z3.

    ``rlimit`` (Z3 resource units per query) decides every verdict; ``timeout_ms`` is only a
    wall-clock safety net per query (defaults: :class:`charter.compiler.verify.Options`).
    The verifier and Z3 are imported on the first call: compiling and settling never load
    them."""
    from charter.compiler.verify import Options as _VerifyOptions
    from charter.compiler.verify import verify as _verify

    opts = _VerifyOptions(bound=bound)
    if rlimit is not None:
        opts.rlimit = rlimit
    if timeout_ms is not None:
        opts.timeout_ms = timeout_ms
    return _verify(policy, opts, use_cache=use_cache)


__all__ = ["CharterError", "Compilation", "Diagnostic", "Policy", "load_policy", "verify",
           "VerifyResult", *_runtime_api.__all__]

