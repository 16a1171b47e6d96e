"""`charter verify`: prove a policy's money safety with Z3, or show a counterexample.

For every handler (encoded by :mod:`charter.compiler.smt`) the verifier asks Z3
a handful of questions, each ending **proved**, **refuted** (with a model,
rendered in the policy's own names plus a replayable scenario) or **unknown**
(time-out or an unsupported construct, said plainly).  Two more outcomes are
warnings, never green checks:

* ``guard_missing`` - inputs satisfying every ``require`` make a move overdraw
  a party's, stake's or pool's account.  The runtime rejects such an event
  (nothing changes, no value is created or lost), so this is *not* a money
  bug: it says the handler can be made to fail by an overdraft rather than by
  a clear ``require ... else "..."`` message.  ``--strict`` counts it as a
  failure.
* ``vacuous`` - the handler's ``require``s can never all hold, or a declared
  property's premise (e.g. two equal weights) is impossible, so "proved"
  would be meaningless.

Money bugs are ``refuted``: a negative move amount (a payout formula that
goes below zero for allowed parameters), a release from an escrow that can
exceed what it holds, minting beyond a cap, a split that loses or creates
units, declared fairness/budget/invariant properties that fail.

Declared invariants (and automatic candidates such as "amount fields of
records are >= 0") are established Houdini-style: all are assumed before
each handler and checked after it; those that fail are dropped and the rest
re-checked until stable.  The survivors are inductive, hence hold in every
reachable state, and every other check assumes them.

Collections (role members, records, list arguments) are modelled with up to
``bound`` items; results that depend on a collection say so ("for up to N
items").

Checks are modular: each handler is verified from an arbitrary pre-state that
satisfies the proved invariants (declared and automatic).  So a refutation's
pre-state may, for a policy whose invariants are too weak, be unreachable.
Every refutation is therefore also searched for from the initial state (no
records; party and pool balances and role members as a ``given`` setup) over
event sequences of up to :data:`MAX_TRACE` events ending in the failing
handler.  When found, the result says "confirmed reachable" and its scenario is
that trace as a Charter ``test`` block (given roles, funds and parameters, each
event, and the outcome the verifier predicts) which ``charter test`` replays on
the runtime; otherwise it says the pre-state may be unreachable and shows the
modular counterexample with the records it needs.

Not modelled (sound for properties about applied events, stated in results
where relevant): the runtime's step budget (it can only reject more events),
``dissolve`` (a flag, moves nothing), the time limit of granted rights, and the
total supply burned by ``decay`` (per-account decay is exact).
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from fractions import Fraction
from pathlib import Path
from typing import Any, Iterable, Optional

import attrs
import z3

from . import ir
from .smt import Encoder, HandlerModel, Opt, SList, State, Unsupported, fresh_context

VERSION = "verify-2"


def _engine_fingerprint() -> str:
    """Hash of the verifier's own code: a changed encoding must never reuse cached results."""
    h = hashlib.sha256(VERSION.encode())
    for name in ("smt.py", "verify.py"):
        try:
            h.update((Path(__file__).parent / name).read_bytes())
        except OSError:
            pass
    return h.hexdigest()[:16]


ENGINE = _engine_fingerprint()

PROVED, REFUTED, UNKNOWN, GUARD, VACUOUS = (
    "proved",
    "refuted",
    "unknown",
    "guard_missing",
    "vacuous",
)

# the built-in property kinds, with what they mean (also used for docs/SARIF rules)
BUILTIN = {
    "applicable": "the handler's requires can all hold (otherwise it is dead code)",
    "reachability": "every `if`/`else` branch can be taken by some applied event",
    "conservation": "every posting moves one asset between two accounts; supply changes only by "
    "mint/burn of an asset that declares it",
    "non_negative": "no move or split amount is negative for inputs that satisfy the requires",
    "no_overdraft": "no move overdraws a party, stake or pool account for inputs that satisfy "
    "the requires",
    "escrow_bound": "an escrow never releases more than it holds",
    "supply_cap": "minting never pushes supply above the asset's cap",
    "delete_empty": "a record is deleted only when its escrow is empty (else the runtime rejects)",
    "rounding": "a split's shares are >= 0 and shares + leftover == amount; methods other than "
    "floor_dust distribute the whole amount when anyone has weight",
}


@attrs.define
class Result:
    name: str  # property name: "handler.kind" for built-ins, the declared name otherwise
    kind: str
    handler: Optional[str]
    status: str
    message: str
    span: ir.Span = ir.NOSPAN
    bound: int = 3
    bounded: bool = False
    counterexample: Optional[dict] = None
    seconds: float = 0.0
    cached: bool = False

    def to_dict(self) -> dict:
        d = attrs.asdict(self, recurse=False)
        d["span"] = attrs.asdict(self.span)
        return d

    @staticmethod
    def from_dict(d: dict) -> "Result":
        d = dict(d)
        d["span"] = ir.Span(**d["span"])
        return Result(**d)


@attrs.define
class Options:
    bound: int = 3
    timeout_ms: int = 5000
    cache_dir: Optional[Path] = None
    fixed_params: Optional[dict] = None


# --------------------------------------------------------------------------
# Solver helpers


def solve(formulas: Iterable[Any], timeout_ms: int) -> tuple[str, Optional[z3.ModelRef]]:
    s = z3.Solver()
    s.set("timeout", max(1, int(timeout_ms)))
    try:
        s.add(*list(formulas))
        r = s.check()
    except z3.Z3Exception:
        return "unknown", None
    if r == z3.sat:
        return "sat", s.model()
    if r == z3.unsat:
        return "unsat", None
    return "unknown", None


