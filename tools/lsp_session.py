"""A scripted editor session with the Charter language server, through pygls's own client.

Starts the real server (``python -m charter.cli lsp``) as a subprocess and does
what an editor does on real files: opens a stdlib policy, types a mistake and
fixes it (diagnostics as you type), hovers, jumps to definitions (within the
file, and from an example that imports the stdlib into the stdlib file),
completes, asks for the outline and formats.  Prints a transcript::

    .venv/bin/python tools/lsp_session.py

tests/editors/test_lsp.py runs the same session and checks every answer.
"""
from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any, Optional

from lsprotocol import types as lsp
from pygls.lsp.client import LanguageClient
from pygls.uris import from_fs_path

ROOT = Path(__file__).resolve().parents[1]
STDLIB_POLICY = ROOT / "stdlib_policies" / "gig_market.charter"
EXAMPLE = ROOT / "examples" / "licensed_gig" / "policy.charter"


def position_of(text: str, needle: str, offset: int = 0, nth: int = 0) -> lsp.Position:
    """The position of the ``nth`` occurrence of ``needle`` (plus ``offset`` characters),
    skipping comment lines."""
    seen = 0
    for i, line in enumerate(text.split("\n")):
        if line.lstrip().startswith("#"):
            continue
        col = line.find(needle)
        while col >= 0:
            if seen == nth:
                return lsp.Position(line=i, character=col + offset)
            seen += 1
            col = line.find(needle, col + 1)
    raise ValueError(f"{needle!r} not found")


class Editor:
    """A pygls LanguageClient driving the server the way an editor would."""

    def __init__(self) -> None:
        self.client = LanguageClient("charter-session", "1")
        self.diagnostics: dict[str, list[lsp.Diagnostic]] = {}
        self.versions: dict[str, int] = {}
        self._published: dict[str, asyncio.Event] = {}

        @self.client.feature(lsp.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)
        def _diagnostics(params: lsp.PublishDiagnosticsParams) -> None:
            self.diagnostics[params.uri] = list(params.diagnostics)
            self._published.setdefault(params.uri, asyncio.Event()).set()

    async def start(self) -> None:
        await self.client.start_io(sys.executable, "-m", "charter.cli", "lsp", cwd=str(ROOT))
        await self.client.initialize_async(lsp.InitializeParams(
            process_id=None, root_uri=from_fs_path(str(ROOT)),
            capabilities=lsp.ClientCapabilities()))
        self.client.initialized(lsp.InitializedParams())

    async def stop(self) -> None:
        await self.client.shutdown_async(None)
        self.client.exit(None)
        await self.client.stop()

    async def _wait(self, uri: str) -> list[lsp.Diagnostic]:
        await asyncio.wait_for(self._published.setdefault(uri, asyncio.Event()).wait(), 120)
        self._published[uri].clear()
        return self.diagnostics[uri]

    async def open(self, path: Path, text: Optional[str] = None) -> tuple[str, list]:
        uri = from_fs_path(str(path))
        self.versions[uri] = 1
        self._published.setdefault(uri, asyncio.Event()).clear()
        self.client.text_document_did_open(lsp.DidOpenTextDocumentParams(
            text_document=lsp.TextDocumentItem(uri=uri, language_id="charter", version=1,
                                               text=path.read_text("utf-8") if text is None
                                               else text)))
        return uri, await self._wait(uri)

    async def change(self, uri: str, text: str) -> list[lsp.Diagnostic]:
        self.versions[uri] += 1
        self._published.setdefault(uri, asyncio.Event()).clear()
        self.client.text_document_did_change(lsp.DidChangeTextDocumentParams(
            text_document=lsp.VersionedTextDocumentIdentifier(uri=uri,
                                                              version=self.versions[uri]),
            content_changes=[lsp.TextDocumentContentChangeWholeDocument(text=text)]))
        return await self._wait(uri)

    async def save(self, uri: str, wait_for: str) -> list[lsp.Diagnostic]:
        """Save ``uri``; return the diagnostics then published for ``wait_for``."""
        self._published.setdefault(wait_for, asyncio.Event()).clear()
        self.client.text_document_did_save(lsp.DidSaveTextDocumentParams(
            text_document=lsp.TextDocumentIdentifier(uri=uri)))
        return await self._wait(wait_for)

    async def hover(self, uri: str, pos: lsp.Position) -> Optional[lsp.Hover]:
        return await self.client.text_document_hover_async(lsp.HoverParams(
            text_document=lsp.TextDocumentIdentifier(uri=uri), position=pos))

    async def definition(self, uri: str, pos: lsp.Position) -> Any:
        return await self.client.text_document_definition_async(lsp.DefinitionParams(
            text_document=lsp.TextDocumentIdentifier(uri=uri), position=pos))

    async def complete(self, uri: str, pos: lsp.Position) -> list[lsp.CompletionItem]:
        got = await self.client.text_document_completion_async(lsp.CompletionParams(
            text_document=lsp.TextDocumentIdentifier(uri=uri), position=pos))
        return list(got.items if isinstance(got, lsp.CompletionList) else got or [])

    async def outline(self, uri: str) -> list[lsp.DocumentSymbol]:
        return list(await self.client.text_document_document_symbol_async(
            lsp.DocumentSymbolParams(text_document=lsp.TextDocumentIdentifier(uri=uri))) or [])

    async def format(self, uri: str) -> list[lsp.TextEdit]:
        return list(await self.client.text_document_formatting_async(
            lsp.DocumentFormattingParams(text_document=lsp.TextDocumentIdentifier(uri=uri),
                                         options=lsp.FormattingOptions(tab_size=4,
                                                                       insert_spaces=True)))
                    or [])


