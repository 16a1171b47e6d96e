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
import subprocess
import sys
import time
from pathlib import Path

import pytest

from charter.runtime.api import audit_ledger, open_runtime, replay

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "gig_market"
sys.path.insert(0, str(EXAMPLE))
from generate import gig_events  # noqa: E402


def _run(args, **kw):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-m", "charter.cli", "run", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, **kw)


@pytest.mark.parametrize("batch,events,delays", [
    (1, 2500, (0.9, 3.0)),    # one SQLite transaction (and fsync) per event
    (25, 6000, (0.6, 1.2)),   # batches: a kill loses the uncommitted tail, which is resubmitted
])
def test_kill_minus_nine_and_resume(gig_policy, tmp_path, batch, events, delays):
    rnd = random.Random(batch)
    stream = list(gig_events(events, seed=3))
    path = tmp_path / "events.jsonl"
    path.write_text("".join(json.dumps(e) + "\n" for e in stream))
    reference = open_runtime(gig_policy)
    for e in stream:
        reference.submit(e)

    db = tmp_path / "ledger.sqlite"
    args = [str(EXAMPLE / "policy.charter"), str(path), "--db", str(db), "--batch", str(batch), "-q"]
    kills = 0
    progress = []
    for _ in range(4):
        proc = _run(args)
        time.sleep(rnd.uniform(*delays))
        if proc.poll() is not None:
            break  # finished before we could kill it
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        kills += 1
        if db.exists():
            rt = open_runtime(None, str(db))
            progress.append(rt.seq)
            assert rt.audit().ok  # every committed prefix is whole
            rt.close()
    final = _run(args)
    out, err = final.communicate(timeout=120)
    assert final.returncode == 0, err.decode()
    assert kills >= 2, "the run finished too fast to be killed; make the stream longer"
    assert progress and 0 < progress[0] < reference.seq  # killed mid-run, not before or after

    rt = open_runtime(None, str(db))
    assert rt.journal_hash == reference.journal_hash
    assert rt.state_rows() == reference.state_rows()
    assert audit_ledger(str(db)).ok
    assert replay(str(db)).ok
    assert b"resumed after line" in out
