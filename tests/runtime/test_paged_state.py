"""A ledger file's big state tables page (runtime/paged.py): the same outcomes, the same
file, and a rejected event still changes nothing.

``paged.PAGE_CAP`` is set low so that a few thousand events page every record table and
the meta table (deadline markers); the reference is the same stream with paging out of
reach.  Real SQLite files throughout."""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

import pytest

from charter.compiler.pipeline import Compilation
from charter.runtime import paged
from charter.runtime.api import open_runtime
from charter.runtime.paged import GONE, Pager, PagedTable, trimmed
from helpers import GIG_POLICY, gig_events

POLICY = Compilation.from_path(GIG_POLICY).ir
EVENTS = list(gig_events(2500, seed=3))


def _file_rows(path: Path) -> dict[str, str]:
    """A digest of every table a ledger file keeps, row by row."""
    c = sqlite3.connect(path)
    try:
        out = {}
        for t in ("journal", "state", "account_block", "checkpoint", "meta"):
            h = hashlib.sha256()
            for r in c.execute(f"SELECT * FROM {t} ORDER BY 1, 2"):
                h.update(repr(r).encode())
            out[t] = h.hexdigest()
        return out
    finally:
        c.close()


def _settle(path: Path, cap: int, batch: int, events: list, monkeypatch) -> tuple[list, object]:
    monkeypatch.setattr(paged, "PAGE_CAP", cap)
    rt = open_runtime(POLICY, str(path), batch=batch)
    outs = [(o.applied, getattr(o, "code", None), getattr(o, "journal_hash", None))
            for o in map(rt.submit, events)]
    kinds = (type(rt.state.records["Task"]), type(rt.state.meta), type(rt.state.balances))
    rows = rt.state_rows()
    rt.close()
    return outs, (kinds, rows)


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> tuple[list, list, dict]:
    path = tmp_path_factory.mktemp("ref") / "l.sqlite"
    mp = pytest.MonkeyPatch()
    try:
        outs, (kinds, rows) = _settle(path, 10**9, 1000, EVENTS, mp)
    finally:
        mp.undo()
    assert kinds == (dict, dict, dict)  # the reference never paged
    return outs, rows, _file_rows(path)


@pytest.mark.parametrize("cap, batch", [(8, 1), (16, 1000), (4, 7), (24, 250)])
def test_a_paged_run_gives_the_same_outcomes_state_and_file(reference, tmp_path, monkeypatch,
                                                           cap, batch):
    outs, (kinds, rows) = _settle(tmp_path / "l.sqlite", cap, batch, EVENTS, monkeypatch)
    assert kinds == (PagedTable,) * 3  # records, deadline markers and balances did page
    ref_outs, ref_rows, ref_file = reference
    assert outs == ref_outs
    assert rows == ref_rows
    assert _file_rows(tmp_path / "l.sqlite") == ref_file


def test_a_reopened_paged_ledger_continues_as_one_run_would(reference, tmp_path, monkeypatch):
    path = tmp_path / "l.sqlite"
    half = len(EVENTS) // 2
    first, _ = _settle(path, 8, 100, EVENTS[:half], monkeypatch)
    second, (kinds, rows) = _settle(path, 8, 100, EVENTS[half:], monkeypatch)
    assert kinds == (PagedTable,) * 3
    ref_outs, ref_rows, ref_file = reference
    assert first + second == ref_outs
    assert rows == ref_rows
    assert _file_rows(path) == ref_file


def test_a_rejected_event_changes_nothing_in_paged_tables(tmp_path, monkeypatch):
    """Deadlines fire inside an event that is then rejected: the refunds, the closed tasks
    and the fired markers are all undone, in tables that page (balances included)."""
    monkeypatch.setattr(paged, "PAGE_CAP", 4)
    rt = open_runtime(POLICY, str(tmp_path / "l.sqlite"), batch=1)
    n = 0

    def ev(typ: str, sub: str, t: int, **args) -> object:
        nonlocal n
        n += 1
        return rt.submit({"id": f"e{n}", "type": typ, "submitter": sub, "time": t,
                          "args": args})

    assert ev("appoint", "operator", 1, gateway="gw").applied
    assert ev("join", "ann", 2).applied
    assert ev("deposit", "gw", 3, to="ann", amount=100_000).applied
    for i in range(10):
        assert ev("post", "ann", 10 + i, id=f"t{i}", budget=100, duration=100).applied
    assert ev("deposit", "gw", 500, to="ann", amount=1).applied  # fires 10 deadlines
    for i in range(10):
        assert ev("post", "ann", 600 + i, id=f"u{i}", budget=100, duration=100).applied
    st = rt.state
    assert {type(st.records["Task"]), type(st.meta), type(st.balances)} == {PagedTable}
    before = rt.state_rows()
    out = ev("complete", "ann", 5000, id="u3", quality=3)  # u0..u9 fire, then it is refused
    assert not out.applied and "task is closed" in out.message
    assert rt.state_rows() == before
    # and the deadlines are still due: the next applied event fires them
    got = ev("deposit", "gw", 5001, to="ann", amount=1)
    assert got.applied and len(got.timers) == 10
    rt.close()


