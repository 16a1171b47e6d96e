"""Errors as data, and the one renderer that turns them into text or JSON.

A :class:`Diagnostic` has a stable code (``E0101``, ``W0301``), a message, a
source span, optional notes and a hint.  Passes collect diagnostics in a
:class:`Diagnostics` sink and keep going, so one run reports every
independent error.  :data:`CODES` is the registry of every code with a short
title; ``docs/diagnostics.rst`` and the golden tests are kept in step with it.
"""
from __future__ import annotations

import json
from typing import Iterable, Optional

import attrs

from .ir import NOSPAN, Span

# code -> one-line title.  Codes are stable: never renumber, only add.
CODES: dict[str, str] = {
    # E00xx: input
    "E0001": "file cannot be read",
    "E0002": "file is not valid UTF-8 text",
    "E0003": "file is too large",
    "E0004": "file is empty",
    # E01xx: syntax
    "E0101": "unexpected token",
    "E0102": "unexpected character",
    "E0103": "unexpected end of file",
    "E0104": "nesting too deep",
    "E0105": "invalid literal",
    "E0106": "invalid assignment target",
    # E02xx: names and imports
    "E0201": "unknown name",
    "E0202": "duplicate declaration",
    "E0203": "import not found",
    "E0204": "import cycle",
    "E0205": "unknown template parameter",
    "E0206": "conflicting imported declaration",
    "E0207": "unknown field",
    "E0208": "missing field",
    "E0209": "unknown event",
    "E0210": "unknown unit",
    "E0211": "invalid declaration option",
    # E03xx: types
    "E0301": "type mismatch",
    "E0302": "mixed assets",
    "E0303": "fractional amount needs rounding",
    "E0304": "condition is not a boolean",
    "E0305": "wrong number of arguments",
    "E0306": "not an account",
    "E0307": "not a collection",
    "E0308": "value out of declared range",
    "E0309": "optional value used without a check",
    "E0310": "parameter default is not a constant",
    # E04xx: economic rules
    "E0401": "asset is not transferable",
    "E0402": "asset supply is fixed",
    "E0403": "asset is not burnable",
    "E0404": "account holds another asset",
    "E0405": "record holds no asset",
    "E0406": "not a right",
    "E0407": "invalid rounding method",
    "E0408": "assignment to a read-only name",
    "E0409": "invalid split option",
    # E05xx: handlers
    "E0501": "handler has no `by` clause",
    "E0502": "duplicate handler",
    "E0503": "invalid period",
    "E0504": "old() outside an ensures clause",
    "E0505": "old() inside old()",
    # E06xx: properties and tests
    "E0601": "property names an unknown handler",
    "E0602": "property names a handler without a split",
    "E0603": "invalid property kind",
    "E0604": "test step is not constant",
    # E07xx: functions, mutable locals, loops, text and arithmetic built-ins
    "E0701": "recursive function or procedure",
    "E0702": "function call or procedure expands too far",
    "E0703": "function shadows a built-in",
    "E0704": "function result type has a range",
    "E0705": "value a var cannot hold",
    "E0706": "loop range without a static bound",
    "E0707": "invalid ordering key",
    "E0708": "invalid number format",
    "E0709": "procedure and function confused",
    # E074x: asset families (issue 17, h17c)
    "E0740": "asset family of the wrong kind",
    "E0741": "asset family member not named",
    "E0742": "asset family member not a fixed text",
    "E0743": "member of an asset that is not a family",
    "E0744": "invalid asset family member key",
    # E075x: bounded list fields (issue 17, h17d)
    "E0750": "invalid list bound",
    "E0751": "list field without a bound",
    "E0752": "invalid list item type",
    "E0753": "not a list field",
    "E0754": "list literal too long",
    # W: warnings
    "W0301": "unreachable code",
    "W0302": "unused let binding",
    "W0303": "condition is always true",
    "W0304": "handler moves no value and changes no state",
}


@attrs.frozen
class Diagnostic:
    code: str
    message: str
    span: Span = NOSPAN
    notes: tuple[str, ...] = ()
    hint: Optional[str] = None

    @property
    def severity(self) -> str:
        return "warning" if self.code.startswith("W") else "error"

    def to_dict(self) -> dict[str, object]:
        return {
            "code": self.code,
            "severity": self.severity,
            "message": self.message,
            "file": self.span.file,
            "line": self.span.line,
            "col": self.span.col,
            "end_line": self.span.end_line,
            "end_col": self.span.end_col,
            "notes": list(self.notes),
            "hint": self.hint,
        }


