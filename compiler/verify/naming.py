"""Model values in the policy's own terms: parties and record keys get readable names,
amounts, ratios and durations are printed as authors write them.
"""

from __future__ import annotations

import json
from fractions import Fraction
from typing import Any, Optional, TYPE_CHECKING

import z3

from .. import display, ir
from .solver import _eval
from .terms import Opt, SList

if TYPE_CHECKING:
    from .encode import Encoder
    from .model import HandlerModel


class Namer:
    """Turns Int codes of parties, texts and record keys into readable names."""

    PARTIES = [
        "alice",
        "bob",
        "carol",
        "dave",
        "erin",
        "frank",
        "grace",
        "heidi",
        "ivan",
        "judy",
        "mallory",
        "niaj",
        "olivia",
        "peggy",
        "rupert",
        "sybil",
        "trent",
        "victor",
    ]

    def __init__(self, enc: Encoder, model: z3.ModelRef, ints: Any):
        self.codes = enc.codes
        self.model = model
        self.functions = dict(getattr(enc, "text_functions", {}) or {})
        self.names: dict[tuple[str, int], str] = {}
        # parties and keys/texts are separate namespaces at runtime; names are assigned in
        # value order per namespace so key order (the tie order) is kept
        by_cat: dict[str, set[int]] = {}
        for v, cat in ints:
            by_cat.setdefault(cat, set()).add(v)
        for cat, vals in by_cat.items():
            i = 0
            for v in sorted(vals):
                if self.codes.text(v) is not None:
                    continue
                if cat == "party":
                    name = self.PARTIES[i] if i < len(self.PARTIES) else f"party{i}"
                else:
                    name = f"k{i + 1}"
                self.names[(cat, v)] = name
                i += 1

    def name(self, v: int, cat: str = "party") -> str:
        t = self.codes.text(v)
        if t is not None:
            return t
        if cat == "key":
            joined = self.composite(v)
            if joined is not None:
                return joined
        return self.names.get((cat, v), f"x{v}")

    def composite(self, v: int, depth: int = 0) -> Optional[str]:
        """A record key that is a composite key ``R(a, b)`` in the model: the runtime's text
        of it (the parts' names joined as :func:`composite_key` does), so a scenario that
        names the record, or an event that builds its key from arguments, finds it."""
        from charter.runtime.semantics import composite_key

        if depth > 3 or self.model is None:
            return None
        for fkey, fns in self.functions.items():
            if fkey[0] != "key":  # other shared functions: ("family", asset), ("member_key_ok",)
                continue
            extra = fkey[1]
            make, projections = fns
            parts = [self.model.eval(proj(z3.IntVal(v)), model_completion=True)
                     for proj in projections]
            if not all(z3.is_int_value(p) for p in parts):
                continue
            if not z3.is_true(self.model.eval(make(*parts) == v, model_completion=True)):
                continue
            texts = []
            for part, k in zip(parts, extra):
                pv = part.as_long()
                if k == "party":
                    texts.append("@" + self.name(pv, "party"))
                elif k == "int":
                    texts.append(str(pv))
                else:
                    texts.append(self.composite(pv, depth + 1) or self.name(pv, "key"))
            return composite_key(texts)
        return None


def _category(t: ir.Type) -> Optional[str]:
    if isinstance(t, ir.TOptional):
        return _category(t.inner)
    if isinstance(t, ir.TList):
        return _category(t.inner)
    if isinstance(t, ir.TParty):
        return "party"
    if isinstance(t, ir.TRecord):
        return "key"
    if isinstance(t, ir.TText):
        return "key"  # texts are used as record keys: one namespace
    return None


def _plain(model: z3.ModelRef, value: Any, t: ir.Type, namer: Namer, policy: ir.Policy) -> Any:
    """A model value as JSON data in the runtime's event payload format."""
    if isinstance(value, Opt):
        if not _eval(model, value.some):
            return None
        inner = t.inner if isinstance(t, ir.TOptional) else t
        return _plain(model, value.val, inner, namer, policy)
    if isinstance(value, SList):
        n = _eval(model, value.n)
        inner = t.inner if isinstance(t, ir.TList) else t
        return [_plain(model, x, inner, namer, policy) for x in value.items[:n]]
    v = _eval(model, value)
    if _category(t) is not None and isinstance(v, int):
        return namer.name(v, _category(t))
    if isinstance(v, Fraction):
        return {"num": v.numerator, "den": v.denominator} if v.denominator != 1 else v.numerator
    return v


