"""Authorisation: who can move whose money.

For every handler that moves value out of an account (a party's balance or stake, a record's
escrow, a pool) the check says who can cause it: the clock (a timed rule), a declared party
(``by gateway``), the party a record names (``by Task(id).poster``), the members of a role
whose membership is controlled, or anyone.  It is a finding when a submitter who is none of
those - anyone, or any member of a role anyone can join - can move value out of an account
that is not theirs: Z3 is asked whether the handler can apply, with the move paying a
positive amount and the account ending the event poorer, while the submitter is not one of the account's owners (the party itself
for balances and stakes, the parties the record names for an escrow, nobody for a pool).
Only a net loss counts: value that flows through an account within the event (a royalty
routed on from what the same event paid in) takes nothing from its owner.  A handler
declared ``property ...: anyone may call H`` is listed as declared, not reported.

Every debit becomes one row of the "who can move whose money" table that the text and JSON
reports show (``Result.details["rows"]``).
"""

from __future__ import annotations

import time
from typing import Any, Optional

import z3

from .. import ir
from .counterexample import counterexample
from .footprint import debits, declared_anyone, is_not, open_roles, own_account_lines, owners, who
from .footprint import walk
from .observed import AdmittedByAnyone, Unowned
from .options import Options
from .prepare import Prepared, Scope
from .result import PROVED, REFUTED, UNKNOWN, VACUOUS, Result
from .search import _attach_trace, _trace_note
from .solver import Session


def check_authority(scope: Scope) -> list[Result]:
    policy, preps, assume, opts = scope.policy, scope.preps, scope.assume, scope.opts
    opened = open_roles(policy)
    declared = declared_anyone(policy)
    out: list[Result] = []
    for h in policy.handlers:
        prep = preps.get(h.name)
        if prep is None or prep.model is None:
            continue
        m = prep.model
        out += _admissions(policy, h, m, prep, assume, opts, opened, declared)
        moves = debits(m)
        if not moves:
            continue
        t0 = time.perf_counter()
        w = who(policy, h, opened)
        base = m.assumptions + prep.extra_assumptions + assume.get(h.name, [])
        rows: list[dict] = []
        status, msg, cex, span = PROVED, "", None, h.span
        undecided = 0
        seen: set = set()
        own = own_account_lines(h)
        # the requires without the runtime's money checks: fewer assumptions, so "unsat"
        # still proves; each question is asked so first, with the money checks only if that
        # fails (a net loss needs no overdraft check to be ruled out: asset_royalties' pay)
        session = Session(m, base + [m.ok_explicit], opts.limits)
        flows = {} if _flows_exact(m) else None  # (comp, account id) -> net loss term
        for p in moves:
            key = (p.span.line, p.span.col, p.src_key[0])
            if key in seen:  # a split or a loop posts once per item: one row per statement
                continue
            seen.add(key)
            terms, owner_text = owners(policy, m, p.src_key[0], p.src_key[1], m.pre)
            row = {
                "handler": h.name,
                "line": p.span.line,
                "who": w.text,
                "moves": f"{p.kind} of {p.asset} out of {_account(p)}",
                "owner": owner_text,
                "verdict": "",
            }
            rows.append(row)
            if (p.span.line, p.span.col) in own:
                row["owner"] = f"the submitter ({h.auth.binder})"
                row["verdict"] = "owner: the submitter's own account"
                continue
            if w.authority:
                row["verdict"] = "authorised: " + _AUTHORITY[w.kind]
                continue
            if h.name in declared:
                row["verdict"] = f"declared: anyone may call ({declared[h.name]})"
                continue
            same = [p2 for p2 in moves if (p2.span.line, p2.span.col, p2.src_key[0]) == key]
            copies = [z3.And(q.guard, q.amount > 0, _drained(m, q, flows)) for q in same]
            pays = z3.Or(*copies)
            not_owner = (
                z3.And(*[is_not(m.submitter, o) for o in terms]) if terms else z3.BoolVal(True)
            )
            if session.proves([pays, not_owner], share=4):
                r, model = "unsat", None
            else:
                r, model = session.ask([pays, not_owner, m.ok_runtime],
                                       copies if len(copies) > 1 else None)
            if r == "unsat":
                row["verdict"] = "owner only: the requires make the submitter its owner"
                continue
            if r == "unknown":
                row["verdict"] = "undecided"
                undecided += 1
                continue
            row["verdict"] = "FINDING: a submitter who does not own it can move it"
            if status != REFUTED:
                cex = counterexample(
                    m, model, policy, f"line {p.span.line}: {p.kind} out of {_account(p)} "
                    "by a party who does not own it"
                )
                # from genesis, any of the handler's unowned debits shows the bug (the
                # modular witness may need a long history - a split weighted by points
                # given - where a refund in the same handler needs one earlier event)
                _attach_trace(
                    policy, h.name, cex, opts,
                    lambda mm, first=(p.span.line, p.span.col, p.src_key[0]):
                        _fails_any(policy, mm, first),
                    Unowned(h.name, f"only an account's owner or an authority may move value "
                            f"out of it, and {w.text} may submit {h.name}"),
                )
                status, span = REFUTED, p.span
                msg = (
                    f"{w.text} may submit `{h.name}`, and it moves {p.asset} out of "
                    f"{_account(p)} (line {p.span.line}) whose owner is {owner_text}: a party "
                    "who is none of them can cause it. Restrict `by` (e.g. `by Task(id).poster` "
                    "or a role only an authority grants), require the submitter to be the "
                    f"owner, or declare `property ...: anyone may call {h.name}` if anyone "
                    "is meant to" + _trace_note(cex)
                )
        if status == PROVED:
            if undecided:
                status = UNKNOWN
                msg = f"{undecided} move(s) not decided within {opts.limit_text()}"
            else:
                verdicts = sorted({r["verdict"].split(":")[0] for r in rows})
                msg = f"who can move value out ({w.text}): " + ", ".join(verdicts)
        res = Result(
            f"{h.name}.authority", "authority", h.name, status, msg, span, opts.bound,
            bool(m.encoder.slots), cex, round(time.perf_counter() - t0, 4),
        )
        res.details = {"rows": rows}
        out.append(res)
    out += _declarations(policy, opened)
    return out


