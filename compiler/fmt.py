"""The formatter behind ``charter fmt``: one canonical layout, printed from the AST.

Layout rules: 4-space indent, one statement per line, brace lists
(``{ a = 1, b = 2 }``) on one line when that fits in :data:`WIDTH` columns and
holds no comment, else one item per line with trailing commas; a blank line
between top-level declarations (runs of one-line declarations of the same
kind, e.g. assets, stay together unless the author separated them); blank
lines between statements are kept (at most one).  Expressions are printed with
the fewest parentheses the grammar's precedence allows.

Comments are not in the AST, so they are placed by source position: the
printer emits *lines* that each cover a range of the source; a comment that
falls before (or inside) a line's range is printed on its own line above it,
and a comment after a line's last token on the same source line stays at the
end of that line.  Every comment text survives; formatting twice changes
nothing; the AST (without positions) of the output equals that of the input.
"""
from __future__ import annotations

import bisect
import re
from typing import Any, Optional, Sequence

import attrs

from . import ast
from .diagnostics import Diagnostic
from .parse import ParseFailure, parse_source

WIDTH = 100
INDENT = "    "

# Binding strength of each expression form (higher binds tighter), from the grammar:
# or < and < not < comparison/is/has < + - < * / < unary - / exists < postfix/atoms.
_BINARY = {"or": 1, "and": 2, "==": 4, "!=": 4, "<": 4, "<=": 4, ">": 4, ">=": 4,
           "+": 5, "-": 5, "*": 6, "/": 6}
_POSTFIX = 8


def _prec(e: ast.Expr) -> int:
    if isinstance(e, ast.CondExpr):
        return 0
    if isinstance(e, ast.BinOp):
        return _BINARY[e.op]
    if isinstance(e, ast.Unary):
        return 3 if e.op == "not" else 7
    if isinstance(e, (ast.IsTest, ast.HasRight)):
        return 4
    return _POSTFIX


def quote(value: str) -> str:
    """A string literal that the lexer reads back as ``value``."""
    body = (value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
            .replace("\t", "\\t"))
    return f'"{body}"'


def expr(e: ast.Expr, need: int = 0) -> str:
    """``e`` as source; parenthesised when it binds looser than ``need``."""
    s = _expr(e)
    return f"({s})" if _prec(e) < need else s


def _expr(e: ast.Expr) -> str:
    if isinstance(e, ast.Number):
        return e.text
    if isinstance(e, ast.Quantity):
        return f"{e.text} {e.unit}"
    if isinstance(e, ast.Percent):
        return f"{e.text}%"
    if isinstance(e, ast.String):
        return quote(e.value)
    if isinstance(e, ast.PartyLit):
        return f"@{e.name}"
    if isinstance(e, ast.Name):
        return e.id
    if isinstance(e, ast.CondExpr):
        # the else branch extends as far as it can; the others are delimited by keywords
        return f"if {expr(e.cond)} then {expr(e.then)} else {expr(e.orelse)}"
    if isinstance(e, ast.ListLit):
        return f"[{', '.join(expr(i) for i in e.items)}]"
    if isinstance(e, ast.FieldAccess):
        obj = expr(e.obj, _POSTFIX)
        if isinstance(e.obj, ast.Number):
            obj = f"({obj})"  # `1.x` would read as a broken decimal
        return f"{obj}.{e.name}"
    if isinstance(e, ast.Index):
        return f"{expr(e.obj, _POSTFIX)}[{expr(e.index)}]"
    if isinstance(e, ast.Call):
        return f"{e.func}({', '.join(expr(a) for a in e.args)})"
    if isinstance(e, ast.Aggregate):
        where = f" where {expr(e.where)}" if e.where is not None else ""
        then = "".join(f" then by {expr(k)}" for k in e.then)
        return f"{e.func}({expr(e.body)}{then} for {e.var} in {expr(e.source)}{where})"
    if isinstance(e, ast.Unary):
        if e.op == "not":
            # `not (p is Agent)` reads unambiguously; the grammar would allow no parentheses
            nested = isinstance(e.operand, ast.Unary) and e.operand.op == "not"
            return f"not {expr(e.operand, 3 if nested else 5)}"
        if e.op == "exists":
            return f"exists {expr(e.operand, _POSTFIX)}"
        inner = expr(e.operand, 7)
        return f"- {inner}" if inner.startswith("-") else f"-{inner}"
    if isinstance(e, ast.BinOp):
        p = _BINARY[e.op]
        if p == 4:  # comparisons do not chain: both sides are sums
            return f"{expr(e.left, 5)} {e.op} {expr(e.right, 5)}"
        # left-associative: a left operand of equal strength needs no parentheses
        return f"{expr(e.left, p)} {e.op} {expr(e.right, p + 1)}"
    if isinstance(e, ast.IsTest):
        return f"{expr(e.operand, 5)} is {e.what}"
    if isinstance(e, ast.HasRight):
        key = f"[{expr(e.key)}]" if e.key is not None else ""
        return f"{expr(e.party, 5)} has {e.right}{key}"
    raise TypeError(f"not an expression: {type(e).__name__}")


