"""Split shares as constraints whose unique solution is the result of
:func:`charter.runtime.semantics.split` (checked against the runtime by
``tests/verify/test_semantics_agree.py``).

Every method and both minimum rules are encoded exactly; weights may be Int or Real
terms (ratio weights).  Divisor methods compare award values ``vn(w, s) / vd(s)``
cross-multiplied (``vd(s) = 0`` is an award worth infinity, as in the runtime).
"""

from __future__ import annotations

from typing import Any, TYPE_CHECKING

import z3

from .terms import Unsupported

if TYPE_CHECKING:
    from .encode import Encoder


# award values of the divisor methods: (numerator(w, s), denominator(s)) of w / d(s)
_DIVISOR = {
    "dhondt": (lambda w, s: w, lambda s: s + 1),
    "sainte_lague": (lambda w, s: 2 * w, lambda s: 2 * s + 1),
    "adams": (lambda w, s: w, lambda s: s),
    "dean": (lambda w, s: w * (2 * s + 1), lambda s: 2 * s * (s + 1)),
    "huntington_hill": (lambda w, s: w * w, lambda s: s * (s + 1)),
}


def _split_shares(
    enc: Encoder,
    active: Any,
    method: str,
    amount: Any,
    weights: list,
    included: list,
    n: Any,
    mn: Any,
    cap: Any,
    minimum_rule: str = "first",
) -> tuple[list, Any, Any, Any]:
    if any(z3.is_real(w) for w in weights):
        weights = [w if z3.is_real(w) else z3.ToReal(w) for w in weights]
    if minimum_rule == "quota" and mn is not None and method == "largest_remainder":
        return _statutory_lr(enc, active, amount, weights, included, n, mn, cap)
    shift = mn if (minimum_rule == "quota" and mn is not None) else None
    return _shares(enc, active, method, amount, weights, included, n, mn, cap, shift)


def _statutory_lr(
    enc: Encoder, active: Any, amount: Any, weights: list, included: list, n: Any, mn: Any,
    cap: Any
) -> tuple[list, Any, Any, Any]:
    """Largest remainder with a statutory minimum: the runtime's fixing rounds unrolled (they
    settle within ``k`` rounds: each round fixes someone or ends), then largest remainder
    among those left."""
    k = len(weights)
    fixed = [z3.BoolVal(False)] * k
    for _ in range(k):
        cnt = z3.Sum(*[z3.If(z3.And(c, f), 1, 0) for c, f in zip(included, fixed)])
        left = amount - mn * cnt
        w_left = z3.Sum(*[z3.If(z3.And(c, z3.Not(f)), w, 0)
                          for c, w, f in zip(included, weights, fixed)])
        fixed = [
            z3.Or(f, z3.And(c, z3.Or(w_left == 0, left * w < mn * w_left)))
            for c, w, f in zip(included, weights, fixed)
        ]
    cnt = z3.Sum(*[z3.If(z3.And(c, f), 1, 0) for c, f in zip(included, fixed)])
    left = enc.fresh("split.left", z3.IntSort())
    enc.assumptions.append(z3.Implies(active, left == amount - mn * cnt))
    free = [z3.And(c, z3.Not(f)) for c, f in zip(included, fixed)]
    n_free = z3.Sum(*[z3.If(c, 1, 0) for c in free])
    raw, _, total, _ = _shares(enc, active, "largest_remainder", left, weights, free, n_free,
                               None, None, None)
    # a consequence stated so Z3 need not find it by non-linear reasoning: a recipient left
    # free has a final quota of at least m, so its floor (and share) is at least m
    enc.assumptions.append(
        z3.Implies(active, z3.And(*[z3.Implies(c, r >= mn) for c, r in zip(free, raw)]))
    )
    shares = []
    for c, f, r in zip(included, fixed, raw):
        sh = z3.If(c, z3.If(f, mn, r), 0)
        if cap is not None:
            sh = z3.If(sh > cap, cap, sh)
        shares.append(sh)
    leftover = amount - (z3.Sum(*shares) if shares else z3.IntVal(0))
    # the proportionality terms of the inner split do not describe this one
    enc.last_split_scaled = (None, None)
    return shares, leftover, total, amount - n * mn


