"""The three renderers of results: text (for people), JSON, SARIF 2.1.0 (for code hosts).
"""

from __future__ import annotations

import json
from typing import Any, Optional

from .. import ir
from .catalogue import BUILTIN, BY_NAME
from .authority import render_table as render_authority, table as authority_table
from .options import Options
from .result import GUARD, PROVED, REFUTED, Result, summary, UNKNOWN, VACUOUS, WARNING


_LABEL = {
    PROVED: "proved",
    REFUTED: "REFUTED",
    UNKNOWN: "UNKNOWN",
    GUARD: "GUARD-MISSING",
    VACUOUS: "VACUOUS",
    WARNING: "WARNING",
}


def _quote_shown(v: Any) -> str:
    """Shown values are policy literals already, except texts, which get quotes."""
    if (
        isinstance(v, str)
        and not v[:1].isdigit()
        and not v.startswith(("@", "-"))
        and v not in ("true", "false", "none")
    ):
        return json.dumps(v)
    return str(v)


def _cex_lines(cex: dict, indent: str) -> list[str]:
    lines = [f"{indent}counterexample ({cex['fails']}):"]
    if cex.get("params"):
        lines.append(
            f"{indent}  params:    " + ", ".join(f"{k} = {v}" for k, v in cex["params"].items())
        )
    args = ", ".join(f"{k} = {_quote_shown(v)}" for k, v in cex["args"].items())
    by = cex["submitter"] if cex["submitter"] == "clock" else "@" + cex["submitter"]
    lines.append(f"{indent}  event:     {cex['handler']}({args}) by {by} at {cex['time']}")
    for label, v in cex.get("pre_state", {}).items():
        lines.append(f"{indent}  before:    {label} = {v}")
    for what, recs in (
        ("record:   ", cex.get("records", {})),
        ("after:    ", cex.get("records_after", {})),
    ):
        for label, fields in recs.items():
            if fields.get("exists"):
                body = ", ".join(f"{k} = {v}" for k, v in fields.items() if k != "exists")
                lines.append(f"{indent}  {what} {label} {{ {body} }}")
            else:
                lines.append(f"{indent}  {what} {label} does not exist")
    if cex.get("collections"):
        lines.append(
            f"{indent}  members:   "
            + ", ".join(f"{k} = {v}" for k, v in cex["collections"].items())
        )
    for k in (
        "account",
        "amount",
        "split_amount",
        "weights",
        "shares",
        "leftover",
        "paid_from_pool",
        "limit",
    ):
        if k in cex:
            lines.append(f"{indent}  {k + ':':<10} {cex[k]}")
    for p in cex.get("postings", []):
        lines.append(
            f"{indent}  posting:   {p['kind']} {p['amount']} {p['from']} -> {p['to']} "
            f"(line {p['line']})"
        )
    sc = cex.get("scenario")
    if cex.get("internal_error"):
        lines.append(f"{indent}  INTERNAL ERROR: {cex['internal_error']}")
    if sc:
        for need in sc.get("needs_records", []):
            lines.append(f"{indent}  needs record (no events from genesis found that create it): {need}")
        if sc.get("charter_test"):
            lines.append(f"{indent}  replay as a test (`charter test`; it fails while the bug is there):")
            lines += [f"{indent}    {ln}" for ln in sc["charter_test"].splitlines()]
        if sc.get("from") == "genesis" and sc.get("events_jsonl"):
            opts = "".join(f" --param {p}" for p in sc.get("run_params", []))
            lines.append(
                f"{indent}  replay the events "
                f"(`charter run POLICY events.jsonl --memory --check{opts}`):"
            )
            lines += [f"{indent}    {ln}" for ln in sc["events_jsonl"].splitlines()]
            claims = sc.get("violates") or []
            if claims:
                said = " or ".join(_claim_text(c) for c in claims)
                lines.append(
                    f"{indent}  the property on the final balances (the events make it false): "
                    f"{said.replace(' or ', ' and ')}"
                )
    return lines


def _claim_text(c: dict) -> str:
    """One claim of a scenario's ``violates`` list (scenario.py writes three shapes)."""
    if "account" in c:
        return f"{c['account']} {c['op']} {c['amount']}"
    if "party" in c:
        return f"{c['party']} is not a member of {c['role']} (`charter ledger members`)"
    return f"{c['record']}({c['key']}).{c['field']} is still {c['unchanged']}"


