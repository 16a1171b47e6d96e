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

The ``replays`` column: ``yes`` when a new finding's scenario from genesis replayed on the
runtime; ``-`` when no new finding has a counterexample (an uncapped mint is a warning that
lists its mint sites); ``unreached`` when every new finding says plainly that it was not
reached from genesis within the search depth - expected only for rows whose ``unreached``
field says why (a guard a second one makes redundant, a cap only thousands of events
reach), anything else is a failure of the suite; ``no`` when a scenario was found but did
not replay (an internal error: never shown as a refutation), also a failure.

Verdicts come from Z3's resource limit (the same on any machine); the wall-clock limit is
only the run's safety net unless ``--timeout-ms`` says otherwise.

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
    # why no finding of this mutant can replay from genesis within the search depth (empty:
    # one must)
    unreached: str = ""


@attrs.define
class Outcome:
    mutant: Mutant
    verdict: str  # caught | missed | unexpected | invalid
    caught_by: list = attrs.Factory(list)  # checks failing on the mutant but not the original
    replays: str = "-"  # yes | unreached | no | - (no counterexample to replay)
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
    a counterexample to replay (a warning lists sites instead); "unreached" when each says
    it was not reached from genesis (and claims nothing); "no" when one was found and did
    not replay."""
    cexs = [r.counterexample for r in results if r.counterexample]
    if not cexs:
        return "-"
    if any(c.get("replayed") for c in cexs):
        return "yes"
    if any(c.get("internal_error") for c in cexs):
        return "no"
    return "unreached"


def ok(o: "Outcome") -> bool:
    """Caught, and replayed wherever the row does not explain why it cannot be."""
    if o.verdict != "caught" or o.replays == "no":
        return False
    return o.replays != "unreached" or bool(o.mutant.unreached)


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
    ap.add_argument("--timeout-ms", type=int, default=None,
                    help="wall-clock safety net per query (default: the verifier's)")
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
    opts = V.Options() if args.timeout_ms is None else V.Options(timeout_ms=args.timeout_ms)
    outcomes = []
    print(f"{'mutant':<36} {'policy':<22} {'verdict':<10} {'caught by':<30} {'replays':<7} kind")
    for m in mutants:
        o = run(m, opts, replay=not args.no_replay)
        outcomes.append(o)
        print(f"{m.id:<36} {m.policy:<22} {o.verdict:<10} {','.join(o.caught_by) or '-':<30} "
              f"{o.replays:<7} {m.kind}", flush=True)
        if o.verdict != "caught":
            print(f"    {o.detail or 'nothing new fails'} (expected: {', '.join(m.caught_by)})")
        elif o.replays == "unreached":
            print(f"    not reached from genesis, said so: {m.unreached or 'NO REASON GIVEN (a failure)'}")
        elif o.replays == "no":
            print(f"    a scenario was found that does not replay: {o.detail}")
    caught = sum(o.verdict == "caught" for o in outcomes)
    policies = len({o.mutant.policy for o in outcomes})
    replayed = sum(o.replays == "yes" for o in outcomes)
    unreached = sum(o.replays == "unreached" for o in outcomes)
    with_cex = sum(o.replays in ("yes", "no", "unreached") for o in outcomes)
    print(f"\n{caught}/{len(outcomes)} caught over {policies} policies; "
          f"with a counterexample: {with_cex} (replayed from genesis: {replayed}, not reached "
          f"and said so: {unreached}); warnings without one: "
          f"{sum(o.replays == '-' and o.verdict == 'caught' for o in outcomes)}; "
          f"{sum(o.seconds for o in outcomes):.1f} s")
    if args.json:
        args.json.write_text(json.dumps([
            {"id": o.mutant.id, "policy": o.mutant.policy, "kind": o.mutant.kind,
             "verdict": o.verdict, "caught_by": o.caught_by, "replays": o.replays,
             "detail": o.detail, "seconds": round(o.seconds, 2)} for o in outcomes
        ], indent=2))
    return 0 if all(ok(o) for o in outcomes) else 1


if __name__ == "__main__":
    sys.exit(main())
