"""Replayable scenarios for counterexamples: a ``given`` setup plus the event(s), as a
Charter ``test`` block and as JSONL for ``charter run``.
"""

from __future__ import annotations

import json
from typing import Any, Optional

import z3

from .. import ir
from .naming import _account_literal, _literal, _param_cli, _plain, _show, collect_ints, describe_read, Namer
from .solver import _eval


def scenario(
    policy: ir.Policy,
    h: ir.Handler,
    params: dict,
    args: dict,
    submitter: str,
    now: int,
    accounts: list[dict],
    records: dict,
    members: list,
    applied: bool,
) -> dict:
    """A minimal replayable scenario.

    ``events_jsonl`` is the event for ``charter run`` (with ``run_params`` as ``--param``
    options); ``charter_test`` is the same as a Charter ``test`` block with the ``given``
    setup (roles, funds, parameters) and the outcome the verifier predicts: ``expect
    rejected`` when a runtime check fails, else the balances after the event.  Records the
    counterexample needs (``needs_records``) must be created by earlier events.
    """
    given: list[dict] = []
    for k, v in params.items():
        given.append({"given": "param", "name": k, "value": v})
    for who, role in sorted(set(members)):
        given.append({"given": "role", "party": who, "role": role})
    for acc in accounts:
        if acc["before"] and acc["kind"] in ("bal", "pool", "stake", "escrow"):
            given.append(
                {
                    "given": "funds",
                    "account": acc["account"],
                    "asset": acc["asset"],
                    "amount": acc["before"],
                }
            )
    needs = [
        label + " { " + ", ".join(f"{k} = {v}" for k, v in fields.items() if k != "exists") + " }"
        for label, fields in records.items()
        if fields.get("exists")
    ]
    event = {"id": "cex-1", "type": h.name, "submitter": submitter, "time": now, "args": args}
    run_params = [f"{k}={_param_cli(v, policy.param(k).type, policy)}" for k, v in params.items()]
    test = _as_test(policy, h, given, event, accounts, applied)
    return {
        "given": given,
        "event": event,
        "events_jsonl": json.dumps(event, sort_keys=True),
        "run_params": run_params,
        "needs_records": needs,
        "charter_test": test,
        "replayable_without_history": not needs,
    }


def _as_test(
    policy: ir.Policy, h: ir.Handler, given: list, event: dict, accounts: list, applied: bool
) -> str:
    out = [f'test "counterexample {h.name}" {{']
    try:
        for g in given:
            if g["given"] == "param":
                out.append(
                    f"    given param {g['name']} = "
                    f"{_literal(g['value'], policy.param(g['name']).type, policy)}"
                )
            elif g["given"] == "role":
                out.append(f"    given @{g['party']} as {g['role']}")
            elif g["given"] == "funds" and g["asset"]:
                if g["account"].startswith("stake("):
                    out.append(f"    # needs {g['amount']} minor units staked: {g['account']}")
                    continue
                amount = _show(g["amount"], ir.TAmount(asset=g["asset"]), policy)
                out.append(f"    given {amount} in {_account_literal(g['account'])}")
        types = {f.name: f.type for f in h.params}
        args = ", ".join(
            f"{k} = {_literal(v, types.get(k, ir.TText()), policy)}"
            for k, v in event["args"].items()
        )
        by = "clock" if event["submitter"] == "clock" else "@" + event["submitter"]
        out.append(f"    when {h.name}({args}) by {by} at {max(event['time'], 0)}")
        if not applied:
            out.append("    expect rejected")
        else:
            out.append("    expect ok")
            for acc in accounts:
                if (
                    acc["asset"]
                    and acc["kind"] in ("bal", "pool", "fpool")
                    and acc["after"] != acc["before"]
                ):
                    amount = _show(acc["after"], ir.TAmount(asset=acc["asset"]), policy)
                    out.append(f"    expect {acc['account']} == {amount}")
    except (ValueError, KeyError, StopIteration) as exc:
        out.append(f"    # not expressible as a test: {exc}")
    out.append("}")
    return "\n".join(out)


