"""Bounded list fields (issue 17, item 9) through every layer.

The policy beside this file (``lists.charter``) holds the runtime cases as its `test`
blocks; here they run on the three backends with one journal, a hypothesis test drives
random push/remove sequences against a plain Python list on every backend, a SQLite ledger
with list rows is reopened, audited and replayed, hostile event arguments of every JSON type
are rejected without a change, and the verifier proves a correct twin, refutes buggy twins
and reports a list it does not model as unknown.
"""
from __future__ import annotations

import functools
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from charter.compiler import ir
from charter.compiler import verify as V
from charter.compiler.fmt import format_source
from charter.compiler.pipeline import Compilation
from charter.runtime.api import audit_ledger, open_runtime, replay
from charter.runtime.testing import run_tests

POLICY = Path(__file__).resolve().parent / "lists.charter"
BACKENDS = ("python", "closures", "reference")


@functools.lru_cache(maxsize=1)
def _pol() -> ir.Policy:
    return Compilation.from_path(POLICY).ir


def test_policy_tests_pass_on_every_backend_with_one_journal():
    runs = {b: run_tests(_pol(), backend=b) for b in BACKENDS}
    for b, res in runs.items():
        assert res and all(r.passed for r in res), (b, [(r.name, r.failures) for r in res])
    want = [(r.name, r.outcomes, r.journal_hash) for r in runs["reference"]]
    for b in ("python", "closures"):
        assert [(r.name, r.outcomes, r.journal_hash) for r in runs[b]] == want


def test_the_forms_format_and_the_ir_round_trips():
    text = POLICY.read_text("utf-8")
    assert format_source(text) == text
    for form in ("stakes: list of Stake max 4", "push id to Book(p).stakes",
                 "remove id from Book(p).stakes", "remove Book(p).stakes[i]"):
        assert form in text
    pol = _pol()
    assert pol.record("Book").fields[0].type == ir.TList(inner=ir.TRecord(record="Stake"),
                                                         bound=4)
    assert ir.from_data(ir.to_data(pol)) == pol


def _submit(rt, n, kind, sub, **args):
    return rt.submit({"id": f"e{n}", "type": kind, "submitter": sub, "time": n, "args": args})


ROWS_SRC = """policy rows version "1"
record Book { stakes: list of text max 3, fracs: list of ratio max 2 }
on open() by p: party {
    create Book(p) { fracs = [1 / 3, 2] }
}
on add(id: text) by p: party {
    push id to Book(p).stakes
}
on drop(i: int) by p: party {
    remove Book(p).stakes[i]
}
"""


def test_a_sqlite_ledger_with_list_rows_reopens_audits_and_replays(tmp_path):
    from fractions import Fraction

    pol = Compilation.from_text(ROWS_SRC, "rows.charter").ir
    db = tmp_path / "lists.db"
    rt = open_runtime(pol, str(db))
    assert _submit(rt, 1, "open", "@a").applied
    for i in range(4):
        _submit(rt, 2 + i, "add", "@a", id=f"s{i}|\u00e9")
    assert _submit(rt, 9, "drop", "@a", i=1).applied
    rt.close()
    again = open_runtime(None, str(db))
    book = again.records("Book")["a"]
    assert book["stakes"] == ("s0|\u00e9", "s2|\u00e9")
    assert book["fracs"] == (Fraction(1, 3), 2)
    assert not _submit(again, 10, "drop", "@a", i=5).applied
    assert _submit(again, 11, "drop", "@a", i=0).applied
    assert again.records("Book")["a"]["stakes"] == ("s2|\u00e9",)
    again.close()
    assert audit_ledger(str(db)).ok
    assert replay(str(db)).ok


# ---- random sequences against a Python list -------------------------------------------

