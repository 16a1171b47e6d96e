"""Pass 1, parse: source text -> :class:`charter.compiler.ast.Module`.

The grammar is ``charter/grammar/charter.lark`` (package data), parsed with
Lark's LALR parser and contextual lexer.  Lark's tree is turned into the AST
by a non-recursive transformer, so nothing here recurses over the input: a
10,000-deep expression is refused with ``E0104`` (the later passes recurse,
and a policy has no business being that deep), never a ``RecursionError``.
Comments are collected from the lexer for the formatter.
"""
from __future__ import annotations

import re
import threading
from functools import lru_cache
from importlib import resources
from typing import Any, Optional

from lark import Lark, Token, v_args
from lark.visitors import Transformer_NonRecursive
from lark.exceptions import (
    UnexpectedCharacters,
    UnexpectedEOF,
    UnexpectedInput,
    UnexpectedToken,
    VisitError,
)

from . import ast, parse_tables
from .diagnostics import Diagnostic, closest, source_lines
from .ir import Span

MAX_DEPTH = 100  # deeper generated Python overwhelms CPython's own parser (MemoryError)

_local = threading.local()


class ParseFailure(Exception):
    def __init__(self, diagnostic: Diagnostic):
        super().__init__(diagnostic.message)
        self.diagnostic = diagnostic


def grammar_text() -> str:
    return resources.files("charter.grammar").joinpath("charter.lark").read_text("utf-8")


def _on_comment(tok: Token) -> None:
    sink = getattr(_local, "comments", None)
    if sink is not None:
        sink.append(tok)


PARSER_OPTIONS = {"parser": "lalr", "lexer": "contextual", "propagate_positions": True,
                  "maybe_placeholders": True}


@lru_cache(maxsize=1)
def _parser() -> Lark:
    """The LALR parser, once per process; its tables come from the user's cache directory
    after the first build (:mod:`.parse_tables`)."""
    return parse_tables.load(grammar_text(), PARSER_OPTIONS, {"COMMENT": _on_comment})


# Human names for the grammar's terminals, used in "expected ..." hints.
_TERMINAL_NAMES = {
    "NAME": "a name", "STRING": "a string", "NUMBER": "a number", "PARTY": "a party (@name)",
    "LBRACE": "'{'", "RBRACE": "'}'", "LPAR": "'('", "RPAR": "')'", "COMMA": "','",
    "COLON": "':'", "EQUAL": "'='", "DOT": "'.'", "LSQB": "'['", "RSQB": "']'",
    "PERCENT": "'%'", "QMARK": "'?'", "COMPARE": "a comparison", "ADDOP": "'+' or '-'",
    "MULOP": "'*' or '/'", "MINUS": "'-'", "POOLKIND": "'pool' or 'treasury'",
    "$END": "end of file",
    "__ANON_0": "'..'",
}


def _describe_expected(expected: set[str]) -> str:
    names = []
    for t in sorted(expected):
        if t in _TERMINAL_NAMES:
            names.append(_TERMINAL_NAMES[t])
        elif t.isupper() and t.isalpha():
            names.append(f"'{t.lower()}'")
        else:
            names.append(t.lower())
    names = sorted(set(names))
    if len(names) > 8:
        return ", ".join(names[:8]) + f" or {len(names) - 8} more"
    return ", ".join(names)


def _span(file: str, meta: Any) -> Span:
    if getattr(meta, "empty", True):
        return Span(file=file, line=0, col=0, end_line=0, end_col=0)
    return Span(file=file, line=meta.line, col=meta.column, end_line=meta.end_line,
                end_col=meta.end_column)


def _tok_span(file: str, tok: Token) -> Span:
    return Span(file=file, line=tok.line or 0, col=tok.column or 0,
                end_line=tok.end_line or tok.line or 0, end_col=tok.end_column or tok.column or 0)


def unescape(raw: str) -> str:
    body = raw[1:-1]
    out, i = [], 0
    while i < len(body):
        c = body[i]
        if c == "\\" and i + 1 < len(body):
            nxt = body[i + 1]
            out.append({"n": "\n", "t": "\t"}.get(nxt, nxt))
            i += 2
        else:
            out.append(c)
            i += 1
    return "".join(out)


