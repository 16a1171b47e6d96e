"""Pass 4, lower: assemble the checked program into one :class:`ir.Policy`.

Declarations become IR declarations with their constants evaluated (asset
caps in minor units, parameter defaults and ranges, periods), template and
caller parameter overrides are applied within their declared ranges, and
each handler's body is elaborated by the type checker.  Imported modules'
declarations arrive already namespaced (``alias.name``) by ``resolve``.
"""
from __future__ import annotations

from fractions import Fraction
from typing import Any, Callable, Optional

import attrs

from . import ast, display, ir, units
from .diagnostics import Diagnostics, closest, did_you_mean
from .ir import Span
from .resolve import ModuleScope, Symbols
from .typecheck import (
    BOOL, ERR, PARTY, TIME, Checker, Env, NotConstant, TError, compatible, const_value, show,
)

ASSET_KINDS = ("token", "score", "right")
ASSET_OPTIONS = ("decimals", "mintable", "burnable", "fixed", "cap", "decays", "credit",
                 "soft_credit")
# options whose value is an amount of the asset itself (minor units once decimals are known)
_AMOUNT_OPTIONS = ("cap", "credit", "soft_credit")


def lower(syms: Symbols, diags: Diagnostics, overrides: Optional[dict[str, Any]] = None,
          on_expr: Optional[Callable[[ast.Expr, Any], None]] = None) -> ir.Policy:
    chk = Checker(syms, diags, on_expr)
    root = syms.root
    assert root is not None
    assets = tuple(_asset(chk, a) for a in syms.assets.values())
    roles = tuple(ir.Role(name=r.name, attrs=tuple(_fields(chk, r.fields, root)))
                  for r in syms.roles.values())
    params = tuple(_param(chk, q, decl, scope, overrides or {})
                   for q, (decl, scope) in syms.params.items())
    unknown = set(overrides or {}) - set(syms.params)
    for name in sorted(unknown):
        diags.error("E0205", f"the policy has no parameter `{name}`",
                    Span(file=root.module.file, line=1, col=1, end_line=1, end_col=1),
                    hint=did_you_mean(name, syms.params) or (
                        "its parameters: " + ", ".join(sorted(syms.params)) if syms.params
                        else "it declares no parameters"))
    pools = []
    for q, (decl, scope) in syms.pools.items():
        a = syms.assets.get(decl.asset)
        if a is None:
            diags.error("E0201", f"unknown asset `{decl.asset}`", decl.span,
                        hint=did_you_mean(decl.asset, syms.assets))
        elif a.kind == "right":
            diags.error("E0301", f"a {decl.kind} holds amounts; `{decl.asset}` is a right",
                        decl.span)
        pools.append(ir.Pool(name=q, asset=decl.asset, kind=decl.kind))
    records = []
    for q, (decl, scope) in syms.records.items():
        if decl.holds is not None and decl.holds not in syms.assets:
            diags.error("E0201", f"unknown asset `{decl.holds}`", decl.span,
                        hint=did_you_mean(decl.holds, syms.assets))
        elif decl.holds is not None and syms.assets[decl.holds].kind != "token":
            diags.error("E0401", f"a record can only hold a transferable token, and "
                                 f"`{decl.holds}` is a {syms.assets[decl.holds].kind}", decl.span)
        records.append(ir.Record(name=q, fields=tuple(_fields(chk, decl.fields, scope,
                                                               record=True)),
                                 holds=decl.holds))
    for q, (decl, scope) in syms.functions.items():
        if hasattr(chk, "fn_" + decl.name) or decl.name in ("now", "clock", "true", "false",
                                                               "none", "old", "exists"):
            diags.error("E0703", f"function `{decl.name}` has the name of a built-in", decl.span,
                        hint="pick another name; the built-in would be unreachable")
            continue
        if q in syms.records:
            diags.error("E0202", f"`{decl.name}` names both a record and a function", decl.span,
                        hint="`Name(key)` refers to the record; rename the function")
            continue
        chk.function(q, decl.span)  # checked once, even when nothing calls it
    for q, (decl, scope) in syms.procedures.items():
        if q in syms.functions:
            diags.error("E0202", f"`{decl.name}` names both a function and a procedure",
                        decl.span, hint="rename one: `f(x)` is a function's value, `do p(x)` "
                                        "runs a procedure")
            continue
        chk.procedure(q, decl.span)  # checked once, even when nothing does it
    handlers = []
    for q, (decl, scope) in syms.handlers.items():
        h = _handler(chk, q, decl, scope)
        if h is not None:
            handlers.append(h)
    hmap = {h.name: h for h in handlers}
    properties = []
    for q, (decl, scope) in syms.properties.items():
        p = _property(chk, q, decl, scope, hmap)
        if p is not None:
            properties.append(p)
    tests = tuple(t for t in (_test(chk, decl, scope, hmap) for decl, scope in syms.tests)
                  if t is not None)
    return ir.Policy(name=root.module.name, version=root.module.version, assets=assets,
                     roles=roles, params=params, pools=tuple(pools), records=tuple(records),
                     handlers=tuple(handlers), properties=tuple(properties), tests=tests,
                     source_hash=syms.source_hash())


