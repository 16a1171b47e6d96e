"""The Language Server Protocol front of Charter, on pygls: ``charter lsp`` (stdio).

=================================  ===============================================
feature                            answered from
=================================  ===============================================
diagnostics (open, change, save)   the compiler pipeline, every stage
hover                              typed IR + symbol table + doc comments
go to definition                   declarations, across imports, into the stdlib
find references                    every use in the document of that declaration
completion (``.``, ``"``)          keywords of the grammar, names in scope, fields
document symbols                   the module's declarations
formatting                         ``charter fmt`` (:func:`format_verified`)
=================================  ===============================================

Each open document is compiled on open and on every change; the last version
that parsed is kept, so hover, definition and completion keep working while a
line is half typed (as rust-analyzer does).  A compiler bug never takes the
server down: it becomes one diagnostic on line 1 and a log message.
"""
from __future__ import annotations

import logging
import traceback
from pathlib import Path
from typing import Any, Optional
from urllib.parse import unquote, urlparse

from lsprotocol import types as lsp
from pygls.exceptions import JsonRpcException
from pygls.lsp.server import LanguageServer
from pygls.protocol import LanguageServerProtocol
from pygls.uris import from_fs_path

from charter import __version__
from charter.compiler.diagnostics import Diagnostic, source_lines
from charter.compiler.fmt import FormatterBug, format_verified
from charter.compiler.ir import Span
from charter.compiler.parse import ParseFailure
from charter.lsp.analysis import Analysis, Completion, Symbol, stdlib_path

log = logging.getLogger(__name__)

COMPLETION_KINDS = {
    "keyword": lsp.CompletionItemKind.Keyword, "param": lsp.CompletionItemKind.Variable,
    "pool": lsp.CompletionItemKind.Field, "record": lsp.CompletionItemKind.Struct,
    "role": lsp.CompletionItemKind.Class, "asset": lsp.CompletionItemKind.Unit,
    "handler": lsp.CompletionItemKind.Event, "module": lsp.CompletionItemKind.Module,
    "builtin": lsp.CompletionItemKind.Function, "constant": lsp.CompletionItemKind.Constant,
    "type": lsp.CompletionItemKind.TypeParameter, "field": lsp.CompletionItemKind.Field,
    "local": lsp.CompletionItemKind.Variable,
}
SYMBOL_KINDS = {
    "module": lsp.SymbolKind.Module, "asset": lsp.SymbolKind.Constant,
    "role": lsp.SymbolKind.Class, "param": lsp.SymbolKind.Variable,
    "pool": lsp.SymbolKind.Field, "record": lsp.SymbolKind.Struct,
    "event": lsp.SymbolKind.Event, "property": lsp.SymbolKind.Property,
    "test": lsp.SymbolKind.Method, "field": lsp.SymbolKind.Field,
}


def uri_to_path(uri: str) -> str:
    parsed = urlparse(uri)
    if parsed.scheme == "file":
        return str(Path(unquote(parsed.path)))
    return uri  # an unsaved buffer: imports resolve against the working directory


class _Answered:
    """Stands in for a request that was already answered with an error; pygls's
    dispatcher ignores it (its ``jsonrpc`` is not "2.0")."""

    jsonrpc = "answered"


class CharterProtocol(LanguageServerProtocol):
    """pygls's protocol, except that a request whose params do not fit the LSP types
    gets a JSON-RPC error reply (``-32602`` invalid params) instead of none at all:
    pygls only logs it, and the editor would wait for the answer forever."""

    def structure_message(self, data: dict[str, Any]) -> Any:
        try:
            return super().structure_message(data)
        except JsonRpcException as exc:
            msg_id = data.get("id") if isinstance(data, dict) else None
            if isinstance(data, dict) and "method" in data and \
                    isinstance(msg_id, (int, str)) and not isinstance(msg_id, bool):
                self._send_response(msg_id, error=exc.to_response_error())
                return _Answered()
            raise


