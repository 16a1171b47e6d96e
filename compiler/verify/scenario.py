"""Replayable scenarios for counterexamples: a ``given`` setup plus the event(s), as a
Charter ``test`` block and as JSONL for ``charter run``.
"""

from __future__ import annotations

import json

import z3

from .. import ir
from .naming import _account_asset, _account_literal, _describe, _literal, _param_cli, _plain, _show, collect_ints, Namer
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
                    and acc["kind"] in ("bal", "pool")
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
        if kind not in ("bal", "pool"):
            continue
        iv = _eval(model, idx) if idx is not None else None
        label = _describe(comp, iv, namer)
        if any(a["account"] == label for a in accounts):
            continue
        b0 = _eval(model, last.pre.get(comp) if idx is None else z3.Select(last.pre.get(comp), idx))
        b1 = _eval(
            model, last.post.get(comp) if idx is None else z3.Select(last.post.get(comp), idx)
        )
        asset = _account_asset(comp) or policy.pool(comp.split("!")[1]).asset
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
