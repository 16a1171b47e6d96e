"""Runs a policy's in-language ``test`` blocks on the runtime.

``given`` steps set up state directly (roles admitted, funds minted from the
asset's supply account so the books still balance, parameters set); they
are setup, not events, so they are not journaled.  ``when`` submits an event
(id ``<test>#<step>``; without ``at`` it reuses the last event time, 0 at
first); ``expect ok`` / ``expect rejected "text"`` look at the last event's
outcome (the text must occur in the rejection's message or code);
``expect <cond>`` evaluates the condition on the current state.
"""

from __future__ import annotations

from typing import Any, Optional

import attrs

from charter.compiler import display, ir

from .codegen import Compiler, Env
from .engine import TICK, Outcome, ParamError, Rejection, Runtime
from .values import Rejected


@attrs.frozen
class TestResult:
    policy: str
    name: str
    passed: bool
    failures: tuple[str, ...]
    span: ir.Span
    steps: int
    journal_hash: str = ""
    outcomes: tuple[str, ...] = ()  # each `when` event's receipt hash or rejection text

    def to_dict(self) -> dict[str, Any]:
        return {
            "policy": self.policy,
            "name": self.name,
            "passed": self.passed,
            "failures": list(self.failures),
            "file": self.span.file,
            "line": self.span.line,
            "steps": self.steps,
        }


def run_tests(
    policy: ir.Policy, names: Optional[list[str]] = None, backend: str = "python"
) -> list[TestResult]:
    """Run every ``test`` of ``policy`` (or those named) on a fresh in-memory runtime each."""
    return [run_test(policy, t, backend) for t in policy.tests if names is None or t.name in names]


def run_test(policy: ir.Policy, test: ir.Test, backend: str = "python") -> TestResult:
    rt = Runtime(policy, backend=backend)
    outcomes: list[str] = []
    comp = Compiler(policy)
    failures: list[str] = []
    last: Optional[Outcome] = None
    now = 0
    timed = {h.name: h.kind != "event" for h in policy.handlers}
    for i, step in enumerate(test.steps, 1):
        where = _where(step, i)
        try:
            if isinstance(step, ir.GivenRole):
                _given_role(rt, comp, step, now)
            elif isinstance(step, ir.GivenFunds):
                _given_funds(rt, comp, step, now)
            elif isinstance(step, ir.GivenParam):
                rt.set_param(step.name, step.value)
            elif isinstance(step, ir.WhenEvent) and timed.get(step.event):
                now = step.time if step.time is not None else now
                last = _advance(rt, step.event, f"{test.name}#{i}", now)
                outcomes.append(last.journal_hash if last.applied else str(last))
            elif isinstance(step, ir.WhenEvent):
                if step.time is not None:
                    now = step.time
                last = rt.submit(
                    {
                        "id": f"{test.name}#{i}",
                        "type": step.event,
                        "submitter": step.submitter,
                        "time": now,
                        "args": dict(step.args),
                    }
                )
                outcomes.append(last.journal_hash if last.applied else str(last))
            elif isinstance(step, ir.ExpectOk):
                if last is None:
                    failures.append(f"{where}: expect ok, but no event was submitted")
                elif not last.applied:
                    failures.append(f"{where}: expected ok, got rejected: {last}")
            elif isinstance(step, ir.ExpectRejected):
                if last is None:
                    failures.append(f"{where}: expect rejected, but no event was submitted")
                elif last.applied:
                    failures.append(
                        f"{where}: expected rejected"
                        + (f" {step.contains!r}" if step.contains else "")
                        + ", but it was applied"
                    )
                elif (
                    step.contains
                    and step.contains not in last.message
                    and step.contains not in last.code
                ):
                    failures.append(
                        f"{where}: expected a rejection containing {step.contains!r}, got: {last}"
                    )
            elif isinstance(step, ir.ExpectTrue):
                env = Env(rt.state, rt.params, now, "clock", rt.step_budget)
                try:
                    ok = comp.expr(step.cond)(env)
                except Rejected as r:
                    failures.append(f"{where}: expect {step.text}: could not evaluate: {r.message}")
                    continue
                if not ok:
                    failures.append(
                        f"{where}: expect {step.text or 'condition'} is false"
                        + _explain(comp, step.cond, env, policy)
                    )
            else:
                failures.append(f"{where}: unknown test step {type(step).__name__}")
        except (Rejected, ParamError) as exc:
            failures.append(f"{where}: setup failed: {getattr(exc, 'message', exc)}")
    return TestResult(
        policy=policy.name,
        name=test.name,
        passed=not failures,
        failures=tuple(failures),
        span=test.span,
        steps=len(test.steps),
        journal_hash=rt.journal_hash,
        outcomes=tuple(outcomes),
    )


def _advance(rt: Runtime, handler: str, eid: str, now: int) -> Outcome:
    """``when <timed handler>() by clock at T``: a clock tick at T; the step's outcome is that
    handler's firing (rejected if any of its firings was, or if it was not due by T)."""
    out = rt.submit({"id": eid, "type": TICK, "submitter": "clock", "time": now, "args": {}})
    if not out.applied:
        return out
    fired = [t for t in out.timers if t.get("handler") == handler]
    bad = [t for t in fired if t.get("status") != "applied"]
    if bad:
        return Rejection(eid, "timer", f"{handler} fired and was rejected: {bad[0].get('reason')}")
    if not fired:
        return Rejection(eid, "not_due", f"{handler} was not due by time {now}")
    return out


def _where(step: Any, i: int) -> str:
    """``file:line`` of a test step as written (``step N`` for a step without a span)."""
    span = getattr(step, "span", None)
    if span is not None and span.line >= 1:
        return f"{span.file}:{span.line}"
    return f"step {i}"


def _explain(comp: Compiler, cond: ir.Expr, env: Env, policy: ir.Policy) -> str:
    # for a failed comparison show both sides, in the units the test is written in
    if isinstance(cond, ir.Binary) and cond.op in ("==", "!=", "<", "<=", ">", ">="):
        try:
            left, right = comp.expr(cond.left)(env), comp.expr(cond.right)(env)
        except Rejected:
            return ""
        shown = [display.value(v, getattr(x, "type", None), policy)
                 for v, x in ((left, cond.left), (right, cond.right))]
        return f" (left is {shown[0]}, right is {shown[1]})"
    return ""


def _given_role(rt: Runtime, comp: Compiler, step: ir.GivenRole, now: int) -> None:
    decl = rt.policy.role(step.role)
    env = Env(rt.state, rt.params, now, "clock", rt.step_budget)
    given = dict(step.attrs)
    attrs_ = {}
    for f in decl.attrs:
        x = given.get(f.name, f.default)
        attrs_[f.name] = comp.expr(x)(env) if x is not None else None
    rt.genesis_apply(lambda st: st.set_role(step.role, step.party, attrs_))


def _given_funds(rt: Runtime, comp: Compiler, step: ir.GivenFunds, now: int) -> None:
    env = Env(rt.state, rt.params, now, "clock", rt.step_budget)
    acc = comp.account(step.account)(env)
    # (a family member's account names its member's asset: `party:ann:Token[USDC]`)
    asset = rt.state.asset_of(acc) if getattr(step.account, "member", None) is not None else (
        step.account.asset if hasattr(step.account, "asset") else rt.state.asset_of(acc))
    rt.genesis_apply(lambda st: st.post(f"supply:{asset}", acc, asset, step.amount, "given"))


__all__ = ["TestResult", "run_tests", "run_test", "Rejection"]
