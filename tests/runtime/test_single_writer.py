"""One writer per SQLite ledger, enforced across real processes.

Several `charter run` processes on one file: without --wait all but one stop
at once naming the holder; with --wait they take turns, each re-reading the
ledger when it gets the lock.  Either way no event is lost or applied twice:
the journal's row count equals its number of distinct ids and equals an
uninterrupted in-memory settlement.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from charter.runtime.api import LedgerBusyError, audit_ledger, open_runtime, replay
from helpers import gig_events

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "gig_market"
POLICY = str(EXAMPLE / "policy.charter")

ENV = {**os.environ, "PYTHONPATH": str(ROOT)}


def _charter(*args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "charter.cli", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=ENV,
        text=True,
    )


def _counts(db: Path) -> tuple[int, int]:
    c = sqlite3.connect(db)
    try:
        return c.execute("SELECT count(*), count(DISTINCT event_id) FROM journal").fetchone()
    finally:
        c.close()


@pytest.fixture(scope="module")
def stream(tmp_path_factory, gig_policy):
    events = list(gig_events(600, seed=11))
    path = tmp_path_factory.mktemp("stream") / "events.jsonl"
    path.write_text("".join(json.dumps(e) + "\n" for e in events))
    ref = open_runtime(gig_policy)
    for e in events:
        ref.submit(e)
    return path, ref


@pytest.mark.parametrize("writers", [2, 8])
def test_concurrent_runs_take_turns_and_apply_each_event_once(tmp_path, stream, writers):
    path, ref = stream
    db = tmp_path / "ledger.sqlite"
    procs = [
        _charter("run", POLICY, str(path), "--db", str(db), "--batch", "20", "--wait", "300",
                 "--json", "--rejections", str(tmp_path / f"rej{i}.jsonl"))
        for i in range(writers)
    ]
    outs = [p.communicate(timeout=600) for p in procs]
    for p, (out, err) in zip(procs, outs):
        assert p.returncode == 0, err
        assert "internal_error" not in out + err and "UNIQUE constraint" not in out + err
    summaries = [json.loads(out) for out, _ in outs]
    rows, distinct = _counts(db)
    assert rows == distinct == ref.seq  # nothing lost, nothing doubled
    # one process settled the stream, every later one found it done (it re-read the ledger)
    applied = sorted(s["applied"] for s in summaries)
    assert applied[:-1] == [0] * (writers - 1)
    assert applied[-1] == ref.seq  # timers fire inside events: no entries of their own
    rt = open_runtime(None, str(db))
    assert rt.journal_hash == ref.journal_hash and rt.state_rows() == ref.state_rows()
    rt.close()
    assert audit_ledger(str(db)).ok and replay(str(db)).ok


HOLD = textwrap.dedent(
    """
    import sys
    from charter.runtime.api import open_runtime
    rt = open_runtime(sys.argv[1], sys.argv[2])
    print("holding", flush=True)
    sys.stdin.read()  # until the test closes our stdin
    rt.close()
    """
)


def test_second_writer_is_told_who_holds_the_ledger(tmp_path, stream):
    path, ref = stream
    db = tmp_path / "ledger.sqlite"
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, POLICY, str(db)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=ENV, text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "holding"
        p = _charter("run", POLICY, str(path), "--db", str(db))
        out, err = p.communicate(timeout=120)
        assert p.returncode == 2, out + err
        assert f"ledger {db} is in use by process {holder.pid}" in err
        assert "Traceback" not in err
        with pytest.raises(LedgerBusyError) as e:
            open_runtime(POLICY, str(db))
        assert e.value.pid == holder.pid and e.value.path == str(db)
        # readers need no lock: inspecting and auditing work while the writer has it
        p = _charter("audit", str(db))
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, out + err
    finally:
        holder.stdin.close()
        holder.wait(timeout=60)
    p = _charter("run", POLICY, str(path), "--db", str(db), "--batch", "50", "--json")
    out, err = p.communicate(timeout=300)
    assert p.returncode == 0, err
    assert _counts(db) == (ref.seq, ref.seq)


SUBMIT = textwrap.dedent(
    """
    import json, sys
    from charter.runtime.api import open_runtime
    rt = open_runtime(sys.argv[1], sys.argv[2], wait=300)
    events = json.loads(sys.argv[3])
    outs = [rt.submit(e) for e in events]
    rt.close()
    print(json.dumps({"applied": sum(o.applied and not o.duplicate for o in outs),
                      "duplicates": sum(o.duplicate for o in outs),
                      "codes": sorted({o.code for o in outs if not o.applied})}))
    """
)


def test_api_writers_in_turn_see_each_others_events(tmp_path):
    """Each process opens, submits its own joins plus the previous process's (duplicates) and
    closes: whoever comes later re-reads the ledger, so duplicates are recognised."""
    db = tmp_path / "ledger.sqlite"
    n = 4
    batches = [
        [{"id": f"j{k}-{i}", "type": "join", "submitter": f"p{k}x{i}", "time": 1, "args": {}}
         for i in range(25)]
        for k in range(n)
    ]
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", SUBMIT, POLICY, str(db),
             json.dumps(batches[k] + batches[(k + 1) % n][:5])],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=ENV, text=True,
        )
        for k in range(n)
    ]
    results = []
    for p in procs:
        out, err = p.communicate(timeout=600)
        assert p.returncode == 0, err
        results.append(json.loads(out))
    rows, distinct = _counts(db)
    assert rows == distinct == 25 * n == sum(r["applied"] for r in results)
    # each event sent twice was recognised the second time, as the same event: a no-op
    assert sum(r["duplicates"] for r in results) == 5 * n
    assert all(r["codes"] == [] for r in results)
    assert audit_ledger(str(db)).ok


def test_lock_file_names_the_holder_and_is_released_on_close(tmp_path, gig_policy):
    db = tmp_path / "l.sqlite"
    rt = open_runtime(gig_policy, str(db))
    text = Path(str(db) + ".lock").read_text()
    assert re.match(rf"{os.getpid()} ", text)
    with pytest.raises(LedgerBusyError, match=f"in use by process {os.getpid()}"):
        open_runtime(gig_policy, str(db))  # one writer even within a process
    rt.close()
    open_runtime(gig_policy, str(db)).close()
