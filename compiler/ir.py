"""The typed intermediate representation every later stage reads.

The IR is the contract between the compiler front end (``lower`` produces it)
and its consumers: the runtime (``charter.runtime``), the verifier
(``charter.compiler.verify``), the AIGrid exporter and any non-Python runtime
(through :func:`to_json`).  It is plain frozen ``attrs`` data: no stage
mutates it, and two compilations of equivalent sources give equal IR.

Meaning of values (the same at compile time, in the runtime and in Z3):

* ``TInt``, ``TAmount``, ``TTime``, ``TDuration`` are Python ``int``.  An
  amount is a count of the asset's *minor unit*; a time is seconds since the
  Unix epoch, taken only from events; a duration is seconds.
* ``TRatio`` is an exact ``fractions.Fraction`` (percentages, basis points,
  ``a / b`` of integers).  Fractional amounts never reach the IR: the type
  checker demands ``floor``/``ceil``/``round`` or a ``split``.
* ``TBool`` is ``bool``; ``TText`` and ``TParty`` are ``str`` (a party id);
  ``TRecord(R)`` is the ``str`` key of a record of ``R``; ``TOptional`` is the
  value or ``None``; ``TList`` is a ``tuple``.

Accounts (``Acc*`` nodes) name where value sits.  Every ledger posting moves
an amount of one asset from one account to another, so each transaction
balances per asset by construction; ``mint`` and ``burn`` post against the
asset's supply account (``AccSupply``), whose balance is minus the supply.
"""
from __future__ import annotations

import json
from fractions import Fraction
from typing import Any, Optional, Union

import attrs



# --------------------------------------------------------------------------
# Spans (for messages produced after lowering: runtime rejections, verifier
# counterexamples point back at the source line)


@attrs.frozen(kw_only=True)
class Span:
    file: str
    line: int
    col: int
    end_line: int
    end_col: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}"


NOSPAN = Span(file="<builtin>", line=0, col=0, end_line=0, end_col=0)

# --------------------------------------------------------------------------
# Types


@attrs.frozen(kw_only=True)
class TInt:
    lo: Optional[int] = None
    hi: Optional[int] = None


@attrs.frozen(kw_only=True)
class TBool:
    pass


@attrs.frozen(kw_only=True)
class TText:
    pass


@attrs.frozen(kw_only=True)
class TRatio:
    pass


@attrs.frozen(kw_only=True)
class TAmount:
    asset: str
    # the member of an asset family (``Token[sym]``): a text Const or an immutable Local,
    # so two amounts have one type only when they are amounts of the same member
    member: Optional["Expr"] = None


@attrs.frozen(kw_only=True)
class TFrac:
    """An exact fractional amount of ``asset`` (a ``Fraction`` of minor units).

    Only ever an intermediate value, e.g. ``t.price * fee`` under ``floor``;
    the type checker never lets one be stored, moved or compared.
    """

    asset: str
    member: Optional["Expr"] = None


@attrs.frozen(kw_only=True)
class TTime:
    pass


@attrs.frozen(kw_only=True)
class TDuration:
    pass


@attrs.frozen(kw_only=True)
class TParty:
    role: Optional[str] = None  # None: any party


@attrs.frozen(kw_only=True)
class TRecord:
    record: str


@attrs.frozen(kw_only=True)
class TOptional:
    inner: "Type"


@attrs.frozen(kw_only=True)
class TList:
    inner: "Type"
    # `list of T max N`: at most N items (a record field's list always has one)
    bound: Optional[int] = None


Type = Union[TInt, TBool, TText, TRatio, TAmount, TFrac, TTime, TDuration, TParty, TRecord,
             TOptional, TList]

# --------------------------------------------------------------------------
# Declarations