@v_args(meta=True)
class _Build(Transformer_NonRecursive):
    """Builds AST nodes from Lark's tree without recursing (deep input is safe)."""

    # Per-parse state lives in a thread-local so that one cached parser
    # (whose LALR tables are costly to build) serves every parse.
    @property
    def file(self) -> str:
        return _local.file

    @property
    def depth(self) -> dict[int, int]:
        return _local.depth

    # -- helpers --
    def sp(self, meta: Any) -> Span:
        return _span(self.file, meta)

    def _expr(self, node: Any, *children: Any) -> Any:
        d = 1 + max((self.depth.get(id(c), 0) for c in children if c is not None), default=0)
        if d > MAX_DEPTH:
            raise ParseFailure(Diagnostic(
                "E0104", f"expression nested more than {MAX_DEPTH} levels deep", node.span,
                hint="split the expression with `let` bindings"))
        self.depth[id(node)] = d
        return node

    # -- module --
    def start(self, meta, ch):
        header, *items = ch
        name, version = header
        return ast.Module(name=name, version=version, items=tuple(items), comments=(),
                          span=self.sp(meta), file=self.file)

    def header(self, meta, ch):
        return (str(ch[0]), unescape(ch[1]))

    # -- declarations --
    def import_decl(self, meta, ch):
        target, alias, settings = ch
        return ast.Import(target=unescape(target), alias=str(alias) if alias else None,
                          settings=tuple(settings or ()), span=self.sp(meta))

    def asset_decl(self, meta, ch):
        name, key, kind, *opts = ch
        return ast.AssetDecl(name=str(name), kind=str(kind), options=tuple(opts),
                             span=self.sp(meta), key=str(key) if key is not None else None)

    def asset_opt(self, meta, ch):
        return ast.AssetOpt(name=str(ch[0]), value=ch[1], span=self.sp(meta))

    def role_decl(self, meta, ch):
        return ast.RoleDecl(name=str(ch[0]), fields=tuple(ch[1] or ()), span=self.sp(meta))

    def param_decl(self, meta, ch):
        name, typ, default, lo, hi = ch
        return ast.ParamDecl(name=str(name), type=typ, default=default, lo=lo, hi=hi,
                             span=self.sp(meta))

    def pool_decl(self, meta, ch):
        return ast.PoolDecl(kind=str(ch[0]), name=str(ch[1]), asset=str(ch[2]), span=self.sp(meta))

    def record_decl(self, meta, ch):
        name, holds, fields = ch
        return ast.RecordDecl(name=str(name), holds=str(holds) if holds else None,
                              fields=tuple(fields or ()), span=self.sp(meta))

    def fields(self, meta, ch):
        return tuple(ch)

    def field(self, meta, ch):
        return ast.FieldDecl(name=str(ch[0]), type=ch[1], default=ch[2], span=self.sp(meta))

    def named_type(self, meta, ch):
        return ast.TypeRef(name=str(ch[0]), span=self.sp(meta))

    def optional_type(self, meta, ch):
        return ast.TypeRef(name=str(ch[0]), optional=True, span=self.sp(meta))

    def ranged_type(self, meta, ch):
        return ast.TypeRef(name=str(ch[0]), lo=ch[1], hi=ch[2], span=self.sp(meta))

    def member_type(self, meta, ch):
        return self._expr(ast.TypeRef(name=str(ch[0]), member=ch[1], span=self.sp(meta)), ch[1])

    def list_type(self, meta, ch):
        return self._expr(ast.TypeRef(name=None, item=ch[0], span=self.sp(meta)), ch[0])

    def bounded_list_type(self, meta, ch):
        item, n = ch
        text = str(n).replace("_", "")
        # a bound that is not a whole number of sane size is reported by the checker (E0750)
        bound = int(text) if text.isdigit() and len(text) <= 9 else -1
        return self._expr(ast.TypeRef(name=None, item=item, span=self.sp(meta), bound=bound),
                          item)

    # -- handlers --
    def handler(self, meta, ch):
        name, params, by, *ens, block = ch
        body, end = block
        return ast.Handler(name=str(name), params=tuple(params or ()), by=by, body=body,
                           span=self.sp(meta), end_span=end, ensures=tuple(ens))

    def ensures_clause(self, meta, ch):
        return ast.Ensures(cond=ch[0], message=unescape(ch[1]) if ch[1] else None,
                           span=self.sp(meta))

    def params(self, meta, ch):
        return tuple(ch)

    def param(self, meta, ch):
        return ast.FieldDecl(name=str(ch[0]), type=ch[1], default=None, span=self.sp(meta))

    def by_role(self, meta, ch):
        return ast.ByRole(binder=str(ch[0]), type=ch[1], span=self.sp(meta))

    def by_expr(self, meta, ch):
        return ast.ByExpr(expr=ch[0], span=self.sp(meta))

    def every_handler(self, meta, ch):
        period, name, *ens, (body, end) = ch
        return ast.EveryHandler(period=period, name=str(name), body=body, span=self.sp(meta),
                                end_span=end, ensures=tuple(ens))

    def deadline_handler(self, meta, ch):
        record, field, binder, *ens, (body, end) = ch
        return ast.DeadlineHandler(record=str(record), field=str(field), binder=str(binder),
                                   body=body, span=self.sp(meta), end_span=end,
                                   ensures=tuple(ens))

    def block(self, meta, ch):
        end = Span(file=self.file, line=meta.end_line, col=meta.end_column - 1,
                   end_line=meta.end_line, end_col=meta.end_column)
        return (tuple(ch), end)

    # -- statements --
    def require_stmt(self, meta, ch):
        return ast.Require(cond=ch[0], message=unescape(ch[1]) if ch[1] else None,
                           span=self.sp(meta))

    def reject_stmt(self, meta, ch):
        return ast.Reject(message=unescape(ch[0]), span=self.sp(meta))

    def let_stmt(self, meta, ch):
        return ast.Let(name=str(ch[0]), value=ch[1], span=self.sp(meta))

    def var_stmt(self, meta, ch):
        return ast.Var(name=str(ch[0]), value=ch[1], span=self.sp(meta))

    def return_stmt(self, meta, ch):
        return ast.Return(value=ch[0], span=self.sp(meta))

    def set_stmt(self, meta, ch):
        target, value = ch
        if isinstance(target, ast.Name):
            return ast.SetLocal(name=target.id, value=value, span=self.sp(meta),
                                name_span=target.span)
        if isinstance(target, ast.Index) and isinstance(target.obj, ast.FieldAccess):
            # `set R(k).f[i] = x`: one item of a list field is not assignable (issue 17's
            # lists have push, remove, len and indexing); say what to write instead
            raise ParseFailure(Diagnostic(
                "E0106", "`set` cannot assign one item of a list: a list field changes with "
                "`push`, `remove` or a whole new list", self.sp(meta),
                hint="`remove R(k).f[i]` then `push x to R(k).f` (the new item goes last), "
                     "or assign the whole list: `update R(k) { f = [...] }`"))
        if not isinstance(target, ast.FieldAccess):
            raise ParseFailure(Diagnostic(
                "E0106", "`set` needs a field or a `var` to assign, like `set t.open = false`",
                self.sp(meta), hint="use `let` to bind a new name"))
        return ast.SetField(target=target, value=value, span=self.sp(meta))

    def fn_decl(self, meta, ch):
        name, params, returns, (body, end) = ch
        return ast.FnDecl(name=str(name), params=tuple(params or ()), returns=returns,
                          body=body, span=self.sp(meta), end_span=end)

    def proc_decl(self, meta, ch):
        name, params, (body, end) = ch
        return ast.ProcDecl(name=str(name), params=tuple(params or ()), body=body,
                            span=self.sp(meta), end_span=end)

    def do_stmt(self, meta, ch):
        return ast.Do(proc=str(ch[0]), args=tuple(ch[1] or ()), span=self.sp(meta))

    def fn_block(self, meta, ch):
        end = Span(file=self.file, line=meta.end_line, col=meta.end_column - 1,
                   end_line=meta.end_line, end_col=meta.end_column)
        return (tuple(ch), end)

    def _nested(self, node: Any, *blocks: tuple) -> Any:
        """Track statement nesting like expression nesting (an else-if chain nests too)."""
        d = 1 + max((self.depth.get(id(s), 0) for b in blocks for s in b), default=0)
        if d > MAX_DEPTH:
            raise ParseFailure(Diagnostic(
                "E0104", f"statements nested more than {MAX_DEPTH} levels deep", node.span,
                hint="move the inner part into its own handler or flatten the conditions"))
        self.depth[id(node)] = d
        return node

    def if_stmt(self, meta, ch):
        cond, (then, end), orelse = ch
        if orelse is None:
            other: tuple = ()
        elif isinstance(orelse, ast.If):
            other = (orelse,)
        else:
            other, end = orelse
        return self._nested(ast.If(cond=cond, then=then, orelse=other, span=self.sp(meta),
                                   end_span=end), then, other)

    def for_stmt(self, meta, ch):
        var, source, where, order, (body, _end) = ch
        return self._nested(ast.ForEach(var=str(var), source=source, where=where, body=body,
                                        span=self.sp(meta), order=order or ()), body)

    def ordered_by(self, meta, ch):
        return tuple(ch)

    def order_key(self, meta, ch):
        key, direction = ch
        return (key, direction is not None and str(direction) == "descending")

    def for_range(self, meta, ch):
        var, lo, hi, (body, _end) = ch
        return self._nested(ast.ForRange(var=str(var), lo=lo, hi=hi, body=body,
                                         span=self.sp(meta)), body)

    def _move(self, verb, meta, amount, src, dst):
        return ast.Move(verb=verb, amount=amount, src=src, dst=dst, span=self.sp(meta))

    def transfer_stmt(self, meta, ch):
        return self._move("transfer", meta, ch[0], ch[1], ch[2])

    def escrow_stmt(self, meta, ch):
        return self._move("escrow", meta, ch[0], ch[1], ch[2])

    def release_stmt(self, meta, ch):
        return self._move("release", meta, ch[0], ch[1], ch[2])

    def refund_stmt(self, meta, ch):
        source, dst = ch
        return self._move("refund", meta, source, None, dst)

    def mint_stmt(self, meta, ch):
        return self._move("mint", meta, ch[0], None, ch[1])

    def burn_stmt(self, meta, ch):
        return self._move("burn", meta, ch[0], ch[1], None)

    def lock_stmt(self, meta, ch):
        return self._move("lock", meta, ch[0], ch[1], None)

    def unlock_stmt(self, meta, ch):
        return self._move("unlock", meta, ch[0], ch[1], None)

    def slash_stmt(self, meta, ch):
        return self._move("slash", meta, ch[0], ch[1], ch[2])

    def rest_of(self, meta, ch):
        return ast.RestOf(source=ch[0], span=self.sp(meta))

    def amount_from(self, meta, ch):
        return ast.AmountFrom(amount=ch[0], source=ch[1], span=self.sp(meta))

    def split_stmt(self, meta, ch):
        source, var, among, where, to, weight, *opts = ch
        rounding = minimum = cap = order = None
        minimum_rule = "first"
        for kind, value in opts:
            if kind == "rounding":
                rounding = value
            elif kind in ("min", "statutory"):
                minimum = value
                minimum_rule = "first" if kind == "min" else "quota"
            elif kind == "order":
                order = value
            else:
                cap = value
        return ast.Split(source=source, var=str(var), among=among, where=where, to=to,
                         weight=weight, rounding=rounding, minimum=minimum, cap=cap,
                         minimum_rule=minimum_rule, order=order, span=self.sp(meta))

    def split_between(self, meta, ch):
        source, shares, *opts = ch
        rounding = minimum = cap = order = None
        minimum_rule = "first"
        for kind, value in opts:
            if kind == "rounding":
                rounding = value
            elif kind in ("min", "statutory"):
                minimum = value
                minimum_rule = "first" if kind == "min" else "quota"
            elif kind == "order":
                order = value
            else:
                cap = value
        return ast.SplitBetween(source=source, shares=tuple(shares), rounding=rounding,
                                minimum=minimum, cap=cap, minimum_rule=minimum_rule,
                                order=order, span=self.sp(meta))

    def shares(self, meta, ch):
        return list(ch)

    def share(self, meta, ch):
        return (ch[0], ch[1])

    def split_rounding(self, meta, ch):
        return ("rounding", str(ch[0]))

    def split_min(self, meta, ch):
        return ("min", ch[0])

    def split_cap(self, meta, ch):
        return ("cap", ch[0])

    def split_statutory(self, meta, ch):
        return ("statutory", ch[0])

    def split_order(self, meta, ch):
        return ("order", str(ch[0]))

    def right_ref(self, meta, ch):
        return (str(ch[0]), ch[1])

    def grant_stmt(self, meta, ch):
        (right, key), party, until = ch
        return ast.Grant(right=right, key=key, party=party, until=until, span=self.sp(meta))

    def revoke_stmt(self, meta, ch):
        (right, key), party = ch
        return ast.Revoke(right=right, key=key, party=party, span=self.sp(meta))

    def admit_stmt(self, meta, ch):
        return ast.Admit(party=ch[0], role=str(ch[1]), assigns=tuple(ch[2] or ()),
                         span=self.sp(meta))

    def expel_stmt(self, meta, ch):
        return ast.Expel(party=ch[0], role=str(ch[1]), span=self.sp(meta))

    def create_stmt(self, meta, ch):
        parts = tuple(ch[1])
        key = parts[0] if len(parts) == 1 else ast.KeyTuple(
            parts=parts, span=Span(file=self.file, line=parts[0].span.line,
                                   col=parts[0].span.col, end_line=parts[-1].span.end_line,
                                   end_col=parts[-1].span.end_col))
        return ast.Create(record=str(ch[0]), key=key, assigns=tuple(ch[2] or ()),
                          span=self.sp(meta))

    def update_stmt(self, meta, ch):
        return ast.Update(target=ch[0], assigns=tuple(ch[1] or ()), span=self.sp(meta))

    def delete_stmt(self, meta, ch):
        return ast.Delete(target=ch[0], span=self.sp(meta))

    def push_stmt(self, meta, ch):
        return ast.Push(value=ch[0], target=ch[1], span=self.sp(meta))

    def remove_stmt(self, meta, ch):
        if ch[1] is None:
            return ast.Remove(value=None, target=ch[0], span=self.sp(meta))
        return ast.Remove(value=ch[0], target=ch[1], span=self.sp(meta))

    def decay_stmt(self, meta, ch):
        return ast.Decay(asset=str(ch[0]), span=self.sp(meta))

    def flag_stmt(self, meta, ch):
        return ast.Flag(party=ch[0], message=unescape(ch[1]), span=self.sp(meta))

    def dissolve_stmt(self, meta, ch):
        return ast.Dissolve(span=self.sp(meta))

    def assigns(self, meta, ch):
        return tuple(ch)

    def assign(self, meta, ch):
        return ast.Assign(name=str(ch[0]), value=ch[1], span=self.sp(meta))

    # -- properties and tests --
    def property_decl(self, meta, ch):
        name, body = ch
        return ast.PropertyDecl(name=str(name), span=self.sp(meta), **body)

    def qualified_name(self, meta, ch):
        return ".".join(str(c) for c in ch)

    def qualified_call(self, meta, ch):
        obj, name, args = ch
        parts = [str(name)]
        while isinstance(obj, ast.FieldAccess):
            parts.append(obj.name)
            obj = obj.obj
        if not isinstance(obj, ast.Name):
            raise ParseFailure(Diagnostic(
                "E0101", "only names from an import can be called with a dot, like "
                         "`lic.Skill(id)`", self.sp(meta),
                hint="values have fields, not methods"))
        parts.append(obj.id)
        args = tuple(args or ())
        return self._expr(ast.Call(func=".".join(reversed(parts)), args=args,
                                   span=self.sp(meta)), *args)

    def list_lit(self, meta, ch):
        items = tuple(ch[0] or ())
        return self._expr(ast.ListLit(items=items, span=self.sp(meta)), *items)

    def split_property(self, meta, ch):
        return dict(kind="split", handler=str(ch[0]), what=str(ch[1]), bound=ch[2])

    def split_floor_property(self, meta, ch):
        return dict(kind="split_floor", handler=str(ch[0]), bound=ch[1])

    def split_cap_property(self, meta, ch):
        return dict(kind="split_cap", handler=str(ch[0]), bound=ch[1])

    def budget_property(self, meta, ch):
        return dict(kind="budget", handler=str(ch[0]), what=str(ch[1]), bound=ch[2])

    def invariant_property(self, meta, ch):
        return dict(kind="invariant", bound=ch[0])

    def anyone_property(self, meta, ch):
        return dict(kind="anyone", handler=str(ch[0]))

    def record_invariant_property(self, meta, ch):
        return dict(kind="record_invariant", var=str(ch[0]), record=str(ch[1]), bound=ch[2])

    def test_decl(self, meta, ch):
        name, *steps = ch
        end = Span(file=self.file, line=meta.end_line, col=meta.end_column - 1,
                   end_line=meta.end_line, end_col=meta.end_column)
        return ast.TestDecl(name=unescape(name), steps=tuple(steps), span=self.sp(meta),
                            end_span=end)

    def given_role(self, meta, ch):
        return ast.TestStep(kind="given_role", expr=ch[0], name=str(ch[1]),
                            assigns=tuple(ch[2] or ()), span=self.sp(meta))

    def given_funds(self, meta, ch):
        return ast.TestStep(kind="given_funds", expr=ch[0], target=ch[1], span=self.sp(meta))

    def given_param(self, meta, ch):
        return ast.TestStep(kind="given_param", name=str(ch[0]), expr=ch[1], span=self.sp(meta))

    def when_event(self, meta, ch):
        name, args, by, at = ch
        return ast.TestStep(kind="when", name=str(name), assigns=tuple(args or ()), expr=by,
                            target=at, span=self.sp(meta))

    def call_args(self, meta, ch):
        return tuple(ch)

    def call_arg(self, meta, ch):
        return ast.Assign(name=str(ch[0]), value=ch[1], span=self.sp(meta))

    def expect_ok(self, meta, ch):
        return ast.TestStep(kind="expect_ok", span=self.sp(meta))

    def expect_rejected(self, meta, ch):
        return ast.TestStep(kind="expect_rejected", text=unescape(ch[0]) if ch[0] else None,
                            span=self.sp(meta))

    def expect_true(self, meta, ch):
        return ast.TestStep(kind="expect_true", expr=ch[0], span=self.sp(meta))

    # -- expressions --
    def _fold_kw(self, ch, op):
        left = ch[0]
        for right in ch[1:]:
            span = Span(file=self.file, line=left.span.line, col=left.span.col,
                        end_line=right.span.end_line, end_col=right.span.end_col)
            left = self._expr(ast.BinOp(op=op, left=left, right=right, span=span), left, right)
        return left

    def cond_expr(self, meta, ch):
        c, a, b = ch
        return self._expr(ast.CondExpr(cond=c, then=a, orelse=b, span=self.sp(meta)), c, a, b)

    def or_expr(self, meta, ch):
        return self._fold_kw(ch, "or")

    def and_expr(self, meta, ch):
        return self._fold_kw(ch, "and")

    def _fold_ops(self, ch):
        left = ch[0]
        for i in range(1, len(ch), 2):
            op, right = str(ch[i]), ch[i + 1]
            span = Span(file=self.file, line=left.span.line, col=left.span.col,
                        end_line=right.span.end_line, end_col=right.span.end_col)
            left = self._expr(ast.BinOp(op=op, left=left, right=right, span=span), left, right)
        return left

    def comparison(self, meta, ch):
        return self._fold_ops(ch)

    def sum_expr(self, meta, ch):
        return self._fold_ops(ch)

    def product(self, meta, ch):
        return self._fold_ops(ch)

    def not_op(self, meta, ch):
        return self._expr(ast.Unary(op="not", operand=ch[0], span=self.sp(meta)), ch[0])

    def neg(self, meta, ch):
        return self._expr(ast.Unary(op="-", operand=ch[0], span=self.sp(meta)), ch[0])

    def exists_op(self, meta, ch):
        return self._expr(ast.Unary(op="exists", operand=ch[0], span=self.sp(meta)), ch[0])

    def is_test(self, meta, ch):
        return self._expr(ast.IsTest(operand=ch[0], what=str(ch[1]), span=self.sp(meta)), ch[0])

    def has_right(self, meta, ch):
        return self._expr(ast.HasRight(party=ch[0], right=str(ch[1]), key=ch[2],
                                       span=self.sp(meta)), ch[0], ch[2])

    def field_access(self, meta, ch):
        return self._expr(ast.FieldAccess(obj=ch[0], name=str(ch[1]), span=self.sp(meta)), ch[0])

    def index(self, meta, ch):
        return self._expr(ast.Index(obj=ch[0], index=ch[1], span=self.sp(meta)), ch[0], ch[1])

    def call(self, meta, ch):
        args = tuple(ch[1] or ())
        return self._expr(ast.Call(func=str(ch[0]), args=args, span=self.sp(meta)), *args)

    def aggregate(self, meta, ch):
        func, body, *rest = ch
        i = next(i for i, c in enumerate(rest) if isinstance(c, Token))
        then, (var, source, where) = tuple(rest[:i]), rest[i:]
        return self._expr(ast.Aggregate(func=str(func), body=body, var=str(var), source=source,
                                        where=where, span=self.sp(meta), then=then),
                          body, source, where, *then)

    def then_by(self, meta, ch):
        return ch[0]

    def args(self, meta, ch):
        return tuple(ch)

    def number(self, meta, ch):
        return ast.Number(text=str(ch[0]), span=self.sp(meta))

    def quantity(self, meta, ch):
        return ast.Quantity(text=str(ch[0]), unit=str(ch[1]), span=self.sp(meta))

    def percent(self, meta, ch):
        return ast.Percent(text=str(ch[0]), span=self.sp(meta))

    def string(self, meta, ch):
        return ast.String(value=unescape(ch[0]), span=self.sp(meta))

    def party(self, meta, ch):
        return ast.PartyLit(name=str(ch[0])[1:], span=self.sp(meta))

    def name(self, meta, ch):
        return ast.Name(id=str(ch[0]), span=self.sp(meta))


