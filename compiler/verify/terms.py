"""Values of the encoding (optional values, bounded lists, text codes) and the Z3 helpers
that lift ``If`` and rounding to them.

Rounding is encoded exactly as :mod:`charter.runtime.semantics` defines it
(``floor`` = ``ToInt``, ``ceil(x) = -floor(-x)``, ``round(x) = floor(x+1/2)``).
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any, Optional

import attrs
import z3

from .. import ir


@attrs.define
class Opt:
    """An optional value: ``some`` says whether ``val`` is present."""

    some: Any
    val: Any


@attrs.define
class SList:
    """A bounded list: ``items`` are the first ``len(items)`` slots, ``n`` how many are used."""

    items: list
    n: Any


class Unsupported(Exception):
    """The IR uses something the encoding does not model (reported as *unknown*)."""


class Codes:
    """String constants (text, party ids, record keys) as fixed Int codes.

    Codes are spaced out so symbolic values can fall between them; a model
    value that is not a constant's code is rendered as a fresh name.
    """

    BASE = 1_000_000

    def __init__(self) -> None:
        self.by_text: dict[str, int] = {}

    def code(self, text: str) -> int:
        if text not in self.by_text:
            self.by_text[text] = self.BASE * (len(self.by_text) + 1)
        return self.by_text[text]

    def text(self, code: int) -> Optional[str]:
        for t, c in self.by_text.items():
            if c == code:
                return t
        return None


def select(a: Any, *idx: Any) -> Any:
    """``z3.Select(a, *idx)``; one index that is already a Z3 term goes straight to the C API
    (``z3.Select`` re-derives and checks the sorts in Python on every call: a third of the
    time spent encoding the invariant candidates of a handler).  Z3 itself still checks the
    sorts: a mismatch raises, and then the ordinary path (with its coercions) is taken."""
    if len(idx) == 1 and isinstance(idx[0], z3.ExprRef):
        try:
            return z3.z3._to_expr_ref(
                z3.Z3_mk_select(a.ctx_ref(), a.as_ast(), idx[0].as_ast()), a.ctx
            )
        except z3.Z3Exception:
            pass
    return z3.Select(a, *idx)


def sort_of(t: ir.Type) -> z3.SortRef:
    if isinstance(t, ir.TBool):
        return z3.BoolSort()
    if isinstance(t, (ir.TRatio, getattr(ir, "TFrac", ir.TRatio))):
        return z3.RealSort()
    if isinstance(t, ir.TOptional):
        return sort_of(t.inner)
    return z3.IntSort()


def _zero(t: ir.Type) -> Any:
    s = sort_of(t)
    if s == z3.BoolSort():
        return z3.BoolVal(False)
    if s == z3.RealSort():
        return z3.RealVal(0)
    return z3.IntVal(0)


def ite(c: Any, a: Any, b: Any) -> Any:
    """``If`` lifted to optional and list values."""
    if isinstance(a, Opt) or isinstance(b, Opt):
        a = a if isinstance(a, Opt) else Opt(z3.BoolVal(True), a)
        b = b if isinstance(b, Opt) else Opt(z3.BoolVal(True), b)
        return Opt(z3.If(c, a.some, b.some), z3.If(c, a.val, b.val))
    if isinstance(a, SList) and isinstance(b, SList):
        k = max(len(a.items), len(b.items))
        items = []
        for i in range(k):
            x = a.items[i] if i < len(a.items) else b.items[i]
            y = b.items[i] if i < len(b.items) else a.items[i]
            items.append(ite(c, x, y))
        return SList(items, z3.If(c, a.n, b.n))
    if isinstance(a, SList) or isinstance(b, SList):
        raise Unsupported("merging a list with a non-list value")
    if z3.is_real(a) and z3.is_int(b):
        b = z3.ToReal(b)
    elif z3.is_int(a) and z3.is_real(b):
        a = z3.ToReal(a)
    return z3.If(c, a, b)


def to_real(x: Any) -> Any:
    return z3.ToReal(x) if z3.is_int(x) else x


def zfloor(x: Any) -> Any:
    return z3.ToInt(x) if z3.is_real(x) else x


def zceil(x: Any) -> Any:
    return -z3.ToInt(-x) if z3.is_real(x) else x


def zround(x: Any) -> Any:
    return z3.ToInt(x + z3.RealVal(Fraction(1, 2))) if z3.is_real(x) else x


def _numeral(x: Any) -> bool:
    return z3.is_int_value(x) or z3.is_rational_value(x)


def _eq(a: Any, b: Any) -> Any:
    if isinstance(a, SList) or isinstance(b, SList):
        raise Unsupported("list equality")
    return a == b
