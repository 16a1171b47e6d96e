"""Fuzzing the front end: whatever the input, only Charter's own located errors.

Random bytes, token soup from the grammar's keywords, mutated standard-library
policies, grammar-generated policies (which parse but mostly do not type-check),
pathological nesting and chains, non-UTF-8 and binary data, and a 5 MB file all
go through the whole front end (read -> parse -> resolve -> typecheck -> lower)
and the formatter.  The only acceptable failures are diagnostics with a
registered code and a real location; any other exception fails the test.
"""
from __future__ import annotations

import random
import re
import sys
import traceback
from importlib import resources
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, reject, settings
from hypothesis import strategies as st

from charter.compiler.diagnostics import CODES, CharterError, Diagnostic, render_text
from charter.compiler.fmt import format_verified
from charter.compiler.parse import ParseFailure, grammar_text
from charter.compiler.pipeline import Compilation
from charter.compiler.source import SourceError, decode_source

sys.path.insert(0, str(Path(__file__).resolve().parent / "fmt"))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from policy_fuzz import check as check_compiled, make_input  # noqa: E402
from policy_gen import PolicyGen  # noqa: E402
from charter.runtime.pygen import BACKENDS, compile_policy  # noqa: E402

FILE = "fuzz.charter"
FUZZ = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _located(d: Diagnostic) -> None:
    assert d.code in CODES, d
    assert d.message, d
    assert d.span.line >= 1 and d.span.col >= 1, d
    assert d.span.end_line >= d.span.line, d


# Crashes already reported to the compiler's owner: (module, function) -> minimal input.
# Fuzz examples that hit one are discarded (so the fuzzers keep looking for new ones);
# test_known_crash_still_reproduces fails as soon as one is fixed, to retire the entry.
KNOWN_CRASHES: dict[tuple[str, str], str] = {}

# Inputs that once crashed the compiler: each must now give diagnostics only.
_H = 'policy p version "1"\nasset Credit: token, decimals 2\nrecord Task { open: bool }\n'
FIXED_CRASHES = [
    'policy p version "1"\nrecord R { f: int within none * 2..5 }\n',
    # literals past Python's int/str conversion limit (4,300 digits)
    _H + "param x: int = " + "9" * 5000 + "\n",
    _H + "param x: ratio = " + "9" * 5000 + "%\n",
    _H + "param x: Credit = " + "9" * 5000 + " Credit\n",
    _H + "param x: ratio = 0." + "9" * 5000 + "\n",
    'policy p version "1"\nasset Credit: token, decimals ' + "9" * 5000 + "\n",
    # import names the operating system refuses (ENAMETOOLONG)
    'policy p version "1"\nimport "' + "a" * 100_000 + '"\n',
    'policy p version "1"\nimport "./' + "a" * 100_000 + '.charter"\n',
    # a record / pool holding an undeclared asset (KeyError in the transferability check)
    'policy p version "1"\nrecord R holds Foo { x: int }\n'
    "on h(id: text) by clock { refund rest of R(id) to clock }\n",
    'policy p version "1"\npool c of Foo\non h() by clock { refund rest of c to clock }\n',
    # nesting that passed the checker and overflowed the stack in the code generator
    _H + "on h() by clock {\n" + "if true { " * 300 + "dissolve" + " }" * 300 + "\n}\n",
    _H + "on h() by clock {\n" + "if true { " * 65 + "dissolve" + " }" * 65 + "\n}\n",
    _H + "on h() by clock {\nif true { dissolve } " + "else if true { dissolve } " * 150
    + "\n}\n",
]


@pytest.mark.parametrize("depth", [64, 100])
def test_deepest_accepted_nesting_generates_code(depth: int) -> None:
    # The checker's limits (64 blocks, 100-deep expressions) at their maximum, together:
    # the code generators must handle what the checker accepts.
    expr = "-(" * (depth - 2) + "1" + ")" * (depth - 2)
    body = "if true { " * 64 + f"let x = {expr}\nrequire x < 0" + " }" * 64
    c = Compilation.from_text(_H + "on h() by clock {\n" + body + "\n}\n", FILE)
    assert c.ok, [d.message for d in c.diagnostics]
    for backend in BACKENDS:
        compile_policy(c.ir, backend)


def _known_crash(err: BaseException) -> bool:
    frames = [f for f in traceback.extract_tb(err.__traceback__)
              if "/compiler/" in f.filename.replace("\\", "/")]
    return bool(frames) and (Path(frames[-1].filename).name, frames[-1].name) in KNOWN_CRASHES


