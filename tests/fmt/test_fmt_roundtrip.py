"""Property tests: the formatter keeps meaning and comments and is idempotent.

Two sources of input: random policies generated from the grammar (random
layout and comments in every gap), and the standard-library policies with
their layout scrambled (these compile, so their IR is compared too).
"""
from __future__ import annotations

import random
from importlib import resources

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from charter.compiler.fmt import format_source
from fmt_support import assert_formats_safely, compiled_ir
from policy_gen import PolicyGen

# A seed, not st.randoms(): the generators draw thousands of times per policy, which
# hypothesis would record as one very large example.
SEEDS = st.integers(min_value=0, max_value=2**32 - 1)
SETTINGS = settings(max_examples=60, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(SEEDS)
def test_generated_policies_round_trip(seed: int) -> None:
    assert_formats_safely(PolicyGen(random.Random(seed)).policy(), compare_ir=False)


@SETTINGS
@given(SEEDS)
def test_generated_statements_round_trip(seed: int) -> None:
    g = PolicyGen(random.Random(seed))
    body = []
    for _ in range(8):
        body += g.stmt(3)
    assert_formats_safely(g.join(["policy", "p", "version", '"1"', "on", "h", "(", ")", "by",
                                  "clock", "{", *body, "}"]), compare_ir=False)


def _stdlib() -> dict[str, str]:
    root = resources.files("charter.stdlib_policies")
    return {p.name: p.read_text("utf-8") for p in sorted(root.iterdir(), key=lambda p: p.name)
            if p.name.endswith(".charter")}


def scramble(text: str, rnd: random.Random) -> str:
    """Re-lay ``text``: every gap between tokens gets random layout (maybe a comment)."""
    g = PolicyGen(rnd)
    out, i, n = [], 0, len(text)
    in_comment_before = False
    while i < n:
        c = text[i]
        if c in " \t\r\n":
            j = i
            while j < n and text[j] in " \t\r\n":
                j += 1
            sep = g.sep()
            # a comment runs to the end of its line: keep the line break after it
            out.append(("\n" + sep) if in_comment_before or j == n else sep)
            in_comment_before = False
            i = j
            continue
        if c == "#":
            j = text.find("\n", i)
            j = n if j < 0 else j
            out.append(text[i:j])
            in_comment_before = True
            i = j
            continue
        if c == '"':
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            out.append(text[i:j + 1])
            i = j + 1
        else:
            out.append(c)
            i += 1
        in_comment_before = False
    return "".join(out)


STDLIB = _stdlib()


@pytest.mark.skipif(not STDLIB, reason="no stdlib policies yet")
@pytest.mark.parametrize("name", sorted(STDLIB))
def test_stdlib_policy_formats_to_same_ir(name: str) -> None:
    text = STDLIB[name]
    out = assert_formats_safely(text)
    if compiled_ir(text) is not None:
        assert compiled_ir(out) == compiled_ir(text)


@pytest.mark.skipif(not STDLIB, reason="no stdlib policies yet")
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(SEEDS, st.sampled_from(sorted(STDLIB) or ["-"]))
def test_scrambled_stdlib_layout_formats_back(seed: int, name: str) -> None:
    text = STDLIB[name]
    messy = scramble(text, random.Random(seed))
    out = assert_formats_safely(messy)
    # layout is all that changed, so the canonical form is the same as the original's
    # up to comment placement: with the same comments it must be identical
    if "#" not in text:
        assert out == format_source(text)
    a = compiled_ir(text)
    if a is not None:
        assert compiled_ir(messy) == a
        assert compiled_ir(out) == a
