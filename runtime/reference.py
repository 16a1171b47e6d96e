"""The reference interpreter: the meaning of the IR, walked node by node for every event.

This is Charter's oracle, the way Cedar checks its engine against a Lean
model: deliberately simple and slow, written to be read next to the
language reference and DESIGN.md section 2, never optimised.  The engine
(:mod:`charter.runtime.codegen` + :mod:`charter.runtime.pygen`, compiled once
per policy into closures and generated Python) must settle every event
exactly as this interpreter does: same receipts, same rejection codes and
messages, byte-identical journal and state.  The event fuzzers
(``tests/runtime/test_event_fuzz.py``, ``benchmarks/fuzz_events.py``) and
``tests/runtime/test_backends.py`` run both on every stdlib policy and
example and compare.  Select it with ``backend="reference"``.

Independence (what is NOT shared with the engine): this module imports
neither ``codegen`` nor ``pygen`` nor ``semantics``.  It keeps no compiled
form: each event walks the handler's IR tree (``Interpreter.run``).
Rounding (``floor``/``ceil``/``round`` half up), ``isqrt``, ``pow``, exact
division, aggregates, the step budget and every split method (largest
remainder, sequential floor, D'Hondt, Sainte-Lagu\u00eb, floor-and-dust,
minimum and cap) are derived again here from their definitions in
DESIGN.md and ``docs/language.rst``; the divisor methods use a different
algorithm from the engine's (a threshold search over candidate awards
rather than swapping units between priority queues).

What IS shared, and why:

* :class:`~charter.runtime.state.State` (balances, records, roles, rights,
  clock metadata, the undo log) and the event pipeline
  (:mod:`charter.runtime.settle`: decoding, argument conversion, timers,
  ledger re-check, journal encoding, commit).  The comparison is about what
  *handlers* mean; both sides must run on the same state and journal format
  to be compared byte for byte.  The pipeline hands each handler an
  environment object with ``st`` (the State), ``loc`` (bound names),
  ``now``, ``submitter``, ``params``, ``steps`` and ``budget``; this module
  only reads and writes those attributes.
* account names (:mod:`charter.runtime.ledger`): the ledger's data format.
* :class:`~charter.runtime.values.Rejected`, ``show`` and ``amount_text``:
  how a rejection is represented and how values are printed in messages,
  since messages of failed timed handlers are written into the journal.

Adding an IR node: a statement gets a ``s_<ClassName>`` method, an
expression ``x_<ClassName>``, a collection ``c_<ClassName>``, an account
``a_<ClassName>``; :func:`check_supported` refuses a policy that uses a node
without a rule, naming it.  See the note in ``/work/coord/NOTES.md`` and
``docs/runtime.rst`` ("Engine and reference").
"""

from __future__ import annotations

import math
from functools import cmp_to_key
from fractions import Fraction
from typing import Any, Optional

import attrs

from charter.compiler import ir

from .state import ABSENT as _REVOKED  # State.set_right's "no such right" marker
from .ledger import escrow_account, party_account, pool_account, stake_account, supply_account
from .values import MAX_TEXT, PolicyNotExecutable, Rejected, amount_text, show

SPLIT_METHODS = (
    "largest_remainder", "sequential_floor", "sequential_floor_listed", "dhondt",
    "sainte_lague", "adams", "dean", "huntington_hill", "floor_dust",
)
DIVISOR_SPLITS = ("dhondt", "sainte_lague", "adams", "dean", "huntington_hill")
AGGREGATES = ("sum", "count", "min", "max", "all", "any")
_ABSENT = object()


class _Budget(Rejected):
    """The step budget ran out.  ``named``: the message already names the loop/split."""

    named = False


def _out_of_budget(env: Any, where: Optional[str] = None, span: Optional[ir.Span] = None):
    place = f" in {where}" if where else ""
    if where and span is not None and span != ir.NOSPAN:
        place += f" (line {span.line})"
    err = _Budget(
        "step_budget",
        f"event exceeded its step budget of {env.budget} steps{place}; raise the budget with "
        "--step-budget N (charter run) or step_budget=N (open_runtime)",
        span if where else None,
    )
    err.named = where is not None
    return err


def _spend(env: Any, n: int, where: Optional[str] = None, span: Optional[ir.Span] = None) -> None:
    """Charge ``n`` steps (statements run, items visited) to the event's budget."""
    env.steps += n
    if env.steps > env.budget:
        raise _out_of_budget(env, where, span)


def _describe(c: Any) -> str:
    if isinstance(c, ir.RecordsOf):
        return f"{c.record} records"
    if isinstance(c, ir.RoleMembers):
        return f"members of {c.role}" if c.role is not None else "all parties"
    return "a list"


# ------------------------------------------------------------------ exact arithmetic


def _text(v: Any, extra: tuple, assets: dict) -> str:
    """text(x) from its definition in docs/language.rst: the value as an author writes it."""
    from charter.compiler import display

    kind = extra[0]
    if kind == "amount":
        return display.value(v, ir.TAmount(asset=extra[1]),
                             {extra[1]: assets[extra[1]].decimals})
    if kind == "party":
        return "@" + v
    if kind == "bool":
        return "true" if v else "false"
    types = {"ratio": ir.TRatio(), "duration": ir.TDuration(), "time": ir.TTime()}
    return display.value(v, types.get(kind, ir.TInt()))


def _format(v: Any, x: Any, suffix: str, assets: dict) -> str:
    """format(x, places, group, suffix): round half up (floor(x * 10^p + 1/2)), group the
    whole digits in threes, '.' before the decimals, then the suffix."""
    places, group = x.args[1].value, x.args[2].value
    if x.extra[0] == "amount":
        v = Fraction(v, 10 ** assets[x.extra[1]].decimals)
    n = math.floor(Fraction(v) * 10**places + Fraction(1, 2))
    if abs(n).bit_length() > 13_000:
        raise Rejected("text_too_long", "format of a number of more than 3,900 digits")
    whole_part, frac = divmod(abs(n), 10**places)
    digits = f"{whole_part:,}".replace(",", group)
    out = ("-" if n < 0 else "") + digits + (f".{frac:0{places}d}" if places else "") + suffix
    if len(out) > MAX_TEXT:
        raise Rejected("text_too_long", f"a text of {len(out):,} characters was built; texts "
                                        f"are limited to {MAX_TEXT:,}")
    return out


