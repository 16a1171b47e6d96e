"""What the language server knows about one document, computed by the real compiler.

:class:`Analysis` runs the compiler's own pipeline
(:class:`charter.compiler.pipeline.Compilation`) on the editor's text, with the
file's path so relative imports resolve, and keeps what the editor features
need: the diagnostics, the symbol table, and every checked expression with its
typed IR (the checker's ``on_expr`` observer).  The features (hover, go to
definition, completion, document symbols) answer from that; nothing here
re-implements a compiler rule.

Positions are 1-based ``(line, col)`` in code points, as compiler spans are;
:mod:`charter.lsp.server` converts to and from the editor's encoding.
"""
from __future__ import annotations

import re
from fractions import Fraction
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any, Iterator, Optional

import attrs

from charter.compiler import ast, ir
from charter.compiler.diagnostics import Diagnostic, source_lines
from charter.compiler.ir import Span
from charter.compiler.pipeline import Compilation
from charter.compiler.resolve import STDLIB_PACKAGE, ModuleScope, Symbols
from charter.compiler.typecheck import BASE_TYPES, DURATION_UNITS, Checker, show
from charter.grammar import keywords

Pos = tuple[int, int]  # (line, col), 1-based, code points

CONSTANTS = {"true": "bool", "false": "bool", "none": "the empty optional value",
             "now": "time: the time of the event being applied (seconds since the Unix epoch)",
             "clock": "party: the submitter of timed handlers (`by clock`)"}
AGGREGATES = ("sum", "count", "min", "max", "all", "any")
BUILTIN_DOCS = {
    "floor": "floor(x): round a ratio or fractional amount down to an int or amount",
    "ceil": "ceil(x): round a ratio or fractional amount up",
    "round": "round(x): round a ratio or fractional amount half up",
    "min": "min(a, b, ...): the smallest value (or `min(e for x in c)` over a collection)",
    "max": "max(a, b, ...): the largest value (or `max(e for x in c)` over a collection)",
    "abs": "abs(x): the absolute value",
    "isqrt": "isqrt(x): floor of the square root of a non-negative int or amount",
    "pow": "pow(x, n): x to a constant power n >= 0",
    "ratio": "ratio(a, b): the exact ratio a/b of two amounts of one asset",
    "minor": "minor(x): an amount as its count of minor units (an int)",
    "from_minor": "from_minor(n, Asset): an int of minor units as an amount of Asset",
    "len": "len(list): the number of items of a list",
    "supply": "supply(Asset): the asset's total supply",
    "balance": "balance(account): what an account holds (a party and asset, a pool, ...)",
    "stake": "stake(party, Asset): what a party has locked",
    "sum": "sum(e for x in c where ...): the total over a collection",
    "count": "count(x for x in c where ...): how many items match",
    "all": "all(cond for x in c): every item satisfies cond",
    "any": "any(cond for x in c): some item satisfies cond",
}
BUILTINS = tuple(sorted({n[3:] for n in dir(Checker) if n.startswith("fn_")} | set(AGGREGATES)))
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@attrs.frozen
class Target:
    """A declaration a name refers to: what to show on hover and where to jump."""

    kind: str  # param, pool, record, field, role, attribute, asset, handler, property,
    # import, argument, binder, let, loop, builtin, constant, type, module
    name: str
    signature: str  # Charter text shown in a code block
    doc: str = ""
    span: Optional[Span] = None  # where it is declared (None: built in)
    type: str = ""


@attrs.frozen
class Completion:
    label: str
    kind: str  # keyword, param, pool, record, role, asset, handler, module, builtin,
    # constant, type, field, local
    detail: str = ""
    doc: str = ""


@attrs.frozen
class Symbol:
    name: str
    kind: str
    detail: str
    span: Span
    selection: Span
    children: tuple["Symbol", ...] = ()


def stdlib_path(file: str) -> Optional[Path]:
    """The real file of a ``<stdlib>/name.charter`` span file (None inside a zip)."""
    if not file.startswith("<stdlib>/"):
        return Path(file) if not file.startswith("<") else None
    res = resources.files(STDLIB_PACKAGE).joinpath(file[len("<stdlib>/"):])
    path = Path(str(res))
    return path if path.is_file() else None


