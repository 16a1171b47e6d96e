"""Checks on hand-built IR for what the type checker already keeps out of source policies
(the verifier must still catch it if an IR ever carries it) and for statement kinds."""

from __future__ import annotations

from fractions import Fraction

from charter.compiler import ir, verify as V
from verify_irkit import PARTY, amt, b, c, handler, loc, move, party_acc, policy, req

OPTS = V.Options()  # the resource limit decides; no wall clock


def _run(pol):
    return {r.name: r for r in V.verify(pol, OPTS, use_cache=False)}


def test_mint_of_a_fixed_supply_asset_is_refuted():
    body = [
        req(b(">", loc("n", amt()), c(0, amt()))),
        move(
            "mint", loc("n", amt()), ir.AccSupply(asset="Credit"), party_acc(loc("who", PARTY)), 3
        ),
    ]
    fixed = policy([handler("print", [("n", amt())], body)])
    r = _run(fixed)["print.conservation"]
    assert r.status == "refuted" and "not mintable" in r.message
    mintable = policy(
        [handler("print", [("n", amt())], body)],
        assets=(ir.Asset(name="Credit", kind="token", decimals=2, mintable=True),),
    )
    assert _run(mintable)["print.conservation"].status == "proved"


def test_mint_beyond_cap_is_a_guard_finding():
    capped = (ir.Asset(name="Credit", kind="token", decimals=2, mintable=True, cap=1000),)
    body = [
        req(b(">", loc("n", amt()), c(0, amt()))),
        move(
            "mint", loc("n", amt()), ir.AccSupply(asset="Credit"), party_acc(loc("who", PARTY)), 3
        ),
    ]
    r = _run(policy([handler("print", [("n", amt())], body)], assets=capped))["print.supply_cap"]
    assert r.status == "guard_missing"
    guarded = [
        req(
            b(
                "<=",
                b(
                    "+",
                    ir.Builtin(name="supply", args=(), type=amt(), extra=("Credit",)),
                    loc("n", amt()),
                ),
                c(1000, amt()),
            )
        )
    ] + body
    r = _run(policy([handler("print", [("n", amt())], guarded)], assets=capped))["print.supply_cap"]
    assert r.status == "proved"


def test_decay_keeps_balances_non_negative_and_moves_nothing_else():
    rep = (ir.Asset(name="Credit", kind="score", decimals=0, mintable=True, burnable=True),)
    body = [
        ir.Decay(asset="Credit", rate=Fraction(1, 10)),
        move("burn", c(1, amt()), party_acc(loc("who", PARTY)), ir.AccSupply(asset="Credit"), 2),
    ]
    rs = _run(policy([handler("tick", [], body)], assets=rep))
    # after a 10% decay, burning 1 can overdraw a balance the decay took below 1
    assert rs["tick.no_overdraft"].status == "guard_missing"
    assert rs["tick.conservation"].status == "proved"


def test_unsupported_construct_is_unknown_not_a_crash():
    body = [ir.Let(name="x", value=ir.Builtin(name="mystery", args=(), type=ir.TInt()))]
    rs = _run(policy([handler("odd", [], body)]))
    assert rs["odd.encoding"].status == "unknown" and "mystery" in rs["odd.encoding"].message
