"""Hostile ledger files: any mutation of a real ledger either opens intact or is refused clearly.

Hypothesis picks mutations of a real SQLite ledger -- a byte anywhere in the
file, a truncation, a cell of any table set to a value of any type (null,
booleans, 64-bit extremes, floats, text, every JSON shape, deep nesting,
blobs), a cell set to another row's value of the same column, a row deleted or
duplicated -- and opens the result for writing.  It
must either open with exactly the original state, ids and head, or raise a
StoreError that names the file; never another exception.
``benchmarks/fuzz_ledger_files.py`` runs the same functions 100,000 times.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))
import fuzz_ledger_files as F  # noqa: E402


@pytest.fixture(scope="module")
def pristine(tmp_path_factory):
    d = tmp_path_factory.mktemp("fuzz")
    db, policy, snap = F.build_ledger(d)
    return db, policy, snap, db.stat().st_size, F.table_sizes(db), tmp_path_factory.mktemp("w")


json_values = st.recursive(  # every JSON type; integers beyond 64 bits only JSON can hold
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner,
                                                                max_size=4),
    max_leaves=12,
)
cell_values = st.one_of(
    st.sampled_from(F.HOSTILE),
    st.none(),
    st.booleans(),
    st.integers(-(2**63), 2**63 - 1),
    st.floats(allow_nan=True),
    st.text(),
    st.binary(max_size=64),
    json_values.map(lambda v: __import__("json").dumps(v)),
)


def mutations(size: int, sizes: dict[str, int]):
    tables = sorted(F.TABLES)
    return st.one_of(
        st.tuples(st.just("byte"), st.integers(0, size - 1), st.integers(0, 255)),
        st.tuples(st.just("byte"), st.integers(0, 99), st.integers(0, 255)),  # the header
        st.tuples(st.just("truncate"), st.integers(0, size - 1)),
        st.sampled_from(tables).flatmap(
            lambda t: st.tuples(
                st.just("cell"), st.just(t), st.sampled_from(F.TABLES[t]),
                st.integers(0, max(sizes[t], 1) - 1), cell_values,
            )
        ),
        st.tuples(st.sampled_from(["delete", "dup"]), st.sampled_from(tables),
                  st.integers(0, 200)),
        st.sampled_from(tables).flatmap(  # another row's genuine value, moved
            lambda t: st.tuples(
                st.just("swap"), st.just(t), st.sampled_from(F.TABLES[t]),
                st.integers(0, max(sizes[t], 1) - 1), st.integers(0, max(sizes[t], 1) - 1),
            )
        ),
    )


def test_mutated_ledger_files_open_intact_or_are_refused(pristine):
    db, policy, snap, size, sizes, work = pristine
    seen: set[str] = set()

    @settings(max_examples=300, deadline=None, derandomize=True,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(mutations(size, sizes))
    def check(m):
        seen.add(F.run_one(db, work, policy, snap, m))

    check()
    # the mutations reached every kind of outcome, so the oracle was exercised both ways
    assert "intact" in seen and "refused:LedgerIntegrityError" in seen
    assert "refused:NotALedgerError" in seen


@pytest.fixture(scope="module")
def old_ledgers(pristine):
    db = pristine[0]
    return [(p, p.stat().st_size, F.table_sizes(p))
            for p in (F.build_old_ledger(db, 3), F.build_old_ledger(db, 4))]


def test_mutated_ledger_files_export_or_are_refused(pristine, tmp_path):
    """An export without a warning writes exactly the intact ledger's bytes."""
    db, _policy, _snap, size, sizes, _work = pristine
    truth = F.export_truth(db)
    seen: set[str] = set()

    @settings(max_examples=120, deadline=None, derandomize=True,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                     HealthCheck.function_scoped_fixture])
    @given(mutations(size, sizes), st.sampled_from(F.FORMATS))
    def check(m, fmt):
        seen.add(F.export_outcome(F._fresh_copy(db, tmp_path, m), fmt, truth))

    check()
    assert {"exported", "refused"} <= seen  # both ways: the oracle was exercised


def test_mutated_old_ledgers_migrate_clean_or_are_refused(pristine, old_ledgers, tmp_path):
    """A migrated ledger holds exactly the original's head, entries, ids and state."""
    snap = pristine[2]
    seen: set[str] = set()

    @settings(max_examples=80, deadline=None, derandomize=True,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                     HealthCheck.function_scoped_fixture])
    @given(st.sampled_from([0, 1]).flatmap(
        lambda i: st.tuples(st.just(i), mutations(old_ledgers[i][1], old_ledgers[i][2]))))
    def check(pick):
        i, m = pick
        seen.add(F.migrate_outcome(F._fresh_copy(old_ledgers[i][0], tmp_path, m), snap))

    check()
    assert {"migrated", "refused"} <= seen


def test_mutated_ledger_files_show_history_truly_or_are_refused(pristine, tmp_path):
    """`ledger history --limit 5` (all, or one account's) of a mutated file: exactly what the
    intact file shows, or shown after a warning naming the damaged file, or refused naming
    it; never other entries without a warning (a lost per-account index row did that)."""
    db, _policy, _snap, size, sizes, _work = pristine
    truth = F.history_truth(db)
    seen: set[str] = set()

    @settings(max_examples=150, deadline=None, derandomize=True,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                     HealthCheck.function_scoped_fixture])
    @given(mutations(size, sizes), st.sampled_from(F.HISTORY_ACCOUNTS))
    def check(m, account):
        seen.add(F.history_outcome(F._fresh_copy(db, tmp_path, m), account, truth))

    check()
    assert seen == {"read", "read-warned", "refused"}  # the oracle was exercised every way