def whole(v: Any) -> Any:
    """A ratio that is a whole number is that integer (amounts and ints stay ints)."""
    if isinstance(v, Fraction) and v.denominator == 1:
        return v.numerator
    return v


def round_floor(x: Any) -> int:
    return math.floor(Fraction(x))


def round_ceil(x: Any) -> int:
    return math.ceil(Fraction(x))


def round_half_up(x: Any) -> int:
    """The nearest integer; an exact half goes up (towards +infinity): floor(x + 1/2)."""
    return math.floor(Fraction(x) + Fraction(1, 2))


ROUND = {"floor": round_floor, "ceil": round_ceil, "round": round_half_up}


# ------------------------------------------------------------------ splits


class SplitRefused(Exception):
    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


def weights_as_integers(weights: list[Any]) -> list[int]:
    """Integer weights; ratio weights are scaled by the least common denominator (exact,
    and a split only depends on the weights' proportions)."""
    if all(type(w) is int for w in weights):
        return list(weights)
    for w in weights:
        if w is None or isinstance(w, bool):
            raise Rejected("bad_weight", f"split weight must be a number, got {show(w)}")
    den = 1
    for w in weights:
        if isinstance(w, Fraction):
            den = math.lcm(den, w.denominator)
    return [int(w * den) for w in weights]


def split_shares(
    amount: int, weights: list[int], method: str, minimum: Any, cap: Any, rule: str = "first"
) -> list[int]:
    """Each recipient's share of ``amount`` (the rest stays in the source), by the rules of
    the language reference: minimums (paid first with ``at least``; a statutory floor with
    ``with minimum``), the remainder by weight with ``method``, then each share cut to
    ``cap``."""
    if method not in SPLIT_METHODS:
        raise SplitRefused("split_method", f"unknown split method {method!r}")
    if rule not in ("first", "quota"):
        raise SplitRefused("split_method", f"unknown minimum rule {rule!r}")
    if rule == "quota" and method not in ("largest_remainder", *DIVISOR_SPLITS):
        raise SplitRefused("split_method", "a statutory minimum (`with minimum`) needs "
                                           "largest_remainder or a divisor method")
    if amount < 0:
        raise SplitRefused("split_negative", f"cannot split a negative amount ({amount})")
    for w in weights:
        if w < 0:
            raise SplitRefused("split_weight", f"split weight is negative ({w})")
    if minimum is not None and minimum < 0:
        raise SplitRefused("split_minimum", f"split minimum is negative ({minimum})")
    if cap is not None and cap < 0:
        raise SplitRefused("split_cap", f"split cap is negative ({cap})")
    if cap is not None and minimum is not None and cap < minimum:
        raise SplitRefused("split_cap", f"split cap {cap} is below the minimum {minimum}")
    n = len(weights)
    if n == 0:
        return []
    floor_each = minimum or 0
    if amount < n * floor_each:
        raise SplitRefused(
            "split_minimum",
            f"amount {amount} does not cover the minimum {floor_each} for {n} recipients",
        )
    rest = amount - n * floor_each
    total = sum(weights)
    if rule == "quota" and floor_each and method == "largest_remainder":
        shares = _statutory_hamilton(amount, weights, floor_each)
    elif rule == "quota" and floor_each:
        # every recipient starts at the minimum; units are awarded from there
        shares = _awards(amount, weights, method, floor_each) if total and rest else \
            [floor_each] * n
    else:
        if total == 0 or rest == 0:
            by_weight = [0] * n  # nobody has a claim: the rest stays in the source
        elif method == "largest_remainder":
            by_weight = _largest_remainder(rest, weights, total)
        elif method == "sequential_floor":
            by_weight = [math.floor(Fraction(rest * w, total)) for w in weights]
            last = [i for i, w in enumerate(weights) if w > 0][-1]
            by_weight[last] += rest - sum(by_weight)
        elif method == "sequential_floor_listed":
            by_weight = _pay_in_turn(rest, weights)
        elif method == "floor_dust":
            by_weight = [math.floor(Fraction(rest * w, total)) for w in weights]
        elif method in ("dhondt", "sainte_lague"):
            c = Fraction(1) if method == "dhondt" else Fraction(1, 2)
            by_weight = _highest_averages(rest, weights, c)
        else:
            by_weight = _awards(rest, weights, method, 0)
        shares = [s + floor_each for s in by_weight]
    if cap is not None:
        shares = [min(s, cap) for s in shares]
    return shares


def _pay_in_turn(rest: int, weights: list[int]) -> list[int]:
    """The listed recipients paid in turn: each takes its weight's part of what is still
    unpaid among itself and those after it; the last takes all that is left."""
    paid = []
    unpaid = rest
    for i, w in enumerate(weights):
        if i == len(weights) - 1:
            paid.append(unpaid)
            break
        still = sum(weights[i:])
        part = math.floor(Fraction(unpaid * w, still)) if still else 0
        paid.append(part)
        unpaid -= part
    return paid


def _statutory_hamilton(amount: int, weights: list[int], m: int) -> list[int]:
    """Hamilton with a statutory minimum: lift every recipient whose quota is below ``m``
    to ``m`` and recompute the others' quotas on what is left, until none is below."""
    lifted: set = set()
    while True:
        others = [i for i in range(len(weights)) if i not in lifted]
        left = amount - m * len(lifted)
        weight = sum(weights[i] for i in others)
        below = [i for i in others if weight == 0 or Fraction(left * weights[i], weight) < m]
        if not below:
            break
        lifted.update(below)
    shares = [m] * len(weights)
    if others:
        for i, s in zip(others, _largest_remainder(left, [weights[i] for i in others], weight)):
            shares[i] = s
    return shares


def _worth(method: str, w: int, s: int) -> tuple:
    """How much recipient's (s+1)-th unit is worth, w / d(s), as a sortable key: (1, w) for
    a first unit of a method with d(0) = 0 (worth more than any finite award, the heavier
    first), (0, 0) for a zero weight.  Huntington-Hill's d(s) = sqrt(s(s+1)) is compared
    through the squares w^2 / (s(s+1))."""
    if w == 0:
        return (0, Fraction(0))
    d = {
        "dhondt": Fraction(s + 1),
        "sainte_lague": Fraction(2 * s + 1, 2),
        "adams": Fraction(s),
        "dean": Fraction(2 * s * (s + 1), 2 * s + 1),
        "huntington_hill": Fraction(s * (s + 1)),
    }[method]
    if d == 0:
        return (1, Fraction(w))
    return (0, Fraction(w * w) / d if method == "huntington_hill" else Fraction(w) / d)


