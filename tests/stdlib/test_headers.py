"""Every stdlib header says what its code does (issue 16, item 4).

A stdlib policy opens with a comment that the economy's docs page shows as
its description, and most carry a hand-written parameter table ("Parameters
an adopting community tunes") and formulas in prose.  Those are the parts of
a header that drift when a rule changes, so this test holds them to the
policy:

* every row of the header's parameter table names a declared ``param``, every
  declared ``param`` has a row, and the range and default a row states are
  the declared ones (compared as values: ``1 hour..90 days (14 days)`` against
  ``within 1 hours..90 days`` and ``= 14 days``);
* every formula the header writes with a rounding or arithmetic function
  (``floor(...)``, ``ceil(...)``, ``round(...)``, ``isqrt(...)``, ``min(...)``,
  ``max(...)``) occurs in the code, up to the names a reader would drop: a
  record binder (``d.points`` reads ``points``), ``balance(pool)`` read as the
  pool's name, ``x`` or ``×`` for ``*``.

The generated part of each docs page (parameter table, events, properties)
comes from the parsed policy and is checked by ``tests/test_docs.py``.
"""

from __future__ import annotations

import re
from decimal import Decimal
from fractions import Fraction
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
STDLIB = sorted((ROOT / "stdlib_policies").glob("*.charter"))

UNITS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400, "week": 604800}
RANGE = re.compile(
    r"(?P<lo>[\d.]+%?(?:\s+[A-Za-z]+)?)\s*\.\.\s*(?P<hi>[\d.]+%?(?:\s+[A-Za-z]+)?)"
    r"\s+\((?P<default>[^)]*)\)\s*$"
)
BOOL = re.compile(r"true/false\s+\((?P<default>true|false)\)\s*$")
FUNCS = ("floor", "ceil", "round", "isqrt", "min", "max")


def _header(text: str) -> list[str]:
    """The leading comment block, without the ``#``."""
    out: list[str] = []
    for line in text.splitlines():
        if line.startswith("#"):
            out.append(line[1:])
        elif line.strip().startswith("policy ") or out and not line.strip():
            break
    return out


def _param_rows(text: str) -> dict[str, str] | None:
    """``name -> rest of its row`` for the header's parameter table (None: no table)."""
    lines = _header(text)
    start = next((i for i, ln in enumerate(lines) if re.match(r"\s*Parameters\b", ln)), None)
    if start is None:
        return None
    rows: dict[str, str] = {}
    for line in lines[start + 1:]:
        if not line.strip():
            break
        m = re.match(r"\s{2,}([a-z_][a-z0-9_]*(?:,\s*[a-z_][a-z0-9_]*)*)(?:\s{2,}|\s(?=\S))(.*)$", line)
        if not m:
            continue
        names = [n.strip() for n in m.group(1).split(",")]
        rest = m.group(2)
        for k, name in enumerate(names):
            rows[name] = rest if len(names) == 1 else f"{rest}#{k}"
    return rows


def _value(text: str, ptype, decimals: dict[str, int], unit: str | None) -> object:
    """A header value (``90 days``, ``0.10``, ``5%``) as the IR stores it."""
    text = text.strip()
    kind = type(ptype).__name__
    if kind == "TRatio":
        assert text.endswith("%"), text
        return Fraction(Decimal(text[:-1])) / 100
    num, _, word = text.partition(" ")
    word = word.strip() or (unit or "")
    if kind == "TDuration":
        return int(Decimal(num) * UNITS[word.rstrip("s")])
    if kind == "TAmount":
        return int(Decimal(num) * 10 ** decimals[ptype.asset])
    return int(num)


def _unit(text: str) -> str | None:
    parts = text.strip().split(" ", 1)
    return parts[1].strip() if len(parts) == 2 else None


@pytest.mark.parametrize("path", STDLIB, ids=lambda p: p.stem)
def test_header_parameter_table_matches_the_params(path: Path) -> None:
    from charter.compiler.pipeline import Compilation

    text = path.read_text("utf-8")
    rows = _param_rows(text)
    if rows is None:
        pytest.skip("the header has no parameter table (the docs page's table is generated)")
    policy = Compilation.from_path(str(path)).ir
    decimals = {a.name: a.decimals for a in policy.assets}
    params = {p.name: p for p in policy.params}
    assert set(rows) == set(params), (
        f"header rows without a param: {sorted(set(rows) - set(params))}; "
        f"params without a header row: {sorted(set(params) - set(rows))}"
    )
    problems = []
    for name, row in rows.items():
        p = params[name]
        index = None
        if "#" in row:
            row, index = row.rsplit("#", 1)
        if m := BOOL.search(row):
            if (m.group("default") == "true") != p.default:
                problems.append(f"{name}: header default {m.group('default')}, code {p.default}")
            continue
        m = RANGE.search(row)
        if m is None:
            # a party or a flag: the row says what it is, there is no range
            assert p.lo is None and type(p.type).__name__ in ("TParty", "TBool"), (
                f"{name}: no range in {row!r}")
            continue
        unit = _unit(m.group("hi")) or _unit(m.group("lo"))
        default = m.group("default").split(",")[int(index)] if index else m.group("default")
        got = {
            "lo": _value(m.group("lo"), p.type, decimals, unit),
            "hi": _value(m.group("hi"), p.type, decimals, unit),
            "default": _value(default, p.type, decimals, unit),
        }
        for key, value in got.items():
            if value != getattr(p, key):
                problems.append(f"{name}: header {key} {value!r}, code {getattr(p, key)!r}")
    assert not problems, problems


def _calls(text: str) -> list[str]:
    """Each ``f(...)`` of FUNCS in ``text`` with balanced parentheses, outermost only."""
    out = []
    for m in re.finditer(r"\b(%s)\(" % "|".join(FUNCS), text):
        depth, i = 0, m.end() - 1
        while i < len(text):
            depth += {"(": 1, ")": -1}.get(text[i], 0)
            if depth == 0:
                break
            i += 1
        if depth == 0 and not any(m.start() > s and m.start() < e for s, e, _ in out):
            out.append((m.start(), i + 1, text[m.start():i + 1]))
    return [c for _, _, c in out]


def _norm(expr: str) -> str:
    expr = re.sub(r"\bbalance\((\w+)\)", r"\1", expr)
    expr = re.sub(r"\b(balance|stake)\([^()]*\)", r"\1", expr)  # stake(x, Credit) -> stake
    expr = re.sub(r"\b[A-Z]\w*\([^()]*\)\.(?=[a-z_])", "", expr)  # Work(e.parent).rate -> rate
    expr = re.sub(r"\b[a-z_]\w*\.(?=[a-z_])", "", expr)  # d.points -> points
    expr = re.sub(r"\s[x×]\s", " * ", expr)
    expr = re.sub(r"\s+", "", expr)
    return expr.replace("`", "")


@pytest.mark.parametrize("path", STDLIB, ids=lambda p: p.stem)
def test_header_formulas_occur_in_the_code(path: Path) -> None:
    text = path.read_text("utf-8")
    header = " ".join(ln.strip() for ln in _header(text))
    code = "\n".join(ln.split("#", 1)[0] for ln in text.splitlines() if not ln.lstrip().startswith("#"))
    code_norm = _norm(code.replace("\n", " "))
    missing = [f for f in _calls(header) if _norm(f) not in code_norm]
    assert not missing, f"formulas in the header that the code does not compute: {missing}"
