"""Pass 2, resolve: imports, declarations and the symbol table.

Loads every imported policy (stdlib modules by name through
``importlib.resources``, or files by relative path), detects cycles, and
builds :class:`Symbols`: one table for the whole program.  Assets and roles
(and rights, which are assets) are global and merged by name — two modules
may declare the same asset only identically.  Everything else an imported
module declares (params, pools, records, handlers, properties) is namespaced
as ``alias.name``; each module keeps a :class:`ModuleScope` that maps its own
local names to those qualified names, so its handlers still read naturally.
"""
from __future__ import annotations

import difflib
import hashlib
import os
import re
from importlib import resources
from pathlib import Path
from typing import Any, Optional, Union

import attrs

from . import ast
from .diagnostics import Diagnostics, did_you_mean
from .parse import ParseFailure, parse_source
from .source import SourceError, read_source_file

STDLIB_PACKAGE = "charter.stdlib_policies"
# Longest import target accepted: far above any real path, far below what the OS refuses.
MAX_IMPORT_CHARS = 1024
_STDLIB_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*")


def stdlib_modules() -> list[str]:
    """The names ``import "NAME"`` finds in the standard library."""
    root = resources.files(STDLIB_PACKAGE)
    return sorted(p.name.removesuffix(".charter") for p in root.iterdir()
                  if p.name.endswith(".charter"))


@attrs.define
class ModuleScope:
    module: ast.Module
    prefix: str  # "" for the root module, "alias." for an import
    names: dict[str, str] = attrs.field(factory=dict)  # local name -> qualified
    aliases: dict[str, "ModuleScope"] = attrs.field(factory=dict)  # import alias -> scope
    settings: dict[str, ast.Expr] = attrs.field(factory=dict)  # template params set by importer
    settings_scope: Optional["ModuleScope"] = None

    def q(self, name: str) -> str:
        return self.names.get(name, self.prefix + name)


Decl = Union[ast.ParamDecl, ast.PoolDecl, ast.RecordDecl, ast.Handler, ast.EveryHandler,
             ast.DeadlineHandler, ast.PropertyDecl, ast.TestDecl, ast.FnDecl, ast.ProcDecl]


@attrs.define
class Symbols:
    assets: dict[str, ast.AssetDecl] = attrs.field(factory=dict)
    roles: dict[str, ast.RoleDecl] = attrs.field(factory=dict)
    params: dict[str, tuple[ast.ParamDecl, ModuleScope]] = attrs.field(factory=dict)
    pools: dict[str, tuple[ast.PoolDecl, ModuleScope]] = attrs.field(factory=dict)
    records: dict[str, tuple[ast.RecordDecl, ModuleScope]] = attrs.field(factory=dict)
    handlers: dict[str, tuple[Any, ModuleScope]] = attrs.field(factory=dict)
    properties: dict[str, tuple[ast.PropertyDecl, ModuleScope]] = attrs.field(factory=dict)
    functions: dict[str, tuple[ast.FnDecl, ModuleScope]] = attrs.field(factory=dict)
    procedures: dict[str, tuple[ast.ProcDecl, ModuleScope]] = attrs.field(factory=dict)
    tests: list[tuple[ast.TestDecl, ModuleScope]] = attrs.field(factory=list)
    scopes: list[ModuleScope] = attrs.field(factory=list)
    sources: dict[str, str] = attrs.field(factory=dict)
    root: Optional[ModuleScope] = None
    # the module that first declares each asset: a `credit PARAM` line names its parameter
    asset_scopes: dict[str, ModuleScope] = attrs.field(factory=dict)

    def source_hash(self) -> str:
        """sha256 over every source file, the same wherever the files are.

        A policy compiled as ``examples/x/policy.charter``, as an absolute path
        or from an exported bundle in another directory hashes alike (the
        journal's genesis and an AIGrid bundle's start-up check rely on it):
        files are ordered by their place relative to one another, then the
        standard library modules by name."""
        h = hashlib.sha256()
        for name in _location_free_order(self.sources):
            h.update(Path(name).name.encode() + b"\0" + self.sources[name].encode() + b"\0")
        return h.hexdigest()