def _exact_decimal(x: Fraction, max_digits: int = 6) -> Optional[str]:
    """``x`` as an exact decimal string (no floats), or None if it needs more digits."""
    sign = "-" if x < 0 else ""
    x = abs(x)
    for digits in range(max_digits + 1):
        scaled = x * 10**digits
        if scaled.denominator == 1:
            n = scaled.numerator
            if digits == 0:
                return f"{sign}{n}"
            return f"{sign}{n // 10**digits}.{n % 10**digits:0{digits}d}"
    return None


def _show(v: Any, t: ir.Type, policy: ir.Policy) -> str:
    """A plain value as the policy would write it (amounts, ratios and durations through
    the one value formatter, :mod:`charter.compiler.display`)."""
    if v is None:
        return "none"
    if isinstance(t, ir.TOptional):
        return _show(v, t.inner, policy)
    if isinstance(v, dict) and "num" in v:
        v = Fraction(v["num"], v["den"])
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(t, ir.TList) and isinstance(v, (list, tuple)):
        return "[" + ", ".join(_show(x, t.inner, policy) for x in v) + "]"
    if isinstance(t, (ir.TAmount, ir.TRatio, ir.TDuration)) and isinstance(v, (int, Fraction)):
        return display.value(v, t, policy)
    if isinstance(v, Fraction):
        return display.ratio(v)
    if isinstance(t, (ir.TParty,)) and isinstance(v, str):
        return "@" + v
    return str(v)


def _account_asset(comp: str) -> Optional[str]:
    parts = comp.split("!")
    if parts[0] in ("bal", "stake"):
        return parts[1]
    if parts[0] == "escrow":
        return parts[2]
    return None


def collect_ints(m: HandlerModel, model: z3.ModelRef, ints: Optional[set] = None) -> set:
    """Which Int values of the model are parties, record keys or texts (for naming)."""
    enc = m.encoder
    ints = set() if ints is None else ints
    for w in m.watches:
        cat = _category(w.type)
        if cat is None:
            continue
        vals = []
        if isinstance(w.term, Opt):
            if _eval(model, w.term.some):
                vals.append(w.term.val)
        elif isinstance(w.term, SList):
            vals += w.term.items[: _eval(model, w.term.n)]
        else:
            vals.append(w.term)
        for t in vals:
            t = t.val if isinstance(t, Opt) else t
            v = _eval(model, t)
            if isinstance(v, int):
                ints.add((v, cat))
    for comp, idx in enc.balance_reads:
        parts = family_parts(enc, comp, idx)
        if parts is not None:  # an account of an asset family: its holder and member
            holder, member, _ = parts
            if holder is not None:
                ints.add((_eval(model, holder),
                          "party" if comp.split("!")[0] in ("bal", "stake") else "key"))
            ints.add((_eval(model, member), "key"))
        elif idx is not None:
            ints.add(
                (_eval(model, idx), "party" if comp.split("!")[0] in ("bal", "stake") else "key")
            )
    for rec, keys in m.touched.items():
        for k in keys:
            ints.add((_eval(model, k), "key"))
    ints.discard((enc.codes.code("clock"), "party"))
    return ints


def _plain_extra(model: z3.ModelRef, v: Any, namer: Namer) -> Any:
    if isinstance(v, list):
        return [_plain_extra(model, x, namer) for x in v]
    if isinstance(v, dict):
        return {k: _plain_extra(model, x, namer) for k, x in v.items()}
    if isinstance(v, z3.ExprRef):
        r = _eval(model, v)
        return str(r) if isinstance(r, Fraction) else r
    return v


def family_parts(enc: Any, comp: str, idx: Any) -> Optional[tuple]:
    """``(holder term or None, member term, family)`` of an account of a member of an asset
    family (see :meth:`Encoder.family_account`), None for any other account."""
    kind = comp.split("!")[0]
    if kind in ("fpool", "fsupply"):
        return None, idx, comp.split("!")[-1] if kind == "fsupply" else None
    if idx is not None and hasattr(idx, "get_id"):
        return getattr(enc, "family_parts", {}).get(idx.get_id())
    return None


