"""Write editors/charter.tmLanguage.json, the TextMate grammar for Charter.

The keyword lists come from the Lark grammar (:func:`charter.grammar.keywords`)
and the type checker, as in the Pygments lexer, so regenerating after a
grammar change keeps editors in step; tests/editors/test_highlighting.py fails
when the committed file misses a keyword of the grammar.

    .venv/bin/python tools/gen_tmlanguage.py
"""
from __future__ import annotations

import json
from pathlib import Path

from charter import pygments_lexer as lx

OUT = Path(__file__).resolve().parents[1] / "editors" / "charter.tmLanguage.json"


def alt(names: tuple[str, ...]) -> str:
    return "\\b(?:" + "|".join(sorted(names, key=lambda s: (-len(s), s))) + ")\\b"


def grammar() -> dict:
    name = "[A-Za-z_][A-Za-z0-9_]*"
    return {
        "$schema": "https://raw.githubusercontent.com/martinring/tmlanguage/master/tmlanguage.json",
        "name": "Charter",
        "scopeName": "source.charter",
        "fileTypes": ["charter"],
        "patterns": [
            {"include": "#comment"}, {"include": "#string"}, {"include": "#party"},
            {"include": "#definition"}, {"include": "#number"}, {"include": "#keyword"},
            {"include": "#operator"},
        ],
        "repository": {
            "comment": {"name": "comment.line.number-sign.charter", "match": "#.*$"},
            "string": {
                "name": "string.quoted.double.charter", "begin": "\"", "end": "\"|$",
                "patterns": [{"name": "constant.character.escape.charter",
                              "match": "\\\\[\"\\\\nt]"}],
            },
            "party": {"name": "constant.other.party.charter",
                      "match": "@[A-Za-z0-9_][A-Za-z0-9_:\\-]*"},
            "definition": {"patterns": [
                {"match": f"\\b(on|record|role|policy)\\s+({name})",
                 "captures": {"1": {"name": "storage.type.charter"},
                              "2": {"name": "entity.name.function.charter"}}},
                {"match": f"\\b(asset|param|pool|treasury)\\s+({name})",
                 "captures": {"1": {"name": "storage.type.charter"},
                              "2": {"name": "variable.other.definition.charter"}}},
            ]},
            "number": {"name": "constant.numeric.charter",
                       "match": "\\b[0-9][0-9_]*(?:\\.[0-9][0-9_]*)?%?"},
            "keyword": {"patterns": [
                {"name": "storage.type.charter", "match": alt(lx.DECLARATIONS)},
                {"name": "keyword.operator.logical.charter", "match": alt(lx.OPERATOR_WORDS)},
                {"name": "constant.language.charter", "match": alt(lx.CONSTANTS)},
                {"name": "support.type.charter", "match": alt(lx.TYPES)},
                {"name": "support.function.builtin.charter",
                 "match": alt(lx.BUILTINS)[:-3] + ")(?=\\s*\\()"},
                {"name": "keyword.control.charter", "match": alt(lx.STATEMENTS)},
            ]},
            "operator": {"name": "keyword.operator.charter",
                         "match": "\\.\\.|==|!=|<=|>=|[<>+\\-*/=?]"},
        },
    }


def main() -> None:
    OUT.parent.mkdir(exist_ok=True)
    OUT.write_text(json.dumps(grammar(), indent=2) + "\n", "utf-8")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
