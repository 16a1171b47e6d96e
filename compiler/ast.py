"""The abstract syntax tree: what the author wrote, with a source span on every node.

Produced by :mod:`charter.compiler.parse`, read by ``resolve``, ``typecheck``,
``lower`` and the formatter (``fmt``).  Nodes are frozen; names are still
unresolved strings and literals are still their source text.
"""
from __future__ import annotations

from typing import Optional, Union

import attrs

from .ir import Span



# ---- expressions ---------------------------------------------------------


@attrs.frozen(kw_only=True)
class Number:
    text: str
    span: Span


@attrs.frozen(kw_only=True)
class Quantity:
    """``5 Credit``, ``30 days``, ``25 bps``: a number with a unit name."""

    text: str
    unit: str
    span: Span


@attrs.frozen(kw_only=True)
class Percent:
    text: str
    span: Span


@attrs.frozen(kw_only=True)
class String:
    value: str
    span: Span


@attrs.frozen(kw_only=True)
class PartyLit:
    name: str  # without the '@'
    span: Span


@attrs.frozen(kw_only=True)
class ListLit:
    items: tuple["Expr", ...]
    span: Span


@attrs.frozen(kw_only=True)
class Name:
    id: str
    span: Span


@attrs.frozen(kw_only=True)
class FieldAccess:
    obj: "Expr"
    name: str
    span: Span


@attrs.frozen(kw_only=True)
class Index:
    """``obj[index]``: a member of an asset family (``Token[sym]``, ``5 Token["USDC"]``)."""

    obj: "Expr"
    index: "Expr"
    span: Span


@attrs.frozen(kw_only=True)
class Call:
    func: str
    args: tuple["Expr", ...]
    span: Span


@attrs.frozen(kw_only=True)
class Aggregate:
    func: str  # sum | count | min | max | all | any | max_by | min_by
    body: "Expr"
    var: str
    source: "Expr"
    where: Optional["Expr"]
    span: Span
    then: tuple["Expr", ...] = ()  # max_by/min_by: keys compared when the earlier ones tie


@attrs.frozen(kw_only=True)
class KeyTuple:
    """The parts of a composite record key, ``create Vote(claim, voter)``."""

    parts: tuple["Expr", ...]
    span: Span


@attrs.frozen(kw_only=True)
class Unary:
    op: str  # "-" | "not" | "exists"
    operand: "Expr"
    span: Span


@attrs.frozen(kw_only=True)
class BinOp:
    op: str  # + - * / == != < <= > >= and or
    left: "Expr"
    right: "Expr"
    span: Span


@attrs.frozen(kw_only=True)
class CondExpr:
    """``if c then a else b``: the value of one branch."""

    cond: "Expr"
    then: "Expr"
    orelse: "Expr"
    span: Span


@attrs.frozen(kw_only=True)
class IsTest:
    """``x is some``, ``x is none``, ``p is Agent``."""

    operand: "Expr"
    what: str
    span: Span


@attrs.frozen(kw_only=True)
class HasRight:
    party: "Expr"
    right: str
    key: Optional["Expr"]
    span: Span


Expr = Union[Number, Quantity, Percent, String, PartyLit, ListLit, Name, FieldAccess, Index, Call,
             Aggregate, CondExpr,
             Unary, BinOp, IsTest, HasRight]

# ---- types ---------------------------------------------------------------


@attrs.frozen(kw_only=True)
class TypeRef:
    """``int``, ``Credit``, ``Agent?``, ``int within 1..5``, ``list of party``."""

    name: Optional[str]  # None for a list type
    optional: bool = False
    lo: Optional[Expr] = None
    hi: Optional[Expr] = None
    item: Optional["TypeRef"] = None
    span: Span
    # `Token[sym]`: the member of an asset family (a constant text or a name)
    member: Optional[Expr] = None
    bound: Optional[int] = None  # `list of T max N`: at most N items


# ---- statements ----------------------------------------------------------


@attrs.frozen(kw_only=True)
class Assign:
    name: str
    value: Expr
    span: Span


@attrs.frozen(kw_only=True)
class Require:
    cond: Expr
    message: Optional[str]
    span: Span


@attrs.frozen(kw_only=True)
class Reject:
    message: str
    span: Span


@attrs.frozen(kw_only=True)
class Let:
    name: str
    value: Expr
    span: Span


@attrs.frozen(kw_only=True)
class Var:
    """``var x = e``: a local that later statements may reassign with ``set x = e``."""

    name: str
    value: Expr
    span: Span


@attrs.frozen(kw_only=True)
class SetLocal:
    """``set x = e`` where ``x`` is a ``var``."""

    name: str
    value: Expr
    span: Span
    name_span: Optional[Span] = None