def trace_scenario(policy: ir.Policy, models: list, model: z3.ModelRef) -> dict:
    """A replayable trace: `given` setup from the initial state, then every event."""
    ints: set = set()
    for mm in models:
        collect_ints(mm, model, ints)
    last = models[-1]
    namer = Namer(last.encoder, model, ints)
    enc0 = models[0].encoder
    params = {
        p.name: _plain(model, enc0.params[p.name], p.type, namer, policy) for p in policy.params
    }
    given: list[dict] = [{"given": "param", "name": k, "value": v} for k, v in params.items()]
    party_vals = sorted({v for v, cat in ints if cat == "party"} - {enc0.codes.code("clock")})
    pre = enc0.pre_components
    for role in policy.roles:
        arr = pre.get(f"role!{role.name}")
        if arr is None:
            continue
        # A role the first handler iterates is a closed world of its slots: a party outside
        # them is not a member in this model, whatever the unconstrained array says there.
        slots = enc0.slots.get(("role", role.name))
        in_slots = None if slots is None else {
            _eval(model, item) for item, present in slots if _eval(model, present) is True}
        for v in party_vals:
            if in_slots is not None and v not in in_slots:
                continue
            if _eval(model, z3.Select(arr, v)) is True:
                given.append({"given": "role", "party": namer.name(v, "party"), "role": role.name})
    accounts = []
    for comp, arr in sorted(pre.items()):
        kind = comp.split("!")[0]
        if kind == "bal":
            asset = comp.split("!")[1]
            for v in party_vals:
                amt = _eval(model, z3.Select(arr, v))
                if amt:
                    label = f"balance(@{namer.name(v, 'party')}, {asset})"
                    given.append(
                        {"given": "funds", "account": label, "asset": asset, "amount": amt}
                    )
        elif kind == "pool":
            amt = _eval(model, arr)
            pool = comp.split("!")[1]
            if amt:
                given.append(
                    {
                        "given": "funds",
                        "account": f"balance({pool})",
                        "asset": policy.pool(pool).asset,
                        "amount": amt,
                    }
                )
    events = []
    for i, mm in enumerate(models):
        hh = mm.handler
        args = {f.name: _plain(model, mm.args[f.name], f.type, namer, policy) for f in hh.params}
        sub = (
            "clock"
            if isinstance(hh.auth, ir.AuthClock)
            else namer.name(_eval(model, mm.submitter), "party")
        )
        events.append(
            {
                "id": f"cex-{i + 1}",
                "type": hh.name,
                "submitter": sub,
                "time": max(0, _eval(model, mm.now)),
                "args": args,
            }
        )
    applied = bool(_eval(model, last.applied))
    # balances the last event changes (for the test's expectations)
    for comp, idx in last.encoder.balance_reads:
        kind = comp.split("!")[0]
        if kind not in ("bal", "pool", "fpool"):
            continue
        label, asset = describe_read(last.encoder, model, comp, idx, namer, policy)
        if any(a["account"] == label for a in accounts):
            continue
        b0 = _eval(model, last.pre.get(comp) if idx is None else z3.Select(last.pre.get(comp), idx))
        b1 = _eval(
            model, last.post.get(comp) if idx is None else z3.Select(last.post.get(comp), idx)
        )
        accounts.append({"account": label, "kind": kind, "asset": asset, "before": b0, "after": b1})
    lines = [f'test "counterexample {last.handler.name}" {{']
    try:
        for g in given:
            if g["given"] == "param":
                lines.append(
                    f"    given param {g['name']} = "
                    f"{_literal(g['value'], policy.param(g['name']).type, policy)}"
                )
            elif g["given"] == "role":
                lines.append(f"    given @{g['party']} as {g['role']}")
            else:
                amount = _show(g["amount"], ir.TAmount(asset=g["asset"]), policy)
                lines.append(f"    given {amount} in {_account_literal(g['account'])}")
        for i, (ev, mm) in enumerate(zip(events, models)):
            types = {f.name: f.type for f in mm.handler.params}
            args = ", ".join(
                f"{k} = {_literal(v, types[k], policy)}" for k, v in ev["args"].items()
            )
            by = "clock" if ev["submitter"] == "clock" else "@" + ev["submitter"]
            lines.append(f"    when {ev['type']}({args}) by {by} at {ev['time']}")
            if i < len(events) - 1:
                lines.append("    expect ok")
        if not applied:
            lines.append("    expect rejected")
        else:
            lines.append("    expect ok")
            for a in accounts:
                if a["after"] != a["before"]:
                    lines.append(
                        f"    expect {a['account']} == "
                        f"{_show(a['after'], ir.TAmount(asset=a['asset']), policy)}"
                    )
    except (ValueError, KeyError, StopIteration) as exc:
        lines.append(f"    # not expressible as a test: {exc}")
    lines.append("}")
    return {
        "given": given,
        "events": events,
        "events_jsonl": "\n".join(json.dumps(e, sort_keys=True) for e in events),
        "run_params": [
            f"{k}={_param_cli(v, policy.param(k).type, policy)}" for k, v in params.items()
        ],
        "needs_records": [],
        "charter_test": "\n".join(lines),
        "replayable_without_history": True,
    }


