"""Sphinx extension: one page per standard-library economy, generated from its source.

Each ``docs/economies/<policy>.rst`` is one line, ``.. charter-economy::
<policy>``; the directive parses ``stdlib_policies/<policy>.charter`` when the
docs are built and renders what the economy models (the policy's leading
comment), its parameters with ranges and meanings (each ``param``'s doc
comment), its events with argument types and who may submit them, its timed
handlers, its declared properties, its imports, an example
(``examples/<policy>/`` when present) and the full, highlighted source.
Nothing is written into the source tree: the build reads the policies and
leaves ``git status`` clean.  A stdlib policy without a page (or a page
without a policy) is a build warning, so ``sphinx-build -W`` fails until the
page is added.

The page text comes from :func:`economy_page`, which ``tests/test_docs.py``
also calls.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Iterable, Optional

DOCS = Path(__file__).resolve().parent.parent
ROOT = DOCS.parent
STDLIB = ROOT / "stdlib_policies"
EXAMPLES = ROOT / "examples"
PAGES = DOCS / "economies"

def _src(text: str, span: Any) -> str:
    """The source text a span covers (spans are 1-based, end exclusive)."""
    if span is None or getattr(span, "line", 0) < 1:
        return ""
    lines = text.splitlines()
    if span.line == span.end_line:
        return lines[span.line - 1][span.col - 1:span.end_col - 1]
    parts = [lines[span.line - 1][span.col - 1:]]
    parts += lines[span.line:span.end_line - 1]
    parts.append(lines[span.end_line - 1][:span.end_col - 1])
    return " ".join(p.strip() for p in parts)


def _lit(s: str) -> str:
    """Inline literal that is safe in a table cell."""
    s = " ".join(s.split())
    return f"``{s}``" if s else ""


def _leading_comment(text: str) -> list[str]:
    """The comment block at the top of the file (before or right after the header)."""
    out: list[str] = []
    started = False
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("#"):
            body = stripped[1:]
            out.append((body[1:] if body.startswith(" ") else body).rstrip())
            started = True
        elif stripped.startswith("policy ") and not stripped.startswith("#"):
            if started:
                break
            continue
        elif not stripped:
            if started and out and out[-1] != "":
                out.append("")
            continue
        else:
            break
    while out and not out[-1]:
        out.pop()
    return out


def _escape(text: str) -> str:
    """Author prose as reST text: no character of it may start markup."""
    return re.sub(r"([\\`*_|\[\]<>:])", r"\\\1", text)


def _prose(lines: list[str]) -> list[str]:
    """A comment block as reST: indented or column-aligned lines (tables,
    formulas) stay literal, the rest is escaped prose."""
    out: list[str] = []
    runs: list[tuple[bool, list[str]]] = []
    for line in lines + [""]:
        if not line.strip():
            runs.append((False, []))  # paragraph break
            continue
        literal = line.startswith(" ") or re.search(r"\S\s{3,}\S", line) is not None
        if runs and runs[-1][0] == literal and runs[-1][1]:
            runs[-1][1].append(line)
        else:
            runs.append((literal, [line]))
    for literal, run in runs:
        if not run:
            continue
        if literal:
            out += ["::", ""] + ["    " + ln for ln in run] + [""]
        else:
            out += [_escape(" ".join(ln.strip() for ln in run)), ""]
    return out


def _doc(module: Any, decl: Any) -> str:
    """A declaration's doc comment (``Module.doc``) as reST text."""
    return _escape(module.doc(decl))


def _table(header: list[str], rows: Iterable[list[str]]) -> list[str]:
    rows = list(rows)
    out = [".. list-table::", "   :header-rows: 1", ""]
    for row in [header] + rows:
        out.append(f"   * - {row[0] or ' '}")
        for cell in row[1:]:
            out.append(f"     - {cell or ' '}")
    out.append("")
    return out


def _type(text: str, t: Any) -> str:
    return _src(text, t.span) if t is not None else ""


def _by(text: str, by: Any) -> str:
    if hasattr(by, "binder"):
        return f"{by.binder}: {_type(text, by.type)}"
    return _src(text, by.expr.span) if hasattr(by.expr, "span") else ""


def _underline(title: str, ch: str) -> list[str]:
    return [title, ch * len(title), ""]


