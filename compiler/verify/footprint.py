"""Static facts about handlers that the authorisation, once-only, issuance and stranded-value
checks share: which statements a handler runs, who may submit it, which roles anyone can
join, and the parties that own an account.

Nothing here asks Z3; the checks turn these facts into questions.
"""

from __future__ import annotations

from typing import Any, Iterator, Optional

import attrs
import z3

from .. import ir
from .model import HandlerModel, State
from .terms import Opt


def walk(stmts: tuple) -> Iterator[Any]:
    """Every statement, nested ``if``/``for each`` bodies included, in source order."""
    for s in stmts:
        yield s
        if isinstance(s, ir.If):
            yield from walk(s.then)
            yield from walk(s.orelse)
        elif isinstance(s, ir.ForEach):
            yield from walk(s.body)


def nodes(x: Any) -> Iterator[Any]:
    """Every IR node of ``x`` (a node, or a tuple or list of them), each once, ``x`` first."""
    seen: set = set()
    todo = [x]
    while todo:
        y = todo.pop()
        if isinstance(y, (tuple, list)):
            todo.extend(reversed(y))
        elif attrs.has(type(y)) and id(y) not in seen:
            seen.add(id(y))
            yield y
            todo.extend(reversed([getattr(y, f.name) for f in attrs.fields(type(y))]))


def declared_anyone(policy: ir.Policy) -> dict[str, str]:
    """Handler -> the ``anyone may call`` property that declares it permissionless."""
    return {p.handler: p.name for p in policy.properties if isinstance(p, ir.AnyoneProperty)}


def open_roles(policy: ir.Policy) -> dict[str, str]:
    """Roles anyone can obtain for free: role -> the handler that admits them.

    A role is open when a handler that anyone may submit (``by p: party`` or a member of an
    open role) admits into it without taking any value from its submitter (no fee, escrow or
    stake).  Membership that costs nothing is no authority: a cancel ``by a: Agent`` where
    anyone can ``join`` as Agent is a cancel by anyone.  A role joined by locking a bond or
    paying a share is an authority of its own (the members have something at stake)."""
    out: dict[str, str] = {}
    changed = True
    while changed:
        changed = False
        for h in policy.handlers:
            a = h.auth
            if not isinstance(a, ir.AuthRole) or (a.role is not None and a.role not in out):
                continue
            if _takes_from_submitter(h, a.binder):
                continue
            for s in walk(h.body):
                if isinstance(s, ir.Admit) and s.role not in out:
                    out[s.role] = h.name
                    changed = True
    return out


def _takes_from_submitter(h: ir.Handler, binder: str) -> bool:
    for s in walk(h.body):
        if isinstance(s, (ir.Move, ir.Split)) and isinstance(s.src, (ir.AccParty, ir.AccStake)):
            if isinstance(s.src.party, ir.Local) and s.src.party.name == binder:
                return True
    return False


def own_account_lines(h: ir.Handler) -> set[tuple[int, int]]:
    """Spans (line, col) of moves out of the submitter's own balance or stake, written as the
    ``by`` binder itself: no question to ask about who owns them."""
    if not isinstance(h.auth, ir.AuthRole):
        return set()
    out = set()
    for s in walk(h.body):
        if isinstance(s, (ir.Move, ir.Split)) and isinstance(s.src, (ir.AccParty, ir.AccStake)):
            if isinstance(s.src.party, ir.Local) and s.src.party.name == h.auth.binder:
                out.add((s.span.line, s.span.col))
    return out


def lifecycle_fields(policy: ir.Policy, rec: ir.Record) -> list[ir.Field]:
    """A record's lifecycle fields: bool and text fields that some handler changes after
    creation and some condition tests (``open``, ``status``), as opposed to data fields."""
    candidates = {f.name: f for f in rec.fields if isinstance(f.type, (ir.TBool, ir.TText))}
    changed: set = set()
    tested: set = set()
    for h in policy.handlers:
        for s in walk(h.body):
            if isinstance(s, ir.SetField) and s.record == rec.name:
                changed.add(s.field)
            elif isinstance(s, ir.Update) and s.record == rec.name:
                changed.update(f for f, _ in s.values)
            for e in _conditions(s):
                tested.update(_fields_read(e, rec.name))
    return [f for n, f in candidates.items() if n in changed and n in tested]


def _conditions(s: Any) -> list:
    if isinstance(s, ir.Require):
        return [s.cond]
    if isinstance(s, ir.If):
        return [s.cond]
    if isinstance(s, (ir.ForEach, ir.Split)) and s.where is not None:
        return [s.where]
    return []


def _fields_read(e: Any, record: str) -> set:
    out: set = set()

    def visit(x: Any) -> None:
        if isinstance(x, ir.RecordField) and x.record == record:
            out.add(x.field)
        if attrs.has(type(x)):
            for f in attrs.fields(type(x)):
                visit(getattr(x, f.name))
        elif isinstance(x, tuple):
            for y in x:
                visit(y)

    visit(e)
    return out


@attrs.frozen
class Who:
    """Who may submit a handler: ``kind`` is clock | param | named | role | open_role | anyone;
    ``authority`` says whether that alone entitles the submitter to move others' value."""

    kind: str
    text: str
    authority: bool