def _location_free_order(names: Any) -> list[str]:
    """Source names in an order that does not depend on the working directory or on
    where the files live: files first, by path relative to their common folder (for
    absolute names this is plain sorting), then ``<stdlib>/...`` and other ``<...>``."""
    files = {n: os.path.normpath(os.path.abspath(n)) for n in names if not n.startswith("<")}
    base = os.path.commonpath([os.path.dirname(p) for p in files.values()]) if files else ""

    def key(n: str) -> tuple[int, str]:
        if n in files:
            return (0, Path(os.path.relpath(files[n], base)).as_posix())
        return (1, n)

    return sorted(names, key=key)


def strip_spans(node: Any) -> Any:
    """A span-free structural key of an AST node (for comparing declarations)."""
    if attrs.has(type(node)):
        return (type(node).__name__,) + tuple(
            strip_spans(getattr(node, f.name)) for f in attrs.fields(type(node))
            if f.name not in ("span", "end_span"))
    if isinstance(node, tuple):
        return tuple(strip_spans(n) for n in node)
    return node


def is_path_import(target: str) -> bool:
    return target.endswith(".charter") or target.startswith(".") or "/" in target


def _find_import(target: str, importer_file: str) -> tuple[Optional[str], Optional[str]]:
    """(file name, text) of an import target, or (None, None)."""
    if is_path_import(target):
        base = Path(importer_file).parent if importer_file and not importer_file.startswith("<") \
            else Path.cwd()
        try:
            path = (base / target)
            if not path.suffix:
                path = path.with_suffix(".charter")
            if path.is_file():
                return str(path), None
        except (OSError, ValueError):  # a name the OS refuses (too long, NUL, loop)
            pass
        return None, None
    if not _STDLIB_NAME.fullmatch(target):
        return None, None
    name = target.replace(".", "/")
    try:
        res = resources.files(STDLIB_PACKAGE).joinpath(f"{name}.charter")
        if res.is_file():
            return f"<stdlib>/{name}.charter", res.read_text("utf-8")
    except (OSError, ValueError):
        pass
    return None, None


def _import_not_found(target: str) -> tuple[str, str]:
    """The message and hint of an import that does not resolve."""
    if is_path_import(target):
        return (f"cannot find policy file `{target}` to import",
                "a path is relative to the importing file; a bare name like "
                "`\"gig_market\"` is looked up in the standard library")
    close = difflib.get_close_matches(target, stdlib_modules(), n=1, cutoff=0.6)
    if close:
        return (f"the standard library has no policy `{target}`",
                f"did you mean `{close[0]}`?")
    return (f"the standard library has no policy `{target}`",
            "a bare name is looked up in the standard library (" + ", ".join(stdlib_modules())
            + "); a path starting with `./` is relative to this file")


def resolve(root: ast.Module, root_text: str, diags: Diagnostics) -> Symbols:
    syms = Symbols()
    syms.sources[root.file] = root_text
    scope = ModuleScope(module=root, prefix="")
    syms.root = scope
    _load(scope, syms, diags, stack=[root.file])
    return syms