@attrs.frozen(kw_only=True)
class Asset:
    """An asset.  ``kind`` is ``token`` (transferable), ``score`` (held but
    never transferable between parties: only minted, burned, decayed) or
    ``right`` (not an amount: granted to and revoked from parties)."""

    name: str
    kind: str
    decimals: int = 0
    mintable: bool = False
    burnable: bool = False
    cap: Optional[int] = None  # max total supply, minor units
    decay: Optional[Fraction] = None  # share removed by each `decay` statement
    span: Span = NOSPAN
    # a credit line (minor units): a party's account may go down to -credit, not below;
    # one that ends an event below -soft_credit is flagged (journalled), nothing blocked
    credit: Optional[int] = None
    soft_credit: Optional[int] = None
    # `asset Token[symbol]: ...`: a family, one asset per text key (the key's name here).
    # Member ``k`` is the asset named ``Token[k]`` on the ledger (see :func:`member_asset`),
    # conserved on its own; every member shares this declaration's kind, decimals and limits.
    family: Optional[str] = None
    # a credit line set by a parameter (`credit barter_limit`): its value in this ledger
    # (parameters are fixed at genesis) instead of the constant ``credit``/``soft_credit``
    credit_param: Optional[str] = None
    soft_credit_param: Optional[str] = None
    # a line each account sets: `credit Member.limit` -> ("Member", "limit"): a party's line
    # is its own value of that role attribute (no line while it does not hold the role)
    credit_attr: Optional[tuple[str, str]] = None
    soft_credit_attr: Optional[tuple[str, str]] = None

    @property
    def transferable(self) -> bool:
        return self.kind == "token"

    def credit_line(self, params: Any) -> Any:
        """How far below zero a party's own account may go, with ``params`` the ledger's
        parameter values (0: no credit line); a ``(role, attribute)`` pair when each
        member's own attribute sets it."""
        if self.credit_attr is not None:
            return tuple(self.credit_attr)
        if self.credit_param is not None:
            return params[self.credit_param]
        return self.credit or 0

    def soft_line(self, params: Any) -> Any:
        """The soft credit limit (a balance below minus it is flagged), or None; a
        ``(role, attribute)`` pair when each member's attribute sets it."""
        if self.soft_credit_attr is not None:
            return tuple(self.soft_credit_attr)
        if self.soft_credit_param is not None:
            return params[self.soft_credit_param]
        return self.soft_credit

    @property
    def has_credit(self) -> bool:
        return bool(self.credit) or self.credit_param is not None or \
            self.credit_attr is not None


# A family member's key: what a token symbol or id looks like.  Kept this narrow so an
# asset name never needs escaping in account names (``party:<id>:Token[USDC]``), journals,
# exports or Beancount commodities.
MEMBER_KEY_MAX = 64
_MEMBER_KEY_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-")


def member_key_error(key: Any) -> Optional[str]:
    """Why ``key`` cannot name a family member (None when it can)."""
    if not isinstance(key, str):
        return "a member key is text"
    if not key:
        return "a member key cannot be empty"
    if len(key) > MEMBER_KEY_MAX:
        return f"a member key has at most {MEMBER_KEY_MAX} characters, not {len(key):,}"
    if not _MEMBER_KEY_CHARS.issuperset(key):
        bad = next(c for c in key if c not in _MEMBER_KEY_CHARS)
        return (f"a member key uses only letters, digits, '_', '.' and '-' "
                f"(found {ascii(bad)})")
    return None


def member_asset(family: str, key: str) -> str:
    """The ledger name of a family member: ``Token[USDC]``."""
    return f"{family}[{key}]"


def family_of(asset: str) -> str:
    """The declared asset an asset name belongs to: ``Token`` for ``Token[USDC]``."""
    i = asset.find("[")
    return asset if i < 0 else asset[:i]


class AssetMap(dict):
    """A dict keyed by declared asset name that also answers for family members
    (``Token[USDC]`` finds ``Token``'s entry): decimals, kinds and limits are shared."""

    def __missing__(self, key: Any) -> Any:
        if isinstance(key, str) and "[" in key and dict.__contains__(self, family_of(key)):
            return self[family_of(key)]
        raise KeyError(key)

    def get(self, key: Any, default: Any = None) -> Any:
        try:
            return self[key]
        except KeyError:
            return default

    def __contains__(self, key: Any) -> bool:
        return dict.__contains__(self, key) or (
            isinstance(key, str) and "[" in key and dict.__contains__(self, family_of(key)))


@attrs.frozen(kw_only=True)
class Field:
    """A record field, role attribute or handler argument.  ``lo``/``hi`` are
    the declared inclusive range (constants, in the field's own units)."""

    name: str
    type: Type
    default: Optional["Expr"] = None
    lo: Any = None
    hi: Any = None