_CLOSER = {"{": "}", "(": ")", "[": "]"}


_BRACKETS = re.compile(r'"(?:[^"\\\n]|\\.)*"?|#[^\n]*|[{}()\[\]]')


def unclosed_opener(text: str) -> Optional[tuple[int, int, str]]:
    """(line, col, char) of the innermost bracket still open at the end of ``text``.

    Strings and comments are skipped as the lexer skips them; a closer that does
    not match is ignored (the parser reports it where it is)."""
    stack: list[int] = []
    for m in _BRACKETS.finditer(text):
        c = m.group()
        if c in _CLOSER:
            stack.append(m.start())
        elif len(c) == 1 and c in ")]}" and stack and _CLOSER[text[stack[-1]]] == c:
            stack.pop()
    if not stack:
        return None
    pos = stack[-1]
    line = text.count("\n", 0, pos) + 1
    return line, pos - (text.rfind("\n", 0, pos) + 1) + 1, text[pos]


def _keyword_hint(word: str, expected: set[str]) -> Optional[str]:
    """`did you mean `require`?` for a misspelt keyword where keywords are expected."""
    keywords = [t.lower() for t in expected if t.isalpha() and t.isupper()
                and t not in _TERMINAL_NAMES]
    best = closest(word, keywords, cutoff=0.75)
    return f"did you mean `{best}`?" if best else None