def render_text(
    policy: ir.Policy, results: list[Result], opts: Options, verbose: bool = False
) -> str:
    out = [
        f"verify {policy.name} {policy.version}: collections modelled with up to "
        f"{opts.bound} items, rlimit {opts.rlimit:,} per query "
        f"(wall-clock safety net {opts.timeout_ms:,} ms)"
    ]
    by_handler: dict[Optional[str], list[Result]] = {}
    policy_wide = [r for r in results if r.kind == "issuance"]
    for r in results:
        if r.kind == "issuance":
            continue
        key = (
            r.handler
            if r.kind not in ("invariant",) and not r.kind.startswith(("split_", "budget"))
            else None
        )
        by_handler.setdefault(key, []).append(r)
    for h in policy.handlers:
        rs = by_handler.get(h.name, [])
        out.append("")
        out.append(f"handler {h.name} ({h.span})")
        for r in rs:
            if r.status == PROVED and not verbose:
                continue
            out.append(f"  {_LABEL[r.status]:<13} {r.kind}: {r.message}")
            if r.counterexample:
                out += _cex_lines(r.counterexample, "      ")
        trivial = ("nothing to check", "no split in this handler")
        proved = [r.kind for r in rs if r.status == PROVED and not r.message.startswith(trivial)]
        empty = [r.kind for r in rs if r.status == PROVED and r.message.startswith(trivial)]
        if proved and not verbose:
            out.append(f"  {'proved':<13} " + ", ".join(proved))
        if empty and not verbose:
            out.append(
                f"  {'n/a':<13} " + ", ".join(empty) + " (nothing of this kind in the handler)"
            )
    declared = by_handler.get(None, [])
    if declared:
        out.append("")
        out.append("declared properties")
        for r in declared:
            b = f" (for up to {r.bound} items)" if r.bounded and r.status == PROVED else ""
            out.append(f"  {_LABEL[r.status]:<13} {r.name} [{r.kind}]{b}: {r.message}")
            if r.counterexample:
                out += _cex_lines(r.counterexample, "      ")
    if policy_wide:
        out.append("")
        out.append("issuance (per mintable asset)")
        for r in policy_wide:
            out.append(f"  {_LABEL[r.status]:<13} {r.name}: {r.message}")
    rows = authority_table(results)
    if rows:
        out.append("")
        out += render_authority(rows)
    s = summary(results)
    cached = " (from cache)" if results and all(r.cached for r in results) else ""
    out.append("")
    out.append(
        f"{s[PROVED]} proved, {s[REFUTED]} refuted, {s[GUARD]} guard missing, "
        f"{s[UNKNOWN]} unknown, {s[VACUOUS]} vacuous, {s[WARNING]} warning{cached}"
    )
    return "\n".join(out)


def render_json(policy: ir.Policy, results: list[Result], opts: Options) -> str:
    return json.dumps(_json_doc(policy, results, opts), indent=2, default=str)


def render_json_many(runs: list[tuple[ir.Policy, list[Result]]], opts: Options) -> str:
    """Several policies: one report each, and the summary over all of them."""
    total: dict[str, int] = {}
    for _, results in runs:
        for k, v in summary(results).items():
            total[k] = total.get(k, 0) + v
    doc = {"policies": [_json_doc(p, rs, opts) for p, rs in runs], "summary": total}
    return json.dumps(doc, indent=2, default=str)


def _json_doc(policy: ir.Policy, results: list[Result], opts: Options) -> dict:
    return {
        "policy": policy.name,
        "version": policy.version,
        "bound": opts.bound,
        "rlimit": opts.rlimit,
        "timeout_ms": opts.timeout_ms,
        "summary": summary(results),
        "results": [r.to_dict() for r in results],
        "who_can_move_whose_money": authority_table(results),
    }


def render_sarif(policy: ir.Policy, results: list[Result], opts: Options) -> str:
    return render_sarif_many([(policy, results)], opts)


def render_sarif_many(runs: list[tuple[ir.Policy, list[Result]]], opts: Options) -> str:
    """One SARIF run for every policy verified (each result points at its own file)."""
    from charter import __version__

    rules: dict[str, dict] = {}
    sres = []
    for r in (r for _, results in runs for r in results):
        rid = f"charter/{r.kind}"
        if rid not in rules:
            rules[rid] = {
                "id": rid,
                "name": r.kind,
                "shortDescription": {
                    "text": BY_NAME[r.kind].proves if r.kind in BY_NAME
                    else BUILTIN.get(r.kind, f"declared {r.kind} property")
                },
            }
        level, kind = {
            PROVED: ("none", "pass"),
            REFUTED: ("error", "fail"),
            GUARD: ("warning", "review"),
            UNKNOWN: ("note", "open"),
            VACUOUS: ("warning", "review"),
            WARNING: ("warning", "review"),
        }[r.status]
        text = f"{r.name}: {r.status}: {r.message}"
        item: dict[str, Any] = {
            "ruleId": rid,
            "level": level,
            "kind": kind,
            "message": {"text": text},
        }
        if r.span.line > 0:
            item["locations"] = [
                {
                    "physicalLocation": {
                        "artifactLocation": {"uri": r.span.file},
                        "region": {
                            "startLine": r.span.line,
                            "startColumn": max(1, r.span.col),
                            **(
                                {"endLine": r.span.end_line, "endColumn": r.span.end_col}
                                if r.span.end_line >= r.span.line and r.span.end_col > 0
                                else {}
                            ),
                        },
                    }
                }
            ]
        if r.counterexample:
            item["properties"] = {"counterexample": r.counterexample}
        sres.append(item)
    doc = {
        "version": "2.1.0",
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "charter-verify",
                        "version": __version__,
                        "rules": list(rules.values()),
                    }
                },
                "results": sres,
            }
        ],
    }
    return json.dumps(doc, indent=2, default=str)