def economy_page(path: Path, rel_prefix: str = "../../") -> str:
    """The reST page for one stdlib policy file."""
    from charter.compiler import ast
    from charter.compiler.parse import parse_source

    text = path.read_text("utf-8")
    stem = path.stem
    lines: list[str] = [f".. _economy-{stem}:", ""]
    try:
        module: Optional[Any] = parse_source(text, f"{stem}.charter")
    except Exception as exc:  # a policy that does not parse still gets its source shown
        module = None
        error = getattr(getattr(exc, "diagnostic", None), "message", str(exc))
    title = f"{stem}" if module is None else f"{module.name} (version {module.version})"
    lines += _underline(title, "=")
    desc = _leading_comment(text)
    if desc:
        lines += _prose(desc)
    else:
        lines += [f"The ``{stem}`` economy of the standard library.", ""]
    lines += [f"Source: ``stdlib_policies/{path.name}``; import it with "
              f"``import \"{stem}\" as {stem[:3]}``.", ""]
    if module is None:
        lines += [".. note::", "", f"   This policy does not parse: {_lit(error)}.", ""]
    else:
        items = module.items
        imports = [i for i in items if isinstance(i, ast.Import)]
        assets = [i for i in items if isinstance(i, ast.AssetDecl)]
        roles = [i for i in items if isinstance(i, ast.RoleDecl)]
        params = [i for i in items if isinstance(i, ast.ParamDecl)]
        pools = [i for i in items if isinstance(i, ast.PoolDecl)]
        records = [i for i in items if isinstance(i, ast.RecordDecl)]
        handlers = [i for i in items if isinstance(i, ast.Handler)]
        timed = [i for i in items if isinstance(i, (ast.EveryHandler, ast.DeadlineHandler))]
        props = [i for i in items if isinstance(i, ast.PropertyDecl)]
        tests = [i for i in items if isinstance(i, ast.TestDecl)]

        if imports:
            lines += _underline("Imports", "-")
            lines += _table(["module", "as", "with"], (
                [_lit(i.target), _lit(i.alias or ""),
                 _lit(", ".join(_src(text, a.span) for a in i.settings))] for i in imports))
        lines += _underline("Assets, roles and accounts", "-")
        rows = [[_lit(a.name), "asset", _lit(_src(text, a.span).split(":", 1)[-1])] for a in assets]
        rows += [[_lit(r.name), "role", _lit(", ".join(_src(text, f.span) for f in r.fields))]
                 for r in roles]
        rows += [[_lit(p.name), p.kind, _lit(f"of {p.asset}")] for p in pools]
        rows += [[_lit(r.name), "record" + (f" holding {r.holds}" if r.holds else ""),
                  _lit(", ".join(_src(text, f.span) for f in r.fields))] for r in records]
        lines += _table(["name", "what", "declaration"], rows) if rows else ["(none)", ""]

        lines += _underline("Parameters", "-")
        if params:
            lines += _table(["param", "type", "default", "range", "meaning"], (
                [_lit(p.name), _lit(_type(text, p.type)), _lit(_src(text, p.default.span)),
                 _lit(f"{_src(text, p.lo.span)} .. {_src(text, p.hi.span)}") if p.lo else "",
                 _doc(module, p)] for p in params))
        else:
            lines += ["This economy has no parameters.", ""]

        lines += _underline("Events", "-")
        if handlers:
            lines += _table(["event", "arguments", "submitted by", "meaning"], (
                [_lit(h.name), _lit(", ".join(_src(text, f.span) for f in h.params)),
                 _lit(_by(text, h.by)), _doc(module, h)] for h in handlers))
        else:
            lines += ["This economy has no submitted events.", ""]
        if timed:
            lines += _underline("Timed handlers", "-")
            rows = []
            for t in timed:
                if isinstance(t, ast.EveryHandler):
                    rows.append([_lit(t.name), _lit(f"every {_src(text, t.period.span)}"),
                                 _doc(module, t)])
                else:
                    rows.append([_lit(t.binder), _lit(f"when {t.record}.{t.field} passes"),
                                 _doc(module, t)])
            lines += _table(["name", "fires", "meaning"], rows)

        lines += _underline("Properties", "-")
        if props:
            lines += _table(["property", "statement"], (
                [_lit(p.name), _lit(_src(text, p.span).split(":", 1)[-1])] for p in props))
            lines += ["``charter verify`` proves or refutes each of them "
                      "(see :doc:`../verification`).", ""]
        else:
            lines += ["This economy declares no properties beyond the built-in ones "
                      "(conservation, no negative balance, exact rounding).", ""]
        if tests:
            lines += _underline("In-language tests", "-")
            lines += [f"* {_lit(t.name)}" for t in tests] + [""]
            lines += [f"Run them with ``charter test stdlib_policies/{path.name}``.", ""]

    lines += known_limits(stem)
    lines += _underline("Example", "-")
    example = EXAMPLES / stem
    events = example / "events.jsonl"
    policy = example / "policy.charter"
    if events.is_file():
        pol = (f"examples/{stem}/policy.charter" if policy.is_file()
               else f"stdlib_policies/{path.name}")
        readme = (" (its ``README.md`` explains the scenario)"
                  if (example / "README.md").is_file() else "")
        lines += [f"A worked example is in ``examples/{stem}/``{readme}.  Settle it into a "
                  "SQLite ledger and audit it::", "",
                  f"    charter run {pol} examples/{stem}/events.jsonl --db {stem}.sqlite",
                  f"    charter audit {stem}.sqlite", "",
                  "Its first events:", "", ".. code-block:: json", ""]
        for ev in events.read_text("utf-8").splitlines()[:6]:
            if ev.strip():
                lines.append(f"   {ev}")
        lines.append("")
    else:
        lines += ["Check it, run its tests and prove its properties::", "",
                  f"    charter check stdlib_policies/{path.name}",
                  f"    charter test stdlib_policies/{path.name}",
                  f"    charter verify stdlib_policies/{path.name}", ""]

    lines += _underline("Source", "-")
    lines += [f".. literalinclude:: {rel_prefix}stdlib_policies/{path.name}",
              "   :language: charter", ""]
    return "\n".join(lines)