@attrs.frozen(kw_only=True)
class Return:
    """``return e``: the value of a function (its last line)."""

    value: Expr
    span: Span


@attrs.frozen(kw_only=True)
class SetField:
    target: FieldAccess
    value: Expr
    span: Span


@attrs.frozen(kw_only=True)
class If:
    cond: Expr
    then: tuple["Stmt", ...]
    orelse: tuple["Stmt", ...]  # a lone nested If for `else if`
    span: Span
    end_span: Optional[Span] = None  # the closing brace, for comment placement


@attrs.frozen(kw_only=True)
class ForEach:
    var: str
    source: Expr
    where: Optional[Expr]
    body: tuple["Stmt", ...]
    span: Span
    # `ordered by k1 [descending] then by k2 ...`: (key, descending) in comparison order
    order: tuple[tuple[Expr, bool], ...] = ()


@attrs.frozen(kw_only=True)
class ForRange:
    """``for i in a..b { ... }``: ``i`` takes each int from ``a`` to ``b`` (inclusive)."""

    var: str
    lo: Expr
    hi: Expr
    body: tuple["Stmt", ...]
    span: Span


@attrs.frozen(kw_only=True)
class AmountFrom:
    amount: Expr
    source: Expr
    span: Span


@attrs.frozen(kw_only=True)
class RestOf:
    source: Expr
    span: Span


@attrs.frozen(kw_only=True)
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


@attrs.frozen(kw_only=True)
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
    # "first" (`at least m`: paid first, the rest split) or "quota" (`with minimum m`: a
    # statutory floor under the result); order: `in <listed|key|weight> order` as written
    minimum_rule: str = "first"
    order: Optional[str] = None


@attrs.frozen(kw_only=True)
class SplitBetween:
    """``split SOURCE between { ACC: WEIGHT, ... } options``: a fixed table of recipient
    accounts (pools, escrows, parties), paid in the order written."""

    source: Union[AmountFrom, RestOf]
    shares: tuple[tuple[Expr, Expr], ...]
    rounding: Optional[str]
    minimum: Optional[Expr]
    cap: Optional[Expr]
    span: Span
    minimum_rule: str = "first"
    order: Optional[str] = None


@attrs.frozen(kw_only=True)
class Grant:
    right: str
    key: Optional[Expr]
    party: Expr
    until: Optional[Expr]
    span: Span


@attrs.frozen(kw_only=True)
class Revoke:
    right: str
    key: Optional[Expr]
    party: Expr
    span: Span


@attrs.frozen(kw_only=True)
class Admit:
    party: Expr
    role: str
    assigns: tuple[Assign, ...]
    span: Span


@attrs.frozen(kw_only=True)
class Expel:
    party: Expr
    role: str
    span: Span


@attrs.frozen(kw_only=True)
class Create:
    record: str
    key: Expr
    assigns: tuple[Assign, ...]
    span: Span


@attrs.frozen(kw_only=True)
class Update:
    target: Expr
    assigns: tuple[Assign, ...]
    span: Span


@attrs.frozen(kw_only=True)
class Delete:
    target: Expr
    span: Span


@attrs.frozen(kw_only=True)
class Push:
    """``push value to R(k).field``: append to a bounded list field."""

    value: Expr
    target: Expr
    span: Span


@attrs.frozen(kw_only=True)
class Remove:
    """``remove value from R(k).field`` (the first equal item) or ``remove R(k).field[i]``
    (``value`` None: the target is the indexed item)."""

    value: Optional[Expr]
    target: Expr
    span: Span


@attrs.frozen(kw_only=True)
class Decay:
    asset: str
    span: Span


@attrs.frozen(kw_only=True)
class Flag:
    party: Expr
    message: str
    span: Span


@attrs.frozen(kw_only=True)
class Dissolve:
    span: Span


@attrs.frozen(kw_only=True)
class Do:
    """``do name(args)``: the body of procedure ``name``, expanded in place."""

    proc: str
    args: tuple[Expr, ...]
    span: Span


Stmt = Union[Require, Reject, Let, Var, SetLocal, SetField, If, ForEach, ForRange, Move, Split, SplitBetween, Grant, Revoke, Admit,
             Expel, Create, Update, Delete, Decay, Flag, Dissolve, Push, Remove, Do]

# ---- declarations --------------------------------------------------------


@attrs.frozen(kw_only=True)
class Import:
    target: str
    alias: Optional[str]
    settings: tuple[Assign, ...]
    span: Span


@attrs.frozen(kw_only=True)
class AssetOpt:
    name: str
    value: Optional[Expr]
    span: Span


@attrs.frozen(kw_only=True)
class AssetDecl:
    name: str
    kind: str
    options: tuple[AssetOpt, ...]
    span: Span
    # `asset Token[symbol]: ...`: a family of assets, one per text key; the key's name
    key: Optional[str] = None