# --------------------------------------------------------------------------
# Scenarios from genesis (see :mod:`.genesis` for the search, :mod:`.replay` for the check)

NOT_REACHED = (
    "violated in some state; not reached from genesis within {n} events (no claim that it is "
    "reachable: the state shown may be one no sequence of events produces)"
)


def _event_time(found: Any, model: z3.ModelRef, hm: Any, period_of: dict) -> int:
    now = max(0, _eval(model, hm.now))
    if hm.handler.kind == "every":
        # the first firing is one period after the first event (at time 0)
        return max(now, period_of.get(hm.handler.name, 0))
    return now


def genesis_trace(policy: ir.Policy, found: Any) -> tuple[dict, list[dict], Any]:
    """(parameters, events, namer) of a chain found from genesis, as the runtime
    takes them: a timed handler at the end becomes a clock tick at the time it is due."""
    model = found.model
    ints: set = set()
    for hm in found.handlers:
        collect_ints(hm, model, ints)
    first = found.chain.first
    namer = Namer(first.encoder, model, ints)
    params = {}
    for p in policy.params:
        v = _plain(model, first.encoder.params[p.name], p.type, namer, policy)
        if v != _default_plain(p):
            params[p.name] = v
    period_of = {h.name: h.period or 0 for h in policy.handlers if h.kind == "every"}
    events = []
    for i, hm in enumerate(found.handlers, 1):
        h = hm.handler
        t = _event_time(found, model, hm, period_of)
        if h.kind != "event":
            events.append({"id": f"cex-{i}", "type": "@tick", "submitter": "clock", "time": t,
                           "args": {}, "fires": h.name})
            continue
        args = {f.name: _plain(model, hm.args[f.name], f.type, namer, policy) for f in h.params}
        sub = "clock" if isinstance(h.auth, ir.AuthClock) else namer.name(
            _eval(model, hm.submitter), "party")
        events.append({"id": f"cex-{i}", "type": h.name, "submitter": sub, "time": t,
                       "args": args})
    return params, events, namer


def _default_plain(p: ir.Param) -> Any:
    from fractions import Fraction

    v = p.default
    if isinstance(v, Fraction):
        return v.numerator if v.denominator == 1 else {"num": v.numerator, "den": v.denominator}
    return v


def run_params(policy: ir.Policy, params: dict) -> list[str]:
    """``--param NAME=VALUE`` options for ``charter run`` (only those off their default)."""
    return [f"{k}={_param_cli(v, policy.param(k).type, policy)}" for k, v in params.items()]


