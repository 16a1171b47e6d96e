"""What a verification run is asked to do (:class:`Options`); part of every cache key.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import attrs


@attrs.define
class Options:
    bound: int = 3
    timeout_ms: int = 5000
    cache_dir: Optional[Path] = None
    fixed_params: Optional[dict] = None