@attrs.frozen(kw_only=True)
class Role:
    name: str
    attrs: tuple[Field, ...] = ()


@attrs.frozen(kw_only=True)
class Param:
    name: str
    type: Type
    default: Any  # int | Fraction | bool | str (a constant, already evaluated)
    lo: Any = None
    hi: Any = None
    span: Span = NOSPAN


@attrs.frozen(kw_only=True)
class Pool:
    name: str
    asset: str
    kind: str = "pool"  # pool | treasury


@attrs.frozen(kw_only=True)
class Record:
    name: str
    fields: tuple[Field, ...]
    holds: Optional[str] = None  # asset its escrow account holds


# --------------------------------------------------------------------------
# Expressions.  Every expression carries its type.


@attrs.frozen(kw_only=True)
class Const:
    value: Any
    type: Type


@attrs.frozen(kw_only=True)
class Local:
    """A handler argument, ``let`` binding, loop variable or the bound submitter."""

    name: str
    type: Type


@attrs.frozen(kw_only=True)
class ParamRef:
    name: str
    type: Type


@attrs.frozen(kw_only=True)
class Now:
    type: Type = TTime()


@attrs.frozen(kw_only=True)
class RecordRef:
    """``Task(key)``: the record's key, checked to exist when evaluated."""

    record: str
    key: "Expr"
    type: Type


@attrs.frozen(kw_only=True)
class RecordField:
    record: str
    key: "Expr"
    field: str
    type: Type


@attrs.frozen(kw_only=True)
class RoleAttr:
    role: str
    party: "Expr"
    attr: str
    type: Type


@attrs.frozen(kw_only=True)
class Exists:
    record: str
    key: "Expr"
    type: Type = TBool()


@attrs.frozen(kw_only=True)
class Unary:
    op: str  # "-" | "not"
    operand: "Expr"
    type: Type


@attrs.frozen(kw_only=True)
class Binary:
    """Arithmetic (``+ - * /``), comparison (``== != < <= > >=``) or logic
    (``and``/``or``, short-circuit).  ``/`` always yields an exact ratio."""

    op: str
    left: "Expr"
    right: "Expr"
    type: Type


@attrs.frozen(kw_only=True)
class Cond:
    """``if cond then then else orelse``: only the chosen branch is evaluated."""

    cond: "Expr"
    then: "Expr"
    orelse: "Expr"
    type: Type


@attrs.frozen(kw_only=True)
class Builtin:
    """A built-in function.

    ``floor ceil round`` (round = half up) take a ratio or a fractional
    amount and give an int or amount; ``min max abs``; ``isqrt`` (floor of
    the square root of a non-negative int/amount); ``pow(x, n)`` with a
    constant ``n >= 0``; ``balance(account)``; ``supply(asset)``;
    ``len(list)``; ``is_some(x)``, ``is_none(x)``; ``has_role(party, role)``;
    ``has_right(party, right, key?)``; ``some(x)`` unwraps an optional
    (rejecting the event when it is none); ``ratio(a, b)`` exact a/b of
    amounts of one asset.  (``minor(x)`` and ``from_minor(n, Asset)`` in the
    language only change a type: the checker gives the operand the new type.)
    """

    name: str
    args: tuple["Expr", ...]
    type: Type
    extra: tuple[str, ...] = ()  # names: asset for supply, role, right


@attrs.frozen(kw_only=True)
class Aggregate:
    """``sum``, ``count``, ``min``, ``max`` or ``all``/``any`` over a collection."""

    kind: str
    var: str
    source: "Collection"
    where: Optional["Expr"]
    body: "Expr"
    type: Type


@attrs.frozen(kw_only=True)
class Best:
    """``max_by(k1 then by k2 ... for var in source where c)`` (``kind`` "max") or
    ``min_by`` ("min"): the item of the collection whose keys are largest (smallest),
    compared in order (``k2`` only when ``k1`` ties, ...).  Items whose keys all tie
    are decided by collection order: the first one wins (lowest record key or party id,
    or earliest list position).  An empty collection rejects the event."""

    kind: str
    var: str
    source: "Collection"
    where: Optional["Expr"]
    keys: tuple["Expr", ...]
    type: Type