def events_jsonl(events: list[dict]) -> str:
    out = []
    for ev in events:
        e = {k: v for k, v in ev.items() if k != "fires"}
        out.append(json.dumps(e, sort_keys=True))
    return "\n".join(out)


def genesis_test(
    policy: ir.Policy, name: str, params: dict, events: list[dict], violation: Any
) -> str:
    """The scenario as a ``test`` block that asserts the violated property (so it fails on the
    policy as written, and states what a fix must make true)."""
    from .source import value_literal

    lines = [f"test {json.dumps(name)} {{"]
    for k, v in params.items():
        lines.append(f"    given param {k} = {value_literal(v, policy.param(k).type, policy)}")
    for i, ev in enumerate(events):
        last = i == len(events) - 1
        if ev["type"] == "@tick":
            lines.append(f"    when {ev['fires']}() by clock at {ev['time']}")
        else:
            h = policy.handler(ev["type"])
            types = {f.name: f.type for f in h.params}
            args = ", ".join(
                f"{k} = {value_literal(v, types[k], policy)}" for k, v in ev["args"].items()
            )
            by = "clock" if ev["submitter"] == "clock" else "@" + ev["submitter"]
            lines.append(f"    when {ev['type']}({args}) by {by} at {ev['time']}")
        if not last:
            lines.append("    expect ok")
    lines += violation.expect_lines(policy, None)
    lines.append("}")
    return "\n".join(lines)


def _rename_party(events: list[dict], old: str, new: str) -> list[dict]:
    def sub(v: Any) -> Any:
        if v == old:
            return new
        if isinstance(v, list):
            return [sub(x) for x in v]
        return v

    return [
        dict(e, submitter=sub(e["submitter"]), args={k: sub(v) for k, v in e["args"].items()})
        for e in events
    ]


def _merge_amounts(
    policy: ir.Policy, params: dict, events: list[dict], violation: Any
) -> list[dict]:
    """Two events of one handler by one submitter whose arguments differ only in amounts
    (deposits of 0.01, 0.01, ...) become one with the amounts added, where that replays."""
    from .replay import replay

    i = 0
    while i < len(events) - 1:
        a = events[i]
        h = policy.handler(a["type"]) if a["type"] != "@tick" else None
        merged = False
        if h is not None:
            money = {f.name for f in h.params if isinstance(f.type, ir.TAmount)}
            for j in range(i + 1, len(events) - 1):
                b = events[j]
                if b["type"] != a["type"] or b["submitter"] != a["submitter"] or not money:
                    continue
                if any(a["args"].get(k) != b["args"].get(k) for k in a["args"] if k not in money):
                    continue
                args = dict(a["args"])
                for k in money:
                    args[k] = a["args"][k] + b["args"][k]
                trial = events[:i] + [dict(a, args=args)] + events[i + 1 : j] + events[j + 1 :]
                if replay(policy, params, trial, violation).ok:
                    events, merged = trial, True
                    break
        if not merged:
            i += 1
    return events


def minimise(
    policy: ir.Policy, params: dict, events: list[dict], violation: Any
) -> tuple[dict, list[dict]]:
    """A smaller scenario that still replays to the violation: parameters back at their
    defaults where that keeps it (a party parameter by renaming the party), then events
    dropped one at a time (never the last).  Every candidate is replayed on the runtime."""
    from .replay import replay

    params, events = _default_params(policy, params, events, violation)
    events = _merge_amounts(policy, params, events, violation)
    changed = True
    while changed:  # until no single event can go (an event may only become removable later)
        changed = False
        i = 0
        while i < len(events) - 1:
            trial_events = events[:i] + events[i + 1 :]
            if replay(policy, params, trial_events, violation).ok:
                events, changed = trial_events, True
            else:
                i += 1
    # fewer events may need fewer parameters off their defaults
    params, events = _default_params(policy, params, events, violation)
    events = _round_amounts(policy, params, events, violation)
    events = [dict(e, id=f"cex-{i}") for i, e in enumerate(events, 1)]
    return params, events