def _admissions(
    policy: ir.Policy, h: ir.Handler, m: Any, prep: Prepared, assume: dict, opts: Options,
    opened: dict, declared: dict,
) -> list[Result]:
    """``H.admission``: who can make *another* party a member of a role.

    Joining a role yourself (``admit p as Agent`` by ``p``) is how open roles work; making
    someone else a member is an authority's act (an appointment, a vouch by a member).  It is
    a finding when a submitter with no authority - anyone, or a member of a role anyone can
    join - can admit a party other than themselves: Z3 is asked for an applied event after
    which a party that is not the submitter is a member it was not before."""
    admits = [s for s in walk(h.body) if isinstance(s, ir.Admit)
              and not (isinstance(h.auth, ir.AuthRole) and isinstance(s.party, ir.Local)
                       and s.party.name == h.auth.binder)]
    if not admits:
        return []
    t0 = time.perf_counter()
    w = who(policy, h, opened)
    roles = list(dict.fromkeys(s.role for s in admits))
    name = f"{h.name}.admission"
    if w.authority or h.name in declared:
        why = ("authorised: " + _AUTHORITY[w.kind]) if w.authority else (
            f"declared: anyone may call ({declared[h.name]})")
        return [Result(name, "authority", h.name, PROVED,
                       f"who can admit others into {', '.join(roles)} ({w.text}): {why}",
                       h.span, opts.bound, bool(m.encoder.slots), None,
                       round(time.perf_counter() - t0, 4))]
    base = m.assumptions + prep.extra_assumptions + assume.get(h.name, [])
    status, msg, cex, span = PROVED, "", None, h.span
    for role in roles:
        r, model = Session(m, base + [m.applied], opts.limits).ask([_admits_other(m, role)])
        if r == "unsat":
            continue
        if r == "unknown":
            status, msg = UNKNOWN, f"not decided within {opts.limit_text()}"
            continue
        line = next(s.span for s in admits if s.role == role)
        cex = counterexample(m, model, policy,
                             f"line {line.line}: {w.text} admits another party into {role}")
        _attach_trace(
            policy, h.name, cex, opts,
            lambda mm, role=role: z3.And(mm.applied, _admits_other(mm, role)),
            AdmittedByAnyone(h.name, f"only an authority makes another party a {role}, and "
                             f"{w.text} may submit {h.name}", role=role),
        )
        status, span = REFUTED, line
        msg = (
            f"{w.text} may submit `{h.name}`, which makes a party other than the submitter a "
            f"member of {role} (line {line.line}): membership is granted without authority. "
            "Restrict `by` (e.g. to members, or a declared party), admit only the submitter, "
            f"or declare `property ...: anyone may call {h.name}` if anyone is meant to"
            + _trace_note(cex)
        )
        break
    if status == PROVED:
        msg = (f"{w.text} may submit it, but the requires let it admit only the submitter "
               f"into {', '.join(roles)}")
    return [Result(name, "authority", h.name, status, msg, span, opts.bound,
                   bool(m.encoder.slots), cex, round(time.perf_counter() - t0, 4))]


