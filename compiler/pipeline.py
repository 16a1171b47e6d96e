"""The compiler's stages, in order, as lazily computed properties of one object.

=========  ==============================  =========================
stage      module                          produces
=========  ==============================  =========================
read       :mod:`charter.compiler.source`  text (size/encoding checked)
parse      :mod:`charter.compiler.parse`   :class:`ast.Module`
resolve    :mod:`charter.compiler.resolve` :class:`resolve.Symbols`
typecheck  :mod:`charter.compiler.typecheck` typed IR of bodies
lower      :mod:`charter.compiler.lower`   :class:`ir.Policy`
verify     :mod:`charter.compiler.verify`  proof results (``charter verify``)
=========  ==============================  =========================

``Compilation(...).ir`` runs every stage it needs once and caches it; every
diagnostic of every stage that ran is in ``.diagnostics``.
"""
from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import Any, Callable, Optional

from . import ast, ir
from .diagnostics import CharterError, Diagnostic, Diagnostics
from .lower import lower
from .parse import ParseFailure, parse_source
from .resolve import Symbols, resolve
from .source import SourceError, check_text, read_source_file


class Compilation:
    def __init__(self, text: Optional[str], file: str, params: Optional[dict[str, Any]] = None,
                 *, read_error: Optional[SourceError] = None):
        self.text = text
        self.file = file
        self.params = dict(params or {})
        self._diags = Diagnostics()
        self.read_error = read_error
        # Set before the first stage runs to be told each expression's typed IR
        # (``charter lsp`` hover); the checker calls it, nothing else changes.
        self.on_expr: Optional[Callable[[ast.Expr, Any], None]] = None
        if read_error is not None:
            self._diags.items.append(read_error.diagnostic)

    @classmethod
    def from_text(cls, text: str, file: str = "<input>",
                  params: Optional[dict[str, Any]] = None) -> "Compilation":
        try:
            check_text(text, file)
        except SourceError as err:
            return cls(None, file, params, read_error=err)
        return cls(text, file, params)

    @classmethod
    def from_path(cls, path: str | Path, params: Optional[dict[str, Any]] = None) \
            -> "Compilation":
        try:
            return cls(read_source_file(path), str(path), params)
        except SourceError as err:
            return cls(None, str(path), params, read_error=err)

    @property
    def sources(self) -> dict[str, str]:
        if "symbols" in self.__dict__ and self.symbols is not None:
            return dict(self.symbols.sources)
        return {self.file: self.text} if self.text is not None else {}

    @cached_property
    def module(self) -> Optional[ast.Module]:
        if self.text is None:
            return None
        try:
            return parse_source(self.text, self.file)
        except ParseFailure as err:
            self._diags.items.append(err.diagnostic)
            return None

    @cached_property
    def symbols(self) -> Optional[Symbols]:
        if self.module is None:
            return None
        return resolve(self.module, self.text or "", self._diags)

    @cached_property
    def _lowered(self) -> Optional[ir.Policy]:
        if self.symbols is None:
            return None
        try:
            return lower(self.symbols, self._diags, self.params, self.on_expr)
        except RecursionError:
            self._diags.error("E0104", "the policy is nested too deeply to check",
                              self.module.span if self.module else ir.NOSPAN)
            return None

    @property
    def diagnostics(self) -> list[Diagnostic]:
        _ = self._lowered
        return self._diags.sorted()

    @property
    def ok(self) -> bool:
        return not any(d.severity == "error" for d in self.diagnostics)

    @property
    def ir(self) -> ir.Policy:
        policy = self._lowered
        if policy is None or not self.ok:
            raise CharterError([d for d in self.diagnostics], self.sources)
        return policy


def load_policy(source: str | Path, params: Optional[dict[str, Any]] = None) -> ir.Policy:
    """Compile a policy from a path or from its text; raise CharterError on errors."""
    if isinstance(source, Path) or ("\n" not in str(source) and
                                    str(source).endswith(".charter")):
        return Compilation.from_path(source, params).ir
    return Compilation.from_text(str(source), "<input>", params).ir