class CharterServer(LanguageServer):
    def __init__(self) -> None:
        super().__init__("charter-lsp", __version__,
                         text_document_sync_kind=lsp.TextDocumentSyncKind.Full,
                         protocol_cls=CharterProtocol)
        self.latest: dict[str, Analysis] = {}
        self.last_parsed: dict[str, Analysis] = {}

    # ---- analysis ----
    def analyse(self, uri: str) -> Optional[Analysis]:
        doc = self.workspace.get_text_document(uri)
        path = uri_to_path(uri)
        try:
            a = Analysis(doc.source, path)
        except Exception:  # a compiler bug: report it, keep serving
            log.error("compiler crashed on %s:\n%s", path, traceback.format_exc())
            self.text_document_publish_diagnostics(lsp.PublishDiagnosticsParams(
                uri=uri, version=doc.version, diagnostics=[lsp.Diagnostic(
                    range=lsp.Range(start=lsp.Position(line=0, character=0),
                                    end=lsp.Position(line=0, character=0)),
                    message="internal compiler error (see the server log); please report it",
                    severity=lsp.DiagnosticSeverity.Error, source="charter")]))
            return None
        self.latest[uri] = a
        if a.module is not None:
            self.last_parsed[uri] = a
        self.text_document_publish_diagnostics(lsp.PublishDiagnosticsParams(
            uri=uri, version=doc.version,
            diagnostics=[self.diagnostic(a, span, d) for span, d in a.editor_diagnostics()]))
        return a

    def for_features(self, uri: str) -> Optional[Analysis]:
        return self.last_parsed.get(uri) or self.latest.get(uri)

    # ---- positions: compiler spans are 1-based code points, LSP is 0-based client units ----
    def codec(self) -> Any:
        return self.workspace.position_codec

    def position_in(self, uri: str, p: lsp.Position) -> tuple[int, int]:
        """An editor position as a compiler (line, col), read against the current text."""
        lines = [ln + "\n" for ln in source_lines(self.workspace.get_text_document(uri).source)]
        if p.line >= len(lines):
            return (p.line + 1, p.character + 1)
        server = self.codec().position_from_client_units(lines, p)
        return (server.line + 1, server.character + 1)

    def range_of(self, span: Span, text: str) -> lsp.Range:
        lines = [ln + "\n" for ln in source_lines(text)] or ["\n"]

        def pos(line: int, col: int) -> lsp.Position:
            line0, col0 = max(0, line - 1), max(0, col - 1)
            if line0 >= len(lines):
                return lsp.Position(line=line0, character=0)
            return self.codec().position_to_client_units(
                lines, lsp.Position(line=line0, character=min(col0, len(lines[line0]) - 1)))

        end_line, end_col = (span.end_line, span.end_col) if span.end_line >= span.line \
            else (span.line, span.col)
        return lsp.Range(start=pos(span.line, span.col), end=pos(end_line, end_col))

    def diagnostic(self, a: Analysis, span: Span, d: Diagnostic) -> lsp.Diagnostic:
        message = d.message
        if span.file != d.span.file:
            message = f"{d.span}: {message}"  # reported in an imported file
        extra = list(d.notes) + ([f"hint: {d.hint}"] if d.hint else [])
        if extra:
            message += "\n" + "\n".join(extra)
        return lsp.Diagnostic(
            range=self.range_of(span, a.text), message=message, code=d.code, source="charter",
            severity=lsp.DiagnosticSeverity.Warning if d.severity == "warning"
            else lsp.DiagnosticSeverity.Error)

    def location(self, a: Analysis, span: Span) -> Optional[lsp.Location]:
        path = stdlib_path(span.file)
        if path is None:
            return None
        text = a.sources.get(span.file)
        if text is None:
            text = path.read_text("utf-8")
        return lsp.Location(uri=from_fs_path(str(path)) or path.as_uri(),
                            range=self.range_of(span, text))

    def symbol(self, a: Analysis, s: Symbol) -> lsp.DocumentSymbol:
        return lsp.DocumentSymbol(
            name=s.name, kind=SYMBOL_KINDS.get(s.kind, lsp.SymbolKind.Object), detail=s.detail,
            range=self.range_of(s.span, a.text), selection_range=self.range_of(s.selection, a.text),
            children=[self.symbol(a, c) for c in s.children] or None)


def completion_item(c: Completion) -> lsp.CompletionItem:
    return lsp.CompletionItem(
        label=c.label, kind=COMPLETION_KINDS.get(c.kind, lsp.CompletionItemKind.Text),
        detail=c.detail or None,
        documentation=lsp.MarkupContent(kind=lsp.MarkupKind.Markdown, value=c.doc)
        if c.doc else None)


