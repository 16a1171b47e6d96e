"""The abstract syntax tree: what the author wrote, with a source span on every node.

Produced by :mod:`charter.compiler.parse`, read by ``resolve``, ``typecheck``,
``lower`` and the formatter (``fmt``).  Nodes are frozen; names are still
unresolved strings and literals are still their source text.
"""
from __future__ import annotations

from typing import Optional, Union

import attrs

from .ir import Span

node = attrs.frozen(kw_only=True)

# ---- expressions ---------------------------------------------------------


@node
class Number:
    text: str
    span: Span


@node
class Quantity:
    """``5 Credit``, ``30 days``, ``25 bps``: a number with a unit name."""

    text: str
    unit: str
    span: Span


@node
class Percent:
    text: str
    span: Span


@node
class String:
    value: str
    span: Span


@node
class PartyLit:
    name: str  # without the '@'
    span: Span


@node
class ListLit:
    items: tuple["Expr", ...]
    span: Span


@node
class Name:
    id: str
    span: Span


@node
class FieldAccess:
    obj: "Expr"
    name: str
    span: Span


@node
class Call:
    func: str
    args: tuple["Expr", ...]
    span: Span


@node
class Aggregate:
    func: str  # sum | count | min | max | all | any
    body: "Expr"
    var: str
    source: "Expr"
    where: Optional["Expr"]
    span: Span


@node
class Unary:
    op: str  # "-" | "not" | "exists"
    operand: "Expr"
    span: Span


@node
class BinOp:
    op: str  # + - * / == != < <= > >= and or
    left: "Expr"
    right: "Expr"
    span: Span


@node
class IsTest:
    """``x is some``, ``x is none``, ``p is Agent``."""

    operand: "Expr"
    what: str
    span: Span


@node
class HasRight:
    party: "Expr"
    right: str
    key: Optional["Expr"]
    span: Span


Expr = Union[Number, Quantity, Percent, String, PartyLit, ListLit, Name, FieldAccess, Call,
             Aggregate,
             Unary, BinOp, IsTest, HasRight]

# ---- types ---------------------------------------------------------------


@node
class TypeRef:
    """``int``, ``Credit``, ``Agent?``, ``int within 1..5``, ``list of party``."""

    name: Optional[str]  # None for a list type
    optional: bool = False
    lo: Optional[Expr] = None
    hi: Optional[Expr] = None
    item: Optional["TypeRef"] = None
    span: Span


# ---- statements ----------------------------------------------------------


@node
class Assign:
    name: str
    value: Expr
    span: Span


@node
class Require:
    cond: Expr
    message: Optional[str]
    span: Span


@node
class Reject:
    message: str
    span: Span


@node
class Let:
    name: str
    value: Expr
    span: Span


@node
class SetField:
    target: FieldAccess
    value: Expr
    span: Span


@node
class If:
    cond: Expr
    then: tuple["Stmt", ...]
    orelse: tuple["Stmt", ...]  # a lone nested If for `else if`
    span: Span
    end_span: Optional[Span] = None  # the closing brace, for comment placement


@node
class ForEach:
    var: str
    source: Expr
    where: Optional[Expr]
    body: tuple["Stmt", ...]
    span: Span


@node
class AmountFrom:
    amount: Expr
    source: Expr
    span: Span


@node
class RestOf:
    source: Expr
    span: Span


@node
class Move:
    """transfer / escrow / release / refund / mint / burn / lock / unlock / slash.

    ``amount`` is an expression or, for refund and split, an AmountFrom/RestOf.
    ``src``/``dst`` are as written (None where the verb has none).
    """

    verb: str
    amount: Union[Expr, AmountFrom, RestOf]
    src: Optional[Expr]
    dst: Optional[Expr]
    span: Span


@node
class Split:
    source: Union[AmountFrom, RestOf]
    var: str
    among: Expr
    where: Optional[Expr]
    to: Optional[Expr]
    weight: Expr
    rounding: Optional[str]
    minimum: Optional[Expr]
    cap: Optional[Expr]
    span: Span


@node
class Grant:
    right: str
    key: Optional[Expr]
    party: Expr
    until: Optional[Expr]
    span: Span


