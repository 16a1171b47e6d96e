"""Every question to Z3 goes through here: one solver per query on a fresh context per run,
and the staged strategies (without, then with product lemmas; small witnesses first).
"""

from __future__ import annotations

import time
from fractions import Fraction
from typing import Any, Iterable, Optional, TYPE_CHECKING

import z3

if TYPE_CHECKING:
    from .model import HandlerModel


def solve(formulas: Iterable[Any], timeout_ms: int) -> tuple[str, Optional[z3.ModelRef]]:
    s = z3.Solver()
    s.set("timeout", max(1, int(timeout_ms)))
    try:
        s.add(*list(formulas))
        r = s.check()
    except z3.Z3Exception:
        return "unknown", None
    if r == z3.sat:
        return "sat", s.model()
    if r == z3.unsat:
        return "unsat", None
    return "unknown", None


def solve_m(formulas: list, m: HandlerModel, timeout_ms: int) -> tuple[str, Optional[z3.ModelRef]]:
    """``solve`` for a question about handler ``m``: half the time without the product
    lemmas, then (if undecided) the rest with them.  Both answers are sound because the
    lemmas are valid facts about multiplication."""
    lemmas = m.encoder.lemmas
    if not lemmas:
        return solve(formulas, timeout_ms)
    t0 = time.perf_counter()
    r, model = solve(formulas, max(1, timeout_ms // 2))
    if r != "unknown":
        return r, model
    left = timeout_ms - int((time.perf_counter() - t0) * 1000)
    return solve(formulas + lemmas, left) if left > 0 else ("unknown", None)


def opts_bound(slots: list) -> int:
    return max((len(items) for items in slots), default=0)


def solve_sat(
    formulas: list, m: HandlerModel, timeout_ms: int
) -> tuple[str, Optional[z3.ModelRef]]:
    """For questions that want a witness (can the handler apply, can a branch run): first try
    the easy witnesses - every collection empty, then one item each, then two - each with a
    tenth of the time, then the full question.  Any witness found is a real one (fewer items is a
    legitimate state), so a quick "sat" is final; only "unsat" needs the full query."""
    slots = list(m.encoder.slots.values())
    if slots:
        t0 = time.perf_counter()
        for keep in range(min(3, opts_bound(slots))):
            restrict = [z3.Not(p) for items in slots for i, (_, p) in enumerate(items) if i >= keep]
            r, model = solve(formulas + restrict, max(1, timeout_ms // 10))
            if r == "sat":
                return r, model
        timeout_ms -= int((time.perf_counter() - t0) * 1000)
        if timeout_ms <= 0:
            return "unknown", None
    return solve(formulas, timeout_ms)


def _eval(model: z3.ModelRef, term: Any) -> Any:
    v = model.eval(term, model_completion=True)
    if z3.is_int_value(v):
        return v.as_long()
    if z3.is_rational_value(v):
        return Fraction(v.numerator_as_long(), v.denominator_as_long())
    if z3.is_true(v):
        return True
    if z3.is_false(v):
        return False
    if z3.is_algebraic_value(v):  # irrational: only from non-linear terms we never produce
        return str(v)
    return str(v)


def fresh_context() -> None:
    """Start Z3's default context afresh.

    Z3's search depends on the identities of the terms it has seen, so a run after
    many others can take another path (and time out) on the same formula.  Each
    ``verify``/``diff`` starts from a pristine context, so its results depend only
    on the policy and the options, not on what ran before in the process."""
    z3.z3._main_ctx = None
