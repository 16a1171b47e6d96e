"""Hostile policy inputs and the one check every one of them must pass.

Shared by the hypothesis fuzzers (tests/test_fuzz.py) and the long run
(tools/fuzz_policies.py), so both look for the same failures the same way.

Inputs come from four families, each a function ``(rnd) -> text``:

* ``generated``: a policy written by walking the grammar (tests/fmt/policy_gen.py);
  it parses, and resolve/typecheck see every construct with nonsense types;
* ``mutated``: a standard-library policy or example changed by grammar-aware
  edits that mostly keep it well-typed (a name replaced by another name of
  the same file or a typo of it, a number by a hostile number, a statement
  duplicated, moved, deleted or wrapped in deep nesting, a hostile import), so
  many mutants still compile and go on through code generation;
* ``soup``: tokens of the grammar in random order;
* ``truncated``: a policy cut at a random byte.

:func:`check` runs one input through read -> parse -> resolve -> typecheck ->
lower and, when the policy is accepted, through both code generators.  It
returns ``"ok"`` or ``"diagnostics"`` and lets any other exception escape:
that is the bug the fuzzers look for.
"""
from __future__ import annotations

import random
import re
import sys
from importlib import resources
from pathlib import Path
from typing import Callable

from charter.compiler.diagnostics import CODES, Diagnostic, render_text
from charter.compiler.parse import grammar_text
from charter.compiler.pipeline import Compilation
from charter.runtime import pygen
from charter.runtime.pygen import BACKENDS, compile_policy

sys.path.insert(0, str(Path(__file__).resolve().parent / "fmt"))
from policy_gen import PolicyGen  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]

KEYWORDS = sorted(set(re.findall(r'"([a-z_]+)"', grammar_text())))
PUNCT = ["{", "}", "(", ")", "[", "]", ",", ":", "=", "==", "!=", "<", "<=", ">", ">=", "+",
         "-", "*", "/", ".", "..", "?", "%", "#c\n"]
ATOMS = ["x", "Task", "Credit", "5", "2.50", '"s"', "@alice", "1_000", '"\\n"', "\n"]

# Numbers at and past every limit: the literal limit (60 digits), Python's int/str
# conversion limit (4,300 digits), zero, tiny fractions, separators.
HOSTILE_NUMBERS = ["0", "00", "1_000_000", "0.000001", "1.5", "9" * 59, "9" * 60, "9" * 61,
                   "1" + "_0" * 70, "0." + "0" * 58 + "1", "9" * 4301, "9" * 5000,
                   "1." + "9" * 5000, "18", "19", "256", "257"]
HOSTILE_NAMES = ["x" * 100_000, "_", "__", "now", "clock", "none", "true", "party", "supply",
                 "balance", "Task", "int", "list", "percent"]
HOSTILE_IMPORTS = ["a" * 100_000, "./" + "a" * 5000 + ".charter", "/dev/zero", "../../etc/passwd",
                   "gig_markt", "./missing.charter", ".", "..", "a.b.c", "gig_market.x",
                   "\\u0000", "gig market", ""]

_TOKEN = re.compile(r'"(?:[^"\\\n]|\\.)*"|#[^\n]*|@[\w.:\-]+|\d[\d_]*(?:\.\d[\d_]*)?|\w+|\.\.|'
                    r'[=!<>]=|\S')
_NAME = re.compile(r"[A-Za-z_]\w*")


def _sources() -> list[tuple[str, str]]:
    """(file name, text) of every standard-library policy and example policy."""
    out = []
    root = resources.files("charter.stdlib_policies")
    for p in sorted(root.iterdir(), key=lambda p: p.name):
        if p.name.endswith(".charter"):
            out.append((f"<stdlib>/{p.name}", p.read_text("utf-8")))
    for p in sorted((ROOT / "examples").glob("*/*.charter")):
        out.append((str(p), p.read_text("utf-8")))
    # the issue-17 forms (fn, var, for i in a..b, pow/sqrt, max_by, ordered by, text, composite
    # keys, list fields, split rules, credit lines, asset families) as their own tests write them
    for pattern in ("tests/language/*.charter", "tests/runtime/splits/*.charter",
                    "tests/runtime/credit/*.charter", "tests/runtime/families/*.charter"):
        for p in sorted(ROOT.glob(pattern)):
            out.append((str(p), p.read_text("utf-8")))
    return out


SOURCES = _sources()


# ---- the families ---------------------------------------------------------------------


def generated(rnd: random.Random) -> str:
    return PolicyGen(rnd).policy()


def soup(rnd: random.Random) -> str:
    head = 'policy p version "1"\n' if rnd.random() < 0.7 else ""
    toks = [rnd.choice(KEYWORDS + PUNCT + ATOMS) for _ in range(rnd.randrange(0, 80))]
    return head + " ".join(toks)


def truncated(rnd: random.Random) -> str:
    _, text = rnd.choice(SOURCES)
    return text[: rnd.randrange(0, len(text) + 1)]


