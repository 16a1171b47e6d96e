"""``charter audit``, ``charter replay`` and ``charter run --memory`` in bounded memory
(runtime/spill.py, runtime/auditpass.py): with caps set tiny, so that a ledger of a
thousand-odd events pages the rebuilt state over a scratch file and the audit's sums
and index pairs go through theirs, every outcome is byte for byte the uncapped one --
on an intact ledger and on ledgers edited in each way the audit and replay report.
Real SQLite files and the real CLI throughout."""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

import pytest

from charter.compiler.pipeline import Compilation
from charter.runtime import auditpass, paged, spill
from charter.runtime.api import open_runtime
from charter.runtime.store import MemoryStore
from helpers import GIG_POLICY, gig_events, invoke

POLICY = Compilation.from_path(GIG_POLICY).ir
EVENTS = list(gig_events(1500, seed=5))


@pytest.fixture(scope="module")
def ledger(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("bounded") / "gig.sqlite"
    rt = open_runtime(POLICY, str(path), batch=100)
    for e in EVENTS:
        rt.submit(e)
    rt.close()
    return path


class Counted:
    """How many rows went to the scratch files (so a test knows the caps were reached)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch):
        self.state = self.sums = self.index = 0
        write, spill_sums, check = spill.Scratch.write, auditpass.Sums._spill, \
            auditpass.IndexCheck._check

        def counted_write(s, kind, upserts, deletes):  # type: ignore[no-untyped-def]
            self.state += len(upserts)
            return write(s, kind, upserts, deletes)

        def counted_spill(s):  # type: ignore[no-untyped-def]
            self.sums += len(s.delta)
            return spill_sums(s)

        def counted_check(s, below):  # type: ignore[no-untyped-def]
            self.index += below is not None
            return check(s, below)

        monkeypatch.setattr(spill.Scratch, "write", counted_write)
        monkeypatch.setattr(auditpass.Sums, "_spill", counted_spill)
        monkeypatch.setattr(auditpass.IndexCheck, "_check", counted_check)


def _capped(monkeypatch: pytest.MonkeyPatch, cap: int) -> Counted:
    monkeypatch.setattr(spill, "CAP", cap)
    monkeypatch.setattr(spill, "EVERY", 7)
    monkeypatch.setattr(auditpass, "CAP", cap)
    monkeypatch.setattr(auditpass, "EVERY", 5)
    return Counted(monkeypatch)


def _sql(path: Path, *statements: str) -> None:
    c = sqlite3.connect(path)
    try:
        for s in statements:
            c.execute(s)
        c.commit()
    finally:
        c.close()


ESCROW = "(SELECT key FROM state WHERE kind = 'balance' AND key LIKE 'escrow:%' " \
    "ORDER BY key LIMIT 1 OFFSET 40)"
EDITS = {
    "intact": (),
    "balance edited": (f"UPDATE state SET value = '12345' WHERE kind = 'balance' AND key = "
                       f"{ESCROW}",),
    "balance deleted": (f"DELETE FROM state WHERE kind = 'balance' AND key = {ESCROW}",),
    "balances added first and last": (
        "INSERT INTO state VALUES ('balance', '!first', '5')",
        "INSERT INTO state VALUES ('balance', '~last', '0')",
        "INSERT INTO state VALUES ('balance', 'party:\u00e9\U0001F600:Credit', '-7')"),
    "record edited": ("UPDATE state SET value = replace(value, 'false', 'true') "
                      "WHERE kind = 'record' AND key = (SELECT key FROM state WHERE kind = "
                      "'record' ORDER BY key LIMIT 1 OFFSET 100)",),
    "index rows deleted": ("DELETE FROM account_block WHERE (account, block) IN (SELECT "
                           "account, block FROM account_block ORDER BY block, account "
                           "LIMIT 3 OFFSET 50)",),
    "index rows added": ("INSERT INTO account_block VALUES (12345, 0)",
                         "INSERT INTO account_block VALUES (7, 1)"),
    "marker deleted": ("DELETE FROM state WHERE kind = 'meta' AND key = (SELECT key FROM "
                       "state WHERE kind = 'meta' AND key LIKE 'f%' ORDER BY key LIMIT 1 "
                       "OFFSET 3)",),
}


@pytest.mark.parametrize("edit", list(EDITS))
@pytest.mark.parametrize("command", ["audit", "replay"])
def test_capped_audit_and_replay_say_byte_for_byte_what_uncapped_ones_say(
        ledger, tmp_path, monkeypatch, edit, command):
    path = tmp_path / "gig.sqlite"
    shutil.copy(ledger, path)
    _sql(path, *EDITS[edit])
    want = invoke(command, path, "--json")
    counted = _capped(monkeypatch, 4)
    got = invoke(command, path, "--json")
    assert (got.exit_code, got.output) == (want.exit_code, want.output)
    # replay rebuilds the state and the journal; the index is the audit's to check
    intact = edit == "intact" or (command == "replay" and edit.startswith("index"))
    assert want.exit_code == (0 if intact else 1)
    # the caps were reached: the rebuilt state paged, the audit's sums and index spilled
    assert counted.state > 100
    if command == "audit":
        assert counted.sums > 100 and counted.index > 10
    plain = invoke(command, path)  # and the text report too
    assert plain.output == _uncapped(monkeypatch, command, path).output


def _uncapped(monkeypatch: pytest.MonkeyPatch, command: str, path: Path):  # type: ignore[no-untyped-def]
    monkeypatch.setattr(spill, "CAP", paged.PAGE_CAP)
    monkeypatch.setattr(auditpass, "CAP", paged.PAGE_CAP)
    return invoke(command, path)


def test_capped_run_memory_gives_the_same_report(tmp_path, monkeypatch):
    events = tmp_path / "events.jsonl"
    events.write_text("".join(json.dumps(e) + "\n" for e in EVENTS))
    want = invoke("run", GIG_POLICY, events, "--memory", "--json", "-q")
    counted = _capped(monkeypatch, 4)
    got = invoke("run", GIG_POLICY, events, "--memory", "--json", "-q")
    assert (got.exit_code, got.output) == (want.exit_code, want.output)
    assert json.loads(got.output)["rejected"] > 50  # rejections undone through paged tables
    assert counted.state > 100


@pytest.mark.parametrize("cap", [2, 5, 12])
def test_a_spilling_store_settles_as_a_memory_store_does(monkeypatch, cap):
    """Outcomes, journal and state of the same events on a plain in-memory runtime and on
    one whose tables page over a scratch file (rejected events among them)."""
    ref = open_runtime(POLICY, MemoryStore(None))
    want = [(o.applied, getattr(o, "code", None), getattr(o, "journal_hash", None))
            for o in map(ref.submit, EVENTS)]
    monkeypatch.setattr(spill, "EVERY", 3)
    rt = open_runtime(POLICY, spill.SpillingStore(None, cap=cap))
    got = [(o.applied, getattr(o, "code", None), getattr(o, "journal_hash", None))
           for o in map(rt.submit, EVENTS)]
    assert got == want
    kinds = (type(rt.state.records["Task"]), type(rt.state.meta), type(rt.state.balances))
    assert kinds == (paged.PagedTable,) * 3
    assert rt.state_rows() == ref.state_rows()
    assert [r.entry for r in rt.store.journal()] == [r.entry for r in ref.store.journal()]
    scratch = rt.store.spiller.scratch
    rt.close()
    assert scratch is None or scratch.conn is None  # closed: SQLite deleted the file


def test_sums_come_back_in_the_order_python_sorts_keys():
    """The scratch table keeps keys as UTF-8 with surrogates passed: its order is code
    point order, as ``sorted`` gives (lone surrogates and astral characters included),
    and sums stay exact past 64 bits."""
    keys = ["b", "a\ud800", "a\U0001F600", "a\uffff", "a\ue000", "a", "", "a\x00", "\u00e9"]
    sums = auditpass.Sums(cap=2)
    want: dict[str, int] = {}
    for i, k in enumerate(keys * 3):
        v = (-1) ** i * (2**70 + i)
        sums.delta[k] = sums.delta.get(k, 0) + v
        want[k] = want.get(k, 0) + v
        sums.maybe_spill()
    assert list(sums.sorted_items()) == sorted(want.items())
    sums.close()
