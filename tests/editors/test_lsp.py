"""The language server, driven by pygls's own client against the real server process.

tools/lsp_session.py starts ``python -m charter.cli lsp`` and does what an editor does
on stdlib_policies/gig_market.charter and examples/licensed_gig/policy.charter (which
imports the stdlib); every answer is checked here against the files themselves.  The
analysis behind the server is also fuzzed with hostile text and positions.
"""
from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from charter.compiler import ast
from charter.compiler.fmt import format_source
from charter.compiler.parse import parse_source
from charter.grammar import keywords

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tools"))
import lsp_session  # noqa: E402

GIG = ROOT / "stdlib_policies" / "gig_market.charter"
GIG_TEXT = GIG.read_text("utf-8")


@pytest.fixture(scope="module")
def session() -> dict:
    return asyncio.run(asyncio.wait_for(lsp_session.session(), 300))


def _line_of(path: Path, prefix: str) -> int:
    """1-based number of the first line of ``path`` that starts with ``prefix``."""
    lines = path.read_text("utf-8").split("\n")
    return next(i + 1 for i, ln in enumerate(lines) if ln.strip().startswith(prefix))


def _at(loc) -> tuple[str, int]:
    loc = loc[0] if isinstance(loc, list) else loc
    assert loc is not None
    return Path(loc.uri.removeprefix("file://")).resolve().name, loc.range.start.line + 1


def test_diagnostics_as_you_type(session: dict) -> None:
    assert [d for d in session["open"] if d.severity == 1] == []
    typed = {(d.code, d.range.start.line + 1) for d in session["typed"]}
    assert ("E0210", _line_of(GIG, "require amount > 0 Credit")) in typed
    assert ("E0207", _line_of(GIG, "set t.price = price")) in typed
    assert "prise" in " ".join(d.message for d in session["typed"])
    assert [d.code for d in session["half_typed"]] == ["E0101"]
    assert session["half_typed"][0].range.start.line + 1 == _line_of(GIG, "on join(")
    assert session["fixed"] == []
    assert session["example_open"] == []


def test_hover_shows_declarations_types_units_and_param_meanings(session: dict) -> None:
    h = session["hover"]
    module = parse_source(GIG_TEXT, "gig_market.charter")
    fee = next(i for i in module.items if isinstance(i, ast.ParamDecl) and i.name == "fee")
    assert "param fee: percent = 2% within 0%..10%" in h["fee (a param, in a handler)"]
    assert module.doc(fee) and module.doc(fee) in h["fee (a param, in a handler)"]
    assert "asset Credit: token, decimals 2" in h["Credit (an asset)"]
    assert "1 Credit = 100 minor units" in h["Credit (an asset)"]
    assert "Task.budget: Credit" in h["t.budget (a record field)"]
    assert "2592000 seconds" in h["30 days (a value)"]
    assert "builtin" in h["floor (a built-in)"] and "round" in h["floor (a built-in)"]
    assert 'release_stmt: "release" expr "from" expr "to" expr' in h["release (a keyword)"]
    imported = session["hover_import_setting"]
    assert "param fee: percent = 5% within 0%..20%" in imported  # skill_licensing's own fee
    assert "Treasury take on per-use licence payments." in imported
    assert "Set by the importer to `3%`" in imported


def test_go_to_definition_within_the_file_across_imports_and_into_the_stdlib(
        session: dict) -> None:
    d = session["definition"]
    assert _at(d["commons"]) == ("gig_market.charter", _line_of(GIG, "pool commons"))
    assert _at(d["Task(id)"]) == ("gig_market.charter", _line_of(GIG, "record Task "))
    assert _at(d["t.worker"]) == ("gig_market.charter", _line_of(GIG, "worker: Agent?"))
    # From the example into the stdlib file the import names.
    assert _at(d["gig.post"]) == ("gig_market.charter", _line_of(GIG, "on post("))
    assert _at(d["gig.commons"]) == ("gig_market.charter", _line_of(GIG, "pool commons"))
    assert _at(d['"gig_market"']) == ("gig_market.charter", 1)
    loc = d["gig.post"][0] if isinstance(d["gig.post"], list) else d["gig.post"]
    assert Path(loc.uri.removeprefix("file://")).resolve() == GIG.resolve()


def test_references_are_every_use_of_the_declaration(session: dict) -> None:
    import re

    expected = [(i, m.start()) for i, line in enumerate(GIG_TEXT.split("\n"))
                for m in re.finditer(r"\bfee\b", line.split("#", 1)[0])]
    got = [(r.range.start.line, r.range.start.character) for r in session["references"]]
    assert len(expected) >= 4 and sorted(got) == expected


def test_completion_offers_every_keyword_and_the_names_in_scope(session: dict) -> None:
    labels = {i.label for i in session["completion"]}
    assert set(keywords()) <= labels
    module = parse_source(GIG_TEXT, "gig_market.charter")
    params = {i.name for i in module.items if isinstance(i, ast.ParamDecl)}
    assert params | {"commons", "Task", "Credit", "Agent", "floor", "p"} <= labels
    record = next(i for i in module.items if isinstance(i, ast.RecordDecl) and i.name == "Task")
    assert [i.label for i in session["completion_field"]] == [f.name for f in record.fields]
    imported = {i.label for i in session["completion_import"]}
    assert {"post", "commons", "fee", "Task"} <= imported
    assert not any("." in x for x in imported) and "transfer" not in imported