def _round_amounts(
    policy: ir.Policy, params: dict, events: list[dict], violation: Any
) -> list[dict]:
    """Amounts as a reader would pick them: each distinct amount (everywhere it occurs, as
    a deposit and the budget it pays for are one number) becomes a round one where that
    still replays: 1, 10, 100, ... minor units, or a whole number of major units."""
    from .replay import replay

    def amount_args(e: dict) -> set:
        if e["type"] == "@tick":
            return set()
        h = policy.handler(e["type"])
        return {f.name for f in h.params if isinstance(f.type, ir.TAmount)}

    values = sorted(
        {e["args"][k] for e in events for k in amount_args(e) if isinstance(e["args"].get(k), int)}
    )
    for v in values:
        if v <= 1:
            continue
        tens = [10**i for i in range(0, len(str(v)))]
        candidates = [c for c in tens + [v - v % t for t in tens[1:]] if 0 < c < v]
        for c in sorted(set(candidates), key=lambda c: (len(str(c).rstrip("0")), c)):
            trial = [
                dict(e, args={k: (c if k in amount_args(e) and x == v else x)
                              for k, x in e["args"].items()})
                for e in events
            ]
            if replay(policy, params, trial, violation).ok:
                events = trial
                break
    return events


def _default_params(
    policy: ir.Policy, params: dict, events: list[dict], violation: Any
) -> tuple[dict, list[dict]]:
    from .replay import replay

    for name in list(params):
        p = policy.param(name)
        trial = {k: v for k, v in params.items() if k != name}
        evs = events
        if isinstance(p.type, ir.TParty) and isinstance(params[name], str):
            if any(e["submitter"] == p.default or p.default in e["args"].values() for e in events):
                continue  # the default's name is taken by another party of the scenario
            evs = _rename_party(events, params[name], p.default)
        if replay(policy, trial, evs, violation).ok:
            params, events = trial, evs
    return params, events


def build(
    policy: ir.Policy,
    target: str,
    fails: Any,
    violation: Any,
    opts: Any,
    name: str = "",
    wanted: tuple = (),
    max_queries: Optional[int] = None,
) -> dict:
    """Search a scenario from genesis that ends in ``violation`` at ``target``, replay it on
    the runtime, and say what happened.  The one entry point every check uses.

    Returns ``{"status": "replayed", "scenario": {...}}`` (events, JSONL, ``run_params``,
    ``charter_test``, the replay's outcomes), ``{"status": "not_reached", "note": ...}`` or
    ``{"status": "replay_failed", "note": ..., "scenario": ...}`` (an internal bug: the
    verifier and the runtime disagree; never shown as a refutation)."""
    from .genesis import search
    from .replay import replay

    try:
        extra = {} if max_queries is None else {"max_queries": max_queries}
        from .genesis import state_read

        reads = frozenset(state_read(violation))
        found, longest = search(policy, target, fails, opts, wanted=wanted, reads=reads, **extra)
    except (z3.Z3Exception, ValueError, KeyError, TypeError, AttributeError) as exc:
        return {"status": "not_reached", "note": f"the search failed: {type(exc).__name__}: {exc}"}
    if found is None:
        return {"status": "not_reached", "note": NOT_REACHED.format(n=longest)}
    params, events, namer = genesis_trace(policy, found)
    if hasattr(violation, "bind"):
        violation.bind(policy, found, namer)
    seen = replay(policy, params, events, violation)
    if seen.ok:
        params, events = minimise(policy, params, events, violation)
        seen = replay(policy, params, events, violation)
    sc: dict = {
        "from": "genesis",
        "events": events,
        "events_jsonl": events_jsonl(events),
        "run_params": run_params(policy, params),
        "params": params,
        "needs_records": [],
        "replayable_without_history": True,
        "replay": {"ok": seen.ok, "detail": seen.detail, "outcomes": seen.outcomes},
        # what `charter run --memory --check --json` shows for it: claims on the final
        # balances the events break (empty: a refusal, or a property `--check` names)
        "violates": [
            {"account": a, "op": op, "amount": v} for a, op, v in violation.balance_claims()
        ] + [
            {"party": p, "role": r, "member": False} for p, r in violation.member_claims()
        ] + [
            {"record": r, "key": k, "field": f, "unchanged": v}
            for r, k, f, v in violation.record_claims()
        ],
    }
    try:
        sc["charter_test"] = genesis_test(
            policy, name or f"counterexample {target}", params, events, violation
        )
    except (ValueError, KeyError, StopIteration) as exc:
        sc["charter_test"] = f"# not expressible as a test: {exc}"
    if not seen.ok and seen.unmodelled_timer:
        # a timed handler fired that the search did not model: a limit of the search
        return {
            "status": "not_reached",
            "note": NOT_REACHED.format(n=longest)
            + f" (the closest scenario found has a timed handler fire in between: {seen.detail})",
        }
    if not seen.ok:
        return {
            "status": "replay_failed",
            "note": (
                "internal error: the verifier's scenario does not replay on the runtime "
                f"({seen.detail}); please report it - the finding is not shown as a refutation"
            ),
            "scenario": sc,
        }
    return {"status": "replayed", "scenario": sc}


