"""What a cold ``charter`` command costs before and around its real work, next to Python's.

    PYTHONPATH=. python benchmarks/bench_startup.py [--rounds N] [--policy FILE]

Every row is a fresh process (``sys.executable -m charter.cli ...``), run ``--rounds`` times,
rows interleaved (one round runs every row once), so a load change hits every row alike.
Printed per row: the median CPU seconds (user + system, of that process alone, from
``wait4``), its user and system parts, the median wall seconds, the peak RSS, and the CPU as a
multiple of the reference ``python -c pass`` measured in the same rounds.  The load average is
printed before and after.  Issue 14 item 5: every stdlib policy verifies in < 2 s cold.

Cold means: a new interpreter, nothing of Charter in memory, no verify result cache
(``--no-cache``).  Byte code is compiled beforehand (an installed Charter has its ``.pyc``
files; this checkout may run with ``PYTHONDONTWRITEBYTECODE``), into a temporary
``PYTHONPYCACHEPREFIX`` so the tree is not written.  The parser's tables come from the cache
directory (``$CHARTER_CACHE_DIR``, a temporary one) except in the row that says they are
built: that is the first command after an install or a grammar change.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GIG = ROOT / "examples" / "gig_market"

TINY = """
policy tiny version "1"
asset Credit: token, decimals 2, mintable, burnable, cap 1000000
role Member
on join() by p: party { admit p as Member }
on mint_to(to: Member, amount: Credit) by clock {
    require amount > 0 Credit else "nothing to mint"
    require supply(Credit) + amount <= 1000000 Credit else "over the cap"
    mint amount to to
}
on pay(to: Member, amount: Credit) by p: Member {
    require amount > 0 Credit else "nothing to pay"
    require balance(p, Credit) >= amount else "not enough"
    transfer amount from p to to
}
"""


# one `charter verify --no-cache POLICY`, cut into its phases (CPU seconds of each)
PHASES = r"""
import sys, time
c = [time.process_time()]
import click
from charter.compiler.pipeline import Compilation
c.append(time.process_time())
from charter.compiler import verify
c.append(time.process_time())
from charter.compiler import parse
parse._parser()
c.append(time.process_time())
policy = Compilation.from_path(sys.argv[1]).ir
c.append(time.process_time())
verify.verify(policy, use_cache=False)
c.append(time.process_time())
print(" ".join(f"{b - a:.4f}" for a, b in zip([0.0] + c, c)))
"""
PHASE_NAMES = ("interpreter", "click + compiler imports", "verifier imports (z3)",
               "parser tables (cached)", "compile POLICY", "verify")


def run(argv: list[str], env: dict[str, str]) -> tuple[float, float, float, int]:
    """(user, system, wall, peak RSS in MB) of one process running ``argv``."""
    import time

    t0 = time.perf_counter()
    p = subprocess.Popen(argv, env=env, cwd=ROOT, stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE)
    _, status, ru = os.wait4(p.pid, 0)
    wall = time.perf_counter() - t0
    p.returncode = os.waitstatus_to_exitcode(status)
    err = p.stderr.read().decode(errors="replace") if p.stderr else ""
    if p.returncode not in (0,):
        raise SystemExit(f"{' '.join(argv)} exited {p.returncode}:\n{err[-2000:]}")
    return ru.ru_utime, ru.ru_stime, wall, ru.ru_maxrss // 1024


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--policy", default=str(ROOT / "stdlib_policies" / "asset_royalties.charter"),
                    help="the policy of the check/verify rows (default asset_royalties, the "
                    "slowest stdlib policy to verify)")
    args = ap.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="bench-startup-"))
    try:
        measure(args, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def measure(args: argparse.Namespace, tmp: Path) -> None:
    (tmp / "tiny.charter").write_text(TINY)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env.update(PYTHONPYCACHEPREFIX=str(tmp / "pyc"), CHARTER_CACHE_DIR=str(tmp / "cache"),
               PYTHONPATH=os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(
                   os.pathsep))
    py, cli = sys.executable, [sys.executable, "-m", "charter.cli"]
    pol = args.policy
    empty = 0

    def no_tables() -> dict[str, str]:
        nonlocal empty
        empty += 1
        return {**env, "CHARTER_CACHE_DIR": str(tmp / f"empty{empty}")}

    rows = [
        ("reference: python -c pass", [py, "-c", "pass"], None),
        ("reference: python -c 'import z3'", [py, "-c", "import z3"], None),
        ("charter --version", [*cli, "--version"], None),
        ("python: import charter; charter.open_runtime",
         [py, "-c", "import charter; charter.open_runtime"], None),
        ("charter check POLICY", [*cli, "check", pol], None),
        ("charter check POLICY, tables built", [*cli, "check", pol], no_tables),
        ("charter run gig example (53 events, --memory)",
         [*cli, "run", str(GIG / "policy.charter"), str(GIG / "events.jsonl"), "--memory", "-q"],
         None),
        ("charter verify --no-cache TINY", [*cli, "verify", "--no-cache", str(tmp / "tiny.charter")],
         None),
        ("charter verify --no-cache POLICY", [*cli, "verify", "--no-cache", pol], None),
    ]
    phases_argv = [py, "-c", PHASES, pol]
    for argv in [r[1] for r in rows] + [phases_argv]:  # byte code, parser tables: untimed
        run(argv, env)
    samples: dict[str, list[tuple[float, float, float, int]]] = {r[0]: [] for r in rows}
    phases: list[list[float]] = []
    load0 = os.getloadavg()
    for _ in range(args.rounds):
        for label, argv, env_of in rows:
            samples[label].append(run(argv, env_of() if env_of else env))
        out = subprocess.run(phases_argv, env=env, cwd=ROOT, capture_output=True, text=True)
        phases.append([float(x) for x in out.stdout.split()])
    load1 = os.getloadavg()

    print(f"cold start-up, {args.rounds} rounds, medians; POLICY = {Path(pol).name}; "
          f"load {load0[0]:.1f} -> {load1[0]:.1f}")
    print(f"  {'':<46} {'CPU s':>7} {'user':>6} {'sys':>6} {'wall s':>7} {'MB':>5}  ref")
    ref = None
    for label, _argv, _env in rows:
        s = samples[label]
        cpu = statistics.median(u + y for u, y, _w, _m in s)
        ref = ref or cpu
        print(f"  {label:<46} {cpu:7.3f} {statistics.median(u for u, *_ in s):6.3f} "
              f"{statistics.median(y for _u, y, *_ in s):6.3f} "
              f"{statistics.median(w for *_, w, _m in s):7.3f} {max(m for *_, m in s):5d}  "
              f"{cpu / ref:5.1f}x")
    print("  (CPU = user + system of that process; ref = CPU / python -c pass's)")
    print("phases of one `charter verify --no-cache POLICY` (CPU s, medians): " + ", ".join(
        f"{name} {statistics.median(p[i] for p in phases):.3f}"
        for i, name in enumerate(PHASE_NAMES)))


if __name__ == "__main__":
    main()