def range_(lo: ast.Expr, hi: ast.Expr) -> str:
    return f"{expr(lo)}..{expr(hi)}"


def type_ref(t: ast.TypeRef) -> str:
    if t.item is not None:
        bound = f" max {t.bound}" if t.bound is not None else ""
        return f"list of {type_ref(t.item)}{bound}"
    s = t.name or ""
    if t.member is not None:
        s += f"[{expr(t.member)}]"
    if t.optional:
        s += "?"
    if t.lo is not None and t.hi is not None:
        s += f" within {range_(t.lo, t.hi)}"
    return s


def _field(f: ast.FieldDecl) -> str:
    default = f" = {expr(f.default)}" if f.default is not None else ""
    return f"{f.name}: {type_ref(f.type)}{default}"


def _assign(a: ast.Assign) -> str:
    return f"{a.name} = {expr(a.value)}"


# ---- source positions ------------------------------------------------------


def _find(text: str, pos: int, ch: str) -> int:
    """Offset of the first ``ch`` at or after ``pos`` outside comments and strings."""
    n = len(text)
    while pos < n:
        c = text[pos]
        if c == ch:
            return pos
        if c == "#":
            nl = text.find("\n", pos)
            pos = n if nl < 0 else nl
            continue
        if c == '"':
            pos += 1
            while pos < n and text[pos] != '"':
                pos += 2 if text[pos] == "\\" else 1
        pos += 1
    return n


_BLANK = re.compile(r"\n[ \t\r\f\v]*\n")


@attrs.define
class _Line:
    indent: int
    text: str
    start: int  # source offset of the first token this line prints
    end: int  # source offset just past the last token it prints
    closing: bool = False  # starts with '}': comments above it belong inside the block
    blank: str = "never"  # never | always | preserve (a blank line above it)


@attrs.frozen
class _Comment:
    offset: int
    line: int
    text: str


