"""The parser's table cache (compiler/parse_tables.py): a good entry is used, anything else
(missing, truncated, damaged, another grammar's, code in it, a directory that cannot be written)
means building the tables from the grammar: never a traceback, never another grammar's parser.

Every case checks the parser it gets against one built from the grammar, on every stdlib
policy and example (same Lark tree), and, in a fresh ``charter check`` process, that the
command still succeeds silently."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
from pathlib import Path

import pytest
from lark import Lark

from charter.compiler import parse, parse_tables

ROOT = Path(__file__).resolve().parents[2]
SOURCES = sorted(ROOT.glob("stdlib_policies/*.charter")) + sorted(ROOT.glob("examples/*/*.charter"))
CALLBACKS = {"COMMENT": parse._on_comment}


@pytest.fixture(scope="module")
def built() -> Lark:
    """The parser built from the grammar, no cache involved."""
    return Lark(parse.grammar_text(), lexer_callbacks=CALLBACKS, **parse.PARSER_OPTIONS)


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("CHARTER_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


def _entry() -> Path:
    path = parse_tables.cache_file(parse_tables.key(parse.grammar_text(), parse.PARSER_OPTIONS))
    assert path is not None
    return path


def _load() -> Lark:
    return parse_tables.load(parse.grammar_text(), parse.PARSER_OPTIONS, CALLBACKS)


def _same_parses(parser: Lark, built: Lark) -> None:
    assert len(SOURCES) > 20
    for src in SOURCES:
        text = src.read_text("utf-8")
        assert parser.parse(text) == built.parse(text), src


def _good_entry() -> bytes:
    _load()
    return _entry().read_bytes()


def _flip(blob: bytes) -> bytes:
    i = len(blob) // 2
    return blob[:i] + bytes([blob[i] ^ 0x01]) + blob[i + 1:]


def _foreign(blob: bytes) -> bytes:
    """A good entry for another grammar, under this grammar's file name."""
    other = parse.grammar_text() + "\n// another grammar\n"
    parse_tables.load(other, parse.PARSER_OPTIONS, CALLBACKS)
    return parse_tables.cache_file(parse_tables.key(other, parse.PARSER_OPTIONS)).read_bytes()


def _with_code(blob: bytes) -> bytes:
    """A well-formed entry (right key, right digest) whose payload would run code."""
    header = blob.partition(b"\n")[0]
    fmt, k, _ = header.split(b" ")
    payload = pickle.dumps(os.system)  # unpickling it would look up a global
    import hashlib

    return b"%s %s %s\n" % (fmt, k, hashlib.sha256(payload).hexdigest().encode()) + payload


