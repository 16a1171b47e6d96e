"""Mutate a real ledger file and open it for writing: intact, or refused clearly, never a crash.

    PYTHONPATH=. python benchmarks/fuzz_ledger_files.py [--mutations 100000] [--seed 1]
        [--target open|export|migrate|history|audit]

Builds a small real ledger (the gig-market example and a generated stretch after it:
~110 entries, so the journal spans four chunks of packed entries and three kept anchor
hashes, and every entry lies inside the open-time check's re-hash window), then repeatedly
copies it, applies one hostile mutation and calls ``open_runtime`` for
writing.  Mutations: a byte of the file set to a random value (header,
b-tree pages, cells, free space), the file truncated, a cell of any table
(journal, state, meta, checkpoint, schema_version, account_block) set to a hostile value of
any type (null, booleans, 64-bit extremes, floats, NaN, text, JSON of every
shape, deeply nested JSON, blobs), a cell set to another row's value of the same column
(a genuine entry, hash, key or digest in the wrong place), a row deleted or duplicated.

Each outcome is one of: ``intact`` (opened; its state, applied ids and head
equal the original), ``refused:<ErrorClass>`` (a StoreError naming the
file).  Anything else -- an exception that is not a StoreError, a message
without the path, or a ledger that opened with different content -- is a
failure, printed with the mutation that caused it; the script exits 1.
``tests/runtime/test_ledger_file_fuzz.py`` drives the same functions with
hypothesis.

``--target export`` runs ``charter ledger export`` (a random format) on each mutated
file instead: ``exported`` (exactly the bytes the intact ledger exports),
``exported-warned`` (after a warning that names the file and says it fails its integrity
check) or ``refused`` (exit 1/2 with a message naming the file);
``--target migrate`` mutates the ledger rewritten as schema 3, 4, 5 or 6 (as older Charter
kept it, :func:`downgrade`) and runs ``charter ledger migrate``: ``migrated`` (and the
result then opens with no integrity problem, audits and replays clean, and holds exactly
the original ledger's head, entries, ids and state) or ``refused``.
A traceback, another exit code or a message without the file is a failure.
``--target history`` runs ``charter ledger history`` (``--limit 5``, with or without
``--account``; it opens without the state digest): ``read`` (exactly what the intact ledger
shows), ``read-warned`` (after a warning that names the file and says it fails its integrity
check) or ``refused``; other entries without a warning are a failure.  ``--target audit``
runs ``charter audit``: ``ok`` (and then the file must also open for writing
with the original content: an audit must not pass a ledger the open check refuses or
that reads differently) or ``failed``/``refused`` (exit 1/2 naming the file).
"""

from __future__ import annotations

import json
import random
import shutil
import signal
import sqlite3
import sys
import tempfile
import time
import traceback
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "gig_market"
TABLES = {
    "journal": ("seq", "event_id", "entry", "hash"),
    "state": ("kind", "key", "value"),
    "meta": ("key", "value"),
    "checkpoint": ("seq", "head", "state_digest", "state_rows", "meta_digest", "hash"),
    "schema_version": ("version",),
    "account_block": ("account", "block"),
}
# how a row is named in UPDATE/DELETE: the rowid, or the key of a WITHOUT ROWID table
ROW_KEY = {"state": "kind || char(31) || key", "account_block": "account || char(31) || block"}
HOSTILE: list[Any] = [
    None, True, False, 0, -1, 1, 2**63 - 1, -(2**63), 1.5, float("nan"), float("inf"), "",
    "0", "null", "true", "[]", "{}", '{"v":1}', "[1,2,3]", '"text"', "1e400", "-0",
    "9" * 5000, "[" * 10000, '{"a":' * 3000, "\u00e9\u4e2d", "x" * 100_000, b"", b"\x00\xff",
    '["party:ann:Credit","supply:Credit","Credit",1,"mint"]', '{"a":1,"a":2}', '"\\ud800"',
    str(2**64), str(-(2**64)), "1.0", "[null]", '{"":null}', "\ufeff{}", " 1 ", "\x00",
]


