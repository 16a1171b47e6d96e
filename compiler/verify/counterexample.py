"""A Z3 model of one handler's failing check as a counterexample in the policy's names:
parameters, arguments, the pre-state it reads, records, postings.
"""

from __future__ import annotations

import json
import re
from typing import Any, Optional

import z3

from .. import ir
from .model import HandlerModel, State
from .naming import _category, _plain, _plain_extra, _show, collect_ints, describe_read, Namer
from .scenario import scenario
from .solver import _eval
from .terms import Opt, SList


def _record_fields(
    m: HandlerModel,
    model: z3.ModelRef,
    policy: ir.Policy,
    namer: "Namer",
    rec: ir.Record,
    k: Any,
    state: State,
) -> dict:
    """A record's fields (and escrow balance) in ``state``, as the policy writes values."""
    if not _eval(model, z3.Select(state.get(f"live!{rec.name}"), k)):
        return {"exists": False}
    fields: dict[str, Any] = {"exists": True}
    for f in rec.fields:
        if isinstance(f.type, ir.TList) and f.type.bound is not None:
            # a list field: its length and one array per position (see Encoder.field)
            base = f"{rec.name}!{f.name}"
            term: Any = SList([z3.Select(state.get(f"lsti!{base}!{i}"), k)
                               for i in range(f.type.bound)],
                              z3.Select(state.get(f"lst!{base}"), k))
            fields[f.name] = _show(_plain(model, term, f.type, namer, policy), f.type, policy)
            continue
        val = z3.Select(state.get(f"fld!{rec.name}!{f.name}"), k)
        term = val
        if isinstance(f.type, ir.TOptional):
            term = Opt(z3.Select(state.get(f"some!{rec.name}!{f.name}"), k), val)
        fields[f.name] = _show(_plain(model, term, f.type, namer, policy), f.type, policy)
    if rec.holds:
        bal = _eval(model, z3.Select(state.get(f"escrow!{rec.name}!{rec.holds}"), k))
        fields["balance"] = _show(bal, ir.TAmount(asset=rec.holds), policy)
    return fields


def counterexample(
    m: HandlerModel,
    model: z3.ModelRef,
    policy: ir.Policy,
    failing: str,
    extra: Optional[dict] = None,
    account: Optional[tuple] = None,
    namer: Optional["Namer"] = None,
) -> dict:
    """The model as a counterexample in the policy's names (see :func:`_counterexample`)."""
    try:
        return _counterexample(m, model, policy, failing, extra, account, namer)
    except Exception as exc:  # rendering must never hide the verdict behind a traceback
        return {
            "handler": m.handler.name,
            "fails": failing,
            "params": {},
            "args": {},
            "submitter": "?",
            "time": 0,
            "render_error": f"{type(exc).__name__}: {exc}",
            "scenario": {
                "events_jsonl": "",
                "charter_test": "",
                "needs_records": [],
                "replayable_without_history": False,
            },
        }