def review_data(stem: str) -> Optional[dict[str, Any]]:
    """``stdlib_policies/review/<stem>.toml``: the economy's adversarial review."""
    import tomllib

    path = STDLIB / "review" / f"{stem}.toml"
    return tomllib.loads(path.read_text("utf-8")) if path.is_file() else None


def known_limits(stem: str) -> list[str]:
    """The "Known limits" section: what the adversarial review tried, and what stops it.

    Rendered from the review data kept next to the policy, which
    ``tests/stdlib/test_review.py`` holds to the policy (the tests and
    properties it names exist, and the tests pass)."""
    data = review_data(stem)
    lines = _underline("Known limits", "-")
    if data is None:
        return lines + ["This economy has not had an adversarial review yet.", ""]
    lines += [_escape(" ".join(data.get("summary", "").split())), ""] if data.get("summary") else []
    rows = []
    for check in data.get("check", []):
        parts = [_escape(" ".join(check.get("why", "").split()))]
        if check.get("tests"):
            parts.append("Tests: " + ", ".join(_lit(t) for t in check["tests"]) + ".")
        if check.get("properties"):
            parts.append("Proved: " + ", ".join(_lit(p) for p in check["properties"]) + ".")
        if check.get("ensures"):
            parts.append("Postconditions of: " + ", ".join(_lit(h) for h in check["ensures"]) + ".")
        if check.get("unprovable"):
            parts.append("Not yet provable: " + _escape(" ".join(check["unprovable"].split())))
        rows.append([_escape(check["kind"]), _escape(" ".join(check["attack"].split())),
                     f"**{check['outcome']}**", " ".join(p for p in parts if p)])
    lines += _table(["check", "what was tried", "outcome", "what stops it, or why not"], rows)
    return lines


def policy_files() -> list[Path]:
    return sorted(STDLIB.glob("*.charter"))


def page_problems() -> list[str]:
    """Stdlib policies without a page and pages without a policy."""
    policies = {p.stem for p in policy_files()}
    pages = {p.stem for p in PAGES.glob("*.rst")} - {"index"}
    out = [f"stdlib policy {s!r} has no docs page: add docs/economies/{s}.rst containing "
           f"the line `.. charter-economy:: {s}`" for s in sorted(policies - pages)]
    out += [f"docs/economies/{s}.rst documents no stdlib policy (stdlib_policies/{s}.charter "
            "is gone): delete the page" for s in sorted(pages - policies)]
    return out


def _check_pages(app: Any) -> None:
    from sphinx.util import logging

    log = logging.getLogger(__name__)
    for problem in page_problems():
        log.warning(problem)


def _directive() -> type:
    from docutils.statemachine import StringList
    from sphinx.util.docutils import SphinxDirective
    from sphinx.util.nodes import nested_parse_with_titles
    from docutils import nodes

    class CharterEconomy(SphinxDirective):
        """``.. charter-economy:: NAME``: the page of ``stdlib_policies/NAME.charter``."""

        required_arguments = 1
        has_content = False

        def run(self) -> list[Any]:
            stem = self.arguments[0]
            path = STDLIB / f"{stem}.charter"
            if not path.is_file():
                raise self.error(f"no stdlib policy {stem!r} (looked for {path})")
            self.env.note_dependency(str(path))
            example = EXAMPLES / stem / "events.jsonl"
            if example.is_file():
                self.env.note_dependency(str(example))
            depth = self.env.docname.count("/") + 1  # from the page's folder up to docs/..
            text = economy_page(path, rel_prefix="../" * depth)
            node = nodes.section()
            node.document = self.state.document
            nested_parse_with_titles(self.state, StringList(text.splitlines(), str(path)), node)
            return node.children

    return CharterEconomy


def setup(app: Any) -> dict[str, Any]:
    app.add_directive("charter-economy", _directive())
    app.connect("builder-inited", _check_pages)
    return {"version": "2", "parallel_read_safe": True, "parallel_write_safe": True}
