"""The Charter grammar (``charter.lark``, package data) and the words it reserves.

:func:`keywords` reads the keyword list out of the grammar itself, so the
Pygments lexer, the TextMate grammar's test and the language server's
completion can never drift from what the parser accepts.
"""
from __future__ import annotations

import re
from functools import lru_cache


@lru_cache(maxsize=1)
def keywords() -> tuple[str, ...]:
    """Every word the grammar spells as a literal (``"policy"``, ``"transfer"``, ...), sorted."""
    from charter.compiler.parse import grammar_text  # the parser's own copy of the text

    text = re.sub(r"//[^\n]*", "", grammar_text())
    return tuple(sorted(set(re.findall(r'"([a-z_]+)"', text))))