def _compile(text: str) -> Compilation:
    c = Compilation.from_text(text, FILE)
    try:
        c.diagnostics
    except (TypeError, ValueError, AttributeError, KeyError) as err:
        if _known_crash(err):
            reject()
        raise
    return c


def check_input(data: str | bytes) -> list[Diagnostic]:
    """Run everything on ``data``; fail on anything but Charter diagnostics."""
    if isinstance(data, bytes):
        try:
            text = decode_source(data, FILE)
        except SourceError as err:
            _located(err.diagnostic)
            return [err.diagnostic]
    else:
        text = data
    c = _compile(text)
    diags = c.diagnostics
    for d in diags:
        _located(d)
    render_text(diags, c.sources)  # the renderer copes with every span it is given
    if c.ok:
        for backend in BACKENDS:  # an accepted policy must also generate code
            compile_policy(c.ir, backend)
    else:
        with pytest.raises(CharterError) as info:
            c.ir
        assert info.value.diagnostics
    try:
        format_verified(text, FILE)  # FormatterBug would be a real failure
    except ParseFailure as err:
        _located(err.diagnostic)
    return diags


# ---- random input -----------------------------------------------------------


@FUZZ
@given(st.binary(max_size=600))
def test_random_bytes(data: bytes) -> None:
    check_input(data)


@FUZZ
@given(st.text(max_size=300))
def test_random_text(text: str) -> None:
    check_input(text)


KEYWORDS = sorted(set(re.findall(r'"([a-z_]+)"', grammar_text())))
PUNCT = ["{", "}", "(", ")", "[", "]", ",", ":", "=", "==", "!=", "<", "<=", ">", ">=", "+",
         "-", "*", "/", ".", "..", "?", "%", "#c\n"]
ATOMS = ["x", "Task", "Credit", "5", "2.50", '"s"', "@alice", "1_000", '"\\n"', "\n"]


@FUZZ
@given(st.lists(st.sampled_from(KEYWORDS + PUNCT + ATOMS), max_size=80), st.booleans())
def test_token_soup(tokens: list[str], with_header: bool) -> None:
    head = 'policy p version "1"\n' if with_header else ""
    check_input(head + " ".join(tokens))


# ---- mutated valid policies ----------------------------------------------------

_TOKEN = re.compile(r'"(?:[^"\\\n]|\\.)*"|#[^\n]*|@[\w.:\-]+|\d[\d_]*(?:\.\d[\d_]*)?|\w+|\.\.|[=!<>]=|\S')


def _stdlib() -> list[str]:
    root = resources.files("charter.stdlib_policies")
    return [p.read_text("utf-8") for p in sorted(root.iterdir(), key=lambda p: p.name)
            if p.name.endswith(".charter")]


STDLIB = _stdlib() or ['policy p version "1"\nasset Credit: token\nrole Agent\n'
                       'on join() by p: party { admit p as Agent }\n']


def mutate(text: str, rnd: random.Random) -> str:
    toks = _TOKEN.findall(text)
    for _ in range(rnd.randint(1, 4)):
        if not toks:
            break
        i = rnd.randrange(len(toks))
        op = rnd.randrange(5)
        if op == 0:
            del toks[i]
        elif op == 1:
            toks.insert(i, toks[i])
        elif op == 2 and i + 1 < len(toks):
            toks[i], toks[i + 1] = toks[i + 1], toks[i]
        elif op == 3:
            toks[i] = rnd.choice(KEYWORDS + PUNCT + ATOMS)
        else:
            toks = toks[:i]
    return "".join(t + ("\n" if t.startswith("#") or rnd.random() < 0.1 else " ") for t in toks)


@FUZZ
@given(st.integers(0, 2**32 - 1), st.integers(0, len(STDLIB) - 1))
def test_mutated_policies(seed: int, which: int) -> None:
    check_input(mutate(STDLIB[which], random.Random(seed)))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(0, len(STDLIB) - 1), st.floats(0, 1))
def test_truncated_policies(which: int, where: float) -> None:
    text = STDLIB[which]
    check_input(text[: int(len(text) * where)])


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(0, 2**32 - 1))
def test_generated_policies_reach_the_checker(seed: int) -> None:
    # These parse, so resolve/typecheck/lower see every construct with nonsense types.
    check_input(PolicyGen(random.Random(seed)).policy())


# ---- pathological shapes --------------------------------------------------------