def wanted_writers(
    policy: ir.Policy, cex: dict, target: Optional[str] = None, violation: Any = None
) -> tuple:
    """For each record field the modular counterexample shows away from the value every
    record is created with: the handlers that can set it (the search tries those first).

    With ``target``, only fields the failing handler or the violated property reads count:
    the modular state is otherwise arbitrary (a retired skill, a use counter of 18,004 in a
    violation report that reads neither), and sequences that reproduce it would take the
    search's whole budget before the ones that matter."""
    from .genesis import field_writers, fields_read, initial_values

    writers, initial = field_writers(policy), initial_values(policy)
    relevant = None
    if target is not None:
        relevant = fields_read(policy.handler(target)) | fields_read(violation)
    out = []
    for label, fields in (cex.get("records") or {}).items():
        if not fields.get("exists"):
            continue
        rec = label.split("(", 1)[0]
        for f, shown in fields.items():
            init = initial.get((rec, f))
            if init is None or (rec, f) not in writers:
                continue
            if relevant is not None and (rec, f) not in relevant:
                continue
            v, t = init
            try:
                first = _show(v, t, policy)
            except (TypeError, ValueError, StopIteration):
                continue
            if first != shown and frozenset(writers[(rec, f)]) not in out:
                out.append(frozenset(writers[(rec, f)]))
    return tuple(out)


def attach(
    policy: ir.Policy, target: str, cex: dict, opts: Any, fails: Any, violation: Any
) -> None:
    """Put :func:`build`'s outcome into a counterexample: a replayed genesis scenario
    replaces the modular one; otherwise the modular state stays, without a test or JSONL
    (they would not replay), and the note says plainly that reachability is not claimed."""
    got = build(
        policy,
        target,
        fails,
        violation,
        opts,
        name=f"counterexample {cex['fails']}",
        wanted=wanted_writers(policy, cex, target, violation),
    )
    if got["status"] == "replayed":
        cex["scenario"] = got["scenario"]
        cex["confirmed"] = True
        cex["replayed"] = True
        return
    cex["confirmed"] = False
    cex["replayed"] = False
    cex["reach_note"] = got["note"]
    if got["status"] == "replay_failed":
        cex["internal_error"] = got["note"]
        cex["unreplayed_scenario"] = got["scenario"]
    modular = cex.get("scenario") or {}
    cex["scenario"] = {
        "from": "state",
        "given": modular.get("given", []),
        "event": modular.get("event"),
        "needs_records": modular.get("needs_records", []),
        "replayable_without_history": False,
    }
