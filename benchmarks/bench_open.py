"""What opening a ledger costs as the journal grows, next to a full audit of the same file.

    PYTHONPATH=. python benchmarks/bench_open.py [SIZES...]      # default: 10000 100000

For each size, settles that many gig-market events (examples/gig_market/
generate.py) into a fresh SQLite ledger, then times, best of three:

* ``check``: the open-time integrity check alone (a read-only store plus
  ``runtime/integrity.py``'s ``check_open``: recorded policy, checkpoint,
  chain head, the newest 1,000 entries re-hashed, state digest);
* ``open``: ``open_runtime(policy, path)`` for writing and ``close()`` --
  the lock, the check, loading the state and the applied ids;
* ``read all entries``: fetching every journal row, which is what opening
  did before the checkpoint (the floor of any whole-journal check);
* ``audit``: ``audit_ledger`` (re-hash the chain, recompute every balance);
* ``audit+replay``: that plus ``replay``, i.e. what ``charter audit`` does.

Two workloads: the gig market, whose state grows with the journal (every
task stays a record), and ``payments`` -- 50 members paying each other --
whose state stays ~150 rows however long the journal.  The check should
grow with the state (which the runtime must load anyway), not with the
journal; ``open`` also reads every applied event id (one column, in
SQLite's C code); the audit grows with the journal.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Iterator

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "examples" / "gig_market"))
sys.path.insert(0, str(ROOT))

from generate import gig_events  # noqa: E402


def best(fn: Callable[[], Any], repeat: int = 3) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


PAYMENTS = """
policy payments version "1"
asset Credit: token, decimals 2, mintable, burnable
role Member
on join() by p: party { admit p as Member }
on mint_to(to: Member, amount: Credit) by clock { mint amount to to }
on pay(to: Member, amount: Credit) by p: Member { transfer amount from p to to }
"""


def payment_events(n: int) -> Iterator[dict]:
    """50 members, funded once, then paying each other small amounts: bounded state."""
    members = [f"m{i:02d}" for i in range(50)]
    k = 0

    def ev(typ: str, sub: str, **args: Any) -> dict:
        nonlocal k
        k += 1
        return {"id": f"p{k}", "type": typ, "submitter": sub, "time": k, "args": args}

    for m in members:
        yield ev("join", m)
    for m in members:
        yield ev("mint_to", "clock", to=m, amount=1_000_000)
    for i in range(n - 100):
        yield ev("pay", members[i % 50], to=members[(i * 7 + 3) % 50], amount=1 + i % 100)


def main() -> None:
    from charter.compiler.pipeline import Compilation
    from charter.runtime.api import audit_ledger, open_runtime, replay
    from charter.runtime.integrity import check_open
    from charter.runtime.sqlite_store import SqliteStore

    sizes = [int(a) for a in sys.argv[1:]] or [10_000, 100_000]
    workloads = [
        ("gig market",
         Compilation.from_path(ROOT / "examples" / "gig_market" / "policy.charter").ir,
         lambda n: gig_events(n, seed=7)),
        ("payments", Compilation.from_text(PAYMENTS, "payments.charter").ir, payment_events),
    ]
    print("ledgers on SQLite (WAL); seconds, best of 3\n")
    header = (f"{'workload':<10} {'events':>9} {'entries':>8} {'state rows':>10} {'MB':>6} | "
              f"{'check':>6} {'open':>6} | {'read all entries':>16} {'audit':>6} "
              f"{'audit+replay':>12}")
    print(header)
    print("-" * len(header))
    with tempfile.TemporaryDirectory() as d:
        for (name, policy, stream), n in [(w, n) for w in workloads for n in sizes]:
            db = str(Path(d) / f"{name[:3]}{n}.sqlite")
            rt = open_runtime(policy, db, batch=1000)
            rt.submit_batch(stream(n))
            entries = rt.seq
            rows = len(rt.state_rows())
            rt.close()

            def check() -> None:
                s = SqliteStore(db, readonly=True)
                problems, _ = check_open(s)
                assert not problems, problems
                s.close()

            def open_close(policy: Any = policy, db: str = db) -> None:
                open_runtime(policy, db).close()

            def read_all() -> None:
                s = SqliteStore(db, readonly=True)
                for _ in s.journal():
                    pass
                s.close()

            def audit() -> None:
                assert audit_ledger(db).ok

            def audit_replay() -> None:
                assert audit_ledger(db).ok and replay(db).ok

            t_check, t_open, t_read = best(check), best(open_close), best(read_all)
            t_audit, t_full = best(audit, 2), best(audit_replay, 1)
            mb = Path(db).stat().st_size / 1e6
            print(f"{name:<10} {n:>9,} {entries:>8,} {rows:>10,} {mb:>6.1f} | {t_check:>6.3f} "
                  f"{t_open:>6.3f} | {t_read:>16.3f} {t_audit:>6.2f} {t_full:>12.2f}", flush=True)


if __name__ == "__main__":
    main()