def where(loc: Any) -> str:
    if isinstance(loc, list):
        loc = loc[0] if loc else None
    if loc is None:
        return "(none)"
    path = loc.uri.removeprefix("file://")
    try:
        path = str(Path(path).relative_to(ROOT))
    except ValueError:
        pass
    return f"{path}:{loc.range.start.line + 1}:{loc.range.start.character + 1}"


def show_diags(diags: list[lsp.Diagnostic]) -> list[str]:
    return [f"  line {d.range.start.line + 1}:{d.range.start.character + 1} "
            f"{d.code} {d.message.splitlines()[0]}" for d in diags] or ["  (no diagnostics)"]


async def session() -> dict[str, Any]:
    """Run the whole session; return every answer (the test checks them) with a transcript."""
    ed = Editor()
    out: dict[str, Any] = {"transcript": []}
    say = out["transcript"].append
    await ed.start()
    try:
        text = STDLIB_POLICY.read_text("utf-8")
        rel = STDLIB_POLICY.relative_to(ROOT)
        uri, diags = await ed.open(STDLIB_POLICY)
        out["open"] = diags
        say(f"open {rel}: {len(diags)} diagnostics")
        say(*show_diags(diags)) if len(diags) <= 1 else [say(x) for x in show_diags(diags)]

        broken = text.replace("    set t.price = price", "    set t.prise = price", 1)
        broken = broken.replace("    require amount > 0 Credit", "    require amount > 0 Credt", 1)
        out["typed"] = await ed.change(uri, broken)
        say("type two mistakes (t.prise, 0 Credt):")
        [say(x) for x in show_diags(out["typed"])]
        half = broken.replace("on join() by p: party {", "on join( by p: party {", 1)
        out["half_typed"] = await ed.change(uri, half)
        say("leave a parenthesis open:")
        [say(x) for x in show_diags(out["half_typed"])]
        out["fixed"] = await ed.change(uri, text)
        say(f"undo: {len(out['fixed'])} diagnostics")

        hovers = {
            "fee (a param, in a handler)": position_of(text, "floor(gross * fee)", 16),
            "Credit (an asset)": position_of(text, "budget: Credit", 8),
            "t.budget (a record field)": position_of(text, "t.budget", 2),
            "30 days (a value)": position_of(text, "every 30 days", 7),
            "floor (a built-in)": position_of(text, "floor(gross * fee)", 1),
            "release (a keyword)": position_of(text, "release cut", 2),
        }
        out["hover"] = {}
        for label, pos in hovers.items():
            h = await ed.hover(uri, pos)
            value = h.contents.value if h is not None else "(none)"
            out["hover"][label] = value
            say(f"hover {label} at {pos.line + 1}:{pos.character + 1}:")
            [say("    " + ln) for ln in value.splitlines() if ln.strip()]

        defs = {
            "commons": position_of(text, "to commons", 4),
            "Task(id)": position_of(text, "Task(id)", 1),
            "t.worker": position_of(text, "t.worker", 3),
        }
        out["definition"] = {}
        for label, pos in defs.items():
            loc = await ed.definition(uri, pos)
            out["definition"][label] = loc
            say(f"definition of {label} at {pos.line + 1}:{pos.character + 1} -> {where(loc)}")

        refs = await ed.client.text_document_references_async(lsp.ReferenceParams(
            text_document=lsp.TextDocumentIdentifier(uri=uri),
            position=position_of(text, "param fee:", 6),
            context=lsp.ReferenceContext(include_declaration=True)))
        out["references"] = refs
        say("references of `fee`: lines " + ", ".join(str(r.range.start.line + 1) for r in refs))

        body = position_of(text, "admit p as Agent")
        items = await ed.complete(uri, body)
        out["completion"] = items
        labels = {i.label for i in items}
        say(f"complete at the start of a statement ({body.line + 1}:{body.character + 1}): "
            f"{len(items)} items, e.g. " + ", ".join(sorted(
                labels & {"transfer", "require", "escrow", "fee", "commons", "Task", "floor"})))
        member = text.replace("    set t.price = price", "    set t.", 1)
        await ed.change(uri, member)
        items = await ed.complete(uri, position_of(member, "    set t.", len("    set t.")))
        out["completion_field"] = items
        say("complete `set t.` (t = Task(id)): " + ", ".join(i.label for i in items))
        await ed.change(uri, text)

        symbols = await ed.outline(uri)
        out["outline"] = symbols
        say(f"outline: {len(symbols)} symbols: " + ", ".join(s.name for s in symbols[:12]) + ", ...")

        # An example that imports the stdlib: across imports, into the stdlib file.
        ex_text = EXAMPLE.read_text("utf-8")
        ex_uri, ex_diags = await ed.open(EXAMPLE)
        say(f"open {EXAMPLE.relative_to(ROOT)}: {len(ex_diags)} diagnostics")
        out["example_open"] = ex_diags
        h = await ed.hover(ex_uri, position_of(ex_text, "fee = 3%"))
        out["hover_import_setting"] = h.contents.value if h else "(none)"
        say("hover `fee` in `import \"skill_licensing\" as lic with { fee = 3% }`:")
        [say("    " + ln) for ln in out["hover_import_setting"].splitlines() if ln.strip()]
        for label, pos in {"gig.post": position_of(ex_text, "gig.post", 5),
                           "gig.commons": position_of(ex_text, "gig.commons", 5),
                           '"gig_market"': position_of(ex_text, '"gig_market"', 2)}.items():
            loc = await ed.definition(ex_uri, pos)
            out["definition"][label] = loc
            say(f"definition of {label} -> {where(loc)}")
        typing = ex_text.replace("    expect balance(@pim, Credit) == 70 Credit",
                                 "    expect balance(gig.", 1)
        await ed.change(ex_uri, typing)
        items = await ed.complete(ex_uri, position_of(typing, "balance(gig.", len("balance(gig.")))
        out["completion_import"] = items
        say("complete `gig.`: " + ", ".join(sorted(i.label for i in items)[:14]) + ", ...")

        messy = "policy  p version \"1\"\nasset Credit : token,decimals 2\n" \
                "param fee:percent=2% within 0%..10%\n"
        scratch = ROOT / "examples" / "licensed_gig" / "scratch.charter"  # never written
        s_uri, _ = await ed.open(scratch, messy)
        edits = await ed.format(s_uri)
        out["format"] = edits
        say("format a messy buffer:")
        [say("    " + ln) for e in edits for ln in e.new_text.splitlines()]
    finally:
        await ed.stop()
    return out


def main() -> None:
    out = asyncio.run(session())
    print("\n".join(out["transcript"]))


if __name__ == "__main__":
    main()
