"""Sphinx extension: one page per standard-library economy, generated from its source.

At ``builder-inited`` it writes ``docs/economies/index.rst`` and one
``docs/economies/<policy>.rst`` per ``stdlib_policies/*.charter``: what the
economy models (the policy's leading comment), its parameters with ranges,
its events with argument types and who may submit them, its timed handlers,
its declared properties, its imports, an example (``examples/<policy>/``
when present) and the full source.  Generating the pages from the parsed
policy is what keeps them in step with the library as economies are added.

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
OUT = DOCS / "economies"

INTRO = """\
Standard-library economies
==========================

Each economy of the standard library is a policy in ``stdlib_policies/``
that you can run as it is, or import into your own policy and parameterise::

    import "{first}" as econ with {{ ... }}

Imported params, pools, records and handlers are namespaced by the alias
(an event ``post`` of the module becomes ``econ.post``); assets, roles and
rights are shared by name.  Installed, the sources are package data of
``charter.stdlib_policies``.

The pages below are generated from the policy sources when the docs are
built: the description is the policy's leading comment, and the tables list
exactly what the compiler sees.
"""


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


def _comment_above(module: Any, line: int) -> str:
    """Own-line comments immediately above ``line`` (a declaration's doc comment)."""
    by_line = {c.line: c for c in module.comments if c.own_line}
    got: list[str] = []
    ln = line - 1
    while ln in by_line:
        got.append(by_line[ln].text.lstrip("#").strip())
        ln -= 1
    return _escape(" ".join(reversed(got)))


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
                 _comment_above(module, p.span.line)] for p in params))
        else:
            lines += ["This economy has no parameters.", ""]

        lines += _underline("Events", "-")
        if handlers:
            lines += _table(["event", "arguments", "submitted by", "meaning"], (
                [_lit(h.name), _lit(", ".join(_src(text, f.span) for f in h.params)),
                 _lit(_by(text, h.by)), _comment_above(module, h.span.line)] for h in handlers))
        else:
            lines += ["This economy has no submitted events.", ""]
        if timed:
            lines += _underline("Timed handlers", "-")
            rows = []
            for t in timed:
                if isinstance(t, ast.EveryHandler):
                    rows.append([_lit(t.name), _lit(f"every {_src(text, t.period.span)}"),
                                 _comment_above(module, t.span.line)])
                else:
                    rows.append([_lit(t.binder), _lit(f"when {t.record}.{t.field} passes"),
                                 _comment_above(module, t.span.line)])
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
              "   :language: text", ""]
    return "\n".join(lines)


def policy_files() -> list[Path]:
    return sorted(STDLIB.glob("*.charter"))


def index_page(files: list[Path]) -> str:
    first = files[0].stem if files else "gig_market"
    out = [INTRO.format(first=first), ""]
    if files:
        out += [".. toctree::", "   :maxdepth: 1", ""]
        out += [f"   {p.stem}" for p in files]
    else:
        out += ["No economy has been added to ``stdlib_policies/`` yet."]
    return "\n".join(out) + "\n"


def _write(path: Path, text: str) -> None:
    # Rewrite only on change, so incremental builds stay incremental.
    if not path.is_file() or path.read_text("utf-8") != text:
        path.write_text(text, "utf-8")


def generate(app: Any = None) -> None:
    OUT.mkdir(exist_ok=True)
    files = policy_files()
    wanted = {"index.rst"} | {f"{p.stem}.rst" for p in files}
    for stale in OUT.glob("*.rst"):
        if stale.name not in wanted:
            stale.unlink()
    _write(OUT / "index.rst", index_page(files))
    for p in files:
        _write(OUT / f"{p.stem}.rst", economy_page(p))


def setup(app: Any) -> dict[str, Any]:
    app.connect("builder-inited", generate)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
