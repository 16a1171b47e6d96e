"""Highlighting: the Pygments lexer (entry point ``charter``) and the TextMate grammar
(editors/charter.tmLanguage.json) know every keyword of grammar/charter.lark.

The keyword list is read from the Lark grammar here too, so a keyword added to the
grammar fails these tests until both highlighters know it.
"""
from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pygments import lex
from pygments.lexers import get_lexer_by_name, get_lexer_for_filename
from pygments.token import Comment, Error, Keyword, Name, Number, Operator

from charter.grammar import keywords
from charter.pygments_lexer import CharterLexer

ROOT = Path(__file__).resolve().parents[2]
TM = ROOT / "editors" / "charter.tmLanguage.json"
POLICIES = sorted(ROOT.glob("stdlib_policies/*.charter")) + sorted(ROOT.glob("examples/*/*.charter"))


def test_grammar_keywords_are_read_from_the_grammar() -> None:
    kws = keywords()
    # A floor, so a regex that matched nothing cannot make the tests below vacuous.
    assert len(kws) > 60
    assert {"policy", "transfer", "split", "passes", "rounding", "treasury"} <= set(kws)
    text = (ROOT / "grammar" / "charter.lark").read_text("utf-8")
    for k in kws:
        assert f'"{k}"' in text


def test_lexer_is_registered_as_a_pygments_entry_point() -> None:
    assert type(get_lexer_by_name("charter")) is CharterLexer
    assert type(get_lexer_for_filename("market.charter")) is CharterLexer


@pytest.mark.parametrize("kw", keywords())
def test_lexer_highlights_every_grammar_keyword(kw: str) -> None:
    toks = [(t, v) for t, v in lex(f"{kw} x", CharterLexer()) if v.strip()]
    t, v = toks[0]
    assert v == kw and (t in Keyword or t is Operator.Word), (kw, t)


def test_lexer_tells_names_builtins_and_parties_apart() -> None:
    toks = [(t, v) for t, v in lex("let fee = floor(x * 2%) to @ann:1 # c", CharterLexer())
            if v.strip()]
    kinds = dict((v, t) for t, v in toks)
    assert kinds["fee"] is Name and kinds["floor"] is Name.Builtin
    assert kinds["@ann:1"] is Name.Label and kinds["2%"] in Number
    assert kinds["# c"] in Comment


@pytest.mark.parametrize("path", POLICIES, ids=lambda p: str(p.relative_to(ROOT)))
def test_lexer_covers_real_policies_without_error_tokens(path: Path) -> None:
    text = path.read_text("utf-8")
    toks = list(lex(text, CharterLexer()))
    assert "".join(v for _, v in toks) == text if text.endswith("\n") else text + "\n"
    assert [v for t, v in toks if t in Error] == []


def _tm_keyword_patterns() -> list[tuple[str, re.Pattern[str]]]:
    grammar = json.loads(TM.read_text("utf-8"))
    return [(p["name"], re.compile(p["match"])) for p in grammar["repository"]["keyword"]["patterns"]]


def test_textmate_grammar_is_valid_json_with_its_scope() -> None:
    grammar = json.loads(TM.read_text("utf-8"))
    assert grammar["scopeName"] == "source.charter" and "charter" in grammar["fileTypes"]
    for key in (p["include"][1:] for p in grammar["patterns"]):
        assert key in grammar["repository"], key


@pytest.mark.parametrize("kw", keywords())
def test_textmate_grammar_covers_every_grammar_keyword(kw: str) -> None:
    hits = [name for name, rx in _tm_keyword_patterns()
            if (m := rx.match(f"{kw} x")) and m.group(0) == kw]
    assert hits, f"editors/charter.tmLanguage.json does not highlight `{kw}`: " \
                 "run tools/gen_tmlanguage.py"
    # ... and only as a whole word: `{kw}x` is a name, not a keyword.
    assert not any(rx.match(f"{kw}x") for _, rx in _tm_keyword_patterns())


def test_textmate_grammar_is_what_the_generator_writes() -> None:
    sys.path.insert(0, str(ROOT / "tools"))
    import gen_tmlanguage

    assert json.loads(TM.read_text("utf-8")) == gen_tmlanguage.grammar(), \
        "editors/charter.tmLanguage.json is stale: run tools/gen_tmlanguage.py"


@settings(max_examples=200, deadline=None)
@given(text=st.text(max_size=300) | st.sampled_from(["\ud800", "@", '"unterminated', "#",
                                                      "9" * 10_000, "\x00\u2028\r"]))
def test_lexer_takes_any_text(text: str) -> None:
    """Any text (an editor buffer mid-edit) lexes, loses nothing and has no error token."""
    toks = list(lex(text, CharterLexer(stripnl=False)))
    joined = "".join(v for _, v in toks)
    text = text.replace("\r\n", "\n").replace("\r", "\n")  # Pygments' own newline rule
    assert joined == text or joined == text + "\n"
    assert not [v for t, v in toks if t in Error]
