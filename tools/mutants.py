"""The mutation suite over the standard library: does `charter verify` catch realistic bugs?

Reads ``tests/verify/mutants/mutants.toml`` (one row per one-line bug), applies each to its
stdlib policy, verifies the original and the mutant with the same options, and prints per
mutant: its id, policy, bug kind, verdict, the checks that caught it, and whether the
counterexample replays as a ``charter test`` on the runtime.

A mutant is **caught** when verifying it fails ``--strict`` on a result that does not fail
on the original policy (a refutation, guard missing, vacuous or warning that the bug
introduced), and one of those is a check the row expects.  Anything else - a mutant that
does not compile, does not apply, is not caught or is caught by an unexpected check only -
is a failure of the suite.

    python tools/mutants.py                 # every mutant
    python tools/mutants.py --only ID ...   # some of them
    python tools/mutants.py --ci            # the rows marked `ci` (what the test suite runs)
    python tools/mutants.py --json out.json # also write the table as JSON

Exit status 0 when every selected mutant is caught as expected, else 1.
"""

from __future__ import annotations

import argparse
import difflib
import json
import sys
import time
import tomllib
from pathlib import Path
from typing import Any, Optional

import attrs

ROOT = Path(__file__).resolve().parent.parent
TABLE = ROOT / "tests" / "verify" / "mutants" / "mutants.toml"
STDLIB = ROOT / "stdlib_policies"

FAILING = ("refuted", "guard_missing", "vacuous", "warning")


@attrs.define
class Mutant:
    id: str
    policy: str
    find: str
    replace: str
    kind: str
    caught_by: list
    ci: bool = False


@attrs.define
class Outcome:
    mutant: Mutant
    verdict: str  # caught | missed | unexpected | invalid
    caught_by: list = attrs.Factory(list)  # checks failing on the mutant but not the original
    replays: str = "-"  # yes | no | - (no counterexample to replay)
    detail: str = ""
    seconds: float = 0.0


def load(path: Path = TABLE) -> list[Mutant]:
    data = tomllib.loads(path.read_text("utf-8"))
    out = []
    for row in data["mutant"]:
        out.append(Mutant(**row))
    ids = [m.id for m in out]
    dup = {i for i in ids if ids.count(i) > 1}
    if dup:
        raise SystemExit(f"duplicate mutant ids: {sorted(dup)}")
    return out


def apply(m: Mutant) -> str:
    """The mutant's source; raises ValueError when the row does not apply exactly once."""
    src = (STDLIB / f"{m.policy}.charter").read_text("utf-8")
    n = src.count(m.find)
    if n != 1:
        raise ValueError(f"`find` occurs {n} times in {m.policy}.charter (must be once)")
    # one line: the lines of `find` and `replace` differ in at most one place (a changed,
    # deleted or added line); the rest is context that locates it
    ops = difflib.SequenceMatcher(a=m.find.split("\n"), b=m.replace.split("\n"),
                                  autojunk=False).get_opcodes()
    touched = sum(max(i2 - i1, j2 - j1) for tag, i1, i2, j1, j2 in ops if tag != "equal")
    if touched > 1:
        raise ValueError(f"a mutant changes one line; this one changes {touched}")
    return src.replace(m.find, m.replace)


def _failing(results: list) -> dict[str, Any]:
    return {r.name: r for r in results if r.status in FAILING}


def _verify(text: str, file: str, opts: Any) -> tuple[Any, list]:
    from charter.compiler import verify as V
    from charter.compiler.pipeline import Compilation

    comp = Compilation.from_text(text, file=file)
    if not comp.ok:
        errs = [d for d in comp.diagnostics if d.code.startswith("E")]
        raise ValueError("does not compile: " + "; ".join(f"{d.code} {d.message}"
                                                          for d in errs[:3]))
    policy = comp.ir
    return policy, V.verify(policy, opts, use_cache=False)


def _replays(results: list) -> str:
    """Did a new failing result's counterexample replay on the runtime from genesis (the
    verifier's own replay, :mod:`charter.compiler.verify.replay`)?  "-" when no result has
    a counterexample to replay (a warning lists sites instead)."""
    cexs = [r.counterexample for r in results if r.counterexample]
    if not cexs:
        return "-"
    return "yes" if any(c.get("replayed") for c in cexs) else "no"


_ORIGINALS: dict[str, tuple] = {}


def run(m: Mutant, opts: Any, replay: bool = True) -> Outcome:
    t0 = time.perf_counter()
    file = f"{m.policy}.charter"
    try:
        text = apply(m)
        if m.policy not in _ORIGINALS:
            src = (STDLIB / file).read_text("utf-8")
            _ORIGINALS[m.policy] = _verify(src, file, opts)
        _, before = _ORIGINALS[m.policy]
        _, after = _verify(text, file, opts)
    except ValueError as exc:
        return Outcome(m, "invalid", detail=str(exc), seconds=time.perf_counter() - t0)
    old = _failing(before)
    new = [r for n, r in _failing(after).items()
           if n not in old or old[n].status != r.status]
    kinds = sorted({r.kind for r in new})
    if not new:
        verdict = "missed"
    elif set(kinds) & set(m.caught_by):
        verdict = "caught"
    else:
        verdict = "unexpected"
    rep = _replays(new) if replay and new else "-"
    detail = "; ".join(f"{r.name}: {r.status}" for r in new[:4])
    return Outcome(m, verdict, kinds, rep, detail, time.perf_counter() - t0)


def main(argv: Optional[list[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--only", nargs="*", default=None, help="mutant ids to run")
    ap.add_argument("--ci", action="store_true", help="only the rows marked `ci`")
    ap.add_argument("--timeout-ms", type=int, default=5000)
    ap.add_argument("--no-replay", action="store_true")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    from charter.compiler import verify as V

    mutants = load()
    if args.only:
        mutants = [m for m in mutants if m.id in set(args.only)]
    if args.ci:
        mutants = [m for m in mutants if m.ci]
    opts = V.Options(timeout_ms=args.timeout_ms)
    outcomes = []
    print(f"{'mutant':<36} {'policy':<22} {'verdict':<10} {'caught by':<30} {'replays':<7} kind")
    for m in mutants:
        o = run(m, opts, replay=not args.no_replay)
        outcomes.append(o)
        print(f"{m.id:<36} {m.policy:<22} {o.verdict:<10} {','.join(o.caught_by) or '-':<30} "
              f"{o.replays:<7} {m.kind}", flush=True)
        if o.verdict != "caught":
            print(f"    {o.detail or 'nothing new fails'} (expected: {', '.join(m.caught_by)})")
    caught = sum(o.verdict == "caught" for o in outcomes)
    policies = len({o.mutant.policy for o in outcomes})
    replayed = sum(o.replays == "yes" for o in outcomes)
    with_cex = sum(o.replays in ("yes", "no") for o in outcomes)
    print(f"\n{caught}/{len(outcomes)} caught over {policies} policies; "
          f"counterexamples replayed: {replayed}/{with_cex}; "
          f"{sum(o.seconds for o in outcomes):.1f} s")
    if args.json:
        args.json.write_text(json.dumps([
            {"id": o.mutant.id, "policy": o.mutant.policy, "kind": o.mutant.kind,
             "verdict": o.verdict, "caught_by": o.caught_by, "replays": o.replays,
             "detail": o.detail, "seconds": round(o.seconds, 2)} for o in outcomes
        ], indent=2))
    return 0 if caught == len(outcomes) else 1


if __name__ == "__main__":
    sys.exit(main())