def _asset(chk: Checker, a: ast.AssetDecl) -> ir.Asset:
    d = chk.d
    if a.kind not in ASSET_KINDS:
        d.error("E0211", f"unknown asset kind `{a.kind}`", a.span,
                hint=did_you_mean(a.kind, ASSET_KINDS) or "token (transferable), score (earned, "
                "never transferred) or right (granted and revoked)")
    decimals, mintable, burnable, cap, decay = 0, False, False, None, None
    cap_scale: list[tuple[Any, Any, Span, str]] = []
    limits: dict[str, int] = {}
    param_lines: dict[str, str] = {}  # credit/soft_credit -> the parameter that sets it
    attr_lines: dict[str, tuple] = {}  # credit/soft_credit -> (role, attribute) that sets it
    # read in the declaring module (an imported policy's `credit barter_limit` is its own)
    env = Env(scope=chk.syms.asset_scopes.get(a.name, chk.syms.root), in_handler=False)
    # `cap 1000 Token` in a family's own declaration is per member: no member is named
    chk.declaring = a.name
    seen: set[str] = set()
    for o in a.options:
        if o.name in seen and o.name in ASSET_OPTIONS:
            # `credit 5 Hours, credit 10 Hours`: which line holds would be an accident of order
            d.error("E0211", f"`{o.name}` is given twice for {a.name}", o.span,
                    hint="keep one: each option is stated once")
            continue
        seen.add(o.name)
        if o.name not in ASSET_OPTIONS:
            d.error("E0211", f"unknown asset option `{o.name}`", o.span,
                    hint=did_you_mean(o.name, ASSET_OPTIONS) or "options: "
                    + ", ".join(ASSET_OPTIONS))
            continue
        takes_value = o.name in ("decimals", "decays", *_AMOUNT_OPTIONS)
        if takes_value != (o.value is not None):
            d.error("E0211", f"`{o.name}` {'needs' if takes_value else 'takes no'} value", o.span)
            continue
        if o.name == "mintable":
            mintable = True
        elif o.name == "burnable":
            burnable = True
        elif o.name == "decimals":
            v = _const(chk, o.value, env)
            if not isinstance(v, int) or not 0 <= v <= 18:
                d.error("E0211", "decimals must be a whole number in 0..18", o.span)
            else:
                decimals = v
        elif o.name in _AMOUNT_OPTIONS:
            # `cap 1000 Credit` is already in minor units; a bare `cap 1000` is in whole
            # units of the asset (decimals may be declared after the cap, so scale last).
            if o.name in ("credit", "soft_credit") and isinstance(o.value, ast.FieldAccess) and \
                    isinstance(o.value.obj, ast.Name) and o.value.obj.id in chk.syms.roles:
                # a line each member sets: `credit Member.limit` (a role attribute)
                role = chk.syms.roles[o.value.obj.id]
                f = next((f for f in role.fields if f.name == o.value.name), None)
                if f is None or f.type.name != a.name or f.type.member is not None or \
                        f.type.optional or f.type.item is not None:
                    d.error("E0211", f"the {o.name} line of {a.name} is an attribute of "
                                     f"{role.name}: `{o.value.name}` must be declared "
                                     f"`{o.value.name}: {a.name}`", o.span,
                            hint=f"role {role.name} {{ {o.value.name}: {a.name} }}")
                else:
                    attr_lines[o.name] = (role.name, f.name)
                continue
            x = chk.expr(o.value, env)
            if isinstance(x, ir.ParamRef) and o.name in ("credit", "soft_credit"):
                # a credit line a parameter sets: `credit barter_limit`
                if x.type != ir.TAmount(asset=a.name):
                    d.error("E0211", f"the {o.name} line of {a.name} is the parameter "
                                     f"`{x.name}`, which is {display.type_name(x.type)}, not "
                                     f"{a.name}", o.span,
                            hint=f"declare `param {x.name}: {a.name} = ...`")
                else:
                    param_lines[o.name] = x.name
                continue
            v = _const(chk, o.value, env)
            if isinstance(x.type, ir.TAmount) and x.type.asset != a.name:
                d.error("E0302", f"the {o.name} of {a.name} is given in {x.type.asset}", o.span)
                continue
            scale = 1 if isinstance(x.type, ir.TAmount) else None
            cap_raw = v if isinstance(v, (int, Fraction)) and not isinstance(v, bool) else None
            cap_scale.append((cap_raw, scale, o.span, o.name))
            continue
        elif o.name == "decays":
            v = _const(chk, o.value, env)
            if not isinstance(v, (Fraction, int)) or not 0 <= v <= 1:
                d.error("E0211", "decays takes a ratio in 0%..100%, like `decays 10%`", o.span)
            else:
                decay = Fraction(v)
    chk.declaring = None
    for cap_raw, scale, span, name in cap_scale:
        cap_minor = None if cap_raw is None else \
            Fraction(cap_raw) * (scale if scale is not None else 10 ** decimals)
        if cap_minor is None or cap_minor.denominator != 1 or cap_minor < 0:
            d.error("E0211", f"{name} must be a non-negative whole amount", span)
        else:
            limits[name] = int(cap_minor)
    cap = limits.get("cap")
    credit, soft = limits.get("credit"), limits.get("soft_credit")
    credit_param, soft_param = param_lines.get("credit"), param_lines.get("soft_credit")
    credit_attr, soft_attr = attr_lines.get("credit"), attr_lines.get("soft_credit")
    if (credit_param or soft_param or credit_attr or soft_attr) and a.key is not None:
        d.error("E0211", f"a credit line of the {a.name} family is a constant (each member "
                         "has it)", a.span, hint=f"write `credit 10 {a.name}`")
    has_credit = credit is not None or credit_param is not None or credit_attr is not None
    soft_any = soft is not None or soft_param is not None or soft_attr is not None
    if (has_credit or soft_any) and a.kind != "token":
        d.error("E0211", f"a credit line lets a party owe {a.name}, which only a token can do",
                a.span, hint="a score or right is never transferred, so it is never owed")
    if soft_any and not has_credit:
        d.error("E0211", "`soft_credit` flags a balance below a limit inside a credit line: "
                         "declare the line with `credit`", a.span,
                hint=f"e.g. `credit 20 {a.name}, soft_credit 10 {a.name}`")
    elif soft is not None and credit is not None and soft > credit:
        d.error("E0211", "`soft_credit` is deeper than the `credit` line itself: it could "
                         "never flag", a.span)
    if a.kind != "token" and a.kind in ASSET_KINDS and a.kind == "right" and (
            mintable or burnable or decay):
        d.error("E0211", "a right has no supply: it is granted and revoked", a.span)
    if cap is not None and not mintable:
        d.error("E0211", f"a cap limits minting, and {a.name} is not mintable", a.span)
    if a.key is not None and a.kind == "right":
        d.error("E0740", f"`{a.name}[{a.key}]`: a family is of amounts (token or score), and "
                         "a right is not an amount", a.span,
                hint="grant rights keyed by a value instead: `grant Licence[key] to p`")
    if a.key is not None and decay is not None:
        d.error("E0740", f"the {a.name} family cannot decay: `decay` burns from every holder "
                         "of one asset", a.span,
                hint="declare a separate asset for a decaying score")
    return ir.Asset(name=a.name, kind=a.kind, decimals=decimals, mintable=mintable,
                    burnable=burnable, cap=cap, decay=decay, credit=credit, soft_credit=soft,
                    span=a.span, family=a.key, credit_param=credit_param,
                    soft_credit_param=soft_param, credit_attr=credit_attr,
                    soft_credit_attr=soft_attr)


