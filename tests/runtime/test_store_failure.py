"""A ledger file whose commit fails for real (the disk is full) keeps exactly what it had.

The failure is real, not a mocked store: a child process lowers its own file-size limit
(``RLIMIT_FSIZE``, with SIGXFSZ ignored so writes fail with EFBIG) so that SQLite's
next write fails, then raises the limit again -- space freed -- and closes the runtime.
Before the fix, the rows of the failed commit stayed buffered and ``close()`` wrote them
over a state that had undone them: a journal entry whose postings the stored balances
lacked, which the audit reports.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from charter.runtime.api import open_runtime, replay

ROOT = Path(__file__).resolve().parents[2]
GIG = ROOT / "examples" / "gig_market" / "policy.charter"

CHILD = textwrap.dedent(
    """
    import json, resource, signal, sys
    sys.path.insert(0, sys.argv[3])
    from generate import gig_events
    from charter.runtime.api import open_runtime
    from charter.runtime.store import StoreError

    policy, db, _gen, batch, full_after = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails (EFBIG)
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    rt = open_runtime(policy, db, batch=batch)
    applied = 0
    error = None
    for i, ev in enumerate(gig_events(400, seed=3)):
        if i == full_after:
            resource.setrlimit(resource.RLIMIT_FSIZE, (1, hard))  # the disk is full
        try:
            out = rt.submit(ev)
        except StoreError as exc:
            error = str(exc)
            break
        applied += out.applied
    resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))  # space freed again
    closed = "ok"
    try:
        rt.close()
    except StoreError as exc:
        closed = str(exc)
    print(json.dumps({"applied": applied, "error": error, "closed": closed}))
    """
)


@pytest.mark.parametrize("batch", [1, 7])
def test_failed_commit_leaves_the_ledger_as_committed(tmp_path: Path, batch: int) -> None:
    db = tmp_path / "full.sqlite"
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    full_after = 150
    proc = subprocess.run(
        [sys.executable, str(script), str(GIG), str(db), str(GIG.parent), str(batch),
         str(full_after)],
        capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    # the commit really failed (a write error from SQLite, not an exception of ours)
    assert got["error"] is not None and "write failed" in got["error"], got
    assert got["closed"] == "ok"
    # what is on disk: the events committed before the disk filled, nothing else
    rt = open_runtime(None, db, readonly=True)
    try:
        assert not rt.store.integrity_problems
        rep = rt.audit()
        assert rep.ok, rep.problems
        entries = rep.entries
        # with batch=N the uncommitted tail of the batch is lost, never half-written
        assert entries <= got["applied"]
        assert entries % batch == 0 or batch == 1
        if batch == 1:
            assert entries == got["applied"]
        assert replay(rt).ok
    finally:
        rt.close()
    # and the ledger takes new events again (no stale rows waiting to be flushed)
    rt = open_runtime(None, db)
    try:
        out = rt.submit({"id": "after-full", "type": "join", "submitter": "late", "time": 10**9,
                         "args": {}})
        assert out.applied, out
    finally:
        rt.close()
    rt = open_runtime(None, db, readonly=True)
    try:
        assert rt.audit().ok and rt.seq == entries + 1
    finally:
        rt.close()