def _load(scope: ModuleScope, syms: Symbols, diags: Diagnostics, stack: list[str]) -> None:
    module = scope.module
    syms.scopes.append(scope)
    # Imports first, so the importer's own declarations can refer to them.
    for item in module.items:
        if not isinstance(item, ast.Import):
            continue
        alias = item.alias or item.target.rsplit("/", 1)[-1].removesuffix(".charter").split(".")[-1]
        if alias in scope.aliases:
            diags.error("E0202", f"import alias `{alias}` is used twice", item.span,
                        hint="give one of the imports another name with `as`")
            continue
        if len(item.target) > MAX_IMPORT_CHARS:
            diags.error("E0203", f"an import name of {len(item.target):,} characters; import "
                                 f"names are limited to {MAX_IMPORT_CHARS:,}", item.span,
                        hint="import a standard-library policy by name or a file by a "
                             "relative path")
            continue
        file, text = _find_import(item.target, module.file)
        if file is None:
            message, hint = _import_not_found(item.target)
            diags.error("E0203", message, item.span, hint=hint)
            continue
        if file in stack:
            diags.error("E0204", f"import cycle: {' -> '.join(stack + [file])}", item.span)
            continue
        if text is None:
            try:
                text = read_source_file(file)
            except SourceError as err:
                diags.items.append(err.diagnostic)
                continue
        try:
            sub = parse_source(text, file)
        except ParseFailure as err:
            syms.sources[file] = text
            diags.items.append(err.diagnostic)
            continue
        syms.sources[file] = text
        child = ModuleScope(module=sub, prefix=scope.prefix + alias + ".")
        child.settings = {a.name: a.value for a in item.settings}
        child.settings_scope = scope
        scope.aliases[alias] = child
        _load(child, syms, diags, stack + [file])
        declared = {i.name for i in sub.items if isinstance(i, ast.ParamDecl)}
        for a in item.settings:
            if a.name not in declared:
                diags.error("E0205", f"`{item.target}` has no parameter `{a.name}`", a.span,
                            hint=did_you_mean(a.name, declared) or (
                                ("its parameters: " + ", ".join(sorted(declared)))
                                if declared else "it declares no parameters"))
    for item in module.items:
        if isinstance(item, ast.Import):
            continue
        if isinstance(item, ast.AssetDecl):
            _merge_global(syms.assets, item, "asset", diags)
            syms.asset_scopes.setdefault(item.name, scope)
        elif isinstance(item, ast.RoleDecl):
            _merge_global(syms.roles, item, "role", diags)
        elif isinstance(item, ast.TestDecl):
            if scope.prefix == "":
                syms.tests.append((item, scope))
        else:
            table, what = _table_for(item, syms)
            local = _local_name(item)
            q = scope.prefix + local
            scope.names[local] = q
            if q in table or (isinstance(item, ast.PoolDecl) and q in syms.params) or (
                    isinstance(item, ast.ParamDecl) and q in syms.pools):
                code = "E0502" if what == "handler" else "E0202"
                diags.error(code, f"{what} `{local}` is declared twice", item.span,
                            notes=_previous(table.get(q)))
                continue
            table[q] = (item, scope)


def _previous(entry: Any) -> tuple[str, ...]:
    if entry is None:
        return ()
    decl = entry[0]
    return (f"first declared at {decl.span}",)


def _local_name(item: Any) -> str:
    return item.name if not isinstance(item, ast.DeadlineHandler) else \
        f"{item.record}.{item.field}.passes"


def _table_for(item: Any, syms: Symbols) -> tuple[dict, str]:
    if isinstance(item, ast.ParamDecl):
        return syms.params, "parameter"
    if isinstance(item, ast.PoolDecl):
        return syms.pools, item.kind
    if isinstance(item, ast.RecordDecl):
        return syms.records, "record"
    if isinstance(item, (ast.Handler, ast.EveryHandler, ast.DeadlineHandler)):
        return syms.handlers, "handler"
    if isinstance(item, ast.PropertyDecl):
        return syms.properties, "property"
    if isinstance(item, ast.FnDecl):
        return syms.functions, "function"
    if isinstance(item, ast.ProcDecl):
        return syms.procedures, "procedure"
    raise AssertionError(item)


def _merge_global(table: dict, item: Any, what: str, diags: Diagnostics) -> None:
    prev = table.get(item.name)
    if prev is None:
        table[item.name] = item
        return
    if strip_spans(prev) != strip_spans(item):
        diags.error("E0206", f"{what} `{item.name}` is declared differently in two places",
                    item.span, notes=(f"the other declaration is at {prev.span}",),
                    hint=f"an imported policy shares {what}s by name: declare `{item.name}` "
                         "identically, or rename one")
    elif prev.span.file == item.span.file:
        diags.error("E0202", f"{what} `{item.name}` is declared twice", item.span,
                    notes=(f"first declared at {prev.span}",))