def _admits_other(m: Any, role: str) -> Any:
    """After the event a party other than the submitter is a ``role`` member it was not."""
    x = z3.Int(f"{m.encoder.prefix}admitted!{role}")
    comp = f"role!{role}"
    return z3.And(x != m.submitter, z3.Select(m.post.get(comp), x),
                  z3.Not(z3.Select(m.pre.get(comp), x)))


def _declarations(policy: ir.Policy, opened: dict) -> list[Result]:
    """A result for each ``anyone may call H``: what it makes permissionless, or vacuous
    when only some parties may submit ``H`` anyway (the declaration would hide nothing)."""
    from .footprint import walk

    out = []
    for p in policy.properties:
        if not isinstance(p, ir.AnyoneProperty):
            continue
        h = policy.handler(p.handler)
        w = who(policy, h, opened)
        moves = [s for s in walk(h.body) if isinstance(s, (ir.Move, ir.Split))
                 and not isinstance(s.src, ir.AccSupply)]
        if w.authority:
            status, msg = VACUOUS, (f"declares `{h.name}` permissionless, but only {w.text} "
                                    "may submit it: the declaration grants nothing")
        else:
            status, msg = PROVED, (f"declared: {w.text} may submit `{h.name}`, which moves "
                                   f"value out of {len(moves)} account(s) that need not be "
                                   "theirs (listed in the who-can-move-whose-money table); "
                                   "a declaration of intent, not a proof")
        out.append(Result(p.name, "authority", None, status, msg, p.span))
    return out


_AUTHORITY = {
    "clock": "a timed rule",
    "param": "a declared party",
    "named": "the party its `by` names",
    "role": "a role only an authority grants",
}


def _drained(m: Any, q: Any, flows: Optional[dict] = None) -> Any:
    """The account ``q`` pays out of ends the event with less than it started: value that
    only flows through (a royalty routed on from what the same event paid in) is no one's
    loss.

    ``flows`` (a dict when :func:`_flows_exact`): said as "what the event's postings pay
    into the account is less than what they take out of it" - the same fact for an applied
    event, but a sum of guarded amounts instead of a read through every store the event made
    to the balances (asset_royalties' three nested royalty loops: 5.2M resource units ->
    1.5M).  Kept in ``flows`` per account: the loop copies of a move mostly debit a few
    accounts (the parent of each of the three Reuse slots)."""
    comp, idx = q.src_key
    if flows is not None and comp.startswith(_BALANCES):
        key = (comp, None if idx is None else idx.get_id())
        if key not in flows:
            flows[key] = (idx, _net_loss(m, comp, idx))  # (idx kept: its id stays its own)
        return flows[key][1]
    if idx is None:
        return m.post.get(comp) < m.pre.get(comp)
    return z3.Select(m.post.get(comp), idx) < z3.Select(m.pre.get(comp), idx)