def _shares(
    enc: Encoder,
    active: Any,
    method: str,
    amount: Any,
    weights: list,
    included: list,
    n: Any,
    mn: Any,
    cap: Any,
    shift: Any,
) -> tuple[list, Any, Any, Any]:
    k = len(weights)
    real = any(z3.is_real(w) for w in weights)
    vsort = z3.RealSort() if real else z3.IntSort()
    ws = [z3.If(c, w, 0) for c, w in zip(included, weights)]
    total = z3.Sum(*ws) if ws else z3.IntVal(0)
    base = mn if mn is not None else z3.IntVal(0)
    rest = amount - n * base
    raw = [enc.fresh(f"split.raw[{i}]", z3.IntSort()) for i in range(k)]
    cons: list = []
    trivial = z3.Or(total == 0, rest == 0, n == 0)
    cons.append(z3.Implies(trivial, z3.And(*[r == 0 for r in raw])) if raw else z3.BoolVal(True))
    # excluded slots get nothing
    cons += [z3.Implies(z3.Not(c), r == 0) for c, r in zip(included, raw)]
    nt = z3.Not(trivial)
    scaled = None  # raw[i] * total as a linear term, when the method allows it
    if method == "sequential_floor_listed":
        _sequential_listed(enc, cons, nt, rest, ws, included, raw, total, vsort)
    elif method in ("largest_remainder", "sequential_floor", "floor_dust"):
        q = [enc.fresh(f"split.q[{i}]", z3.IntSort()) for i in range(k)]
        rm = [enc.fresh(f"split.r[{i}]", vsort) for i in range(k)]
        prod = [enc.fresh(f"split.p[{i}]", vsort) for i in range(k)]  # rest * w_i
        qw = [enc.fresh(f"split.qw[{i}]", vsort) for i in range(k)]  # q_i * total
        for i in range(k):
            cons.append(
                z3.Implies(
                    nt,
                    z3.And(
                        prod[i] == rest * ws[i],
                        qw[i] == q[i] * total,
                        prod[i] == qw[i] + rm[i],
                        rm[i] >= 0,
                        rm[i] < total,
                    ),
                )
            )
        left = rest - z3.Sum(*q)
        # Consequences of the definitions above, stated so Z3 need not rediscover them by
        # non-linear reasoning (each follows from floor division by total > 0 with rest,
        # weights >= 0); the hypothesis test against runtime.semantics checks them.
        for i in range(k):
            cons.append(z3.Implies(nt, z3.And(prod[i] >= 0, q[i] >= 0, qw[i] >= 0)))
            for j in range(k):
                if i != j:
                    cons.append(z3.Implies(z3.And(nt, ws[i] >= ws[j]), prod[i] >= prod[j]))
                    cons.append(
                        z3.Implies(
                            z3.And(nt, ws[i] == ws[j]),
                            z3.And(
                                prod[i] == prod[j], q[i] == q[j], rm[i] == rm[j], qw[i] == qw[j]
                            ),
                        )
                    )
                    cons.append(z3.Implies(z3.And(nt, prod[i] >= prod[j]), q[i] >= q[j]))
                    cons.append(z3.Implies(z3.And(nt, q[i] == q[j]), qw[i] == qw[j]))
                    cons.append(z3.Implies(z3.And(nt, q[i] > q[j]), qw[i] >= qw[j] + total))
                    cons.append(z3.Implies(z3.And(nt, ws[i] > ws[j]), prod[i] > prod[j]))
        cons.append(z3.Implies(nt, z3.Sum(*prod) == rest * total))
        cons.append(z3.Implies(nt, z3.Sum(*rm) == left * total))
        cons.append(z3.Implies(nt, z3.And(left >= 0, left < n)))
        if method == "floor_dust":
            cons += [z3.Implies(z3.And(nt, c), r == qq) for c, r, qq in zip(included, raw, q)]
            scaled = [-rm[i] for i in range(k)]
        elif method == "sequential_floor":
            # the last included recipient with a positive weight takes what is left
            for i in range(k):
                later_pos = [z3.And(included[j], ws[j] > 0) for j in range(i + 1, k)]
                is_last = z3.And(
                    included[i], ws[i] > 0, z3.Not(z3.Or(*later_pos)) if later_pos else True
                )
                cons.append(
                    z3.Implies(z3.And(nt, included[i]), raw[i] == q[i] + z3.If(is_last, left, 0))
                )
            scaled = [
                -rm[i]
                + z3.If(
                    z3.And(
                        included[i],
                        ws[i] > 0,
                        z3.Not(z3.Or(*[z3.And(included[j], ws[j] > 0) for j in range(i + 1, k)]))
                        if i + 1 < k
                        else True,
                    ),
                    z3.Sum(*rm),
                    0,
                )
                for i in range(k)
            ]
        else:
            bonus = [enc.fresh(f"split.b[{i}]", z3.IntSort()) for i in range(k)]
            for i in range(k):
                cons.append(z3.Implies(z3.And(nt, included[i]), raw[i] == q[i] + bonus[i]))
                cons.append(z3.Implies(nt, z3.Or(bonus[i] == 0, bonus[i] == 1)))
                cons.append(z3.Implies(z3.And(nt, z3.Not(included[i])), bonus[i] == 0))
            cons.append(z3.Implies(nt, z3.Sum(*bonus) == left))
            scaled = [z3.If(bonus[i] == 1, total, 0) - rm[i] for i in range(k)]
            # units go to the largest remainders, ties to the earlier recipient
            for i in range(k):
                for j in range(k):
                    if i == j:
                        continue
                    beats = z3.Or(rm[i] > rm[j], z3.And(rm[i] == rm[j], i < j))
                    cons.append(
                        z3.Implies(
                            z3.And(nt, included[i], included[j], bonus[i] == 1, bonus[j] == 0),
                            beats,
                        )
                    )
    elif method in _DIVISOR:
        vn, vd = _DIVISOR[method]
        off = shift if shift is not None else z3.IntVal(0)
        cons.append(z3.Implies(nt, z3.Sum(*raw) == rest))
        cons += [z3.Implies(nt, r >= 0) for r in raw]
        cons += [z3.Implies(z3.And(nt, w == 0), r == 0) for w, r in zip(ws, raw)]
        # the held awards are exactly the `rest` best awards (value desc, index asc):
        # j's last held award (j, s_j - 1) beats i's next award (i, s_i), with s counted
        # from the statutory minimum when there is one
        for i in range(k):
            for j in range(k):
                if i == j:
                    continue
                sj, si = raw[j] - 1 + off, raw[i] + off
                nj, dj = vn(ws[j], sj), vd(sj)
                ni, di = vn(ws[i], si), vd(si)
                inf_j, inf_i = dj == 0, z3.And(di == 0, ws[i] > 0)
                later = z3.Or(ws[j] > ws[i], z3.And(ws[j] == ws[i], j < i))
                finite = z3.Or(nj * di > ni * dj, z3.And(nj * di == ni * dj, j < i))
                beats = z3.Or(
                    ws[i] == 0,
                    z3.If(inf_j, z3.Or(z3.Not(inf_i), later), z3.And(z3.Not(inf_i), finite)),
                )
                cons.append(z3.Implies(z3.And(nt, included[i], included[j], raw[j] > 0), beats))
    else:
        raise Unsupported(f"split method {method}")
    shares = []
    for c, r in zip(included, raw):
        s = z3.If(c, r + base, 0)
        if cap is not None:
            s = z3.If(s > cap, cap, s)
        shares.append(s)
    leftover = amount - (z3.Sum(*shares) if shares else z3.IntVal(0))
    enc.assumptions.append(z3.Implies(active, z3.And(*cons)))
    if scaled is not None:
        scaled = [z3.If(z3.Or(trivial, z3.Not(c)), 0, e) for c, e in zip(included, scaled)]
    enc.last_split_scaled = (scaled, trivial)
    return shares, leftover, total, rest