class _Rows:
    """A table's rows as a file would keep them (a dict), read through a Pager."""

    def __init__(self, rows: dict) -> None:
        self.rows = rows
        self.pager = Pager(lambda k: self.rows.get(k, GONE), lambda: iter(sorted(self.rows.items())))


# (operation on the table, expected result): after the switch, against the same on a dict
OPS = [
    ("get hit", lambda t: t.get("a"), 1),
    ("get miss", lambda t: t.get("zz", "d"), "d"),
    ("in", lambda t: ("b" in t, "zz" in t), (True, False)),
    ("getitem", lambda t: t["c"], 3),
    ("len", lambda t: len(t), 4),
    ("set new", lambda t: (t.__setitem__("e", 5), len(t), t["e"])[1:], (5, 5)),
    ("set old", lambda t: (t.__setitem__("a", 9), len(t), t["a"])[1:], (4, 9)),
    ("del", lambda t: (t.__delitem__("a"), len(t), "a" in t, t.get("a"))[1:], (3, False, None)),
    ("pop", lambda t: (t.pop("b"), t.pop("b", "x"), len(t)), (2, "x", 3)),
    ("items", lambda t: (t.pop("a"), t.__setitem__("e", 5), sorted(t.items()))[2],
     [("b", 2), ("c", 3), ("d", 4), ("e", 5)]),
    ("keys", lambda t: sorted(t), ["a", "b", "c", "d"]),
    ("setdefault", lambda t: (t.setdefault("a", 0), t.setdefault("f", 6), len(t)), (1, 6, 5)),
    ("bool", lambda t: bool(t), True),
]


@pytest.mark.parametrize("name, op, want", OPS, ids=[o[0] for o in OPS])
def test_a_paged_table_reads_like_the_dict_it_replaces(name, op, want):
    rows = _Rows({"a": 1, "b": 2, "c": 3, "d": 4})
    table = trimmed(dict(rows.rows), rows.pager, 2)
    assert type(table) is PagedTable and dict.__len__(table) == 1  # paged, half the cap kept
    assert op(table) == want
    assert op(dict(rows.rows)) == want  # the same operation on a plain dict agrees
    missing = pytest.raises(KeyError)
    with missing:
        table["zz"]


def test_a_small_table_or_one_without_a_file_never_pages():
    t = {"a": 1}
    assert trimmed(t, None, 0) is t
    assert trimmed(t, _Rows({"a": 1}).pager, 1) is t


def test_opening_a_big_ledger_pages_while_it_loads(reference, tmp_path, monkeypatch):
    """Rows past the cap are counted, not held; fired deadlines are not armed again."""
    path = tmp_path / "l.sqlite"
    _settle(path, 10**9, 1000, EVENTS, monkeypatch)  # written whole, never paged
    monkeypatch.setattr(paged, "PAGE_CAP", 8)
    rt = open_runtime(POLICY, str(path))
    tables = tasks, meta, bal = rt.state.records["Task"], rt.state.meta, rt.state.balances
    assert all(type(t) is PagedTable and dict.__len__(t) <= 8 for t in tables)
    assert len(rt.state.asset_of_acc) <= 2 * 8
    ref_outs, ref_rows, _ = reference
    assert len(tasks) == sum(1 for r in ref_rows if r[0] == "record")
    assert rt.state_rows() == ref_rows
    fired = {key[3:] for kind, key, _ in ref_rows if kind == "meta" and key.startswith("f0:")}
    armed = {key for _, key in rt.state.heaps["Task.deadline.passes"]}
    assert fired and armed and not armed & fired
    rt.close()


@pytest.mark.parametrize("as_json", [True, False])
def test_charter_run_reports_the_balances_of_a_paged_ledger(tmp_path, monkeypatch, as_json):
    """The summary is read before the ledger closes (a paged table reads the file)."""
    import json

    from helpers import invoke

    events = tmp_path / "events.jsonl"
    events.write_text("".join(json.dumps(e) + "\n" for e in EVENTS[:1500]))
    flags = ["--json"] if as_json else []
    got = {}
    for cap in (10**9, 8):
        monkeypatch.setattr(paged, "PAGE_CAP", cap)
        for old in tmp_path.glob("l.sqlite*"):  # the same path both times (it is printed)
            old.unlink()
        r = invoke("run", GIG_POLICY, events, "--db", tmp_path / "l.sqlite", "--batch", "100",
                   "-q", *flags)
        assert r.exit_code == 0, r.output
        # the text: what follows the counts (reasons, the balance table, the journal head)
        got[cap] = json.loads(r.output)["balances"] if as_json else \
            r.output.split("rejected:")[1]
    assert got[8] == got[10**9] and "party:" in str(got[8])
