"""kill -9 at random instants: the ledger keeps every committed event and resumes exactly.

A subprocess runs ``charter run`` on a long JSON Lines file and is killed
with SIGKILL at random moments, several times, then run to the end.  The
final ledger must equal an uninterrupted in-memory settlement (same journal
hash, same balances and records) and pass audit and replay.
"""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from charter.runtime.api import audit_ledger, open_runtime, replay
from helpers import gig_events

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "gig_market"


def _run(args, **kw):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(
        [sys.executable, "-m", "charter.cli", "run", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        **kw,
    )


def _seq(db: Path) -> int:
    """Entries committed so far, read while the writer runs (WAL allows a concurrent reader)."""
    if not db.exists():
        return 0
    try:
        c = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1)
        try:
            return c.execute("SELECT coalesce(max(seq), 0) FROM journal").fetchone()[0]
        finally:
            c.close()
    except sqlite3.Error:
        return 0


def _rows(db: Path) -> tuple[int, int]:
    """(journal rows, distinct event ids): equal when nothing is doubled."""
    c = sqlite3.connect(db)
    try:
        return c.execute("SELECT count(*), count(DISTINCT event_id) FROM journal").fetchone()
    finally:
        c.close()


@pytest.mark.parametrize(
    "batch,events",
    [
        (1, 2500),  # one SQLite transaction (and fsync) per event
        (25, 6000),  # batches: a kill loses the uncommitted tail, which is resubmitted
    ],
)
def test_kill_minus_nine_and_resume(gig_policy, tmp_path, batch, events):
    rnd = random.Random(batch)
    stream = list(gig_events(events, seed=3))
    path = tmp_path / "events.jsonl"
    path.write_text("".join(json.dumps(e) + "\n" for e in stream))
    reference = open_runtime(gig_policy)
    for e in stream:
        reference.submit(e)

    db = tmp_path / "ledger.sqlite"
    args = [
        str(EXAMPLE / "policy.charter"),
        str(path),
        "--db",
        str(db),
        "--batch",
        str(batch),
        "-q",
    ]
    # kill once the ledger has reached a random point, plus a random few milliseconds, so the
    # signal lands anywhere: between events, inside an evaluation, inside a commit
    targets = sorted(rnd.sample(range(reference.seq // 10, reference.seq * 9 // 10), 3))
    progress = []
    for target in targets:
        proc = _run(args)
        give_up = time.monotonic() + 90
        while proc.poll() is None and _seq(db) < target and time.monotonic() < give_up:
            time.sleep(0.005)
        if proc.poll() is not None:
            break
        time.sleep(rnd.uniform(0, 0.03))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        # a writer open: the integrity check at open accepts what a killed run left
        rt = open_runtime(None, str(db))
        progress.append(rt.seq)
        assert rt.audit().ok  # every committed prefix is whole: no half-applied event
        assert rt.store.check_integrity() == []  # its checkpoint was committed with it
        rt.close()
        assert _rows(db) == (rt.seq, rt.seq)  # no entry lost or doubled
    final = _run(args)
    out, err = final.communicate(timeout=180)
    assert final.returncode == 0, err.decode()
    assert len(progress) == 3, "the run finished before it could be killed three times"
    assert progress == sorted(progress) and 0 < progress[0] and progress[-1] < reference.seq

    assert _rows(db) == (reference.seq, reference.seq)
    rt = open_runtime(None, str(db))
    assert rt.journal_hash == reference.journal_hash
    assert rt.state_rows() == reference.state_rows()
    assert audit_ledger(str(db)).ok
    assert replay(str(db)).ok
    assert b"resumed after line" in out


def test_kill_minus_nine_hands_the_ledger_to_a_waiting_writer(gig_policy, tmp_path):
    """The writer lock dies with its process: a second `charter run --wait` that queued
    behind a killed one gets the ledger, re-reads it and finishes the stream exactly once."""
    stream = list(gig_events(3000, seed=5))
    path = tmp_path / "events.jsonl"
    path.write_text("".join(json.dumps(e) + "\n" for e in stream))
    reference = open_runtime(gig_policy)
    for e in stream:
        reference.submit(e)
    db = tmp_path / "ledger.sqlite"
    args = [str(EXAMPLE / "policy.charter"), str(path), "--db", str(db), "-q"]
    first = _run(args)
    give_up = time.monotonic() + 90
    while first.poll() is None and _seq(db) < 300 and time.monotonic() < give_up:
        time.sleep(0.005)
    assert first.poll() is None, "the first run finished before it could be stopped"
    first.send_signal(signal.SIGSTOP)  # frozen mid-run, holding the lock: it cannot finish
    second = _run([*args, "--wait", "300", "--batch", "100"])
    time.sleep(1.0)  # let it start and queue on the lock
    assert second.poll() is None, "the second run did not wait for the lock"
    first.send_signal(signal.SIGKILL)
    first.wait()
    out, err = second.communicate(timeout=300)
    assert second.returncode == 0, err.decode()
    assert b"resumed after line" in out
    assert _rows(db) == (reference.seq, reference.seq)
    rt = open_runtime(None, str(db))
    assert rt.journal_hash == reference.journal_hash and rt.state_rows() == reference.state_rows()
    rt.close()
    assert audit_ledger(str(db)).ok and replay(str(db)).ok