def _const(chk: Checker, e: ast.Expr, env: Env) -> Any:
    x = chk.expr(e, env)
    if isinstance(x.type, TError):
        return None
    try:
        return const_value(x)
    except (NotConstant, ZeroDivisionError):
        chk.d.error("E0310", "this must be a constant", e.span)
        return None


def _fields(chk: Checker, fields: tuple, scope: ModuleScope,
            record: bool = False) -> list[ir.Field]:
    out, seen = [], set()
    env = Env(scope=scope, in_handler=False)
    for f in fields:
        if f.name in seen:
            chk.d.error("E0202", f"field `{f.name}` is declared twice", f.span)
            continue
        seen.add(f.name)
        t, lo, hi = chk.type_of(f.type, env)
        chk.check_list_type(f.type, t, field=record)
        default = chk.value_for(f, f.default, env, scope) if f.default is not None else None
        out.append(ir.Field(name=f.name, type=t, default=default, lo=lo, hi=hi))
    return out


def _param(chk: Checker, q: str, decl: ast.ParamDecl, scope: ModuleScope,
           overrides: dict[str, Any]) -> ir.Param:
    env = Env(scope=scope, in_handler=False)
    t, _, _ = chk.type_of(decl.type, env)
    default = _typed_const(chk, decl.default, env, t, f"parameter `{decl.name}`")
    lo = _typed_const(chk, decl.lo, env, t, "range bound") if decl.lo is not None else None
    hi = _typed_const(chk, decl.hi, env, t, "range bound") if decl.hi is not None else None
    # The importer's `with { ... }` setting, then the caller's override, win over the default.
    if decl.name in scope.settings and scope.settings_scope is not None:
        setting = scope.settings[decl.name]
        default = _typed_const(chk, setting, Env(scope=scope.settings_scope, in_handler=False),
                               t, f"parameter `{decl.name}`")
        _in_range(chk, default, lo, hi, setting.span, decl.name, t=t)
    elif default is not None:
        _in_range(chk, default, lo, hi, decl.default.span, decl.name, t=t)
    if q in overrides:
        value = _override(chk, overrides[q], t, decl)
        if value is None:
            pass
        elif not _in_range(chk, value, lo, hi, decl.span, decl.name, override=True, t=t):
            pass
        else:
            default = value
    return ir.Param(name=q, type=t, default=default, lo=lo, hi=hi, span=decl.span)


