"""The outcome of a check (:class:`Result`), the five statuses, exit codes and summaries.
"""

from __future__ import annotations

from typing import Optional

import attrs

from .. import ir


PROVED, REFUTED, UNKNOWN, GUARD, VACUOUS = (
    "proved",
    "refuted",
    "unknown",
    "guard_missing",
    "vacuous",
)
# a risk the policy takes on purpose or by accident (an uncapped mintable asset): not a
# counterexample, never green; ``--strict`` fails on it
WARNING = "warning"


@attrs.define
class Result:
    name: str  # property name: "handler.kind" for built-ins, the declared name otherwise
    kind: str
    handler: Optional[str]
    status: str
    message: str
    span: ir.Span = ir.NOSPAN
    bound: int = 3
    bounded: bool = False
    counterexample: Optional[dict] = None
    seconds: float = 0.0
    cached: bool = False
    # check-specific data for reports (the authorisation check's "who can move whose money"
    # rows); never part of the verdict
    details: Optional[dict] = None

    def to_dict(self) -> dict:
        d = attrs.asdict(self, recurse=False)
        d["span"] = attrs.asdict(self.span)
        return d

    @staticmethod
    def from_dict(d: dict) -> "Result":
        d = dict(d)
        d["span"] = ir.Span(**d["span"])
        return Result(**d)


def exit_code(results: list[Result], strict: bool = False) -> int:
    bad = {REFUTED} | ({GUARD, VACUOUS, WARNING} if strict else set())
    return 1 if any(r.status in bad for r in results) else 0


def summary(results: list[Result]) -> dict[str, int]:
    out = {k: 0 for k in (PROVED, REFUTED, GUARD, UNKNOWN, VACUOUS, WARNING)}
    for r in results:
        out[r.status] = out.get(r.status, 0) + 1
    return out
