"""The engine's closures: IR handlers compiled once into one Python closure per node.

Part of the engine, with :mod:`charter.runtime.pygen`: pygen writes
straight-line handler code as Python source and calls these closures for
the nodes it does not write (loops, splits, aggregates, roles, records, ...);
``backend="closures"`` runs whole handlers on closures only.  The oracle the
engine is checked against is :mod:`charter.runtime.reference`, an
independent interpreter of the IR (``tests/runtime/test_backends.py``,
``tests/runtime/test_event_fuzz.py``, ``benchmarks/fuzz_events.py``).

Every expression becomes a function ``f(env) -> value`` and every statement a
function ``f(env) -> None``; a handler is a tuple of statement closures.  The
tree is walked only here, once per policy (:func:`compile_policy` caches the
result), never per event.  Policies cannot reach Python: closures only read
and write the runtime :class:`~charter.runtime.state.State` through its
methods, and only the IR's operations exist.

Failures raise :class:`~charter.runtime.values.Rejected` with a code, a
message and the span of the statement being executed.  A per-event step
budget (statements executed + loop/aggregate/split items) bounds every
evaluation, so even a huge collection cannot stall the runtime.
"""

from __future__ import annotations

import operator
from fractions import Fraction
from typing import Any, Callable, Optional

import attrs

from charter.compiler import ir

from . import semantics as sem
from .ledger import escrow_account, party_account, pool_account, stake_account, supply_account
from .state import ABSENT, State
from .values import MAX_TEXT, PolicyNotExecutable, Rejected, amount_text, show

Fn = Callable[["Env"], Any]
# Sized so that ordinary economies never meet it (a split among 100,000 recipients, a loop
# over 200,000 records with a few statements each, an apportionment of 435 seats over 50
# states) while a runaway event still ends in seconds.  ``step_budget=`` / ``--step-budget``.
DEFAULT_STEP_BUDGET = 10_000_000


class Env:
    """What a closure sees while one handler runs."""

    __slots__ = ("st", "loc", "now", "submitter", "params", "steps", "budget", "span")

    def __init__(self, st: State, params: dict[str, Any], now: int, submitter: str, budget: int):
        self.st = st
        self.params = params
        self.now = now
        self.submitter = submitter
        self.loc: dict[str, Any] = {}
        self.steps = 0
        self.budget = budget
        self.span: Optional[ir.Span] = None


class StepBudgetExceeded(Rejected):
    named = False  # True once the message names the loop or split that spent the budget


def _over_budget(e: Env, where: Optional[str] = None, span: Optional[ir.Span] = None) -> None:
    place = f" in {where}" if where else ""
    if where and span is not None and span != ir.NOSPAN:
        place += f" (line {span.line})"
    err = StepBudgetExceeded(
        "step_budget",
        f"event exceeded its step budget of {e.budget} steps{place}; raise the budget with "
        "--step-budget N (charter run) or step_budget=N (open_runtime)",
        span if where else None,
    )
    err.named = where is not None
    raise err


def describe_collection(c: ir.Collection) -> str:
    """``Task records``, ``members of Agent``, ``all parties``, ``a list``: for messages."""
    if isinstance(c, ir.RecordsOf):
        return f"{c.record} records"
    if isinstance(c, ir.RoleMembers):
        return f"members of {c.role}" if c.role is not None else "all parties"
    return "a list"


@attrs.frozen
class CompiledHandler:
    name: str
    kind: str
    handler: ir.Handler
    params: tuple[ir.Field, ...]
    auth: Callable[[Env], None]
    body: Callable[[Env], None]


_CMP = {
    "==": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}
_ARITH = {"+": operator.add, "-": operator.sub, "*": operator.mul}


# ---------------------------------------------------------------- bounded lists
# A list value is a tuple; a field's list is replaced as a whole (nothing half-done: each
# function either returns the new tuple or rejects before anything changed).


def list_item(items: tuple, i: int) -> Any:
    """``xs[i]``: the item at position ``i``, counted from 0."""
    if not 0 <= i < len(items):
        raise Rejected("index_out_of_range",
                       f"index {i} is outside the list of {len(items)} items")
    return items[i]


def list_push(items: tuple, x: Any, bound: int) -> tuple:
    """``push x to ...``: ``x`` appended; a list already holding ``bound`` items rejects."""
    if len(items) >= bound:
        raise Rejected("list_full", f"the list is full ({bound} items)")
    return items + (x,)


def list_drop(items: tuple, i: int) -> tuple:
    """``remove xs[i]``: the item at ``i`` taken out; later items move up one (order kept)."""
    if not 0 <= i < len(items):
        raise Rejected("index_out_of_range",
                       f"index {i} is outside the list of {len(items)} items")
    return items[:i] + items[i + 1:]


def list_without(items: tuple, x: Any) -> tuple:
    """``remove x from ...``: the first item equal to ``x`` taken out (order kept)."""
    for i, y in enumerate(items):
        if y == x:
            return items[:i] + items[i + 1:]
    raise Rejected("not_in_list", f"{show(x)} is not in the list")


def list_fit(items: tuple, bound: int) -> tuple:
    """A list stored in a field of at most ``bound`` items."""
    if len(items) > bound:
        raise Rejected("list_too_long",
                       f"a list of {len(items)} items does not fit (at most {bound})")
    return items