class _Printer:
    def __init__(self, text: str, module: ast.Module):
        self.text = text
        self.starts = [0]
        for m in re.finditer("\n", text):
            self.starts.append(m.end())
        self.comments = sorted(
            (_Comment(offset=self._off(c.line, c.col), line=c.line, text=c.text)
             for c in module.comments), key=lambda c: c.offset)
        self._comment_offsets = [c.offset for c in self.comments]
        self.lines: list[_Line] = []

    # -- positions --
    def _off(self, line: int, col: int) -> int:
        if line < 1:
            return 0
        if line > len(self.starts):
            return len(self.text)
        return min(self.starts[line - 1] + col - 1, len(self.text))

    def start(self, node) -> int:
        return self._off(node.span.line, node.span.col)

    def end(self, node) -> int:
        return self._off(node.span.end_line, node.span.end_col)

    def _line_of(self, offset: int) -> int:
        return bisect.bisect_right(self.starts, offset)

    def _text_end(self, lo: int, hi: int) -> int:
        """The end of the last code (not space, not comment) in ``[lo, hi)``."""
        spans = [(c.offset, c.offset + len(c.text)) for c in self.comments
                 if lo <= c.offset < hi]
        pos = hi
        while pos > lo:
            ch = self.text[pos - 1]
            inside = next((a for a, b in spans if a < pos <= b), None)
            if inside is not None:
                pos = inside
            elif ch in " \t\r\n":
                pos -= 1
            else:
                break
        return pos

    def has_comment(self, lo: int, hi: int) -> bool:
        i = bisect.bisect_right(self._comment_offsets, lo)
        return i < len(self._comment_offsets) and self._comment_offsets[i] < hi

    def emit(self, indent: int, text: str, start: int, end: int, *, closing: bool = False,
             blank: str = "never") -> None:
        self.lines.append(_Line(indent=indent, text=text, start=start, end=end, closing=closing,
                                blank=blank))

    # -- building blocks --
    def brace_list(self, indent: int, head: str, node, items: Sequence, render, *,
                   blank: str, empty: str, lead: str = "") -> None:
        """``head { item, item }`` on one line if short and comment-free, else one per line.

        ``empty`` is what an empty list prints as after the head ("" or " {}");
        ``lead`` goes between the head and the brace (``" with"`` for imports).
        """
        start, end = self.start(node), self.end(node)
        if not items:
            self.emit(indent, head + empty, start, end, blank=blank)
            return
        texts = [render(i) for i in items]
        one = f"{head}{lead} {{ {', '.join(texts)} }}"
        open_ = _find(self.text, start, "{")
        close = _find(self.text, self.end(items[-1]), "}")
        if len(INDENT) * indent + len(one) <= WIDTH and not self.has_comment(open_, close):
            self.emit(indent, one, start, end, blank=blank)
            return
        self.emit(indent, f"{head}{lead} {{", start, open_ + 1, blank=blank)
        for item, t in zip(items, texts):
            self.emit(indent + 1, t + ",", self.start(item), self.end(item))
        self.emit(indent, "}", close, close + 1, closing=True)

    def block(self, indent: int, head: str, node, body: Sequence, step, *, blank: str,
              ensures: Sequence = ()) -> None:
        """``head {`` body ``}``; ``{}`` when empty and comment-free.

        A handler's ``ensures`` clauses go one per line between the head and the brace,
        indented one level, the brace ending the last of them."""
        start = self.start(node)
        open_ = _find(self.text, self.end(ensures[-1]) if ensures else start, "{")
        close = _find(self.text, self.end(body[-1]) if body else open_ + 1, "}")
        lines = [(indent, head, start, self._text_end(start, self.start(ensures[0])))
                 if ensures else (indent, head, start, 0)]
        lines += [(indent + 1, _ensures(e), self.start(e), self.end(e)) for e in ensures]
        for ind, text, lo, hi in lines[:-1]:
            # a line ends where its own text does: a comment after it stays between lines
            self.emit(ind, text, lo, hi, blank=blank if lo == start else "never")
        last_indent, last, last_start, _ = lines[-1]
        blank_last = blank if last_start == start else "never"
        if not body and not self.has_comment(open_, close):
            self.emit(last_indent, last + " {}", last_start, close + 1, blank=blank_last)
            return
        self.emit(last_indent, last + " {", last_start, open_ + 1, blank=blank_last)
        for i, s in enumerate(body):
            step(indent + 1, s, "never" if i == 0 else "preserve")
        self.emit(indent, "}", close, close + 1, closing=True)

    # -- statements --
    def stmts(self, indent: int, body: Sequence[ast.Stmt]) -> None:
        for i, s in enumerate(body):
            self.stmt(indent, s, "never" if i == 0 else "preserve")

    def stmt(self, indent: int, s: ast.Stmt, blank: str) -> None:
        if isinstance(s, ast.If):
            self.if_chain(indent, s, blank)
        elif isinstance(s, ast.ForEach):
            where = f" where {expr(s.where)}" if s.where is not None else ""
            if s.order:
                where += " ordered by " + " then by ".join(
                    expr(k) + (" descending" if down else "") for k, down in s.order)
            self.block(indent, f"for each {s.var} in {expr(s.source)}{where}", s, s.body,
                       self.stmt, blank=blank)
        elif isinstance(s, ast.ForRange):
            self.block(indent, f"for {s.var} in {expr(s.lo, 5)}..{expr(s.hi, 5)}", s, s.body,
                       self.stmt, blank=blank)
        elif isinstance(s, ast.Create):
            key = (", ".join(expr(k) for k in s.key.parts) if isinstance(s.key, ast.KeyTuple)
                   else expr(s.key))
            self.brace_list(indent, f"create {s.record}({key})", s, s.assigns, _assign,
                            blank=blank, empty=" {}")
        elif isinstance(s, ast.Update):
            self.brace_list(indent, f"update {expr(s.target)}", s, s.assigns, _assign,
                            blank=blank, empty=" {}")
        elif isinstance(s, ast.Admit):
            self.brace_list(indent, f"admit {expr(s.party)} as {s.role}", s, s.assigns, _assign,
                            blank=blank, empty="")
        else:
            self.emit(indent, simple_stmt(s), self.start(s), self.end(s), blank=blank)

    def if_chain(self, indent: int, node: ast.If, blank: str) -> None:
        prefix, line_start = "if ", self.start(node)
        while True:
            open_ = _find(self.text, self.start(node), "{")
            self.emit(indent, f"{prefix}{expr(node.cond)} {{", line_start, open_ + 1,
                      closing=prefix != "if ", blank=blank)
            self.stmts(indent + 1, node.then)
            close = _find(self.text, self.end(node.then[-1]) if node.then else open_ + 1, "}")
            if not node.orelse:
                break
            if len(node.orelse) == 1 and isinstance(node.orelse[0], ast.If):
                # `else if` (or an else block holding only an `if`: the same AST)
                prefix, line_start, node = "} else if ", close, node.orelse[0]
                continue
            open2 = _find(self.text, close + 1, "{")
            self.emit(indent, "} else {", close, open2 + 1, closing=True)
            self.stmts(indent + 1, node.orelse)
            close = _find(self.text, self.end(node.orelse[-1]), "}")
            break
        self.emit(indent, "}", close, close + 1, closing=True)

    # -- declarations --
    def decl(self, d: ast.Decl, blank: str) -> None:
        if isinstance(d, ast.Import):
            alias = f" as {d.alias}" if d.alias else ""
            self.brace_list(0, f"import {quote(d.target)}{alias}", d, d.settings, _assign,
                            blank=blank, empty="", lead=" with")
        elif isinstance(d, ast.RoleDecl):
            self.brace_list(0, f"role {d.name}", d, d.fields, _field, blank=blank, empty="")
        elif isinstance(d, ast.RecordDecl):
            holds = f" holds {d.holds}" if d.holds else ""
            self.brace_list(0, f"record {d.name}{holds}", d, d.fields, _field, blank=blank,
                            empty=" {}")
        elif isinstance(d, ast.Handler):
            params = ", ".join(f"{p.name}: {type_ref(p.type)}" for p in d.params)
            by = ""
            if isinstance(d.by, ast.ByRole):
                by = f" by {d.by.binder}: {type_ref(d.by.type)}"
            elif isinstance(d.by, ast.ByExpr):
                by = f" by {expr(d.by.expr)}"
            self.block(0, f"on {d.name}({params}){by}", d, d.body, self.stmt, blank=blank,
                       ensures=d.ensures)
        elif isinstance(d, ast.EveryHandler):
            self.block(0, f"every {expr(d.period)} as {d.name}", d, d.body, self.stmt,
                       blank=blank, ensures=d.ensures)
        elif isinstance(d, ast.DeadlineHandler):
            self.block(0, f"when {d.record}.{d.field} passes as {d.binder}", d, d.body,
                       self.stmt, blank=blank, ensures=d.ensures)
        elif isinstance(d, ast.FnDecl):
            params = ", ".join(f"{p.name}: {type_ref(p.type)}" for p in d.params)
            self.block(0, f"fn {d.name}({params}) -> {type_ref(d.returns)}", d, d.body,
                       self.stmt, blank=blank)
        elif isinstance(d, ast.ProcDecl):
            params = ", ".join(f"{p.name}: {type_ref(p.type)}" for p in d.params)
            self.block(0, f"proc {d.name}({params})", d, d.body, self.stmt, blank=blank)
        elif isinstance(d, ast.TestDecl):
            self.block(0, f"test {quote(d.name)}", d, d.steps, self.test_step, blank=blank)
        else:
            self.emit(0, simple_decl(d), self.start(d), self.end(d), blank=blank)

    def test_step(self, indent: int, s: ast.TestStep, blank: str) -> None:
        if s.kind == "given_role":
            self.brace_list(indent, f"given {expr(s.expr)} as {s.name}", s, s.assigns, _assign,
                            blank=blank, empty="")
        else:
            self.emit(indent, simple_step(s), self.start(s), self.end(s), blank=blank)

    def module(self, m: ast.Module) -> None:
        hstart = self.start(m)
        hend = _find(self.text, hstart, '"') + 1
        while hend < len(self.text) and self.text[hend] != '"':
            hend += 2 if self.text[hend] == "\\" else 1
        self.emit(0, f"policy {m.name} version {quote(m.version)}", hstart, hend + 1)
        prev: Optional[tuple[str, bool]] = None
        for d in m.items:
            first = len(self.lines)
            self.decl(d, "always")
            one_line = len(self.lines) - first == 1
            kind = type(d).__name__
            if prev is not None and prev == (kind, True) and one_line:
                self.lines[first].blank = "preserve"
            prev = (kind, one_line)

    # -- output --
    def render(self) -> str:
        out: list[str] = []
        cs, ci = self.comments, 0
        prev_end = 0
        for i, ln in enumerate(self.lines):
            lead = []
            while ci < len(cs) and cs[ci].offset < ln.end:
                lead.append(cs[ci])
                ci += 1
            if out and out[-1] != "" and not out[-1].endswith("{"):
                gap_end = lead[0].offset if lead else ln.start
                if ln.blank == "always" or (
                        ln.blank == "preserve" and _BLANK.search(self.text, prev_end, gap_end)):
                    out.append("")
            ind = INDENT * (ln.indent + (1 if ln.closing else 0))
            for j, c in enumerate(lead):
                # keep an author's blank line between comment paragraphs, and between a
                # comment (e.g. a section banner) and the code below it
                if j and out[-1] != "" and _BLANK.search(self.text, lead[j - 1].offset,
                                                          c.offset):
                    out.append("")
                out.append(ind + c.text)
            if lead and _BLANK.search(self.text, lead[-1].offset, ln.start):
                out.append("")
            line = INDENT * ln.indent + ln.text
            nxt = self.lines[i + 1].start if i + 1 < len(self.lines) else len(self.text) + 1
            if (ci < len(cs) and cs[ci].offset < nxt
                    and cs[ci].line == self._line_of(max(ln.end - 1, 0))):
                line += "  " + cs[ci].text
                ci += 1
            out.append(line)
            prev_end = ln.end
        if ci < len(cs):
            if _BLANK.search(self.text, prev_end, cs[ci].offset):
                out.append("")
            out.extend(c.text for c in cs[ci:])
        return "\n".join(out) + "\n"


