"""Mutate a real ledger file and open it for writing: intact, or refused clearly, never a crash.

    PYTHONPATH=. python benchmarks/fuzz_ledger_files.py [--mutations 100000] [--seed 1]

Builds a small real ledger (the gig-market example, ~70 entries, so every
entry lies inside the open-time check's re-hash window), then repeatedly
copies it, applies one hostile mutation and calls ``open_runtime`` for
writing.  Mutations: a byte of the file set to a random value (header,
b-tree pages, cells, free space), the file truncated, a cell of any table
(journal, state, meta, checkpoint, schema_version) set to a hostile value of
any type (null, booleans, 64-bit extremes, floats, NaN, text, JSON of every
shape, deeply nested JSON, blobs), a row deleted or duplicated.

Each outcome is one of: ``intact`` (opened; its state, applied ids and head
equal the original), ``refused:<ErrorClass>`` (a StoreError naming the
file).  Anything else -- an exception that is not a StoreError, a message
without the path, or a ledger that opened with different content -- is a
failure, printed with the mutation that caused it; the script exits 1.
``tests/runtime/test_ledger_file_fuzz.py`` drives the same functions with
hypothesis.
"""

from __future__ import annotations

import json
import random
import shutil
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
}
HOSTILE: list[Any] = [
    None, True, False, 0, -1, 1, 2**63 - 1, -(2**63), 1.5, float("nan"), float("inf"), "",
    "0", "null", "true", "[]", "{}", '{"v":1}', "[1,2,3]", '"text"', "1e400", "-0",
    "9" * 5000, "[" * 10000, '{"a":' * 3000, "\u00e9\u4e2d", "x" * 100_000, b"", b"\x00\xff",
    '["party:ann:Credit","supply:Credit","Credit",1,"mint"]',
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
    db = directory / "pristine.sqlite"
    rt = open_runtime(policy, str(db))
    for e in events:
        rt.submit(e)
    rt.close()
    rt = open_runtime(policy, str(db), readonly=True)
    snap = Snapshot(rt)
    rt.close()
    return db, policy, snap


def table_sizes(db: Path) -> dict[str, int]:
    c = sqlite3.connect(db)
    try:
        return {t: c.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in TABLES}
    finally:
        c.close()


def random_mutation(rnd: random.Random, size: int, sizes: dict[str, int]) -> tuple:
    kind = rnd.choice(["byte", "byte", "byte", "truncate", "cell", "cell", "cell", "delete", "dup"])
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
        table, row = m[1], m[-1] if m[0] != "cell" else m[3]
        rid = "rowid" if table not in ("state",) else "kind || char(31) || key"
        keys = [r[0] for r in c.execute(f"SELECT {rid} FROM {table} ORDER BY 1")]
        if not keys:
            return
        key = keys[row % len(keys)]
        try:
            if m[0] == "cell":
                c.execute(f"UPDATE OR IGNORE {table} SET {m[2]} = ? WHERE {rid} = ?", (m[4], key))
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
    db = work / "ledger.sqlite"
    for suffix in ("", "-wal", "-shm", ".lock"):
        Path(str(db) + suffix).unlink(missing_ok=True)
    shutil.copyfile(pristine, db)
    apply_mutation(db, m)
    return outcome(db, policy, snap)


def main() -> None:
    args = sys.argv[1:]
    n = int(args[args.index("--mutations") + 1]) if "--mutations" in args else 100_000
    seed = int(args[args.index("--seed") + 1]) if "--seed" in args else 1
    rnd = random.Random(seed)
    counts: Counter[str] = Counter()
    failures: list[str] = []
    started = time.perf_counter()
    # a RAM disk when there is one: the files are rewritten 100,000 times, fsyncs and all
    ram = "/dev/shm" if Path("/dev/shm").is_dir() else None
    with tempfile.TemporaryDirectory(dir=ram) as d:
        work = Path(d)
        pristine, policy, snap = build_ledger(work)
        size, sizes = pristine.stat().st_size, table_sizes(pristine)
        print(f"ledger: {snap.seq} entries, {len(snap.rows)} state rows, {size} bytes; "
              f"{n} mutations, seed {seed}")
        for i in range(n):
            m = random_mutation(rnd, size, sizes)
            try:
                counts[f"{m[0]:<8} {run_one(pristine, work, policy, snap, m)}"] += 1
            except Exception as exc:  # noqa: BLE001 - counted and printed: the point of a fuzzer
                counts[f"{m[0]:<8} FAILURE"] += 1
                if len(failures) < 20:
                    failures.append(f"{m!r:.200}\n{''.join(traceback.format_exception(exc))}")
            if (i + 1) % 10_000 == 0:
                print(f"  {i + 1} mutations, {time.perf_counter() - started:.0f}s", flush=True)
    print(f"\n{n} mutations in {time.perf_counter() - started:.0f}s")
    for k, v in sorted(counts.items()):
        print(f"  {v:7d}  {k}")
    bad = sum(v for k, v in counts.items() if k.endswith("FAILURE"))
    print(f"failures (tracebacks, unnamed files, ledgers opened with other content): {bad}")
    for f in failures:
        print("\n" + f)
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
