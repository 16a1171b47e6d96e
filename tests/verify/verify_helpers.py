"""Helpers for the verifier tests: compile Charter text and verify it quickly."""

from __future__ import annotations

import functools

from charter.compiler import verify as V
from charter.compiler.pipeline import Compilation



def compile_text(text: str, name: str = "t"):
    return Compilation.from_text(text, file=f"{name}.charter").ir


@functools.lru_cache(maxsize=None)
def verify_text(text: str, bound: int = 3):
    """Compile and verify (memoised: several table rows share one policy)."""
    policy = compile_text(text)
    results = V.verify(policy, V.Options(bound=bound), use_cache=False)
    return policy, {r.name: r for r in results}