def _src(a) -> str:
    if isinstance(a, ast.RestOf):
        return f"rest of {expr(a.source)}"
    if isinstance(a, ast.AmountFrom):
        return f"{expr(a.amount)} from {expr(a.source)}"
    return expr(a)


def simple_stmt(s: ast.Stmt) -> str:
    """A statement that always prints on one line."""
    if isinstance(s, ast.Require):
        msg = f" else {quote(s.message)}" if s.message is not None else ""
        return f"require {expr(s.cond)}{msg}"
    if isinstance(s, ast.Reject):
        return f"reject {quote(s.message)}"
    if isinstance(s, ast.Let):
        return f"let {s.name} = {expr(s.value)}"
    if isinstance(s, ast.SetField):
        return f"set {expr(s.target)} = {expr(s.value)}"
    if isinstance(s, ast.Var):
        return f"var {s.name} = {expr(s.value)}"
    if isinstance(s, ast.SetLocal):
        return f"set {s.name} = {expr(s.value)}"
    if isinstance(s, ast.Return):
        return f"return {expr(s.value)}"
    if isinstance(s, ast.Move):
        v, amt = s.verb, s.amount
        src = expr(s.src) if s.src is not None else ""
        dst = expr(s.dst) if s.dst is not None else ""
        if v in ("transfer", "release"):
            return f"{v} {expr(amt)} from {src} to {dst}"
        if v == "escrow":
            return f"escrow {expr(amt)} from {src} into {dst}"
        if v == "refund":
            return f"refund {_src(amt)} to {dst}"
        if v == "mint":
            return f"mint {expr(amt)} to {dst}"
        if v in ("burn", "lock"):
            return f"{v} {expr(amt)} from {src}"
        if v == "unlock":
            return f"unlock {expr(amt)} of {src}"
        if v == "slash":
            to = f" to {dst}" if s.dst is not None else ""
            return f"slash {expr(amt)} of {src}{to}"
        raise TypeError(f"unknown move verb {v!r}")
    if isinstance(s, ast.Split):
        # `all of` and `rest of` are the same AST; `all of` reads better for a split
        source = (f"all of {expr(s.source.source)}" if isinstance(s.source, ast.RestOf)
                  else _src(s.source))
        out = f"split {source} among {s.var} in {expr(s.among)}"
        if s.where is not None:
            out += f" where {expr(s.where)}"
        if s.to is not None:
            out += f" to {expr(s.to)}"
        out += f" by {expr(s.weight)}"
        if s.rounding is not None:
            out += f" rounding {s.rounding}"
        if s.minimum is not None:
            kw = "with minimum" if s.minimum_rule == "quota" else "at least"
            out += f" {kw} {expr(s.minimum)}"
        if s.cap is not None:
            out += f" at most {expr(s.cap)}"
        if s.order is not None:
            out += f" in {s.order} order"
        return out
    if isinstance(s, ast.SplitBetween):
        source = (f"all of {expr(s.source.source)}" if isinstance(s.source, ast.RestOf)
                  else _src(s.source))
        shares = ", ".join(f"{expr(a)}: {expr(w)}" for a, w in s.shares)
        out = f"split {source} between {{ {shares} }}"
        if s.rounding is not None:
            out += f" rounding {s.rounding}"
        if s.minimum is not None:
            kw = "with minimum" if s.minimum_rule == "quota" else "at least"
            out += f" {kw} {expr(s.minimum)}"
        if s.cap is not None:
            out += f" at most {expr(s.cap)}"
        if s.order is not None:
            out += f" in {s.order} order"
        return out
    if isinstance(s, ast.Grant):
        key = f"[{expr(s.key)}]" if s.key is not None else ""
        until = f" until {expr(s.until)}" if s.until is not None else ""
        return f"grant {s.right}{key} to {expr(s.party)}{until}"
    if isinstance(s, ast.Revoke):
        key = f"[{expr(s.key)}]" if s.key is not None else ""
        return f"revoke {s.right}{key} from {expr(s.party)}"
    if isinstance(s, ast.Expel):
        return f"expel {expr(s.party)} from {s.role}"
    if isinstance(s, ast.Push):
        return f"push {expr(s.value)} to {expr(s.target)}"
    if isinstance(s, ast.Remove):
        if s.value is None:
            return f"remove {expr(s.target)}"
        return f"remove {expr(s.value)} from {expr(s.target)}"
    if isinstance(s, ast.Delete):
        return f"delete {expr(s.target)}"
    if isinstance(s, ast.Decay):
        return f"decay {s.asset}"
    if isinstance(s, ast.Flag):
        return f"flag {expr(s.party)} {quote(s.message)}"
    if isinstance(s, ast.Dissolve):
        return "dissolve"
    if isinstance(s, ast.Do):
        return f"do {s.proc}(" + ", ".join(expr(a) for a in s.args) + ")"
    raise TypeError(f"not a one-line statement: {type(s).__name__}")