@pytest.mark.parametrize("account", [a for a in F.HISTORY_ACCOUNTS if a and a != "nobody"])
def test_history_of_an_account_whose_index_row_is_lost_warns(pristine, tmp_path, account):
    """The fuzzer's finding: with the account's per-account index row deleted, `history
    --account` showed it nothing, without a word."""
    import shutil
    import sqlite3

    from charter.runtime.journal import account_tag

    db = tmp_path / "ledger.sqlite"
    shutil.copyfile(pristine[0], db)
    assert F.history_outcome(db, account, F.history_truth(pristine[0])) == "read"
    c = sqlite3.connect(db)
    assert c.execute("DELETE FROM account_block WHERE account = ?",
                     (account_tag(account),)).rowcount == 1
    c.commit()
    c.close()
    assert F.history_outcome(db, account, F.history_truth(pristine[0])) == "read-warned"


def test_mutated_ledger_files_audit_truly(pristine, tmp_path):
    """`charter audit` of a mutated file: OK only if the file also opens for writing with the
    original content; otherwise FAILED or refused, naming the file."""
    db, policy, snap, size, sizes, _work = pristine
    seen: set[str] = set()

    @settings(max_examples=120, deadline=None, derandomize=True,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                     HealthCheck.function_scoped_fixture])
    @given(mutations(size, sizes))
    def check(m):
        seen.add(F.audit_outcome(F._fresh_copy(db, tmp_path, m), policy, snap))

    check()
    assert seen == {"ok", "failed", "refused"}


FOREIGN = {
    "empty": b"",
    "text": b"name,amount\nann,5\n",
    "sqlite header only": b"SQLite format 3\x00" + b"\x00" * 84,
    "random bytes": bytes(range(256)) * 16,
}


@pytest.mark.parametrize("name", sorted(FOREIGN))
@pytest.mark.parametrize("cmd", ["export", "migrate"])
def test_foreign_files_are_refused_by_export_and_migrate(tmp_path, name, cmd):
    db = tmp_path / "x.sqlite"
    db.write_bytes(FOREIGN[name])
    got = F.export_outcome(db, "jsonl") if cmd == "export" else F.migrate_outcome(db)
    assert got == "refused"
    assert db.read_bytes() == FOREIGN[name]  # left untouched


def _policy_ir_node_key_renamed(c) -> None:
    """The recorded policy_ir with one record's ``"node"`` key misspelt: it still decodes
    (a plain dict where the record should be) but no longer matches its fingerprint."""
    import json

    text = json.loads(c.execute("SELECT value FROM meta WHERE key = 'policy_ir'").fetchone()[0])
    bad = text.replace('"node": "Record"', '"nodd": "Record"', 1)
    assert bad != text
    c.execute("UPDATE meta SET value = ? WHERE key = 'policy_ir'", (json.dumps(bad),))


# what fuzz_ledger_files --target open found at 100,000 mutations (main 5410738): tracebacks
FOUND = {
    # full_check built a State from the undecodable policy (AttributeError: 'dict' object
    # has no attribute 'name'), on the way to refusing the file
    "policy_ir decodes to a dict where a record was": _policy_ir_node_key_renamed,
}


@pytest.mark.parametrize("name", sorted(FOUND))
def test_fuzzer_findings_are_refused_naming_the_file(pristine, tmp_path, name):
    import shutil
    import sqlite3

    db, policy, snap = pristine[0], pristine[1], pristine[2]
    copy = tmp_path / "ledger.sqlite"
    shutil.copyfile(db, copy)
    c = sqlite3.connect(copy)
    FOUND[name](c)
    c.commit()
    c.close()
    assert F.outcome(copy, policy, snap) == "refused:LedgerIntegrityError"
    assert F.audit_outcome(copy, policy, snap) in ("failed", "refused")


def test_an_index_row_its_query_did_not_ask_for_is_no_crash():
    """A damaged account_block page returned a row whose account the lookup did not name
    (KeyError in window_index_problems, fuzz_ledger_files --target open): it is passed over;
    the pairs the journal implies are still each looked for."""
    from charter.runtime.integrity import window_index_problems

    implied = {(7 << 32) | 0, (7 << 32) | 1, (9 << 32) | 0}
    found = [(7, 0), (96129513, 0), (9, 0)]  # the second: an account not asked for
    assert window_index_problems(lambda sql, args: found, implied, 0) == [
        "the per-account index lacks 1 (account, block) pair(s) the journal's postings imply: "
        "history --account would miss entries (edited outside Charter)"]
    assert window_index_problems(lambda sql, args: found + [(7, 1)], implied, 0) == []


def test_an_old_ledger_whose_table_name_is_not_utf8_is_refused_by_migrate(old_ledgers,
                                                                           tmp_path):
    """fuzz_ledger_files --target migrate (main 8b61ad5): a byte of a table's name in the
    schema page set to one that is not UTF-8 made `charter ledger migrate` crash reading
    sqlite_master (UnicodeDecodeError, 53 of 12,965 mutations)."""
    for src, _size, _sizes in old_ledgers:
        data = bytearray(src.read_bytes())
        at = data.find(b"tablejournaljournal")  # the schema row: type, name, tbl_name
        assert at > 0
        data[at + len(b"table") + 2] = 0x96  # "jo\x96rnal": not UTF-8
        db = tmp_path / src.name
        db.write_bytes(bytes(data))
        assert F.migrate_outcome(db) == "refused"
        assert db.read_bytes() == bytes(data)  # left untouched