# the components whose values change only by postings (``Encoder.transfer``/``split``):
# balances, stakes, escrows and pools (a supply goes up on a burn, so it is not one of them)
_BALANCES = ("bal!", "stake!", "escrow!", "pool!", "fescrow!", "fpool!")


def _flows_exact(m: Any) -> bool:
    """Does every change the handler makes to a balance come with its posting?  The encoder
    adds each posting's amount to its destination and takes it from its source under the
    posting's path guard (a split recipient left out gets a share of 0, by construction in
    :mod:`.splits`); only ``decay`` rewrites balances without postings."""
    return not any(isinstance(s, ir.Decay) for s in walk(m.handler.body))


def _net_loss(m: Any, comp: str, idx: Any) -> Any:
    """The postings of the event pay less into account ``idx`` of ``comp`` than they take
    out of it (``post < pre`` of that account, as a sum of the postings' guarded amounts)."""

    def at(i: Any) -> Any:
        return z3.BoolVal(True) if idx is None else i == idx

    ins = [z3.If(z3.And(p.guard, at(p.dst_key[1])), p.amount, 0)
           for p in m.postings if p.dst_key[0] == comp]
    outs = [z3.If(z3.And(p.guard, at(p.src_key[1])), p.amount, 0)
            for p in m.postings if p.src_key[0] == comp]
    if not outs:
        return z3.BoolVal(False)
    return (z3.Sum(*ins) if ins else z3.IntVal(0)) < z3.Sum(*outs)


def _account(p: Any) -> str:
    """A posting's source account with the owner left open (``balance({}, Credit)``)."""
    return p.src.replace("{}", "...") if "{}" in p.src else p.src


def _fails(policy: ir.Policy, m: Any, line: int, col: int, comp: str) -> Any:
    """In a trace's last model: the same move pays by a party who does not own the account."""
    same = [
        q for q in debits(m) if (q.span.line, q.span.col, q.src_key[0]) == (line, col, comp)
    ]
    if not same:
        return z3.BoolVal(False)
    terms, _ = owners(policy, m, comp, same[0].src_key[1], m.pre)
    not_owner = z3.And(*[is_not(m.submitter, o) for o in terms]) if terms else z3.BoolVal(True)
    pays = z3.Or(*[z3.And(q.guard, q.amount > 0, _drained(m, q)) for q in same])
    return z3.And(m.applied, pays, not_owner)


def _fails_any(policy: ir.Policy, m: Any, first: tuple) -> Any:
    """Some debit of the handler (the modular finding's first) pays out of an account its
    submitter does not own, and the handler is not declared permissionless."""
    keys = list(dict.fromkeys([first] + [
        (q.span.line, q.span.col, q.src_key[0]) for q in debits(m)
        if (q.span.line, q.span.col) not in own_account_lines(m.handler)
    ]))
    return z3.Or(*[_fails(policy, m, *k) for k in keys])


def table(results: list[Result]) -> list[dict]:
    """The "who can move whose money" rows of a run's authority results, in handler order."""
    out: list[dict] = []
    for r in results:
        if r.kind == "authority" and r.details:
            out += r.details.get("rows", [])
    return out


def render_table(rows: list[dict]) -> list[str]:
    if not rows:
        return []
    head = ("handler", "line", "who can cause it", "moves", "owner", "verdict")
    cells = [
        (r["handler"], str(r["line"]), r["who"], r["moves"], r["owner"], r["verdict"])
        for r in rows
    ]
    width = [max(len(c[i]) for c in cells + [head]) for i in range(5)]
    lines = ["who can move whose money"]
    for c in [head] + cells:
        lines.append(
            "  " + "  ".join(c[i].ljust(width[i]) for i in range(5)) + "  " + c[5]
        )
    return lines

