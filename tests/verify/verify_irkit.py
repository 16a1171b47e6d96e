"""Tiny builders for hand-made IR in verifier tests (used until/where no .charter source fits)."""

from __future__ import annotations

from fractions import Fraction
from typing import Any

from charter.compiler import ir

INT, BOOL, RATIO, TEXT, TIME = ir.TInt(), ir.TBool(), ir.TRatio(), ir.TText(), ir.TTime()
PARTY = ir.TParty()


def amt(asset: str = "Credit") -> ir.TAmount:
    return ir.TAmount(asset=asset)


def sp(line: int) -> ir.Span:
    return ir.Span(file="t.charter", line=line, col=1, end_line=line, end_col=10)


def c(value: Any, t: ir.Type) -> ir.Const:
    return ir.Const(value=value, type=t)


def loc(name: str, t: ir.Type) -> ir.Local:
    return ir.Local(name=name, type=t)


def par(name: str, t: ir.Type) -> ir.ParamRef:
    return ir.ParamRef(name=name, type=t)


def b(op: str, left: ir.Expr, r: ir.Expr, t: ir.Type | None = None) -> ir.Binary:
    if t is None:
        t = BOOL if op in ("==", "!=", "<", "<=", ">", ">=", "and", "or") else left.type
    return ir.Binary(op=op, left=left, right=r, type=t)


def call(name: str, *args: ir.Expr, t: ir.Type = INT, extra: tuple = ()) -> ir.Builtin:
    return ir.Builtin(name=name, args=tuple(args), type=t, extra=extra)


def fld(record: str, key: ir.Expr, field: str, t: ir.Type) -> ir.RecordField:
    return ir.RecordField(record=record, key=key, field=field, type=t)


def bal(acc: Any, t: ir.Type) -> ir.AccBalance:
    return ir.AccBalance(account=acc, type=t)


def party_acc(e: ir.Expr, asset: str = "Credit") -> ir.AccParty:
    return ir.AccParty(party=e, asset=asset)


def pool_acc(name: str, asset: str = "Credit") -> ir.AccPool:
    return ir.AccPool(pool=name, asset=asset)


def escrow_acc(record: str, key: ir.Expr, asset: str = "Credit") -> ir.AccEscrow:
    return ir.AccEscrow(record=record, key=key, asset=asset)


def move(
    kind: str, amount: ir.Expr, src: Any, dst: Any, line: int = 1, asset: str = "Credit"
) -> ir.Move:
    return ir.Move(kind=kind, amount=amount, asset=asset, src=src, dst=dst, span=sp(line))


def req(cond: ir.Expr, msg: str = "", line: int = 1) -> ir.Require:
    return ir.Require(cond=cond, message=msg, span=sp(line))


def handler(
    name: str,
    params: list[tuple[str, ir.Type]],
    body: list,
    auth: Any = None,
    line: int = 1,
    **kw: Any,
) -> ir.Handler:
    return ir.Handler(
        name=name,
        kind=kw.pop("kind", "event"),
        params=tuple(ir.Field(name=n, type=t) for n, t in params),
        auth=auth or ir.AuthRole(binder="who", role=None),
        body=tuple(body),
        span=sp(line),
        **kw,
    )


def policy(
    handlers: list,
    *,
    params: tuple = (),
    records: tuple = (),
    pools: tuple = (),
    roles: tuple = (),
    properties: tuple = (),
    assets: tuple | None = None,
) -> ir.Policy:
    if assets is None:
        assets = (ir.Asset(name="Credit", kind="token", decimals=2),)
    return ir.Policy(
        name="t",
        version="1",
        assets=assets,
        roles=roles,
        params=params,
        pools=pools,
        records=records,
        handlers=tuple(handlers),
        properties=properties,
        tests=(),
    )


def pct(n: int, d: int = 100) -> Fraction:
    return Fraction(n, d)