def describe_read(enc: Any, model: z3.ModelRef, comp: str, idx: Any, namer: Namer,
                  policy: ir.Policy) -> tuple[str, Optional[str]]:
    """``(label, asset)`` of an account the model reads, as the policy writes them: a family
    member's account names its member, ``balance(@alice, Token["k1"])``."""
    parts = family_parts(enc, comp, idx)
    if parts is None:
        iv = _eval(model, idx) if idx is not None else None
        asset = _account_asset(comp) or (
            policy.pool(comp.split("!")[1]).asset if comp.startswith("pool!") else None)
        return _describe(comp, iv, namer), asset
    holder, member, family = parts
    kind, name = comp.split("!")[0], comp.split("!")[1]
    if kind == "fpool":
        family = policy.pool(name).asset
    asset = f"{family}[{json.dumps(namer.name(_eval(model, member), 'key'))}]"
    if kind == "bal":
        return f"balance(@{namer.name(_eval(model, holder), 'party')}, {asset})", asset
    if kind == "stake":
        return f"stake(@{namer.name(_eval(model, holder), 'party')}, {asset})", asset
    if kind == "fescrow":
        key = json.dumps(namer.name(_eval(model, holder), "key"))
        return f"balance({name}({key}), {asset})", asset
    if kind == "fpool":
        return f"balance({name}, {asset})", asset
    return f"supply({asset})", asset


def account_text(kind: str, name: str, holder: str = "") -> Optional[str]:
    """An account as Charter source: ``balance(@ann, Credit)``, ``stake(@ann, Credit)``,
    ``balance(commons)``, ``balance(Task("k"))``, ``supply(Rep)`` - the one spelling for the
    encoding's components (:func:`_describe`) and the runtime's account names
    (:func:`.observed.account_literal`).  ``kind``: bal, stake, pool, escrow or supply;
    ``name``: the asset (bal, stake, supply), pool or record; ``holder``: the party (bal,
    stake) or the record key (escrow).  None for another kind."""
    form = _ACCOUNT_FORMS.get(kind)
    return None if form is None else form.format(name=name, holder=holder, key=json.dumps(holder))


_ACCOUNT_FORMS = {
    "bal": "balance(@{holder}, {name})",
    "stake": "stake(@{holder}, {name})",
    "pool": "balance({name})",
    "escrow": "balance({name}({key}))",
    "supply": "supply({name})",
}


def _describe(comp: str, idx: Optional[int], namer: Namer) -> str:
    """An encoding component (``bal!Credit``, ``escrow!Task!Credit``...) at index ``idx``."""
    parts = comp.split("!")
    who = (
        namer.name(idx, "party" if parts[0] in ("bal", "stake") else "key")
        if idx is not None
        else ""
    )
    text = account_text(parts[0], parts[1], who) if len(parts) > 1 else None
    return text if text is not None else comp


def _param_cli(v: Any, t: ir.Type, policy: ir.Policy) -> str:
    if isinstance(v, dict) and "num" in v:
        return f"{v['num']}/{v['den']}"
    if isinstance(t, ir.TRatio) and isinstance(v, int):
        return str(v)
    if isinstance(t, ir.TAmount) and isinstance(v, int):
        return _show(v, t, policy).split(" ")[0]
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


def _literal(v: Any, t: ir.Type, policy: ir.Policy) -> str:
    """A plain (payload) value as a Charter literal: :func:`.source.value_literal`, the one
    spelling (durations in units, ratios as ``5%``); it imports this module, hence late."""
    from .source import value_literal

    return value_literal(v, t, policy)


def _account_literal(label: str) -> str:
    # "balance(@alice, Credit)" -> "@alice"; "balance(commons)" -> "commons";
    # "balance(Task(\"k1\"))" -> Task("k1")
    inner = label[label.index("(") + 1 : -1]
    if label.startswith("balance(@"):
        return inner.split(",")[0]
    if inner.endswith("]") and ", " in inner:  # a family account: `vault, Token["k1"]`
        return inner.rsplit(", ", 1)[0]
    return inner
