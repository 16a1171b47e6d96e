"""Reading policy files: size, encoding and emptiness checks with located errors.

Every command that reads a ``.charter`` file goes through :func:`read_source_file`,
so a binary, non-UTF-8, empty or oversized file gets the same clear diagnostic
everywhere instead of a traceback.
"""
from __future__ import annotations

from pathlib import Path

from .diagnostics import Diagnostic
from .ir import Span

MAX_BYTES = 2_000_000


class SourceError(Exception):
    """A file that cannot be used as policy source; carries its diagnostic."""

    def __init__(self, diagnostic: Diagnostic, io_error: bool = False):
        super().__init__(diagnostic.message)
        self.diagnostic = diagnostic
        self.io_error = io_error  # True: the file could not be read at all (exit 2)


def _at(file: str) -> Span:
    return Span(file=file, line=1, col=1, end_line=1, end_col=1)


def decode_source(data: bytes, file: str) -> str:
    if len(data) > MAX_BYTES:
        raise SourceError(Diagnostic(
            "E0003", f"the file is {len(data):,} bytes; policies are limited to {MAX_BYTES:,}",
            _at(file), hint="split the policy into modules and `import` them"))
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        col = err.start - (data.rfind(b"\n", 0, err.start) + 1) + 1
        raise SourceError(Diagnostic(
            "E0002", f"the file is not UTF-8 text (byte 0x{data[err.start]:02x} at offset "
                     f"{err.start})", Span(file=file, line=line, col=col, end_line=line,
                                           end_col=col + 1),
            hint="save the policy as UTF-8")) from None
    if text.startswith("\ufeff"):
        text = text[1:]
    return text


def read_source_file(path: str | Path) -> str:
    file = str(path)
    try:
        data = Path(path).read_bytes()
    except IsADirectoryError:
        raise SourceError(Diagnostic("E0001", f"{file} is a directory", _at(file)),
                          io_error=True) from None
    except OSError as err:
        raise SourceError(Diagnostic("E0001", f"cannot read {file}: {err.strerror or err}",
                                     _at(file)), io_error=True) from None
    return decode_source(data, file)


def check_text(text: str, file: str) -> None:
    """Policy text handed over as a ``str`` (an editor buffer, the API) must be real
    Unicode and within the size limit; a lone surrogate (JSON can carry ``"\\ud800"``)
    would otherwise break every later stage that encodes the text."""
    try:
        data = text.encode("utf-8")
    except UnicodeEncodeError as err:
        line = text.count("\n", 0, err.start) + 1
        col = err.start - (text.rfind("\n", 0, err.start) + 1) + 1
        raise SourceError(Diagnostic(
            "E0002", f"the text is not valid Unicode: a lone surrogate "
                     f"U+{ord(text[err.start]):04X} at line {line}, column {col}",
            Span(file=file, line=line, col=col, end_line=line, end_col=col + 1),
            hint="save the policy as UTF-8")) from None
    if len(data) > MAX_BYTES:
        decode_source(data, file)  # raises the size diagnostic