def _sequential_listed(
    enc: Encoder, cons: list, nt: Any, rest: Any, ws: list, included: list, raw: list,
    total: Any, vsort: Any
) -> None:
    """``sequential_floor_listed``: in listed order each included recipient but the last
    gets ``floor(left * w / W_left)`` (0 when ``W_left`` is 0), the last takes what is left."""
    k = len(ws)
    left = rest
    for i in range(k):
        later = [included[j] for j in range(i + 1, k)]
        is_last = z3.And(included[i], z3.Not(z3.Or(*later)) if later else z3.BoolVal(True))
        w_left = z3.Sum(*ws[i:])  # excluded slots weigh 0
        q = enc.fresh(f"split.q[{i}]", z3.IntSort())
        prod = enc.fresh(f"split.p[{i}]", vsort)  # left * w_i
        qw = enc.fresh(f"split.qw[{i}]", vsort)  # q * W_left
        cons.append(z3.Implies(nt, prod == left * ws[i]))
        cons.append(z3.Implies(nt, qw == q * w_left))
        cons.append(z3.Implies(z3.And(nt, w_left > 0),
                               z3.And(qw <= prod, prod < qw + w_left, q >= 0)))
        cons.append(z3.Implies(z3.And(nt, w_left == 0), q == 0))
        cons.append(z3.Implies(z3.And(nt, included[i]),
                               raw[i] == z3.If(is_last, left, q)))
        nxt = enc.fresh(f"split.left[{i}]", z3.IntSort())
        cons.append(z3.Implies(nt, nxt == left - raw[i]))
        left = nxt