def _syntax_diagnostic(err: UnexpectedInput, file: str, text: str) -> Diagnostic:
    line = getattr(err, "line", 0) or 0
    col = getattr(err, "column", 0) or 0
    if isinstance(err, UnexpectedCharacters):
        ch = text[err.pos_in_stream] if 0 <= err.pos_in_stream < len(text) else "?"
        hint = None
        if ch == "'":
            hint = "strings use double quotes"
        elif ch == '"':
            hint = "a string must end with `\"` on the same line"
        elif ch in "&|!":
            hint = "write `and`, `or` and `not`"
        elif ch == ";":
            hint = "statements need no terminator: start the next one on a new line"
        return Diagnostic("E0102", f"unexpected character {ch!r}",
                          Span(file=file, line=line, col=col, end_line=line, end_col=col + 1),
                          hint=hint)
    if isinstance(err, UnexpectedEOF) or (
            isinstance(err, UnexpectedToken) and err.token.type == "$END"):
        lines = source_lines(text) or [""]
        last = len(lines)
        expected = getattr(err, "expected", None) or set()
        opener = unclosed_opener(text)
        if opener is not None:
            o_line, o_col, o_char = opener
            return Diagnostic(
                "E0103", f"unexpected end of file: this `{o_char}` is never closed",
                Span(file=file, line=o_line, col=o_col, end_line=o_line, end_col=o_col + 1),
                notes=(f"the file ends at line {last}",),
                hint=f"add the matching `{_CLOSER[o_char]}`")
        return Diagnostic("E0103", "unexpected end of file",
                          Span(file=file, line=last, col=len(lines[-1]) + 1, end_line=last,
                               end_col=len(lines[-1]) + 2),
                          hint=f"expected {_describe_expected(set(expected))}" if expected else
                          "a block or declaration is not finished: is a '}' missing?")
    assert isinstance(err, UnexpectedToken)
    tok = err.token
    expected = set(err.expected or ())
    what = f"'{tok}'" if tok.type != "STRING" else "a string"
    span = _tok_span(file, tok)
    hint = f"expected {_describe_expected(expected)}"
    notes: tuple[str, ...] = ()
    if tok.type == "NAME" and "EQUAL" in expected and "COLON" not in expected \
            and "QMARK" not in expected:
        hint += "; a field name must be followed by '='"
    if tok.type == "STRING" and "ELSE" in expected:
        hint = 'the message of a `require` follows `else`: require COND else "message"'
    if "RBRACE" in expected and tok.type in ("ON", "EVERY", "WHEN", "PROPERTY", "TEST", "ASSET",
                                             "RECORD", "PARAM", "ROLE"):
        hint = f"is a '}}' missing before this `{tok}`? ({hint})"
    if "COMMA" in expected and "RBRACE" in expected and tok.type == "NAME":
        notes = ("items inside braces are separated by commas",)
    elif "COMMA" in expected and tok.type == "NAME":
        notes = ("options and arguments are separated by commas",)
    if tok.type == "NAME" and {"REQUIRE", "LET", "TRANSFER"} <= expected:
        hint = ("a statement starts with a keyword (require, let, set, if, for, transfer, "
                "...); to change a field write `set x.f = v`")
    if tok.type == "NAME":
        hint = _keyword_hint(str(tok), expected) or hint
    pos = getattr(tok, "start_pos", None)
    opener = unclosed_opener(text[:pos]) if isinstance(pos, int) else None
    closer_terms = {"}": "RBRACE", ")": "RPAR", "]": "RSQB"}
    # `(` and `[` close on the same line or soon after; an open `{` is normal mid-block
    if opener is not None and opener[2] in "([" and closer_terms[_CLOSER[opener[2]]] in expected \
            and tok.type not in ("RBRACE", "RPAR", "RSQB"):
        o_line, o_col, o_char = opener
        notes += (f"the `{o_char}` at line {o_line}, column {o_col} is still open",)
        hint = f"add the missing `{_CLOSER[o_char]}` before `{tok}`"
    if str(tok) == "return" and "RETURN" not in expected:
        hint = ("only a `fn` returns a value; a handler or a `proc` ends at its last "
                "statement (a value it computes is stored with `set` or `update`)")
    if tok.type == "EQUAL" and ("COMPARE" in expected or "EQUAL" not in expected):
        hint = "use `==` to compare and `set x.f = v` / `let x = v` to assign"
    return Diagnostic("E0101", f"unexpected {what}", span, notes=notes, hint=hint)


