"""The solver's search strategies keep every answer sound and the same every time.

* the small-witness search grows a collection only when Z3's refutation used its emptiness,
  and says *unsat* only for a question that is unsat with every collection full;
* a question asked in a context of its own costs the same resource units whatever was
  created (and freed) in the shared context before it;
* a split property proved from the split's own definition is proved in the handler too
  (it is a consequence of fewer assumptions), and a false one is still refuted.
"""

from __future__ import annotations

import pytest
import z3

from charter.compiler import verify as V
from charter.compiler.verify import solver as S
from verify_helpers import compile_text


def _slots(name: str, n: int) -> list:
    return [(z3.Int(f"{name}[{i}]"), z3.Bool(f"{name}[{i}]?")) for i in range(n)]


def _count(items: list) -> z3.ArithRef:
    return z3.Sum(*[z3.If(p, 1, 0) for _, p in items])


@pytest.mark.parametrize("need_a,need_b", [(0, 0), (1, 0), (2, 1), (3, 3), (1, 2)])
def test_small_witness_grows_only_what_is_needed(need_a, need_b):
    S.fresh_context()
    a, b = _slots("a", 3), _slots("b", 3)
    question = [_count(a) >= need_a, _count(b) >= need_b]
    got = S._small_witness(question, [a, b], S.Limits())
    assert got.status == "sat"
    present = lambda items: sum(  # noqa: E731
        z3.is_true(got.model.eval(p, model_completion=True)) for _, p in items)
    # a real witness of the question, with no more items than it needs
    assert (present(a), present(b)) == (need_a, need_b)


def test_small_witness_unsat_only_when_the_full_question_is():
    S.fresh_context()
    a = _slots("a", 3)
    # needs four items of a three-slot collection: unsat at every size
    assert S._small_witness([_count(a) >= 4], [a], S.Limits()).status == "unsat"
    # contradictory without any collection: unsat from the first step
    x = z3.Int("x")
    assert S._small_witness([x > 1, x < 1], [a], S.Limits()).status == "unsat"


def test_small_witness_limit_is_unknown():
    S.fresh_context()
    a = _slots("a", 3)
    x, y, z = z3.Ints("x y z")
    # a non-linear question no step decides within one resource unit
    hard = [x * x * x + y * y * y == z * z * z, x > 0, y > 0, _count(a) >= 2]
    got = S._small_witness(hard, [a], S.Limits(rlimit=1))
    assert got.status == "unknown" and got.why == "rlimit"


def test_own_context_costs_the_same_whatever_came_before():
    def ask() -> tuple[str, int]:
        x, y = z3.Ints("x y")
        q = [x * y == 391, x > 1, y > 1, x < y]
        before = S.stats().rlimit_used
        ans = S.solve(q, S.Limits(), own=True)
        assert ans.status == "sat" and ans.model.eval(x * y).as_long() == 391
        return ans.status, S.stats().rlimit_used - before

    S.fresh_context()
    first = ask()
    # clutter the shared context (terms created and freed), then ask again
    junk = [z3.Int(f"junk{i}") * z3.Int(f"junk{i + 1}") for i in range(500)]
    S.solve([z3.Sum(*junk) > 3], S.Limits())
    del junk
    assert ask() == first


SPLIT = """policy s version "1"
asset Credit: token, decimals 2
record Member {{
    who: party,
    weight: int = 0,
}}
pool fund of Credit
on join(id: text, weight: int) by p: party {{
    require weight >= 0 and weight <= 100 else "weight 0..100"
    create Member(id) {{ who = p, weight = weight }}
}}
on fund(amount: Credit) by p: party {{
    require amount > 0 Credit else "positive"
    transfer amount from p to fund
}}
on pay() by p: party {{
    split all of fund among m in Member to m.who by m.weight rounding {rounding}
}}
property fair: split in pay is proportional within {within}
"""


@pytest.mark.parametrize("rounding,within,status", [
    ("largest_remainder", "0.01 Credit", V.PROVED),
    ("largest_remainder", "0 Credit", V.REFUTED),
])
def test_split_property_from_the_split_alone(rounding, within, status):
    policy = compile_text(SPLIT.format(rounding=rounding, within=within))
    results = {r.name: r for r in V.verify(policy, V.Options(), use_cache=False)}
    assert results["fair"].status == status, results["fair"].message
    assert results["pay.rounding"].status == V.PROVED