class Snapshot:
    """What an intact ledger must still say after it is reopened."""

    def __init__(self, rt: Any):
        self.rows = rt.state_rows()
        self.ids = set(rt.applied_ids)
        self.head = rt.journal_hash
        self.seq = rt.seq


def build_ledger(directory: Path) -> tuple[Path, Any, Snapshot]:
    from charter.compiler.pipeline import Compilation
    from charter.runtime.api import open_runtime

    policy = Compilation.from_path(EXAMPLE / "policy.charter").ir
    events = [json.loads(x) for x in (EXAMPLE / "events.jsonl").read_text().splitlines() if x]
    # then a generated stretch, so the journal spans several chunks and anchors
    sys.path.insert(0, str(EXAMPLE))
    from generate import gig_events

    events += [dict(e, time=e["time"] + 200_000) for e in gig_events(110, seed=7, agents=5,
                                                                      epoch=30)]
    db = directory / "pristine.sqlite"
    rt = open_runtime(policy, str(db))
    for e in events:
        rt.submit(e)
    rt.close()
    rt = open_runtime(policy, str(db), readonly=True)
    snap = Snapshot(rt)
    rt.close()
    return db, policy, snap


def _old_state_row(st: Any, kind: str, key: str, value: str) -> tuple[str, str, str]:
    """A current state row as ledger schema 4 and older kept it."""
    dumps = json.JSONEncoder(separators=(",", ":")).encode
    if kind == "record":
        r = json.loads(key)[0]
        return kind, key, dumps(dict(zip(st.record_fields[r], json.loads(value))))
    if kind == "meta":
        for handler, tag in st._fired_tag.items():
            if key.startswith(tag):
                key = f"fired:{handler}:{key[len(tag):]}"
        v = json.loads(value)
        if type(v) is int:
            return kind, key, '{"v":' + str(v) + "}"
    return kind, key, value


def downgrade(db: Path, version: int) -> None:
    """Rewrite a current ledger as Charter kept it in schema ``version`` (3 to 6):
    schema 6: entries without their seq and id in chunks (codec ``deflate-dict-2``), hashes
    at anchors; schema 5: each of them packed on its own (no chunks); schema 4: besides, entries packed whole (codec ``deflate-dict-1``) and state
    rows of the old shapes (records as objects, ``{"v": n}`` meta rows, ``fired:`` markers);
    schema 3: entry text and every hash as hex, no entry dictionary.  The one copy:
    tests/runtime/test_migrate.py and test_ledger_integrity.py use it too."""
    from charter.runtime.api import open_runtime
    from charter.runtime.integrity import Checkpoint, meta_digest, state_digest
    from charter.runtime.journal import (
        ANCHOR_EVERY, ENTRY_CODEC_V1, ENTRY_CODEC_V2, EntryCodec, JournalRow, chain)
    from charter.runtime.sqlite_store import _packed, tamper_connection
    from charter.runtime.state import State

    with open_runtime(None, str(db), readonly=True, load_state=False) as rt:
        st = State(rt.policy)
    c = tamper_connection(db)
    meta = dict(c.execute("SELECT key, value FROM meta"))
    genesis = json.loads(meta["genesis"])
    rows = c.execute(
        "SELECT seq, event_id, entry_text(entry, seq, event_id) FROM journal ORDER BY seq"
    ).fetchall()
    state = [_old_state_row(st, *r) if version < 5 else r
             for r in c.execute("SELECT kind, key, value FROM state")]
    c.execute("BEGIN")
    c.execute("DELETE FROM state")
    c.executemany("INSERT INTO state VALUES (?, ?, ?)", state)
    c.execute("DROP TABLE journal")
    prev = genesis
    if version in (4, 5, 6):
        c.execute("CREATE TABLE journal (seq INTEGER PRIMARY KEY, event_id TEXT NOT NULL UNIQUE, "
                  "entry BLOB NOT NULL, hash BLOB)")
        name = ENTRY_CODEC_V1 if version == 4 else ENTRY_CODEC_V2
        codec = EntryCodec(json.loads(meta["entry_dict"]), name)
        hashed = []
        for seq, eid, entry in rows:
            prev = chain(prev, entry)
            hashed.append(JournalRow(seq, eid, entry, prev))
        if version == 6:  # chunks, as schema 6's writer packed them
            c.executemany("INSERT INTO journal VALUES (?, ?, ?, ?)", _packed(codec, hashed, None)[0])
        else:
            c.executemany("INSERT INTO journal VALUES (?, ?, ?, ?)", [
                (r.seq, r.event_id, codec.pack(r.entry, r.seq, r.event_id),
                 bytes.fromhex(r.hash) if r.seq % ANCHOR_EVERY == 0 else None) for r in hashed])
        c.execute("UPDATE meta SET value = ? WHERE key = 'entry_codec'", (json.dumps(name),))
    else:
        c.execute("CREATE TABLE journal (seq INTEGER PRIMARY KEY, event_id TEXT NOT NULL UNIQUE, "
                  "entry TEXT NOT NULL, hash TEXT NOT NULL)")
        for seq, eid, entry in rows:
            prev = chain(prev, entry)
            c.execute("INSERT INTO journal VALUES (?, ?, ?, ?)", (seq, eid, entry, prev))
        c.execute("DELETE FROM meta WHERE key IN ('entry_dict', 'entry_codec')")
    d, n = state_digest(c.execute("SELECT kind, key, value FROM state"))
    cp = Checkpoint(len(rows), prev, d, n, meta_digest(c.execute("SELECT key, value FROM meta")))
    c.execute("UPDATE checkpoint SET seq=?, head=?, state_digest=?, state_rows=?, meta_digest=?, "
              "hash=?", cp.row())
    c.execute("UPDATE schema_version SET version = ?", (version,))
    c.execute("COMMIT")
    c.execute("VACUUM")  # as one whole file, with nothing left in the write-ahead log
    c.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    c.close()