@attrs.frozen(kw_only=True)
class AccBalance:
    account: "Account"
    type: Type


@attrs.frozen(kw_only=True)
class ListLit:
    items: tuple["Expr", ...]
    type: Type


@attrs.frozen(kw_only=True)
class Old:
    """``old(expr)`` in an ``ensures`` clause: ``expr`` evaluated in the state before the
    handler ran (its arguments and submitter bound).  Appears only in :class:`Ensures`;
    the runtime never evaluates it (postconditions are proved, not checked per event)."""

    expr: "Expr"
    type: Type


Expr = Union[
    Const, Local, ParamRef, Now, RecordRef, RecordField, RoleAttr, Exists, Unary,
    Binary, Cond, Builtin, Aggregate, Best, AccBalance, ListLit, Old,
]

# --------------------------------------------------------------------------
# Collections (bounded iteration; order is always by key)


@attrs.frozen(kw_only=True)
class RoleMembers:
    """Members of a role (or every known party when ``role`` is None), by party id."""

    role: Optional[str]


@attrs.frozen(kw_only=True)
class RecordsOf:
    """Live records of a kind, by key; the loop variable is a ``TRecord``."""

    record: str


@attrs.frozen(kw_only=True)
class ListItems:
    """Items of a list value, in list order."""

    expr: Expr


Collection = Union[RoleMembers, RecordsOf, ListItems]

# --------------------------------------------------------------------------
# Accounts


@attrs.frozen(kw_only=True)
class AccParty:
    party: Expr
    asset: str
    member: Optional[Expr] = None  # the family member's key (text), for a family asset


@attrs.frozen(kw_only=True)
class AccStake:
    party: Expr
    asset: str
    member: Optional[Expr] = None  # the family member's key (text), for a family asset


@attrs.frozen(kw_only=True)
class AccPool:
    pool: str
    asset: str
    member: Optional[Expr] = None


@attrs.frozen(kw_only=True)
class AccEscrow:
    record: str
    key: Expr
    asset: str
    member: Optional[Expr] = None


@attrs.frozen(kw_only=True)
class AccSupply:
    asset: str
    member: Optional[Expr] = None


Account = Union[AccParty, AccStake, AccPool, AccEscrow, AccSupply]

# --------------------------------------------------------------------------
# Statements.  Each carries the span of its source for messages.


@attrs.frozen(kw_only=True)
class Require:
    cond: Expr
    message: str
    span: Span = NOSPAN


@attrs.frozen(kw_only=True)
class Reject:
    message: str
    span: Span = NOSPAN


@attrs.frozen(kw_only=True)
class Let:
    name: str
    value: Expr
    span: Span = NOSPAN


@attrs.frozen(kw_only=True)
class Var:
    """``var x = e``: binds a local that :class:`SetLocal` may later reassign.

    Read with :class:`Local` like any other local.  A reassignment inside an ``if`` or a
    loop body is visible after it (the value is the one last assigned on the path taken)."""

    name: str
    value: Expr
    span: Span = NOSPAN


@attrs.frozen(kw_only=True)
class SetLocal:
    """``set x = e``: reassigns the ``var`` local ``x``."""

    name: str
    value: Expr
    span: Span = NOSPAN


@attrs.frozen(kw_only=True)
class SetField:
    record: str
    key: Expr
    field: str
    value: Expr
    span: Span = NOSPAN


@attrs.frozen(kw_only=True)
class If:
    cond: Expr
    then: tuple["Stmt", ...]
    orelse: tuple["Stmt", ...] = ()
    span: Span = NOSPAN


@attrs.frozen(kw_only=True)
class ForEach:
    """``for each var in source where c ordered by k1 then by k2 { body }``.

    Without ``keys`` items are visited in collection order (key, party id, list position).
    With ``keys``: before the first iteration, every item for which ``where`` holds has its
    keys evaluated (``descending[i]`` flips key ``i``); items are then visited in key order,
    the first key deciding, the next only where it ties; items whose keys all tie keep
    collection order.  In both forms an item removed by an earlier iteration is skipped and
    ``where`` is evaluated again when the item's turn comes."""

    var: str
    var_type: Type
    source: Collection
    where: Optional[Expr]
    body: tuple["Stmt", ...]
    span: Span = NOSPAN
    keys: tuple[Expr, ...] = ()
    descending: tuple[bool, ...] = ()


