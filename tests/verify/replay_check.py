"""Checking an emitted counterexample the way a reviewer would: its ``test`` block compiled
with the policy and run (it must fail, on the violation), its JSONL replayed through
``charter run --memory --check`` (the violation must show), and the same events on the
fixed twin (the violation must not show).  Shared by the replay tests and tools/."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any, Optional

from click.testing import CliRunner

from charter.cli import cli
from charter.compiler.diagnostics import CharterError
from charter.compiler.pipeline import Compilation
from charter.runtime.testing import run_tests

REFUSAL = {
    "non_negative": ("negative_amount",),
    "escrow_bound": ("insufficient_funds",),
    "no_overdraft": ("insufficient_funds",),
    "supply_cap": ("cap_exceeded",),
    "delete_empty": ("record_holds_value",),
}


def run_cli(policy_text: str, events_jsonl: str, params: list[str], roles: tuple = (),
            records: tuple = ()) -> dict:
    """``charter run POLICY EVENTS --memory --check --json`` on temp files; with ``roles``
    or ``records``, into a ledger file instead, and ``out["members"][role]`` from ``charter
    ledger members LEDGER ROLE`` (``out["records"][record]`` from ``charter ledger records
    LEDGER RECORD``) afterwards."""
    with tempfile.TemporaryDirectory() as d:
        pol = Path(d) / "policy.charter"
        pol.write_text(policy_text)
        ev = Path(d) / "events.jsonl"
        ev.write_text(events_jsonl + "\n")
        db = str(Path(d) / "ledger.sqlite")
        where = ["--db", db] if roles or records else ["--memory"]
        args = ["run", str(pol), str(ev), *where, "--check", "--json"]
        for p in params:
            args += ["--param", p]
        r = CliRunner().invoke(cli, args, catch_exceptions=False)
        try:
            out = json.loads(r.output)
        except ValueError:
            # e.g. a parameter value the (fixed) policy's range refuses
            return {"error": r.output.strip()}
        out["members"] = {}
        for role in roles:
            m = CliRunner().invoke(cli, ["ledger", "members", db, role], catch_exceptions=False)
            out["members"][role] = json.loads(m.output) if m.exit_code == 0 else {}
        out["records"] = {}
        for rec in records:
            m = CliRunner().invoke(cli, ["ledger", "records", db, rec], catch_exceptions=False)
            out["records"][rec] = json.loads(m.output) if m.exit_code == 0 else {}
    return out


def emitted_test_failures(policy_text: str, charter_test: str) -> tuple[bool, list[str]]:
    """(passed, failures) of the emitted test block compiled with the policy."""
    try:
        pol = Compilation.from_text(policy_text + "\n" + charter_test + "\n",
                                    file="twin.charter").ir
    except CharterError as exc:  # a broken emission is a finding of the suite, not a crash
        return True, [f"the emitted test does not compile: {str(exc).splitlines()[0]}"]
    found = [r for r in run_tests(pol) if r.name.startswith("counterexample")]
    if not found:  # e.g. "# not expressible as a test: ..." instead of a test block
        return True, [f"no test block emitted: {charter_test.strip()[:200]}"]
    (res,) = found
    return res.passed, list(res.failures)


def jsonl_shows(result: Any, out: dict, n_events: int) -> Optional[str]:
    """None if ``charter run``'s summary shows ``result``'s violation, else why not."""
    kind = result.kind
    if "error" in out:
        return f"charter run refused the input: {out['error']}"
    if kind in REFUSAL:
        codes = {x["code"] for x in out["reasons"]}
        if out["rejected"] == 0 and _timed(result):
            # a timed handler's firing is refused inside a tick that itself applies
            from charter.compiler.verify.replay import _code_of

            fired = [t for t in out.get("timer_failures", []) if t["handler"] == result.handler]
            if any(_code_of(t["reason"]) in REFUSAL[kind] for t in fired):
                return None
            return f"expected {result.handler} to fail with {REFUSAL[kind]}, got {fired}"
        if out["rejected"] != 1 or not codes & set(REFUSAL[kind]):
            return f"expected the last event refused with {REFUSAL[kind]}, got {out['reasons']}"
        return None
    if kind in ("invariant", "postcondition"):
        # `run --check` evaluates declared invariants and ensures clauses (old(...) too)
        names = {v["property"] for v in out["violations"] or []}
        return None if result.name in names else f"no violation of {result.name}: {out}"
    if kind in ("budget", "authority", "once", "stranded"):
        # not runtime errors: every event applies, and the final balances break the claims
        # the scenario states (the same ones its test's `expect` lines assert)
        if out["rejected"] != 0:
            return f"events were rejected: {out['reasons']}"
        claims = result.counterexample["scenario"].get("violates") or []
        moved = [c for c in claims if "record" in c]
        claims = [c for c in claims if "record" not in c]
        if not claims:
            return "the scenario states no balance claim to check"
        if not any(not _claim_holds(out, c) for c in claims):
            return f"every claim holds after the events: {claims}"
        # ... unless the record advanced (a new stage may pay again: not a second payment)
        for c in moved:
            now = out["records"].get(c["record"], {}).get(c["key"], {}).get(c["field"])
            if now != c["unchanged"]:
                return f"the record advanced: {c['record']}({c['key']}).{c['field']} is {now}"
        return None
    return f"no JSONL check for {kind}"


def _claim_holds(out: dict, claim: dict) -> bool:
    if "role" in claim:  # the party must not be a member, and is
        return claim["party"] not in out["members"].get(claim["role"], {})
    v = out["balances"].get(claim["account"], 0)
    op, x = claim["op"], claim["amount"]
    return v >= x if op == ">=" else v <= x if op == "<=" else v == x


def check_emitted(
    result: Any, buggy_text: str, fixed_text: Optional[str]
) -> list[str]:
    """Every problem with ``result``'s emitted scenario (empty: it is a proper replay)."""
    problems = []
    cex = result.counterexample
    sc = cex["scenario"]
    if not cex.get("replayed"):
        return ["not replayed: " + cex.get("reach_note", "?")]
    passed, failures = emitted_test_failures(buggy_text, sc["charter_test"])
    if passed and failures:
        problems.append(failures[0])
    elif passed:
        problems.append("the emitted test passes on the buggy policy: it asserts nothing")
    elif any("setup failed" in f or "expected ok, got rejected" in f and not _right(result, f)
             for f in failures):
        problems.append(f"the emitted test fails for another reason: {failures}")
    elif result.kind in REFUSAL and not any(_right(result, f) for f in failures):
        problems.append(f"the emitted test does not fail on the refusal: {failures}")
    elif result.kind == "invariant" or result.kind == "budget":
        if not any(" is false" in f for f in failures):
            problems.append(f"the emitted test does not fail on the property: {failures}")
    n = len(sc["events"])
    roles = tuple(sorted({c["role"] for c in sc.get("violates") or [] if "role" in c}))
    records = tuple(sorted({c["record"] for c in sc.get("violates") or [] if "record" in c}))
    out = run_cli(buggy_text, sc["events_jsonl"], sc["run_params"], roles, records)
    why = jsonl_shows(result, out, n)
    if why:
        problems.append("JSONL: " + why)
    if fixed_text is not None:
        out = run_cli(fixed_text, sc["events_jsonl"], sc["run_params"], roles, records)
        if jsonl_shows(result, out, n) is None and result.kind != "budget":
            problems.append(f"the fixed twin shows the same violation: {out['reasons']}")
    return problems


def _timed(result: Any) -> bool:
    """The finding is about a timed handler: its scenario ends in a clock tick."""
    events = (result.counterexample.get("scenario") or {}).get("events") or [{}]
    return events[-1].get("type") == "@tick"


def _right(result: Any, failure: str) -> bool:
    if _timed(result) and "fired and was rejected" in failure:
        from charter.compiler.verify.replay import _code_of

        return _code_of(failure.split("was rejected:", 1)[-1]) in REFUSAL.get(result.kind, ())
    return any(c in failure for c in REFUSAL.get(result.kind, ()))