def _counterexample(
    m: HandlerModel,
    model: z3.ModelRef,
    policy: ir.Policy,
    failing: str,
    extra: Optional[dict] = None,
    account: Optional[tuple] = None,
    namer: Optional["Namer"] = None,
) -> dict:
    enc = m.encoder
    h = m.handler
    namer = namer or Namer(enc, model, collect_ints(m, model))

    params = {}
    for p in policy.params:
        t = enc.params[p.name]
        params[p.name] = _plain(model, t, p.type, namer, policy)
    args = {}
    for f in h.params:
        args[f.name] = _plain(model, m.args[f.name], f.type, namer, policy)
    if h.kind == "deadline" and h.binder in m.args:
        args[h.binder] = namer.name(_eval(model, m.args[h.binder]), "key")
    if isinstance(h.auth, ir.AuthClock):
        submitter = "clock"
    else:
        submitter = namer.name(_eval(model, m.submitter))
    now = _eval(model, m.now)

    # pre-state the handler reads
    pre: dict[str, Any] = {}
    accounts: list[dict] = []
    seen = set()
    for comp, idx in enc.balance_reads:
        iv = _eval(model, idx) if idx is not None else None
        if (comp, iv) in seen:
            continue
        seen.add((comp, iv))
        label, asset = describe_read(enc, model, comp, idx, namer, policy)
        term = m.pre.get(comp)
        val = _eval(model, term if idx is None else z3.Select(term, idx))
        pterm = m.post.get(comp)
        after = _eval(model, pterm if idx is None else z3.Select(pterm, idx))
        pre[label] = _show(val, ir.TAmount(asset=asset), policy) if asset else val
        accounts.append(
            {
                "account": label,
                "kind": comp.split("!")[0],
                "asset": asset,
                "before": val,
                "after": after,
            }
        )
    records: dict[str, dict] = {}
    records_after: dict[str, dict] = {}
    after_keys = (extra or {}).pop("$after_keys", None) if extra else None
    for rec_name, keys in m.touched.items():
        try:
            rec = policy.record(rec_name)
        except StopIteration:
            continue
        for k in keys:
            kv = _eval(model, k)
            label = f"{rec_name}({json.dumps(namer.name(kv, 'key'))})"
            if after_keys and any(k.eq(a) for a in after_keys):
                records_after[label] = _record_fields(m, model, policy, namer, rec, k, m.post)
            if label in records:
                continue
            records[label] = _record_fields(m, model, policy, namer, rec, k, m.pre)
    slots = {}
    for w in m.watches:
        if w.group == "slot" and _eval(model, w.term.some):
            slots[w.label] = namer.name(_eval(model, w.term.val), _category(w.type) or "party")
    # role members before the event, among the parties the counterexample names
    members: list[tuple[str, str]] = []
    party_vals = sorted({v for v, cat in collect_ints(m, model) if cat == "party"})
    for role in policy.roles:
        arr = m.pre.get(f"role!{role.name}")
        for v in party_vals:
            if _eval(model, z3.Select(arr, v)) is True:
                members.append((namer.name(v, "party"), role.name))
    postings = []
    for p in m.postings:
        if not _eval(model, p.guard):
            continue
        amt = _eval(model, p.amount)
        src = describe_read(enc, model, p.src_key[0], p.src_key[1], namer, policy)[0]
        dst = describe_read(enc, model, p.dst_key[0], p.dst_key[1], namer, policy)[0]
        postings.append(
            {
                "kind": p.kind,
                "from": src,
                "to": dst,
                "amount": _show(amt, ir.TAmount(asset=p.asset), policy),
                "minor_units": amt,
                "asset": p.asset,
                "line": p.span.line,
            }
        )
    shown_params = {k: _show(v, policy.param(k).type, policy) for k, v in params.items()}
    shown_args = {f.name: _show(args[f.name], f.type, policy) for f in h.params}
    cex = {
        "handler": h.name,
        "fails": failing,
        "params": shown_params,
        "args": shown_args,
        "submitter": submitter,
        "time": now,
        "pre_state": pre,
        "records": records,
        "collections": slots,
        "postings": postings,
        "balances": {a["account"]: {"before": a["before"], "after": a["after"]} for a in accounts},
    }
    if records_after:
        cex["records_after"] = records_after
    if account is not None and account[0] and "[member]" in account[0]:
        # an account of a family member: named like the pre-state reads name it
        template, idx = account
        comp = {"balance({}, ": "bal", "stake({}, ": "stake", "supply(": "fsupply"}
        kind = next((v for k, v in comp.items() if template.startswith(k)), None)
        if kind is None:
            kind = "fpool" if template.count("(") == 1 else "fescrow"
        name = template[len("balance("):].split(",")[0].split("(")[0]
        fam = re.search(r"([\w.]+)\[member\]", template).group(1)
        comp_name = {"bal": f"bal!{fam}", "stake": f"stake!{fam}", "fsupply": f"fsupply!{fam}",
                     "fpool": f"fpool!{name}", "fescrow": f"fescrow!{name}!{fam}"}[kind]
        cex["account"] = describe_read(enc, model, comp_name, idx, namer, policy)[0]
    elif account is not None and account[0]:
        template, idx = account
        who = (
            namer.name(
                _eval(model, idx),
                "key" if template.startswith("balance(") and "," not in template else "party",
            )
            if idx is not None
            else ""
        )
        cex["account"] = (
            template.format(
                "@" + who if template.startswith(("balance({},", "stake(")) else json.dumps(who)
            )
            if "{}" in template
            else template
        )
    if extra:
        cex.update({k: _plain_extra(model, v, namer) for k, v in extra.items()})
    applied = bool(_eval(model, m.applied))
    cex["applied"] = applied
    cex["members_before"] = [f"@{p} as {r}" for p, r in members]
    cex["scenario"] = scenario(
        policy, h, params, args, submitter, now, accounts, records, members, applied
    )
    return cex


def _split_extra(sp: Any) -> dict:
    return {
        "split_amount": sp.amount,
        "weights": [z3.If(c, w, -1) for c, w in zip(sp.included, sp.weights)],
        "shares": sp.shares,
        "leftover": sp.leftover,
    }