@attrs.frozen(kw_only=True)
class FieldDecl:
    name: str
    type: TypeRef
    default: Optional[Expr]
    span: Span


@attrs.frozen(kw_only=True)
class RoleDecl:
    name: str
    fields: tuple[FieldDecl, ...]
    span: Span


@attrs.frozen(kw_only=True)
class ParamDecl:
    name: str
    type: TypeRef
    default: Expr
    lo: Optional[Expr]
    hi: Optional[Expr]
    span: Span


@attrs.frozen(kw_only=True)
class PoolDecl:
    kind: str  # pool | treasury
    name: str
    asset: str
    span: Span


@attrs.frozen(kw_only=True)
class RecordDecl:
    name: str
    holds: Optional[str]
    fields: tuple[FieldDecl, ...]
    span: Span


@attrs.frozen(kw_only=True)
class ByRole:
    binder: str
    type: TypeRef
    span: Span


@attrs.frozen(kw_only=True)
class ByExpr:
    expr: Expr
    span: Span


@attrs.frozen(kw_only=True)
class Ensures:
    """``ensures cond [else "message"]``: a postcondition of a handler (``old(e)`` inside)."""

    cond: Expr
    message: Optional[str]
    span: Span


@attrs.frozen(kw_only=True)
class Handler:
    name: str
    params: tuple[FieldDecl, ...]
    by: Union[ByRole, ByExpr]
    body: tuple[Stmt, ...]
    span: Span
    end_span: Optional[Span] = None
    ensures: tuple["Ensures", ...] = ()


@attrs.frozen(kw_only=True)
class EveryHandler:
    period: Expr
    name: str
    body: tuple[Stmt, ...]
    span: Span
    end_span: Optional[Span] = None
    ensures: tuple["Ensures", ...] = ()


@attrs.frozen(kw_only=True)
class DeadlineHandler:
    record: str
    field: str
    binder: str
    body: tuple[Stmt, ...]
    span: Span
    end_span: Optional[Span] = None
    ensures: tuple["Ensures", ...] = ()


@attrs.frozen(kw_only=True)
class FnDecl:
    """``fn name(params) -> Type { let ... return e }``: a pure function.

    ``body`` is its ``let`` bindings followed by one :class:`Return`."""

    name: str
    params: tuple[FieldDecl, ...]
    returns: TypeRef
    body: tuple[Union[Let, Return], ...]
    span: Span
    end_span: Optional[Span] = None


@attrs.frozen(kw_only=True)
class ProcDecl:
    """``proc name(params) { statements }``: a procedure, expanded at each ``do``."""

    name: str
    params: tuple[FieldDecl, ...]
    body: tuple[Stmt, ...]
    span: Span
    end_span: Optional[Span] = None


@attrs.frozen(kw_only=True)
class PropertyDecl:
    """kind: split | split_floor | split_cap | budget | invariant | record_invariant | anyone
    (``anyone may call h``: a declared permissionless handler)."""

    name: str
    kind: str
    handler: Optional[str] = None  # split*, budget, anyone
    what: Optional[str] = None  # split: proportional|monotone|symmetric; budget: pool
    bound: Optional[Expr] = None
    var: Optional[str] = None  # record_invariant
    record: Optional[str] = None
    span: Span


@attrs.frozen(kw_only=True)
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


@attrs.frozen(kw_only=True)
class TestDecl:
    name: str
    steps: tuple[TestStep, ...]
    span: Span
    end_span: Optional[Span] = None


Decl = Union[Import, AssetDecl, RoleDecl, ParamDecl, PoolDecl, RecordDecl, Handler, EveryHandler,
             DeadlineHandler, PropertyDecl, TestDecl, FnDecl, ProcDecl]


@attrs.frozen(kw_only=True)
class Comment:
    text: str  # including the leading '#'
    line: int
    col: int
    own_line: bool  # nothing but whitespace before it on its line


@attrs.frozen(kw_only=True)
class Module:
    name: str
    version: str
    items: tuple[Decl, ...]
    comments: tuple[Comment, ...]
    span: Span
    file: str

    def doc(self, decl: Decl) -> str:
        """A declaration's doc comment: the own-line comments directly above it
        (no blank line between), joined into one paragraph; "" when it has none.

        ``param fee: percent = 2%`` with ``# Take rate on every payout.`` on the
        line above documents ``fee``; the stdlib pages' "meaning" column and the
        language server's hover read it from here.
        """
        by_line = {c.line: c for c in self.comments if c.own_line}
        got: list[str] = []
        line = decl.span.line - 1
        while line in by_line:
            got.append(by_line[line].text.lstrip("#").strip())
            line -= 1
        return " ".join(t for t in reversed(got) if t)
