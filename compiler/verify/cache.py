"""Result caching: keys hash the IR, the options, the verifier's own code and Z3's version,
so a changed encoding never reuses stale results.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any, Optional

import z3

from charter.dirs import user_cache_dir as _user_cache_dir

from .. import ir
from .options import Options
from .result import Result


VERSION = "verify-2"


def _engine_fingerprint() -> str:
    """Hash of the verifier's own code: a changed encoding must never reuse cached results."""
    h = hashlib.sha256(VERSION.encode())
    for path in sorted(Path(__file__).parent.glob("*.py")):
        try:
            h.update(path.name.encode() + b"\0" + path.read_bytes())
        except OSError:
            pass
    return h.hexdigest()[:16]


ENGINE = _engine_fingerprint()


def user_cache_dir() -> Path:
    """Where results are cached unless ``--cache-dir`` says otherwise: the user's cache
    directory (:func:`charter.dirs.user_cache_dir`), never the current directory.
    ``CHARTER_CACHE_DIR`` overrides it (CI, tests)."""
    return _user_cache_dir("verify")


def _cache_dir(opts: Options) -> Optional[Path]:
    if opts.cache_dir is not None:
        return Path(opts.cache_dir)
    try:
        return user_cache_dir()
    except RuntimeError:  # no home directory to put it in: run without a cache
        return None


def cache_key(policy: ir.Policy, opts: Options) -> str:
    """Hash of everything the results depend on: the IR (without tests) and the options."""
    data = ir.to_data(policy)
    data.pop("tests", None)
    data.pop("source_hash", None)
    return _hash({"ir": data}, opts)


def _cache_load(opts: Options, key: str) -> Optional[list[Result]]:
    d = _cache_dir(opts)
    if d is None:
        return None
    f = d / f"{key}.json"
    try:
        data = json.loads(f.read_text())
        out = [Result.from_dict(x) for x in data]
    except (OSError, ValueError, TypeError, KeyError):
        return None
    for r in out:
        r.cached = True
    return out


def _cache_store(opts: Options, key: str, results: list[Result]) -> None:
    d = _cache_dir(opts)
    if d is None:
        return
    try:
        d.mkdir(parents=True, exist_ok=True)
        tmp = d / f"{key}.tmp{os.getpid()}"
        tmp.write_text(json.dumps([r.to_dict() for r in results], default=str))
        tmp.replace(d / f"{key}.json")
    except OSError:
        pass  # a cache that cannot be written only costs time


def _hash(obj: Any, opts: Options) -> str:
    blob = json.dumps(
        {
            "data": obj,
            "bound": opts.bound,
            # the resource limit decides verdicts; the wall-clock safety net does not (a run
            # it interrupted is never cached)
            "rlimit": opts.rlimit,
            "fixed": {k: str(v) for k, v in (opts.fixed_params or {}).items()},
            "version": ENGINE,
            "z3": z3.get_version_string(),
        },
        sort_keys=True,
        default=str,
    )
    return hashlib.sha256(blob.encode()).hexdigest()


def _decls(policy: ir.Policy) -> dict:
    d = ir.to_data(policy)
    return {k: d[k] for k in ("assets", "roles", "params", "pools", "records")}
