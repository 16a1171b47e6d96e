"""Where Charter keeps files of its own: the user's cache directory.

One place for it, imported by the parser's table cache (:mod:`charter.compiler.parse_tables`)
and the verifier's result cache (:mod:`charter.compiler.verify.cache`).  Standard library only:
importing it must not load Lark or Z3 (``charter check``, ``charter run`` and ``--version``
stay cheap).
"""

from __future__ import annotations

import os
import sys
import threading
import time
from pathlib import Path


def user_cache_dir(kind: str) -> Path:
    """The directory for cache ``kind`` (``"verify"``, ``"parser"``): the user's cache directory
    as each platform defines it (what ``platformdirs.user_cache_dir("charter")`` returns) plus
    ``kind``, never the current directory.  ``$CHARTER_CACHE_DIR`` overrides it for every kind
    (CI, tests; the kinds' files have different names).  Raises ``RuntimeError`` when there is
    no home directory to put it in."""
    env = os.environ.get("CHARTER_CACHE_DIR")
    if env:
        return Path(env)
    if sys.platform == "win32":
        base = os.environ.get("LOCALAPPDATA") or str(Path.home() / "AppData" / "Local")
        return Path(base) / "charter" / "Cache" / kind
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Caches" / "charter" / kind
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    # the XDG spec: a relative XDG_CACHE_HOME is invalid and must be ignored
    base = Path(xdg) if xdg and Path(xdg).is_absolute() else Path.home() / ".cache"
    return base / "charter" / kind


def write_atomically(path: Path, data: bytes) -> bool:
    """Write ``data`` to ``path`` (its directory made if needed) so that a reader sees the old
    file or the whole new one, never a part (several processes may write the same entry).
    False, and nothing left behind, when it cannot be written (read-only home, disk full):
    a cache that cannot be written only costs time."""
    tmp = path.with_name(f"{path.name}.tmp{os.getpid()}-{threading.get_ident()}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_bytes(data)
        tmp.replace(path)
        return True
    except OSError:
        try:
            tmp.unlink()
        except OSError:
            pass
        return False


def prune(directory: Path, pattern: str, keep: Path, days: float = 30) -> None:
    """Remove the files matching ``pattern`` in ``directory``, other than ``keep``, written more
    than ``days`` ago (entries of grammars or versions no longer in use, temporary files a
    crash left).  An entry still in use is only rebuilt and written again."""
    cutoff = time.time() - days * 86400
    try:
        old = [f for f in directory.glob(pattern) if f != keep and f.stat().st_mtime < cutoff]
    except OSError:
        return
    for f in old:
        try:
            f.unlink()
        except OSError:
            pass
