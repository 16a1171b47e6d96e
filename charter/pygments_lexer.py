"""A Pygments lexer for Charter policies (``.charter`` files).

Registered as the ``pygments.lexers`` entry point ``charter``, so Sphinx
(``.. code-block:: charter``), ``pygmentize -l charter`` and anything else
that uses Pygments highlight Charter once the package is installed.

The keyword list is read from the grammar (``charter.grammar.keywords()``),
the type names and built-in functions from the type checker, so the lexer
highlights exactly the words the compiler knows.
"""
from __future__ import annotations

from pygments.lexer import RegexLexer, bygroups, words
from pygments.token import (
    Comment,
    Keyword,
    Name,
    Number,
    Operator,
    Punctuation,
    String,
    Text,
    Whitespace,
)

from charter.compiler import typecheck
from charter.grammar import keywords

# Keywords that introduce a top-level declaration (the name after them is a definition).
DECLARATIONS = ("policy", "version", "import", "asset", "role", "param", "pool", "treasury",
                "record", "on", "every", "when", "property", "test")
OPERATOR_WORDS = ("and", "or", "not")
CONSTANTS = ("true", "false", "none", "now", "clock")
TYPES = tuple(sorted(typecheck.BASE_TYPES))
AGGREGATES = ("sum", "count", "min", "max", "all", "any")
BUILTINS = tuple(sorted({n[3:] for n in dir(typecheck.Checker) if n.startswith("fn_")}
                        | set(AGGREGATES)))
STATEMENTS = tuple(k for k in keywords() if k not in DECLARATIONS + OPERATOR_WORDS)

_NAME = r"[A-Za-z_][A-Za-z0-9_]*"


class CharterLexer(RegexLexer):
    """Charter, the policy language of programmable economies."""

    name = "Charter"
    aliases = ["charter"]
    filenames = ["*.charter"]
    mimetypes = ["text/x-charter"]
    url = "https://github.com/charter-policy/charter"

    tokens = {
        "root": [
            (r"\s+", Whitespace),
            (r"#[^\n]*", Comment.Single),
            (r'"([^"\\\n]|\\["\\nt])*"', String.Double),
            (r"@[A-Za-z0-9_][A-Za-z0-9_:\-]*", Name.Label),  # a party literal
            # Definitions: the name after a declaring keyword.
            (rf"\b(on|record|role|policy)(\s+)({_NAME})",
             bygroups(Keyword.Declaration, Whitespace, Name.Function)),
            (rf"\b(asset|param|pool|treasury)(\s+)({_NAME})",
             bygroups(Keyword.Declaration, Whitespace, Name.Variable)),
            (rf"\b(as)(\s+)({_NAME})(\s*)(\{{)",
             bygroups(Keyword, Whitespace, Name.Function, Whitespace, Punctuation)),
            (r"[0-9][0-9_]*(\.[0-9][0-9_]*)?%", Number),
            (r"[0-9][0-9_]*\.[0-9][0-9_]*", Number.Float),
            (r"[0-9][0-9_]*", Number.Integer),
            (words(DECLARATIONS, suffix=r"\b"), Keyword.Declaration),
            (words(OPERATOR_WORDS, suffix=r"\b"), Operator.Word),
            (words(CONSTANTS, suffix=r"\b"), Keyword.Constant),
            (words(TYPES, suffix=r"\b"), Keyword.Type),
            (words(BUILTINS, suffix=r"(?=\s*\()"), Name.Builtin),
            (words(STATEMENTS, suffix=r"\b"), Keyword),
            (_NAME, Name),
            (r"\.\.|==|!=|<=|>=|[<>+\-*/=?]", Operator),
            (r"[{}()\[\],:.]", Punctuation),
            (r".", Text),  # never an error token: a snippet with a typo still renders
        ],
    }