OPS = st.lists(st.one_of(
    st.tuples(st.just("stake"), st.sampled_from("abcdef")),
    st.tuples(st.just("unstake"), st.sampled_from("abcdef")),
    st.tuples(st.just("drop_at"), st.integers(-2, 5)),
), max_size=14)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=OPS)
def test_random_sequences_follow_a_python_list_on_every_backend(ops):
    model: list[str] = []
    want = []
    for op, x in ops:
        if op == "stake":
            ok = len(model) < 4 and x not in model
            if ok:
                model.append(x)
        elif op == "unstake":
            ok = x in model
            if ok:
                model.remove(x)  # the first equal item; the others keep their order
        else:
            ok = 0 <= x < len(model)
            if ok:
                del model[x]
        want.append(ok)
    want_list = tuple(model)
    journals = set()
    for backend in BACKENDS:
        rt = open_runtime(_pol(), backend=backend)
        rt.genesis_apply(lambda s: s.set_role("Member", "a", {}))
        assert _submit(rt, 0, "open", "@a").applied
        got = []
        for n, (op, x) in enumerate(ops, start=1):
            args = {"stake": {"id": x, "amount": 1}, "unstake": {"id": x},
                    "drop_at": {"i": x}}[op]
            before = (rt.head, rt.balances(), rt.records("Book"), rt.records("Stake"))
            out = _submit(rt, n, op, "@a", **args)
            if not out.applied:
                assert out.code and out.message
                assert (rt.head, rt.balances(), rt.records("Book"),
                        rt.records("Stake")) == before
            got.append(out.applied)
        assert got == want, backend
        assert rt.records("Book")["a"]["stakes"] == want_list, backend
        journals.add(rt.head)
    assert len(journals) == 1


# ---- hostile arguments -------------------------------------------------------------------

_JSON = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-10**30, max_value=10**30)
    | st.floats(allow_nan=True) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=6) | st.dictionaries(st.text(max_size=4), inner,
                                                                 max_size=3),
    max_leaves=10)

ARGS_SRC = """policy a version "1"
role Member
record Team { names: list of party max 3 }
on form(id: text, names: list of party max 3) by p: Member {
    create Team(id) { names = names }
}
on add(id: text, more: list of party) by p: Member {
    for each m in more {
        push m to Team(id).names
    }
}
"""


@functools.lru_cache(maxsize=1)
def _args_pol() -> ir.Policy:
    return Compilation.from_text(ARGS_SRC, "a.charter").ir


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(kind=st.sampled_from(["form", "add", "stake", "unstake", "drop_at"]), a=_JSON, b=_JSON)
def test_hostile_arguments_are_rejected_without_a_change(kind, a, b):
    lists = kind in ("form", "add")
    pol = _args_pol() if lists else _pol()
    names = {"form": ("id", "names"), "add": ("id", "more"), "stake": ("id", "amount"),
             "unstake": ("id", "x"), "drop_at": ("i", "x")}[kind]
    outcomes = set()
    for backend in BACKENDS:
        rt = open_runtime(pol, backend=backend)
        rt.genesis_apply(lambda s: s.set_role("Member", "m", {}))
        if lists:
            assert _submit(rt, 0, "form", "@m", id="t", names=["@x"]).applied
        else:
            assert _submit(rt, 0, "open", "@m").applied
            assert _submit(rt, 1, "stake", "@m", id="s", amount=1).applied
        before = (rt.head, rt.seq, rt.balances(), rt.records("Team" if lists else "Book"))
        out = _submit(rt, 5, kind, "@m", **dict(zip(names, (a, b))))
        if not out.applied:
            assert out.code and out.message
            assert (rt.head, rt.seq, rt.balances(),
                    rt.records("Team" if lists else "Book")) == before
        else:
            for rec in rt.records("Team").values() if lists else rt.records("Book").values():
                assert len(rec["names" if lists else "stakes"]) <= (3 if lists else 4)
        outcomes.add((out.journal_hash,) if out.applied else (out.code, out.message))
    assert len(outcomes) == 1, outcomes


def test_an_argument_longer_than_its_bound_is_refused():
    rt = open_runtime(_args_pol())
    rt.genesis_apply(lambda s: s.set_role("Member", "m", {}))
    out = _submit(rt, 0, "form", "@m", id="t", names=["@a", "@b", "@c", "@d"])
    assert not out.applied and out.code == "bad_argument" and "at most 3" in out.message
    assert _submit(rt, 1, "form", "@m", id="t", names=["@a", "@b"]).applied
    out = _submit(rt, 2, "add", "@m", id="t", more=["@c", "@d"])
    assert not out.applied and out.code == "list_full"
    assert rt.records("Team")["t"]["names"] == ("a", "b")  # nothing of the event applied