BAD_ENTRIES = [
    ("empty", lambda b: b""),
    ("truncated", lambda b: b[: len(b) // 2]),
    ("header only", lambda b: b.partition(b"\n")[0]),
    ("one bit flipped", _flip),
    ("garbage", lambda b: bytes(range(256)) * 16),
    ("another grammar's", _foreign),
    ("code in the payload", _with_code),
]


def test_the_first_process_builds_and_saves_the_next_ones_load(cache, built):
    assert not cache.exists()
    first = _load()
    entry = _entry()
    assert entry.is_file() and entry.parent == cache
    blob = entry.read_bytes()
    k = parse_tables.key(parse.grammar_text(), parse.PARSER_OPTIONS)
    loaded = parse_tables._decode(k, blob, CALLBACKS)  # the entry itself decodes
    second = _load()
    assert entry.read_bytes() == blob  # a hit does not rewrite it
    _same_parses(first, built)
    _same_parses(loaded, built)
    _same_parses(second, built)


def test_the_loaded_parser_still_collects_comments(cache):
    _load()
    parse._parser.cache_clear()
    try:
        mod = parse.parse_source("# top\npolicy p version \"1\"\n")
    finally:
        parse._parser.cache_clear()
    assert [c.text for c in mod.comments] == ["# top"]


def test_the_key_follows_grammar_lark_and_options():
    g, o = parse.grammar_text(), parse.PARSER_OPTIONS
    keys = {
        parse_tables.key(g, o),
        parse_tables.key(g + " ", o),
        parse_tables.key(g, {**o, "maybe_placeholders": False}),
    }
    assert len(keys) == 3


@pytest.mark.parametrize("name,bad", BAD_ENTRIES, ids=[n for n, _ in BAD_ENTRIES])
def test_a_bad_entry_is_rebuilt_never_used(cache, built, name, bad):
    blob = bad(_good_entry())
    _entry().write_bytes(blob)
    k = parse_tables.key(parse.grammar_text(), parse.PARSER_OPTIONS)
    with pytest.raises(Exception):
        parse_tables._decode(k, blob, CALLBACKS)
    _same_parses(_load(), built)
    # and it was replaced by a good one
    parse_tables._decode(k, _entry().read_bytes(), CALLBACKS)


def test_code_in_an_entry_never_runs(cache, tmp_path):
    marker = tmp_path / "ran"
    payload = pickle.dumps(_Touch(str(marker)))
    header = _good_entry().partition(b"\n")[0].split(b" ")
    import hashlib

    _entry().write_bytes(b"%s %s %s\n" % (header[0], header[1],
                                          hashlib.sha256(payload).hexdigest().encode()) + payload)
    _load()
    assert not marker.exists()


class _Touch:
    def __init__(self, path: str):
        self.path = path

    def __reduce__(self):
        return (Path.touch, (Path(self.path),))


def test_a_cache_directory_that_cannot_be_written_only_costs_the_build(tmp_path, monkeypatch,
                                                                      built):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    monkeypatch.setenv("CHARTER_CACHE_DIR", str(blocker / "cache"))
    _same_parses(_load(), built)
    assert blocker.read_text() == "not a directory"
    assert list(tmp_path.iterdir()) == [blocker]  # no temporary file left behind
    if os.geteuid() != 0:  # root writes anywhere
        ro = tmp_path / "ro"
        ro.mkdir(mode=0o500)
        monkeypatch.setenv("CHARTER_CACHE_DIR", str(ro))
        _same_parses(_load(), built)
        assert list(ro.iterdir()) == []


def _check(env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "charter.cli", "check", str(ROOT / "stdlib_policies")],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=300,
    )


@pytest.mark.parametrize("name,bad", BAD_ENTRIES[:4] + BAD_ENTRIES[5:],
                         ids=[n for n, _ in BAD_ENTRIES[:4] + BAD_ENTRIES[5:]])
def test_charter_check_with_a_bad_entry_succeeds_silently(cache, tmp_path, name, bad):
    blob = bad(_good_entry())
    _entry().write_bytes(blob)
    r = _check({**os.environ, "CHARTER_CACHE_DIR": str(cache)}, tmp_path)
    assert r.returncode == 0 and r.stderr == "", r.stderr[-2000:]
    assert r.stdout.startswith("ok:")


def test_charter_check_with_a_home_it_cannot_write(tmp_path):
    blocker = tmp_path / "home"
    blocker.write_text("")
    env = {k: v for k, v in os.environ.items() if k not in ("CHARTER_CACHE_DIR", "XDG_CACHE_HOME")}
    r = _check({**env, "HOME": str(blocker)}, tmp_path)
    assert r.returncode == 0 and r.stderr == "", r.stderr[-2000:]
    assert r.stdout.startswith("ok:")


def test_writing_an_entry_removes_other_old_entries_only(cache):
    cache.mkdir(parents=True)
    old, recent, other = (cache / "lark-old.tables", cache / "lark-recent.tables",
                          cache / "results.json")
    stale_tmp = cache / "lark-x.tables.tmp123-456"
    for f in (old, recent, other, stale_tmp):
        f.write_bytes(b"x")
    forty_days = 40 * 86400
    for f in (old, other, stale_tmp):
        st = f.stat()
        os.utime(f, (st.st_atime - forty_days, st.st_mtime - forty_days))
    _load()
    assert _entry().is_file()
    assert not old.exists() and not stale_tmp.exists()
    assert recent.exists() and other.exists()  # recent, or not ours: kept
