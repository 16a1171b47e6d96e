"""Scenario errors as data: where (file, line, key), what, and a hint; one renderer."""
from __future__ import annotations

from typing import Optional

import attrs


@attrs.frozen
class ScenarioProblem:
    message: str
    key: str = ""  # dotted path of the offending key: populations[1].behaviour[0].args.price
    file: str = ""
    line: Optional[int] = None
    hint: str = ""

    def render(self) -> str:
        where = self.file or "<scenario>"
        if self.line:
            where += f":{self.line}"
        text = f"{where}: {self.key + ': ' if self.key else ''}{self.message}"
        return text + (f"\n  hint: {self.hint}" if self.hint else "")


class ScenarioError(Exception):
    """A scenario that cannot run; ``problems`` says every reason found."""

    def __init__(self, problems: list[ScenarioProblem]):
        self.problems = problems
        super().__init__(self.render())

    def render(self) -> str:
        return "\n".join(p.render() for p in self.problems)


def short(value: object, limit: int = 60) -> str:
    """A value as a message shows it: repr, cut to ``limit`` characters."""
    try:
        text = repr(value)
    except Exception:  # a hostile __repr__ from a Python API caller
        text = f"<{type(value).__name__}>"
    return text if len(text) <= limit else text[: limit - 3] + "..."