def build_old_ledger(pristine: Path, version: int) -> Path:
    """A copy of ``pristine`` as schema ``version`` kept it (beside it)."""
    old = pristine.with_name(f"pristine-v{version}.sqlite")
    shutil.copyfile(pristine, old)
    downgrade(old, version)
    return old


def table_sizes(db: Path) -> dict[str, int]:
    c = sqlite3.connect(db)
    try:
        return {t: c.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in TABLES}
    finally:
        c.close()


def random_mutation(rnd: random.Random, size: int, sizes: dict[str, int]) -> tuple:
    kind = rnd.choice(["byte", "byte", "byte", "truncate", "cell", "cell", "cell", "delete", "dup",
                       "swap"])
    if kind == "byte":
        # the header and the first pages hold the schema and the small tables: weight them
        hi = rnd.choice([100, 4096, size])
        return ("byte", rnd.randrange(min(hi, size)), rnd.randrange(256))
    if kind == "truncate":
        return ("truncate", rnd.randrange(size))
    table = rnd.choice(list(TABLES))
    row = rnd.randrange(max(sizes[table], 1))
    if kind == "cell":
        value = rnd.choice(HOSTILE) if rnd.random() < 0.7 else rnd.randrange(-1000, 10**6)
        return ("cell", table, rnd.choice(TABLES[table]), row, value)
    if kind == "swap":  # a genuine value, moved: another row's cell of the same column
        return ("swap", table, rnd.choice(TABLES[table]), row,
                rnd.randrange(max(sizes[table], 1)))
    return (kind, table, row)