def _awards(total_units: int, weights: list[int], method: str, start: int) -> list[int]:
    """A divisor method, every recipient starting at ``start``, ``total_units`` in all: the
    units are the best awards (worth desc, ties to the lower index).  Any divisor with
    s <= d(s) <= s + 1 gives each recipient at least lambda*w - 1 units for a common lambda
    >= (units - n*start - n) / W, so everyone starts from that lower bound and the few
    remaining units are awarded one at a time."""
    import heapq

    n, total = len(weights), sum(weights)
    free = total_units - n * start - n
    held = [
        max(start, math.floor(Fraction(free * w, total)) - 1) if free > 0 else start
        for w in weights
    ]
    if sum(held) > total_units:  # pragma: no cover - the bound above excludes it
        raise AssertionError("divisor lower bound")
    heap = [((-k[0], -k[1]), i) for i, k in ((i, _worth(method, w, held[i]))
                                             for i, w in enumerate(weights))]
    heapq.heapify(heap)
    for _ in range(total_units - sum(held)):
        _, i = heapq.heappop(heap)
        held[i] += 1
        k = _worth(method, weights[i], held[i])
        heapq.heappush(heap, ((-k[0], -k[1]), i))
    return held


def _largest_remainder(rest: int, weights: list[int], total: int) -> list[int]:
    """Hamilton's method: every recipient gets the whole part of its exact quota; the units
    left over go one each to the largest fractional parts, ties to the earlier recipient."""
    quotas = [Fraction(rest * w, total) for w in weights]
    shares = [math.floor(q) for q in quotas]
    left = rest - sum(shares)
    order = sorted(range(len(weights)), key=lambda i: (-(quotas[i] - shares[i]), i))
    for i in order[:left]:
        shares[i] += 1
    return shares


def _highest_averages(rest: int, weights: list[int], c: Fraction) -> list[int]:
    """A divisor method with divisors ``s + c`` (D'Hondt: c = 1, Sainte-Lagu\u00eb: c = 1/2).

    Definition: the ``rest`` units are the ``rest`` best "awards" ``(i, s)`` (recipient i's
    (s+1)-th unit, worth ``w_i / (s + c)``), best = largest worth, ties to the lower i.
    Computed by counting: every award worth more than ``hi`` is certainly among the best,
    and enough awards are worth at least ``lo``; the few awards between ``lo`` and ``hi``
    are sorted and the best of them taken.  (W = total weight, n = recipients.)
    ``lo = W / (rest + n)`` leaves at least ``rest`` awards at or above it; ``hi`` =
    ``W / (rest - n)`` (or the best single award when rest <= n) leaves at most ``rest``
    above it, so only O(n) awards are ever sorted.
    """
    n, total = len(weights), sum(weights)
    lo = Fraction(total, rest + n)
    hi = Fraction(total, rest - n) if rest > n else max(Fraction(w) / c for w in weights)
    shares = []
    between: list[tuple[Fraction, int]] = []
    for i, w in enumerate(weights):
        if w == 0:
            shares.append(0)
            continue
        # awards worth more than hi: w / (s + c) > hi  <=>  s < w / hi - c
        above = max(0, math.ceil(Fraction(w) / hi - c))
        shares.append(above)
        # awards worth lo..hi: s from `above` while w / (s + c) >= lo  <=>  s <= w / lo - c
        s = above
        while Fraction(w) / (s + c) >= lo:
            between.append((Fraction(w) / (s + c), i))
            s += 1
    need = rest - sum(shares)
    between.sort(key=lambda award: (-award[0], award[1]))
    if need < 0 or need > len(between):  # pragma: no cover - the bounds above exclude it
        raise AssertionError("divisor method bounds")
    for _worth, i in between[:need]:
        shares[i] += 1
    return shares


def highest_averages_by_units(rest: int, weights: list[int], c: Fraction) -> list[int]:
    """The divisor method as usually stated: award units one at a time (for tests)."""
    shares = [0] * len(weights)
    if sum(weights) == 0:
        return shares
    for _ in range(rest):
        best = max(range(len(weights)), key=lambda i: (Fraction(weights[i]) / (shares[i] + c), -i))
        shares[best] += 1
    return shares


# ------------------------------------------------------------------ the interpreter


@attrs.frozen
class ReferenceHandler:
    """What the pipeline calls for one handler: ``auth(env)`` and ``body(env)``."""

    name: str
    kind: str
    handler: ir.Handler
    params: tuple[ir.Field, ...]
    auth: Any
    body: Any


@attrs.frozen
class ReferencePolicy:
    policy: ir.Policy
    handlers: dict[str, ReferenceHandler]
    timed: tuple[ReferenceHandler, ...]
    exprs: Any = None