def _override(chk: Checker, raw: Any, t: Any, decl: ast.ParamDecl) -> Any:
    """A caller's parameter value, read by the one convention (:mod:`charter.compiler.units`):
    ``"3%"``, ``"12.50"``, ``"2 days"`` as well as native values; None when it does not read."""
    base = t.inner if isinstance(t, ir.TOptional) else t
    if raw is None and isinstance(t, ir.TOptional):
        return None
    try:
        if isinstance(base, ir.TRatio) and isinstance(raw, Fraction):
            return raw
        if units.is_numeric(base):
            return units.read(base, raw, chk.decimals)
        if isinstance(base, ir.TBool):
            v = {"true": True, "false": False}.get(raw, raw) if isinstance(raw, str) else raw
            if isinstance(v, bool):
                return v
            raise units.UnitError("expected true or false")
        if isinstance(base, ir.TParty) and isinstance(raw, str) and raw.strip("@"):
            return raw[1:] if raw.startswith("@") else raw
        if isinstance(base, (ir.TText, ir.TRecord)) and isinstance(raw, str):
            return raw
        raise units.UnitError(f"expected {show(t)}")
    except units.UnitError as err:
        chk.d.error("E0301", f"the value given for parameter `{decl.name}` does not read as "
                             f"{show(t)}: {err}", decl.span)
        return None


