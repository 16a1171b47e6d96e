"""Per-epoch metrics of a simulated economy, computed exactly from the ledger's state.

Every metric is a row ``(metric, key, exact)``: ``exact`` is an ``int`` (an
amount in minor units, a count) or a ``Fraction`` (Gini, shares, Lorenz
points); the frame shows both a float ``value`` for plotting and the exact
text.  Inequality is measured over the scenario's agents (a party with
nothing counts, as it should), per asset (rights excluded).
"""
from __future__ import annotations

from fractions import Fraction
from typing import Any, Iterable

LORENZ_POINTS = 10  # the Lorenz curve at every tenth of the population


def gini(values: Iterable[int]) -> Fraction:
    """Gini coefficient of non-negative holdings (0 = equal, (n-1)/n = one holds all)."""
    xs = sorted(max(0, v) for v in values)
    n, total = len(xs), sum(xs)
    if n == 0 or total == 0:
        return Fraction(0)
    weighted = sum((i + 1) * x for i, x in enumerate(xs))
    return Fraction(2 * weighted, n * total) - Fraction(n + 1, n)


def lorenz(values: Iterable[int], points: int = LORENZ_POINTS) -> list[Fraction]:
    """Share of the total held by the poorest k/points of the holders, k = 0..points."""
    xs = sorted(max(0, v) for v in values)
    n, total = len(xs), sum(xs)
    out = []
    for k in range(points + 1):
        m = (n * k) // points
        out.append(Fraction(sum(xs[:m]), total) if total else Fraction(k, points))
    return out


def top_share(values: Iterable[int], fraction: Fraction = Fraction(1, 10)) -> Fraction:
    """Share of the total held by the richest ``fraction`` of holders (at least one)."""
    xs = sorted((max(0, v) for v in values), reverse=True)
    total = sum(xs)
    if not xs or not total:
        return Fraction(0)
    m = max(1, int(len(xs) * fraction))
    return Fraction(sum(xs[:m]), total)


def epoch_metrics(rt: Any, agents: list, assets: list[str], pools: list[str],
                  custom: Iterable[Any], *, final: bool) -> list[tuple[str, str, Any]]:
    """The rows of one epoch (the Lorenz curve only when ``final``)."""
    bal = rt.state.balances
    rows: list[tuple[str, str, Any]] = []
    by_role: dict[tuple[str, str], int] = {}
    for asset in assets:
        held = []
        for a in agents:
            v = bal.get(f"party:{a.id}:{asset}", 0)
            held.append(v)
            rows.append(("balance", f"{a.id}:{asset}", v))
            by_role[(a.role, asset)] = by_role.get((a.role, asset), 0) + v
        rows.append(("supply", asset, -bal.get(f"supply:{asset}", 0)))
        rows.append(("gini", asset, gini(held)))
        rows.append(("top10_share", asset, top_share(held)))
        if final:
            for k, share in enumerate(lorenz(held)):
                rows.append(("lorenz", f"{asset}:{k}/{LORENZ_POINTS}", share))
    for (role, asset), v in sorted(by_role.items()):
        rows.append(("role_balance", f"{role}:{asset}", v))
    for name in pools:
        rows.append(("pool", name, bal.get(f"pool:{name}", 0)))
    escrow: dict[str, int] = {}
    for acc, v in bal.items():
        if acc.startswith("escrow:"):
            asset = acc.rsplit(":", 1)[1]
            escrow[asset] = escrow.get(asset, 0) + v
    for asset in assets:
        rows.append(("escrow", asset, escrow.get(asset, 0)))
    for m in custom:
        rows.append(("custom", m.name, custom_value(m, rt)))
    return rows


def custom_value(m: Any, rt: Any) -> Any:
    if m.python is not None:
        v = m.python(rt)
        if isinstance(v, bool) or not isinstance(v, (int, Fraction, float)):
            raise TypeError(f"metric {m.name} returned {type(v).__name__}, not a number")
        return v
    if m.balance:
        return rt.state.balances.get(m.balance, 0)
    live = rt.state.records[m.records]
    want = [(f, s.value) for f, s in m.where]
    return sum(1 for r in live.values() if all(r.get(f) == v for f, v in want))
