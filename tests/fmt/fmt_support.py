"""Shared checks for the formatter tests: same meaning, same comments, idempotent."""
from __future__ import annotations

from collections import Counter
from typing import Any

from charter.compiler import ir
from charter.compiler.fmt import format_source, strip_positions
from charter.compiler.parse import parse_source

# IR fields that record where or how something was written, not what it means:
# spans, the hash of the source text, and the display text of a test expectation.
_PRESENTATION = frozenset({"span", "source_hash"})


def ir_shape(policy: ir.Policy) -> Any:
    """``ir.to_data`` without presentation-only fields."""
    def strip(v: Any) -> Any:
        if isinstance(v, dict):
            return {k: strip(x) for k, x in v.items()
                    if k not in _PRESENTATION and not (v.get("node") == "ExpectTrue" and k == "text")}
        if isinstance(v, list):
            return [strip(x) for x in v]
        return v
    return strip(ir.to_data(policy))


def compiled_ir(text: str) -> Any:
    """The IR shape of ``text``, or None when it does not compile (or no compiler yet)."""
    try:
        from charter.compiler.pipeline import Compilation
    except ImportError:  # the compiler has not landed: AST comparison only
        return None
    c = Compilation.from_text(text, file="p.charter")
    if not c.ok:
        return None
    return ir_shape(c.ir)


def assert_formats_safely(text: str, *, compare_ir: bool = True) -> str:
    """Format ``text`` and check every promise of ``charter fmt``; return the output."""
    before = parse_source(text, "p.charter")
    out = format_source(text, "p.charter")
    after = parse_source(out, "p.charter")
    assert strip_positions(after) == strip_positions(before), "formatting changed the AST"
    assert Counter(c.text for c in after.comments) == Counter(c.text for c in before.comments)
    assert format_source(out, "p.charter") == out, "formatting is not idempotent"
    assert out.endswith("\n") and not out.endswith("\n\n")
    assert all(line == line.rstrip() for line in out.splitlines()), "trailing whitespace"
    if compare_ir:
        a = compiled_ir(text)
        if a is not None:
            assert compiled_ir(out) == a, "formatting changed the IR"
    return out