def _typed_const(chk: Checker, e: ast.Expr, env: Env, t: Any, what: str) -> Any:
    x = chk.expr(e, env)
    if isinstance(x.type, TError):
        return None
    if not compatible(t, x.type):
        chk.d.error("E0301", f"{what} is {show(t)}, but this is {show(x.type)}", e.span)
        return None
    try:
        return const_value(x)
    except (NotConstant, ZeroDivisionError):
        chk.d.error("E0310", f"{what} must be a constant", e.span,
                    hint="use literals and arithmetic on them")
        return None


def _in_range(chk: Checker, v: Any, lo: Any, hi: Any, span: Span, name: str,
              override: bool = False, t: Any = None) -> bool:
    if v is None:
        return True
    try:
        bad = (lo is not None and v < lo) or (hi is not None and v > hi)
    except TypeError:
        chk.d.error("E0301", f"value for `{name}` has the wrong type", span)
        return False
    if bad:
        dec = chk.asset_decimals(t.asset) if isinstance(t, ir.TAmount) else 0
        chk.d.error("E0308", f"{'override ' if override else ''}value {_fmt(v, t, dec)} for "
                             f"`{name}` is outside its declared range "
                             f"{_fmt(lo, t, dec)}..{_fmt(hi, t, dec)}", span)
        return False
    return True


def _fmt(v: Any, t: Any = None, decimals: int = 0) -> str:
    """A constant as the author would write it: 20%, 1.50 Credit, 30 days."""
    if v is None:
        return "…"
    asset = t.asset if isinstance(t, ir.TAmount) else None
    return display.value(v, t, {asset: decimals} if asset else None)


def _handler(chk: Checker, q: str, decl: Any, scope: ModuleScope) -> Optional[ir.Handler]:
    d = chk.d
    chk.expansions = 0  # the names a `do` makes fresh are numbered per handler
    env = Env(scope=scope)
    if isinstance(decl, ast.Handler):
        params = []
        for p in decl.params:
            t, lo, hi = chk.type_of(p.type, env)
            chk.check_list_type(p.type, t, field=False)
            if p.name in env.locals:
                d.error("E0202", f"argument `{p.name}` is declared twice", p.span)
            env.locals[p.name] = t
            params.append(ir.Field(name=p.name, type=t, lo=lo, hi=hi))
        if decl.by is None:
            d.error("E0501", f"handler `{decl.name}` does not say who may submit it", decl.span,
                    hint="add a `by` clause: `by p: Role`, `by p: party`, `by Task(id).poster` "
                         "or `by clock`")
            auth: Any = ir.AuthClock()
        elif isinstance(decl.by, ast.ByRole):
            t, _, _ = chk.type_of(decl.by.type, env)
            if not isinstance(t, (ir.TParty, TError)):
                d.error("E0301", f"`by {decl.by.binder}: {show(t)}`: the submitter is a party; "
                                 "name a role or `party`", decl.by.span)
            role = t.role if isinstance(t, ir.TParty) else None
            auth = ir.AuthRole(binder=decl.by.binder, role=role)
            env.locals[decl.by.binder] = ir.TParty(role=role)
        else:
            e = decl.by.expr
            if isinstance(e, ast.Name) and e.id == "clock":
                auth = ir.AuthClock()
            else:
                x = chk.party(e, env)
                auth = ir.AuthParty(party=x)
        ens = _ensures(chk, decl, env)
        body = chk.block(decl.body, env)
        chk.warn_unused(env)
        if not d.has_errors and not _has_effect(body):
            d.warning("W0304", f"handler `{decl.name}` moves no value and changes no state",
                      decl.span, hint="an event that only checks conditions is recorded but "
                                      "does nothing; was a statement forgotten?")
        return ir.Handler(name=q, kind="event", params=tuple(params), auth=auth, body=body,
                          span=decl.span, ensures=ens)
    if isinstance(decl, ast.EveryHandler):
        period_x = chk.expr(decl.period, env)
        period = None
        try:
            period = const_value(period_x)
        except NotConstant:
            pass
        if not isinstance(period_x.type, type(ir.TDuration())) or not isinstance(period, int) \
                or period <= 0:
            d.error("E0503", "`every` needs a constant positive duration, like `every 7 days`",
                    decl.period.span)
            period = None
        ens = _ensures(chk, decl, env)
        body = chk.block(decl.body, env)
        return ir.Handler(name=q, kind="every", params=(), auth=ir.AuthClock(), body=body,
                          period=period, span=decl.span, ensures=ens)
    # deadline handler
    rq = scope.q(decl.record)
    if rq not in chk.syms.records:
        d.error("E0201", f"unknown record `{decl.record}`", decl.span,
                hint=did_you_mean(decl.record, chk.names(chk.syms.records)))
        return None
    rdecl = chk.syms.records[rq][0]
    f = next((f for f in rdecl.fields if f.name == decl.field), None)
    if f is None:
        d.error("E0207", f"record `{decl.record}` has no field `{decl.field}`", decl.span,
                hint=did_you_mean(decl.field, [f.name for f in rdecl.fields]))
        return None
    ft, _, _ = chk.type_of(f.type, env)
    inner = ft.inner if isinstance(ft, ir.TOptional) else ft
    if not isinstance(inner, type(TIME)):
        d.error("E0301", f"`when {decl.record}.{decl.field} passes` needs a time field, and "
                         f"`{decl.field}` is {show(ft)}", decl.span)
    env.locals[decl.binder] = ir.TRecord(record=rq)
    ens = _ensures(chk, decl, env)
    body = chk.block(decl.body, env)
    return ir.Handler(name=q, kind="deadline", params=(), auth=ir.AuthClock(), body=body,
                      record=rq, field=decl.field, binder=decl.binder, span=decl.span,
                      ensures=ens)