def parse_source(text: str, file: str = "<input>") -> ast.Module:
    """Parse one policy.  Raises :class:`ParseFailure` with a located diagnostic."""
    if not text.strip():
        raise ParseFailure(Diagnostic("E0004", "the file is empty",
                                      Span(file=file, line=1, col=1, end_line=1, end_col=1),
                                      hint='a policy starts with `policy NAME version "1.0"`'))
    if "\x00" in text:
        pos = text.index("\x00")
        line = text.count("\n", 0, pos) + 1
        col = pos - (text.rfind("\n", 0, pos) + 1) + 1
        raise ParseFailure(Diagnostic("E0102", "unexpected NUL character: is this a binary file?",
                                      Span(file=file, line=line, col=col, end_line=line,
                                           end_col=col + 1)))
    comments: list[Token] = []
    _local.comments = comments
    try:
        module = _parse_with(text, file)
    except UnexpectedInput as err:
        raise ParseFailure(_syntax_diagnostic(err, file, text)) from None
    except VisitError as err:
        if isinstance(err.orig_exc, ParseFailure):
            raise err.orig_exc from None
        raise
    except RecursionError:
        raise ParseFailure(Diagnostic("E0104", "the input is nested too deeply",
                                      Span(file=file, line=1, col=1, end_line=1, end_col=1))) \
            from None
    finally:
        _local.comments = None
    lines = source_lines(text)
    kept = []
    for tok in comments:
        prefix = lines[tok.line - 1][: tok.column - 1] if tok.line - 1 < len(lines) else ""
        kept.append(ast.Comment(text=str(tok).rstrip(), line=tok.line, col=tok.column,
                                own_line=not prefix.strip()))
    return ast.Module(name=module.name, version=module.version, items=module.items,
                      comments=tuple(kept), span=module.span, file=file)


def _parse_with(text: str, file: str) -> ast.Module:
    _local.file = file
    _local.depth = {}
    try:
        return _Build().transform(_parser().parse(text))
    finally:
        _local.depth = {}