def test_outline_lists_every_declaration(session: dict) -> None:
    module = parse_source(GIG_TEXT, "gig_market.charter")
    names = [s.name for s in session["outline"]]
    assert len(names) == len(module.items)
    for item in module.items:
        if hasattr(item, "name") and not isinstance(item, ast.TestDecl):
            assert item.name in names
    task = next(s for s in session["outline"] if s.name == "Task")
    assert [c.name for c in task.children] == [
        f.name for f in next(i for i in module.items if getattr(i, "name", "") == "Task").fields]


def test_formatting_is_charter_fmt(session: dict) -> None:
    messy = "policy  p version \"1\"\nasset Credit : token,decimals 2\n" \
            "param fee:percent=2% within 0%..10%\n"
    [edit] = session["format"]
    assert edit.new_text == format_source(messy)
    assert edit.range.start.line == 0 and edit.range.end.line == 3


def test_a_lone_surrogate_is_a_diagnostic_not_a_crash() -> None:
    """JSON can carry "\\ud800"; the text then is not Unicode and must be refused as such
    (found by tools/fuzz_lsp.py: resolve's source hash raised UnicodeEncodeError)."""
    from charter.lsp.analysis import Analysis

    a = Analysis('policy p version "1"\n# note \ud800\nasset A: token\n', str(GIG))
    assert [(d.code, d.span.line, d.span.col) for _, d in a.editor_diagnostics()] == \
        [("E0002", 2, 8)]


def test_saving_an_imported_file_rechecks_its_importer(tmp_path: Path) -> None:
    """An error in an imported file is shown on the importer's `import` line, and saving
    the imported file updates the importer's diagnostics."""
    lib = tmp_path / "lib.charter"
    main = tmp_path / "main.charter"
    lib.write_text('policy lib version "1"\n\n# The fee.\nparam fee: percent = 2% within 0%..10%\n')
    main.write_text('policy main version "1"\n\nimport "./lib.charter" as lib with { fee = 3% }\n')

    async def run() -> tuple[list, list, list]:
        ed = lsp_session.Editor()
        await ed.start()
        try:
            uri, first = await ed.open(main)
            lib_uri, _ = await ed.open(lib)
            lib.write_text('policy lib version "1"\nparam fee: percent = 2% within 0%..10%\n'
                           'param broken: int = "x"\n')
            after = await ed.save(lib_uri, wait_for=uri)
            lib.write_text('policy lib version "1"\nparam fee: percent = 2% within 0%..10%\n')
            fixed = await ed.save(lib_uri, wait_for=uri)
            return first, after, fixed
        finally:
            await ed.stop()

    first, after, fixed = asyncio.run(asyncio.wait_for(run(), 300))
    assert first == [] and fixed == []
    assert [(d.code, d.range.start.line) for d in after] == [("E0301", 2)]
    assert "lib.charter:3:" in after[0].message


# ---- the analysis under hostile input --------------------------------------------

_SOURCES = [GIG_TEXT, (ROOT / "examples" / "licensed_gig" / "policy.charter").read_text("utf-8")]


@st.composite
def _mutant(draw: st.DrawFn) -> str:
    text = draw(st.sampled_from(_SOURCES))
    for _ in range(draw(st.integers(0, 4))):
        at = draw(st.integers(0, len(text)))
        cut = draw(st.integers(0, 40))
        junk = draw(st.one_of(
            st.text(max_size=20),
            st.sampled_from(["{", "}", "(", '"', "#", ".", "gig.", "t.", "\x00", "\ud800",
                             "9" * 5000, "import \"", "if true { " * 50, "\u2028", "\r\n"])))
        text = text[:at] + junk + text[at + cut:]
    return text


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=_mutant(), points=st.lists(st.tuples(st.integers(-2, 400), st.integers(-2, 300)),
                                      min_size=1, max_size=15))
def test_analysis_answers_anything_without_raising(text: str, points: list) -> None:
    from charter.lsp.analysis import Analysis

    a = Analysis(text, str(ROOT / "examples" / "licensed_gig" / "policy.charter"))
    for span, d in a.editor_diagnostics():
        assert d.code and span.line >= 1
    a.symbols_outline()
    lines = text.split("\n")
    for line, col in points:
        a.hover((line, col))
        a.definition((line, col))
        a.references((line, col))
        a.completions((line, col), lines[line - 1] if 1 <= line <= len(lines) else "")


def test_without_the_lsp_extra_charter_lsp_says_what_to_install() -> None:
    import subprocess

    code = ("import sys; sys.modules['pygls'] = None\n"
            "from charter.cli import main; sys.argv = ['charter', 'lsp']; main()")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, cwd=ROOT)
    assert proc.returncode == 2
    assert "pip install 'charter-policy[lsp]'" in proc.stderr
    assert "Traceback" not in proc.stderr