def _ensures(chk: Checker, decl: Any, env: Env) -> tuple[ir.Ensures, ...]:
    """A handler's postconditions, checked with only its arguments and submitter in scope
    (checked before the body, so its `let`s are not visible)."""
    from .fmt import expr as show_expr  # the condition as the author wrote it, for reports

    out = []
    for e in decl.ensures:
        eenv = env.child()
        eenv.spec = "ensures"
        cond = chk.cond(e.cond, eenv)
        out.append(ir.Ensures(cond=cond, message=e.message, text=show_expr(e.cond),
                              span=e.span))
    return tuple(out)


_EFFECTS = (ir.Move, ir.Split, ir.SetField, ir.Create, ir.Update, ir.Delete, ir.Grant, ir.Revoke,
            ir.Admit, ir.Expel, ir.Decay, ir.Flag, ir.Dissolve)


def _has_effect(stmts: tuple) -> bool:
    for s in stmts:
        if isinstance(s, _EFFECTS):
            return True
        if isinstance(s, ir.If) and (_has_effect(s.then) or _has_effect(s.orelse)):
            return True
        if isinstance(s, ir.ForEach) and _has_effect(s.body):
            return True
    return False


def _has_split(stmts: tuple) -> bool:
    for s in stmts:
        if isinstance(s, ir.Split):
            return True
        if isinstance(s, ir.If) and (_has_split(s.then) or _has_split(s.orelse)):
            return True
        if isinstance(s, ir.ForEach) and _has_split(s.body):
            return True
    return False