@lru_cache(maxsize=None)
def keyword_syntax(word: str) -> tuple[str, ...]:
    """The grammar rules (``split_stmt: "split" amount_source "among" ...``) that start
    with a keyword, or else mention it: what a keyword's hover shows."""
    from charter.compiler.parse import grammar_text

    rules: list[tuple[str, str]] = []
    current = ""
    for line in grammar_text().split("\n"):
        code = line.split("//", 1)[0].rstrip()
        m = re.match(r"^\??([a-z_]+)\s*:(.*)$", code)
        if m:
            current = m.group(1)
            rules.append((current, m.group(2).strip()))
        elif code.strip().startswith("|") and current:
            rules.append((current, code.strip()[1:].strip()))
    quoted = f'"{word}"'
    first = [f"{name}: {body}" for name, body in rules if body.startswith(quoted)]
    return tuple(first or [f"{name}: {body}" for name, body in rules if quoted in body][:4])


def stdlib_modules() -> list[str]:
    return sorted(p.name[:-len(".charter")] for p in resources.files(STDLIB_PACKAGE).iterdir()
                  if p.name.endswith(".charter"))


def contains(span: Span, pos: Pos) -> bool:
    if span.line < 1:
        return False
    return (span.line, span.col) <= pos <= (span.end_line, span.end_col)


def _size(span: Span) -> tuple[int, int]:
    return (span.end_line - span.line, span.end_col - span.col if span.end_line == span.line
            else 10 ** 6)


def walk(node: Any) -> Iterator[Any]:
    """Every AST node under ``node`` (depth first, source order)."""
    stack = [node]
    while stack:
        n = stack.pop()
        yield n
        kids: list[Any] = []
        for f in attrs.fields(type(n)):
            v = getattr(n, f.name)
            for x in (v if isinstance(v, tuple) else (v,)):
                if attrs.has(type(x)) and not isinstance(x, Span):
                    kids.append(x)
        stack.extend(reversed(kids))


