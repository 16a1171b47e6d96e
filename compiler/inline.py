"""Inlining of pure functions: a call ``f(a, b)`` becomes ``f``'s body with the arguments
put in place of its parameters.

A Charter function is pure (``let`` bindings and one ``return``; no statement with an
effect exists in its grammar) and never recursive, so a call means exactly its body with
the arguments substituted.  The type checker does this while it elaborates the call, so
the IR holds no call node and every consumer (the runtime's backends, the verifier, the
exporters) sees ordinary expressions: the verifier proves properties of the inlined
body, never of a summary.

Two things need care.  An aggregate inside the body binds its own variable; it is renamed
to a fresh name so that an argument mentioning a caller's variable of the same name is
never captured.  And substitution copies an argument into each place its parameter is
used, so nested calls can grow the expression exponentially (``f(f(f(x)))`` with ``f(x) =
x + x``); :func:`tree_size` measures the result so the checker can refuse a call that
expands beyond :data:`MAX_INLINED_NODES` (E0702) instead of generating it.
"""
from __future__ import annotations

import itertools
from typing import Any

import attrs

from . import ir

# The largest expression (in IR nodes, counted as a tree) one call may expand to.
MAX_INLINED_NODES = 5_000

_fresh = itertools.count(1)


def substitute(x: Any, mapping: dict[str, Any]) -> Any:
    """``x`` with each :class:`ir.Local` named in ``mapping`` replaced.

    A mapping value is an IR expression (put in place of the local) or a ``str`` (the
    local is renamed, keeping its type)."""
    if isinstance(x, ir.Local):
        got = mapping.get(x.name)
        if got is None:
            return x
        if isinstance(got, str):
            return attrs.evolve(x, name=got)
        if isinstance(got.type, ir.TOptional) and not isinstance(x.type, ir.TOptional):
            # the body narrowed its parameter (`p is some`): the argument is known present
            return ir.Builtin(name="some", args=(got,), type=x.type)
        return got
    if isinstance(x, (ir.Aggregate, ir.Best)):
        fresh = f"{x.var}~{next(_fresh)}"
        inner = dict(mapping)
        inner[x.var] = fresh
        inside = {"body": substitute(x.body, inner)} if isinstance(x, ir.Aggregate) else {
            "keys": substitute(x.keys, inner)}
        return attrs.evolve(
            x, var=fresh, source=substitute(x.source, mapping),
            where=substitute(x.where, inner) if x.where is not None else None, **inside)
    if isinstance(x, tuple):
        return tuple(substitute(i, mapping) for i in x)
    if attrs.has(type(x)) and not _is_type(x):
        changes = changed_children(x, lambda v: substitute(v, mapping))
        return attrs.evolve(x, **changes) if changes else x
    return x


def changed_children(x: Any, f: Any) -> dict[str, Any]:
    """The fields of IR node ``x`` that ``f`` changes (children that are nodes or tuples),
    as keyword arguments for ``attrs.evolve``: the one walk over a node's children that
    substitution and a procedure's renaming share."""
    changes = {}
    for fld in attrs.fields(type(x)):
        v = getattr(x, fld.name)
        if attrs.has(type(v)) or isinstance(v, tuple):
            nv = f(v)
            if nv is not v:
                changes[fld.name] = nv
    return changes


def _is_type(x: Any) -> bool:
    return isinstance(x, (ir.TInt, ir.TBool, ir.TText, ir.TRatio, ir.TAmount, ir.TFrac,
                          ir.TTime, ir.TDuration, ir.TParty, ir.TRecord, ir.TOptional,
                          ir.TList))


def tree_size(x: Any, limit: int = MAX_INLINED_NODES) -> int:
    """The number of IR nodes of ``x`` counted as a tree (a shared argument counts once per
    use), stopping early once past ``limit``."""
    memo: dict[int, int] = {}

    def size(n: Any) -> int:
        key = id(n)
        if key in memo:
            return memo[key]
        if isinstance(n, tuple):
            total = sum(size(i) for i in n)
        elif attrs.has(type(n)) and not _is_type(n):
            total = 1
            for f in attrs.fields(type(n)):
                v = getattr(n, f.name)
                if attrs.has(type(v)) or isinstance(v, tuple):
                    total += size(v)
                    if total > limit:
                        break
        else:
            total = 0
        memo[key] = total
        return total

    return size(x)