H = 'policy p version "1"\nrecord Task { open: bool }\n'
N = 10_000


def _in_handler(body: str) -> str:
    return H + "on h() by clock {\n" + body + "\n}\n"


DEEP = {
    "nested parens": _in_handler("let x = " + "(" * N + "1" + ")" * N),
    "unary minus": _in_handler("let x = " + "-" * N + "1"),
    "parenthesised minus": _in_handler("let x = " + "-(" * N + "1" + ")" * N),
    "not chain": _in_handler("require " + "not " * N + "true"),
    "plus chain": _in_handler("let x = " + " + ".join(["1"] * N)),
    "and chain": _in_handler("require " + " and ".join(["true"] * N)),
    "comparison chain": _in_handler("require " + " < ".join(["1"] * 50)),
    "field chain": _in_handler("let x = a" + ".b" * N),
    "nested calls": _in_handler("let x = " + "max(1, " * N + "1" + ")" * N),
    "nested aggregates": _in_handler("let x = " + "sum(" * 300 + "1" + " for t in Task)" * 300),
    "nested ifs": _in_handler("if true { " * N + "dissolve" + " }" * N),
    "nested for each": _in_handler("for each t in Task { " * N + "dissolve" + " }" * N),
    "else-if chain": _in_handler("if a { dissolve } " + "else if a { dissolve } " * N),
    "nested list types": 'policy p version "1"\nparam x: ' + "list of " * N + "int = 1",
    "many statements": _in_handler("let x = 1\n" * 3000),
    "unclosed braces": _in_handler("if true { " * N),
    "only closing braces": H + "}" * N,
    "long line": _in_handler("let x = " + " + ".join(["1"] * 150) + " " * 100_000),
    "long string": _in_handler('reject "' + "x" * 500_000 + '"'),
    "long name": _in_handler("let " + "x" * 100_000 + " = 1"),
}


@pytest.mark.parametrize("name", sorted(DEEP))
def test_pathological_input(name: str) -> None:
    check_input(DEEP[name])


@pytest.mark.parametrize("data,code", [
    (b"\xff\xfe\xfd", "E0002"),
    (b'policy p version "1"\n# caf\xe9\n', "E0002"),
    ("policy p version \"1\"\n".encode("utf-16"), "E0002"),
    (b"\x00" * 100, "E0102"),
    (b'policy p version "1"\x00', "E0102"),
    (bytes(range(1, 128)) * 3, None),
    (b"\x7fELF\x02\x01\x01" + b"\x00" * 50, "E0102"),
    (b"", "E0004"),
    (b"\xef\xbb\xbf", "E0004"),
])
def test_binary_and_non_utf8(data: bytes, code: str | None) -> None:
    diags = check_input(data)
    if code is not None:
        assert code in {d.code for d in diags}


def test_five_megabyte_file(tmp_path: Path) -> None:
    f = tmp_path / "huge.charter"
    chunk = 'policy p version "1"\n' + "# filler line for a very large policy file\n" * 120_000
    f.write_text(chunk, encoding="utf-8")
    assert f.stat().st_size > 5_000_000
    c = Compilation.from_path(f)
    assert [d.code for d in c.diagnostics] == ["E0003"]
    _located(c.diagnostics[0])
    from charter.cli import cli
    for args in (["fmt", "--check", str(f)], ["check", str(f)]):
        r = CliRunner().invoke(cli, args)
        assert r.exit_code in (1, 2), (args, r.output)
        assert "E0003" in r.output
        assert r.exception is None or isinstance(r.exception, SystemExit), r.exception


@pytest.mark.parametrize("text", FIXED_CRASHES)
def test_fixed_crashes_give_diagnostics(text: str) -> None:
    assert any(d.severity == "error" for d in check_input(text)), "expected an error"


# ---- grammar-aware families shared with tools/fuzz_policies.py ------------------------


@FUZZ
@given(st.integers(0, 2**32 - 1))
def test_mutated_stdlib_and_examples_through_codegen(seed: int) -> None:
    # Name-, number- and statement-level edits of real policies: many still compile, so
    # the code generators see them too.
    file, text = make_input("mutated", random.Random(seed))
    assert check_compiled(text, file) in ("ok", "diagnostics")


@FUZZ
@given(st.integers(0, 2**32 - 1))
def test_grammar_generated_through_codegen(seed: int) -> None:
    file, text = make_input("generated", random.Random(seed))
    assert check_compiled(text, file) in ("ok", "diagnostics")
