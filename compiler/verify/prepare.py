"""One handler's encoding plus the invariant terms it assumes before and proves after.
"""

from __future__ import annotations

from typing import Optional

import attrs
import z3

from .. import ir
from .encode import Encoder
from .invariants import _inv_terms, _inv_terms_at, Inv
from .model import HandlerModel
from .options import Options
from .terms import Unsupported


@attrs.define
class Prepared:
    """A handler's model plus invariant terms (pre: assumed; post: to prove)."""

    model: Optional[HandlerModel]
    error: Optional[str]
    inv_pre: dict = attrs.Factory(dict)  # name -> list of Z3 terms (touched keys + generic key)
    inv_post: dict = attrs.Factory(dict)  # name -> Z3 term at the generic key (or global)
    extra_assumptions: list = attrs.Factory(list)


@attrs.frozen
class Scope:
    """What each policy-wide check (a ``policy`` row of :mod:`.catalogue`) is given: the
    policy, every handler's encoding, the invariant terms each handler may assume, the
    options and the invariants proved.  One argument, so the checks share one signature."""

    policy: ir.Policy
    preps: dict  # handler name -> Prepared
    assume: dict  # handler name -> Z3 terms of the proved invariants before the event
    opts: Options
    invs: list  # the proved invariants (Inv)


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
            terms = _inv_terms_at(m, inv, m.pre, keys, generic, post=m.post)
            prep.inv_pre[inv.name], prep.inv_post[inv.name] = terms[:-1], terms[-1]
        # keys the invariants mention (the generic key) are subject to the collection bound too
        prep.extra_assumptions = enc.finish_reads(n_reads) + enc.closed_world(
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