@node
class Revoke:
    right: str
    key: Optional[Expr]
    party: Expr
    span: Span


@node
class Admit:
    party: Expr
    role: str
    assigns: tuple[Assign, ...]
    span: Span


@node
class Expel:
    party: Expr
    role: str
    span: Span


@node
class Create:
    record: str
    key: Expr
    assigns: tuple[Assign, ...]
    span: Span


@node
class Update:
    target: Expr
    assigns: tuple[Assign, ...]
    span: Span


@node
class Delete:
    target: Expr
    span: Span


@node
class Decay:
    asset: str
    span: Span


@node
class Flag:
    party: Expr
    message: str
    span: Span


@node
class Dissolve:
    span: Span


Stmt = Union[Require, Reject, Let, SetField, If, ForEach, Move, Split, Grant, Revoke, Admit,
             Expel, Create, Update, Delete, Decay, Flag, Dissolve]

# ---- declarations --------------------------------------------------------


@node
class Import:
    target: str
    alias: Optional[str]
    settings: tuple[Assign, ...]
    span: Span


@node
class AssetOpt:
    name: str
    value: Optional[Expr]
    span: Span


@node
class AssetDecl:
    name: str
    kind: str
    options: tuple[AssetOpt, ...]
    span: Span


@node
class FieldDecl:
    name: str
    type: TypeRef
    default: Optional[Expr]
    span: Span


@node
class RoleDecl:
    name: str
    fields: tuple[FieldDecl, ...]
    span: Span


@node
class ParamDecl:
    name: str
    type: TypeRef
    default: Expr
    lo: Optional[Expr]
    hi: Optional[Expr]
    span: Span


@node
class PoolDecl:
    kind: str  # pool | treasury
    name: str
    asset: str
    span: Span


@node
class RecordDecl:
    name: str
    holds: Optional[str]
    fields: tuple[FieldDecl, ...]
    span: Span


@node
class ByRole:
    binder: str
    type: TypeRef
    span: Span


@node
class ByExpr:
    expr: Expr
    span: Span


@node
class Handler:
    name: str
    params: tuple[FieldDecl, ...]
    by: Union[ByRole, ByExpr]
    body: tuple[Stmt, ...]
    span: Span
    end_span: Optional[Span] = None


@node
class EveryHandler:
    period: Expr
    name: str
    body: tuple[Stmt, ...]
    span: Span
    end_span: Optional[Span] = None


@node
class DeadlineHandler:
    record: str
    field: str
    binder: str
    body: tuple[Stmt, ...]
    span: Span
    end_span: Optional[Span] = None


@node
class PropertyDecl:
    """kind: split | split_floor | split_cap | budget | invariant | record_invariant."""

    name: str
    kind: str
    handler: Optional[str] = None  # split*, budget
    what: Optional[str] = None  # split: proportional|monotone|symmetric; budget: pool
    bound: Optional[Expr] = None
    var: Optional[str] = None  # record_invariant
    record: Optional[str] = None
    span: Span


@node
class TestStep:
    """kind: given_role | given_funds | given_param | when | expect_ok |
    expect_rejected | expect_true."""

    kind: str
    span: Span
    expr: Optional[Expr] = None  # party, amount, value, submitter, condition
    target: Optional[Expr] = None  # account for given_funds, time for when
    name: Optional[str] = None  # role, param, event
    text: Optional[str] = None  # expected rejection substring
    assigns: tuple[Assign, ...] = ()


@node
class TestDecl:
    name: str
    steps: tuple[TestStep, ...]
    span: Span
    end_span: Optional[Span] = None


Decl = Union[Import, AssetDecl, RoleDecl, ParamDecl, PoolDecl, RecordDecl, Handler, EveryHandler,
             DeadlineHandler, PropertyDecl, TestDecl]


@node
class Comment:
    text: str  # including the leading '#'
    line: int
    col: int
    own_line: bool  # nothing but whitespace before it on its line


@node
class Module:
    name: str
    version: str
    items: tuple[Decl, ...]
    comments: tuple[Comment, ...]
    span: Span
    file: str