@attrs.frozen(kw_only=True)
class Move:
    """Move ``amount`` of ``asset`` from ``src`` to ``dst``.

    ``kind`` keeps the author's verb (transfer, escrow, release, refund,
    lock, unlock, slash, mint, burn) for messages and the journal; the
    semantics are the same for all: the source must hold the amount (except
    a supply account), the amount must not be negative, and one posting is
    written.  ``mint`` moves from the supply account, ``burn`` into it.
    """

    kind: str
    amount: Expr
    asset: str
    src: Account
    dst: Account
    span: Span = NOSPAN
    # a family member's key (text): the asset moved is ``asset[member]``
    member: Optional[Expr] = None


@attrs.frozen(kw_only=True)
class Split:
    """Split ``amount`` from ``src`` among the items of ``source`` by ``weight``.

    The recipient of each item is ``to`` evaluated with ``var`` bound (the
    item itself when it is a party); a record-typed ``to`` pays into that
    record's escrow.  ``method`` is one of :data:`charter.runtime.semantics.METHODS`;
    ``order`` puts the recipients in order (which is also the tie order and
    says who is last).  Weights are ints, amounts or ratios.  ``minimum``: every
    recipient first gets this much (the event is rejected if the amount does
    not cover it); ``cap``: no recipient gets more, the excess stays in the
    source.  The exact algorithms are in :mod:`charter.runtime.semantics`.
    """

    amount: Expr
    asset: str
    src: Account
    var: str
    var_type: Type
    source: Collection
    where: Optional[Expr]
    to: Expr
    weight: Expr
    method: str = "largest_remainder"
    minimum: Optional[Expr] = None
    cap: Optional[Expr] = None
    span: Span = NOSPAN
    # "first": `at least m` (m paid to everyone first, the rest split by weight);
    # "quota": `with minimum m` (a statutory floor under the method's result)
    minimum_rule: str = "first"
    # "listed" (list order; key order for roles and records), "key" or "weight"
    order: str = "listed"
    # a family member's key (text): the asset split is ``asset[member]``
    member: Optional[Expr] = None
    # `split ... between { ACC: W, ... }`: fixed recipient accounts (pools, escrows, parties);
    # item i of ``source`` (the int i) pays ``accounts[i]`` (``to`` is then unused)
    accounts: tuple["Account", ...] = ()


@attrs.frozen(kw_only=True)
class Grant:
    right: str
    key: Optional[Expr]
    party: Expr
    until: Optional[Expr]
    span: Span = NOSPAN


@attrs.frozen(kw_only=True)
class Revoke:
    right: str
    key: Optional[Expr]
    party: Expr
    span: Span = NOSPAN


@attrs.frozen(kw_only=True)
class Admit:
    party: Expr
    role: str
    attrs: tuple[tuple[str, Expr], ...] = ()
    span: Span = NOSPAN


@attrs.frozen(kw_only=True)
class Expel:
    party: Expr
    role: str
    span: Span = NOSPAN


@attrs.frozen(kw_only=True)
class Create:
    record: str
    key: Expr
    values: tuple[tuple[str, Expr], ...]  # every field, defaults filled in
    span: Span = NOSPAN


@attrs.frozen(kw_only=True)
class Update:
    record: str
    key: Expr
    values: tuple[tuple[str, Expr], ...]
    span: Span = NOSPAN


@attrs.frozen(kw_only=True)
class Delete:
    record: str
    key: Expr
    span: Span = NOSPAN


@attrs.frozen(kw_only=True)
class Decay:
    """Burn ``floor(balance * rate)`` from every party holding ``asset``."""

    asset: str
    rate: Fraction
    span: Span = NOSPAN


@attrs.frozen(kw_only=True)
class Flag:
    party: Expr
    message: str
    span: Span = NOSPAN


@attrs.frozen(kw_only=True)
class Dissolve:
    span: Span = NOSPAN


Stmt = Union[
    Require, Reject, Let, Var, SetLocal, SetField, If, ForEach, Move, Split, Grant, Revoke, Admit,
    Expel, Create, Update, Delete, Decay, Flag, Dissolve,
]