class Compiler:
    def __init__(self, policy: ir.Policy):
        self.policy = policy
        self.assets = ir.AssetMap((a.name, a) for a in policy.assets)
        self.records = {r.name: r for r in policy.records}
        self.roles = {r.name: r for r in policy.roles}

    # ================================================================ handlers

    def handler(self, h: ir.Handler) -> CompiledHandler:
        body = self.block(h.body)
        return CompiledHandler(
            name=h.name, kind=h.kind, handler=h, params=h.params, auth=self.auth(h), body=body
        )

    def auth(self, h: ir.Handler) -> Callable[[Env], None]:
        a = h.auth
        span = h.span
        if isinstance(a, ir.AuthClock):

            def auth_clock(e: Env) -> None:
                if e.submitter != "clock":
                    raise Rejected(
                        "unauthorised",
                        f"{h.name} may only be submitted by the clock, not {e.submitter}",
                        span,
                    )

            return auth_clock
        if isinstance(a, ir.AuthRole):
            binder, role = a.binder, a.role
            if role is None:

                def auth_any(e: Env) -> None:
                    if e.submitter == "clock":
                        raise Rejected(
                            "unauthorised",
                            f"{h.name} must be submitted by a party, not the clock",
                            span,
                        )
                    e.loc[binder] = e.submitter

                return auth_any

            def auth_role(e: Env) -> None:
                if e.submitter not in e.st.roles[role]:
                    raise Rejected(
                        "unauthorised",
                        f"{e.submitter} does not hold the {role} role and may not submit {h.name}",
                        span,
                    )
                e.loc[binder] = e.submitter

            return auth_role
        if isinstance(a, ir.AuthParty):
            who = self.expr(a.party)

            def auth_party(e: Env) -> None:
                expected = who(e)
                if expected != e.submitter:
                    raise Rejected(
                        "unauthorised",
                        f"only {expected} may submit {h.name}, not {e.submitter}",
                        span,
                    )

            return auth_party
        raise PolicyNotExecutable(f"unknown auth {a!r}")

    # ================================================================ statements

    def block(self, stmts: tuple[ir.Stmt, ...]) -> Callable[[Env], None]:
        fns = tuple(self.stmt(st) for st in stmts)
        spans = tuple(st.span for st in stmts)
        n = len(fns)
        if n == 0:
            return lambda e: None

        def run(e: Env) -> None:
            e.steps += n
            if e.steps > e.budget:
                _over_budget(e)
            i = 0
            try:
                for f in fns:
                    f(e)
                    i += 1
            except Rejected as r:
                # expressions do not know where they are: the failing statement does
                if r.span is None:
                    r.span = spans[min(i, n - 1)]
                raise

        return run

    def stmt(self, s: ir.Stmt) -> Callable[[Env], None]:
        m = getattr(self, "s_" + type(s).__name__, None)
        if m is None:
            raise PolicyNotExecutable(
                f"statement {type(s).__name__} is not supported by the runtime"
            )
        return m(s)

    def s_Require(self, s: ir.Require):
        cond = self.expr(s.cond)
        msg = s.message or "requirement failed"
        span = s.span

        def require(e: Env) -> None:
            if not cond(e):
                raise Rejected("require", msg, span)

        return require

    def s_Reject(self, s: ir.Reject):
        msg, span = s.message, s.span

        def reject(e: Env) -> None:
            raise Rejected("rejected", msg, span)

        return reject

    def s_Let(self, s: ir.Let):
        v, name = self.expr(s.value), s.name

        def let(e: Env) -> None:
            e.loc[name] = v(e)

        return let

    def s_Var(self, s: ir.Var):
        v, name = self.expr(s.value), s.name

        def var(e: Env) -> None:
            e.loc[name] = v(e)

        return var

    def s_SetLocal(self, s: ir.SetLocal):
        v, name = self.expr(s.value), s.name

        def set_local(e: Env) -> None:
            e.loc[name] = v(e)

        return set_local

    def s_SetField(self, s: ir.SetField):
        key, v, r, f = self.expr(s.key), self.expr(s.value), s.record, s.field

        def set_field(e: Env) -> None:
            k = key(e)
            if k not in e.st.records[r]:
                raise Rejected("missing_record", f"no {r} with key {show(k)}")
            e.st.set_fields(r, k, {f: v(e)})

        return set_field

    def s_If(self, s: ir.If):
        cond, then, orelse = self.expr(s.cond), self.block(s.then), self.block(s.orelse)

        def if_(e: Env) -> None:
            if cond(e):
                then(e)
            else:
                orelse(e)

        return if_

    def s_ForEach(self, s: ir.ForEach):
        items = self.collection(s.source)
        where = self.expr(s.where) if s.where is not None else None
        body = self.block(s.body)
        var = s.var
        live = self._liveness(s.source)
        place, span = f"the loop over {describe_collection(s.source)} (for {var})", s.span
        if s.keys:
            items = self._ordered(items, var, where, s, place)

        def for_each(e: Env) -> None:
            loc = e.loc
            saved = loc.get(var, ABSENT)
            try:
                for item in items(e):
                    e.steps += 1
                    if e.steps > e.budget:
                        _over_budget(e, place, span)
                    if live is not None and not live(e, item):
                        continue  # removed by an earlier iteration
                    loc[var] = item
                    if where is not None and not where(e):
                        continue
                    body(e)
            except StepBudgetExceeded as r:
                if not r.named:  # spent by a statement of the body: this loop spent it
                    _over_budget(e, place, span)
                raise
            if saved is ABSENT:
                loc.pop(var, None)
            else:
                loc[var] = saved

        return for_each

    def _ordered(self, items: Callable[[Env], list], var: str, where: Any, s: ir.ForEach,
                 place: str) -> Callable[[Env], list]:
        """``ordered by``: the items ``where`` keeps at the start, sorted by their keys (all
        computed before the first iteration; one step each); ties keep collection order."""
        keys = tuple(self.expr(k) for k in s.keys)
        down = s.descending
        span = s.span

        def ordered(e: Env) -> list:
            loc = e.loc
            keyed = []
            for item in items(e):
                e.steps += 1
                if e.steps > e.budget:
                    _over_budget(e, place, span)
                loc[var] = item
                if where is not None and not where(e):
                    continue
                keyed.append((tuple(f(e) for f in keys), item))
            # stable sorts from the last key to the first: the first key decides
            for i in range(len(keys) - 1, -1, -1):
                keyed.sort(key=lambda t: t[0][i], reverse=down[i])
            return [item for _k, item in keyed]

        return ordered

    def _liveness(self, src: ir.Collection):
        # iteration is over the keys live when the loop starts; skip those deleted/expelled since
        if isinstance(src, ir.RecordsOf):
            r = src.record
            return lambda e, k: k in e.st.records[r]
        if isinstance(src, ir.RoleMembers) and src.role is not None:
            role = src.role
            return lambda e, p: p in e.st.roles[role]
        return None

    def member(self, asset: str, member: Optional[ir.Expr]) -> Optional[Fn]:
        """For a member of an asset family: a function giving its ledger name
        (``Token[USDC]``), rejecting a key that cannot name a member."""
        if member is None:
            return None
        key = self.expr(member)

        def member_asset(e: Env) -> str:
            k = key(e)
            why = ir.member_key_error(k)
            if why is not None:
                raise Rejected("bad_asset_key", f"not a member of {asset}: {why}")
            return ir.member_asset(asset, k)

        return member_asset

    def s_Move(self, s: ir.Move):
        if s.member is not None:
            return self.family_move(s)
        amount = self.expr(s.amount)
        src, dst = self.account(s.src), self.account(s.dst)
        asset, kind, span = s.asset, s.kind, s.span
        a = self.assets.get(asset)
        if a is None:
            raise PolicyNotExecutable(f"{kind} of unknown asset {asset}")
        if a.kind == "right":
            raise PolicyNotExecutable(f"{kind} of {asset}: a right is granted, not moved")
        dec = a.decimals
        from_supply = isinstance(s.src, ir.AccSupply)
        if from_supply and not a.mintable:
            raise PolicyNotExecutable(f"mint of {asset}, which is not mintable")
        if isinstance(s.dst, ir.AccSupply) and not (a.burnable or a.decay is not None):
            raise PolicyNotExecutable(f"burn of {asset}, which is not burnable")
        cap = a.cap
        supply_acc = supply_account(asset)
        # a credit line lets a party's own account go down to -credit (a parameter's value
        # when a parameter sets it: read per event, parameters being the ledger's)
        has_line = a.has_credit and isinstance(s.src, ir.AccParty)

        def move(e: Env) -> None:
            amt = amount(e)
            if amt < 0:
                raise Rejected(
                    "negative_amount", f"cannot {kind} a negative amount ({amt} {asset})", span
                )
            s_acc, d_acc = src(e), dst(e)
            st = e.st
            if from_supply:
                if cap is not None:
                    supply = -st.balances.get(supply_acc, 0)
                    if supply + amt > cap:
                        raise Rejected(
                            "cap_exceeded",
                            f"minting {amount_text(amt, dec, asset)} would exceed its cap of "
                            f"{amount_text(cap, dec, asset)} (supply "
                            f"{amount_text(supply, dec, asset)})",
                            span,
                        )
            else:
                have = st.balances.get(s_acc, 0)
                # the party's line: the asset's, the parameter's or its own attribute's
                line = -st.floor_of(s_acc) if has_line else 0
                if have + line < amt:
                    note = f" (credit line {amount_text(line, dec, asset)})" if line else ""
                    raise Rejected(
                        "insufficient_funds",
                        f"{kind}: {s_acc} holds {amount_text(have, dec, asset)}, "
                        f"needs {amount_text(amt, dec, asset)}{note}",
                        span,
                    )
            if amt:
                st.post(s_acc, d_acc, asset, amt, kind)

        return move

    def family_move(self, s: ir.Move):
        """A move of a member of an asset family: :meth:`s_Move` with the asset's ledger
        name (``Token[USDC]``) worked out per event; the checks are the same."""
        amount = self.expr(s.amount)
        src, dst = self.account(s.src), self.account(s.dst)
        member = self.member(s.asset, s.member)
        kind, span = s.kind, s.span
        a = self.assets.get(s.asset)
        if a is None or a.kind == "right":
            raise PolicyNotExecutable(f"{kind} of {s.asset}, which is not an amount")
        dec = a.decimals
        from_supply = isinstance(s.src, ir.AccSupply)
        if from_supply and not a.mintable:
            raise PolicyNotExecutable(f"mint of {s.asset}, which is not mintable")
        if isinstance(s.dst, ir.AccSupply) and not a.burnable:
            raise PolicyNotExecutable(f"burn of {s.asset}, which is not burnable")
        cap = a.cap
        credit = (a.credit or 0) if isinstance(s.src, ir.AccParty) else 0

        def move(e: Env) -> None:
            amt = amount(e)
            asset = member(e)
            if amt < 0:
                raise Rejected(
                    "negative_amount", f"cannot {kind} a negative amount ({amt} {asset})", span
                )
            s_acc, d_acc = src(e), dst(e)
            st = e.st
            if from_supply:
                if cap is not None:
                    supply = -st.balances.get(s_acc, 0)
                    if supply + amt > cap:
                        raise Rejected(
                            "cap_exceeded",
                            f"minting {amount_text(amt, dec, asset)} would exceed its cap of "
                            f"{amount_text(cap, dec, asset)} (supply "
                            f"{amount_text(supply, dec, asset)})",
                            span,
                        )
            else:
                have = st.balances.get(s_acc, 0)
                if have + credit < amt:
                    line = f" (credit line {amount_text(credit, dec, asset)})" if credit else ""
                    raise Rejected(
                        "insufficient_funds",
                        f"{kind}: {s_acc} holds {amount_text(have, dec, asset)}, "
                        f"needs {amount_text(amt, dec, asset)}{line}",
                        span,
                    )
            if amt:
                st.post(s_acc, d_acc, asset, amt, kind)

        return move

    def s_Split(self, s: ir.Split):
        amount = self.expr(s.amount)
        src = self.account(s.src)
        items = self.collection(s.source)
        where = self.expr(s.where) if s.where is not None else None
        to = self.expr(s.to)
        weight = self.expr(s.weight)
        minimum = self.expr(s.minimum) if s.minimum is not None else None
        cap = self.expr(s.cap) if s.cap is not None else None
        var, method, asset, span = s.var, s.method, s.asset, s.span
        rule, order = s.minimum_rule, s.order
        dec = self.assets[asset].decimals if asset in self.assets else 0
        member = self.member(asset, s.member)
        if method not in sem.METHODS:
            raise PolicyNotExecutable(f"unknown split method {method!r}")
        if rule not in sem.MINIMUM_RULES or order not in sem.ORDERS:
            raise PolicyNotExecutable(f"unknown split option {rule!r}/{order!r}")
        dst_asset = asset
        # a record-typed recipient is paid into that record's escrow
        escrow_of = s.to.type.record if isinstance(s.to.type, ir.TRecord) else None
        where_budget = f"the split of {asset} among {describe_collection(s.source)}"
        a = self.assets.get(asset)
        has_line = a is not None and a.has_credit and isinstance(s.src, ir.AccParty)

        # `split ... between {ACC: W}`: item i pays the i-th account (a pool, escrow or party)
        fixed = [self.account(acc) for acc in s.accounts]

        def recipient_account(e: Env, r: Any, dst_asset: str) -> str:
            if fixed:
                return fixed[r](e)
            if escrow_of is None:
                return party_account(r, dst_asset)
            if r not in e.st.records[escrow_of]:
                raise Rejected("missing_record", f"no {escrow_of} with key {show(r)}", span)
            return escrow_account(escrow_of, r, dst_asset)

        def split(e: Env) -> None:
            amt = amount(e)
            asset = member(e) if member is not None else dst_asset
            s_acc = src(e)
            st = e.st
            have = st.balances.get(s_acc, 0)
            if amt < 0:
                raise Rejected(
                    "negative_amount", f"cannot split a negative amount ({amt} {asset})", span
                )
            line = -st.floor_of(s_acc) if has_line else 0
            if have + line < amt:
                note = f" (credit line {amount_text(line, dec, asset)})" if line else ""
                raise Rejected(
                    "insufficient_funds",
                    f"split: {s_acc} holds {amount_text(have, dec, asset)}, "
                    f"needs {amount_text(amt, dec, asset)}{note}",
                    span,
                )
            loc = e.loc
            saved = loc.get(var, ABSENT)
            keys: list[Any] = []
            recipients: list[Any] = []
            weights: list[Any] = []
            try:
                for item in items(e):
                    e.steps += 1
                    if e.steps > e.budget:
                        _over_budget(e, where_budget, span)
                    loc[var] = item
                    if where is not None and not where(e):
                        continue
                    r = to(e)
                    if r is None:
                        raise Rejected("none_value", "split recipient is none", span)
                    keys.append(item)
                    recipients.append(recipient_account(e, r, asset))
                    weights.append(weight(e))
            except StepBudgetExceeded as err:
                if not err.named:
                    _over_budget(e, where_budget, span)
                raise
            mn = minimum(e) if minimum is not None else None
            cp = cap(e) if cap is not None else None
            if saved is ABSENT:
                loc.pop(var, None)
            else:
                loc[var] = saved
            ints = _integer_weights(weights)
            try:
                if order != "listed":
                    perm = sem.order_recipients(keys, ints, order)
                    recipients = [recipients[i] for i in perm]
                    ints = [ints[i] for i in perm]
                shares, _left = sem.split(amt, ints, method, mn, cp, rule)
            except sem.SemanticsError as err:
                raise Rejected(err.code, err.message, span) from None
            st.post_many(
                [(s_acc, acc, share) for acc, share in zip(recipients, shares) if share],
                asset, "split",
            )  # fmt: skip

        return split

    def s_Grant(self, s: ir.Grant):
        key = self.expr(s.key) if s.key is not None else None
        party, until = self.expr(s.party), (self.expr(s.until) if s.until is not None else None)
        right = s.right

        def grant(e: Env) -> None:
            p = party(e)
            if p is None:
                raise Rejected("none_value", f"grant {right} to none", s.span)
            e.st.set_right((right, key(e) if key else None, p), until(e) if until else None)
            e.st.add_party(p)

        return grant

    def s_Revoke(self, s: ir.Revoke):
        key = self.expr(s.key) if s.key is not None else None
        party, right = self.expr(s.party), s.right

        def revoke(e: Env) -> None:
            k = (right, key(e) if key else None, party(e))
            if k in e.st.rights:
                e.st.set_right(k, ABSENT)

        return revoke

    def s_Admit(self, s: ir.Admit):
        party, role = self.expr(s.party), s.role
        given = {name: self.expr(x) for name, x in s.attrs}
        decl = self.roles.get(role)
        if decl is None:
            raise PolicyNotExecutable(f"admit as unknown role {role}")
        defaults = {
            f.name: (self.expr(f.default) if f.default is not None else None) for f in decl.attrs
        }

        def admit(e: Env) -> None:
            p = party(e)
            if p is None:
                raise Rejected("none_value", f"admit none as {role}", s.span)
            if p == "clock":
                raise Rejected("bad_party", "the clock cannot hold a role", s.span)
            if p in e.st.roles[role]:
                raise Rejected("already_member", f"{p} already holds the {role} role", s.span)
            attrs_: dict[str, Any] = {}
            for name, d in defaults.items():
                f = given.get(name, d)
                attrs_[name] = f(e) if f is not None else None
            for name, f in given.items():
                attrs_[name] = f(e)
            e.st.set_role(role, p, attrs_)

        return admit

    def s_Expel(self, s: ir.Expel):
        party, role = self.expr(s.party), s.role

        def expel(e: Env) -> None:
            p = party(e)
            if p not in e.st.roles[role]:
                raise Rejected("not_member", f"{p} does not hold the {role} role", s.span)
            e.st.set_role(role, p, None)

        return expel

    def s_Create(self, s: ir.Create):
        key, r = self.expr(s.key), s.record
        decl = self.records.get(r)
        if decl is None:
            raise PolicyNotExecutable(f"create of unknown record {r}")
        given = {name: self.expr(x) for name, x in s.values}
        fields = [
            (f.name, given.get(f.name) or (self.expr(f.default) if f.default is not None else None))
            for f in decl.fields
        ]

        def create(e: Env) -> None:
            k = key(e)
            if not isinstance(k, str):
                raise Rejected("bad_key", f"{r} key must be text, got {show(k)}", s.span)
            if k in e.st.records[r]:
                raise Rejected("record_exists", f"{r} {k!r} already exists", s.span)
            e.st.create_record(
                r, k, {name: (f(e) if f is not None else None) for name, f in fields}
            )

        return create

    def s_Update(self, s: ir.Update):
        key, r = self.expr(s.key), s.record
        values = tuple((name, self.expr(x)) for name, x in s.values)

        def update(e: Env) -> None:
            k = key(e)
            if k not in e.st.records[r]:
                raise Rejected("missing_record", f"no {r} with key {show(k)}", s.span)
            e.st.set_fields(r, k, {name: f(e) for name, f in values})

        return update

    def s_Delete(self, s: ir.Delete):
        key, r = self.expr(s.key), s.record
        holds = self.records[r].holds if r in self.records else None
        family = holds is not None and self.assets.get(holds) is not None and \
            self.assets[holds].family is not None

        def delete(e: Env) -> None:
            k = key(e)
            if k not in e.st.records[r]:
                raise Rejected("missing_record", f"no {r} with key {show(k)}", s.span)
            if family:
                # one escrow per member of the family: every one of them must be empty
                prefix = escrow_account(r, k, holds + "[")
                for acc, left in sorted(e.st.balances.items()):
                    if left and acc.startswith(prefix):
                        raise Rejected("record_holds_value", f"{r} {k!r} still holds {left} "
                                                             f"{acc[len(prefix) - len(holds) - 1:]}",
                                       s.span)
            elif holds is not None:
                left = e.st.balances.get(escrow_account(r, k, holds), 0)
                if left:
                    # deleting would strand value no account could ever reach again
                    raise Rejected(
                        "record_holds_value", f"{r} {k!r} still holds {left} {holds}", s.span
                    )
            e.st.delete_record(r, k)

        return delete

    def s_Decay(self, s: ir.Decay):
        asset, rate = s.asset, s.rate
        supply = supply_account(asset)
        # floor(balance * n/d) is (balance * n) // d for a whole or exact rate (d > 0): no
        # Fraction per holder
        exact = type(rate) is int or isinstance(rate, Fraction)
        num, den = (rate.numerator, rate.denominator) if exact else (0, 1)

        def decay(e: Env) -> None:
            st = e.st
            accs = sorted(st.holders.get(asset, ()))
            e.steps += len(accs)
            if e.steps > e.budget:
                _over_budget(e, f"the decay of {asset}", s.span)
            get = st.balances.get
            if exact:
                cuts = [(acc, (get(acc, 0) * num) // den) for acc in accs]
            else:
                cuts = [(acc, sem.decay_amount(get(acc, 0), rate)) for acc in accs]
            st.post_many([(acc, supply, cut) for acc, cut in cuts if cut > 0], asset, "decay")

        return decay

    def s_Flag(self, s: ir.Flag):
        party, msg = self.expr(s.party), s.message

        def flag(e: Env) -> None:
            e.st.flags.append({"party": party(e), "message": msg})

        return flag

    def s_Dissolve(self, s: ir.Dissolve):
        def dissolve(e: Env) -> None:
            e.st.set_meta("dissolved", True)

        return dissolve

    # ================================================================ accounts

    def account(self, a: ir.Account) -> Fn:
        member = self.member(a.asset, a.member)
        if member is not None and isinstance(a, ir.AccPool):
            pool = a.pool
            return lambda e: pool_account(pool, member(e))
        if member is not None and isinstance(a, ir.AccSupply):
            return lambda e: supply_account(member(e))
        if isinstance(a, ir.AccPool):
            name = pool_account(a.pool)
            return lambda e: name
        if isinstance(a, ir.AccSupply):
            name = supply_account(a.asset)
            return lambda e: name
        if isinstance(a, (ir.AccParty, ir.AccStake)):
            party = self.expr(a.party)
            asset = a.asset
            mk = party_account if isinstance(a, ir.AccParty) else stake_account
            what = "account" if isinstance(a, ir.AccParty) else "stake"

            def party_acc(e: Env) -> str:
                p = party(e)
                if p is None:
                    raise Rejected("none_value", f"{what} of none ({asset})")
                if p == "clock":
                    raise Rejected("bad_party", "the clock holds no accounts")
                return mk(p, member(e) if member is not None else asset)

            return party_acc
        if isinstance(a, ir.AccEscrow):
            key, r, asset = self.expr(a.key), a.record, a.asset

            def escrow_acc(e: Env) -> str:
                k = key(e)
                if k not in e.st.records[r]:
                    raise Rejected("missing_record", f"no {r} with key {show(k)}")
                return escrow_account(r, k, member(e) if member is not None else asset)

            return escrow_acc
        raise PolicyNotExecutable(f"unknown account {a!r}")

    # ================================================================ collections

    def collection(self, c: ir.Collection) -> Callable[[Env], list]:
        if isinstance(c, ir.RoleMembers):
            role = c.role
            if role is None:
                return lambda e: sorted(e.st.parties)
            return lambda e: sorted(e.st.roles[role])
        if isinstance(c, ir.RecordsOf):
            r = c.record
            return lambda e: sorted(e.st.records[r])
        if isinstance(c, ir.ListItems):
            f = self.expr(c.expr)
            return lambda e: list(f(e))
        raise PolicyNotExecutable(f"unknown collection {c!r}")

    # ================================================================ expressions

    def expr(self, x: ir.Expr) -> Fn:
        m = getattr(self, "x_" + type(x).__name__, None)
        if m is None:
            raise PolicyNotExecutable(
                f"expression {type(x).__name__} is not supported by the runtime"
            )
        return m(x)

    def x_Const(self, x: ir.Const):
        v = x.value
        return lambda e: v

    def x_Local(self, x: ir.Local):
        name = x.name

        def local(e: Env) -> Any:
            try:
                return e.loc[name]
            except KeyError:
                raise PolicyNotExecutable(f"unbound name {name}") from None

        return local

    def x_ParamRef(self, x: ir.ParamRef):
        name = x.name
        return lambda e: e.params[name]

    def x_Now(self, x: ir.Now):
        return lambda e: e.now

    def x_RecordRef(self, x: ir.RecordRef):
        key, r = self.expr(x.key), x.record

        def record_ref(e: Env) -> Any:
            k = key(e)
            if k not in e.st.records[r]:
                raise Rejected("missing_record", f"no {r} with key {show(k)}")
            return k

        return record_ref

    def x_RecordField(self, x: ir.RecordField):
        key, r, f = self.expr(x.key), x.record, x.field
        if isinstance(x.key, ir.Local):
            # the common `t.field` with `t` a bound key: one closure instead of two
            name = x.key.name

            def local_record_field(e: Env) -> Any:
                k = e.loc[name]
                rec = e.st.records[r].get(k)
                if rec is None:
                    raise Rejected("missing_record", f"no {r} with key {show(k)}")
                return rec[f]

            return local_record_field

        def record_field(e: Env) -> Any:
            k = key(e)
            rec = e.st.records[r].get(k)
            if rec is None:
                raise Rejected("missing_record", f"no {r} with key {show(k)}")
            return rec[f]

        return record_field

    def x_RoleAttr(self, x: ir.RoleAttr):
        party, role, attr = self.expr(x.party), x.role, x.attr

        def role_attr(e: Env) -> Any:
            p = party(e)
            attrs_ = e.st.roles[role].get(p)
            if attrs_ is None:
                raise Rejected("not_member", f"{p} does not hold the {role} role")
            return attrs_.get(attr)

        return role_attr

    def x_Exists(self, x: ir.Exists):
        key, r = self.expr(x.key), x.record
        return lambda e: key(e) in e.st.records[r]

    def x_Cond(self, x: ir.Cond):
        c, a, b = self.expr(x.cond), self.expr(x.then), self.expr(x.orelse)
        return lambda e: a(e) if c(e) else b(e)

    def x_Unary(self, x: ir.Unary):
        v = self.expr(x.operand)
        if x.op == "-":
            return lambda e: -v(e)
        if x.op == "not":
            return lambda e: not v(e)
        raise PolicyNotExecutable(f"unknown unary operator {x.op}")

    def x_Binary(self, x: ir.Binary):
        a, b, op = self.expr(x.left), self.expr(x.right), x.op
        if op == "and":
            return lambda e: a(e) and b(e)
        if op == "or":
            return lambda e: a(e) or b(e)
        if op == "/":

            def div(e: Env) -> Any:
                lv, rv = a(e), b(e)
                if rv == 0:
                    raise Rejected("division_by_zero", "division by zero")
                return Fraction(lv) / rv

            return div
        f = _CMP.get(op) or _ARITH.get(op)
        if f is None:
            raise PolicyNotExecutable(f"unknown operator {op}")
        if op in ("==", "!="):
            return lambda e: f(a(e), b(e))
        if op in _CMP and isinstance(x.right, ir.Const) and x.right.value is not None:
            c = x.right.value

            def compare_const(e: Env) -> bool:
                lv = a(e)
                if lv is None:
                    raise Rejected("none_value", f"comparison {op} with none")
                return f(lv, c)

            return compare_const
        if op in _CMP:

            def compare(e: Env) -> bool:
                lv, rv = a(e), b(e)
                if lv is None or rv is None:
                    raise Rejected("none_value", f"comparison {op} with none")
                return f(lv, rv)

            return compare

        def arith(e: Env) -> Any:
            lv, rv = a(e), b(e)
            if lv is None or rv is None:
                raise Rejected("none_value", f"arithmetic {op} on none")
            return _norm(f(lv, rv))

        return arith

    def _rounded_product(self, name: str, b: ir.Binary) -> Fn:
        """``floor(a * r)`` (or ceil/round, or ``a / b``) in integer arithmetic.

        Same exact result as building the Fraction and rounding it, without
        the Fraction (and its gcd) on the hot path of fees and shares.
        """
        left, right, div = self.expr(b.left), self.expr(b.right), b.op == "/"

        def rounded(e: Env) -> int:
            lv, rv = left(e), right(e)
            if lv is None or rv is None:
                raise Rejected("none_value", f"arithmetic {b.op} on none")
            ln, ld = _nd(lv)
            rn, rd = _nd(rv)
            if div:
                if rn == 0:
                    raise Rejected("division_by_zero", "division by zero")
                n, d = ln * rd, ld * rn
                if d < 0:
                    n, d = -n, -d
            else:
                n, d = ln * rn, ld * rd
            return sem.round_quotient(n, d, name)

        return rounded

    def x_AccBalance(self, x: ir.AccBalance):
        acc = self.account(x.account)
        return lambda e: e.st.balances.get(acc(e), 0)

    def x_ListLit(self, x: ir.ListLit):
        items = tuple(self.expr(i) for i in x.items)
        return lambda e: tuple(f(e) for f in items)

    def x_Aggregate(self, x: ir.Aggregate):
        items = self.collection(x.source)
        where = self.expr(x.where) if x.where is not None else None
        body = self.expr(x.body)
        var, kind = x.var, x.kind
        if kind not in ("sum", "count", "min", "max", "all", "any"):
            raise PolicyNotExecutable(f"unknown aggregate {kind}")

        place = f"the {kind} over {describe_collection(x.source)}"
        span = getattr(x, "span", None)

        def aggregate(e: Env) -> Any:
            loc = e.loc
            saved = loc.get(var, ABSENT)
            vals = []
            try:
                for item in items(e):
                    e.steps += 1
                    if e.steps > e.budget:
                        _over_budget(e, place, span)
                    loc[var] = item
                    if where is not None and not where(e):
                        continue
                    vals.append(True if kind == "count" else body(e))
            except StepBudgetExceeded as r:
                if not r.named:
                    _over_budget(e, place, span)
                raise
            if saved is ABSENT:
                loc.pop(var, None)
            else:
                loc[var] = saved
            if kind == "sum":
                return _norm(sum(vals))
            if kind == "count":
                return len(vals)
            if kind == "all":
                return all(vals)
            if kind == "any":
                return any(vals)
            if not vals:
                raise Rejected("empty_aggregate", f"{kind} over an empty collection")
            return min(vals) if kind == "min" else max(vals)

        return aggregate

    def x_Best(self, x: ir.Best):
        items = self.collection(x.source)
        where = self.expr(x.where) if x.where is not None else None
        keys = tuple(self.expr(k) for k in x.keys)
        var, largest = x.var, x.kind == "max"
        place = f"the {x.kind}_by over {describe_collection(x.source)}"

        def best(e: Env) -> Any:
            loc = e.loc
            saved = loc.get(var, ABSENT)
            found, top, winner = False, None, None
            try:
                for item in items(e):
                    e.steps += 1
                    if e.steps > e.budget:
                        _over_budget(e, place, None)
                    loc[var] = item
                    if where is not None and not where(e):
                        continue
                    k = tuple(f(e) for f in keys)
                    # strictly better only: among equal keys the first item stays
                    if not found or (k > top if largest else k < top):
                        found, top, winner = True, k, item
            except StepBudgetExceeded as r:
                if not r.named:
                    _over_budget(e, place, None)
                raise
            if saved is ABSENT:
                loc.pop(var, None)
            else:
                loc[var] = saved
            if not found:
                raise Rejected("empty_aggregate", f"{x.kind}_by over an empty collection")
            return winner

        return best

    def x_Builtin(self, x: ir.Builtin):
        name = x.name
        args = tuple(self.expr(a) for a in x.args)
        extra = x.extra
        one = args[0] if args else None
        if name in ("floor", "ceil", "round"):
            fn = sem.ROUNDINGS[name]
            arg = x.args[0]
            if isinstance(arg, ir.Binary) and arg.op in ("*", "/"):
                return self._rounded_product(name, arg)
            return lambda e: fn(one(e))
        if name == "abs":
            return lambda e: abs(one(e))
        if name in ("min", "max"):
            agg = min if name == "min" else max
            return lambda e: agg(f(e) for f in args)
        if name == "isqrt":

            def isqrt(e: Env) -> int:
                v = one(e)
                if v < 0:
                    raise Rejected("negative_sqrt", f"isqrt of a negative value ({v})")
                return sem.isqrt(v)

            return isqrt
        if name == "key":

            kinds = extra

            def key(e: Env) -> str:
                try:
                    parts = [v if k == "text" else sem.text_of(v, k)
                             for k, v in zip(kinds, (f(e) for f in args))]
                    return sem.check_text_length(sem.composite_key(parts), MAX_TEXT)
                except sem.SemanticsError as err:
                    raise Rejected(err.code, err.message) from None

            return key
        if name == "concat":
            left, right = args

            def concat(e: Env) -> str:
                try:
                    return sem.check_text_length(left(e) + right(e), MAX_TEXT)
                except sem.SemanticsError as err:
                    raise Rejected(err.code, err.message) from None

            return concat
        if name == "text":
            kind = extra[0]
            asset = extra[1] if len(extra) > 1 else ""
            dec = self.assets[asset].decimals if asset in self.assets else 0
            return lambda e: sem.text_of(one(e), kind, dec, asset)
        if name == "format":
            asset = extra[1] if len(extra) > 1 else ""
            scale = 10 ** self.assets[asset].decimals if asset in self.assets else 1
            places, group, suffix = x.args[1].value, x.args[2].value, args[3]

            def format_(e: Env) -> str:
                v = one(e)
                try:
                    text = sem.format_number(Fraction(v) / scale, places, group, suffix(e))
                    return sem.check_text_length(text, MAX_TEXT)
                except sem.SemanticsError as err:
                    raise Rejected(err.code, err.message) from None

            return format_
        if name == "sqrt":
            decimals = x.args[1].value

            def sqrt(e: Env) -> Any:
                try:
                    return _norm(sem.fixed_sqrt(one(e), decimals))
                except sem.SemanticsError as err:
                    raise Rejected(err.code, err.message) from None

            return sqrt
        if name == "pow" and len(args) == 3:
            base, exp, places = args[0], args[1], x.args[2].value
            return lambda e: _norm(sem.ipow_steps(base(e), exp(e), places))
        if name == "pow":
            base, exp = args
            return lambda e: _norm(sem.ipow(base(e), exp(e)))
        if name == "len":
            return lambda e: len(one(e))
        if name == "item":
            two = args[1]
            return lambda e: list_item(one(e), two(e))
        if name == "push":
            two, bound = args[1], int(extra[0])
            return lambda e: list_push(one(e), two(e), bound)
        if name == "drop":
            two = args[1]
            return lambda e: list_drop(one(e), two(e))
        if name == "without":
            two = args[1]
            return lambda e: list_without(one(e), two(e))
        if name == "fit":
            bound = int(extra[0])
            return lambda e: list_fit(one(e), bound)
        if name == "contains":
            two = args[1]
            return lambda e: two(e) in one(e)
        if name == "is_some":
            return lambda e: one(e) is not None
        if name == "is_none":
            return lambda e: one(e) is None
        if name == "some":

            def some(e: Env) -> Any:
                v = one(e)
                if v is None:
                    raise Rejected("none_value", "value is none")
                return v

            return some
        if name == "ratio":
            a, b = args

            def ratio(e: Env) -> Fraction:
                d = b(e)
                if d == 0:
                    raise Rejected("division_by_zero", "ratio with a zero denominator")
                return Fraction(a(e), d)

            return ratio
        if name == "supply":
            member = self.member(extra[0], x.args[0]) if x.args else None
            if member is not None:
                return lambda e: -e.st.balances.get(supply_account(member(e)), 0)
            acc = supply_account(extra[0])
            return lambda e: -e.st.balances.get(acc, 0)
        if name == "has_role":
            role = extra[0]
            return lambda e: one(e) in e.st.roles[role]
        if name == "has_right":
            right = extra[0]
            key = args[1] if len(args) > 1 else None
            return lambda e: e.st.has_right(one(e), right, key(e) if key else None, e.now)
        if name in ("balance", "stake"):
            # balance(party, Asset) / stake(party, Asset) when lowered as a call
            mk = party_account if name == "balance" else stake_account
            if len(args) == 1 and extra:
                asset = extra[0]
                return lambda e: e.st.balances.get(mk(one(e), asset), 0)
        raise PolicyNotExecutable(
            f"built-in {name}({len(args)} args, extra={extra}) is not supported"
        )


def _nd(v: Any) -> tuple[int, int]:
    """A number as (numerator, denominator) without building a Fraction."""
    if type(v) is int:
        return v, 1
    return v.numerator, v.denominator


def _norm(v: Any) -> Any:
    """Fractions that are whole become ints, so amounts stay ints."""
    if type(v) is Fraction and v.denominator == 1:
        return v.numerator
    return v


def _integer_weights(weights: list[Any]) -> list[int]:
    """Weights as ints; ratio weights are scaled by their common denominator (exact)."""
    if all(type(w) is int for w in weights):
        return weights
    den = 1
    for w in weights:
        if isinstance(w, Fraction):
            den = den * w.denominator // _gcd(den, w.denominator)
        elif w is None or isinstance(w, bool):
            raise Rejected("bad_weight", f"split weight must be a number, got {show(w)}")
    return [int(w * den) for w in weights]


def _gcd(a: int, b: int) -> int:
    import math

    return math.gcd(a, b)