def apply_mutation(db: Path, m: tuple) -> None:
    if m[0] == "byte":
        data = bytearray(db.read_bytes())
        data[m[1]] = m[2]
        db.write_bytes(bytes(data))
        return
    if m[0] == "truncate":
        with open(db, "r+b") as fh:
            fh.truncate(m[1])
        return
    c = sqlite3.connect(db)
    try:
        table, row = m[1], m[3] if m[0] in ("cell", "swap") else m[-1]
        rid = ROW_KEY.get(table, "rowid")
        keys = [r[0] for r in c.execute(f"SELECT {rid} FROM {table} ORDER BY 1")]
        if not keys:
            return
        key = keys[row % len(keys)]
        try:
            if m[0] == "cell":
                c.execute(f"UPDATE OR IGNORE {table} SET {m[2]} = ? WHERE {rid} = ?", (m[4], key))
            elif m[0] == "swap":
                other = keys[m[4] % len(keys)]
                c.execute(f"UPDATE OR IGNORE {table} SET {m[2]} = (SELECT {m[2]} FROM {table} "
                          f"WHERE {rid} = ?) WHERE {rid} = ?", (other, key))
            elif m[0] == "delete":
                c.execute(f"DELETE FROM {table} WHERE {rid} = ?", (key,))
            else:  # a copy of the row under a fresh rowid/key where the schema allows it
                cols = ", ".join(TABLES[table])
                c.execute(f"INSERT OR IGNORE INTO {table} ({cols}) SELECT {cols} FROM {table} "
                          f"WHERE {rid} = ?", (key,))
        except sqlite3.IntegrityError:
            pass  # NOT NULL / CHECK constraints: the schema itself refused the edit
        c.commit()
    finally:
        c.close()


def outcome(db: Path, policy: Any, snap: Snapshot) -> str:
    """Open ``db`` for writing and classify; raises AssertionError on a failure."""
    from charter.runtime.api import StoreError, open_runtime

    try:
        rt = open_runtime(policy, str(db))
    except StoreError as exc:
        assert str(db) in str(exc), f"message does not name the file: {exc}"
        return f"refused:{type(exc).__name__}"
    try:
        assert rt.head == snap.head, "opened with a different journal head"
        assert rt.seq == snap.seq, "opened with a different entry count"
        assert set(rt.applied_ids) == snap.ids, "opened with different applied ids"
        assert rt.state_rows() == snap.rows, "opened with a different state"
    finally:
        rt.close()
    return "intact"


def run_one(pristine: Path, work: Path, policy: Any, snap: Snapshot, m: tuple) -> str:
    db = _fresh_copy(pristine, work, m)
    return outcome(db, policy, snap)


def _fresh_copy(pristine: Path, work: Path, m: tuple) -> Path:
    for p in work.iterdir():  # the last run's ledger, its WAL, lock, backups, outputs
        p.unlink()
    db = work / "ledger.sqlite"
    shutil.copyfile(pristine, db)
    apply_mutation(db, m)
    return db


def _cli(*args: Any) -> Any:
    from click.testing import CliRunner

    from charter.cli import cli

    # catch_exceptions=False: an uncaught exception is raised here, i.e. a failure
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


def _refused(db: Path, r: Any) -> str:
    assert r.exit_code in (1, 2), f"exit code {r.exit_code}: {r.output[-500:]}"
    assert "Traceback" not in r.output, r.output[-2000:]
    assert str(db) in r.output, f"message does not name the file: {r.output[-500:]}"
    return "refused"


FORMATS = ("beancount", "csv", "jsonl", "parquet")


def _exported(db: Path, fmt: str) -> tuple[Any, bytes]:
    """(the command's result, the file it wrote with ``db``'s path as LEDGER, or b"")."""
    out = db.with_name("out." + fmt)
    r = _cli("ledger", "export", db, "--format", fmt, "-o", out)
    data = out.read_bytes().replace(str(db).encode(), b"LEDGER") if out.is_file() else b""
    return r, data


def export_truth(pristine: Path) -> dict[str, bytes]:
    """Per format, what ``charter ledger export`` writes for the intact ledger."""
    out = {}
    for fmt in FORMATS:
        r, data = _exported(pristine, fmt)
        assert r.exit_code == 0 and "warning" not in r.output and data, r.output
        out[fmt] = data
    return out


def export_outcome(db: Path, fmt: str, truth: Any = None) -> str:
    """``charter ledger export`` of ``db``: ``exported``, ``exported-warned`` (after a warning
    that names the file and says it fails its integrity check) or ``refused`` (else
    AssertionError).  With ``truth`` (:func:`export_truth`), an export without a warning must
    write exactly what the intact ledger's export writes."""
    r, data = _exported(db, fmt)
    if r.exit_code == 0:
        assert "Traceback" not in r.output, r.output[-2000:]
        if f"warning: {db} fails its integrity check" in r.output:
            # said to be damaged: what it wrote is not vouched for (a table whose definition
            # was edited is not read at all: 0 entries)
            assert db.with_name("out." + fmt).is_file(), "export wrote no file"
            return "exported-warned"
        assert truth is None or data == truth[fmt], \
            f"export wrote other {fmt} than the intact ledger's, without a warning"
        return "exported"
    return _refused(db, r)


