"""The parser's LALR tables: built once per grammar, then loaded from the user's cache directory.

Building Lark's LALR(1) tables for ``charter.lark`` costs ~0.25 s CPU in every process that
parses (``charter check``, ``verify``, ``run`` of a policy file, each LSP start); loading them
costs ~0.04 s.  So the first process saves them (``Lark.save``) under
``user_cache_dir("parser")`` and later ones load them.

A cache file is used only when everything about it checks out, else the tables are built from
the grammar as if there were no cache (and the file is written again): never a traceback, never
a parser for another grammar.

* its name and its header carry :func:`key`, a SHA-256 of the grammar text, the Lark version,
  the Python version and the options (a changed grammar or an upgraded Lark is another file);
* the header also carries the SHA-256 of the payload, so a truncated or damaged file is
  refused before it is decoded;
* the payload is unpickled with globals refused: only plain data (dicts, lists, strings,
  numbers) can come out of it, no code from the file runs (the lexer callbacks are code and are
  never saved: they are passed again on every load);
* it is written to a temporary name and renamed, so a concurrent reader sees a whole file or
  none; a directory that cannot be written (read-only home, no home) only costs the build;
* writing an entry removes the other entries (other grammars, Lark versions) written more
  than 30 days ago, so grammar edits do not pile up files.
"""

from __future__ import annotations

import hashlib
import io
import pickle
import sys
from pathlib import Path
from typing import Any, Callable, Optional

import lark
from lark import Lark

from charter.dirs import prune, user_cache_dir, write_atomically

FORMAT = b"charter-lark-tables-1"


def key(grammar: str, options: dict[str, Any]) -> str:
    """What the tables depend on: the grammar, Lark, Python and the (non-code) options."""
    opts = ";".join(f"{k}={options[k]!r}" for k in sorted(options))
    blob = "\0".join([grammar, lark.__version__, "%d.%d" % sys.version_info[:2], opts])
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def cache_file(k: str) -> Optional[Path]:
    """Where the tables of key ``k`` live; None when there is no cache directory."""
    try:
        return user_cache_dir("parser") / f"lark-{k[:32]}.tables"
    except RuntimeError:  # no home directory
        return None


class _PlainData(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:  # noqa: ARG002
        raise pickle.UnpicklingError(f"a parser cache holds plain data only, not {module}.{name}")


def _encode(k: str, parser: Lark) -> bytes:
    buf = io.BytesIO()
    parser.save(buf, exclude_options=("lexer_callbacks",))
    payload = buf.getvalue()
    digest = hashlib.sha256(payload).hexdigest()
    return b"%s %s %s\n" % (FORMAT, k.encode(), digest.encode()) + payload


def _decode(k: str, blob: bytes, callbacks: dict[str, Callable]) -> Lark:
    """The parser saved in ``blob``; any exception means: not usable, build instead."""
    header, _, payload = blob.partition(b"\n")
    fmt, file_key, digest = header.split(b" ")
    if fmt != FORMAT or file_key != k.encode():
        raise ValueError("a parser cache of another format or grammar")
    if hashlib.sha256(payload).hexdigest().encode() != digest:
        raise ValueError("a damaged parser cache")
    saved = _PlainData(io.BytesIO(payload)).load()
    return Lark._load_from_dict(saved["data"], saved["memo"], lexer_callbacks=callbacks)


def load(grammar: str, options: dict[str, Any], callbacks: dict[str, Callable]) -> Lark:
    """A Lark LALR parser for ``grammar`` with ``options`` (no code in them) and the lexer
    ``callbacks``: loaded from the cache when a good entry is there, else built and saved."""
    k = key(grammar, options)
    path = cache_file(k)
    if path is not None:
        try:
            return _decode(k, path.read_bytes(), callbacks)
        except Exception:  # noqa: BLE001 - missing, unreadable, damaged, foreign: build it
            pass
    parser = Lark(grammar, lexer_callbacks=callbacks, **options)
    if path is not None:
        try:
            blob = _encode(k, parser)
        except Exception:  # noqa: BLE001 - a Lark that cannot save: just no cache
            return parser
        if write_atomically(path, blob):
            prune(path.parent, "lark-*.tables*", keep=path)
    return parser
