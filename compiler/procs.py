"""Expansion of procedures: ``do p(a, b)`` becomes ``p``'s checked body, in place.

A procedure (``proc p(x: T) { ... }``) is a block of statements with effects that several
handlers share, like an internal function in Solidity.  It is never called at run time:
the type checker checks its body once (its parameters are its only locals; the caller's
arguments, role binders and ``let``s are not visible inside) and each ``do`` statement is
replaced by

* one ``let`` per parameter, binding the argument's value at that point (so an argument
  like ``balance(fund)`` is read once, before the body moves anything), then
* the body, with every name it binds (parameters, ``let``, ``var``, loop and split
  variables) renamed to a fresh name, so that nothing in it can clash with, or be
  captured by, a name of the caller.

The IR after expansion holds only ordinary handler statements: the runtime's backends, the
reference interpreter and the verifier see what the author would have written out by hand
(``split in h is proportional`` finds a split that came from a procedure).  Procedures may
``do`` other procedures, never in a cycle (E0701), and one ``do`` may expand to at most
:data:`MAX_EXPANDED_NODES` IR nodes (E0702).
"""
from __future__ import annotations

from typing import Any

import attrs

from . import inline, ir

# The largest body (in IR nodes, counted as a tree) one `do` may expand to.
MAX_EXPANDED_NODES = 20_000

_BINDS_NAME = (ir.Let, ir.Var, ir.SetLocal)
_BINDS_VAR = (ir.ForEach, ir.Split)


def binders(x: Any, out: set[str] | None = None) -> set[str]:
    """The local names statements ``x`` bind (``let``, ``var``, loop and split variables);
    an aggregate's own variable is renamed by :func:`inline.substitute` and is not listed."""
    out = set() if out is None else out
    if isinstance(x, tuple):
        for i in x:
            binders(i, out)
    elif isinstance(x, (ir.Let, ir.Var)):
        out.add(x.name)
        binders(x.value, out)
    elif isinstance(x, _BINDS_VAR):
        out.add(x.var)
        for f in attrs.fields(type(x)):
            binders(getattr(x, f.name), out)
    elif isinstance(x, (ir.If,)):
        binders(x.then, out)
        binders(x.orelse, out)
    return out


def rename(x: Any, mapping: dict[str, str]) -> Any:
    """Statements ``x`` with every local in ``mapping`` renamed, where it is bound and where
    it is read."""
    if isinstance(x, (ir.Local, ir.Aggregate, ir.Best)):
        return inline.substitute(x, mapping)
    if isinstance(x, tuple):
        return tuple(rename(i, mapping) for i in x)
    if attrs.has(type(x)) and not inline._is_type(x):
        changes = inline.changed_children(x, lambda v: rename(v, mapping))
        if isinstance(x, _BINDS_NAME) and x.name in mapping:
            changes["name"] = mapping[x.name]
        if isinstance(x, _BINDS_VAR) and x.var in mapping:
            changes["var"] = mapping[x.var]
        return attrs.evolve(x, **changes) if changes else x
    return x


def expand(proc: str, params: tuple[str, ...], body: tuple, args: tuple, span: Any,
           n: int) -> tuple:
    """The statements one ``do proc(args)`` stands for: a ``let`` per parameter, then the
    body, every name it binds made fresh with ``~proc`` and ``n``.

    ``n`` numbers the ``do`` statements of one handler (or procedure body) in order, so names are
    fresh within it and the same each time the same source is compiled (the IR of two
    compilations compares equal, and ``charter diff`` sees an unchanged handler as such)."""
    names = set(params) | binders(body)
    mapping = {name: f"{name}~{proc}{n}" for name in sorted(names)}
    lets = tuple(ir.Let(name=mapping[p], value=a, span=span) for p, a in zip(params, args))
    return lets + rename(body, mapping)


def depth(stmts: tuple) -> int:
    """How deeply statements nest (a flat block is 0)."""
    best = 0
    for s in stmts:
        inner = [getattr(s, f) for f in ("then", "orelse", "body") if
                 isinstance(getattr(s, f, None), tuple)]
        if inner:
            best = max(best, 1 + max(depth(b) for b in inner))
    return best
