"""Symbolic execution of IR handlers into Z3 (the verifier's encoding).

One :class:`HandlerModel` is built per handler.  It holds, as Z3 terms:

* ``assumptions``: what is true of every input the verifier considers -
  parameters within their declared ranges, argument types and ranges, pre-state
  balances ``>= 0``, supply within its cap, bounded collections of up to
  ``bound`` items in key order, and the definitions of split shares;
* ``ok_explicit``: the event passes every author-written ``require``/``reject``
  and every implicit check that is not about money (a record read must exist,
  ``some(x)`` must not be none, no division by zero, ...);
* ``ok_runtime``: the money checks the runtime performs on each move and split
  (amount ``>= 0``, source holds it, split inputs valid).  An event *applies*
  iff ``ok_explicit and ok_runtime``;
* ``obligations``: each runtime money check with its path guard, so the
  verifier can ask "can the requires hold and this check still fail?";
* ``postings``, ``splits`` and the post-state, for properties and for
  counterexamples.

Values follow :mod:`charter.compiler.ir`: ints/amounts/times are ``Int``,
ratios are ``Real`` (Z3 reals are exact rationals), text/party/record keys are
``Int`` codes (string constants get fixed codes; see :class:`Codes`).
Rounding is encoded exactly as :mod:`charter.runtime.semantics` defines it
(``floor`` = ``ToInt``, ``ceil(x) = -floor(-x)``, ``round(x) = floor(x+1/2)``),
and split shares are constrained by a characterisation that has exactly the
runtime algorithm's result as its unique solution (see :mod:`.splits`).

"""

from __future__ import annotations

from fractions import Fraction
from typing import Any, Optional

import z3

from .. import ir
from ..typecheck import static_range
from .model import HandlerModel, Obligation, Posting, SplitInfo, State, Watch
from .splits import _split_shares
from .terms import _eq, _numeral, _zero, Codes, ite, Opt, select, SList, sort_of, to_real, Unsupported, zceil, zfloor, zround


class VarCell:
    """The current value of a ``var`` local.  Blocks copy their environment (a ``let`` in a
    block ends with it) but share the cell, so an assignment inside a block is seen after
    it; ``if`` and loops merge the values of the paths (see :meth:`Encoder.stmt`)."""

    __slots__ = ("value",)

    def __init__(self, value: Any):
        self.value = value


def _cells(env: dict) -> list:
    """The var cells visible in ``env`` (each once), in a stable order."""
    out, seen = [], set()
    for name in sorted(env):
        v = env[name]
        if isinstance(v, VarCell) and id(v) not in seen:
            seen.add(id(v))
            out.append(v)
    return out