def migrate_outcome(db: Path, snap: Any = None) -> str:
    """``charter ledger migrate`` of ``db``: ``migrated`` (the result then opens with no
    integrity problem, audits and replays clean and, given ``snap``, the Snapshot of the
    current ledger it was downgraded from, holds exactly its head, entries, ids and state),
    ``current`` or ``refused``."""
    from charter.runtime.api import audit_ledger, open_runtime, replay

    r = _cli("ledger", "migrate", db)
    if r.exit_code != 0:
        return _refused(db, r)
    if "already version" in r.output:
        return "current"
    with open_runtime(None, str(db), readonly=True, load_state=False) as rt:
        assert not rt.store.integrity_problems, rt.store.integrity_problems
    rep = audit_ledger(str(db))
    assert rep.ok, f"migrated a ledger that does not audit: {rep.problems[:3]}"
    assert replay(str(db)).ok, "migrated a ledger that does not replay"
    if snap is not None:
        with open_runtime(None, str(db), readonly=True) as rt:
            got = Snapshot(rt)
        for what in ("head", "seq", "ids", "rows"):
            assert getattr(got, what) == getattr(snap, what), \
                f"migrated to a ledger whose {what} is not the original's"
    return "migrated"


HISTORY_ACCOUNTS = (None, "party:ann:Credit", "party:a001:Credit", "pool:commons", "nobody")


def _history(db: Path, account: Any, *limit: str) -> Any:
    return _cli("ledger", "history", db, *limit, *(("--account", account) if account else ()))


def history_truth(pristine: Path) -> dict[Any, str]:
    """Per account of HISTORY_ACCOUNTS (None: all), the intact ledger's ``--limit 5`` output."""
    out = {}
    for acc in HISTORY_ACCOUNTS:
        r = _history(pristine, acc, "--limit", "5")
        assert r.exit_code == 0 and "warning" not in r.output, r.output
        out[acc] = r.output.replace(str(pristine), "LEDGER")
    return out


def history_outcome(db: Path, account: Any, truth: Any = None) -> str:
    """``charter ledger history --limit 5`` (``--account``): ``read``, ``read-warned`` or
    ``refused``.  With ``truth`` (:func:`history_truth` of the unmutated ledger), a read
    without a warning must show exactly what the intact ledger shows: the whole ledger lies
    inside the open check's re-hashed window, its per-account index included."""
    r = _history(db, account, "--limit", "5")
    if r.exit_code != 0:
        return _refused(db, r)
    assert "Traceback" not in r.output, r.output[-2000:]
    text = r.output.replace(str(db), "LEDGER")
    if "warning: LEDGER fails its integrity check" in text:
        return "read-warned"  # shown, but said to be damaged: what a reader of a damaged file owes
    assert truth is None or text == truth[account], \
        f"history read other entries than the intact ledger's, without a warning:\n{text[:800]}"
    return "read"


def audit_outcome(db: Path, policy: Any, snap: Snapshot) -> str:
    """``charter audit``: ``ok`` (the file then opens intact), ``failed`` or ``refused``."""
    r = _cli("audit", db)
    if r.exit_code == 0:
        assert "OK:" in r.output, r.output[-500:]
        got = outcome(db, policy, snap)
        assert got == "intact", f"audit passed a ledger the open check {got}"
        return "ok"
    if r.exit_code == 1 and "FAILED" in r.output:
        assert "Traceback" not in r.output, r.output[-2000:]
        return "failed"
    return _refused(db, r)


_STOPPED: list[bool] = []


def _stop(*_: Any) -> None:
    # noted as well as raised: click turns a KeyboardInterrupt inside a command into
    # "Aborted!" and exit 1, which would count as a failure and let the run go on
    _STOPPED.append(True)
    raise KeyboardInterrupt


