"""The documentation stays in step with the code it describes.

Checks that every grammar rule is explained in docs/language.rst, every
diagnostic code in docs/diagnostics.rst, every public name of ``charter`` in
docs/api.rst; that the README's two set-up commands are the ones CI and the
getting-started page use; that the commands the README shows exist; that
policy snippets in the docs parse; and that each stdlib economy's generated
page lists its events, parameters and properties.  (The Sphinx build itself,
with warnings as errors, runs in .ci/run.)
"""
from __future__ import annotations

import re
import shlex
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
sys.path.insert(0, str(DOCS / "_ext"))


def _read(rel: str) -> str:
    return (ROOT / rel).read_text("utf-8")


def _grammar_names() -> list[str]:
    text = _read("grammar/charter.lark")
    text = re.sub(r"//[^\n]*", "", text)  # comments name rules in prose only
    rules = re.findall(r"^\??([a-z_][a-z0-9_]*)\s*:", text, re.M)
    aliases = re.findall(r"->\s*([a-z_][a-z0-9_]*)", text)
    terminals = re.findall(r"^([A-Z_][A-Z0-9_]*)(?:\.\d+)?\s*:", text, re.M)
    return sorted(set(rules) | set(aliases) | set(terminals))


def test_grammar_names_are_found() -> None:
    names = _grammar_names()
    # A sanity floor: a regex that silently matched nothing would make the
    # table-driven test below vacuous.
    assert {"start", "header", "handler", "split_stmt", "expr", "NAME"} <= set(names)


@pytest.mark.parametrize("name", _grammar_names())
def test_language_reference_explains_rule(name: str) -> None:
    assert f"``{name}``" in _read("docs/language.rst"), (
        f"grammar rule {name!r} is not explained in docs/language.rst")


def _codes() -> list[str]:
    from charter.compiler.diagnostics import CODES

    return sorted(CODES)


@pytest.mark.parametrize("code", _codes())
def test_diagnostics_page_lists_code(code: str) -> None:
    from charter.compiler.diagnostics import CODES

    page = _read("docs/diagnostics.rst")
    assert f"``{code}``" in page, f"{code} ({CODES[code]}) is missing from docs/diagnostics.rst"


def test_api_page_names_every_public_name() -> None:
    import charter

    page = _read("docs/api.rst")
    missing = [n for n in charter.__all__ if not re.search(rf"\bcharter\.{n}\b", page)]
    assert not missing, f"docs/api.rst does not document: {missing}"


# ---- README, CI and getting started --------------------------------------