# ---- verifier twins ----------------------------------------------------------------------

TWIN = """
policy ltwin version "1.0"

role Member
record Queue { waiting: list of party max 3, served: int within 0..100 = 0 }

on open(id: text) by p: Member
    ensures len(Queue(id).waiting) == 1
{
    create Queue(id) { waiting = [p] }
}

on join(id: text) by p: Member
    ensures len(Queue(id).waiting) == old(len(Queue(id).waiting)) + 1
    ensures Queue(id).waiting[len(Queue(id).waiting) - 1] == p
    ensures len(Queue(id).waiting) <= 3
{
    push p to Queue(id).waiting
}

on serve(id: text) by clock
    ensures len(Queue(id).waiting) == old(len(Queue(id).waiting)) - 1
    ensures Queue(id).waiting[0] == old(Queue(id).waiting[1])
{
    require len(Queue(id).waiting) >= 2 else "serve while two wait"
    remove Queue(id).waiting[0]
}

on leave(id: text, who: party) by clock
    ensures len(Queue(id).waiting) == old(len(Queue(id).waiting)) - 1
    ensures old(Queue(id).waiting[0]) == who or Queue(id).waiting[0] == old(Queue(id).waiting[0])
{
    remove who from Queue(id).waiting
}
"""


def _status(text: str) -> dict[str, str]:
    c = Compilation.from_text(text, "ltwin.charter")
    assert not [d for d in c.diagnostics if d.severity == "error"], c.diagnostics
    res = {r.name: r.status for r in V.verify(c.ir, V.Options(), use_cache=False)}
    return {k: v for k, v in res.items() if ".ensures." in k}


def test_correct_twin_is_proved():
    got = _status(TWIN)
    assert got and set(got.values()) == {"proved"}, got


@pytest.mark.parametrize("old,new,broken", [
    # the tail is served instead of the head
    ("remove Queue(id).waiting[0]", "remove Queue(id).waiting[len(Queue(id).waiting) - 1]",
     "serve.ensures.2"),
    # the head leaves whoever asked
    ("remove who from Queue(id).waiting", "remove Queue(id).waiting[0]", "leave.ensures.2"),
    # a bound of 4 lets the queue grow past 3
    ("waiting: list of party max 3", "waiting: list of party max 4", "join.ensures.3"),
])
def test_buggy_twins_are_refuted(old, new, broken):
    assert old in TWIN
    got = _status(TWIN.replace(old, new))
    assert got.pop(broken) == "refuted", got
    assert set(got.values()) == {"proved"}, got


def test_a_list_field_past_the_modelled_size_is_unknown_not_proved():
    got = _status(TWIN.replace("max 3", "max 40").replace(
        "    ensures len(Queue(id).waiting) <= 3\n", ""))
    assert got["join.ensures.1"] == "unknown"
    assert got["serve.ensures.1"] == "unknown"


def test_the_event_schema_states_the_bound():
    from charter.compiler.schemas import args_schema

    pol = _args_pol()
    schema = args_schema(pol, pol.handler("form"))
    names = schema["properties"]["names"]
    assert names["type"] == "array" and names["maxItems"] == 3
    assert names["description"] == "list of party max 3"
    assert "maxItems" not in args_schema(pol, pol.handler("add"))["properties"]["more"]


ARG_TWIN = """policy la version "1"
role Member
record Team { names: list of party max FIELD }
on form(id: text, names: list of party max ARG) by p: Member
    ensures len(Team(id).names) <= 2
{
    create Team(id) { names = names }
}
"""


@pytest.mark.parametrize("field,arg,want", [
    ("2", "2", "proved"),   # the argument's bound
    ("2", "3", "proved"),   # the field's bound: a longer argument is refused (fit)
    ("3", "3", "refuted"),  # three names fit both
])
def test_list_bounds_of_arguments_and_fields_are_encoded(field, arg, want):
    got = _status(ARG_TWIN.replace("FIELD", field).replace("ARG", arg))
    assert got == {"form.ensures.1": want}