def main() -> None:
    args = sys.argv[1:]
    if "--help" in args or "-h" in args:  # was read as no flags: a 100,000-mutation run began
        print(__doc__)
        return
    n = int(args[args.index("--mutations") + 1]) if "--mutations" in args else 100_000
    seed = int(args[args.index("--seed") + 1]) if "--seed" in args else 1
    target = args[args.index("--target") + 1] if "--target" in args else "open"
    if target not in ("open", "export", "migrate", "history", "audit"):
        sys.exit(f"--target must be open, export, migrate, history or audit, not {target!r}")
    rnd = random.Random(seed)
    counts: Counter[str] = Counter()
    failures: list[str] = []
    started = time.perf_counter()
    # a RAM disk when there is one: the files are rewritten 100,000 times, fsyncs and all
    ram = "/dev/shm" if Path("/dev/shm").is_dir() else None
    with tempfile.TemporaryDirectory(dir=ram) as d:
        base = Path(d)
        work = base / "work"
        work.mkdir()
        pristine, policy, snap = build_ledger(base)
        truth = history_truth(pristine) if target == "history" else \
            export_truth(pristine) if target == "export" else None
        sources = {"open": [pristine], "export": [pristine], "history": [pristine],
                   "audit": [pristine],
                   "migrate": [build_old_ledger(pristine, v) for v in (3, 4, 5, 6)]}
        sources = {k: [(p, p.stat().st_size, table_sizes(p)) for p in v]
                   for k, v in sources.items()}
        print(f"ledger: {snap.seq} entries, {len(snap.rows)} state rows, "
              f"{pristine.stat().st_size} bytes; {n} mutations, seed {seed}, target {target}")
        # SIGTERM (a time limit) stops the run cleanly: the counts so far are printed
        signal.signal(signal.SIGTERM, _stop)
        done = 0
        try:
            for i in range(n):
                if _STOPPED:
                    raise KeyboardInterrupt
                src, size, sizes = rnd.choice(sources[target])
                m = random_mutation(rnd, size, sizes)
                try:
                    if target == "open":
                        got = run_one(src, work, policy, snap, m)
                    elif target == "history":
                        acc = rnd.choice(HISTORY_ACCOUNTS)
                        got = f"{'account' if acc else 'all':<7} " + history_outcome(
                            _fresh_copy(src, work, m), acc, truth)
                    elif target == "audit":
                        got = audit_outcome(_fresh_copy(src, work, m), policy, snap)
                    elif target == "export":
                        fmt = rnd.choice(FORMATS)
                        got = f"{fmt:<9} " + export_outcome(_fresh_copy(src, work, m), fmt,
                                                            truth)
                    else:
                        got = f"v{src.name[-8]} " + migrate_outcome(_fresh_copy(src, work, m),
                                                                    snap)
                    if _STOPPED:  # stopped inside the command: its outcome is not the input's
                        raise KeyboardInterrupt
                    counts[f"{m[0]:<8} {got}"] += 1
                except Exception as exc:  # noqa: BLE001 - counted and printed: a fuzzer's point
                    if _STOPPED:  # the stop signal, inside a command: not the input's doing
                        raise KeyboardInterrupt from None
                    counts[f"{m[0]:<8} FAILURE"] += 1
                    if len(failures) < 20:
                        failures.append(f"{m!r:.200}\n{''.join(traceback.format_exception(exc))}")
                if (i + 1) % 10_000 == 0:
                    bad = sum(v for k, v in counts.items() if k.endswith("FAILURE"))
                    print(f"  {i + 1} mutations, {time.perf_counter() - started:.0f}s, "
                          f"{bad} failures", flush=True)
                done = i + 1
        except KeyboardInterrupt:
            print(f"  stopped after {done} mutations", flush=True)
    print(f"\n{done} mutations in {time.perf_counter() - started:.0f}s")
    for k, v in sorted(counts.items()):
        print(f"  {v:7d}  {k}")
    bad = sum(v for k, v in counts.items() if k.endswith("FAILURE"))
    print(f"failures (tracebacks, unnamed files, ledgers opened with other content): {bad}")
    for f in failures:
        print("\n" + f)
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