# --------------------------------------------------------------------------
# Handlers


@attrs.frozen(kw_only=True)
class AuthClock:
    """Only the built-in ``clock`` party may submit."""


@attrs.frozen(kw_only=True)
class AuthRole:
    """Any party holding ``role`` (any party when None); bound to ``binder``."""

    binder: str
    role: Optional[str]


@attrs.frozen(kw_only=True)
class AuthParty:
    """Only the party that ``party`` evaluates to (before the body runs)."""

    party: Expr


Auth = Union[AuthClock, AuthRole, AuthParty]


@attrs.frozen(kw_only=True)
class Ensures:
    """A postcondition: ``cond`` holds after every applied event of the handler.

    ``cond`` reads the post-state; :class:`Old` sub-expressions read the pre-state.  Names
    bound: the handler's arguments, its submitter binder and a deadline handler's record.
    ``text`` is the condition as written, for reports."""

    cond: Expr
    message: Optional[str] = None
    text: str = ""
    span: Span = NOSPAN


@attrs.frozen(kw_only=True)
class Handler:
    """An event handler.

    ``kind`` is ``event`` (submitted), ``every`` (fires from event time once
    per ``period`` elapsed since the first event) or ``deadline`` (fires once
    for each live record of ``record`` whose ``field`` time has passed; the
    record is bound to ``binder``).  Timed handlers run before the event
    whose time makes them due, in order of due time, then handler name,
    then record key.
    """

    name: str
    kind: str
    params: tuple[Field, ...]
    auth: Auth
    body: tuple[Stmt, ...]
    period: Optional[int] = None
    record: Optional[str] = None
    field: Optional[str] = None
    binder: Optional[str] = None
    span: Span = NOSPAN
    ensures: tuple[Ensures, ...] = ()


# --------------------------------------------------------------------------
# Properties and tests


@attrs.frozen(kw_only=True)
class SplitProperty:
    """A fairness property of every ``split`` in ``handler``.

    ``kind``: ``proportional`` (each share within ``bound`` units of
    amount*w/W), ``monotone`` (more weight never less), ``symmetric`` (equal
    weights => shares within ``bound``), ``floor`` (each share >= ``bound``
    expr), ``cap`` (each share <= ``bound`` expr).
    """

    name: str
    handler: str
    kind: str
    bound: Optional[Expr] = None
    span: Span = NOSPAN


@attrs.frozen(kw_only=True)
class BudgetProperty:
    """``handler`` never takes more than ``limit`` out of ``pool`` in one event."""

    name: str
    handler: str
    pool: str
    limit: Expr
    span: Span = NOSPAN


@attrs.frozen(kw_only=True)
class InvariantProperty:
    """``cond`` holds in every reachable state (checked inductively per
    handler).  With ``record`` set, ``cond`` holds for every live record,
    bound to ``var``."""

    name: str
    cond: Expr
    record: Optional[str] = None
    var: Optional[str] = None
    span: Span = NOSPAN


@attrs.frozen(kw_only=True)
class AnyoneProperty:
    """``anyone may call handler``: the author declares that any party may submit
    ``handler`` even though it moves value out of accounts that are not the submitter's
    (a permissionless crank: finalize a round, report downtime).  The authorisation check
    then lists it as declared instead of reporting it."""

    name: str
    handler: str
    span: Span = NOSPAN


Property = Union[SplitProperty, BudgetProperty, InvariantProperty, AnyoneProperty]


def _step_span() -> Any:
    """A test step's span: where it is written, not part of the step's value."""
    return attrs.field(default=NOSPAN, eq=False)


@attrs.frozen(kw_only=True)
class GivenRole:
    party: str
    role: str
    attrs: tuple[tuple[str, Expr], ...] = ()
    # where the step is written (failures point at it); not part of the step's value
    span: Span = _step_span()


@attrs.frozen(kw_only=True)
class GivenFunds:
    amount: int
    account: Account
    # where the step is written (failures point at it); not part of the step's value
    span: Span = _step_span()


@attrs.frozen(kw_only=True)
class GivenParam:
    name: str
    value: Any
    # where the step is written (failures point at it); not part of the step's value
    span: Span = _step_span()