class Encoder:
    """Builds a :class:`HandlerModel` for one handler of a policy."""

    def __init__(
        self,
        policy: ir.Policy,
        bound: int = 3,
        codes: Optional[Codes] = None,
        prefix: str = "",
        fixed_params: Optional[dict] = None,
        shared: Optional[dict] = None,
    ):
        self.policy = policy
        self.bound = bound
        self.codes = codes or Codes()
        self.prefix = prefix  # distinguishes two encodings in one solver (diff)
        self.fixed_params = fixed_params or {}
        # `shared` lets two encodings (``charter diff``) use the same inputs and pre-state
        self.shared = shared if shared is not None else {}
        self.pre_components: dict[str, Any] = self.shared.setdefault("pre", {})
        self.inputs: dict[str, Any] = self.shared.setdefault("inputs", {})
        self.balance_reads: list[tuple[str, Any]] = []  # (component, index or None)
        self.assumptions: list = []
        self.lemmas: list = []  # valid facts about non-linear products (see product())
        # (a, b, a*b, path guard) of every product of two symbolic terms: the solver's linear
        # abstraction replaces each by a fresh variable constrained by the lemmas
        self.products: list = []
        # built texts (concat, text, format): one uninterpreted function per shape
        self.text_functions: dict = self.shared.setdefault("text_functions", {})
        self.ok_explicit: list = []
        self.ok_runtime: list = []
        self.obligations: list[Obligation] = []
        self.postings: list[Posting] = []
        self.splits: list[SplitInfo] = []
        self.watches: list[Watch] = []
        self.touched: dict[str, list] = {}
        self.slots: dict[tuple, list] = self.shared.setdefault("slots", {})
        self.notes: list[str] = []
        # asset families: id of an account index term -> (holder, member, family)
        self.family_parts: dict[int, tuple] = {}
        self.dissolves: list[tuple] = []  # (path guard, span) of each `dissolve`
        # (span of the branch's first statement, guard, which branch)
        self.branches: list[tuple] = []
        # role -> party terms whose membership the handler uses
        self.role_terms: dict[str, list] = {}
        self.params: dict[str, Any] = {}
        # id(split) -> (split, incremental solver holding its definition): the questions
        # about one split share it (solver.solve_split); dropped when the handler's checks end
        self.split_sessions: dict[int, tuple] = {}
        self._fresh = 0
        self.step = 0
        # while not None: every touch and role_term call, in order (see invariants._at_keys)
        self.touch_log: Optional[list] = None
        self._records = {r.name: r for r in policy.records}
        self._roles = {r.name: r for r in policy.roles}
        self._assets = {a.name: a for a in policy.assets}
        self._pools = {p.name: p for p in policy.pools}
        for p in policy.params:
            self.params[p.name] = self._param(p)

    # -- naming ------------------------------------------------------------
    def fresh(self, hint: str, sort: z3.SortRef) -> Any:
        self._fresh += 1
        return z3.Const(f"{self.prefix}{hint}!{self._fresh}", sort)

    def pre_component(self, name: str) -> Any:
        """The pre-state value of a component, created on first use."""
        if name not in self.pre_components:
            kind = name.split("!")[0]
            full = f"pre!{name}"
            if self.shared.get("init") and kind in ("live", "escrow", "stake", "right", "supply",
                                                    "fescrow", "lst"):
                # the initial state of a trace: no records (so no escrows), no stakes or
                # rights; party and pool balances and role members are the `given` setup
                if kind == "live":
                    v = z3.K(z3.IntSort(), z3.BoolVal(False))
                elif kind == "right":
                    a, b = z3.Ints("init!p init!k")
                    v = z3.Lambda([a, b], z3.BoolVal(False))
                elif kind == "supply":
                    v = z3.Int(full)
                    self.assumptions.append(v >= 0)
                    cap = self._assets[name.split("!")[1]].cap
                    if cap is not None:
                        self.assumptions.append(v <= cap)
                else:
                    v = z3.K(z3.IntSort(), z3.IntVal(0))
                self.pre_components[name] = v
                return v
            if kind in ("bal", "stake", "escrow", "fescrow", "fpool", "fsupply"):
                v = z3.Array(full, z3.IntSort(), z3.IntSort())
            elif kind == "pool":
                v = z3.Int(full)
                self.assumptions.append(v >= 0)
            elif kind == "supply":
                v = z3.Int(full)
                self.assumptions.append(v >= 0)
                cap = self._assets[name.split("!")[1]].cap
                if cap is not None:
                    self.assumptions.append(v <= cap)
            elif kind in ("live", "role", "some"):
                v = z3.Array(full, z3.IntSort(), z3.BoolSort())
            elif kind == "right":
                v = z3.Array(full, z3.IntSort(), z3.IntSort(), z3.BoolSort())
            elif kind in ("fld", "attr"):
                v = z3.Array(full, z3.IntSort(), self._component_sort(name))
            elif kind == "lst":  # a list field's length, by record key
                v = z3.Array(full, z3.IntSort(), z3.IntSort())
            elif kind == "lsti":  # a list field's item at one position, by record key
                inner = self._field_type(*name.split("!")[1:3]).inner
                v = z3.Array(full, z3.IntSort(), sort_of(inner))
            else:  # pragma: no cover - internal naming error
                raise AssertionError(name)
            self.pre_components[name] = v
        return self.pre_components[name]

    def _component_sort(self, name: str) -> z3.SortRef:
        parts = name.split("!")
        if parts[0] == "fld":
            return sort_of(self._field_type(parts[1], parts[2]))
        role = self._roles[parts[1]]
        return sort_of(next(f.type for f in role.attrs if f.name == parts[2]))

    def _field_type(self, record: str, field: str) -> ir.Type:
        rec = self._records[record]
        for f in rec.fields:
            if f.name == field:
                return f.type
        raise Unsupported(f"record {record} has no field {field}")

    # -- params and typed inputs --------------------------------------------
    def _param(self, p: ir.Param) -> Any:
        if p.name in self.fixed_params:
            return self.const(self.fixed_params[p.name], p.type)
        params = self.shared.setdefault("params", {})
        pkey = (p.name, repr(p.type))
        if pkey not in params:
            params[pkey] = self.fresh_typed(f"param.{p.name}", p.type, constrain=False)
        v = params[pkey]
        lo, hi = p.lo, p.hi
        if isinstance(p.type, ir.TInt):
            lo = p.type.lo if lo is None else lo
            hi = p.type.hi if hi is None else hi
        if lo is not None:
            self.assumptions.append(v >= self.const(lo, p.type))
        if hi is not None:
            self.assumptions.append(v <= self.const(hi, p.type))
        if lo is None and hi is None and not isinstance(p.type, (ir.TBool, ir.TParty, ir.TText)):
            # A numeric parameter without a declared range is verified at its default value
            # (an unbounded int/amount/ratio would make every formula "refutable"); bools,
            # parties and texts range over every value.
            self.assumptions.append(v == self.const(p.default, p.type))
            self.notes.append(f"parameter {p.name} has no declared range: verified at its default")
        self.watches.append(Watch(p.name, v, p.type, "param"))
        return v

    def named(self, name: str, t: ir.Type) -> Any:
        """An input shared with a paired encoding when names and types agree."""
        key = (name, repr(t))
        if key not in self.inputs:
            self.inputs[key] = self.fresh_typed(name, t, constrain=False)
        v = self.inputs[key]
        self.assumptions += self.type_constraints(v, t)
        return v

    def type_constraints(self, v: Any, t: ir.Type) -> list:
        """What every value of type ``t`` satisfies (declared int ranges, list bound)."""
        if isinstance(t, ir.TInt):
            out = []
            if t.lo is not None:
                out.append(v >= t.lo)
            if t.hi is not None:
                out.append(v <= t.hi)
            return out
        if isinstance(t, ir.TOptional) and isinstance(v, Opt):
            return [z3.Implies(v.some, c) for c in self.type_constraints(v.val, t.inner)]
        if isinstance(t, ir.TList) and isinstance(v, SList):
            out = [v.n >= 0, v.n <= self.bound]
            if t.bound is not None:
                out.append(v.n <= t.bound)  # `list of T max N`: the runtime refuses more
            for item in v.items:
                out += self.type_constraints(item, t.inner)
            return out
        return []

    def fresh_typed(self, name: str, t: ir.Type, constrain: bool = True) -> Any:
        if isinstance(t, ir.TOptional):
            return Opt(
                self.fresh(name + "?", z3.BoolSort()), self.fresh_typed(name, t.inner, constrain)
            )
        if isinstance(t, ir.TList):
            n = self.fresh(name + ".len", z3.IntSort())
            if constrain:
                self.assumptions += [n >= 0, n <= self.bound]
                if t.bound is not None:
                    self.assumptions.append(n <= t.bound)
            items = [
                self.fresh_typed(f"{name}[{i}]", t.inner, constrain) for i in range(self.bound)
            ]
            return SList(items, n)
        v = self.fresh(name, sort_of(t))
        if constrain and isinstance(t, ir.TInt):
            if t.lo is not None:
                self.assumptions.append(v >= t.lo)
            if t.hi is not None:
                self.assumptions.append(v <= t.hi)
        return v

    def const(self, value: Any, t: ir.Type) -> Any:
        if value is None:
            inner = t.inner if isinstance(t, ir.TOptional) else t
            return Opt(z3.BoolVal(False), _zero(inner))
        if isinstance(value, bool):
            return z3.BoolVal(value)
        if isinstance(value, int):
            if isinstance(t, ir.TRatio):
                return z3.RealVal(value)
            return z3.IntVal(value)
        if isinstance(value, Fraction):
            return z3.RealVal(value)
        if isinstance(value, str):
            return z3.IntVal(self.codes.code(value))
        if isinstance(value, tuple):
            inner = t.inner if isinstance(t, ir.TList) else ir.TInt()
            items = [self.const(v, inner) for v in value]
            return SList(items, z3.IntVal(len(items)))
        raise Unsupported(f"constant {value!r}")

    # -- checks ----------------------------------------------------------------
    def require(self, guard: Any, cond: Any) -> None:
        self.ok_explicit.append(z3.Implies(guard, cond))

    def oblige(
        self,
        guard: Any,
        cond: Any,
        kind: str,
        span: ir.Span,
        detail: str,
        account: str = "",
        account_kind: str = "",
        index: Any = None,
        amount: Any = None,
    ) -> None:
        self.ok_runtime.append(z3.Implies(guard, cond))
        self.obligations.append(
            Obligation(kind, guard, cond, span, detail, account, account_kind, index, amount)
        )

    # -- the handler -------------------------------------------------------------
    def encode(self, h: ir.Handler, start: Optional[dict] = None) -> HandlerModel:
        """Encode ``h`` from the pre-state (or from ``start``: a previous event's post-state)."""
        env: dict[str, Any] = {}
        self._start = dict(start or {})
        state = State(self, self._start)
        pre = State(self, self._start)
        true = z3.BoolVal(True)
        self.now = self.named("now", ir.TTime())
        self.assumptions.append(self.now >= 0)
        self.watches.append(Watch("now", self.now, ir.TTime(), "now"))
        submitter = self.named("submitter", ir.TParty())
        self.submitter = submitter
        args: dict[str, Any] = {}
        for f in h.params:
            v = self.named(f"arg.{f.name}", f.type)
            lo, hi = getattr(f, "lo", None), getattr(f, "hi", None)
            if lo is not None and not isinstance(v, (Opt, SList)):
                self.assumptions.append(v >= self.const(lo, f.type))
            if hi is not None and not isinstance(v, (Opt, SList)):
                self.assumptions.append(v <= self.const(hi, f.type))
            env[f.name] = v
            args[f.name] = v
            self.watches.append(Watch(f.name, v, f.type, "arg"))
            self._check_input_type(v, f.type, state, true)
        if isinstance(h.auth, ir.AuthClock):
            self.assumptions.append(submitter == self.codes.code("clock"))
        elif isinstance(h.auth, ir.AuthRole):
            env[h.auth.binder] = submitter
            self.assumptions.append(submitter != self.codes.code("clock"))
            if h.auth.role:
                self.require(true, self.has_role(state, submitter, h.auth.role))
            self.watches.append(
                Watch(h.auth.binder, submitter, ir.TParty(role=h.auth.role), "submitter")
            )
        elif isinstance(h.auth, ir.AuthParty):
            who = self.expr(h.auth.party, env, state, true)
            self.require(true, submitter == who)
            self.watches.append(Watch("submitter", submitter, ir.TParty(), "submitter"))
        if h.kind == "deadline" and h.record and h.binder:
            key = self.named(f"arg.{h.binder}", ir.TRecord(record=h.record))
            env[h.binder] = key
            args[h.binder] = key
            self.watches.append(Watch(h.binder, key, ir.TRecord(record=h.record), "arg"))
            self.require(true, self.live(state, h.record, key))
            if h.field:
                due = self.field(state, h.record, key, h.field, true)
                due = due.val if isinstance(due, Opt) else due
                self.require(true, due <= self.now)
        post = self.block(h.body, env, state, true)
        self.assumptions += self.closed_world(post)
        self.assumptions += self.finish_reads()
        return HandlerModel(
            handler=h,
            bound=self.bound,
            assumptions=self.assumptions,
            ok_explicit=z3.And(*self.ok_explicit) if self.ok_explicit else true,
            ok_runtime=z3.And(*self.ok_runtime) if self.ok_runtime else true,
            obligations=self.obligations,
            postings=self.postings,
            splits=self.splits,
            watches=self.watches,
            pre=pre,
            post=post,
            touched=self.touched,
            args=args,
            submitter=submitter,
            now=self.now,
            params=self.params,
            notes=self.notes,
            encoder=self,
        )

    def floor(self, comp: str) -> int:
        """The lowest balance an account of ``comp`` may hold: minus the asset's credit line
        for a party's own account (``bal!Asset``), else 0."""
        if comp.startswith("bal!"):
            a = self._assets.get(comp[4:])
            if a is not None and a.credit_attr is not None:
                # each member's own line: nothing is assumed of a balance before the event
                # (an attribute's value is whatever admitted the member, and a member expelled
                # while owing keeps its debt); moves are checked against the exact line
                # (line_at)
                return None
            if a is not None and a.credit_param is not None:
                return -self.params[a.credit_param]  # a parameter's line: symbolic
            if a is not None and a.credit:
                return -a.credit
        return 0

    def line_at(self, comp: str, idx: Any, state: State) -> Any:
        """The lowest balance a move may leave in account ``idx`` of ``comp``: :meth:`floor`,
        or for a line each member sets, minus the holder's own attribute in ``state`` (0 when
        it does not hold the role), exactly as the runtime checks it."""
        if comp.startswith("bal!") and idx is not None:
            a = self._assets.get(comp[4:])
            if a is not None and a.credit_attr is not None:
                role, attr = a.credit_attr
                member = self.has_role(state, idx, role)
                return -z3.If(member, select(state.get(f"attr!{role}!{attr}"), idx), 0)
        return self.floor(comp)

    def finish_reads(self, start: int = 0) -> list:
        """Pre-state balances read are at or above their floor (0, or minus a credit line):
        the facts for the reads from ``start`` on (e.g. by invariants, after :meth:`encode`),
        each account once (a handler reads one balance many times: gig_market's pay, 124
        reads of 6 accounts) and none already read before ``start``."""
        seen = {(c, None if i is None else i.get_id()) for c, i in self.balance_reads[:start]}
        reads = []
        for c, i in self.balance_reads[start:]:
            key = (c, None if i is None else i.get_id())
            if key not in seen:
                seen.add(key)
                reads.append((c, i))
        out = [
            select(self.pre_component(c), i) >= self.floor(c)
            if i is not None
            else self.pre_component(c) >= self.floor(c)
            for c, i in reads
            if self.floor(c) is not None  # an unbounded member's line: nothing is assumed
        ]
        # a family member's supply is within the family's cap, member by member
        for c, i in reads:
            if c.startswith("fsupply!") and self._assets[c.split("!")[1]].cap is not None:
                out.append(select(self.pre_component(c), i) <= self._assets[c.split("!")[1]].cap)
        # a record that does not exist holds nothing: the runtime deletes only empty records
        # and moves value only into live ones
        out += [
            z3.Implies(
                z3.Not(select(self.pre_component("live!" + c.split("!")[1]), i)),
                select(self.pre_component(c), i) == 0,
            )
            for c, i in reads
            if i is not None and c.startswith("escrow!")
        ]
        return out

    def _check_input_type(self, v: Any, t: ir.Type, state: State, guard: Any) -> None:
        """The runtime rejects ill-typed payloads: a role-typed party must hold the role,
        a record-typed key must name a live record."""
        if isinstance(t, ir.TOptional):
            inner = self._input_cond(v.val, t.inner, state)
            if inner is not None:
                self.require(guard, z3.Implies(v.some, inner))
            return
        if isinstance(t, ir.TList):
            for i, item in enumerate(v.items):
                c = self._input_cond(item, t.inner, state)
                if c is not None:
                    self.require(guard, z3.Implies(i < v.n, c))
            return
        c = self._input_cond(v, t, state)
        if c is not None:
            self.require(guard, c)

    def _input_cond(self, v: Any, t: ir.Type, state: State) -> Any:
        if isinstance(t, ir.TParty) and t.role:
            return self.has_role(state, v, t.role)
        if isinstance(t, ir.TRecord):
            return self.live(state, t.record, v)
        return None

    # -- statements ------------------------------------------------------------
    def block(self, stmts: tuple, env: dict, state: State, guard: Any) -> State:
        env = dict(env)
        for s in stmts:
            state = self.stmt(s, env, state, guard)
        return state

    def stmt(self, s: Any, env: dict, state: State, guard: Any) -> State:
        self.step += 1
        if isinstance(s, ir.Require):
            self.require(guard, self.cond(s.cond, env, state, guard))
        elif isinstance(s, ir.Reject):
            self.ok_explicit.append(z3.Not(guard))
        elif isinstance(s, ir.Let):
            env[s.name] = self.expr(s.value, env, state, guard)
        elif isinstance(s, ir.Var):
            env[s.name] = VarCell(self.expr(s.value, env, state, guard))
        elif isinstance(s, ir.SetLocal):
            cell = env.get(s.name)
            if not isinstance(cell, VarCell):
                raise Unsupported(f"assignment to {s.name}, which is not a var")
            cell.value = self.expr(s.value, env, state, guard)
        elif isinstance(s, ir.If):
            c = self.cond(s.cond, env, state, guard)
            then_span = s.then[0].span if s.then else s.span
            self.branches.append((then_span, z3.And(guard, c), "then"))
            if s.orelse:
                self.branches.append((s.orelse[0].span, z3.And(guard, z3.Not(c)), "else"))
            cells = _cells(env)
            before = [cell.value for cell in cells]
            a = self.block(s.then, env, state.copy(), z3.And(guard, c))
            after_then = [cell.value for cell in cells]
            for cell, v in zip(cells, before):
                cell.value = v
            b = self.block(s.orelse, env, state.copy(), z3.And(guard, z3.Not(c)))
            for cell, v in zip(cells, after_then):
                # a var assigned in a branch holds that branch's value after the `if`
                cell.value = cell.value if v is cell.value else ite(c, v, cell.value)
            state = a.merge(c, b)
        elif isinstance(s, ir.ForEach):
            cells = _cells(env)
            pairs = self.collection(s.source, env, state, guard)
            if s.keys:
                pairs = self.ordered(s, pairs, env, state, guard)
            for item, present in pairs:
                inner = dict(env)
                inner[s.var] = item
                c = present
                if s.keys:
                    # the runtime skips an item an earlier iteration deleted or expelled
                    c = z3.And(c, self.still_member(s.source, item, state))
                if s.where is not None:
                    c = z3.And(c, self.cond(s.where, inner, state, z3.And(guard, present)))
                before = [cell.value for cell in cells]
                a = self.block(s.body, inner, state.copy(), z3.And(guard, c))
                for cell, v in zip(cells, before):
                    # an iteration that does not run (item absent, `where` false) keeps it
                    cell.value = v if v is cell.value else ite(c, cell.value, v)
                state = a.merge(c, state)
        elif isinstance(s, ir.Move):
            self.move(s, env, state, guard)
        elif isinstance(s, ir.Split):
            self.split(s, env, state, guard)
        elif isinstance(s, (ir.SetField, ir.Update, ir.Create)):
            values = [(s.field, s.value)] if isinstance(s, ir.SetField) else list(s.values)
            key = self.expr(s.key, env, state, guard)
            live = self.live(state, s.record, key)
            if isinstance(s, ir.Create):
                self.require(guard, z3.Not(live))
            else:
                self.require(guard, live)
            evaluated = [(f, self.expr(e, env, state, guard)) for f, e in values]
            for f, v in evaluated:
                self.set_field(state, s.record, key, f, v)
            if isinstance(s, ir.Create):
                self.set_live(state, s.record, key, True)
        elif isinstance(s, ir.Delete):
            key = self.expr(s.key, env, state, guard)
            self.require(guard, self.live(state, s.record, key))
            holds = self._records[s.record].holds if s.record in self._records else None
            if holds is not None and self._assets[holds].family is not None:
                # the runtime checks the escrow of every member; the model cannot list them
                raise Unsupported(f"`delete` of a {s.record}, which holds the asset family "
                                  f"{holds}")
            if holds is not None:
                # the runtime refuses to delete a record whose escrow still holds value
                comp = f"escrow!{s.record}!{holds}"
                left = self.read_balance(state, comp, key)
                self.oblige(
                    guard,
                    left == 0,
                    "stranded",
                    s.span,
                    f"`delete` of a {s.record} whose escrow still holds {holds}",
                    f"balance({s.record}({{}}))",
                    "escrow",
                    key,
                    left,
                )
            self.set_live(state, s.record, key, False)
        elif isinstance(s, ir.Admit):
            p = self.expr(s.party, env, state, guard)
            name = f"role!{s.role}"
            self.role_term(s.role, p)
            # the runtime rejects admitting the clock or an existing member
            self.require(guard, p != self.codes.code("clock"))
            self.require(guard, z3.Not(select(state.get(name), p)))
            state.set(name, z3.Store(state.get(name), p, True))
            for a, e in s.attrs:
                v = self.expr(e, env, state, guard)
                an = f"attr!{s.role}!{a}"
                state.set(an, z3.Store(state.get(an), p, v.val if isinstance(v, Opt) else v))
        elif isinstance(s, ir.Expel):
            p = self.expr(s.party, env, state, guard)
            name = f"role!{s.role}"
            self.role_term(s.role, p)
            self.require(guard, select(state.get(name), p))  # expelling a non-member rejects
            state.set(name, z3.Store(state.get(name), p, False))
        elif isinstance(s, (ir.Grant, ir.Revoke)):
            p = self.expr(s.party, env, state, guard)
            k = self.expr(s.key, env, state, guard) if s.key is not None else z3.IntVal(0)
            name = f"right!{s.right}"
            state.set(name, z3.Store(state.get(name), p, k, isinstance(s, ir.Grant)))
        elif isinstance(s, ir.Decay):
            self.decay(s, state, guard)
        elif isinstance(s, ir.Flag):
            self.expr(s.party, env, state, guard)
        elif isinstance(s, ir.Dissolve):
            self.notes.append(f"{s.span}: `dissolve` is not modelled (treated as no change)")
            self.dissolves.append((guard, s.span))  # the stranded-value check asks about them
        else:
            raise Unsupported(f"statement {type(s).__name__}")
        return state

    # -- records, roles --------------------------------------------------------
    def touch(self, record: str, key: Any) -> None:
        if self.touch_log is not None:
            self.touch_log.append((self.touch, record, key))
        keys = self.touched.setdefault(record, [])
        if not any(k.eq(key) for k in keys):
            keys.append(key)

    def live(self, state: State, record: str, key: Any) -> Any:
        self.touch(record, key)
        return select(state.get(f"live!{record}"), key)

    def set_live(self, state: State, record: str, key: Any, value: bool) -> None:
        name = f"live!{record}"
        state.set(name, z3.Store(state.get(name), key, value))

    LIST_MODEL_LIMIT = 16  # list fields of more items are reported unknown (not modelled)

    def list_type(self, t: ir.TList) -> int:
        if t.bound is None:
            raise Unsupported("a list field without a bound")
        if t.bound > self.LIST_MODEL_LIMIT:
            raise Unsupported(f"a list field of up to {t.bound} items is not modelled "
                              f"(at most {self.LIST_MODEL_LIMIT})")
        return t.bound

    def field(self, state: State, record: str, key: Any, field: str, guard: Any) -> Any:
        self.require(guard, self.live(state, record, key))
        t = self._field_type(record, field)
        if isinstance(t, ir.TList):
            # a list field: its length and one array per position (exactly `bound` of them)
            bound = self.list_type(t)
            base = f"{record}!{field}"
            pre_n = select(self.pre_component(f"lst!{base}"), key)
            self.assumptions += [pre_n >= 0, pre_n <= bound]  # every stored list fits
            items = [select(state.get(f"lsti!{base}!{i}"), key) for i in range(bound)]
            return SList(items, select(state.get(f"lst!{base}"), key))
        val = select(state.get(f"fld!{record}!{field}"), key)
        if isinstance(t, ir.TOptional):
            return Opt(select(state.get(f"some!{record}!{field}"), key), val)
        return val

    def set_field(self, state: State, record: str, key: Any, field: str, v: Any) -> None:
        t = self._field_type(record, field)
        name = f"fld!{record}!{field}"
        if isinstance(t, ir.TList):
            bound = self.list_type(t)
            if not isinstance(v, SList):
                raise Unsupported("a list field set to a value that is not a list")
            base = f"{record}!{field}"
            state.set(f"lst!{base}", z3.Store(state.get(f"lst!{base}"), key, v.n))
            real = sort_of(t.inner) == z3.RealSort()
            for i in range(bound):
                comp = f"lsti!{base}!{i}"
                # positions past the value's items are unused (past its length): keep them
                item = v.items[i] if i < len(v.items) else select(state.get(comp), key)
                if real and z3.is_int(item):
                    item = z3.ToReal(item)
                state.set(comp, z3.Store(state.get(comp), key, item))
            return
        if isinstance(t, ir.TOptional):
            v = v if isinstance(v, Opt) else Opt(z3.BoolVal(True), v)
            sn = f"some!{record}!{field}"
            state.set(sn, z3.Store(state.get(sn), key, v.some))
            v = v.val
        elif isinstance(v, Opt):
            v = v.val
        if z3.is_int(v) and sort_of(t) == z3.RealSort():
            v = z3.ToReal(v)
        state.set(name, z3.Store(state.get(name), key, v))

    def has_role(self, state: State, p: Any, role: str) -> Any:
        self.role_term(role, p)
        return select(state.get(f"role!{role}"), p)

    def role_term(self, role: str, p: Any) -> None:
        if self.touch_log is not None:
            self.touch_log.append((self.role_term, role, p))
        terms = self.role_terms.setdefault(role, [])
        if not any(t.eq(p) for t in terms):
            terms.append(p)

    # -- collections -----------------------------------------------------------
    def collection(self, src: Any, env: dict, state: State, guard: Any) -> list:
        """``[(item, present)]``: up to ``bound`` items, in key order."""
        if isinstance(src, ir.ListItems):
            lst = self.expr(src.expr, env, state, guard)
            if not isinstance(lst, SList):
                raise Unsupported("iteration over a non-list value")
            return [(item, z3.IntVal(i) < lst.n) for i, item in enumerate(lst.items)]
        if isinstance(src, ir.RoleMembers):
            key = ("role", src.role)
        elif isinstance(src, ir.RecordsOf):
            key = ("records", src.record)
        else:
            raise Unsupported(f"collection {type(src).__name__}")
        if key not in self.slots:
            # The slots are the (bounded) universe of keys of this collection that exist at
            # any point of the event, in key order; which are members *now* is read from the
            # current state, so records created or parties admitted earlier in the handler
            # are iterated too (closed world: see closed_world()).
            items = []
            for i in range(self.bound):
                item = self.fresh(f"slot.{key[1]}[{i}]", z3.IntSort())
                present = self.fresh(f"slot.{key[1]}[{i}]?", z3.BoolSort())
                if items:
                    prev_item, prev_present = items[-1]
                    # slots are a prefix, strictly increasing in key order
                    self.assumptions.append(
                        z3.Implies(present, z3.And(prev_present, prev_item < item))
                    )
                if isinstance(src, ir.RoleMembers):
                    # the built-in clock never holds a role or an account
                    self.assumptions.append(item != self.codes.code("clock"))
                if isinstance(src, ir.RecordsOf):
                    self.touch(src.record, item)
                items.append((item, present))
                self.watches.append(
                    Watch(
                        f"{key[1]}[{i}]",
                        Opt(present, item),
                        ir.TParty() if key[0] == "role" else ir.TRecord(record=key[1]),
                        "slot",
                    )
                )
            self.slots[key] = items
            self.notes.append(f"collection {key[1]} is modelled with up to {self.bound} items")
        out = []
        for item, present in self.slots[key]:
            if isinstance(src, ir.RecordsOf):
                member = z3.And(present, select(state.get(f"live!{src.record}"), item))
            elif src.role:
                member = z3.And(present, select(state.get(f"role!{src.role}"), item))
            else:
                member = present
            out.append((item, member))
        return out

    def ordered(self, s: ir.ForEach, pairs: list, env: dict, state: State, guard: Any) -> list:
        """``ordered by``: the items as visited, ``[(item, visited)]`` by position.  Every
        item `where` keeps at the start gets its keys there; its position is the number of
        kept items before it (smaller keys, larger for `descending` ones, compared key by
        key, ties by collection order): exactly the runtime's stable sort."""
        entries = []
        for item, present in pairs:
            inner = dict(env)
            inner[s.var] = item
            c = present
            if s.where is not None:
                c = z3.And(c, self.cond(s.where, inner, state, z3.And(guard, present)))
            keys = []
            for k in s.keys:
                v = self.expr(k, inner, state, z3.And(guard, c))
                keys.append(v.val if isinstance(v, Opt) else v)
            entries.append((item, c, keys))

        def before(a: tuple, b: tuple, earlier: bool) -> Any:
            out = z3.BoolVal(earlier)
            for x, y, down in reversed(list(zip(a[2], b[2], s.descending))):
                strictly = x > y if down else x < y
                out = z3.Or(strictly, z3.And(_eq(x, y), out))
            return out

        ranks = []
        for i, e in enumerate(entries):
            ahead = [z3.If(z3.And(o[1], before(o, e, j < i)), 1, 0)
                     for j, o in enumerate(entries) if j != i]
            ranks.append(z3.Sum(*ahead) if ahead else z3.IntVal(0))
        out = []
        for pos in range(len(entries)):
            item, taken = entries[0][0], z3.BoolVal(False)
            for (it, c, _keys), rank in zip(entries, ranks):
                take = z3.And(c, rank == pos)
                item, taken = ite(take, it, item), z3.Or(taken, take)
            out.append((item, taken))
        return out

    def still_member(self, src: Any, item: Any, state: State) -> Any:
        if isinstance(src, ir.RecordsOf):
            return select(state.get(f"live!{src.record}"), item)
        if isinstance(src, ir.RoleMembers) and src.role:
            return select(state.get(f"role!{src.role}"), item)
        return z3.BoolVal(True)

    def closed_world(self, post: State) -> list:
        """Every key of a modelled collection that is a member before or after the event is
        one of its slots (this is the bound: at most ``bound`` members)."""
        out = []
        pre = State(self, getattr(self, "_start", {}))
        for (kind, name), items in self.slots.items():
            if kind == "records":
                keys, comp = self.touched.get(name, []), f"live!{name}"
            elif name is not None:
                keys, comp = self.role_terms.get(name, []), f"role!{name}"
            else:
                continue
            for k in keys:
                member = z3.Or(select(pre.get(comp), k), select(post.get(comp), k))
                out.append(z3.Implies(member, z3.Or(*[z3.And(p, it == k) for it, p in items])))
        return out

    # -- accounts and money ----------------------------------------------------
    def family_key(self, asset: str, member: Any, env: dict, state: State, guard: Any) -> Any:
        """The text code of a family member's key.  The runtime rejects a key that cannot
        name a member (``bad_asset_key``): which codes are valid keys is left open (an
        uninterpreted predicate), so every proof holds whatever the key is."""
        m = self.expr(member, env, state, guard)
        m = m.val if isinstance(m, Opt) else m
        ok = self.text_functions.get(("member_key_ok", None))
        if ok is None:
            # one predicate for every encoding (no prefix): a key is valid or not, whatever
            # event or version of the policy names it
            ok = z3.Function("member_key_ok", z3.IntSort(), z3.BoolSort())
            self.text_functions[("member_key_ok", None)] = ok
        self.require(guard, ok(m))
        return m

    def family_index(self, asset: str, x: Any, m: Any) -> Any:
        """The index of the account of holder ``x`` (a party or record key) in member ``m``
        of the family ``asset``: an injective function of the pair (each part is recovered
        by a projection), so two accounts are one exactly when holder and member are."""
        fns = self.text_functions.get(("family", asset))
        if fns is None:
            # no prefix: the events of a trace (and both versions in `charter diff`) index
            # one array, so they must share one injective pairing
            fns = (z3.Function(f"fam!{asset}", z3.IntSort(), z3.IntSort(), z3.IntSort()),
                   z3.Function(f"fam!{asset}.holder", z3.IntSort(), z3.IntSort()),
                   z3.Function(f"fam!{asset}.member", z3.IntSort(), z3.IntSort()))
            self.text_functions[("family", asset)] = fns
        k = fns[0](x, m)
        self.assumptions += [fns[1](k) == x, fns[2](k) == m]
        self.family_parts[k.get_id()] = (x, m, asset)
        return k

    def family_account(self, acc: Any, env: dict, state: State,
                       guard: Any) -> tuple[str, Any, str, str]:
        """:meth:`account` of a member of an asset family: party, stake and escrow accounts
        are indexed by (holder, member); a pool's and the supply by the member."""
        a = acc.asset
        if isinstance(acc, (ir.AccParty, ir.AccStake)):
            p = self.expr(acc.party, env, state, guard)
            self.require(guard, p != self.codes.code("clock"))
            m = self.family_key(a, acc.member, env, state, guard)
            i = self.family_index(a, p, m)
            if isinstance(acc, ir.AccParty):
                return f"bal!{a}", i, f"balance({{}}, {a}[member])", "party"
            return f"stake!{a}", i, f"stake({{}}, {a}[member])", "stake"
        if isinstance(acc, ir.AccEscrow):
            k = self.expr(acc.key, env, state, guard)
            self.touch(acc.record, k)
            m = self.family_key(a, acc.member, env, state, guard)
            return (f"fescrow!{acc.record}!{a}", self.family_index(a, k, m),
                    f"balance({acc.record}({{}}), {a}[member])", "escrow")
        m = self.family_key(a, acc.member, env, state, guard)
        if isinstance(acc, ir.AccPool):
            return f"fpool!{acc.pool}", m, f"balance({acc.pool}, {a}[member])", "pool"
        if isinstance(acc, ir.AccSupply):
            return f"fsupply!{a}", m, f"supply({a}[member])", "fsupply"
        raise Unsupported(f"account {type(acc).__name__} of the asset family {a}")

    def account(self, acc: Any, env: dict, state: State, guard: Any) -> tuple[str, Any, str, str]:
        """``(component, index or None, description, kind)`` of an account."""
        if getattr(acc, "member", None) is not None:
            return self.family_account(acc, env, state, guard)
        if isinstance(acc, (ir.AccParty, ir.AccStake)):
            # the runtime rejects any account of the clock
            p0 = self.expr(acc.party, env, state, guard)
            self.require(guard, p0 != self.codes.code("clock"))
        if isinstance(acc, ir.AccParty):
            p = self.expr(acc.party, env, state, guard)
            return f"bal!{acc.asset}", p, f"balance({{}}, {acc.asset})", "party"
        if isinstance(acc, ir.AccStake):
            p = self.expr(acc.party, env, state, guard)
            return f"stake!{acc.asset}", p, f"stake({{}}, {acc.asset})", "stake"
        if isinstance(acc, ir.AccPool):
            return f"pool!{acc.pool}", None, f"balance({acc.pool})", "pool"
        if isinstance(acc, ir.AccEscrow):
            k = self.expr(acc.key, env, state, guard)
            self.touch(acc.record, k)
            return f"escrow!{acc.record}!{acc.asset}", k, f"balance({acc.record}({{}}))", "escrow"
        if isinstance(acc, ir.AccSupply):
            return f"supply!{acc.asset}", None, f"supply({acc.asset})", "supply"
        raise Unsupported(f"account {type(acc).__name__}")

    def read_balance(self, state: State, comp: str, idx: Any) -> Any:
        if comp.startswith("supply!"):
            return state.get(comp)
        self.balance_reads.append((comp, idx))
        v = state.get(comp)
        return v if idx is None else select(v, idx)

    def add_balance(self, state: State, comp: str, idx: Any, delta: Any) -> None:
        cur = self.read_balance(state, comp, idx)
        if idx is None:
            state.set(comp, cur + delta)
        else:
            state.set(comp, z3.Store(state.get(comp), idx, cur + delta))

    def move(self, s: ir.Move, env: dict, state: State, guard: Any) -> None:
        amount = self.expr(s.amount, env, state, guard)
        scomp, sidx, sdesc, skind = self.account(s.src, env, state, guard)
        dcomp, didx, ddesc, dkind = self.account(s.dst, env, state, guard)
        self.transfer(
            state,
            guard,
            s.asset,
            amount,
            (scomp, sidx, sdesc, skind),
            (dcomp, didx, ddesc, dkind),
            s.kind,
            s.span,
        )

    def transfer(
        self,
        state: State,
        guard: Any,
        asset: str,
        amount: Any,
        src: tuple,
        dst: tuple,
        kind: str,
        span: ir.Span,
    ) -> None:
        scomp, sidx, sdesc, skind = src
        dcomp, didx, ddesc, dkind = dst
        self.oblige(
            guard,
            amount >= 0,
            "negative_amount",
            span,
            f"`{kind}` of a negative amount",
            sdesc,
            skind,
            sidx,
            amount,
        )
        if skind == "supply":
            a = self._assets[asset]
            supply = state.get(scomp)
            new = supply + amount
            state.set(scomp, new)
            if a.cap is not None:
                self.oblige(
                    guard,
                    new <= a.cap,
                    "supply_cap",
                    span,
                    f"minting pushes the supply of {asset} above its cap {a.cap}",
                    sdesc,
                    skind,
                    sidx,
                    amount,
                )
        elif skind == "fsupply":  # a mint of a family member: its own supply and cap
            a = self._assets[asset]
            new = self.read_balance(state, scomp, sidx) + amount
            state.set(scomp, z3.Store(state.get(scomp), sidx, new))
            if a.cap is not None:
                self.oblige(
                    guard,
                    new <= a.cap,
                    "supply_cap",
                    span,
                    f"minting pushes the supply of a member of {asset} above its cap {a.cap}",
                    sdesc,
                    skind,
                    sidx,
                    amount,
                )
        else:
            have = self.read_balance(state, scomp, sidx)
            okind = "escrow_overdraft" if skind == "escrow" else "overdraft"
            line = self.line_at(scomp, sidx, state)
            self.oblige(
                guard,
                have - line >= amount,
                okind,
                span,
                f"`{kind}` takes more than the source holds"
                + (f" (with its credit line of {-line})" if isinstance(line, int) and line
                   else " (with its credit line)" if not isinstance(line, int) else ""),
                sdesc,
                skind,
                sidx,
                amount,
            )
            self.add_balance(state, scomp, sidx, -amount)
        if dkind == "supply":
            state.set(dcomp, state.get(dcomp) - amount)
        elif dkind == "fsupply":
            cur = self.read_balance(state, dcomp, didx)
            state.set(dcomp, z3.Store(state.get(dcomp), didx, cur - amount))
        else:
            self.add_balance(state, dcomp, didx, amount)
        self.postings.append(
            Posting(guard, asset, sdesc, ddesc, amount, kind, span, (scomp, sidx), (dcomp, didx))
        )

    def decay(self, s: ir.Decay, state: State, guard: Any) -> None:
        comp = f"bal!{s.asset}"
        old = state.get(comp)
        k = z3.Int(f"{self.prefix}decay!{self._fresh}")
        self._fresh += 1
        rate = z3.RealVal(s.rate)
        new = z3.Lambda([k], select(old, k) - z3.ToInt(z3.ToReal(select(old, k)) * rate))
        state.set(comp, new)
        burned = self.fresh(f"decay.{s.asset}", z3.IntSort())
        self.assumptions.append(burned >= 0)
        sc = f"supply!{s.asset}"
        state.set(sc, state.get(sc) - burned)
        self.notes.append(
            f"{s.span}: `decay {s.asset}` is modelled per account; the total burned is "
            "an unconstrained non-negative amount"
        )

    def split(self, s: ir.Split, env: dict, state: State, guard: Any) -> None:
        amount = self.expr(s.amount, env, state, guard)
        src = self.account(s.src, env, state, guard)
        scomp, sidx, sdesc, skind = src
        order = s.order
        if order == "weight" or (order == "key" and isinstance(s.source, ir.ListItems)):
            # the model keeps the collection's order; sorting symbolic items is not modelled
            raise Unsupported(f"split in {order} order over {type(s.source).__name__}")
        items = self.collection(s.source, env, state, guard)
        weights, included, recips = [], [], []
        for item, present in items:
            inner = dict(env)
            inner[s.var] = item
            inc = present
            g = z3.And(guard, present)
            if s.where is not None:
                inc = z3.And(inc, self.cond(s.where, inner, state, g))
            g = z3.And(guard, inc)
            w = self.expr(s.weight, inner, state, g)
            to = self.expr(s.to, inner, state, g)
            if isinstance(s.to.type, ir.TRecord):
                # the runtime rejects a split into the escrow of a record that does not exist
                self.require(g, self.live(state, s.to.type.record, to))
            included.append(inc)
            weights.append(w)
            recips.append(to)
        mn = self.expr(s.minimum, env, state, guard) if s.minimum is not None else None
        cap = self.expr(s.cap, env, state, guard) if s.cap is not None else None
        n = z3.Sum(*[z3.If(c, 1, 0) for c in included]) if included else z3.IntVal(0)
        # the runtime's SplitError cases reject the event
        valid = [amount >= 0] + [z3.Implies(c, w >= 0) for c, w in zip(included, weights)]
        if mn is not None:
            valid += [mn >= 0, amount >= n * mn]
        if cap is not None:
            valid += [cap >= 0]
        if mn is not None and cap is not None:
            valid += [cap >= mn]
        for c in valid:
            self.oblige(
                guard,
                c,
                "split_input",
                s.span,
                "split inputs the runtime rejects "
                "(negative amount/weight, minimum not covered or cap below minimum)",
                sdesc,
                skind,
                sidx,
                amount,
            )
        have = self.read_balance(state, scomp, sidx)
        okind = "escrow_overdraft" if skind == "escrow" else "overdraft"
        self.oblige(
            guard,
            have - self.line_at(scomp, sidx, state) >= amount,
            okind,
            s.span,
            "split takes more than the source holds",
            sdesc,
            skind,
            sidx,
            amount,
        )
        self.last_split_scaled = (None, None)
        active = z3.And(guard, z3.And(*valid))
        n_defs = len(self.assumptions)
        shares, leftover, total, rest = _split_shares(
            self, active, s.method, amount, weights, included, n, mn, cap, s.minimum_rule,
        )
        info = SplitInfo(
            guard,
            s.span,
            s.method,
            amount,
            rest,
            weights,
            included,
            recips,
            shares,
            leftover,
            total,
            n,
            mn,
            cap,
            sdesc,
            *self.last_split_scaled,
            active=active,
            defs=self.assumptions[n_defs:],
        )
        self.splits.append(info)
        # postings: each included recipient's share leaves the source
        rkind = s.to.type if s.to is not None else s.var_type
        member = self.family_key(s.asset, s.member, env, state, guard) \
            if s.member is not None else None
        for slot, (inc, to, share) in enumerate(zip(included, recips, shares)):
            if s.accounts:  # `split ... between`: the slot's own account (pool, escrow, party)
                dst = self.account(s.accounts[slot], env, state, z3.And(guard, inc))
            elif isinstance(rkind, ir.TRecord) and member is not None:
                rec = self._records[rkind.record]
                dst = (f"fescrow!{rec.name}!{s.asset}", self.family_index(s.asset, to, member),
                       f"balance({rec.name}({{}}), {s.asset}[member])", "escrow")
                self.touch(rec.name, to)
            elif isinstance(rkind, ir.TRecord):
                rec = self._records[rkind.record]
                dst = (f"escrow!{rec.name}!{s.asset}", to, f"balance({rec.name}({{}}))", "escrow")
                self.touch(rec.name, to)
            elif member is not None:
                dst = (f"bal!{s.asset}", self.family_index(s.asset, to, member),
                       f"balance({{}}, {s.asset}[member])", "party")
            else:
                dst = (f"bal!{s.asset}", to, f"balance({{}}, {s.asset})", "party")
            g = z3.And(guard, inc)
            # an excluded slot's share is 0, so these updates are no-ops for it
            self.add_balance(state, scomp, sidx, -share)
            self.add_balance(state, dst[0], dst[1], share)
            self.postings.append(
                Posting(
                    g,
                    s.asset,
                    sdesc,
                    dst[2],
                    share,
                    "split",
                    s.span,
                    (scomp, sidx),
                    (dst[0], dst[1]),
                )
            )

    # -- expressions -----------------------------------------------------------
    def cond(self, e: Any, env: dict, state: State, guard: Any) -> Any:
        v = self.expr(e, env, state, guard)
        if isinstance(v, Opt):
            raise Unsupported("optional value used as a condition")
        return v

    def expr(self, e: Any, env: dict, state: State, guard: Any) -> Any:
        v = self._expr(e, env, state, guard)
        t = getattr(e, "type", None)
        if isinstance(v, Opt) and t is not None and not isinstance(t, ir.TOptional):
            # the type checker narrowed an optional (after `is some`): it must be present
            self.require(guard, v.some)
            return v.val
        return v

    def _expr(self, e: Any, env: dict, state: State, guard: Any) -> Any:
        if isinstance(e, ir.Const):
            return self.const(e.value, e.type)
        if isinstance(e, ir.Local):
            if e.name not in env:
                raise Unsupported(f"unbound name {e.name}")
            v = env[e.name]
            return v.value if isinstance(v, VarCell) else v
        if isinstance(e, ir.ParamRef):
            if e.name not in self.params:
                raise Unsupported(f"unknown parameter {e.name}")
            return self.params[e.name]
        if isinstance(e, ir.Now):
            return self.now
        if isinstance(e, ir.RecordRef):
            k = self.expr(e.key, env, state, guard)
            self.require(guard, self.live(state, e.record, k))
            return k
        if isinstance(e, ir.RecordField):
            k = self.expr(e.key, env, state, guard)
            return self.field(state, e.record, k, e.field, guard)
        if isinstance(e, ir.RoleAttr):
            p = self.expr(e.party, env, state, guard)
            self.require(guard, self.has_role(state, p, e.role))
            return select(state.get(f"attr!{e.role}!{e.attr}"), p)
        if isinstance(e, ir.Exists):
            k = self.expr(e.key, env, state, guard)
            return self.live(state, e.record, k)
        if isinstance(e, ir.Unary):
            v = self.expr(e.operand, env, state, guard)
            return z3.Not(v) if e.op == "not" else -v
        if isinstance(e, ir.Binary):
            return self.binary(e, env, state, guard)
        if isinstance(e, ir.Cond):
            c = self.cond(e.cond, env, state, guard)
            # each branch's implicit checks (record exists, divisor non-zero) only bind
            # when that branch is the one evaluated
            a = self.expr(e.then, env, state, z3.And(guard, c))
            b = self.expr(e.orelse, env, state, z3.And(guard, z3.Not(c)))
            return ite(c, a, b)
        if isinstance(e, ir.Builtin):
            return self.builtin(e, env, state, guard)
        if isinstance(e, ir.Aggregate):
            return self.aggregate(e, env, state, guard)
        if isinstance(e, ir.Best):
            return self.best(e, env, state, guard)
        if isinstance(e, ir.AccBalance):
            comp, idx, _, _ = self.account(e.account, env, state, guard)
            if comp.startswith("supply!"):
                return -state.get(comp)
            return self.read_balance(state, comp, idx)
        if isinstance(e, ir.ListLit):
            t = e.type.inner if isinstance(e.type, ir.TList) else ir.TInt()
            items = [self.expr(x, env, state, guard) for x in e.items]
            if len(items) > self.bound:
                self.notes.append(
                    f"a list literal of {len(items)} items exceeds the bound {self.bound}"
                )
            del t
            return SList(items, z3.IntVal(len(items)))
        raise Unsupported(f"expression {type(e).__name__}")

    def binary(self, e: ir.Binary, env: dict, state: State, guard: Any) -> Any:
        op = e.op
        if op in ("and", "or"):
            a = self.cond(e.left, env, state, guard)
            # short circuit: the right side's implicit checks only apply when it is evaluated
            g = z3.And(guard, a) if op == "and" else z3.And(guard, z3.Not(a))
            b = self.cond(e.right, env, state, g)
            return z3.And(a, b) if op == "and" else z3.Or(a, b)
        a = self.expr(e.left, env, state, guard)
        b = self.expr(e.right, env, state, guard)
        if op in ("==", "!="):
            if isinstance(a, Opt) or isinstance(b, Opt):
                a = a if isinstance(a, Opt) else Opt(z3.BoolVal(True), a)
                b = b if isinstance(b, Opt) else Opt(z3.BoolVal(True), b)
                eq = z3.And(a.some == b.some, z3.Implies(a.some, _eq(a.val, b.val)))
            else:
                eq = _eq(a, b)
            return eq if op == "==" else z3.Not(eq)
        a = a.val if isinstance(a, Opt) else a
        b = b.val if isinstance(b, Opt) else b
        if op == "+":
            return a + b
        if op == "-":
            return a - b
        if op == "*":
            return self.product(a, b, guard)
        if op == "/":
            self.require(guard, b != 0)
            return to_real(a) / to_real(b)
        if op == "<":
            return a < b
        if op == "<=":
            return a <= b
        if op == ">":
            return a > b
        if op == ">=":
            return a >= b
        raise Unsupported(f"operator {op}")

    def product(self, a: Any, b: Any, guard: Any = None) -> Any:
        """``a * b``; when both are symbolic, also state sign and scaling facts of the product
        (valid for all values) so Z3 need not find them by non-linear search, e.g. that
        ``floor(amount * fee)`` lies between 0 and ``amount`` when ``0 <= fee <= 1``."""
        p = a * b
        if z3.is_arith(a) and z3.is_arith(b) and not _numeral(a) and not _numeral(b):
            one = z3.RealVal(1) if z3.is_real(p) else z3.IntVal(1)
            # kept apart from the assumptions: they help some proofs and slow others, so the
            # verifier tries queries without them first (both ways are sound: they are valid)
            self.lemmas += [
                z3.Implies(z3.And(a >= 0, b >= 0), p >= 0),
                z3.Implies(z3.And(a <= 0, b <= 0), p >= 0),
                z3.Implies(z3.And(a >= 0, b <= 0), p <= 0),
                z3.Implies(z3.And(a <= 0, b >= 0), p <= 0),
                z3.Implies(z3.And(a >= 0, b >= 0, b <= one), p <= a),
                z3.Implies(z3.And(b >= 0, a >= 0, a <= one), p <= b),
                z3.Implies(z3.And(a >= 0, b >= one), p >= a),
                z3.Implies(z3.And(b >= 0, a >= one), p >= b),
            ]
            self.products.append((a, b, p, z3.BoolVal(True) if guard is None else guard))
        return p

    def product_group_lemmas(self) -> list:
        """Facts about products that share a factor: ``a*b1 + ... + a*bn = a*(b1+...+bn)``,
        so with ``a >= 0`` and the b's (on their paths) adding up to at most 1 the products
        add up to at most ``a`` - what a payout that splits one amount among parents by
        rates needs (``floor(net * rate)`` for each parent, the rates capped in total)."""
        groups: dict[int, list] = {}
        for a, b, p, g in self.products:
            groups.setdefault(a.get_id(), []).append((a, b, p, g))
        out = []
        for items in groups.values():
            if len(items) < 2:
                continue
            a = items[0][0]
            zero = z3.RealVal(0) if z3.is_real(items[0][2]) else z3.IntVal(0)
            one = z3.RealVal(1) if z3.is_real(items[0][1]) else z3.IntVal(1)
            bsum = z3.Sum(*[z3.If(g, b, 0 if not z3.is_real(b) else z3.RealVal(0))
                            for _, b, _, g in items])
            psum = z3.Sum(*[z3.If(g, p, zero) for _, _, p, g in items])
            nonneg = [z3.Implies(g, b >= 0) for _, b, _, g in items]
            out.append(z3.Implies(z3.And(a >= 0, bsum <= one, *nonneg), psum <= a))
        return out

    def list_builtin(self, e: ir.Builtin, args: list, guard: Any) -> Any:
        """Bounded lists, exactly as the runtime does them: positions from 0, an item taken
        out moves the later ones up, each failure (full, out of range, absent) rejects."""
        lst = args[0]
        if not isinstance(lst, SList):
            raise Unsupported(f"{e.name} of a list value that is not modelled")
        items, n = list(lst.items), lst.n
        if e.name == "fit":
            bound = int(e.extra[0])
            self.require(guard, n <= bound)
            return SList(items[:bound], n)
        x = args[1]
        if e.name == "contains":
            return z3.Or(z3.BoolVal(False), *[z3.And(j < n, _eq(y, x))
                                              for j, y in enumerate(items)])
        if e.name == "push":
            bound = int(e.extra[0])
            self.require(guard, n < bound)
            if not items:
                raise Unsupported("push to a list of no modelled items")
            if z3.is_int(x) and z3.is_real(items[0]):
                x = z3.ToReal(x)
            return SList([z3.If(n == j, x, y) for j, y in enumerate(items)], n + 1)
        if e.name == "without":
            hits = [z3.And(j < n, _eq(y, x)) for j, y in enumerate(items)]
            self.require(guard, z3.Or(z3.BoolVal(False), *hits))
            # the position of the first equal item
            i = z3.IntVal(len(items))
            for j in range(len(items) - 1, -1, -1):
                i = z3.If(hits[j], j, i)
        else:  # item / drop
            i = x
            self.require(guard, z3.And(i >= 0, i < n))
            if e.name == "item":
                if not items:
                    raise Unsupported("index into a list of no modelled items")
                out = items[-1]
                for j in range(len(items) - 2, -1, -1):
                    out = ite(i == j, items[j], out)
                return out
        moved = [ite(j >= i, items[j + 1], items[j]) for j in range(len(items) - 1)]
        return SList(moved + items[-1:], n - 1)

    def builtin(self, e: ir.Builtin, env: dict, state: State, guard: Any) -> Any:
        name = e.name
        if name in ("balance",):
            # balance(party, Asset) / balance(pool) / balance(R(k)) when lowered as a builtin
            if len(e.args) == 1 and e.extra:
                p = self.expr(e.args[0], env, state, guard)
                return self.read_balance(state, f"bal!{e.extra[0]}", p)
            raise Unsupported("balance() form")
        if name == "supply":
            if e.args:  # a member of a family: its own supply
                m = self.family_key(e.extra[0], e.args[0], env, state, guard)
                return self.read_balance(state, f"fsupply!{e.extra[0]}", m)
            return state.get(f"supply!{e.extra[0]}")
        if name == "has_role":
            p = self.expr(e.args[0], env, state, guard)
            return self.has_role(state, p, e.extra[0])
        if name == "has_right":
            p = self.expr(e.args[0], env, state, guard)
            k = self.expr(e.args[1], env, state, guard) if len(e.args) > 1 else z3.IntVal(0)
            return select(state.get(f"right!{e.extra[0]}"), p, k)
        args = [self.expr(a, env, state, guard) for a in e.args]
        if name in ("is_some", "is_none"):
            v = args[0]
            some = v.some if isinstance(v, Opt) else z3.BoolVal(True)
            return some if name == "is_some" else z3.Not(some)
        if name == "some":
            v = args[0]
            if isinstance(v, Opt):
                self.require(guard, v.some)
                return v.val
            return v
        args = [a.val if isinstance(a, Opt) else a for a in args]
        if name == "floor":
            return zfloor(args[0])
        if name == "ceil":
            return zceil(args[0])
        if name == "round":
            return zround(args[0])
        if name in ("min", "max"):
            out = args[0]
            for x in args[1:]:
                out = ite(x < out, x, out) if name == "min" else ite(x > out, x, out)
            return out
        if name == "abs":
            return ite(args[0] < 0, -args[0], args[0])
        if name == "isqrt":
            x = args[0]
            self.require(guard, x >= 0)
            r = self.fresh("isqrt", z3.IntSort())
            self.assumptions.append(
                z3.Implies(x >= 0, z3.And(r >= 0, r * r <= x, x < (r + 1) * (r + 1)))
            )
            return r
        if name == "key":
            # a composite key: an injective function of its parts (each part is recovered
            # from the key by a projection), exactly as the runtime's escaped join is
            parts = [a.val if isinstance(a, Opt) else a for a in args]
            # one function per list of part kinds: "@ann" from a party and "ann" from a
            # text are different keys at run time, so the same code must not meet itself
            n, sig = len(parts), "_".join(e.extra)
            fns = self.text_functions.get(("key", e.extra))
            if fns is None:
                # one function for every event of a trace and both sides of a comparison:
                # the runtime's key is the same text whichever event builds it (a prefix per
                # event would let two events' keys of different parts meet)
                fns = (z3.Function(f"key!{sig}", *([z3.IntSort()] * n), z3.IntSort()),
                       [z3.Function(f"key!{sig}.{i}", z3.IntSort(), z3.IntSort())
                        for i in range(n)])
                self.text_functions[("key", e.extra)] = fns
            k = fns[0](*parts)
            self.assumptions += [proj(k) == p for proj, p in zip(fns[1], parts)]
            return k
        if name in ("concat", "text", "format"):
            # Texts are Int codes (see Codes): a built text is an uninterpreted function of
            # its parts, so equal parts give equal texts, and nothing else is assumed of it
            # (sound for proofs; a finding that needs the exact characters is confirmed by
            # replaying it on the runtime before it is shown).
            parts = [args[0]] if name == "text" else (
                [args[0], args[3]] if name == "format" else list(args))
            parts = [p.val if isinstance(p, Opt) else p for p in parts]
            key = (name, e.extra, int(e.args[1].value) if name == "format" else 0,
                   e.args[2].value if name == "format" else "",
                   tuple(str(p.sort()) for p in parts))
            fn = self.text_functions.get(key)
            if fn is None:
                fn = z3.Function(f"{self.prefix}{name}!{len(self.text_functions)}",
                                 *[p.sort() for p in parts], z3.IntSort())
                self.text_functions[key] = fn
            return fn(*parts)
        if name == "sqrt":
            # floor(sqrt(x * 10^2d)) / 10^d, characterised exactly as isqrt is
            x, scale = to_real(args[0]), 10 ** int(e.args[1].value)
            self.require(guard, x >= 0)
            r = self.fresh("sqrt", z3.IntSort())
            y = x * (scale * scale)
            self.assumptions.append(
                z3.Implies(x >= 0, z3.And(r >= 0, z3.ToReal(r * r) <= y,
                                          y < z3.ToReal((r + 1) * (r + 1))))
            )
            return z3.ToReal(r) / scale
        if name == "pow" and len(e.args) == 3:
            return self.pow_bounded(to_real(args[0]), args[1], e.args[1],
                                    places=int(e.args[2].value))
        if name == "pow":
            x = args[0]
            n = e.args[1]
            if not isinstance(n, ir.Const):
                return self.pow_bounded(x, args[1], e.args[1])
            out = z3.RealVal(1) if z3.is_real(x) else z3.IntVal(1)
            for _ in range(int(n.value)):
                out = out * x
            return out
        if name == "ratio":
            self.require(guard, args[1] != 0)
            return to_real(args[0]) / to_real(args[1])
        if name == "len":
            v = args[0]
            return v.n if isinstance(v, SList) else z3.IntVal(0)
        if name in ("item", "push", "drop", "without", "fit", "contains"):
            return self.list_builtin(e, args, guard)
        raise Unsupported(f"builtin {name}")

    def pow_bounded(self, x: Any, n: Any, n_ir: Any, places: Optional[int] = None) -> Any:
        """``x ** n`` for an exponent known to lie in a declared range ``lo..hi``: the
        power for each possible exponent, chosen by ``n`` (exact, like the runtime).  With
        ``places``, each product is rounded down to that many decimals (``pow(x, n, d)``)."""
        t = getattr(n_ir, "type", None)
        if isinstance(n_ir, ir.Const) and isinstance(n_ir.value, int):
            lo_hi: Any = (n_ir.value, n_ir.value)
        elif not isinstance(t, ir.TInt) or t.lo is None or t.hi is None:
            lo_hi = static_range(n_ir)
            if lo_hi is None:
                raise Unsupported("pow with an exponent of no declared range")
        else:
            lo_hi = (t.lo, t.hi)
        lo, hi = max(lo_hi[0], 0), lo_hi[1]
        one = z3.RealVal(1) if z3.is_real(x) else z3.IntVal(1)
        powers = [one]
        for _ in range(hi):
            if places is None:
                powers.append(powers[-1] * x)
            else:
                scale = 10**places
                powers.append(z3.ToReal(z3.ToInt(powers[-1] * x * scale)) / scale)
        out = powers[hi]
        for k in range(hi - 1, lo - 1, -1):
            out = z3.If(n == k, powers[k], out)
        return out

    def best(self, e: ir.Best, env: dict, state: State, guard: Any) -> Any:
        """max_by/min_by: the first item (in collection order) whose keys are best,
        compared lexicographically; the event is rejected when no item qualifies."""
        seen, out, top = z3.BoolVal(False), None, None
        for item, present in self.collection(e.source, env, state, guard):
            inner = dict(env)
            inner[e.var] = item
            c = present
            if e.where is not None:
                c = z3.And(c, self.cond(e.where, inner, state, z3.And(guard, present)))
            keys = []
            for k in e.keys:
                v = self.expr(k, inner, state, z3.And(guard, c))
                keys.append(v.val if isinstance(v, Opt) else v)
            if out is None:
                out, top = item, keys
                seen = c
                continue
            better = z3.BoolVal(False)
            for a, b in reversed(list(zip(keys, top))):
                strictly = a > b if e.kind == "max" else a < b
                better = z3.Or(strictly, z3.And(_eq(a, b), better))
            take = z3.And(c, z3.Or(z3.Not(seen), better))
            out = ite(take, item, out)
            top = [ite(take, a, b) for a, b in zip(keys, top)]
            seen = z3.Or(seen, c)
        self.require(guard, seen)
        if out is None:
            return z3.IntVal(0)
        return out

    def aggregate(self, e: ir.Aggregate, env: dict, state: State, guard: Any) -> Any:
        vals = []
        for item, present in self.collection(e.source, env, state, guard):
            inner = dict(env)
            inner[e.var] = item
            c = present
            if e.where is not None:
                c = z3.And(c, self.cond(e.where, inner, state, z3.And(guard, present)))
            body = self.expr(e.body, inner, state, z3.And(guard, c)) if e.kind != "count" else None
            if isinstance(body, Opt):
                body = body.val
            vals.append((c, body))
        k = e.kind
        if k == "count":
            return z3.Sum(*[z3.If(c, 1, 0) for c, _ in vals]) if vals else z3.IntVal(0)
        if k == "sum":
            zero = (
                z3.RealVal(0)
                if any(b is not None and z3.is_real(b) for _, b in vals)
                else z3.IntVal(0)
            )
            return z3.Sum(*[ite(c, b, zero) for c, b in vals]) if vals else zero
        if k == "all":
            return z3.And(*[z3.Implies(c, b) for c, b in vals]) if vals else z3.BoolVal(True)
        if k == "any":
            return z3.Or(*[z3.And(c, b) for c, b in vals]) if vals else z3.BoolVal(False)
        if k in ("min", "max"):
            # min/max of an empty collection has no value: the event is rejected
            self.require(guard, z3.Or(*[c for c, _ in vals]) if vals else z3.BoolVal(False))
            seen, out = z3.BoolVal(False), None
            for c, b in vals:
                if out is None:
                    out = b
                else:
                    better = (b < out) if k == "min" else (b > out)
                    out = ite(z3.And(c, z3.Or(z3.Not(seen), better)), b, out)
                seen = z3.Or(seen, c)
            return out if out is not None else z3.IntVal(0)
        raise Unsupported(f"aggregate {k}")


def encode_chain(
    policy: ir.Policy,
    handlers: list,
    bound: int = 3,
    codes: Optional[Codes] = None,
    fixed_params: Optional[dict] = None,
) -> list:
    """Encode a sequence of events from the initial state (no records; party and pool
    balances and role members as a `given` setup), each starting where the previous ended.
    Used to confirm that a counterexample is reachable and to build a replayable trace."""
    common = {"init": True, "pre": {}, "slots": {}, "params": {}}
    codes = codes or Codes()
    models: list[HandlerModel] = []
    cur: dict = {}
    for i, h in enumerate(handlers):
        shared = dict(common)
        shared["inputs"] = {}
        enc = Encoder(
            policy,
            bound=bound,
            codes=codes,
            prefix=f"s{i}!",
            shared=shared,
            fixed_params=fixed_params,
        )
        m = enc.encode(h, start=cur)
        if models:
            enc.assumptions.append(m.now >= models[-1].now)
        cur = dict(m.post.cur)
        # components read only from the initial state stay initial
        models.append(m)
    return models
