"""The reference interpreter (``runtime/reference.py``) is an independent oracle for the engine.

* it imports nothing of the engine (no ``codegen``, ``pygen`` or ``semantics``);
* its split arithmetic, written again from the definitions, agrees with the engine's
  (``runtime/semantics.py``) and with the unit-by-unit statement of the divisor methods;
* on a policy that uses every split method, minimum and cap, random event sequences give
  the same receipts and rejections, byte-identical journals and identical states on the
  engine and on the reference;
* a policy using an IR node the reference has no rule for is refused, naming the node.
"""

from __future__ import annotations

import ast
import sys
from fractions import Fraction
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from charter.compiler.pipeline import Compilation
from charter.runtime import reference as R
from charter.runtime import semantics as sem
from charter.runtime.api import open_runtime
from charter.runtime.values import PolicyNotExecutable

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))

import fuzz_events as F  # noqa: E402

HERE = Path(__file__).parent


def test_reference_imports_nothing_of_the_engine():
    tree = ast.parse((ROOT / "runtime" / "reference.py").read_text())
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            imported.add((node.module or "").split(".")[-1])
            imported.update(a.name for a in node.names)
        elif isinstance(node, ast.Import):
            imported.update(a.name.split(".")[-1] for a in node.names)
    assert imported.isdisjoint({"codegen", "pygen", "semantics", "engine", "settle"}), imported


_weights = st.lists(st.integers(min_value=0, max_value=50), min_size=0, max_size=12)


@settings(max_examples=400, deadline=None, derandomize=True)
@given(
    amount=st.integers(min_value=0, max_value=10**6) | st.integers(min_value=0, max_value=40),
    weights=_weights,
    method=st.sampled_from(R.SPLIT_METHODS),
    minimum=st.none() | st.integers(min_value=0, max_value=30),
    cap=st.none() | st.integers(min_value=0, max_value=10**5),
)
def test_split_arithmetic_agrees_with_the_engine(amount, weights, method, minimum, cap):
    try:
        want = sem.split(amount, weights, method, minimum, cap)[0]
    except sem.SplitError as err:
        with pytest.raises(R.SplitRefused) as got:
            R.split_shares(amount, weights, method, minimum, cap)
        assert (got.value.code, got.value.message) == (err.code, err.message)
        return
    got = R.split_shares(amount, weights, method, minimum, cap)
    assert got == want
    assert sum(got) <= amount and all(s >= 0 for s in got)


@settings(max_examples=300, deadline=None, derandomize=True)
@given(
    rest=st.integers(min_value=1, max_value=120),
    weights=st.lists(st.integers(min_value=0, max_value=40), min_size=1, max_size=8).filter(any),
    c=st.sampled_from([Fraction(1), Fraction(1, 2)]),
)
def test_divisor_methods_are_the_unit_by_unit_procedure(rest, weights, c):
    assert R._highest_averages(rest, weights, c) == R.highest_averages_by_units(rest, weights, c)


def test_huge_divisor_split_is_cheap():
    weights = [3, 1, 4, 1, 5, 9, 2, 6, 5, 3] * 100
    for method in ("dhondt", "sainte_lague"):
        shares = R.split_shares(10**15 + 7, weights, method, None, None)
        assert sum(shares) == 10**15 + 7
        assert shares == sem.split(10**15 + 7, weights, method)[0]


# ------------------------------------------------------------------ engine vs reference


@pytest.fixture(scope="module")
def splits_policy():
    return Compilation.from_path(HERE / "splits.charter").ir


_split_event = st.tuples(
    st.sampled_from(["lr", "seq", "dh", "sl", "dust", "bounded", "weighted"]),
    st.integers(min_value=-5, max_value=10**7),
    st.integers(min_value=0, max_value=2000),
    st.integers(min_value=0, max_value=10**6),
    st.integers(min_value=0, max_value=6),
)


@settings(
    max_examples=60, deadline=None, derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)  # fmt: skip
@given(
    weights=st.lists(st.integers(min_value=0, max_value=1000), min_size=0, max_size=25),
    funds=st.integers(min_value=0, max_value=10**9),
    splits=st.lists(_split_event, min_size=1, max_size=12),
)
def test_every_split_method_settles_alike(splits_policy, weights, funds, splits):
    events = [
        {"id": f"j{i}", "type": "join", "submitter": f"m{i:02d}", "time": 1, "args": {"w": w}}
        for i, w in enumerate(weights)
    ]
    events.append({"id": "fund", "type": "fund", "submitter": "clock", "time": 2,
                   "args": {"amount": funds}})  # fmt: skip
    by = f"m{0:02d}" if weights else "nobody"
    for i, (kind, amount, lo, hi, how) in enumerate(splits):
        args = {"amount": amount}
        if kind == "bounded":
            args.update(lo=lo, hi=hi, how=how % 5)
        elif kind == "weighted":
            args["d"] = how + 1
        events.append({"id": f"s{i}", "type": kind, "submitter": by, "time": 3 + i, "args": args})
    _same(splits_policy, events)