def _property(chk: Checker, q: str, decl: ast.PropertyDecl, scope: ModuleScope,
              handlers: dict[str, ir.Handler]) -> Any:
    d = chk.d
    env = Env(scope=scope, in_handler=False)
    if decl.kind in ("split", "split_floor", "split_cap", "budget"):
        hq = scope.q(decl.handler)
        h = handlers.get(hq)
        if h is None:
            d.error("E0601", f"property `{decl.name}` names no handler `{decl.handler}`",
                    decl.span, hint=chk._suggest(decl.handler, list(handlers)) or None)
            return None
        if decl.kind == "budget":
            pq = scope.q(decl.what)
            if pq not in chk.syms.pools:
                d.error("E0201", f"unknown pool `{decl.what}`", decl.span,
                        hint=did_you_mean(decl.what, chk.names(chk.syms.pools)))
                return None
            limit, _ = chk.amount(decl.bound, env)
            return ir.BudgetProperty(name=q, handler=hq, pool=pq, limit=limit, span=decl.span)
        if not _has_split(h.body):
            d.error("E0602", f"handler `{decl.handler}` has no `split` to check", decl.span)
            return None
        if decl.kind == "split":
            if decl.what not in ("proportional", "monotone", "symmetric"):
                d.error("E0603", f"unknown split property `{decl.what}`", decl.span,
                        hint="proportional, monotone or symmetric (or `gives at least/most`)")
                return None
            bound = chk.amount(decl.bound, env)[0] if decl.bound is not None else None
            return ir.SplitProperty(name=q, handler=hq, kind=decl.what, bound=bound,
                                    span=decl.span)
        bound, _ = chk.amount(decl.bound, env)
        return ir.SplitProperty(name=q, handler=hq,
                                kind="floor" if decl.kind == "split_floor" else "cap",
                                bound=bound, span=decl.span)
    if decl.kind == "anyone":
        hq = scope.q(decl.handler)
        if hq not in handlers:
            d.error("E0601", f"property `{decl.name}` names no handler `{decl.handler}`",
                    decl.span, hint=chk._suggest(decl.handler, list(handlers)) or None)
            return None
        return ir.AnyoneProperty(name=q, handler=hq, span=decl.span)
    if decl.kind == "record_invariant":
        rq = scope.q(decl.record)
        if rq not in chk.syms.records:
            d.error("E0201", f"unknown record `{decl.record}`", decl.span,
                    hint=did_you_mean(decl.record, chk.names(chk.syms.records)))
            return None
        env.locals[decl.var] = ir.TRecord(record=rq)
        cond = chk.cond(decl.bound, env)
        return ir.InvariantProperty(name=q, cond=cond, record=rq, var=decl.var, span=decl.span)
    cond = chk.cond(decl.bound, env)
    return ir.InvariantProperty(name=q, cond=cond, span=decl.span)


def _payload(chk: Checker, x: Any, span: Span) -> Any:
    """A constant as an event payload value (amounts in minor units)."""
    try:
        v = const_value(x)
    except (NotConstant, ZeroDivisionError):
        chk.d.error("E0604", "test values must be constants", span)
        return None
    return _json_value(v)


def _json_value(v: Any) -> Any:
    if isinstance(v, Fraction):
        return {"num": v.numerator, "den": v.denominator}
    if isinstance(v, tuple):
        return [_json_value(i) for i in v]
    return v


