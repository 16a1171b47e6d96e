"""Split shares as constraints whose unique solution is the result of
:func:`charter.runtime.semantics.split` (checked against the runtime by
``tests/verify/test_semantics_agree.py``).
"""

from __future__ import annotations

from typing import Any, TYPE_CHECKING

import z3

from .terms import Unsupported

if TYPE_CHECKING:
    from .encode import Encoder


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
) -> tuple[list, Any, Any, Any]:
    k = len(weights)
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
    if method in ("largest_remainder", "sequential_floor", "floor_dust"):
        q = [enc.fresh(f"split.q[{i}]", z3.IntSort()) for i in range(k)]
        rm = [enc.fresh(f"split.r[{i}]", z3.IntSort()) for i in range(k)]
        prod = [enc.fresh(f"split.p[{i}]", z3.IntSort()) for i in range(k)]  # rest * w_i
        qw = [enc.fresh(f"split.qw[{i}]", z3.IntSort()) for i in range(k)]  # q_i * total
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
    elif method in ("dhondt", "sainte_lague"):
        a, b = (2, 2) if method == "dhondt" else (2, 1)
        cons.append(z3.Implies(nt, z3.Sum(*raw) == rest))
        cons += [z3.Implies(nt, r >= 0) for r in raw]
        cons += [z3.Implies(z3.And(nt, w == 0), r == 0) for w, r in zip(ws, raw)]
        # the held awards are exactly the `rest` best awards (value desc, index asc):
        # j's last held award (j, s_j - 1) beats i's next award (i, s_i)
        for i in range(k):
            for j in range(k):
                if i == j:
                    continue
                vj = ws[j] * (a * raw[i] + b)  # w_j / d(s_j - 1) vs w_i / d(s_i), cross-multiplied
                vi = ws[i] * (a * (raw[j] - 1) + b)
                beats = z3.Or(vj > vi, z3.And(vj == vi, j < i))
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