def _same(policy, events, **kw):
    engine = open_runtime(policy, backend="python", **kw)
    ref = open_runtime(policy, backend="reference", **kw)
    for ev in events:
        a, b = engine.submit(ev), ref.submit(ev)
        assert F._outcome_key(a) == F._outcome_key(b), (ev, a, b)
        if not a.applied:
            assert a.span == b.span, (ev, a, b)
    assert F.same_ledger(engine, ref) is None
    return engine


def test_splits_policy_pays_by_every_method(splits_policy):
    """Not only rejections: the sequences above apply splits of every method."""
    events = [
        {"id": f"j{i}", "type": "join", "submitter": f"m{i}", "time": 1, "args": {"w": w}}
        for i, w in enumerate([5, 3, 2, 0, 7])
    ]
    events.append({"id": "f", "type": "fund", "submitter": "clock", "time": 2,
                   "args": {"amount": 10**6}})  # fmt: skip
    for i, kind in enumerate(["lr", "seq", "dh", "sl", "dust"]):
        events.append({"id": kind, "type": kind, "submitter": "m0", "time": 3 + i,
                       "args": {"amount": 1001}})  # fmt: skip
    rt = _same(splits_policy, events)
    applied = [o for o in (row.data() for row in rt.store.journal()) if o["postings"]]
    assert len(applied) == 6


def test_step_budget_named_alike(splits_policy):
    events = [
        {"id": f"j{i}", "type": "join", "submitter": f"m{i:03d}", "time": 1, "args": {"w": i}}
        for i in range(60)
    ]
    events.append({"id": "f", "type": "fund", "submitter": "clock", "time": 2,
                   "args": {"amount": 10**6}})  # fmt: skip
    events.append({"id": "s", "type": "dh", "submitter": "m001", "time": 3,
                   "args": {"amount": 999}})  # fmt: skip
    engine = _same(splits_policy, events, step_budget=30)
    out = engine.submit(dict(events[-1], id="s2"))
    assert not out.applied and out.code == "step_budget" and "split of Credit" in out.message


def test_a_node_without_a_rule_is_named(splits_policy, monkeypatch):
    monkeypatch.delattr(R.Interpreter, "s_Split")
    with pytest.raises(PolicyNotExecutable, match="no rule for the IR node Split"):
        open_runtime(splits_policy, backend="reference")


@pytest.fixture(scope="module")
def locals_policy():
    return Compilation.from_path(HERE / "locals.charter").ir


@settings(max_examples=40, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])  # fmt: skip
@given(
    funds=st.integers(min_value=0, max_value=10**8),
    calls=st.lists(
        st.tuples(
            st.sampled_from(["vest", "grow", "root"]),
            st.integers(min_value=-3, max_value=10**6),
            st.integers(min_value=-1, max_value=30),
            st.sampled_from(["0%", "5%", "33%", "50%", "51%"]),
        ),
        min_size=1, max_size=8,
    ),
)  # fmt: skip
def test_vars_loops_and_functions_settle_alike(locals_policy, funds, calls):
    events = [
        {"id": "j", "type": "join", "submitter": "ann", "time": 1, "args": {}},
        {"id": "f", "type": "fund", "submitter": "clock", "time": 1, "args": {"amount": funds}},
    ]
    for i, (kind, amount, n, rate) in enumerate(calls):
        args = (
            {"base": amount, "months": n, "rate": rate} if kind == "vest"
            else {"amount": amount, "n": n} if kind == "grow"
            else {"amount": amount % 1000, "x": amount * n}
        )  # fmt: skip
        events.append({"id": f"c{i}", "type": kind, "submitter": "ann", "time": 2, "args": args})
    _same(locals_policy, events)


def test_vars_and_loops_apply(locals_policy):
    events = [
        {"id": "j", "type": "join", "submitter": "ann", "time": 1, "args": {}},
        {"id": "f", "type": "fund", "submitter": "clock", "time": 1, "args": {"amount": 10**8}},
        {"id": "v", "type": "vest", "submitter": "ann", "time": 2,
         "args": {"base": "10", "months": 3, "rate": "5%"}},
        {"id": "g", "type": "grow", "submitter": "ann", "time": 2, "args": {"amount": 100, "n": 2}},
        {"id": "r", "type": "root", "submitter": "ann", "time": 2, "args": {"amount": 1000, "x": 2}},
    ]  # fmt: skip
    rt = _same(locals_policy, events)
    # vest: 10 + 11 + 12.10 = 33.10; grow: 100 + 100 + 105 + floor(110.25) = 415 minor units;
    # root: floor(1000 * (1.414 - sqrt(2/7) to 2 places = 0.53)) = 884
    assert rt.balance("ann", "Credit") == 3310 + 415 + 884