def _readme_setup_commands() -> list[str]:
    readme = _read("README.md")
    section = readme.split("## Set up", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```\n(python3 -m venv[^\n]*)\n```", section)


def test_readme_has_exactly_two_setup_commands() -> None:
    cmds = _readme_setup_commands()
    assert len(cmds) == 2, cmds
    run, tests = cmds
    assert "charter run " in run and "--db" in run
    assert "pytest" in tests and "[test]" in tests


def test_ci_runs_exactly_the_readme_test_command() -> None:
    test_cmd = _readme_setup_commands()[1]
    ci_lines = [ln.strip() for ln in _read(".ci/run").splitlines()]
    assert test_cmd in ci_lines
    assert "set -euo pipefail" in ci_lines
    assert any(ln.startswith(".venv/bin/sphinx-build -W") for ln in ci_lines)
    # Nothing may mask pytest's exit status (5 = no tests collected).
    assert not any("pytest" in ln and ("|| true" in ln or "; true" in ln) for ln in ci_lines)


def test_getting_started_uses_the_readme_commands() -> None:
    page = _read("docs/getting_started.rst")
    for cmd in _readme_setup_commands():
        assert cmd in page


def test_readme_main_command_names_real_files() -> None:
    run = _readme_setup_commands()[0]
    args = shlex.split(run.split(".venv/bin/charter run", 1)[1])
    policy, events = args[0], args[1]
    assert (ROOT / policy).is_file(), policy
    assert (ROOT / events).is_file(), events


def _readme_usage_commands() -> list[list[str]]:
    readme = _read("README.md")
    section = readme.split("## Using it", 1)[1].split("\n## ", 1)[0]
    block = section.split("```\n", 2)[1]
    return [shlex.split(line.split("#", 1)[0]) for line in block.splitlines()
            if line.startswith("charter ")]


def test_readme_usage_shows_real_commands() -> None:
    import click

    from charter.cli import cli

    usage = _readme_usage_commands()
    assert len(usage) >= 8
    for words in usage:
        cmd: click.Command = cli
        ctx = click.Context(cli)
        for w in words[1:]:
            if w.startswith("-") or not isinstance(cmd, click.Group):
                break
            sub = cmd.get_command(ctx, w)
            assert sub is not None, f"README shows `{' '.join(words)}` but there is no `{w}`"
            cmd = sub
        assert not isinstance(cmd, click.Group) or cmd is cli, words
        for w in words:
            if w.startswith("--"):
                opts = {o for p in cmd.params for o in getattr(p, "opts", [])}
                assert w.split("=")[0] in opts, f"{' '.join(words)}: no option {w}"


# ---- Charter snippets --------------------------------------------------------

def _charter_snippets(page: Path) -> list[tuple[int, str]]:
    """(line, text) of every ``.. code-block:: charter`` of a page."""
    lines = page.read_text("utf-8").splitlines()
    out = []
    for i, line in enumerate(lines):
        if line.strip() == ".. code-block:: charter":
            indent = len(line) - len(line.lstrip()) + 3
            body = []
            for nxt in lines[i + 1:]:
                if nxt.strip() and len(nxt) - len(nxt.lstrip()) < indent:
                    break
                body.append(nxt[indent:])
            out.append((i + 1, "\n".join(body).strip() + "\n"))
    return out


def _pages() -> list[Path]:
    return sorted(DOCS.glob("*.rst")) + sorted((DOCS / "economies").glob("*.rst"))


def _snippet_programs() -> list[tuple[str, str]]:
    """What the docs' Charter snippets compile as.

    A snippet that is a whole policy (a header and more) is its own program.  The
    others are fragments of the page's running example: a page's header snippet
    (``policy gig_market version "1.0"``) and all its fragments, in page order, form
    one policy, so every fragment is compiled in the context the page gives it.
    """
    out = []
    for page in _pages():
        header, parts = None, []
        for line, text in _charter_snippets(page):
            first = text.lstrip().split("\n", 1)
            if first[0].startswith("policy "):
                if first[1:] and first[1].strip():
                    out.append((f"{page.name}:{line}", text))
                    continue
                header = first[0]
                continue
            parts.append(f"# {page.name}:{line}\n{text}")
        if parts:
            out.append((f"{page.name} (its fragments)",
                        (header or f'policy {page.stem} version "1.0"') + "\n\n"
                        + "\n".join(parts)))
    return out


def test_charter_is_highlighted_as_charter_everywhere() -> None:
    """No Charter snippet hides in a ``text`` block (where no test would compile it)."""
    for page in _pages():
        lines = page.read_text("utf-8").splitlines()
        for i, line in enumerate(lines):
            if line.strip() in (".. code-block:: text", ".. code-block::") or \
                    line.rstrip().endswith("::") and not line.strip().startswith(".."):
                body = "\n".join(lines[i + 1:i + 6])
                assert not re.search(r"^\s+(policy|on|asset|param|record|role) \w", body, re.M), \
                    f"{page.name}:{i + 1}: a Charter snippet should be `.. code-block:: charter`"


def test_docs_have_charter_snippets() -> None:
    programs = dict(_snippet_programs())
    assert any(k.startswith("getting_started.rst:") for k in programs)
    assert "language.rst (its fragments)" in programs
    assert sum(len(_charter_snippets(p)) for p in _pages()) >= 19


@pytest.mark.parametrize("where,text", _snippet_programs())
def test_charter_snippet_compiles_and_its_tests_pass(where: str, text: str) -> None:
    import charter
    from charter.compiler.diagnostics import render_text

    c = charter.Compilation.from_text(text, str(DOCS / "snippet.charter"))
    errors = [d for d in c.diagnostics if d.severity == "error"]
    assert not errors, where + "\n" + render_text(errors, c.sources)
    results = charter.run_tests(c.ir)
    assert all(r.passed for r in results), [(r.name, r.failures) for r in results]


def _events_after(page: Path, line: int) -> list[dict]:
    """The JSON events of the first ``json`` block after ``line`` and before the next
    Charter snippet (the events a page settles with the policy it just showed)."""
    import json

    lines = page.read_text("utf-8").splitlines()
    for i in range(line, len(lines)):
        if lines[i].strip() == ".. code-block:: charter":
            return []
        if lines[i].strip() == ".. code-block:: json":
            events = []
            for nxt in lines[i + 1:]:
                if nxt.strip() and not nxt.startswith("   "):
                    break
                if nxt.strip():
                    events.append(json.loads(nxt))
            return [e for e in events if isinstance(e, dict) and "submitter" in e]
    return []


def _whole_policies() -> list[tuple[str, Path, int, str]]:
    return [(f"{page.name}:{line}", page, line, text) for page in _pages()
            for line, text in _charter_snippets(page)
            if text.startswith("policy ") and len(text.strip().split("\n")) > 1]


@pytest.mark.parametrize("where,page,line,text", _whole_policies(), ids=lambda x: str(x)[:40])
def test_whole_policy_snippets_are_formatted_and_their_events_settle(
        where: str, page: Path, line: int, text: str) -> None:
    import charter
    from charter.compiler.fmt import format_source

    assert format_source(text) == text, f"{where}: not in `charter fmt` layout"
    events = _events_after(page, line)
    if not events:
        return
    rt = charter.open_runtime(charter.Compilation.from_text(text, "snippet.charter").ir)
    outcomes = [rt.submit(e) for e in events]
    assert [o.to_dict() for o in outcomes if not o.applied] == []
    assert rt.audit().ok


def test_getting_started_events_settle() -> None:
    """The page's events.jsonl is run against its hello.charter, not just shown."""
    page = DOCS / "getting_started.rst"
    [(line, _)] = [(ln, t) for ln, t in _charter_snippets(page) if t.startswith("policy hello")]
    assert len(_events_after(page, line)) >= 4


def test_a_score_can_be_staked_but_not_slashed_to_another_account() -> None:
    """The language reference's rule (and stdlib reputation_currency's comment): the
    checker accepts `lock` of a score and refuses moving one to another account."""
    import charter

    head = ('policy s version "1"\nasset Cred: score, decimals 0, mintable, burnable\n'
            'role M\npool p of Cred\n')
    ok = charter.Compilation.from_text(
        head + "on bond(a: Cred) by x: M { lock a from x }\n"
               "on unbond(a: Cred) by x: M { unlock a of x }\n"
               "on fine(who: M, a: Cred) by clock { slash a of who }\n")
    assert [d.code for d in ok.diagnostics if d.severity == "error"] == []
    bad = charter.Compilation.from_text(head + "on fine(who: M) by clock { slash 1 Cred of who to p }\n")
    assert [d.code for d in bad.diagnostics if d.severity == "error"] == ["E0401"]
    page = (ROOT / "stdlib_policies" / "reputation_currency.charter").read_text("utf-8")
    assert "rejects `lock` of a score" not in page


def test_getting_started_policy_verifies_clean() -> None:
    """The first policy a reader writes proves every property: no guard missing."""
    import charter

    [(where, text)] = [(w, t) for w, t in _snippet_programs()
                       if w.startswith("getting_started.rst:")]
    results = charter.verify(charter.Compilation.from_text(text, "hello.charter").ir,
                             use_cache=False)
    assert results and all(r.status in ("proved", "n/a") for r in results), \
        [(r.name, r.status, r.message) for r in results if r.status not in ("proved", "n/a")]


# ---- generated economy pages ---------------------------------------------

def _stdlib() -> list[Path]:
    return sorted((ROOT / "stdlib_policies").glob("*.charter"))


@pytest.mark.parametrize("path", _stdlib(), ids=lambda p: p.stem)
def test_economy_page_lists_events_params_and_properties(path: Path) -> None:
    import charter_economies
    from charter.compiler import ast
    from charter.compiler.parse import parse_source

    page = charter_economies.economy_page(path)
    module = parse_source(path.read_text("utf-8"), path.name)
    names = [i.name for i in module.items
             if isinstance(i, (ast.Handler, ast.ParamDecl, ast.PropertyDecl, ast.EveryHandler))]
    for name in names:
        assert f"``{name}``" in page, f"{path.name}: {name} missing from its docs page"
    assert f"stdlib_policies/{path.name}" in page


def test_every_stdlib_policy_has_a_page_and_every_page_a_policy() -> None:
    import charter_economies

    assert charter_economies.page_problems() == []
    for path in _stdlib():
        page = (DOCS / "economies" / f"{path.stem}.rst").read_text("utf-8")
        assert page.strip() == f".. charter-economy:: {path.stem}"


def _param_rows(page: str) -> list[list[str]]:
    """The rows of an economy page's parameter table, cells as written."""
    section = page.split("Parameters\n----------\n", 1)[1].split("\n\n\n", 1)[0]
    table = section.split("Events\n------", 1)[0]
    rows: list[list[str]] = []
    for line in table.splitlines():
        if line.startswith("   * - "):
            rows.append([line[7:]])
        elif line.startswith("     - ") and rows:
            rows[-1].append(line[7:])
    return rows[1:]  # without the header row


@pytest.mark.parametrize("path", _stdlib(), ids=lambda p: p.stem)
def test_every_stdlib_parameter_has_a_meaning(path: Path) -> None:
    """The meaning column is each param's doc comment; an empty cell fails."""
    import charter_economies
    from charter.compiler import ast
    from charter.compiler.parse import parse_source

    module = parse_source(path.read_text("utf-8"), path.name)
    params = [i for i in module.items if isinstance(i, ast.ParamDecl)]
    rows = _param_rows(charter_economies.economy_page(path))
    assert [r[0] for r in rows] == [f"``{p.name}``" for p in params]
    empty = [r[0] for r in rows if len(r) < 5 or not r[4].strip()]
    assert not empty, (f"{path.name}: no meaning for {empty}: write a `# ...` comment on "
                       "the line above each `param`")
    for p in params:
        assert len(module.doc(p).split()) >= 3, f"{path.name}: {p.name}: {module.doc(p)!r}"


def test_doc_comment_is_the_comment_block_directly_above() -> None:
    from charter.compiler import ast
    from charter.compiler.parse import parse_source

    text = ('policy p version "1"\n'
            '# not a doc comment: a blank line follows\n\n'
            '# The take rate,\n#   paid to the commons.\nparam fee: percent = 2%\n'
            'param bare: int = 1  # a trailing comment is not a doc comment\n')
    module = parse_source(text, "p.charter")
    fee, bare = [i for i in module.items if isinstance(i, ast.ParamDecl)]
    assert module.doc(fee) == "The take rate, paid to the commons."
    assert module.doc(bare) == ""


def _tree_state() -> str:
    """Everything git sees in the checkout, ignored files included."""
    import subprocess

    out = subprocess.run(["git", "status", "--porcelain", "--ignored", "--untracked-files=all"],
                         cwd=ROOT, capture_output=True, text=True, timeout=120)
    if out.returncode != 0:
        pytest.skip("not a git checkout")
    return "\n".join(ln for ln in out.stdout.splitlines()
                     if "__pycache__" not in ln and ".hypothesis" not in ln
                     and ".pytest_cache" not in ln)


def test_sphinx_build_has_no_warnings_and_leaves_the_tree_clean(tmp_path: Path) -> None:
    """The same build as .ci/run, so a broken page shows up in the test run too; building
    writes nothing into the source tree (the economy pages are rendered, not generated)."""
    import subprocess

    before = _tree_state()
    proc = subprocess.run(
        [sys.executable, "-m", "sphinx", "-W", "-q", "-b", "html", "-d", str(tmp_path / "doctrees"),
         str(DOCS), str(tmp_path / "html")],
        capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (tmp_path / "html" / "language.html").is_file()
    assert _tree_state() == before
    page = (tmp_path / "html" / "economies" / "gig_market.html").read_text("utf-8")
    # Highlighted by the Charter lexer: keywords and declarations carry Pygments classes.
    assert '<span class="kd">param</span>' in page and '<span class="k">require</span>' in page
    assert "Take rate on every payout" in page
    # The embedding API page is autodoc'd: every :class:/:data:/:mod: it names is a link.
    api, src = (tmp_path / "html" / "api.html").read_text("utf-8"), _read("docs/api.rst")
    names = set(re.findall(r":(?:class|data|mod|func|meth|exc):`~?([^`]+)`", src))
    assert len(names) >= 15
    dead = [n for n in names if f'title="{n}"><code class="xref' not in api]
    assert not dead, f"docs/api.rst names these without a target: {dead}"
    for name in ("charter.open_runtime", "charter.Runtime.submit", "charter.load_policy"):
        assert f'id="{name}"' in api, name
