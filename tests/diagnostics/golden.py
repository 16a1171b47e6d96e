"""Golden diagnostics: one failing policy per error code, its rendered text checked in.

``cases/<CODE>_<slug>.charter`` is compiled from inside ``cases/`` (so file
names in the output are short and stable) and rendered with
:func:`charter.compiler.diagnostics.render_text`; the result must equal
``cases/<CODE>_<slug>.expected``.  Inputs that cannot be checked in as a file
(a missing file, a file over the size limit) are made by :data:`SYNTHETIC`.
Goldens are regenerated with ``python tests/diagnostics/regen.py`` and reviewed
in the diff, never typed by hand.
"""
from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

from charter.compiler.diagnostics import Diagnostic, render_text
from charter.compiler.pipeline import Compilation

CASES = Path(__file__).resolve().parent / "cases"


def _too_large(path: Path) -> None:
    pad = "# padding to push the file over the size limit\n"
    path.write_text('policy big version "1.0"\n' + pad * (2_000_000 // len(pad) + 1),
                    encoding="utf-8")


# name -> how to create the input in an empty directory (None: leave it missing)
SYNTHETIC: dict[str, Callable[[Path], None] | None] = {
    "E0001_missing_file": None,
    "E0003_too_large": _too_large,
}

# Codes in diagnostics.CODES that no compiler pass emits yet (checked against the
# compiler's source by the tests, so this list cannot silently go stale).
NOT_EMITTED: dict[str, str] = {}


def case_names() -> list[str]:
    names = {p.stem for p in CASES.glob("*.charter")} | set(SYNTHETIC)
    return sorted(names)


def code_of(name: str) -> str:
    return name.split("_", 1)[0]


@contextmanager
def _inside(directory: Path) -> Iterator[None]:
    old = os.getcwd()
    os.chdir(directory)
    try:
        yield
    finally:
        os.chdir(old)


def run_case(name: str) -> tuple[list[Diagnostic], str]:
    """The diagnostics of a case and their rendered text."""
    file = f"{name}.charter"
    if name in SYNTHETIC:
        with tempfile.TemporaryDirectory() as tmp:
            make = SYNTHETIC[name]
            if make is not None:
                make(Path(tmp) / file)
            with _inside(Path(tmp)):
                c = Compilation.from_path(file)
                diags = c.diagnostics
                return diags, render_text(diags, c.sources)
    with _inside(CASES):
        c = Compilation.from_path(file)
        diags = c.diagnostics
        return diags, render_text(diags, c.sources)


def expected_path(name: str) -> Path:
    return CASES / f"{name}.expected"
