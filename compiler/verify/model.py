"""What the encoding of one handler holds (:class:`HandlerModel`) and the symbolic state
it runs on (:class:`State`): postings, runtime money checks, splits, watched terms.
"""

from __future__ import annotations

from typing import Any, Optional, TYPE_CHECKING

import attrs
import z3

from .. import ir

if TYPE_CHECKING:
    from .encode import Encoder


@attrs.define
class Posting:
    guard: Any
    asset: str
    src: str  # human description, e.g. "balance(@poster, Credit)"
    dst: str
    amount: Any
    kind: str
    span: ir.Span
    src_key: tuple = ()  # (component name, index or None): to sum outflows of pools
    dst_key: tuple = ()


@attrs.define
class Obligation:
    """A runtime money check: ``cond`` must hold whenever ``guard`` does."""

    kind: str  # negative_amount | overdraft | escrow_overdraft | supply_cap | split_input
    guard: Any
    cond: Any
    span: ir.Span
    detail: str
    account: str = ""  # template: "balance({}, Credit)", "{}" is the rendered index
    account_kind: str = ""
    index: Any = None
    amount: Any = None


@attrs.define
class SplitInfo:
    guard: Any
    span: ir.Span
    method: str
    amount: Any  # the whole amount split
    rest: Any  # amount minus minimums: the part split by weight
    weights: list
    included: list
    recipients: list  # rendered-later Z3 terms
    shares: list
    leftover: Any
    total: Any
    n: Any
    minimum: Any
    cap: Any
    src: str
    scaled: Any = None  # raw share * total - rest * weight, as linear terms (None: not available)
    trivial: Any = None  # the split pays nothing by weight (total or rest is 0)
    # the split's own definition: when ``active`` (its path is taken and its inputs are valid,
    # which every applied event taking the path ensures) ``defs`` give its shares; what
    # follows from them alone holds in the handler (see properties._split_question)
    active: Any = None
    defs: list = attrs.Factory(list)


@attrs.define
class Watch:
    """A term shown in counterexamples: ``label`` evaluated in the model."""

    label: str
    term: Any
    type: ir.Type
    group: str  # param | arg | submitter | now | pre | slot


@attrs.define
class HandlerModel:
    handler: ir.Handler
    bound: int
    assumptions: list
    ok_explicit: Any
    ok_runtime: Any
    obligations: list
    postings: list
    splits: list
    watches: list
    pre: "State"
    post: "State"
    touched: dict  # record name -> list of key terms accessed
    args: dict  # arg name -> value
    submitter: Any
    now: Any
    params: dict
    notes: list
    encoder: "Encoder"

    @property
    def applied(self) -> Any:
        return z3.And(self.ok_explicit, self.ok_runtime)


class State:
    """Current values of state components; unknown ones are the encoder's pre-state."""

    def __init__(self, enc: "Encoder", cur: Optional[dict] = None):
        self.enc = enc
        self.cur: dict[str, Any] = dict(cur or {})

    def copy(self) -> "State":
        return State(self.enc, self.cur)

    def get(self, name: str) -> Any:
        if name in self.cur:
            return self.cur[name]
        return self.enc.pre_component(name)

    def set(self, name: str, value: Any) -> None:
        self.cur[name] = value

    def merge(self, c: Any, other: "State") -> "State":
        out = State(self.enc)
        # sorted: in hash order the terms, and so Z3's running time, would vary run to run
        for name in sorted(set(self.cur) | set(other.cur)):
            a, b = self.get(name), other.get(name)
            out.cur[name] = a if a.eq(b) else z3.If(c, a, b)
        return out