def _ensures(e: ast.Ensures) -> str:
    msg = f" else {quote(e.message)}" if e.message is not None else ""
    return f"ensures {expr(e.cond)}{msg}"


def simple_decl(d: ast.Decl) -> str:
    if isinstance(d, ast.AssetDecl):
        opts = "".join(f", {o.name}" + (f" {expr(o.value)}" if o.value is not None else "")
                       for o in d.options)
        key = f"[{d.key}]" if d.key is not None else ""
        return f"asset {d.name}{key}: {d.kind}{opts}"
    if isinstance(d, ast.ParamDecl):
        rng = f" within {range_(d.lo, d.hi)}" if d.lo is not None and d.hi is not None else ""
        return f"param {d.name}: {type_ref(d.type)} = {expr(d.default)}{rng}"
    if isinstance(d, ast.PoolDecl):
        return f"{d.kind} {d.name} of {d.asset}"
    if isinstance(d, ast.PropertyDecl):
        head = f"property {d.name}: "
        bound = expr(d.bound) if d.bound is not None else ""
        if d.kind == "split":
            within = f" within {bound}" if d.bound is not None else ""
            return f"{head}split in {d.handler} is {d.what}{within}"
        if d.kind == "split_floor":
            return f"{head}split in {d.handler} gives at least {bound}"
        if d.kind == "split_cap":
            return f"{head}split in {d.handler} gives at most {bound}"
        if d.kind == "budget":
            return f"{head}{d.handler} pays from {d.what} at most {bound}"
        if d.kind == "invariant":
            return f"{head}always {bound}"
        if d.kind == "record_invariant":
            return f"{head}for each {d.var} in {d.record} always {bound}"
        if d.kind == "anyone":
            return f"{head}anyone may call {d.handler}"
        raise TypeError(f"unknown property kind {d.kind!r}")
    raise TypeError(f"not a one-line declaration: {type(d).__name__}")