def _test(chk: Checker, decl: ast.TestDecl, scope: ModuleScope,
          handlers: dict[str, ir.Handler]) -> Optional[ir.Test]:
    d = chk.d
    env = Env(scope=scope, in_handler=False)
    steps: list[Any] = []
    for s in decl.steps:
        if s.kind == "given_role":
            party = chk.party(s.expr, env)
            role = chk.syms.roles.get(s.name)
            if role is None:
                d.error("E0201", f"unknown role `{s.name}`", s.span,
                        hint=did_you_mean(s.name, chk.syms.roles))
                continue
            attrs_out = chk.role_attrs(role, s.assigns, env, s.span)
            pv = _payload(chk, party, s.expr.span)
            steps.append(ir.GivenRole(party=pv, role=s.name, attrs=attrs_out, span=s.span))
        elif s.kind == "given_funds":
            amount, asset = chk.amount(s.expr, env)
            acc = chk.account(s.target, env, asset,
                              member=getattr(amount.type, "member", None)) if asset else None
            value = _payload(chk, amount, s.expr.span)
            if acc is not None and isinstance(value, int):
                steps.append(ir.GivenFunds(amount=value, account=acc, span=s.span))
        elif s.kind == "given_param":
            pq = scope.q(s.name)
            if pq not in chk.syms.params:
                d.error("E0201", f"unknown parameter `{s.name}`", s.span,
                        hint=did_you_mean(s.name, chk.names(chk.syms.params)))
                continue
            x = chk.expr(s.expr, env)
            try:
                steps.append(ir.GivenParam(name=pq, value=const_value(x), span=s.span))
            except NotConstant:
                d.error("E0604", "test values must be constants", s.expr.span)
        elif s.kind == "when":
            # a deadline handler's own name (`Task.deadline.passes`) is not an import path
            hq = s.name if s.name in handlers else chk.qualify(s.name, env, s.span)
            h = handlers.get(hq)
            if h is not None and h.kind != "event":
                # a timed handler is not submitted: `when epoch() by clock at 30 days` advances
                # the clock to that time, and the timed handlers due by then fire
                if s.assigns:
                    d.error("E0207", f"`{s.name}` is a timed handler: it takes no arguments",
                            s.assigns[0].span)
                sub = _payload(chk, chk.party(s.expr, env), s.expr.span)
                if sub != "clock":
                    d.error("E0209", f"`{s.name}` is a timed handler: only the clock fires it "
                                     "(`by clock at <time>`)", s.expr.span)
                if s.target is None:
                    d.error("E0209", f"`{s.name}` is a timed handler: say when it fires "
                                     "(`at <time>`)", s.span)
                    continue
                tx = chk.expr(s.target, env)
                time = _payload(chk, tx, s.target.span)
                if not isinstance(time, int):
                    d.error("E0604", "`at` takes a whole number of seconds", s.target.span)
                    continue
                steps.append(ir.WhenEvent(event=hq, args=(), submitter="clock", time=time,
                                          span=s.span))
                continue
            if h is None:
                d.error("E0209", f"no event `{s.name}` to submit", s.span,
                        hint=chk._suggest(s.name, [n for n, hh in handlers.items()
                                                   if hh.kind == "event"]) or None)
                continue
            params = {p.name: p for p in h.params}
            given = {a.name for a in s.assigns}
            missing = [p for p in params if p not in given]
            args = []
            for a in s.assigns:
                p = params.get(a.name)
                if p is None:
                    # a misspelt argument is one error (with the fix), not also a missing one
                    meant = closest(a.name, missing)
                    if meant is not None:
                        missing.remove(meant)
                    d.error("E0207", f"event `{s.name}` has no argument `{a.name}`", a.span,
                            hint=f"did you mean `{meant}`?" if meant else (
                                "its arguments: " + ", ".join(params) if params else
                                "it takes no arguments"))
                    continue
                fam = p.type.asset if isinstance(p.type, ir.TAmount) and \
                    p.type.member is not None else None
                chk.declaring = fam  # `amount = 5 Token` is fine: `sym` says the member
                try:
                    x = chk.expr(a.value, env)
                finally:
                    chk.declaring = None
                want = p.type
                if isinstance(want, ir.TAmount) and isinstance(x.type, ir.TAmount):
                    # an event carries a family amount as a count of minor units: its member
                    # is the one the handler names (`amount: Token[sym]` with `sym = "USDC"`)
                    want = attrs.evolve(want, member=x.type.member)
                if not compatible(want, x.type):
                    d.error("E0301", f"argument `{a.name}` is {show(p.type)}, not {show(x.type)}",
                            a.value.span)
                args.append((a.name, _payload(chk, x, a.value.span)))
            if missing:
                d.error("E0208", f"event `{s.name}` needs argument{'s' if len(missing) > 1 else ''}"
                                 f" {', '.join(missing)}", s.span)
            sub = _payload(chk, chk.party(s.expr, env), s.expr.span)
            time = None
            if s.target is not None:
                tx = chk.expr(s.target, env)
                time = _payload(chk, tx, s.target.span)
                if not isinstance(time, int):
                    d.error("E0604", "`at` takes a whole number of seconds", s.target.span)
                    time = None
            steps.append(ir.WhenEvent(event=hq, args=tuple(args), submitter=str(sub), time=time,
                                       span=s.span))
        elif s.kind == "expect_ok":
            steps.append(ir.ExpectOk(span=s.span))
        elif s.kind == "expect_rejected":
            steps.append(ir.ExpectRejected(contains=s.text, span=s.span))
        elif s.kind == "expect_true":
            c = chk.cond(s.expr, env)
            steps.append(ir.ExpectTrue(cond=c, text=chk.text(s.expr), span=s.span))
    return ir.Test(name=decl.name, steps=tuple(steps), span=decl.span)


__all__ = ["lower", "BOOL", "PARTY", "ERR"]