@attrs.frozen(kw_only=True)
class WhenEvent:
    event: str
    args: tuple[tuple[str, Any], ...]  # constant values, as in an event payload
    submitter: str
    time: Optional[int] = None
    # where the step is written (failures point at it); not part of the step's value
    span: Span = _step_span()


@attrs.frozen(kw_only=True)
class ExpectOk:
    span: Span = _step_span()


@attrs.frozen(kw_only=True)
class ExpectRejected:
    contains: Optional[str] = None
    # where the step is written (failures point at it); not part of the step's value
    span: Span = _step_span()


@attrs.frozen(kw_only=True)
class ExpectTrue:
    cond: Expr
    text: str = ""
    # where the step is written (failures point at it); not part of the step's value
    span: Span = _step_span()


TestStep = Union[GivenRole, GivenFunds, GivenParam, WhenEvent, ExpectOk, ExpectRejected, ExpectTrue]


@attrs.frozen(kw_only=True)
class Test:
    name: str
    steps: tuple[TestStep, ...]
    span: Span = NOSPAN


@attrs.frozen(kw_only=True)
class Policy:
    name: str
    version: str
    assets: tuple[Asset, ...]
    roles: tuple[Role, ...]
    params: tuple[Param, ...]
    pools: tuple[Pool, ...]
    records: tuple[Record, ...]
    handlers: tuple[Handler, ...]
    properties: tuple[Property, ...]
    tests: tuple[Test, ...]
    source_hash: str = ""  # sha256 over the policy's source and its imports

    def asset(self, name: str) -> Asset:
        """The declaration of ``name`` (a family member ``Token[USDC]`` answers ``Token``)."""
        base = family_of(name)
        return next(a for a in self.assets if a.name == base)

    def handler(self, name: str) -> Handler:
        return next(h for h in self.handlers if h.name == name)

    def record(self, name: str) -> Record:
        return next(r for r in self.records if r.name == name)

    def param(self, name: str) -> Param:
        return next(p for p in self.params if p.name == name)

    def pool(self, name: str) -> Pool:
        return next(p for p in self.pools if p.name == name)

    def role(self, name: str) -> Role:
        return next(r for r in self.roles if r.name == name)


# --------------------------------------------------------------------------
# JSON


def _encode(value: Any) -> Any:
    if attrs.has(type(value)):
        out: dict[str, Any] = {"node": type(value).__name__}
        for f in attrs.fields(type(value)):
            out[f.name] = _encode(getattr(value, f.name))
        return out
    if isinstance(value, Fraction):
        return {"node": "Fraction", "num": value.numerator, "den": value.denominator}
    if isinstance(value, tuple):
        return [_encode(v) for v in value]
    return value


def to_data(policy: Policy) -> dict[str, Any]:
    """The IR as plain JSON-compatible data (every node tagged by class name)."""
    return _encode(policy)


def to_json(policy: Policy, indent: Optional[int] = 2) -> str:
    return json.dumps(to_data(policy), indent=indent, sort_keys=False, ensure_ascii=False)


_NODES: dict[str, type] = {}


def _decode(value: Any) -> Any:
    if isinstance(value, dict):
        kind = value.get("node")
        if kind is None:
            # Plain data inside a node (a test step's arguments in their event wire form,
            # e.g. a ratio as {"num": 1, "den": 10}) is kept as data, not read as a node:
            # without this, a ledger of any policy whose tests pass a ratio could not be
            # reopened (its recorded policy failed to decode).
            return {k: _decode(v) for k, v in value.items()}
        if kind == "Fraction":
            return Fraction(value["num"], value["den"])
        if kind not in _NODES:
            raise ValueError(f"unknown IR node {kind!r}")
        cls = _NODES[kind]
        kwargs = {k: _decode(v) for k, v in value.items() if k != "node"}
        return cls(**kwargs)
    if isinstance(value, list):
        return tuple(_decode(v) for v in value)
    return value


def from_data(data: dict[str, Any]) -> Policy:
    """Inverse of :func:`to_data`."""
    if not _NODES:
        for name, obj in globals().items():
            if isinstance(obj, type) and attrs.has(obj):
                _NODES[name] = obj
    return _decode(data)
