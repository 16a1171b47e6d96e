"""`charter verify --jobs N`: the same results for every N, and a worker that dies is a clear
error, never a hang or a traceback (:mod:`charter.compiler.verify.parallel`).  Not timed:
speed is in benchmarks/bench_verify.py."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from importlib import resources

import pytest
from click.testing import CliRunner

import verify_policies as P
from charter.cli import cli
from charter.compiler.pipeline import Compilation
from charter.compiler.verify import PROVED, UNKNOWN, Options
from charter.compiler.verify import parallel, pipeline

STDLIB = resources.files("charter.stdlib_policies")


def invoke(*args):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def _timeless(doc):
    """A JSON report without the per-check seconds (the only field that is a measurement)."""
    if isinstance(doc, dict):
        return {k: _timeless(v) for k, v in doc.items() if k != "seconds"}
    if isinstance(doc, list):
        return [_timeless(x) for x in doc]
    return doc


@pytest.fixture(scope="module")
def policies(tmp_path_factory):
    """Two stdlib policies (the authority check is asset_royalties' longest unit; a
    postcondition crowdsourced_pool's) and twins with refutations and counterexamples."""
    d = tmp_path_factory.mktemp("jobs")
    for name in ("asset_royalties", "crowdsourced_pool"):
        (d / f"{name}.charter").write_text((STDLIB / f"{name}.charter").read_text())
    (d / "fee.charter").write_text(P.FEE.format(name="fee", hi="150%"))
    (d / "authority.charter").write_text(
        P.AUTHORITY.format(name="authority", by="p: party", extra="")
    )
    (d / "once.charter").write_text(P.ONCE.format(name="once", guard=""))
    return d


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_every_jobs_count_renders_the_same_results(policies, fmt):
    out = {}
    for jobs in ("1", "2"):
        r = invoke("verify", str(policies), "--no-cache", "--format", fmt, "-v", "--jobs", jobs)
        assert r.exit_code == 1, r.output  # the twins are refuted
        out[jobs] = _timeless(json.loads(r.output)) if fmt == "json" else r.output
    assert out["1"] == out["2"]
    text = json.dumps(out["1"]) if fmt == "json" else out["1"]
    # the comparison is about something: refutations with counterexamples, and proofs
    assert "refuted" in text.lower() and "counterexample" in text.lower() or "event:" in text
    assert "proved" in text


def test_a_policy_alone_or_in_a_directory_gives_the_same_report(policies):
    one = invoke("verify", str(policies / "fee.charter"), "--no-cache", "-j", "2")
    many = invoke("verify", str(policies), "--no-cache", "-j", "1")
    assert one.output.strip() in many.output


def test_the_cache_holds_the_same_entries_for_every_jobs_count(policies, tmp_path):
    entries = {}
    for jobs in ("1", "2"):
        cache = tmp_path / f"cache{jobs}"
        r = invoke("verify", str(policies / "asset_royalties.charter"), "--cache-dir", str(cache),
                   "--jobs", jobs)
        assert r.exit_code == 0, r.output
        entries[jobs] = {
            f.name: _timeless(json.loads(f.read_text())) for f in sorted(cache.glob("*.json"))
        }
    assert entries["1"] == entries["2"] and len(entries["1"]) >= 3
    # and a run with another count reads them (everything from the cache)
    r = invoke("verify", str(policies / "asset_royalties.charter"), "--cache-dir",
               str(tmp_path / "cache1"), "--jobs", "2")
    assert "(from cache)" in r.output


@pytest.mark.parametrize("value", ["0", "-1", "257", "100000", "two"])
def test_a_jobs_count_out_of_range_is_a_clear_usage_error(value):
    r = invoke("verify", str(STDLIB / "time_bank.charter"), "--jobs", value)
    assert r.exit_code == 2
    assert "Invalid value for '-j' / '--jobs'" in r.output


def _die(sig):
    os.kill(os.getpid(), sig)


def _raise():
    raise ValueError("a bug in a check")


@pytest.mark.parametrize(
    "unit, says",
    [
        (parallel.Unit("unit A", lambda: _die(signal.SIGKILL)), "killed by SIGKILL (out of memory?)"),
        (parallel.Unit("unit A", lambda: _die(signal.SIGTERM)), "killed by SIGTERM"),
        (parallel.Unit("unit A", lambda: os._exit(3)), "ended (exit status 3) without a result"),
        (parallel.Unit("unit A", _raise), "failed: ValueError: a bug in a check"),
        (parallel.Unit("unit A", lambda: (lambda: 1)), "pickle"),
    ],
)
def test_a_worker_that_dies_or_fails_is_an_error_naming_its_unit(unit, says):
    ok = parallel.Unit("unit B", lambda: {"fine": [1, 2]})
    for jobs in (1, 2):
        a, b = parallel.run_units([unit, ok], jobs)
        assert a.value is None and a.error.startswith("the worker process verifying unit A")
        assert says in a.error
        assert b.error == "" and b.value == {"fine": [1, 2]}  # the others still count


def _policy(text):
    return Compilation.from_text(text, file="t.charter").ir


def test_a_handler_whose_worker_dies_is_unknown_and_the_cli_fails(monkeypatch, tmp_path):
    text = P.AUTHORITY.format(name="authority", by="Task(id).poster", extra="")
    real = pipeline.check_handler

    def crash_on_cancel(policy, prep, assume, opts):
        if prep.model.handler.name == "cancel":
            os.kill(os.getpid(), signal.SIGKILL)  # what the out-of-memory killer does
        return real(policy, prep, assume, opts)

    monkeypatch.setattr(pipeline, "check_handler", crash_on_cancel)
    results = pipeline.verify(_policy(text), Options(cache_dir=tmp_path), jobs=2)
    dead = [r for r in results if r.kind == pipeline.WORKER]
    # the light handlers share one worker: each of them is unknown, and says which worker
    assert "cancel" in [r.handler for r in dead] and {r.status for r in dead} == {UNKNOWN}
    # (the light handlers and the policy checks other than authority share that worker)
    assert {"cancel.worker", "post.worker", "once.worker", "stranded.worker"} <= {
        r.name for r in dead
    }
    assert "the worker process verifying handlers " in dead[0].message
    assert " cancel, " in dead[0].message and "was killed by SIGKILL" in dead[0].message
    # the units that share no worker with cancel still count: the authority check ran
    assert any(r.kind == "authority" and r.status == PROVED for r in results)
    # a dead worker's unit is never cached, nor the policy
    assert all("worker" not in f.read_text() for f in tmp_path.glob("*.json"))
    p = tmp_path / "authority.charter"
    p.write_text(text)
    r = invoke("verify", str(p), "--no-cache", "--jobs", "2")
    assert r.exit_code == 1
    assert "unknown" in r.output and "killed by SIGKILL" in r.output


def _gone(pid: int) -> bool:
    """Ended (a zombie waiting for a reaper counts: it runs nothing)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except FileNotFoundError:
        return True


@pytest.mark.skipif(not os.path.isdir("/proc"), reason="reads /proc to see a process ended")
def test_ctrl_c_stops_every_worker_and_what_they_forked(tmp_path):
    # two policies, each forking two units (what `charter verify DIR` does), 3 workers in all
    pids = tmp_path / "pids"
    script = textwrap.dedent(
        f"""
        import os, time
        from charter.compiler.verify import parallel
        def note():
            with open({str(pids)!r}, "a") as f:
                f.write(f"{{os.getpid()}}\\n")
        def sleeper():
            note()
            time.sleep(120)
        def policy():
            note()
            parallel.run_units([parallel.Unit(str(i), sleeper) for i in range(2)], 3)
        with parallel.workers(3):
            parallel.run_units([parallel.Unit(str(i), policy) for i in range(2)], 3)
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", script], stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    # 2 policies, waiting, lend their workers: 3 units run, the fourth waits for a worker
    while time.monotonic() < deadline:
        if pids.exists() and len(pids.read_text().split()) >= 5:
            break
        time.sleep(0.05)
    time.sleep(0.5)  # no sixth one may start
    started = [int(x) for x in pids.read_text().split()]
    assert len(started) == 5, started
    proc.send_signal(signal.SIGINT)  # to the parent only: it must stop the whole tree
    _, err = proc.communicate(timeout=30)
    assert proc.returncode != 0 and "KeyboardInterrupt" in err
    deadline = time.monotonic() + 10
    while not all(_gone(p) for p in started) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert [p for p in started if not _gone(p)] == []


def test_a_policy_whose_worker_dies_is_one_unknown_result(monkeypatch, policies):
    real = pipeline.verify

    def crash_on_fee(policy, *args):
        if policy.name == "fee":
            os.kill(os.getpid(), signal.SIGKILL)
        return real(policy, *args)

    monkeypatch.setattr(pipeline, "verify", crash_on_fee)
    items = [(_policy((policies / f"{n}.charter").read_text()), Options())
             for n in ("fee", "authority")]
    fee, authority = pipeline.verify_many(items, use_cache=False, jobs=2)
    assert [(r.name, r.kind, r.status) for r in fee] == [("fee.worker", "worker", UNKNOWN)]
    assert "the worker process verifying policy fee was killed by SIGKILL" in fee[0].message
    assert any(r.status == PROVED for r in authority)


def test_a_once_counterexample_renders_as_text(policies):
    # its scenario claims a record field is unchanged: the text renderer once raised KeyError
    r = invoke("verify", str(policies / "once.charter"), "--no-cache")
    assert r.exit_code == 1
    assert "and Case(k1).fee is still" in r.output


def test_the_charter_program_writes_its_whole_report_and_status(policies, tmp_path):
    # as the `charter` program it ends with os._exit (no interpreter teardown): the report,
    # piped, is still complete, the exit status right, and the cache written
    exe = os.path.join(os.path.dirname(sys.executable), "charter")
    if not os.path.exists(exe):
        pytest.skip("the charter console script is not installed next to this python")
    cache = tmp_path / "cache"
    for name, code in (("fee", 1), ("authority", 1)):
        done = subprocess.run(
            [exe, "verify", str(policies / f"{name}.charter"), "--cache-dir", str(cache),
             "-j", "2"],
            capture_output=True, text=True, timeout=300,
        )
        assert done.returncode == code, done.stderr
        assert done.stdout.rstrip().endswith("warning"), done.stdout[-300:]  # the summary line
        assert done.stderr == ""
    assert len(list(cache.glob("*.json"))) >= 4
    listed = subprocess.run([exe, "verify", str(policies / "fee.charter"), "--cache-dir",
                             str(cache), "--format", "json"], capture_output=True, text=True,
                            timeout=300)
    assert json.loads(listed.stdout)["summary"]["refuted"] >= 1  # read back from the cache