class Analysis:
    """One compilation of one document, kept for the editor features."""

    def __init__(self, text: str, path: str):
        self.text = text
        self.path = path
        self.lines = source_lines(text)
        self.exprs: list[tuple[ast.Expr, Any]] = []
        comp = Compilation.from_text(text, path)
        comp.on_expr = self._seen
        self.comp = comp
        self.diagnostics: list[Diagnostic] = comp.diagnostics
        self.module: Optional[ast.Module] = comp.module
        self.symbols: Optional[Symbols] = comp.symbols if self.module is not None else None
        self.sources = comp.sources

    def _seen(self, e: ast.Expr, x: Any) -> None:
        if e.span.file == self.path:
            self.exprs.append((e, x))

    # ------------------------------------------------------------ diagnostics
    def editor_diagnostics(self) -> list[tuple[Span, Diagnostic]]:
        """Every diagnostic placed in this document: one in an imported file is shown on
        the ``import`` that brought the file in."""
        out = []
        for d in self.diagnostics:
            if d.span.file == self.path:
                span = d.span if d.span.line >= 1 else _line_span(self.path, 1)
                out.append((span, d))
            else:
                out.append((self._import_span_for(d.span.file), d))
        return out

    def _import_span_for(self, file: str) -> Span:
        if self.module is not None and self.symbols is not None and self.symbols.root:
            imports = [i for i in self.module.items if isinstance(i, ast.Import)]
            for item in imports:
                alias = item.alias or item.target.rsplit("/", 1)[-1].removesuffix(
                    ".charter").split(".")[-1]
                scope = self.symbols.root.aliases.get(alias)
                if scope is not None and file in _files_under(scope):
                    return item.span
            for item in imports:
                if item.target.split("/")[-1].removesuffix(".charter") in file:
                    return item.span
        return _line_span(self.path, 1)

    # ------------------------------------------------------------ lookups
    @property
    def root(self) -> Optional[ModuleScope]:
        return self.symbols.root if self.symbols is not None else None

    def item_at(self, pos: Pos) -> Optional[Any]:
        if self.module is None:
            return None
        return next((i for i in self.module.items if contains(i.span, pos)), None)

    def word_at(self, pos: Pos) -> tuple[str, Span]:
        """The (possibly dotted, ``econ.fee``) name under the cursor and its span."""
        line, col = pos
        if not 1 <= line <= len(self.lines):
            return "", _line_span(self.path, line)
        text = self.lines[line - 1]
        if _in_comment(text, col):
            return "", _line_span(self.path, line)
        for m in re.finditer(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*", text):
            if m.start() + 1 <= col <= m.end() + 1:
                # Keep the dotted prefix up to the part under the cursor.
                parts, start = [], m.start()
                for part in m.group(0).split("."):
                    parts.append(part)
                    if start + len(part) + 1 >= col:
                        break
                    start += len(part) + 1
                word = ".".join(parts)
                span = Span(file=self.path, line=line, col=m.start() + 1, end_line=line,
                            end_col=m.start() + 1 + len(word))
                return word, span
        return "", _line_span(self.path, line)

    def expr_at(self, pos: Pos) -> Optional[tuple[ast.Expr, Any]]:
        hits = [(e, x) for e, x in self.exprs if contains(e.span, pos)]
        if not hits:
            return None
        return min(hits, key=lambda ex: _size(ex[0].span))

    def _scope_of(self, dotted: str) -> tuple[Optional[ModuleScope], str]:
        """The module scope a possibly alias-qualified name lives in, and its local name."""
        scope = self.root
        *aliases, local = dotted.split(".")
        for a in aliases:
            if scope is None or a not in scope.aliases:
                return None, local
            scope = scope.aliases[a]
        return scope, local

    def declaration(self, dotted: str, pos: Optional[Pos] = None) -> Optional[Target]:
        """What a written name means here: a local of the handler around ``pos``, a
        declaration of this module or of an import (``econ.fee``), or a built-in."""
        syms = self.symbols
        if syms is None or not dotted:
            return None
        if "." not in dotted and pos is not None:
            local = self.local(dotted, pos)
            if local is not None:
                return local
        scope, local = self._scope_of(dotted)
        if scope is None:
            return None
        if "." not in dotted and local in scope.aliases:
            sub = scope.aliases[local]
            return Target(kind="import", name=local, signature=f"import {local}",
                          doc=_module_doc(sub.module, self.sources.get(sub.module.file, "")),
                          span=_line_span(sub.module.file, 1))
        q = scope.q(local)
        for table, kind in ((syms.params, "param"), (syms.pools, "pool"),
                            (syms.records, "record"), (syms.handlers, "handler"),
                            (syms.properties, "property")):
            if q in table:
                decl, owner = table[q]
                return self._target(kind, q, decl, owner)
        if local in syms.assets:
            return self._asset(syms.assets[local])
        if local in syms.roles:
            role = syms.roles[local]
            return Target(kind="role", name=local, signature=self._decl_text(role),
                          doc=self._doc_of(role), span=role.span)
        if "." in dotted:
            return None
        if local in BASE_TYPES:
            return Target(kind="type", name=local, signature=local, doc=_TYPE_DOCS.get(local, ""))
        if local in CONSTANTS:
            return Target(kind="constant", name=local, signature=local, doc=CONSTANTS[local])
        if local in BUILTIN_DOCS or local in BUILTINS:
            return Target(kind="builtin", name=local, signature=BUILTIN_DOCS.get(
                local, f"{local}(...)").split(":")[0], doc=BUILTIN_DOCS.get(local, ""))
        return None

    def _module_of(self, file: str) -> Optional[ast.Module]:
        for s in (self.symbols.scopes if self.symbols else []):
            if s.module.file == file:
                return s.module
        return None

    def _doc_of(self, decl: Any) -> str:
        module = self._module_of(decl.span.file)
        return module.doc(decl) if module is not None else ""

    def _decl_text(self, decl: Any) -> str:
        """The declaration's source text (its first line for one with a body)."""
        text = self.sources.get(decl.span.file, "")
        lines = source_lines(text)
        if not 1 <= decl.span.line <= len(lines):
            return ""
        if decl.span.end_line == decl.span.line:
            return lines[decl.span.line - 1][decl.span.col - 1:decl.span.end_col - 1].strip()
        first = lines[decl.span.line - 1][decl.span.col - 1:].rstrip()
        return first[:-1].rstrip() if first.endswith("{") else first

    def _target(self, kind: str, q: str, decl: Any, owner: ModuleScope) -> Target:
        sig = self._decl_text(decl)
        doc = owner.module.doc(decl)
        typ = ""
        if kind == "param":
            typ = _src(self.sources.get(decl.span.file, ""), decl.type.span)
            setting = owner.settings.get(decl.name)
            if setting is not None:
                doc += ("\n\n" if doc else "") + "Set by the importer to `" + _src(
                    self.sources.get(setting.span.file, ""), setting.span) + "`."
        if kind == "pool":
            asset = self.symbols.assets.get(decl.asset) if self.symbols else None
            if asset is not None:
                doc += ("\n\n" if doc else "") + _units(asset)
        if kind == "record":
            fields = [_src(self.sources.get(decl.span.file, ""), f.span) for f in decl.fields]
            one_line = f"{sig} {{ {', '.join(fields)} }}"
            sig = sig if not fields else one_line if len(one_line) <= 80 else \
                sig + " {\n" + "".join(f"    {f},\n" for f in fields) + "}"
        if owner.prefix:
            doc += ("\n\n" if doc else "") + f"Declared in `{_show_file(decl.span.file)}` " \
                                             f"(as `{q}` here)."
        return Target(kind=kind, name=q, signature=sig, doc=doc, span=decl.span, type=typ)

    def _asset(self, a: ast.AssetDecl) -> Target:
        return Target(kind="asset", name=a.name, signature=self._decl_text(a),
                      doc="\n\n".join(x for x in (self._doc_of(a), _units(a)) if x), span=a.span)

    # ------------------------------------------------------------ locals
    def bindings(self, item: Any) -> list[Target]:
        """The names a handler binds (arguments, submitter, lets, loop variables)."""
        text = self.text
        out: list[Target] = []
        if isinstance(item, ast.Handler):
            for p in item.params:
                out.append(Target(kind="argument", name=p.name, signature=_src(text, p.span),
                                  span=p.span, type=_src(text, p.type.span)))
            if isinstance(item.by, ast.ByRole):
                out.append(Target(kind="binder", name=item.by.binder,
                                  signature=f"by {_src(text, item.by.span)[3:].strip()}",
                                  doc="the party that submitted the event", span=item.by.span,
                                  type=_src(text, item.by.type.span)))
        if isinstance(item, ast.ProcDecl):
            for p in item.params:
                out.append(Target(kind="argument", name=p.name, signature=_src(text, p.span),
                                  doc=f"a parameter of procedure `{item.name}`", span=p.span,
                                  type=_src(text, p.type.span)))
        if isinstance(item, ast.DeadlineHandler):
            out.append(Target(kind="binder", name=item.binder,
                              signature=f"{item.binder}: {item.record}",
                              doc=f"the {item.record} whose `{item.field}` has passed",
                              span=item.span, type=item.record))
        for node in walk(item):
            if isinstance(node, ast.Let):
                out.append(Target(kind="let", name=node.name, signature=_src(text, node.span),
                                  span=node.span))
            elif isinstance(node, (ast.ForEach, ast.Split, ast.Aggregate)):
                out.append(Target(kind="loop", name=node.var,
                                  signature=f"{node.var} in {_src(text, node.source.span)}"
                                  if hasattr(node.source, "span") and not isinstance(
                                      node, ast.Split) else node.var,
                                  span=node.span))
        return out

    def local(self, name: str, pos: Pos) -> Optional[Target]:
        item = self.item_at(pos)
        if item is None or isinstance(item, (ast.TestDecl, ast.PropertyDecl)):
            return None
        found = [b for b in self.bindings(item) if b.name == name and b.span is not None
                 and (b.span.line, b.span.col) <= pos]
        if not found:
            return None
        best = max(found, key=lambda b: (b.span.line, b.span.col))
        typ = self._local_type(name, item) or best.type
        return attrs.evolve(best, type=typ)

    def _local_type(self, name: str, item: Any) -> str:
        for e, x in self.exprs:
            if isinstance(e, ast.Name) and e.id == name and isinstance(x, ir.Local) and \
                    contains(item.span, (e.span.line, e.span.col)):
                return show(x.type)
        return ""

    # ------------------------------------------------------------ features
    def resolve_at(self, pos: Pos) -> Optional[Target]:
        """The declaration the name under the cursor refers to."""
        word, _ = self.word_at(pos)
        item = self.item_at(pos)
        if isinstance(item, ast.Import):
            target = self._import_target(item, pos, word)
            if target is not None:
                return target
        hit = self.expr_at(pos)
        if hit is not None:
            target = self._from_expr(*hit, pos=pos)
            if target is not None:
                return target
        if isinstance(item, ast.RecordDecl):
            for f in item.fields:
                if contains(f.span, pos) and word == f.name:
                    return self._field(item, f)
        if isinstance(item, ast.RoleDecl):
            for f in item.fields:
                if contains(f.span, pos) and word == f.name:
                    return self._field(item, f, kind="attribute")
        if isinstance(item, ast.DeadlineHandler) and "." in word:
            rec, _, fld = word.partition(".")
            target = self.declaration(rec)
            if target is not None and target.kind == "record" and fld:
                decl = self.symbols.records[target.name][0]
                f = next((f for f in decl.fields if f.name == fld.split(".")[0]), None)
                col_dot = self.lines[pos[0] - 1].find(word) + len(rec) + 1
                if f is not None and pos[1] > col_dot:
                    return self._field(decl, f)
            return target
        return self.declaration(word, pos)

    def _field(self, record: Any, f: ast.FieldDecl, kind: str = "field") -> Target:
        text = self.sources.get(f.span.file, "")
        return Target(kind=kind, name=f"{record.name}.{f.name}",
                      signature=f"{record.name}.{_src(text, f.span)}",
                      doc=self._doc_of(record) and "", span=f.span,
                      type=_src(text, f.type.span))

    def _import_target(self, item: ast.Import, pos: Pos, word: str) -> Optional[Target]:
        scope = self.root.aliases.get(item.alias or item.target.rsplit("/", 1)[-1].removesuffix(
            ".charter").split(".")[-1]) if self.root else None
        if scope is None:
            return None
        for a in item.settings:
            if contains(a.span, pos) and word == a.name and a.name in scope.names:
                q = scope.q(a.name)
                if q in self.symbols.params:
                    decl, owner = self.symbols.params[q]
                    return self._target("param", q, decl, owner)
        line = self.lines[pos[0] - 1] if 1 <= pos[0] <= len(self.lines) else ""
        quoted = f'"{item.target}"'
        start = line.find(quoted)
        if start >= 0 and start < pos[1] <= start + len(quoted) + 1 or word == (item.alias or ""):
            module = scope.module
            return Target(kind="module", name=item.target, signature=f"policy {module.name} "
                          f"version \"{module.version}\"",
                          doc=_module_doc(module, self.sources.get(module.file, "")),
                          span=_line_span(module.file, 1))
        return None

    def _from_expr(self, e: ast.Expr, x: Any, pos: Pos) -> Optional[Target]:
        syms = self.symbols
        if isinstance(x, ir.ParamRef) and syms is not None and x.name in syms.params:
            decl, owner = syms.params[x.name]
            return self._target("param", x.name, decl, owner)
        if isinstance(x, ir.Local) and isinstance(e, ast.Name):
            return self.local(e.id, pos) or Target(kind="let", name=e.id, signature=e.id,
                                                   type=show(x.type))
        if isinstance(x, ir.RecordField) and syms is not None and x.record in syms.records:
            decl = syms.records[x.record][0]
            f = next((f for f in decl.fields if f.name == x.field), None)
            if f is not None:
                return attrs.evolve(self._field(decl, f), type=show(x.type))
        if isinstance(x, ir.RoleAttr) and syms is not None and x.role in syms.roles:
            decl = syms.roles[x.role]
            f = next((f for f in decl.fields if f.name == x.attr), None)
            if f is not None:
                return attrs.evolve(self._field(decl, f, kind="attribute"), type=show(x.type))
        if isinstance(e, ast.Call):
            word, _ = self.word_at(pos)
            target = self.declaration(word, pos)
            if target is not None:
                return target
        if isinstance(x, ir.Const) and isinstance(e, (ast.Quantity, ast.Percent, ast.Number)):
            return Target(kind="value", name=_src(self.text, e.span),
                          signature=f"{_src(self.text, e.span)}: {show(x.type)}",
                          doc=self._value_doc(e, x))
        if isinstance(e, ast.Name):
            return self.declaration(e.id, pos)
        return None

    def _value_doc(self, e: Any, x: Any) -> str:
        v = x.value
        if isinstance(x.type, ir.TAmount) and self.symbols and x.type.asset in self.symbols.assets:
            return f"= {v} minor units. {_units(self.symbols.assets[x.type.asset])}"
        if isinstance(x.type, ir.TDuration):
            return f"= {v} seconds"
        if isinstance(v, Fraction):
            return f"= {v.numerator}/{v.denominator} (exact)"
        return ""

    def hover(self, pos: Pos) -> Optional[tuple[str, Span]]:
        """Markdown for the name or value under the cursor, and the span it covers."""
        target = self.resolve_at(pos)
        word, span = self.word_at(pos)
        hit = self.expr_at(pos)
        if target is None and word in keywords() and (hit is None or word not in BUILTINS):
            syntax = keyword_syntax(word)
            if syntax:
                return ("```\n" + "\n".join(syntax) + "\n```\n\n*keyword* `" + word +
                        "`: the grammar's rules that use it (see the language reference)", span)
        if target is None:
            if hit is None:
                return None
            e, x = hit
            return (f"```charter\n{_src(self.text, e.span)}: {show(x.type)}\n```", e.span)
        head = target.signature
        if target.type and target.kind in ("let", "loop", "binder", "argument", "field",
                                           "attribute") and f": {target.type}" not in head:
            head = f"{head}  # {target.type}"
        body = [f"```charter\n{head}\n```", f"*{target.kind}* `{target.name}`"]
        if hit is not None and not isinstance(hit[1], ir.Const):
            body[-1] += f" — type `{show(hit[1].type)}`"
        if target.doc:
            body.append(target.doc)
        return ("\n\n".join(body), span if word else (hit[0].span if hit else span))

    def definition(self, pos: Pos) -> Optional[Span]:
        target = self.resolve_at(pos)
        return target.span if target is not None else None

    def references(self, pos: Pos, include_declaration: bool = True) -> list[Span]:
        """Every place in this document that names the declaration under the cursor
        (found by resolving each occurrence of the name, so a local `fee` in another
        handler is not a reference to the parameter `fee`)."""
        target = self.resolve_at(pos)
        if target is None or target.span is None or target.kind in ("builtin", "constant",
                                                                     "type", "value"):
            return []
        local = target.name.rsplit(".", 1)[-1]
        out: list[Span] = []
        for line_no, line in enumerate(self.lines, start=1):
            for m in re.finditer(rf"\b{re.escape(local)}\b", line):
                if _in_comment(line, m.start() + 1):
                    continue
                at = (line_no, m.start() + 1)
                other = self.resolve_at(at)
                if other is not None and other.span == target.span:
                    out.append(Span(file=self.path, line=line_no, col=m.start() + 1,
                                    end_line=line_no, end_col=m.end() + 1))
        decl = target.span
        if not include_declaration:
            out = [s for s in out if not (s.line == decl.line and decl.file == self.path
                                          and contains(decl, (s.line, s.col)))]
        return out

    # ------------------------------------------------------------ completion
    def completions(self, pos: Pos, line_text: str) -> list[Completion]:
        """Names and keywords that fit at ``pos``; ``line_text`` is the editor's current
        line (the analysis may be from the last version of the text that parsed)."""
        before = line_text[:pos[1] - 1]
        if re.search(r'\bimport\s+"[^"]*$', before):
            return [Completion(label=m, kind="module", detail="standard library")
                    for m in stdlib_modules()]
        dotted = re.search(r"([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)\.[A-Za-z0-9_]*$",
                           before)
        if dotted:
            return self._member_completions(dotted.group(1), pos)
        out = [Completion(label=k, kind="keyword") for k in keywords()]
        out += [Completion(label=t, kind="type", doc=_TYPE_DOCS.get(t, "")) for t in BASE_TYPES]
        out += [Completion(label=c, kind="constant", doc=d) for c, d in CONSTANTS.items()]
        out += [Completion(label=b, kind="builtin", detail=BUILTIN_DOCS.get(b, "").split(":")[0],
                           doc=BUILTIN_DOCS.get(b, "")) for b in BUILTINS]
        out += self._scope_completions(self.root, pos)
        item = self.item_at(pos)
        if item is not None:
            seen = set()
            for b in reversed(self.bindings(item)):
                if b.name not in seen and b.span is not None and (b.span.line, b.span.col) <= pos:
                    seen.add(b.name)
                    out.append(Completion(label=b.name, kind="local", detail=b.type or b.kind,
                                          doc=b.signature))
        return out

    def _scope_completions(self, scope: Optional[ModuleScope], pos: Pos) -> list[Completion]:
        syms = self.symbols
        if scope is None or syms is None:
            return []
        out: list[Completion] = []
        for local, q in sorted(scope.names.items()):
            if "." in local:  # `Task.deadline.passes`: a deadline handler, not a name to write
                continue
            for table, kind in ((syms.params, "param"), (syms.pools, "pool"),
                                (syms.records, "record"), (syms.handlers, "handler")):
                if q in table:
                    decl, owner = table[q]
                    t = self._target(kind, q, decl, owner)
                    out.append(Completion(label=local, kind=kind, detail=t.signature,
                                          doc=t.doc))
        if scope is self.root:
            out += [Completion(label=a, kind="asset", detail=self._decl_text(d),
                               doc=_units(d)) for a, d in sorted(syms.assets.items())]
            out += [Completion(label=r, kind="role", detail=self._decl_text(d))
                    for r, d in sorted(syms.roles.items())]
        out += [Completion(label=a, kind="module", detail=f"import ({s.module.name})")
                for a, s in sorted(scope.aliases.items())]
        return out

    def _member_completions(self, dotted: str, pos: Pos) -> list[Completion]:
        scope, _ = self._scope_of(dotted + ".x")
        if scope is not None and scope is not self.root:
            return self._scope_completions(scope, pos)
        # `t.` with `t` a record or a role member: its fields.
        typ = None
        if "." not in dotted:
            local = self.local(dotted, pos)
            typ = local.type if local is not None else None
        syms = self.symbols
        if syms is None or not typ:
            return []
        name = typ.rstrip("?")
        q = self.root.q(name) if self.root else name
        if q in syms.records:
            decl = syms.records[q][0]
            kind = "field"
        elif name in syms.roles:
            decl, kind = syms.roles[name], "field"
        else:
            return []
        text = self.sources.get(decl.span.file, "")
        return [Completion(label=f.name, kind=kind, detail=_src(text, f.type.span),
                           doc=f"{decl.name}.{_src(text, f.span)}") for f in decl.fields]

    # ------------------------------------------------------------ outline
    def symbols_outline(self) -> list[Symbol]:
        if self.module is None:
            return []
        return [s for s in (self._symbol(i) for i in self.module.items) if s is not None]

    def _symbol(self, item: Any) -> Optional[Symbol]:
        text = self.text
        first = self._decl_text(item)
        if isinstance(item, ast.Import):
            name = item.alias or item.target
            return Symbol(name, "module", f'import "{item.target}"', item.span,
                          self._name_span(item, item.alias or item.target))
        if isinstance(item, ast.DeadlineHandler):
            name = f"when {item.record}.{item.field} passes as {item.binder}"
            return Symbol(name, "event", "deadline", item.span, self._name_span(item, item.record))
        if isinstance(item, ast.TestDecl):
            return Symbol(item.name, "test", "test", item.span, self._name_span(item, "test"))
        name = getattr(item, "name", None)
        if name is None:
            return None
        kind = {ast.AssetDecl: "asset", ast.RoleDecl: "role", ast.ParamDecl: "param",
                ast.PoolDecl: "pool", ast.RecordDecl: "record", ast.Handler: "event",
                ast.EveryHandler: "event", ast.PropertyDecl: "property"}.get(type(item), "other")
        children: tuple[Symbol, ...] = ()
        if isinstance(item, (ast.RecordDecl, ast.RoleDecl)):
            children = tuple(Symbol(f.name, "field", _src(text, f.type.span), f.span,
                                    self._name_span(f, f.name)) for f in item.fields)
        detail = first
        if isinstance(item, ast.EveryHandler):
            detail = f"every {_src(text, item.period.span)}"
        return Symbol(name, kind, detail, item.span, self._name_span(item, name), children)

    def _name_span(self, node: Any, name: str) -> Span:
        line = node.span.line
        text = self.lines[line - 1] if 1 <= line <= len(self.lines) else ""
        for m in _WORD.finditer(text, max(0, node.span.col - 1)):
            if m.group(0) == name.split(".")[0]:
                return Span(file=self.path, line=line, col=m.start() + 1, end_line=line,
                            end_col=m.start() + 1 + len(m.group(0)))
        return Span(file=self.path, line=line, col=node.span.col, end_line=line,
                    end_col=node.span.col)


_TYPE_DOCS = {
    "int": "a whole number", "bool": "true or false", "text": "a string",
    "ratio": "an exact fraction (`1/3`, `25 bps`)", "percent": "an exact fraction written `5%`",
    "time": "seconds since the Unix epoch, taken from events",
    "duration": "seconds; written `30 days`, `2 hours` (units: "
                + ", ".join(sorted(DURATION_UNITS)) + ")",
    "party": "a party id, written `@alice`",
}


def _src(text: str, span: Any) -> str:
    """The source text a span covers (one line, or the lines joined by spaces)."""
    if span is None or getattr(span, "line", 0) < 1:
        return ""
    lines = source_lines(text)
    if span.line > len(lines):
        return ""
    if span.line == span.end_line:
        return lines[span.line - 1][span.col - 1:span.end_col - 1]
    parts = [lines[span.line - 1][span.col - 1:]] + lines[span.line:span.end_line - 1]
    if span.end_line <= len(lines):
        parts.append(lines[span.end_line - 1][:span.end_col - 1])
    return " ".join(p.strip() for p in parts)


def _in_comment(line: str, col: int) -> bool:
    """Whether column ``col`` of a source line is inside a ``#`` comment."""
    quoted = False
    for i, ch in enumerate(line[:max(0, col - 1)]):
        if ch == '"' and (i == 0 or line[i - 1] != "\\"):
            quoted = not quoted
        elif ch == "#" and not quoted:
            return True
    return False


def _line_span(file: str, line: int) -> Span:
    return Span(file=file, line=max(1, line), col=1, end_line=max(1, line), end_col=1)


def _files_under(scope: ModuleScope) -> set[str]:
    out = {scope.module.file}
    for s in scope.aliases.values():
        out |= _files_under(s)
    return out


def _show_file(file: str) -> str:
    return file.removeprefix("<stdlib>/")


def _units(a: Any) -> str:
    """What one unit of an asset is, in the words authors use."""
    kind = a.kind
    if kind == "right":
        return f"`{a.name}` is a right: granted and revoked, never an amount."
    decimals = 0
    for opt in a.options:
        if opt.name == "decimals" and isinstance(opt.value, ast.Number):
            decimals = int(opt.value.text.replace("_", ""))
    unit = f"1 {a.name} = {10 ** decimals} minor unit{'s' if decimals else ''}" if decimals \
        else f"{a.name} has no fractional units (decimals 0)"
    moves = "transferable between parties" if kind == "token" else \
        "a score: held, never transferred between parties (minted, burned, decayed)"
    return f"{unit}; {moves}."


def _module_doc(module: ast.Module, text: str) -> str:
    """The leading comment of a policy file (what the module models)."""
    out: list[str] = []
    for line in source_lines(text):
        s = line.strip()
        if s.startswith("#"):
            out.append(s[1:].strip())
        elif s.startswith("policy ") or not s:
            if out and not s:
                break
            continue
        else:
            break
    return " ".join(out)