class Interpreter:
    """Walks a policy's IR: ``exec`` a statement, ``eval`` an expression, on an env."""

    def __init__(self, policy: ir.Policy):
        self.policy = policy
        self.assets = ir.AssetMap((a.name, a) for a in policy.assets)
        self.records = {r.name: r for r in policy.records}
        self.roles = {r.name: r for r in policy.roles}

    # ================================================================ handlers

    def authorise(self, h: ir.Handler, env: Any) -> None:
        a, sub = h.auth, env.submitter
        if isinstance(a, ir.AuthClock):
            if sub != "clock":
                raise Rejected(
                    "unauthorised", f"{h.name} may only be submitted by the clock, not {sub}",
                    h.span,
                )  # fmt: skip
        elif isinstance(a, ir.AuthRole) and a.role is None:
            if sub == "clock":
                raise Rejected(
                    "unauthorised", f"{h.name} must be submitted by a party, not the clock",
                    h.span,
                )  # fmt: skip
            env.loc[a.binder] = sub
        elif isinstance(a, ir.AuthRole):
            if sub not in env.st.roles[a.role]:
                raise Rejected(
                    "unauthorised",
                    f"{sub} does not hold the {a.role} role and may not submit {h.name}",
                    h.span,
                )
            env.loc[a.binder] = sub
        elif isinstance(a, ir.AuthParty):
            expected = self.eval(a.party, env)
            if expected != sub:
                raise Rejected(
                    "unauthorised", f"only {expected} may submit {h.name}, not {sub}", h.span
                )
        else:
            raise PolicyNotExecutable(f"the reference interpreter has no rule for {a!r}")

    def run(self, h: ir.Handler, env: Any) -> None:
        self.block(h.body, env)

    # ================================================================ statements

    def block(self, stmts: tuple[ir.Stmt, ...], env: Any) -> None:
        if not stmts:
            return
        _spend(env, len(stmts))  # a block is charged its statements when it starts
        for s in stmts:
            try:
                self.exec(s, env)
            except Rejected as r:
                if r.span is None:  # an expression does not know where it is; its statement does
                    r.span = s.span
                raise

    def exec(self, s: ir.Stmt, env: Any) -> None:
        getattr(self, "s_" + type(s).__name__)(s, env)

    def s_Require(self, s: ir.Require, env: Any) -> None:
        if not self.eval(s.cond, env):
            raise Rejected("require", s.message or "requirement failed", s.span)

    def s_Reject(self, s: ir.Reject, env: Any) -> None:
        raise Rejected("rejected", s.message, s.span)

    def s_Let(self, s: ir.Let, env: Any) -> None:
        env.loc[s.name] = self.eval(s.value, env)

    def s_Var(self, s: ir.Var, env: Any) -> None:
        env.loc[s.name] = self.eval(s.value, env)

    def s_SetLocal(self, s: ir.SetLocal, env: Any) -> None:
        env.loc[s.name] = self.eval(s.value, env)  # visible after the if/loop that set it

    def s_SetField(self, s: ir.SetField, env: Any) -> None:
        k = self.eval(s.key, env)
        self.need_record(s.record, k, env)
        env.st.set_fields(s.record, k, {s.field: self.eval(s.value, env)})

    def s_If(self, s: ir.If, env: Any) -> None:
        self.block(s.then if self.eval(s.cond, env) else s.orelse, env)

    def s_ForEach(self, s: ir.ForEach, env: Any) -> None:
        where = f"the loop over {_describe(s.source)} (for {s.var})"
        saved = env.loc.get(s.var, _ABSENT)
        try:
            items = self.items(s.source, env)  # the keys live when the loop starts
            if s.keys:
                items = self.ordered(s, items, where, env)
            for item in items:
                _spend(env, 1, where, s.span)
                if not self.still_there(s.source, item, env):
                    continue  # removed by an earlier iteration
                env.loc[s.var] = item
                if s.where is not None and not self.eval(s.where, env):
                    continue
                self.block(s.body, env)
        except _Budget as r:
            if not r.named:  # the body spent it: this loop is what to name
                raise _out_of_budget(env, where, s.span) from None
            raise
        self.restore(s.var, saved, env)

    def named_asset(self, asset: str, member: Any, env: Any) -> str:
        """The ledger name of the asset moved: ``asset`` itself, or for a member of an asset
        family ``Token[KEY]`` (docs: a key is 1..64 of letters, digits, ``_ . -``)."""
        if member is None:
            return asset
        key = self.eval(member, env)
        why = ir.member_key_error(key)
        if why is not None:
            raise Rejected("bad_asset_key", f"not a member of {asset}: {why}")
        return ir.member_asset(asset, key)

    def ordered(self, s: ir.ForEach, items: list, where: str, env: Any) -> list:
        """``ordered by``: every item `where` keeps at the start (one step each to look at),
        with its keys computed then; visited smallest keys first (largest for a
        `descending` key), comparing the next key only where the earlier ones tie, and in
        collection order where all tie."""
        keyed = []
        for position, item in enumerate(items):
            _spend(env, 1, where, s.span)
            env.loc[s.var] = item
            if s.where is not None and not self.eval(s.where, env):
                continue
            keyed.append(([self.eval(k, env) for k in s.keys], position, item))

        def compare(a: tuple, b: tuple) -> int:
            for x, y, down in zip(a[0], b[0], s.descending):
                if x != y:
                    return (-1 if x > y else 1) if down else (-1 if x < y else 1)
            return -1 if a[1] < b[1] else 1  # a total order: positions differ

        return [item for _keys, _position, item in sorted(keyed, key=cmp_to_key(compare))]

    def s_Move(self, s: ir.Move, env: Any) -> None:
        asset = self.assets[s.asset]
        amount = self.eval(s.amount, env)
        name = self.named_asset(s.asset, s.member, env)
        if amount < 0:
            raise Rejected(
                "negative_amount", f"cannot {s.kind} a negative amount ({amount} {name})",
                s.span,
            )  # fmt: skip
        src, dst = self.account(s.src, env), self.account(s.dst, env)
        bal = env.st.balances
        if isinstance(s.src, ir.AccSupply):  # a mint: only the cap limits it
            supply = -bal.get(src, 0)
            if asset.cap is not None and supply + amount > asset.cap:
                def text(v: int) -> str:
                    return amount_text(v, asset.decimals, name)

                raise Rejected(
                    "cap_exceeded",
                    f"minting {text(amount)} would exceed its cap of {text(asset.cap)} "
                    f"(supply {text(supply)})",
                    s.span,
                )
        elif bal.get(src, 0) + self.owed(s.src, asset, env, src) < amount:
            raise Rejected(
                "insufficient_funds",
                f"{s.kind}: {src} holds {amount_text(bal.get(src, 0), asset.decimals, name)}, "
                f"needs {amount_text(amount, asset.decimals, name)}"
                + self.credit_note(s.src, asset, env, src, name),
                s.span,
            )
        if amount:
            env.st.post(src, dst, name, amount, s.kind)

    @staticmethod
    def owed(acc: Any, asset: ir.Asset, env: Any, account: str) -> int:
        """How far below zero a move may take ``acc`` (named ``account`` on the ledger): a
        party's own account of an asset with a credit line may go down to minus the line
        (the parameter's value when a parameter sets it; the party's own role attribute
        when each member sets it, none while it does not hold the role); every other
        account stays >= 0."""
        if not isinstance(acc, ir.AccParty):
            return 0
        if asset.credit_attr is not None:
            role, attr = asset.credit_attr
            holder = account[len("party:"):].rpartition(":")[0]
            member = env.st.roles[role].get(holder)
            v = member.get(attr) if member is not None else None
            return v if type(v) is int else 0
        if asset.credit_param is not None:
            return env.params[asset.credit_param]
        return asset.credit or 0

    def credit_note(self, acc: Any, asset: ir.Asset, env: Any, account: str,
                    name: Optional[str] = None) -> str:
        line = self.owed(acc, asset, env, account)
        return f" (credit line {amount_text(line, asset.decimals, name or asset.name)})" \
            if line else ""

    def s_Split(self, s: ir.Split, env: Any) -> None:
        decimals = self.assets[s.asset].decimals if s.asset in self.assets else 0
        amount = self.eval(s.amount, env)
        name = self.named_asset(s.asset, s.member, env)
        src = self.account(s.src, env)
        have = env.st.balances.get(src, 0)
        if amount < 0:
            raise Rejected(
                "negative_amount", f"cannot split a negative amount ({amount} {name})", s.span
            )
        line = self.assets.get(s.asset)
        if have + (self.owed(s.src, line, env, src) if line else 0) < amount:
            raise Rejected(
                "insufficient_funds",
                f"split: {src} holds {amount_text(have, decimals, name)}, "
                f"needs {amount_text(amount, decimals, name)}"
                + (self.credit_note(s.src, line, env, src, name) if line else ""),
                s.span,
            )
        where = f"the split of {s.asset} among {_describe(s.source)}"
        saved = env.loc.get(s.var, _ABSENT)
        recipients, weights, keys = [], [], []
        escrow = s.to.type.record if isinstance(s.to.type, ir.TRecord) else None
        try:
            for item in self.items(s.source, env):
                _spend(env, 1, where, s.span)
                env.loc[s.var] = item
                if s.where is not None and not self.eval(s.where, env):
                    continue
                to = self.eval(s.to, env)
                if to is None:
                    raise Rejected("none_value", "split recipient is none", s.span)
                if s.accounts:  # `split ... between`: the item is the account's position
                    recipients.append(self.account(s.accounts[to], env))
                elif escrow is None:
                    recipients.append(party_account(to, name))
                elif to not in env.st.records[escrow]:
                    raise Rejected("missing_record", f"no {escrow} with key {show(to)}", s.span)
                else:
                    recipients.append(escrow_account(escrow, to, name))
                keys.append(item)
                weights.append(self.eval(s.weight, env))
        except _Budget as r:
            if not r.named:
                raise _out_of_budget(env, where, s.span) from None
            raise
        minimum = self.eval(s.minimum, env) if s.minimum is not None else None
        cap = self.eval(s.cap, env) if s.cap is not None else None
        self.restore(s.var, saved, env)
        ints = weights_as_integers(weights)
        if s.order != "listed":
            # key order: by item key; weight order: heaviest first, equal weights by key
            try:
                if s.order == "key":
                    perm = sorted(range(len(keys)), key=lambda i: keys[i])
                else:
                    perm = sorted(range(len(keys)), key=lambda i: (-ints[i], keys[i]))
            except TypeError:
                raise Rejected("split_order", "split recipients have keys that cannot be "
                                              "ordered against each other", s.span) from None
            recipients = [recipients[i] for i in perm]
            ints = [ints[i] for i in perm]
        try:
            shares = split_shares(amount, ints, s.method, minimum, cap, s.minimum_rule)
        except SplitRefused as err:
            raise Rejected(err.code, err.message, s.span) from None
        for acc, share in zip(recipients, shares):
            if share:
                env.st.post(src, acc, name, share, "split")

    def s_Grant(self, s: ir.Grant, env: Any) -> None:
        party = self.eval(s.party, env)
        if party is None:
            raise Rejected("none_value", f"grant {s.right} to none", s.span)
        key = self.eval(s.key, env) if s.key is not None else None
        until = self.eval(s.until, env) if s.until is not None else None
        env.st.set_right((s.right, key, party), until)
        env.st.add_party(party)

    def s_Revoke(self, s: ir.Revoke, env: Any) -> None:
        key = self.eval(s.key, env) if s.key is not None else None
        right = (s.right, key, self.eval(s.party, env))
        if right in env.st.rights:
            env.st.set_right(right, _REVOKED)

    def s_Admit(self, s: ir.Admit, env: Any) -> None:
        party = self.eval(s.party, env)
        if party is None:
            raise Rejected("none_value", f"admit none as {s.role}", s.span)
        if party == "clock":
            raise Rejected("bad_party", "the clock cannot hold a role", s.span)
        if party in env.st.roles[s.role]:
            raise Rejected("already_member", f"{party} already holds the {s.role} role", s.span)
        given = dict(s.attrs)
        values: dict[str, Any] = {}
        for f in self.roles[s.role].attrs:
            x = given.get(f.name, f.default)
            values[f.name] = self.eval(x, env) if x is not None else None
        for name, x in s.attrs:
            values[name] = self.eval(x, env)
        env.st.set_role(s.role, party, values)

    def s_Expel(self, s: ir.Expel, env: Any) -> None:
        party = self.eval(s.party, env)
        if party not in env.st.roles[s.role]:
            raise Rejected("not_member", f"{party} does not hold the {s.role} role", s.span)
        env.st.set_role(s.role, party, None)

    def s_Create(self, s: ir.Create, env: Any) -> None:
        k = self.eval(s.key, env)
        if not isinstance(k, str):
            raise Rejected("bad_key", f"{s.record} key must be text, got {show(k)}", s.span)
        if k in env.st.records[s.record]:
            raise Rejected("record_exists", f"{s.record} {k!r} already exists", s.span)
        given = dict(s.values)
        values = {}
        for f in self.records[s.record].fields:
            x = given.get(f.name, f.default)
            values[f.name] = self.eval(x, env) if x is not None else None
        env.st.create_record(s.record, k, values)

    def s_Update(self, s: ir.Update, env: Any) -> None:
        k = self.eval(s.key, env)
        if k not in env.st.records[s.record]:
            raise Rejected("missing_record", f"no {s.record} with key {show(k)}", s.span)
        env.st.set_fields(s.record, k, {name: self.eval(x, env) for name, x in s.values})

    def s_Delete(self, s: ir.Delete, env: Any) -> None:
        k = self.eval(s.key, env)
        if k not in env.st.records[s.record]:
            raise Rejected("missing_record", f"no {s.record} with key {show(k)}", s.span)
        holds = self.records[s.record].holds
        if holds is not None and self.assets[holds].family is not None:
            # a record holding a family has an escrow per member: all must be empty
            start = f"escrow:{s.record}:{k}:"
            for acc in sorted(env.st.balances):
                left = env.st.balances[acc]
                if left and acc.startswith(start) and acc[len(start):].startswith(holds + "["):
                    raise Rejected("record_holds_value",
                                   f"{s.record} {k!r} still holds {left} {acc[len(start):]}",
                                   s.span)
        elif holds is not None:
            left = env.st.balances.get(escrow_account(s.record, k, holds), 0)
            if left:  # deleting it would strand value that no account could reach again
                raise Rejected(
                    "record_holds_value", f"{s.record} {k!r} still holds {left} {holds}", s.span
                )
        env.st.delete_record(s.record, k)

    def s_Decay(self, s: ir.Decay, env: Any) -> None:
        holders = sorted(env.st.holders.get(s.asset, ()))
        _spend(env, len(holders), f"the decay of {s.asset}", s.span)
        for acc in holders:
            cut = round_floor(env.st.balances.get(acc, 0) * s.rate)
            if cut > 0:
                env.st.post(acc, supply_account(s.asset), s.asset, cut, "decay")

    def s_Flag(self, s: ir.Flag, env: Any) -> None:
        env.st.flags.append({"party": self.eval(s.party, env), "message": s.message})

    def s_Dissolve(self, s: ir.Dissolve, env: Any) -> None:
        env.st.set_meta("dissolved", True)

    # ================================================================ helpers

    @staticmethod
    def need_record(record: str, k: Any, env: Any) -> dict:
        rec = env.st.records[record].get(k)
        if rec is None:
            raise Rejected("missing_record", f"no {record} with key {show(k)}")
        return rec

    @staticmethod
    def restore(var: str, saved: Any, env: Any) -> None:
        if saved is _ABSENT:
            env.loc.pop(var, None)
        else:
            env.loc[var] = saved

    # ================================================================ collections

    def items(self, c: ir.Collection, env: Any) -> list:
        return getattr(self, "c_" + type(c).__name__)(c, env)

    def c_RoleMembers(self, c: ir.RoleMembers, env: Any) -> list:
        return sorted(env.st.parties if c.role is None else env.st.roles[c.role])

    def c_RecordsOf(self, c: ir.RecordsOf, env: Any) -> list:
        return sorted(env.st.records[c.record])

    def c_ListItems(self, c: ir.ListItems, env: Any) -> list:
        return list(self.eval(c.expr, env))

    @staticmethod
    def still_there(c: ir.Collection, item: Any, env: Any) -> bool:
        if isinstance(c, ir.RecordsOf):
            return item in env.st.records[c.record]
        if isinstance(c, ir.RoleMembers) and c.role is not None:
            return item in env.st.roles[c.role]
        return True

    # ================================================================ accounts

    def account(self, a: ir.Account, env: Any) -> str:
        return getattr(self, "a_" + type(a).__name__)(a, env)

    def a_AccPool(self, a: ir.AccPool, env: Any) -> str:
        if a.member is not None:  # a family pool: one account per member
            return pool_account(a.pool, self.named_asset(a.asset, a.member, env))
        return pool_account(a.pool)

    def a_AccSupply(self, a: ir.AccSupply, env: Any) -> str:
        return supply_account(self.named_asset(a.asset, a.member, env))

    def _holder(self, a: Any, env: Any, what: str) -> str:
        p = self.eval(a.party, env)
        if p is None:
            raise Rejected("none_value", f"{what} of none ({a.asset})")
        if p == "clock":
            raise Rejected("bad_party", "the clock holds no accounts")
        return p

    def a_AccParty(self, a: ir.AccParty, env: Any) -> str:
        p = self._holder(a, env, "account")
        return party_account(p, self.named_asset(a.asset, a.member, env))

    def a_AccStake(self, a: ir.AccStake, env: Any) -> str:
        p = self._holder(a, env, "stake")
        return stake_account(p, self.named_asset(a.asset, a.member, env))

    def a_AccEscrow(self, a: ir.AccEscrow, env: Any) -> str:
        k = self.eval(a.key, env)
        self.need_record(a.record, k, env)
        return escrow_account(a.record, k, self.named_asset(a.asset, a.member, env))

    # ================================================================ expressions

    def eval(self, x: ir.Expr, env: Any) -> Any:
        return getattr(self, "x_" + type(x).__name__)(x, env)

    def x_Const(self, x: ir.Const, env: Any) -> Any:
        return x.value

    def x_Local(self, x: ir.Local, env: Any) -> Any:
        if x.name not in env.loc:
            raise PolicyNotExecutable(f"unbound name {x.name}")
        return env.loc[x.name]

    def x_ParamRef(self, x: ir.ParamRef, env: Any) -> Any:
        return env.params[x.name]

    def x_Now(self, x: ir.Now, env: Any) -> Any:
        return env.now

    def x_RecordRef(self, x: ir.RecordRef, env: Any) -> Any:
        k = self.eval(x.key, env)
        self.need_record(x.record, k, env)
        return k

    def x_RecordField(self, x: ir.RecordField, env: Any) -> Any:
        return self.need_record(x.record, self.eval(x.key, env), env)[x.field]

    def x_RoleAttr(self, x: ir.RoleAttr, env: Any) -> Any:
        p = self.eval(x.party, env)
        values = env.st.roles[x.role].get(p)
        if values is None:
            raise Rejected("not_member", f"{p} does not hold the {x.role} role")
        return values.get(x.attr)

    def x_Exists(self, x: ir.Exists, env: Any) -> Any:
        return self.eval(x.key, env) in env.st.records[x.record]

    def x_Cond(self, x: ir.Cond, env: Any) -> Any:
        return self.eval(x.then if self.eval(x.cond, env) else x.orelse, env)

    def x_Unary(self, x: ir.Unary, env: Any) -> Any:
        v = self.eval(x.operand, env)
        if x.op == "-":
            return -v
        if x.op == "not":
            return not v
        raise PolicyNotExecutable(f"unknown unary operator {x.op}")

    def x_Binary(self, x: ir.Binary, env: Any) -> Any:
        op = x.op
        if op == "and":
            return self.eval(x.left, env) and self.eval(x.right, env)
        if op == "or":
            return self.eval(x.left, env) or self.eval(x.right, env)
        a, b = self.eval(x.left, env), self.eval(x.right, env)
        if op == "==":
            return a == b
        if op == "!=":
            return a != b
        if op == "/":
            if b == 0:
                raise Rejected("division_by_zero", "division by zero")
            return Fraction(a) / b
        if op in ("<", "<=", ">", ">="):
            if a is None or b is None:
                raise Rejected("none_value", f"comparison {op} with none")
            return {"<": a < b, "<=": a <= b, ">": a > b, ">=": a >= b}[op]
        if op in ("+", "-", "*"):
            if a is None or b is None:
                raise Rejected("none_value", f"arithmetic {op} on none")
            return whole(a + b if op == "+" else a - b if op == "-" else a * b)
        raise PolicyNotExecutable(f"unknown operator {op}")

    def x_AccBalance(self, x: ir.AccBalance, env: Any) -> Any:
        return env.st.balances.get(self.account(x.account, env), 0)

    def x_ListLit(self, x: ir.ListLit, env: Any) -> Any:
        return tuple(self.eval(i, env) for i in x.items)

    def x_Old(self, x: ir.Old, env: Any) -> Any:
        raise PolicyNotExecutable("old(...) is only meaningful in ensures clauses")

    def x_Aggregate(self, x: ir.Aggregate, env: Any) -> Any:
        if x.kind not in AGGREGATES:
            raise PolicyNotExecutable(f"unknown aggregate {x.kind}")
        where = f"the {x.kind} over {_describe(x.source)}"
        span = getattr(x, "span", None)
        saved = env.loc.get(x.var, _ABSENT)
        values = []
        try:
            for item in self.items(x.source, env):
                _spend(env, 1, where, span)
                env.loc[x.var] = item
                if x.where is not None and not self.eval(x.where, env):
                    continue
                values.append(True if x.kind == "count" else self.eval(x.body, env))
        except _Budget as r:
            if not r.named:
                raise _out_of_budget(env, where, span) from None
            raise
        self.restore(x.var, saved, env)
        if x.kind == "sum":
            total: Any = 0
            for v in values:
                total = total + v
            return whole(total)
        if x.kind == "count":
            return len(values)
        if x.kind == "all":
            return all(values)
        if x.kind == "any":
            return any(values)
        if not values:
            raise Rejected("empty_aggregate", f"{x.kind} over an empty collection")
        return min(values) if x.kind == "min" else max(values)

    def x_Best(self, x: ir.Best, env: Any) -> Any:
        """max_by/min_by: the item with the largest (smallest) keys, compared one after
        another; among items whose keys all tie, the one met first."""
        where = f"the {x.kind}_by over {_describe(x.source)}"
        saved = env.loc.get(x.var, _ABSENT)
        candidates = []
        try:
            for item in self.items(x.source, env):
                _spend(env, 1, where, None)
                env.loc[x.var] = item
                if x.where is not None and not self.eval(x.where, env):
                    continue
                candidates.append(([self.eval(k, env) for k in x.keys], item))
        except _Budget as r:
            if not r.named:
                raise _out_of_budget(env, where, None) from None
            raise
        self.restore(x.var, saved, env)
        if not candidates:
            raise Rejected("empty_aggregate", f"{x.kind}_by over an empty collection")
        winner_keys, winner = candidates[0]
        for keys, item in candidates[1:]:
            for a, b in zip(keys, winner_keys):
                if a != b:
                    if (a > b) == (x.kind == "max"):
                        winner_keys, winner = keys, item
                    break
        return winner

    @staticmethod
    def list_builtin(name: str, x: ir.Builtin, arg: Any) -> Any:
        """Bounded lists (docs: "Bounded list fields"): a list is a tuple, positions count
        from 0; every change gives a new tuple or rejects, so a field is never half-changed."""
        items = arg(0)
        if name == "fit":
            bound = int(x.extra[0])
            if len(items) > bound:
                raise Rejected("list_too_long",
                               f"a list of {len(items)} items does not fit (at most {bound})")
            return items
        other = arg(1)
        if name == "contains":
            return any(y == other for y in items)
        if name == "push":
            bound = int(x.extra[0])
            if len(items) >= bound:
                raise Rejected("list_full", f"the list is full ({bound} items)")
            return (*items, other)
        if name == "without":
            kept, found = [], False
            for y in items:
                if not found and y == other:
                    found = True
                    continue
                kept.append(y)
            if not found:
                raise Rejected("not_in_list", f"{show(other)} is not in the list")
            return tuple(kept)
        # item / drop: a position from 0 to len - 1
        if other < 0 or other >= len(items):
            raise Rejected("index_out_of_range",
                           f"index {other} is outside the list of {len(items)} items")
        if name == "item":
            return items[other]
        return tuple(y for j, y in enumerate(items) if j != other)

    def x_Builtin(self, x: ir.Builtin, env: Any) -> Any:
        name, extra = x.name, x.extra

        def arg(i: int) -> Any:
            return self.eval(x.args[i], env)

        if name in ROUND:
            return ROUND[name](arg(0))
        if name == "abs":
            return abs(arg(0))
        if name in ("min", "max"):
            values = [arg(i) for i in range(len(x.args))]
            return min(values) if name == "min" else max(values)
        if name == "isqrt":
            v = arg(0)
            if v < 0:
                raise Rejected("negative_sqrt", f"isqrt of a negative value ({v})")
            return math.isqrt(v)
        if name == "key":  # a composite key: the parts, `|` between, `|` and `\` escaped
            out = ""
            for i, a in enumerate(x.args):
                part = self.eval(a, env)
                if x.extra[i] == "party":
                    part = "@" + part
                elif x.extra[i] == "int":
                    part = str(part)
                out += ("|" if i else "") + "".join("\\" + c if c in "|\\" else c
                                                    for c in part)
            if len(out) > MAX_TEXT:
                raise Rejected("text_too_long", f"a text of {len(out):,} characters was "
                                                f"built; texts are limited to {MAX_TEXT:,}")
            return out
        if name == "concat":  # text + text, within the length any text argument may have
            joined = arg(0) + arg(1)
            if len(joined) > MAX_TEXT:
                raise Rejected("text_too_long", f"a text of {len(joined):,} characters was "
                                                f"built; texts are limited to {MAX_TEXT:,}")
            return joined
        if name == "text":  # as authors write values (the formatter every message uses)
            return _text(arg(0), x.extra, self.assets)
        if name == "format":
            return _format(arg(0), x, arg(3), self.assets)
        if name == "sqrt":  # sqrt(x, d): the square root rounded down to d decimal places
            v, places = arg(0), x.args[1].value
            if v < 0:
                raise Rejected("negative_sqrt", f"sqrt of a negative value ({v})")
            # the largest k with (k / 10**d)**2 <= v, i.e. k*k <= v * 100**d (k*k is whole)
            k = math.isqrt(math.floor(Fraction(v) * 100**places))
            return whole(Fraction(k, 10**places))
        if name == "pow":
            base, n = arg(0), arg(1)
            if n < 0:
                raise Rejected("negative_power", f"pow with a negative exponent ({n})")
            if len(x.args) == 3:  # each of the n products rounded down to d decimals
                scale, out = 10 ** arg(2), Fraction(1)
                for _ in range(n):
                    out = Fraction(math.floor(out * base * scale), scale)
                return whole(out)
            return whole(base**n)
        if name == "len":
            return len(arg(0))
        if name in ("item", "push", "drop", "without", "fit", "contains"):
            return self.list_builtin(name, x, arg)
        if name == "is_some":
            return arg(0) is not None
        if name == "is_none":
            return arg(0) is None
        if name == "some":
            v = arg(0)
            if v is None:
                raise Rejected("none_value", "value is none")
            return v
        if name == "ratio":
            a, b = arg(0), arg(1)
            if b == 0:
                raise Rejected("division_by_zero", "ratio with a zero denominator")
            return Fraction(a, b)
        if name == "supply":
            member = x.args[0] if x.args else None
            return -env.st.balances.get(
                supply_account(self.named_asset(extra[0], member, env)), 0)
        if name == "has_role":
            return arg(0) in env.st.roles[extra[0]]
        if name == "has_right":
            party = arg(0)
            key = arg(1) if len(x.args) > 1 else None
            return env.st.has_right(party, extra[0], key, env.now)
        if name in ("balance", "stake") and len(x.args) == 1 and extra:
            account = party_account if name == "balance" else stake_account
            return env.st.balances.get(account(arg(0), extra[0]), 0)
        raise PolicyNotExecutable(
            f"built-in {name}({len(x.args)} args, extra={extra}) is not supported"
        )


