"""What a verification run is asked to do (:class:`Options`); part of every cache key."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import attrs

from .solver import DEFAULT_RLIMIT, DEFAULT_TIMEOUT_MS, Limits


@attrs.define
class Options:
    bound: int = 3
    # Z3 resource units per query: decides every verdict (the same on any machine)
    rlimit: int = DEFAULT_RLIMIT
    # wall-clock safety net per query, in ms: a query it stops is reported as machine-dependent
    timeout_ms: int = DEFAULT_TIMEOUT_MS
    cache_dir: Optional[Path] = None
    fixed_params: Optional[dict] = None

    @property
    def limits(self) -> Limits:
        return Limits(self.rlimit, self.timeout_ms)

    def limit_text(self) -> str:
        """How the limit that makes a check *unknown* is described in results."""
        return f"the resource limit (rlimit {self.rlimit:,} per query)"
