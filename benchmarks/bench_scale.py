"""Ledger commands at scale: time and peak memory of each command, bytes per event.

    PYTHONPATH=. python benchmarks/bench_scale.py [SIZES ...] [--big] [--keep DIR]

SIZES default to 10000 100000; ``--big`` adds the 1,000,000-event point (a few minutes
of CPU and ~250 MB of disk).  For each size it builds a gig-market ledger
(examples/gig_market/generate.py, seed 7) with ``charter run --batch 1000`` and runs,
each in its own process: ``run --memory`` (the same events, no file), ``ledger
balances``, ``ledger history --limit 10``, ``ledger history --account ... --limit 10``
(an agent's account: found in the newest entries; the first task's escrow: found only
far back), ``audit``, ``replay``, ``ledger export`` in every format (to a file).  Each
row is wall time, CPU time (user+system) and peak RSS of that process alone
(``os.wait4``); the machine may be shared, so CPU and RSS are the figures to compare,
wall is what a user waited.  Then bytes per applied event of the ledger file, and
start-up (``charter --version`` and ``import charter`` against ``python -c pass``), and
whether ``run`` and the ledger commands (every export format too) imported z3 or lark
(``-X importtime``).
Finally one table with a column per size (the figures the issue asks for), with the
audit's and replay's CPU against the settlement's that built the ledger.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GIG = ROOT / "examples" / "gig_market"
sys.path.insert(0, str(GIG))

from generate import gig_events  # noqa: E402

CHARTER = [sys.executable, "-m", "charter.cli"]
FORMATS = ("beancount", "csv", "jsonl", "parquet")


def _run(args: list[str], cwd: Path) -> tuple[float, float, float, str]:
    """(wall s, cpu s, peak RSS MB, stdout) of one child process (reaped by wait4, so the
    rusage is its own); raises if it failed."""
    t0 = time.perf_counter()
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        p = subprocess.Popen(args, cwd=cwd, stdout=out, stderr=err)
        _, status, ru = os.wait4(p.pid, 0)
        p.returncode = code = os.waitstatus_to_exitcode(status)
        wall = time.perf_counter() - t0
        out.seek(0)
        err.seek(0)
        if code != 0:
            raise RuntimeError(f"{' '.join(map(str, args[2:]))} exited {code}: "
                               f"{err.read().decode('utf-8', 'replace')[-2000:]}")
        return wall, ru.ru_utime + ru.ru_stime, ru.ru_maxrss / 1024, \
            out.read().decode("utf-8", "replace")


def _imports(args: list[str], cwd: Path) -> set[str]:
    """Top-level names of the modules a fresh ``python -X importtime`` of ``args`` imported."""
    p = subprocess.run([sys.executable, "-X", "importtime", *args], cwd=cwd,
                       capture_output=True, text=True)
    return {line.rsplit("|", 1)[1].strip().split(".")[0]
            for line in p.stderr.splitlines() if line.startswith("import time:") and "|" in line}


def one_size(n: int, d: Path, imports: bool = False) -> dict:
    events = d / f"gig{n}.jsonl"
    t0 = time.perf_counter()
    with open(events, "w") as fh:
        for e in gig_events(n, seed=7):
            fh.write(json.dumps(e) + "\n")
    print(f"\n{n} events generated in {time.perf_counter() - t0:.0f} s", flush=True)
    db = d / f"gig{n}.sqlite"
    policy = str(GIG / "policy.charter")
    res: dict = {"events": n}
    res["run (SQLite, batch 1000)"] = _run(
        [*CHARTER, "run", policy, str(events), "--db", str(db), "--batch", "1000", "-q",
         "--json"], d)
    applied = json.loads(res["run (SQLite, batch 1000)"][3])["applied"]
    res["applied"] = applied
    res["bytes/event"] = db.stat().st_size / applied
    res["run --memory"] = _run([*CHARTER, "run", policy, str(events), "--memory", "-q",
                                "--json"], d)
    cmds = [
        ("ledger balances", ["ledger", "balances", str(db)]),
        ("history --limit 10", ["ledger", "history", str(db), "--limit", "10"]),
        ("history --account agent --limit 10",
         ["ledger", "history", str(db), "--account", "party:a001:Credit", "--limit", "10"]),
        ("history --account first escrow --limit 10",
         ["ledger", "history", str(db), "--account", "escrow:Task:t1:Credit", "--limit", "10"]),
        ("audit", ["audit", str(db)]),
        ("replay", ["replay", str(db)]),
    ]
    cmds += [(f"export {f}", ["ledger", "export", str(db), "--format", f, "-o",
                              str(d / f"export.{f}")]) for f in FORMATS]
    heavy = {"z3", "lark"}
    res["imports"] = {
        name: sorted(heavy & _imports(["-m", "charter.cli", *cmd], d))
        for name, cmd in [("run --memory", ["run", policy, str(events), "--memory", "-q"])]
        + cmds
    } if imports else {}
    for name, cmd in cmds:
        res[name] = _run([*CHARTER, *cmd], d)
        out = d / f"export.{name.split()[-1]}"
        if name.startswith("export") and out.exists():
            res[name] = (*res[name][:3], f"{out.stat().st_size / 1e6:.0f} MB")
            out.unlink()
    print(f"{n} events ({applied} applied): {res['bytes/event']:.0f} bytes/event "
          f"({db.stat().st_size / 1e6:.1f} MB)")
    print(f"  {'command':<42}{'wall s':>9}{'cpu s':>9}{'peak MB':>9}")
    for k, v in res.items():
        if isinstance(v, tuple):
            print(f"  {k:<42}{v[0]:>9.2f}{v[1]:>9.2f}{v[2]:>9.0f}")
    sys.stdout.flush()
    for p in (events, db, Path(str(db) + ".rejections.jsonl"), Path(str(db) + ".lock")):
        p.unlink(missing_ok=True)
    return res


def main() -> None:
    args = sys.argv[1:]
    keep = None
    if "--keep" in args:
        keep = Path(args[args.index("--keep") + 1])
        del args[args.index("--keep"):args.index("--keep") + 2]
    sizes = [int(a) for a in args if not a.startswith("--")] or [10_000, 100_000]
    if "--big" in args and 1_000_000 not in sizes:
        sizes.append(1_000_000)
    results = []
    with tempfile.TemporaryDirectory(dir=keep) as tmp:
        d = Path(tmp)
        for i, n in enumerate(sizes):
            results.append(one_size(n, d, imports=i == 0))
        v = _run([*CHARTER, "--version"], d)
        imp = _run([sys.executable, "-c", "import charter"], d)
        p = _run([sys.executable, "-c", "pass"], d)
    print(f"\nstart-up CPU: charter --version {v[1]:.3f} s, import charter {imp[1]:.3f} s, "
          f"python -c pass {p[1]:.3f} s")
    for r in results:
        for name, mods in r.get("imports", {}).items():
            print(f"  {name}: imports {', '.join(mods) if mods else 'neither z3 nor lark'}")
    # one table, a column per size: cpu s / peak MB (wall s)
    names = [k for k, x in results[0].items() if isinstance(x, tuple)]
    head = "| command | " + " | ".join(f"{r['events']:,} events" for r in results) + " |"
    print("\n" + head)
    print("|---|" + "---|" * len(results))
    print("| bytes per event | " + " | ".join(f"{r['bytes/event']:.0f}" for r in results) + " |")
    for k in names:
        cells = []
        for r in results:
            w, c, m, extra = r[k]
            size = f", {extra}" if k.startswith("export") else ""
            cells.append(f"{c:.2f} s CPU, {m:.0f} MB ({w:.1f} s wall{size})")
        print(f"| {k} | " + " | ".join(cells) + " |")
    run = "run (SQLite, batch 1000)"
    for k in ("audit", "replay"):
        print(f"| {k} CPU / {run} CPU | "
              + " | ".join(f"{r[k][1] / r[run][1]:.2f}" for r in results) + " |")
    print(f"| start-up (CPU) | charter --version {v[1]:.3f} s; import charter {imp[1]:.3f} s; "
          f"python -c pass {p[1]:.3f} s |" + " |" * (len(results) - 1))
    mods = results[0].get("imports", {})
    if mods:
        print("| z3 / lark imported by | " + "; ".join(
            f"{k}: {', '.join(m) or 'neither'}" for k, m in mods.items()) + " |"
            + " |" * (len(results) - 1))


if __name__ == "__main__":
    main()
