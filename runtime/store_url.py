"""Which store a ``--db`` names: store URLs, parsed once for every entry point.

=================================  ==========================================
``ledger.sqlite``, ``/a/b.db``     a SQLite ledger file (a plain path)
``sqlite:///ledger.sqlite``        the same, relative to the working directory
``sqlite:////var/lib/x.sqlite``    an absolute path (four slashes, as in
                                   SQLAlchemy)
``:memory:``                       an in-memory ledger (nothing persists)
``postgresql://user:pw@host:5432/db?schema=NAME``
                                   a PostgreSQL ledger (``postgres://`` too):
                                   any libpq URL; ``schema`` (default
                                   ``charter``) names the ledger within the
                                   database, so one database holds many
=================================  ==========================================

Errors are :class:`~charter.runtime.store.StoreError` with one line that
names the store with its password replaced by ``***`` (:func:`redact`).
"""

from __future__ import annotations

import os
import re
from typing import Any, NamedTuple, Optional
from urllib.parse import parse_qsl, unquote, urlsplit

from .store import StoreError

PG_SCHEMES = ("postgresql", "postgres")
_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*):")


class StoreSpec(NamedTuple):
    kind: str  # "memory", "sqlite" or "postgresql"
    target: str  # the SQLite path, or the libpq URL without ``schema``
    schema: Optional[str] = None
    shown: str = ""  # how messages name the store (no password)
    secret: Optional[str] = None  # the password, so that no message repeats it


def redact(url: str) -> str:
    """``url`` with any password (in the authority or a ``password=`` parameter) as ``***``;
    everything else exactly as written."""
    out = url
    try:
        pw = urlsplit(url).password
    except ValueError:
        pw = None
        out = re.sub(r"//[^/@]*@", "//***@", out)
    if pw:
        out = out.replace(f":{pw}@", ":***@", 1)
    return re.sub(r"(?i)([?&]password=)[^&#]*", r"\1***", out)


def is_url(text: str) -> bool:
    """Does ``text`` name a store by URL (rather than being a plain SQLite path)?"""
    m = _SCHEME.match(text)
    return bool(m) and (text[m.end() :].startswith("//") or m.group(1).lower() == "sqlite")


def parse(text: Any) -> StoreSpec:
    """What a ``--db`` value names (see the module docstring)."""
    if isinstance(text, os.PathLike):
        return StoreSpec("sqlite", os.fspath(text), shown=os.fspath(text))
    if not isinstance(text, str) or not text:
        raise StoreError(f"a store is a path or a URL, got {text!r:.80}")
    if "\x00" in text:
        raise StoreError("a store path or URL cannot contain a NUL character")
    if text == ":memory:":
        return StoreSpec("memory", text, shown=text)
    if not is_url(text):
        return StoreSpec("sqlite", text, shown=text)
    scheme = text.split(":", 1)[0].lower()
    if scheme == "sqlite":
        rest = text.split(":", 1)[1]
        if rest in ("", "//", "///"):
            raise StoreError(f"{text}: the SQLite URL names no file (sqlite:///ledger.sqlite)")
        if rest == "//:memory:" or rest == "///:memory:" or rest == ":memory:":
            return StoreSpec("memory", ":memory:", shown=text)
        if not rest.startswith("///"):
            raise StoreError(
                f"{redact(text)}: a SQLite URL is sqlite:///relative/path or "
                "sqlite:////absolute/path (no host)"
            )
        path = unquote(rest[3:])
        return StoreSpec("sqlite", path, shown=text)
    if scheme in PG_SCHEMES:
        return _parse_pg(text)
    raise StoreError(
        f"{redact(text)}: unknown store scheme {scheme!r} (use a path, sqlite:///PATH or "
        "postgresql://USER@HOST/DB)"
    )


def _parse_pg(text: str) -> StoreSpec:
    shown = redact(text)
    try:
        parts = urlsplit(text)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError as exc:
        raise StoreError(f"{shown}: not a valid PostgreSQL URL ({exc})") from None
    pairs = parse_qsl(parts.query, keep_blank_values=True)
    schemas = [v for k, v in pairs if k == "schema"]
    if len(schemas) > 1:
        raise StoreError(f"{shown}: 'schema' given twice")
    schema = schemas[0] if schemas else None
    secret = parts.password or next((v for k, v in pairs if k.lower() == "password"), None)
    # the URL as written, less the ``schema`` parameter (libpq does not know it)
    base, _, query = text.partition("?")
    query = query.partition("#")[0]
    kept = [p for p in query.split("&") if p and unquote(p.partition("=")[0]) != "schema"]
    url = base + ("?" + "&".join(kept) if kept else "")
    try:
        from psycopg.conninfo import conninfo_to_dict
    except ImportError:
        raise StoreError(
            f"{shown}: PostgreSQL ledgers need psycopg 3: pip install 'charter-policy[postgres]'"
        ) from None
    try:
        conninfo_to_dict(url)
    except Exception as exc:  # noqa: BLE001 - libpq's own parser: any failure means a bad URL
        why = " ".join(str(exc).split())
        if secret:
            why = why.replace(secret, "***")
        raise StoreError(f"{shown}: not a valid PostgreSQL URL ({why[:200]})") from None
    from .postgres_store import DEFAULT_SCHEMA

    return StoreSpec("postgresql", url, schema or DEFAULT_SCHEMA, shown, secret)


def open_store(
    store: Any,
    *,
    batch: int = 1,
    synchronous: str = "FULL",
    create: bool = True,
    readonly: bool = False,
    wait: float = 0.0,
    check_state: bool = True,
) -> Any:
    """The store ``store`` names (a path, a URL, or a store object, returned as it is).
    ``check_state=False`` (read-only): the open-time check leaves out the state digest."""
    if not isinstance(store, (str, os.PathLike)):
        return store
    spec = parse(store)
    if spec.kind == "memory":
        from .store import MemoryStore

        return MemoryStore()
    if spec.kind == "sqlite":
        from .sqlite_store import SqliteStore

        return SqliteStore(
            spec.target, batch=batch, synchronous=synchronous, create=create,
            readonly=readonly, wait=wait, check_state=check_state,
        )  # fmt: skip
    from .postgres_store import PostgresStore

    return PostgresStore(
        spec.target, schema=spec.schema or "charter", where=spec.shown, secret=spec.secret,
        batch=batch, create=create, readonly=readonly, check_state=check_state,
    )  # fmt: skip