def build() -> CharterServer:
    server = CharterServer()

    @server.feature(lsp.TEXT_DOCUMENT_DID_OPEN)
    def did_open(ls: CharterServer, params: lsp.DidOpenTextDocumentParams) -> None:
        ls.analyse(params.text_document.uri)

    @server.feature(lsp.TEXT_DOCUMENT_DID_CHANGE)
    def did_change(ls: CharterServer, params: lsp.DidChangeTextDocumentParams) -> None:
        ls.analyse(params.text_document.uri)

    @server.feature(lsp.TEXT_DOCUMENT_DID_SAVE)
    def did_save(ls: CharterServer, params: lsp.DidSaveTextDocumentParams) -> None:
        # The saved file may be imported by other open documents: recheck them all.
        for uri in dict.fromkeys([params.text_document.uri, *ls.latest]):
            ls.analyse(uri)

    @server.feature(lsp.TEXT_DOCUMENT_DID_CLOSE)
    def did_close(ls: CharterServer, params: lsp.DidCloseTextDocumentParams) -> None:
        uri = params.text_document.uri
        ls.latest.pop(uri, None)
        ls.last_parsed.pop(uri, None)
        ls.text_document_publish_diagnostics(lsp.PublishDiagnosticsParams(uri=uri, diagnostics=[]))

    @server.feature(lsp.TEXT_DOCUMENT_HOVER)
    def hover(ls: CharterServer, params: lsp.HoverParams) -> Optional[lsp.Hover]:
        a = ls.for_features(params.text_document.uri)
        if a is None:
            return None
        got = a.hover(ls.position_in(params.text_document.uri, params.position))
        if got is None:
            return None
        markdown, span = got
        return lsp.Hover(contents=lsp.MarkupContent(kind=lsp.MarkupKind.Markdown, value=markdown),
                         range=ls.range_of(span, a.text))

    @server.feature(lsp.TEXT_DOCUMENT_DEFINITION)
    def definition(ls: CharterServer, params: lsp.DefinitionParams) -> Optional[lsp.Location]:
        a = ls.for_features(params.text_document.uri)
        if a is None:
            return None
        span = a.definition(ls.position_in(params.text_document.uri, params.position))
        return ls.location(a, span) if span is not None else None

    @server.feature(lsp.TEXT_DOCUMENT_REFERENCES)
    def references(ls: CharterServer, params: lsp.ReferenceParams) -> list[lsp.Location]:
        a = ls.for_features(params.text_document.uri)
        if a is None:
            return []
        spans = a.references(ls.position_in(params.text_document.uri, params.position),
                             include_declaration=params.context.include_declaration)
        return [lsp.Location(uri=params.text_document.uri, range=ls.range_of(s, a.text))
                for s in spans]

    @server.feature(lsp.TEXT_DOCUMENT_COMPLETION,
                    lsp.CompletionOptions(trigger_characters=[".", '"']))
    def completion(ls: CharterServer, params: lsp.CompletionParams) -> lsp.CompletionList:
        uri = params.text_document.uri
        a = ls.for_features(uri)
        doc = ls.workspace.get_text_document(uri)
        lines = source_lines(doc.source)
        line_text = lines[params.position.line] if params.position.line < len(lines) else ""
        items: list[lsp.CompletionItem] = []
        if a is not None:
            pos = ls.position_in(uri, params.position)
            items = [completion_item(c) for c in a.completions(pos, line_text)]
        return lsp.CompletionList(is_incomplete=False, items=items)

    @server.feature(lsp.TEXT_DOCUMENT_DOCUMENT_SYMBOL)
    def document_symbol(ls: CharterServer, params: lsp.DocumentSymbolParams) \
            -> list[lsp.DocumentSymbol]:
        a = ls.for_features(params.text_document.uri)
        return [ls.symbol(a, s) for s in a.symbols_outline()] if a is not None else []

    @server.feature(lsp.TEXT_DOCUMENT_FORMATTING)
    def formatting(ls: CharterServer, params: lsp.DocumentFormattingParams) \
            -> Optional[list[lsp.TextEdit]]:
        doc = ls.workspace.get_text_document(params.text_document.uri)
        text = doc.source
        try:
            out = format_verified(text, uri_to_path(params.text_document.uri))
        except (ParseFailure, FormatterBug):
            return None  # the diagnostics already say why; leave the text as it is
        if out == text:
            return []
        last = text.rsplit("\n", 1)[-1]
        end = lsp.Position(line=text.count("\n"), character=ls.codec().client_num_units(last))
        return [lsp.TextEdit(range=lsp.Range(start=lsp.Position(line=0, character=0), end=end),
                             new_text=out)]

    return server


def main() -> None:
    logging.basicConfig(level=logging.WARNING, format="charter-lsp: %(message)s")
    build().start_io()