# ------------------------------------------------------------------ static check


_KINDS = {"Stmt": "s_", "Expr": "x_", "Collection": "c_", "Account": "a_"}


def check_supported(policy: ir.Policy) -> None:
    """Refuse a policy with an IR node this interpreter has no rule for (naming the node),
    or with a move/split the policy could never run (the same refusals as the engine)."""
    groups = {kind: getattr(ir, kind).__args__ for kind in _KINDS}
    assets = {a.name: a for a in policy.assets}

    def visit(node: Any) -> None:
        if isinstance(node, tuple):
            for v in node:
                visit(v)
            return
        if not attrs.has(type(node)):
            return
        for kind, classes in groups.items():
            if type(node) in classes and not hasattr(Interpreter, _KINDS[kind] + type(node).__name__):
                raise PolicyNotExecutable(
                    f"the reference interpreter (charter.runtime.reference) has no rule for the "
                    f"IR node {type(node).__name__}; add {_KINDS[kind]}{type(node).__name__}"
                )
        if isinstance(node, ir.Move):
            a = assets.get(node.asset)
            if a is None:
                raise PolicyNotExecutable(f"{node.kind} of unknown asset {node.asset}")
            if a.kind == "right":
                raise PolicyNotExecutable(
                    f"{node.kind} of {node.asset}: a right is granted, not moved"
                )
            if isinstance(node.src, ir.AccSupply) and not a.mintable:
                raise PolicyNotExecutable(f"mint of {node.asset}, which is not mintable")
            if isinstance(node.dst, ir.AccSupply) and not (a.burnable or a.decay is not None):
                raise PolicyNotExecutable(f"burn of {node.asset}, which is not burnable")
        if isinstance(node, ir.Split) and node.method not in SPLIT_METHODS:
            raise PolicyNotExecutable(f"unknown split method {node.method!r}")
        if isinstance(node, ir.Split) and (node.minimum_rule not in ("first", "quota") or
                                           node.order not in ("listed", "key", "weight")):
            raise PolicyNotExecutable(f"unknown split option {node.minimum_rule!r}/"
                                      f"{node.order!r}")
        if isinstance(node, ir.Admit) and node.role not in {r.name for r in policy.roles}:
            raise PolicyNotExecutable(f"admit as unknown role {node.role}")
        if isinstance(node, ir.Create) and node.record not in {r.name for r in policy.records}:
            raise PolicyNotExecutable(f"create of unknown record {node.record}")
        for f in attrs.fields(type(node)):
            if f.name != "span":
                visit(getattr(node, f.name))

    for h in policy.handlers:
        visit(h.auth)
        visit(h.body)


def reference_policy(policy: ir.Policy) -> ReferencePolicy:
    """The handlers of ``policy`` as the pipeline calls them, interpreted (nothing compiled)."""
    check_supported(policy)
    interp = Interpreter(policy)

    def make(h: ir.Handler) -> ReferenceHandler:
        return ReferenceHandler(
            name=h.name, kind=h.kind, handler=h, params=h.params,
            auth=lambda env: interp.authorise(h, env), body=lambda env: interp.run(h, env),
        )  # fmt: skip

    handlers = {h.name: make(h) for h in policy.handlers}
    timed = tuple(handlers[h.name] for h in policy.handlers if h.kind in ("every", "deadline"))
    return ReferencePolicy(policy=policy, handlers=handlers, timed=timed)