def simple_step(s: ast.TestStep) -> str:
    if s.kind == "given_funds":
        return f"given {expr(s.expr)} in {expr(s.target)}"
    if s.kind == "given_param":
        return f"given param {s.name} = {expr(s.expr)}"
    if s.kind == "when":
        args = ", ".join(_assign(a) for a in s.assigns)
        at = f" at {expr(s.target)}" if s.target is not None else ""
        return f"when {s.name}({args}) by {expr(s.expr)}{at}"
    if s.kind == "expect_ok":
        return "expect ok"
    if s.kind == "expect_rejected":
        return "expect rejected" + (f" {quote(s.text)}" if s.text is not None else "")
    if s.kind == "expect_true":
        return f"expect {expr(s.expr)}"
    raise TypeError(f"unknown test step {s.kind!r}")


def strip_positions(node: Any) -> Any:
    """An AST (or IR) as nested tuples without spans, comments or file names.

    Two sources mean the same if their stripped ASTs are equal; this is how
    the formatter's output is checked against its input.
    """
    if attrs.has(type(node)):
        return (type(node).__name__,) + tuple(
            (f.name, strip_positions(getattr(node, f.name))) for f in attrs.fields(type(node))
            if f.name not in _POSITIONAL)
    if isinstance(node, (tuple, list)):
        return tuple(strip_positions(v) for v in node)
    return node