class CharterError(Exception):
    """Raised by the compiler API when a policy has errors; carries them all."""

    def __init__(self, diagnostics: Iterable[Diagnostic], sources: Optional[dict[str, str]] = None):
        self.diagnostics = tuple(diagnostics)
        self.sources = sources or {}
        text = render_text(self.diagnostics, self.sources) if self.diagnostics else "error"
        super().__init__(text)


class Diagnostics:
    """A sink that passes report into; errors are collected, not raised."""

    def __init__(self) -> None:
        self.items: list[Diagnostic] = []

    def error(self, code: str, message: str, span: Span = NOSPAN, *, hint: Optional[str] = None,
              notes: Iterable[str] = ()) -> None:
        assert code in CODES, code
        self.items.append(Diagnostic(code, message, span, tuple(notes), hint))

    warning = error

    @property
    def has_errors(self) -> bool:
        return any(d.severity == "error" for d in self.items)

    def sorted(self) -> list[Diagnostic]:
        seen: set[tuple] = set()
        out = []
        for d in sorted(self.items, key=lambda d: (d.span.file, d.span.line, d.span.col, d.code)):
            key = (d.code, d.message, d.span)
            if key not in seen:
                seen.add(key)
                out.append(d)
        return out


def closest(name: str, options: Iterable[str], cutoff: float = 0.7) -> Optional[str]:
    """The option a misspelt ``name`` most likely meant (case-insensitive), or None."""
    import difflib

    by_lower: dict[str, str] = {}
    for o in options:
        if o and o != name:
            by_lower.setdefault(o.lower(), o)
    if len(name) > 200:  # a generated or pasted blob is no typo
        return None
    if name.lower() in by_lower:
        return by_lower[name.lower()]
    close = difflib.get_close_matches(name.lower(), list(by_lower), n=1, cutoff=cutoff)
    return by_lower[close[0]] if close else None


def did_you_mean(name: str, options: Iterable[str], cutoff: float = 0.7) -> Optional[str]:
    """The hint ``did you mean `x`?`` for a misspelt name, or None when nothing is close."""
    best = closest(name, options, cutoff)
    return f"did you mean `{best}`?" if best else None


def source_lines(text: str) -> list[str]:
    """Lines as the lexer counts them: only '\\n' ends a line (not '\\f', '\\v', U+2028...)."""
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return [ln[:-1] if ln.endswith("\r") else ln for ln in lines]


def _source_line(sources: dict[str, str], span: Span,
                 cache: Optional[dict[str, list[str]]] = None) -> Optional[str]:
    text = sources.get(span.file)
    if text is None or span.line < 1:
        return None
    if cache is None:
        cache = {}
    lines = cache.get(span.file)
    if lines is None:  # split each file once per rendering, not once per diagnostic
        lines = cache[span.file] = source_lines(text)
    if span.line > len(lines):
        return None
    return lines[span.line - 1]


def render_one(d: Diagnostic, sources: dict[str, str],
               _lines: Optional[dict[str, list[str]]] = None) -> str:
    head = f"{d.span.file}:{d.span.line}:{d.span.col}: {d.severity}[{d.code}]: {d.message}"
    out = [head]
    line = _source_line(sources, d.span, _lines)
    if line is not None:
        gutter = str(d.span.line)
        pad = " " * len(gutter)
        width = 1
        if d.span.end_line == d.span.line and d.span.end_col > d.span.col:
            width = d.span.end_col - d.span.col
        width = max(1, min(width, len(line) - d.span.col + 2))
        shown = line.replace("\t", " ")
        if len(shown) > 200:  # a minified or generated line: show the part around the caret
            start = max(0, d.span.col - 80)
            shown = shown[start:start + 160]
            caret_at = d.span.col - 1 - start
        else:
            caret_at = d.span.col - 1
        out.append(f"{pad} |")
        out.append(f"{gutter} | {shown}")
        out.append(f"{pad} | {' ' * max(0, caret_at)}{'^' * min(width, 160)}")
    for note in d.notes:
        out.append(f"  = note: {note}")
    if d.hint:
        out.append(f"  = hint: {d.hint}")
    return "\n".join(out)


def render_text(diags: Iterable[Diagnostic], sources: dict[str, str]) -> str:
    diags = list(diags)
    lines: dict[str, list[str]] = {}
    parts = [render_one(d, sources, lines) for d in diags]
    errors = sum(1 for d in diags if d.severity == "error")
    warnings = len(diags) - errors
    if diags:
        parts.append(f"{errors} error{'s' if errors != 1 else ''}, "
                     f"{warnings} warning{'s' if warnings != 1 else ''}")
    return "\n\n".join(parts[:-1]) + ("\n\n" if len(parts) > 1 else "") + parts[-1] if parts else ""


def render_json(diags: Iterable[Diagnostic]) -> str:
    return json.dumps([d.to_dict() for d in diags], indent=2)