def who(policy: ir.Policy, h: ir.Handler, opened: Optional[dict[str, str]] = None) -> Who:
    a = h.auth
    opened = open_roles(policy) if opened is None else opened
    if isinstance(a, ir.AuthClock):
        return Who("clock", "the clock (a timed rule)", True)
    if isinstance(a, ir.AuthParty):
        if isinstance(a.party, ir.ParamRef):
            return Who("param", f"{a.party.name} (a declared party)", True)
        return Who("named", f"the party named by `{show_expr(a.party)}`", True)
    if a.role is None:
        return Who("anyone", "anyone", False)
    if a.role in opened:
        return Who("open_role", f"any {a.role} (anyone can join: `{opened[a.role]}`)", False)
    return Who("role", f"members of {a.role}", True)


def show_expr(e: Any) -> str:
    """An IR expression as the author would write it (enough for messages)."""
    if isinstance(e, ir.Local):
        return e.name
    if isinstance(e, ir.ParamRef):
        return e.name
    if isinstance(e, ir.Now):
        return "now"
    if isinstance(e, ir.Const):
        return repr(e.value) if isinstance(e.value, str) else str(e.value)
    if isinstance(e, ir.RecordRef):
        return f"{e.record}({show_expr(e.key)})"
    if isinstance(e, ir.RecordField):
        return f"{e.record}({show_expr(e.key)}).{e.field}"
    if isinstance(e, ir.RoleAttr):
        return f"{show_expr(e.party)}.{e.attr}"
    if isinstance(e, ir.Old):
        return f"old({show_expr(e.expr)})"
    return type(e).__name__


def party_fields(rec: ir.Record) -> list[str]:
    """Fields of a record that hold a party (or a role member), optional ones included."""
    out = []
    for f in rec.fields:
        t = f.type.inner if isinstance(f.type, ir.TOptional) else f.type
        if isinstance(t, ir.TParty):
            out.append(f.name)
    return out


def owners(
    policy: ir.Policy, m: HandlerModel, comp: str, idx: Any, state: State
) -> tuple[list, str]:
    """The party terms that own account ``(comp, idx)`` in ``state`` and how to say who they
    are: a party's own balance or stake is theirs; a record's escrow belongs to the parties
    the record names (poster, worker, ...); a pool belongs to no one party."""
    kind = comp.split("!")[0]
    if kind in ("bal", "stake"):
        return [idx], "its holder"
    if kind == "escrow":
        rec = policy.record(comp.split("!")[1])
        terms, names = [], party_fields(rec)
        for f in names:
            val = z3.Select(state.get(f"fld!{rec.name}!{f}"), idx)
            if isinstance(rec_field_type(rec, f), ir.TOptional):
                some = z3.Select(state.get(f"some!{rec.name}!{f}"), idx)
                terms.append(Opt(some, val))
            else:
                terms.append(val)
        return terms, (
            "the parties its record names (" + ", ".join(names) + ")" if names else "no party"
        )
    return [], "the policy (a pool, owned by no one party)"


def rec_field_type(rec: ir.Record, name: str) -> ir.Type:
    return next(f.type for f in rec.fields if f.name == name)


def is_not(submitter: Any, owner: Any) -> Any:
    if isinstance(owner, Opt):
        return z3.Or(z3.Not(owner.some), submitter != owner.val)
    return submitter != owner


def debits(m: HandlerModel) -> list:
    """Postings that move value out of an account (not minting from supply)."""
    return [p for p in m.postings if not p.src_key[0].startswith("supply!")]


def keyed_records(h: ir.Handler) -> list[tuple[str, str, Any]]:
    """(label, record, key) for the records the handler addresses by a composite key made
    only of its arguments and its submitter (``Position(listing, c)``): like a record-typed
    argument, the event names the record."""
    names = {f.name for f in h.params}
    if isinstance(h.auth, ir.AuthRole):
        names.add(h.auth.binder)
    out: list[tuple[str, str, Any]] = []
    seen: set = set()

    def visit(x: Any) -> None:
        if isinstance(x, tuple):
            for i in x:
                visit(i)
            return
        if not attrs.has(type(x)):
            return
        key = getattr(x, "key", None)
        rec = getattr(x, "record", None)
        if isinstance(rec, str) and isinstance(key, ir.Builtin) and key.name == "key" and all(
                isinstance(p, ir.Local) and p.name in names for p in key.args):
            label = ", ".join(p.name for p in key.args)
            if (label, rec) not in seen:
                seen.add((label, rec))
                out.append((label, rec, key))
        for f in attrs.fields(type(x)):
            visit(getattr(x, f.name))

    visit(h.body)
    return out


def record_args(h: ir.Handler) -> list[tuple[str, str]]:
    """(argument, record) for the handler's record-typed arguments (and a deadline's record)."""
    out = [(f.name, f.type.record) for f in h.params if isinstance(f.type, ir.TRecord)]
    if h.kind == "deadline" and h.binder and h.record:
        out.append((h.binder, h.record))
    return out