def solve_m(formulas: list, m: HandlerModel, timeout_ms: int) -> tuple[str, Optional[z3.ModelRef]]:
    """``solve`` for a question about handler ``m``: half the time without the product
    lemmas, then (if undecided) the rest with them.  Both answers are sound because the
    lemmas are valid facts about multiplication."""
    lemmas = m.encoder.lemmas
    if not lemmas:
        return solve(formulas, timeout_ms)
    t0 = time.perf_counter()
    r, model = solve(formulas, max(1, timeout_ms // 2))
    if r != "unknown":
        return r, model
    left = timeout_ms - int((time.perf_counter() - t0) * 1000)
    return solve(formulas + lemmas, left) if left > 0 else ("unknown", None)


def opts_bound(slots: list) -> int:
    return max((len(items) for items in slots), default=0)


def solve_sat(
    formulas: list, m: HandlerModel, timeout_ms: int
) -> tuple[str, Optional[z3.ModelRef]]:
    """For questions that want a witness (can the handler apply, can a branch run): first try
    the easy witnesses - every collection empty, then one item each, then two - each with a
    tenth of the time, then the full question.  Any witness found is a real one (fewer items is a
    legitimate state), so a quick "sat" is final; only "unsat" needs the full query."""
    slots = list(m.encoder.slots.values())
    if slots:
        t0 = time.perf_counter()
        for keep in range(min(3, opts_bound(slots))):
            restrict = [z3.Not(p) for items in slots for i, (_, p) in enumerate(items) if i >= keep]
            r, model = solve(formulas + restrict, max(1, timeout_ms // 10))
            if r == "sat":
                return r, model
        timeout_ms -= int((time.perf_counter() - t0) * 1000)
        if timeout_ms <= 0:
            return "unknown", None
    return solve(formulas, timeout_ms)


def _eval(model: z3.ModelRef, term: Any) -> Any:
    v = model.eval(term, model_completion=True)
    if z3.is_int_value(v):
        return v.as_long()
    if z3.is_rational_value(v):
        return Fraction(v.numerator_as_long(), v.denominator_as_long())
    if z3.is_true(v):
        return True
    if z3.is_false(v):
        return False
    if z3.is_algebraic_value(v):  # irrational: only from non-linear terms we never produce
        return str(v)
    return str(v)


# --------------------------------------------------------------------------
# Naming model values in the policy's terms


class Namer:
    """Turns Int codes of parties, texts and record keys into readable names."""

    PARTIES = [
        "alice",
        "bob",
        "carol",
        "dave",
        "erin",
        "frank",
        "grace",
        "heidi",
        "ivan",
        "judy",
        "mallory",
        "niaj",
        "olivia",
        "peggy",
        "rupert",
        "sybil",
        "trent",
        "victor",
    ]

    def __init__(self, enc: Encoder, model: z3.ModelRef, ints: Any):
        self.codes = enc.codes
        self.names: dict[tuple[str, int], str] = {}
        # parties and keys/texts are separate namespaces at runtime; names are assigned in
        # value order per namespace so key order (the tie order) is kept
        by_cat: dict[str, set[int]] = {}
        for v, cat in ints:
            by_cat.setdefault(cat, set()).add(v)
        for cat, vals in by_cat.items():
            i = 0
            for v in sorted(vals):
                if self.codes.text(v) is not None:
                    continue
                if cat == "party":
                    name = self.PARTIES[i] if i < len(self.PARTIES) else f"party{i}"
                else:
                    name = f"k{i + 1}"
                self.names[(cat, v)] = name
                i += 1

    def name(self, v: int, cat: str = "party") -> str:
        t = self.codes.text(v)
        if t is not None:
            return t
        return self.names.get((cat, v), f"x{v}")


def _category(t: ir.Type) -> Optional[str]:
    if isinstance(t, ir.TOptional):
        return _category(t.inner)
    if isinstance(t, ir.TList):
        return _category(t.inner)
    if isinstance(t, ir.TParty):
        return "party"
    if isinstance(t, ir.TRecord):
        return "key"
    if isinstance(t, ir.TText):
        return "key"  # texts are used as record keys: one namespace
    return None


def _plain(model: z3.ModelRef, value: Any, t: ir.Type, namer: Namer, policy: ir.Policy) -> Any:
    """A model value as JSON data in the runtime's event payload format."""
    if isinstance(value, Opt):
        if not _eval(model, value.some):
            return None
        inner = t.inner if isinstance(t, ir.TOptional) else t
        return _plain(model, value.val, inner, namer, policy)
    if isinstance(value, SList):
        n = _eval(model, value.n)
        inner = t.inner if isinstance(t, ir.TList) else t
        return [_plain(model, x, inner, namer, policy) for x in value.items[:n]]
    v = _eval(model, value)
    if _category(t) is not None and isinstance(v, int):
        return namer.name(v, _category(t))
    if isinstance(v, Fraction):
        return {"num": v.numerator, "den": v.denominator} if v.denominator != 1 else v.numerator
    return v


def _exact_decimal(x: Fraction, max_digits: int = 6) -> Optional[str]:
    """``x`` as an exact decimal string (no floats), or None if it needs more digits."""
    sign = "-" if x < 0 else ""
    x = abs(x)
    for digits in range(max_digits + 1):
        scaled = x * 10**digits
        if scaled.denominator == 1:
            n = scaled.numerator
            if digits == 0:
                return f"{sign}{n}"
            return f"{sign}{n // 10**digits}.{n % 10**digits:0{digits}d}"
    return None


def _show(v: Any, t: ir.Type, policy: ir.Policy) -> str:
    """A plain value as the policy would write it."""
    if v is None:
        return "none"
    if isinstance(t, ir.TOptional):
        return _show(v, t.inner, policy)
    if isinstance(t, ir.TAmount) and isinstance(v, int):
        try:
            dec = policy.asset(t.asset).decimals
        except StopIteration:
            dec = 0
        sign = "-" if v < 0 else ""
        a = abs(v)
        major = f"{a // 10**dec}.{a % 10**dec:0{dec}d}" if dec else str(a)
        return f"{sign}{major} {t.asset}"
    if isinstance(v, dict) and "num" in v:
        exact = _exact_decimal(Fraction(v["num"], v["den"]) * 100)
        return f"{exact}%" if exact is not None else f"{v['num']}/{v['den']}"
    if isinstance(t, ir.TRatio) and isinstance(v, int):
        return f"{v * 100}%"
    if isinstance(t, (ir.TParty,)) and isinstance(v, str):
        return "@" + v
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


def _account_asset(comp: str) -> Optional[str]:
    parts = comp.split("!")
    if parts[0] in ("bal", "stake"):
        return parts[1]
    if parts[0] == "escrow":
        return parts[2]
    return None


# --------------------------------------------------------------------------
# Counterexamples


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
        val = z3.Select(state.get(f"fld!{rec.name}!{f.name}"), k)
        term: Any = val
        if isinstance(f.type, ir.TOptional):
            term = Opt(z3.Select(state.get(f"some!{rec.name}!{f.name}"), k), val)
        fields[f.name] = _show(_plain(model, term, f.type, namer, policy), f.type, policy)
    if rec.holds:
        bal = _eval(model, z3.Select(state.get(f"escrow!{rec.name}!{rec.holds}"), k))
        fields["balance"] = _show(bal, ir.TAmount(asset=rec.holds), policy)
    return fields


def collect_ints(m: HandlerModel, model: z3.ModelRef, ints: Optional[set] = None) -> set:
    """Which Int values of the model are parties, record keys or texts (for naming)."""
    enc = m.encoder
    ints = set() if ints is None else ints
    for w in m.watches:
        cat = _category(w.type)
        if cat is None:
            continue
        vals = []
        if isinstance(w.term, Opt):
            if _eval(model, w.term.some):
                vals.append(w.term.val)
        elif isinstance(w.term, SList):
            vals += w.term.items[: _eval(model, w.term.n)]
        else:
            vals.append(w.term)
        for t in vals:
            t = t.val if isinstance(t, Opt) else t
            v = _eval(model, t)
            if isinstance(v, int):
                ints.add((v, cat))
    for comp, idx in enc.balance_reads:
        if idx is not None:
            ints.add(
                (_eval(model, idx), "party" if comp.split("!")[0] in ("bal", "stake") else "key")
            )
    for rec, keys in m.touched.items():
        for k in keys:
            ints.add((_eval(model, k), "key"))
    ints.discard((enc.codes.code("clock"), "party"))
    return ints


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
        label = _describe(comp, iv, namer)
        term = m.pre.get(comp)
        val = _eval(model, term if idx is None else z3.Select(term, idx))
        pterm = m.post.get(comp)
        after = _eval(model, pterm if idx is None else z3.Select(pterm, idx))
        asset = _account_asset(comp) or (
            policy.pool(comp.split("!")[1]).asset if comp.startswith("pool!") else None
        )
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
        src = _describe(
            p.src_key[0], _eval(model, p.src_key[1]) if p.src_key[1] is not None else None, namer
        )
        dst = _describe(
            p.dst_key[0], _eval(model, p.dst_key[1]) if p.dst_key[1] is not None else None, namer
        )
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
    if account is not None and account[0]:
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


def _plain_extra(model: z3.ModelRef, v: Any, namer: Namer) -> Any:
    if isinstance(v, list):
        return [_plain_extra(model, x, namer) for x in v]
    if isinstance(v, dict):
        return {k: _plain_extra(model, x, namer) for k, x in v.items()}
    if isinstance(v, z3.ExprRef):
        r = _eval(model, v)
        return str(r) if isinstance(r, Fraction) else r
    return v


def _describe(comp: str, idx: Optional[int], namer: Namer) -> str:
    parts = comp.split("!")
    who = (
        namer.name(idx, "party" if parts[0] in ("bal", "stake") else "key")
        if idx is not None
        else ""
    )
    if parts[0] == "bal":
        return f"balance(@{who}, {parts[1]})"
    if parts[0] == "stake":
        return f"stake(@{who}, {parts[1]})"
    if parts[0] == "pool":
        return f"balance({parts[1]})"
    if parts[0] == "escrow":
        return f"balance({parts[1]}({json.dumps(who)}))"
    if parts[0] == "supply":
        return f"supply({parts[1]})"
    return comp


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


def _param_cli(v: Any, t: ir.Type, policy: ir.Policy) -> str:
    if isinstance(v, dict) and "num" in v:
        return f"{v['num']}/{v['den']}"
    if isinstance(t, ir.TRatio) and isinstance(v, int):
        return str(v)
    if isinstance(t, ir.TAmount) and isinstance(v, int):
        return _show(v, t, policy).split(" ")[0]
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


def _literal(v: Any, t: ir.Type, policy: ir.Policy) -> str:
    """A plain (payload) value as a Charter literal."""
    if isinstance(t, ir.TOptional):
        return "none" if v is None else _literal(v, t.inner, policy)
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(t, ir.TAmount):
        return _show(v, t, policy)
    if isinstance(t, ir.TRatio):
        f = Fraction(v["num"], v["den"]) if isinstance(v, dict) else Fraction(v)
        for unit, scale in (("%", 100), (" bps", 10_000), (" ppm", 1_000_000)):
            x = f * scale
            if x.denominator == 1:
                return f"{x.numerator}{unit}"
        return f"{f.numerator} / {f.denominator}"
    if isinstance(t, ir.TParty):
        return "@" + str(v)
    if isinstance(t, (ir.TText, ir.TRecord)):
        return json.dumps(v)
    if isinstance(t, ir.TList):
        raise ValueError("list literal")
    return str(v)


def _account_literal(label: str) -> str:
    # "balance(@alice, Credit)" -> "@alice"; "balance(commons)" -> "commons";
    # "balance(Task(\"k1\"))" -> Task("k1")
    inner = label[label.index("(") + 1 : -1]
    if label.startswith("balance(@"):
        return inner.split(",")[0]
    return inner


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


# --------------------------------------------------------------------------
# Invariants


def _eval_side(enc: Encoder, e: ir.Expr, env: dict, state: State) -> Any:
    """Evaluate ``e`` without adding its implicit checks to the handler's requires;
    they become part of the value (a property that reads a missing record is false)."""
    saved = enc.ok_explicit
    enc.ok_explicit = []
    try:
        v = enc.cond(e, env, state, z3.BoolVal(True))
        side = enc.ok_explicit
    finally:
        enc.ok_explicit = saved
    return z3.And(*side, v) if side else v


@attrs.define
class Inv:
    name: str
    cond: ir.Expr
    record: Optional[str]
    var: Optional[str]
    auto: bool = False
    span: ir.Span = ir.NOSPAN


def _auto_invariants(policy: ir.Policy) -> list[Inv]:
    """Candidate invariants the verifier tries to establish by itself: amount and
    ranged-int fields of records stay within their natural/declared ranges."""
    out = []
    for rec in policy.records:
        for f in rec.fields:
            t = f.type
            flo, fhi = getattr(f, "lo", None), getattr(f, "hi", None)
            if isinstance(t, ir.TAmount):
                lo, hi = (0 if flo is None else flo), fhi
            elif isinstance(t, ir.TInt) and (t.lo, t.hi, flo, fhi) != (None,) * 4:
                lo = t.lo if flo is None else flo
                hi = t.hi if fhi is None else fhi
            elif isinstance(t, (ir.TRatio, ir.TDuration, ir.TTime)) and (flo, fhi) != (None, None):
                lo, hi = flo, fhi
            else:
                continue
            ref = ir.RecordField(
                record=rec.name,
                key=ir.Local(name="$r", type=ir.TRecord(record=rec.name)),
                field=f.name,
                type=t,
            )
            conds = []
            if lo is not None:
                conds.append(
                    ir.Binary(op=">=", left=ref, right=ir.Const(value=lo, type=t), type=ir.TBool())
                )
            if hi is not None:
                conds.append(
                    ir.Binary(op="<=", left=ref, right=ir.Const(value=hi, type=t), type=ir.TBool())
                )
            cond = (
                conds[0]
                if len(conds) == 1
                else ir.Binary(op="and", left=conds[0], right=conds[1], type=ir.TBool())
            )
            out.append(Inv(f"{rec.name}.{f.name} in range", cond, rec.name, "$r", auto=True))
        out += _relational_candidates(rec)
    return out


def _relational_candidates(rec: ir.Record) -> list[Inv]:
    """Candidates relating a record's fields and its escrow: ``f <= g`` for fields of one
    unit, ``balance(R) >= f`` for amounts of the held asset, optionally under a bool field
    (``open => balance(R) >= price``).  Houdini keeps only the inductive ones."""
    key = ir.Local(name="$r", type=ir.TRecord(record=rec.name))
    out: list[Inv] = []

    def ref(f: ir.Field) -> ir.RecordField:
        return ir.RecordField(record=rec.name, key=key, field=f.name, type=f.type)

    def cmp(op: str, a: ir.Expr, b: ir.Expr) -> ir.Binary:
        return ir.Binary(op=op, left=a, right=b, type=ir.TBool())

    nums = [f for f in rec.fields if isinstance(f.type, (ir.TInt, ir.TAmount))]
    for f in rec.fields:
        if isinstance(f.type, ir.TInt):
            out.append(
                Inv(
                    f"{rec.name}.{f.name} >= 0",
                    cmp(">=", ref(f), ir.Const(value=0, type=f.type)),
                    rec.name,
                    "$r",
                    auto=True,
                )
            )
    for f in nums:
        for g in nums:
            if f is not g and f.type == g.type:
                out.append(
                    Inv(
                        f"{rec.name}.{f.name} <= {g.name}",
                        cmp("<=", ref(f), ref(g)),
                        rec.name,
                        "$r",
                        auto=True,
                    )
                )
    if rec.holds:
        bal = ir.AccBalance(
            account=ir.AccEscrow(record=rec.name, key=key, asset=rec.holds),
            type=ir.TAmount(asset=rec.holds),
        )
        bools = [f for f in rec.fields if isinstance(f.type, ir.TBool)]
        for f in nums:
            if f.type != ir.TAmount(asset=rec.holds):
                continue
            base = cmp(">=", bal, ref(f))
            out.append(Inv(f"balance({rec.name}) >= {f.name}", base, rec.name, "$r", auto=True))
            for b in bools:
                for neg in (False, True):
                    c: ir.Expr = ref(b)
                    if neg:
                        c = ir.Unary(op="not", operand=c, type=ir.TBool())
                    out.append(
                        Inv(
                            f"{'not ' if neg else ''}{b.name} => balance({rec.name}) >= {f.name}",
                            ir.Binary(
                                op="or",
                                left=ir.Unary(op="not", operand=c, type=ir.TBool()),
                                right=base,
                                type=ir.TBool(),
                            ),
                            rec.name,
                            "$r",
                            auto=True,
                        )
                    )
    return out


def _declared_invariants(policy: ir.Policy) -> list[Inv]:
    return [
        Inv(p.name, p.cond, p.record, p.var, span=p.span)
        for p in policy.properties
        if isinstance(p, ir.InvariantProperty)
    ]


def _inv_terms(m: HandlerModel, inv: Inv, state: State, key: Any) -> Any:
    enc = m.encoder
    if inv.record is None:
        return _eval_side(enc, inv.cond, {}, state)
    live = z3.Select(state.get(f"live!{inv.record}"), key)
    return z3.Implies(live, _eval_side(enc, inv.cond, {inv.var: key}, state))


@attrs.define
class Prepared:
    """A handler's model plus invariant terms (pre: assumed; post: to prove)."""

    model: Optional[HandlerModel]
    error: Optional[str]
    inv_pre: dict = attrs.Factory(dict)  # name -> list of Z3 terms (touched keys + generic key)
    inv_post: dict = attrs.Factory(dict)  # name -> Z3 term at the generic key (or global)
    extra_assumptions: list = attrs.Factory(list)


def prepare(policy: ir.Policy, h: ir.Handler, invs: list[Inv], opts: Options) -> Prepared:
    enc = Encoder(policy, bound=opts.bound, fixed_params=opts.fixed_params)
    try:
        m = enc.encode(h)
        prep = Prepared(m, None)
        n_reads = len(enc.balance_reads)
        touched = {k: list(v) for k, v in enc.touched.items()}
        for inv in invs:
            if inv.record is None:
                prep.inv_pre[inv.name] = [_inv_terms(m, inv, m.pre, None)]
                prep.inv_post[inv.name] = _inv_terms(m, inv, m.post, None)
                continue
            generic = z3.Int(f"inv!{inv.record}!key")
            keys = list(m.touched.get(inv.record, [])) + [generic]
            prep.inv_pre[inv.name] = [_inv_terms(m, inv, m.pre, k) for k in keys]
            prep.inv_post[inv.name] = _inv_terms(m, inv, m.post, generic)
        # keys the invariants mention (the generic key) are subject to the collection bound too
        prep.extra_assumptions = [a for a in enc.finish_reads()[n_reads:]] + enc.closed_world(
            m.post
        )
        # what invariants read is assumed, but is not part of the handler's own footprint
        # (keeps counterexamples to what the handler touches)
        del enc.balance_reads[n_reads:]
        enc.touched.clear()
        enc.touched.update(touched)
        return prep
    except Unsupported as exc:
        return Prepared(None, str(exc))
    except (z3.Z3Exception, TypeError, ValueError, KeyError, AttributeError, StopIteration) as exc:
        # an IR shape the encoder mishandles: say so as "unknown", never crash the report
        return Prepared(None, f"an internal encoding error ({type(exc).__name__}: {exc})")


def houdini(
    policy: ir.Policy, preps: dict[str, Prepared], invs: list[Inv], opts: Options
) -> tuple[set[str], dict[str, tuple[str, Optional[str], Any]]]:
    """The largest subset of ``invs`` that every handler preserves.

    Returns (surviving names, {name: (status, failing handler, model)}) for the dropped ones.
    """
    alive = {i.name for i in invs}
    failed: dict[str, tuple[str, Optional[str], Any]] = {}
    # the initial (empty) state: no records, zero balances; only global invariants matter
    for inv in invs:
        if inv.record is None:
            ok = _initially(policy, inv, opts)
            if ok is not True:
                alive.discard(inv.name)
                failed[inv.name] = (REFUTED if ok is False else UNKNOWN, None, "initial state")
    changed = True
    while changed:
        changed = False
        for hname, prep in preps.items():
            if prep.model is None:
                for n in list(alive):
                    alive.discard(n)
                    failed[n] = (UNKNOWN, hname, prep.error)
                    changed = True
                continue
            m = prep.model
            assume = m.assumptions + prep.extra_assumptions + [m.applied]
            for inv in invs:
                if inv.name in alive:
                    assume += prep.inv_pre[inv.name]
            live = [inv for inv in invs if inv.name in alive]
            if not live:
                continue
            # one query finds a state breaking some candidate; drop every candidate it breaks
            r, model = solve_m(
                assume + [z3.Or(*[z3.Not(prep.inv_post[i.name]) for i in live])], m, opts.timeout_ms
            )
            if r == "unsat":
                continue
            changed = True
            if r == "sat":
                for inv in live:
                    if z3.is_false(model.eval(prep.inv_post[inv.name], model_completion=True)):
                        alive.discard(inv.name)
                        failed[inv.name] = (REFUTED, hname, model)
            else:
                # undecided: check one by one so one hard candidate does not sink the others,
                # sharing one time budget (a dropped candidate only weakens the assumptions)
                deadline = time.perf_counter() + opts.timeout_ms / 1000
                for inv in live:
                    left_ms = int((deadline - time.perf_counter()) * 1000)
                    r1, m1 = (
                        solve_m(assume + [z3.Not(prep.inv_post[inv.name])], m, left_ms)
                        if left_ms > 0
                        else ("unknown", None)
                    )
                    if r1 != "unsat":
                        alive.discard(inv.name)
                        failed[inv.name] = (REFUTED if r1 == "sat" else UNKNOWN, hname, m1)
    return alive, failed


def _initially(policy: ir.Policy, inv: Inv, opts: Options) -> Optional[bool]:
    enc = Encoder(policy, bound=opts.bound, fixed_params=opts.fixed_params)
    enc.submitter = z3.Int("submitter")
    enc.now = z3.Int("now")
    state = State(enc)
    try:
        v = _eval_side(enc, inv.cond, {}, state)
    except Unsupported:
        return None
    zero = []
    for comp in enc.pre_components:
        kind = comp.split("!")[0]
        pc = enc.pre_components[comp]
        if kind in ("pool", "supply"):
            zero.append(pc == 0)
        elif kind in ("bal", "stake", "escrow"):
            zero.append(pc == z3.K(z3.IntSort(), z3.IntVal(0)))
        elif kind in ("live", "role"):
            zero.append(pc == z3.K(z3.IntSort(), z3.BoolVal(False)))
    r, _ = solve(enc.assumptions + zero + [z3.Not(v)], opts.timeout_ms)
    return True if r == "unsat" else (False if r == "sat" else None)


# --------------------------------------------------------------------------
# Per-handler checks


def check_handler(
    policy: ir.Policy, prep: Prepared, inv_assume: list, opts: Options
) -> list[Result]:
    m = prep.model
    h = m.handler
    out: list[Result] = []
    base = m.assumptions + prep.extra_assumptions + inv_assume
    applied = m.applied
    bounded = bool(m.encoder.slots)

    def res(
        kind: str,
        status: str,
        message: str,
        span: ir.Span = h.span,
        cex: Optional[dict] = None,
        name: Optional[str] = None,
        t0: float = 0.0,
    ) -> Result:
        return Result(
            name or f"{h.name}.{kind}",
            kind,
            h.name,
            status,
            message,
            span,
            opts.bound,
            bounded,
            cex,
            round(time.perf_counter() - t0, 4) if t0 else 0.0,
        )

    t0 = time.perf_counter()
    r, model = solve_sat(base + [applied], m, opts.timeout_ms)
    if r == "unsat":
        out.append(
            res(
                "applicable",
                VACUOUS,
                "the handler can never apply: its requires (with the "
                "declared ranges and invariants) are unsatisfiable; no property of it is proved",
                t0=t0,
            )
        )
        for k in (
            "reachability",
            "conservation",
            "non_negative",
            "no_overdraft",
            "escrow_bound",
            "supply_cap",
            "delete_empty",
            "rounding",
        ):
            out.append(res(k, VACUOUS, "not checked: the handler can never apply"))
        return out
    if r == "unknown":
        out.append(
            res(
                "applicable",
                UNKNOWN,
                f"could not decide within {opts.timeout_ms} ms whether the handler can apply",
                t0=t0,
            )
        )
    else:
        out.append(
            res("applicable", PROVED, "the handler can apply (its requires are satisfiable)", t0=t0)
        )

    # reachability: a branch no applied event can take is dead code (a warning, not a proof)
    t0 = time.perf_counter()
    deadline = t0 + opts.timeout_ms / 1000
    dead, undecided = [], 0
    # a branch inside a loop is encoded once per item: it is dead only if no copy is reachable
    grouped: dict[tuple, list] = {}
    for span, guard, which in m.encoder.branches:
        grouped.setdefault((span.line, span.col, which), []).append((span, guard))
    for (_, _, which), copies in grouped.items():
        span = copies[0][0]
        guard = z3.Or(*[g for _, g in copies])
        left_ms = int((deadline - time.perf_counter()) * 1000)
        if left_ms <= 0:
            undecided += 1
            continue
        r, _ = solve_sat(base + [applied, guard], m, left_ms)
        if r == "unsat":
            dead.append(f"line {span.line} ({which} branch)")
        elif r == "unknown":
            undecided += 1
    if m.encoder.branches:
        if dead:
            out.append(
                res(
                    "reachability",
                    VACUOUS,
                    "no applied event reaches "
                    + ", ".join(dead)
                    + ": dead code, or every path through it is rejected",
                    t0=t0,
                )
            )
        elif undecided:
            out.append(
                res(
                    "reachability",
                    UNKNOWN,
                    f"{undecided} branch(es) not decided within {opts.timeout_ms} ms",
                    t0=t0,
                )
            )
        else:
            out.append(
                res("reachability", PROVED, "every branch can be taken by an applied event", t0=t0)
            )

    # conservation: structural (postings are balanced by construction) + mint/burn permissions
    t0 = time.perf_counter()
    bad = []
    for p in m.postings:
        asset = policy.asset(p.asset)
        if p.src_key[0].startswith("supply!") and not asset.mintable:
            bad.append(f"line {p.span.line}: mints {p.asset}, which is not mintable")
        if p.dst_key[0].startswith("supply!") and not asset.burnable and p.kind != "decay":
            bad.append(f"line {p.span.line}: burns {p.asset}, which is not burnable")
    if bad:
        out.append(res("conservation", REFUTED, "; ".join(bad), t0=t0))
    else:
        out.append(
            res(
                "conservation",
                PROVED,
                "every posting balances per asset (one asset, two "
                "accounts); supply changes only by declared mint/burn",
                t0=t0,
            )
        )

    groups = {
        "non_negative": ("negative_amount", "split_input"),
        "no_overdraft": ("overdraft",),
        "escrow_bound": ("escrow_overdraft",),
        "supply_cap": ("supply_cap",),
        "delete_empty": ("stranded",),
    }
    for kind, ob_kinds in groups.items():
        t0 = time.perf_counter()
        obs = [o for o in m.obligations if o.kind in ob_kinds]
        status, msg, cex, span = PROVED, "", None, h.span
        unknown = False
        deadline = time.perf_counter() + opts.timeout_ms / 1000  # one budget per property
        for o in obs:
            left_ms = int((deadline - time.perf_counter()) * 1000)
            if left_ms <= 0:
                unknown = True
                break
            # the question: can every require hold, every earlier runtime check pass (else the
            # event was already rejected there), and this check still fail?
            earlier = [z3.Implies(e.guard, e.cond) for e in m.obligations[: m.obligations.index(o)]]
            r, model = solve_m(
                base + [m.ok_explicit, o.guard, z3.Not(o.cond)] + earlier, m, left_ms
            )
            if r == "sat":
                bad_status = (
                    GUARD if kind in ("no_overdraft", "supply_cap", "delete_empty") else REFUTED
                )
                extra = {"amount": o.amount} if o.amount is not None else None
                cex = counterexample(
                    m,
                    model,
                    policy,
                    f"line {o.span.line}: {o.detail}",
                    extra,
                    account=(o.account, o.index),
                )
                if bad_status == REFUTED:
                    j = m.obligations.index(o)
                    _attach_trace(
                        policy, h.name, cex, opts, lambda mm, j=j: _obligation_fails(mm, j)
                    )
                status, span = bad_status, o.span
                msg = _message(kind, o, cex) + _trace_note(cex)
                break
            if r == "unknown":
                unknown = True
        if status == PROVED:
            if unknown:
                status, msg = UNKNOWN, f"Z3 gave no answer within the {opts.timeout_ms} ms limit"
            elif not obs:
                msg = "nothing to check: the handler moves no value of this kind"
            else:
                msg = BUILTIN[kind]
        out.append(res(kind, status, msg, span, cex, t0=t0))

    # rounding
    t0 = time.perf_counter()
    if not m.splits:
        out.append(res("rounding", PROVED, "no split in this handler", t0=t0))
    else:
        status, msg, cex, span = PROVED, BUILTIN["rounding"], None, h.span
        deadline = time.perf_counter() + opts.timeout_ms / 1000
        for sp in m.splits:
            left_ms = int((deadline - time.perf_counter()) * 1000)
            if left_ms <= 0:
                status, msg = UNKNOWN, f"time limit of {opts.timeout_ms} ms reached"
                break
            conds = _rounding_conds(sp)
            r, model = solve_m(base + [applied, sp.guard, z3.Not(z3.And(*conds))], m, left_ms)
            if r == "sat":
                cex = counterexample(
                    m,
                    model,
                    policy,
                    f"line {sp.span.line}: split loses or creates units",
                    _split_extra(sp),
                )
                i = m.splits.index(sp)
                _attach_trace(
                    policy,
                    h.name,
                    cex,
                    opts,
                    lambda mm, i=i: z3.And(
                        mm.applied,
                        mm.splits[i].guard,
                        z3.Not(z3.And(*_rounding_conds(mm.splits[i]))),
                    ),
                )
                status, span = REFUTED, sp.span
                msg = (
                    f"the split at line {sp.span.line} ({sp.method}) does not distribute exactly: "
                    f"shares {cex.get('shares')}, leftover {cex.get('leftover')} "
                    f"of {cex.get('split_amount')}"
                )
                break
            if r == "unknown":
                status, msg = UNKNOWN, f"Z3 gave no answer within {opts.timeout_ms} ms"
        out.append(res("rounding", status, msg, span, cex, t0=t0))
    return out


def _rounding_conds(sp: Any) -> list:
    conds = [x >= 0 for x in sp.shares] + [sp.leftover >= 0]
    if sp.method != "floor_dust" and sp.cap is None:
        conds.append(z3.Implies(z3.And(sp.n > 0, sp.total > 0), sp.leftover == 0))
    return conds


def _obligation_fails(m: HandlerModel, j: int) -> Any:
    o = m.obligations[j]
    earlier = [z3.Implies(e.guard, e.cond) for e in m.obligations[:j]]
    return z3.And(m.ok_explicit, o.guard, z3.Not(o.cond), *earlier)


# --------------------------------------------------------------------------
# Confirming a refutation from the initial state (bounded search over event sequences)

MAX_TRACE = 3


def _changes_state(h: ir.Handler) -> bool:
    return any(not isinstance(st, (ir.Require, ir.Let, ir.Flag)) for st in h.body)


def confirm(
    policy: ir.Policy, target: str, fails: Any, opts: Options, max_events: int = MAX_TRACE
) -> Optional[tuple]:
    """Search event sequences of up to ``max_events`` (ending with ``target``) from the initial
    state for one where ``fails(last_model)`` holds.  Returns (models, z3 model) or None."""
    from itertools import product
    from .smt import encode_chain

    h = policy.handler(target)
    if h.kind != "event":
        return None  # timed handlers fire from time, not as test events
    prefixes = [x for x in policy.handlers if x.kind == "event" and _changes_state(x)]
    deadline = time.perf_counter() + 2 * opts.timeout_ms / 1000
    for n in range(1, max_events + 1):
        for prefix in product(prefixes, repeat=n - 1):
            left_ms = int((deadline - time.perf_counter()) * 1000)
            if left_ms <= 0:
                return None
            try:
                models = encode_chain(
                    policy, list(prefix) + [h], bound=opts.bound, fixed_params=opts.fixed_params
                )
            except Unsupported:
                return None
            goal = fails(models[-1]) if not getattr(fails, "wants_chain", False) else fails(models)
            formulas = [a for mm in models for a in mm.assumptions + mm.encoder.finish_reads()]
            formulas += [mm.applied for mm in models[:-1]]
            formulas.append(goal)
            r, model = solve(formulas, min(left_ms, opts.timeout_ms))
            if r == "sat":
                return models, model
    return None


def _attach_trace(policy: ir.Policy, target: str, cex: dict, opts: Options, fails: Any) -> None:
    """Confirm ``cex`` from the initial state; on success replace its scenario by the trace."""
    try:
        found = confirm(policy, target, fails, opts)
    except (z3.Z3Exception, Unsupported, TypeError, ValueError, KeyError, AttributeError):
        found = None
    if found is None:
        cex["confirmed"] = False
        return
    models, model = found
    try:
        cex["scenario"] = trace_scenario(policy, models, model)
        cex["confirmed"] = True
    except Exception:  # rendering problems must not lose the verdict
        cex["confirmed"] = False


def _trace_note(cex: Optional[dict]) -> str:
    if not cex:
        return ""
    if cex.get("confirmed"):
        n = len(cex["scenario"].get("events", []))
        return (
            f". Confirmed reachable: {n} event{'s' if n != 1 else ''} from the initial state "
            "reproduce it (replay below)"
        )
    if "confirmed" in cex:
        return (
            f". Not confirmed from the initial state within {MAX_TRACE} events: the pre-state "
            "shown may be unreachable (then a stronger invariant would prove the property)"
        )
    return ""


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


def _split_extra(sp: Any) -> dict:
    return {
        "split_amount": sp.amount,
        "weights": [z3.If(c, w, -1) for c, w in zip(sp.included, sp.weights)],
        "shares": sp.shares,
        "leftover": sp.leftover,
    }


def _message(kind: str, o: Any, cex: dict) -> str:
    amt = cex.get("amount")
    if kind == "non_negative":
        return (
            f"line {o.span.line}: {o.detail} is possible for inputs that satisfy every require "
            f"(amount {amt}); the runtime would reject these events, so the settlement can never "
            "complete for them - a formula or parameter-range bug"
        )
    if kind == "no_overdraft":
        return (
            f"line {o.span.line}: {o.detail} ({cex.get('account', o.account)}), with every require "
            f"satisfied (amount {amt}). The runtime rejects such an event (no value is created), "
            "but no `require` states why: add a guard such as "
            '`require balance(...) >= amount else "..."`'
        )
    if kind == "escrow_bound":
        return (
            f"line {o.span.line}: the escrow can be asked to release more than it holds "
            f"(amount {amt}), e.g. when it was already released: the handler does not ensure "
            "an escrow is released at most once and at most its amount"
        )
    if kind == "delete_empty":
        return (
            f"line {o.span.line}: {o.detail} ({amt} minor units left) with every require "
            "satisfied. The runtime rejects such an event rather than strand the value; "
            "refund or release the rest first, or require the escrow to be empty"
        )
    if kind == "supply_cap":
        return (
            f"line {o.span.line}: {o.detail} (mint {amt}) with every require satisfied. "
            "The runtime "
            "rejects such an event, but no `require` states why: guard it with `supply(...)`"
        )
    return o.detail


# --------------------------------------------------------------------------
# Declared properties


def check_declared(
    policy: ir.Policy, preps: dict[str, Prepared], inv_assume: dict[str, list], opts: Options
) -> list[Result]:
    out = []
    for p in policy.properties:
        t0 = time.perf_counter()
        if isinstance(p, ir.SplitProperty):
            out.append(
                _split_property(
                    policy, p, preps.get(p.handler), inv_assume.get(p.handler, []), opts, t0
                )
            )
        elif isinstance(p, ir.BudgetProperty):
            out.append(
                _budget_property(
                    policy, p, preps.get(p.handler), inv_assume.get(p.handler, []), opts, t0
                )
            )
    return out


def _split_property(
    policy: ir.Policy,
    p: ir.SplitProperty,
    prep: Optional[Prepared],
    inv: list,
    opts: Options,
    t0: float,
) -> Result:
    def res(status: str, msg: str, cex: Optional[dict] = None, span: ir.Span = p.span) -> Result:
        return Result(
            p.name,
            f"split_{p.kind}",
            p.handler,
            status,
            msg,
            span,
            opts.bound,
            True,
            cex,
            round(time.perf_counter() - t0, 4),
        )

    if prep is None:
        return res(UNKNOWN, f"no handler named {p.handler}")
    if prep.model is None:
        return res(UNKNOWN, f"not modelled: {prep.error}")
    m = prep.model
    if not m.splits:
        return res(UNKNOWN, f"handler {p.handler} has no split")
    base = m.assumptions + prep.extra_assumptions + inv + [m.applied]
    undecided_premise: list[int] = []
    for si, sp in enumerate(m.splits):
        built = _split_prop_conds(p, m, sp)
        if isinstance(built, str):
            return res(UNKNOWN, built)
        conds, premise = built
        r, model = solve_m(base + [sp.guard, z3.Not(z3.And(*conds))], m, opts.timeout_ms)
        if r == "sat":
            cex = counterexample(
                m,
                model,
                policy,
                f"{p.kind} fails for the split at line {sp.span.line}",
                _split_extra(sp),
            )

            def fails(mm: HandlerModel, si: int = si) -> Any:
                got = _split_prop_conds(p, mm, mm.splits[si])
                return (
                    z3.BoolVal(False)
                    if isinstance(got, str)
                    else z3.And(mm.applied, mm.splits[si].guard, z3.Not(z3.And(*got[0])))
                )

            _attach_trace(policy, p.handler, cex, opts, fails)
            return res(
                REFUTED,
                f"{p.kind} fails for the split at line {sp.span.line} ({sp.method}): "
                f"weights {cex['weights']} (-1 = not a recipient) give shares {cex['shares']}"
                f" of {cex['split_amount']}" + _trace_note(cex),
                cex,
                sp.span,
            )
        if r == "unknown":
            return res(
                UNKNOWN, f"Z3 gave no answer within {opts.timeout_ms} ms (bound {opts.bound})"
            )
        # vacuity: the premise must be reachable, or the proof says nothing
        r2, _ = solve_sat(
            base + [sp.guard, z3.Or(*premise) if premise else z3.BoolVal(False)],
            m,
            max(1, opts.timeout_ms // 2),
        )
        if r2 == "unsat":
            return res(
                VACUOUS,
                f"holds only vacuously: no applied event reaches the split at line "
                f"{sp.span.line} with the property's premise",
                span=sp.span,
            )
        if r2 == "unknown":
            undecided_premise.append(sp.span.line)
    note = ""
    if undecided_premise:
        note = (
            " (not confirmed non-vacuous: Z3 could not show within the time limit that an applied"
            f" event reaches the split at line(s) {', '.join(map(str, undecided_premise))} with"
            " the property's premise)"
        )
    return res(
        PROVED,
        f"{p.kind} holds for every split in {p.handler}, for up to {opts.bound} recipients "
        "and all weights, amounts and parameters in range" + note,
    )


def _budget_terms(p: ir.BudgetProperty, m: HandlerModel) -> tuple:
    comp = f"pool!{p.pool}"
    outs = [z3.If(q.guard, q.amount, 0) for q in m.postings if q.src_key and q.src_key[0] == comp]
    paid = z3.Sum(*outs) if outs else z3.IntVal(0)
    return paid, m.encoder.expr(p.limit, {}, m.pre, z3.BoolVal(True))


def _split_prop_conds(p: ir.SplitProperty, m: HandlerModel, sp: Any) -> Any:
    """(conditions that must hold, premise) of split property ``p`` for split ``sp``, or a
    reason it cannot be checked."""
    enc = m.encoder
    k = len(sp.shares)
    bound = enc.expr(p.bound, {}, m.pre, z3.BoolVal(True)) if p.bound is not None else None
    if isinstance(bound, Opt):
        return "optional bound"
    inc, w, s = sp.included, sp.weights, sp.shares
    base_min = sp.minimum if sp.minimum is not None else z3.IntVal(0)
    conds: list = []
    premise: list = []
    if p.kind == "proportional":
        b = bound if bound is not None else z3.IntVal(1)
        for i in range(k):
            # |(share - minimum) - rest*w/W| <= b, cross-multiplied by W > 0; the linear
            # form (scaled share) is used when no cap can cut the share
            if sp.scaled is not None and sp.cap is None:
                diff = sp.scaled[i]
            else:
                diff = (s[i] - base_min) * sp.total - sp.rest * w[i]
            conds.append(
                z3.Implies(
                    z3.And(inc[i], sp.total > 0),
                    z3.And(diff <= b * sp.total, -diff <= b * sp.total),
                )
            )
        premise.append(z3.And(sp.total > 0, sp.n > 0))
    elif p.kind == "monotone":
        for i in range(k):
            for j in range(k):
                if i != j:
                    conds.append(z3.Implies(z3.And(inc[i], inc[j], w[i] > w[j]), s[i] >= s[j]))
                    premise.append(z3.And(inc[i], inc[j], w[i] > w[j]))
    elif p.kind == "symmetric":
        b = bound if bound is not None else z3.IntVal(1)
        for i in range(k):
            for j in range(i + 1, k):
                conds.append(
                    z3.Implies(
                        z3.And(inc[i], inc[j], w[i] == w[j]),
                        z3.And(s[i] - s[j] <= b, s[j] - s[i] <= b),
                    )
                )
                premise.append(z3.And(inc[i], inc[j], w[i] == w[j]))
    elif p.kind in ("floor", "cap"):
        if bound is None:
            return f"{p.kind} property without a bound"
        for i in range(k):
            conds.append(z3.Implies(inc[i], s[i] >= bound if p.kind == "floor" else s[i] <= bound))
        premise += list(inc)
    else:
        return f"unknown split property kind {p.kind}"
    return conds, premise


def _budget_property(
    policy: ir.Policy,
    p: ir.BudgetProperty,
    prep: Optional[Prepared],
    inv: list,
    opts: Options,
    t0: float,
) -> Result:
    def res(status: str, msg: str, cex: Optional[dict] = None) -> Result:
        bounded = prep is not None and prep.model is not None and bool(prep.model.encoder.slots)
        return Result(
            p.name,
            "budget",
            p.handler,
            status,
            msg,
            p.span,
            opts.bound,
            bounded,
            cex,
            round(time.perf_counter() - t0, 4),
        )

    if prep is None:
        return res(UNKNOWN, f"no handler named {p.handler}")
    if prep.model is None:
        return res(UNKNOWN, f"not modelled: {prep.error}")
    m = prep.model
    paid, limit = _budget_terms(p, m)
    base = m.assumptions + prep.extra_assumptions + inv + [m.applied]
    r, model = solve_m(base + [paid > limit], m, opts.timeout_ms)
    if r == "sat":
        cex = counterexample(
            m,
            model,
            policy,
            f"pays {p.pool} more than the limit",
            {"paid_from_pool": paid, "limit": limit},
        )

        def fails(mm: HandlerModel) -> Any:
            pd, lm = _budget_terms(p, mm)
            return z3.And(mm.applied, pd > lm)

        _attach_trace(policy, p.handler, cex, opts, fails)
        return res(
            REFUTED,
            f"{p.handler} can pay {cex['paid_from_pool']} minor units out of {p.pool} "
            f"in one event; the limit is {cex['limit']}" + _trace_note(cex),
            cex,
        )
    if r == "unknown":
        return res(UNKNOWN, f"Z3 gave no answer within {opts.timeout_ms} ms")
    if not any(q.src_key and q.src_key[0] == f"pool!{p.pool}" for q in m.postings):
        return res(
            PROVED,
            f"{p.handler} never pays more than the limit out of {p.pool} in one event "
            f"(trivially: it has no posting out of {p.pool})",
        )
    return res(PROVED, f"{p.handler} never pays more than the limit out of {p.pool} in one event")


# --------------------------------------------------------------------------
# Caching


def _cache_dir(opts: Options) -> Optional[Path]:
    if opts.cache_dir is not None:
        return opts.cache_dir
    root = os.environ.get("XDG_CACHE_HOME")
    return Path(root) / "charter" / "verify" if root else Path(".charter-cache") / "verify"


def cache_key(policy: ir.Policy, opts: Options) -> str:
    """Hash of everything the results depend on: the IR (without tests) and the options."""
    data = ir.to_data(policy)
    data.pop("tests", None)
    data.pop("source_hash", None)
    return _hash({"ir": data}, opts)


def _cache_load(opts: Options, key: str) -> Optional[list[Result]]:
    d = _cache_dir(opts)
    if d is None:
        return None
    f = d / f"{key}.json"
    try:
        data = json.loads(f.read_text())
        out = [Result.from_dict(x) for x in data]
    except (OSError, ValueError, TypeError, KeyError):
        return None
    for r in out:
        r.cached = True
    return out


def _cache_store(opts: Options, key: str, results: list[Result]) -> None:
    d = _cache_dir(opts)
    if d is None:
        return
    try:
        d.mkdir(parents=True, exist_ok=True)
        tmp = d / f"{key}.tmp{os.getpid()}"
        tmp.write_text(json.dumps([r.to_dict() for r in results], default=str))
        tmp.replace(d / f"{key}.json")
    except OSError:
        pass  # a cache that cannot be written only costs time


# --------------------------------------------------------------------------
# Entry point


def _hash(obj: Any, opts: Options) -> str:
    blob = json.dumps(
        {
            "data": obj,
            "bound": opts.bound,
            "timeout": opts.timeout_ms,
            "fixed": {k: str(v) for k, v in (opts.fixed_params or {}).items()},
            "version": ENGINE,
            "z3": z3.get_version_string(),
        },
        sort_keys=True,
        default=str,
    )
    return hashlib.sha256(blob.encode()).hexdigest()


def _decls(policy: ir.Policy) -> dict:
    d = ir.to_data(policy)
    return {k: d[k] for k in ("assets", "roles", "params", "pools", "records")}


def _invariant_fails(inv: "Inv") -> Any:
    """For confirm(): the invariant holds in the trace's initial state and fails at its end."""

    def fails(models: list) -> Any:
        first, last = models[0], models[-1]
        key = z3.Int(f"bmc!{inv.record}!key") if inv.record else None
        init = State(first.encoder, {})
        before = _inv_terms(first, inv, init, key) if inv.record is None else z3.BoolVal(True)
        after = _inv_terms(last, inv, last.post, key)
        if key is not None:
            last.encoder.touch(inv.record, key)
        closed = last.encoder.closed_world(last.post)
        return z3.And(before, last.applied, z3.Not(after), *closed)

    fails.wants_chain = True  # type: ignore[attr-defined]
    return fails


def _creates(policy: ir.Policy, record: str) -> bool:
    """Does any handler contain ``create record(...)`` (at any depth)?"""

    def walk(stmts: tuple) -> bool:
        for st in stmts:
            if isinstance(st, ir.Create) and st.record == record:
                return True
            if isinstance(st, ir.If) and (walk(st.then) or walk(st.orelse)):
                return True
            if isinstance(st, ir.ForEach) and walk(st.body):
                return True
        return False

    return any(walk(h.body) for h in policy.handlers)


def _invariant_results(
    policy: ir.Policy,
    declared: list,
    alive: set,
    failed: dict,
    preps: dict,
    opts: Options,
    t_inv: float,
) -> list[Result]:
    out = []
    for inv in declared:
        if inv.name in alive and inv.record is not None and not _creates(policy, inv.record):
            out.append(
                Result(
                    inv.name,
                    "invariant",
                    None,
                    VACUOUS,
                    f"holds only vacuously: no handler ever creates a {inv.record} record",
                    inv.span,
                    opts.bound,
                )
            )
            continue
        if inv.name in alive:
            out.append(
                Result(
                    inv.name,
                    "invariant",
                    None,
                    PROVED,
                    "inductive: holds initially and every handler preserves it",
                    inv.span,
                    opts.bound,
                    any(p.model is not None and p.model.encoder.slots for p in preps.values()),
                    None,
                    round(t_inv, 4),
                )
            )
            continue
        status, hname, model = failed[inv.name]
        cex = None
        if status == REFUTED and hname is not None and isinstance(model, z3.ModelRef):
            hm = preps[hname].model
            extra = None
            if inv.record is not None:
                # show the record the invariant fails for (the generic key of the check)
                key = z3.Int(f"inv!{inv.record}!key")
                saved = list(hm.touched.get(inv.record, []))
                hm.touched[inv.record] = saved + [key]
                extra = {"$after_keys": [key]}
            cex = counterexample(hm, model, policy, f"{hname} breaks invariant {inv.name}", extra)
            if inv.record is not None:
                hm.touched[inv.record] = saved
            _attach_trace(policy, hname, cex, opts, _invariant_fails(inv))
            if cex.get("confirmed"):
                n = len(cex["scenario"]["events"])
                msg = (
                    f"violated: {n} event{'s' if n != 1 else ''} from the initial state (where it "
                    f"holds) lead to a state where it does not, the last one {hname} (replay below)"
                )
            else:
                msg = (
                    "not inductive: from a state where it (and every other proved invariant) "
                    f"holds, an applied {hname} event leads to one where it does not. No "
                    f"violation was found from the initial state within {MAX_TRACE} events, "
                    "so that starting state may be "
                    "unreachable: a stronger invariant that excludes it would prove this one"
                )
        elif status == REFUTED:
            msg = "does not hold in the initial state (no records, zero balances)"
        else:
            why = model if isinstance(model, str) else "time-out"
            msg = f"could not be established ({hname}: {why})"
        out.append(
            Result(
                inv.name,
                "invariant",
                hname,
                status,
                msg,
                inv.span,
                opts.bound,
                False,
                cex,
                round(t_inv, 4),
            )
        )
    return out


def verify(
    policy: ir.Policy, opts: Optional[Options] = None, use_cache: bool = True
) -> list[Result]:
    """Every result for ``policy``: built-in properties per handler, then declared ones.

    Cached at two levels (when ``use_cache``): the whole policy, and per handler by a hash
    of the handler's IR, the declarations, the invariants it may assume and the properties
    naming it, so editing one handler re-checks only what depends on it.
    """
    opts = opts or Options()
    fresh_context()
    key = cache_key(policy, opts)
    if use_cache:
        cached = _cache_load(opts, key)
        if cached is not None:
            return cached
    declared = _declared_invariants(policy)
    invs = declared + _auto_invariants(policy)
    decls = _decls(policy)
    inv_data = [_encode_inv(i) for i in declared]
    hkey = _hash(
        {
            "decls": decls,
            "handlers": [ir._encode(h) for h in policy.handlers],
            "invariants": inv_data,
            "kind": "houdini",
        },
        opts,
    )
    preps: dict[str, Prepared] = {}

    def prep_of(name: str) -> Prepared:
        if name not in preps:
            preps[name] = prepare(policy, policy.handler(name), invs, opts)
        return preps[name]

    hcached = _cache_load(opts, hkey) if use_cache else None
    if hcached is not None and hcached and hcached[0].kind == "houdini":
        alive = set(hcached[0].counterexample["alive"])
        inv_results = hcached[1:]
    else:
        for h in policy.handlers:
            prep_of(h.name)
        t0 = time.perf_counter()
        alive, failed = houdini(policy, preps, invs, opts)
        inv_results = _invariant_results(
            policy, declared, alive, failed, preps, opts, time.perf_counter() - t0
        )
        if use_cache:
            marker = Result(
                "$houdini", "houdini", None, PROVED, "", counterexample={"alive": sorted(alive)}
            )
            _cache_store(opts, hkey, [marker] + inv_results)
    results: list[Result] = []
    per_handler_declared: dict[str, list] = {}
    for p in policy.properties:
        if isinstance(p, (ir.SplitProperty, ir.BudgetProperty)):
            per_handler_declared.setdefault(p.handler, []).append(p)
    declared_results: list[Result] = []
    for h in policy.handlers:
        props = per_handler_declared.get(h.name, [])
        ckey = _hash(
            {
                "decls": decls,
                "handler": ir._encode(h),
                "alive": sorted(alive),
                "invariants": inv_data,
                "props": [ir._encode(p) for p in props],
                "kind": "handler",
            },
            opts,
        )
        cached = _cache_load(opts, ckey) if use_cache else None
        if cached is not None:
            results += [r for r in cached if r.kind not in _DECLARED_KINDS]
            declared_results += [r for r in cached if r.kind in _DECLARED_KINDS]
            continue
        prep = prep_of(h.name)
        mine: list[Result] = []
        if prep.model is None:
            mine.append(
                Result(
                    f"{h.name}.encoding",
                    "encoding",
                    h.name,
                    UNKNOWN,
                    f"not verified: the encoding does not support {prep.error}",
                    h.span,
                    opts.bound,
                )
            )
            inv_assume: list = []
        else:
            inv_assume = [t for inv in invs if inv.name in alive for t in prep.inv_pre[inv.name]]
            mine += check_handler(policy, prep, inv_assume, opts)
            if prep.model.notes:
                for r in mine:
                    if r.kind == "applicable":
                        r.message += (
                            " [model notes: " + "; ".join(dict.fromkeys(prep.model.notes)) + "]"
                        )
        sub = attrs.evolve(policy, properties=tuple(props))
        mine_declared = check_declared(sub, {h.name: prep}, {h.name: inv_assume}, opts)
        if use_cache:
            _cache_store(opts, ckey, mine + mine_declared)
        results += mine
        declared_results += mine_declared
    # declared properties naming an unknown handler
    names = {h.name for h in policy.handlers}
    orphans = [
        p
        for p in policy.properties
        if isinstance(p, (ir.SplitProperty, ir.BudgetProperty)) and p.handler not in names
    ]
    if orphans:
        declared_results += check_declared(
            attrs.evolve(policy, properties=tuple(orphans)), {}, {}, opts
        )
    order = {p.name: i for i, p in enumerate(policy.properties)}
    decl_all = sorted(inv_results + declared_results, key=lambda r: order.get(r.name, len(order)))
    results += decl_all
    if use_cache:
        _cache_store(opts, key, results)
    return results


_DECLARED_KINDS = {
    "split_proportional",
    "split_monotone",
    "split_symmetric",
    "split_floor",
    "split_cap",
    "budget",
}


def _encode_inv(inv: "Inv") -> Any:
    return {"name": inv.name, "cond": ir._encode(inv.cond), "record": inv.record, "var": inv.var}


def exit_code(results: list[Result], strict: bool = False) -> int:
    bad = {REFUTED} | ({GUARD, VACUOUS} if strict else set())
    return 1 if any(r.status in bad for r in results) else 0


# --------------------------------------------------------------------------
# Rendering: text, JSON, SARIF 2.1.0

_LABEL = {
    PROVED: "proved",
    REFUTED: "REFUTED",
    UNKNOWN: "UNKNOWN",
    GUARD: "GUARD-MISSING",
    VACUOUS: "VACUOUS",
}


def summary(results: list[Result]) -> dict[str, int]:
    out = {k: 0 for k in (PROVED, REFUTED, GUARD, UNKNOWN, VACUOUS)}
    for r in results:
        out[r.status] = out.get(r.status, 0) + 1
    return out


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
    if sc:
        for need in sc.get("needs_records", []):
            lines.append(f"{indent}  needs record (create it with earlier events): {need}")
        lines.append(f"{indent}  replay as a test (`charter test`):")
        lines += [f"{indent}    {ln}" for ln in sc["charter_test"].splitlines()]
    return lines


def render_text(
    policy: ir.Policy, results: list[Result], opts: Options, verbose: bool = False
) -> str:
    out = [
        f"verify {policy.name} {policy.version}: collections modelled with up to "
        f"{opts.bound} items, "
        f"{opts.timeout_ms} ms per check"
    ]
    by_handler: dict[Optional[str], list[Result]] = {}
    for r in results:
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
    s = summary(results)
    cached = " (from cache)" if results and all(r.cached for r in results) else ""
    out.append("")
    out.append(
        f"{s[PROVED]} proved, {s[REFUTED]} refuted, {s[GUARD]} guard missing, "
        f"{s[UNKNOWN]} unknown, {s[VACUOUS]} vacuous{cached}"
    )
    return "\n".join(out)


def render_json(policy: ir.Policy, results: list[Result], opts: Options) -> str:
    return json.dumps(
        {
            "policy": policy.name,
            "version": policy.version,
            "bound": opts.bound,
            "timeout_ms": opts.timeout_ms,
            "summary": summary(results),
            "results": [r.to_dict() for r in results],
        },
        indent=2,
        default=str,
    )


def render_sarif(policy: ir.Policy, results: list[Result], opts: Options) -> str:
    from charter import __version__

    rules: dict[str, dict] = {}
    sres = []
    for r in results:
        rid = f"charter/{r.kind}"
        if rid not in rules:
            rules[rid] = {
                "id": rid,
                "name": r.kind,
                "shortDescription": {"text": BUILTIN.get(r.kind, f"declared {r.kind} property")},
            }
        level, kind = {
            PROVED: ("none", "pass"),
            REFUTED: ("error", "fail"),
            GUARD: ("warning", "review"),
            UNKNOWN: ("note", "open"),
            VACUOUS: ("warning", "review"),
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