def _typo(name: str, rnd: random.Random) -> str:
    if len(name) < 2:
        return name + "x"
    i = rnd.randrange(len(name))
    k = rnd.randrange(3)
    if k == 0:
        return name[:i] + name[i + 1:]
    if k == 1:
        return name[:i] + rnd.choice("aeioutrs") + name[i:]
    j = min(i + 1, len(name) - 1)
    chars = list(name)
    chars[i], chars[j] = chars[j], chars[i]
    return "".join(chars)


def _edit_tokens(text: str, rnd: random.Random) -> str:
    toks = _TOKEN.findall(text)
    if not toks:
        return text
    names = sorted({t for t in toks if _NAME.fullmatch(t) and t not in KEYWORDS})
    for _ in range(rnd.randint(1, 3)):
        i = rnd.randrange(len(toks))
        t = toks[i]
        k = rnd.randrange(10)
        if t[0].isdigit() and k < 6:
            toks[i] = rnd.choice(HOSTILE_NUMBERS)
        elif _NAME.fullmatch(t) and t not in KEYWORDS and k < 7:
            toks[i] = rnd.choice([_typo(t, rnd), rnd.choice(names or [t]),
                                  rnd.choice(HOSTILE_NAMES)])
        elif t in ("+", "-", "*", "/") and k < 6:
            toks[i] = rnd.choice(["+", "-", "*", "/"])
        elif t in ("==", "!=", "<", "<=", ">", ">=") and k < 6:
            toks[i] = rnd.choice(["==", "!=", "<", "<=", ">", ">="])
        elif k == 7:
            del toks[i]
        elif k == 8:
            toks.insert(i, rnd.choice(KEYWORDS + PUNCT + ATOMS))
        elif i + 1 < len(toks):
            toks[i], toks[i + 1] = toks[i + 1], toks[i]
    return "".join(t + ("\n" if t.startswith("#") else " ") for t in toks)


_STMT = re.compile(r"^(\s*)(require|let|set|transfer|escrow|release|refund|split|mint|burn|"
                   r"lock|unlock|slash|grant|revoke|admit|expel|create|update|delete|decay|"
                   r"flag|dissolve|reject)\b")


def _edit_lines(text: str, rnd: random.Random) -> str:
    lines = text.split("\n")
    stmts = [i for i, ln in enumerate(lines) if _STMT.match(ln) and not ln.rstrip().endswith(("{", ","))]
    k = rnd.randrange(6)
    if k == 0 and stmts:  # wrap one statement in deep nesting, around every limit
        i = rnd.choice(stmts)
        depth = rnd.choice([1, 2, 63, 64, 65, 199, 200, 201, 300])
        lines[i] = "if true { " * depth + lines[i] + " }" * depth
    elif k == 1 and stmts:  # an else-if chain after a statement
        i = rnd.choice(stmts)
        n = rnd.choice([1, 10, 64, 65, 250])
        lines[i] += " if true { dissolve } " + "else if false { dissolve } " * n
    elif k == 2 and len(lines) > 2:
        del lines[rnd.randrange(1, len(lines))]
    elif k == 3 and len(lines) > 2:
        i = rnd.randrange(1, len(lines))
        lines.insert(rnd.randrange(1, len(lines)), lines[i])
    elif k == 4:
        target = rnd.choice(HOSTILE_IMPORTS)
        lines.insert(1, f'import "{target}"')
    elif stmts:  # a statement moved to another line
        i = rnd.choice(stmts)
        line = lines.pop(i)
        lines.insert(rnd.randrange(1, len(lines)), line)
    return "\n".join(lines)


def mutated(rnd: random.Random) -> tuple[str, str]:
    file, text = rnd.choice(SOURCES)
    for _ in range(rnd.randint(1, 2)):
        text = _edit_tokens(text, rnd) if rnd.random() < 0.5 else _edit_lines(text, rnd)
    return file, text


FAMILIES: dict[str, Callable[[random.Random], object]] = {
    "generated": generated, "mutated": mutated, "soup": soup, "truncated": truncated,
}


def make_input(family: str, rnd: random.Random) -> tuple[str, str]:
    """(file name, text) of one input of ``family``."""
    out = FAMILIES[family](rnd)
    if isinstance(out, tuple):
        return out
    return "fuzz.charter", out  # type: ignore[return-value]


# ---- the check -------------------------------------------------------------------------


def located(d: Diagnostic) -> None:
    assert d.code in CODES, d
    assert d.message, d
    assert d.span.line >= 1 and d.span.col >= 1, d
    assert d.span.end_line >= d.span.line, d


def check(text: str, file: str = "fuzz.charter") -> str:
    """Compile ``text``; "ok" or "diagnostics", or the exception that is a bug."""
    c = Compilation.from_text(text, file)
    diags = c.diagnostics
    for d in diags:
        located(d)
    render_text(diags, c.sources)
    if not c.ok:
        return "diagnostics"
    policy = c.ir
    for backend in BACKENDS:  # code generation of every accepted policy
        compile_policy(policy, backend)
    # compile_policy keeps every policy it compiled (a per-process cache): over 100,000
    # inputs that heap made Python's full garbage collections take seconds, charged to
    # whichever input happened to trigger one; the fuzzer measures the compiler, not that
    pygen._CACHE.clear()
    return "ok"