_POSITIONAL = frozenset({"span", "end_span", "name_span", "comments", "file"})


def _too_deep(module: ast.Module) -> ParseFailure:
    return ParseFailure(Diagnostic(
        "E0104", "the policy is nested too deeply to format", module.span,
        hint="flatten deeply nested blocks or types"))


def format_module(module: ast.Module, text: str) -> str:
    """Canonical text of ``module``, which was parsed from ``text`` (for comments).

    The parser bounds expression depth but not block nesting; a policy nested
    past Python's recursion limit is refused with E0104, as the checker does.
    """
    try:
        p = _Printer(text, module)
        p.module(module)
        return p.render()
    except RecursionError:
        raise _too_deep(module) from None


def format_source(text: str, file: str = "<input>") -> str:
    """Canonical text of a policy.  Raises ``ParseFailure`` if it does not parse."""
    return format_module(parse_source(text, file), text)


class FormatterBug(Exception):
    """The formatted text would not mean what the input meant (never expected)."""


def format_verified(text: str, file: str = "<input>") -> str:
    """:func:`format_source`, then re-parse the result and refuse it unless it has the
    same AST (without positions) and the same comments as the input.

    ``charter fmt`` writes files only through this, so a formatter bug can cost
    a refusal, never a silently changed policy.
    """
    before = parse_source(text, file)
    out = format_module(before, text)
    try:
        after = parse_source(out, file)
    except Exception as err:  # a formatter bug, reported with the file name
        raise FormatterBug(f"{file}: formatted text does not parse: {err}") from None
    try:
        same = strip_positions(after) == strip_positions(before)
    except RecursionError:
        raise _too_deep(before) from None
    if not same:
        raise FormatterBug(f"{file}: formatting would change the policy's meaning")
    if sorted(c.text for c in after.comments) != sorted(c.text for c in before.comments):
        raise FormatterBug(f"{file}: formatting would lose or alter a comment")
    return out
