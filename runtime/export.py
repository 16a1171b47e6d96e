"""Ledger exports for the tools analysts already use: Beancount, CSV, JSON Lines.

Each streams the journal (memory does not grow with its length) and writes text:

* ``jsonl``: one line per journal entry, the canonical entry with ``hash`` (its chain hash);
* ``parquet`` (pyarrow): the CSV's columns (``amount`` as int64 minor units), written
  in row groups of 65,536 postings;
* ``csv``: one row per posting (``seq, event_id, time, type, submitter, from, to, asset,
  amount`` in minor units, ``amount_decimal``, ``kind``);
* ``beancount``: one transaction per entry with postings, dated from the event time
  (seconds since 1970-01-01 UTC; the exact time, event id, seq and chain hash are metadata),
  ``open`` directives for every account, and a ``balance`` assertion per account a day after
  the last entry from the ledger's stored balances, so ``bean-check`` proves they agree.

Account mapping (docs/runtime.rst): ``party:P:A`` -> ``Assets:Parties:<P>``,
``pool:N`` -> ``Assets:Pools:<N>``, ``escrow:R:K:A`` -> ``Assets:Escrow:<R>:<K>``,
``stake:P:A`` -> ``Assets:Stakes:<P>``, ``supply:A`` -> ``Equity:Supply`` (what was minted;
its balance is minus the supply).  Each name part becomes a Beancount component: ``X``
then the part with every character other than ASCII letters and digits written ``-HH``
(hex), so distinct names stay distinct.  Assets become commodities in upper case
(``Credit`` -> ``CREDIT``); two assets that differ only by case are refused.
"""

from __future__ import annotations

import csv
import datetime as _dt
import json
import re
from typing import Any, Iterable, TextIO

FORMATS = ("beancount", "csv", "jsonl", "parquet")
_COLUMNS = ("seq", "event_id", "time", "type", "submitter", "from", "to", "asset", "amount",
            "kind")
_EPOCH = _dt.datetime(1970, 1, 1, tzinfo=_dt.timezone.utc)
_COMMODITY = re.compile(r"^[A-Z][A-Z0-9'._-]{0,22}[A-Z0-9]?$")


class ExportError(ValueError):
    pass


def component(part: str) -> str:
    return "X" + "".join(c if c.isascii() and c.isalnum() else f"-{ord(c):02X}" for c in part)


def bean_account(acc: str) -> str:
    kind, _, rest = acc.partition(":")
    parts = rest.split(":")
    if kind == "party" and len(parts) >= 2:
        return "Assets:Parties:" + component(":".join(parts[:-1])) + ":" + component(parts[-1])
    if kind == "stake" and len(parts) >= 2:
        return "Assets:Stakes:" + component(":".join(parts[:-1])) + ":" + component(parts[-1])
    if kind == "pool":
        return "Assets:Pools:" + component(rest)
    if kind == "escrow" and len(parts) >= 3:
        return ("Assets:Escrow:" + component(parts[0]) + ":" + component(":".join(parts[1:-1]))
                + ":" + component(parts[-1]))
    if kind == "supply":
        return "Equity:Supply:" + component(rest)
    return "Assets:Other:" + component(acc)


def commodity(asset: str) -> str:
    # a member of an asset family, `Token[USDC]`, is the commodity TOKEN.USDC
    family, _, key = asset.partition("[")
    c = (family + "." + key[:-1] if key.endswith("]") else asset).upper()
    if not _COMMODITY.match(c):
        raise ExportError(f"asset {asset!r} cannot be a Beancount commodity ({c!r})")
    return c


def _decimal(amount: int, decimals: int) -> str:
    sign = "-" if amount < 0 else ""
    a = abs(amount)
    if not decimals:
        return f"{sign}{a}"
    return f"{sign}{a // 10 ** decimals}.{a % 10 ** decimals:0{decimals}d}"


def _date(t: Any) -> str:
    try:
        return (_EPOCH + _dt.timedelta(seconds=int(t))).date().isoformat()
    except (OverflowError, ValueError, TypeError):
        raise ExportError(f"event time {t!r} is beyond the dates Beancount can hold") from None


_I64 = 1 << 63


def _entry(row: Any) -> dict[str, Any]:
    """The entry of journal row ``row``, or ExportError when it is not a journal entry of the
    shape the exports read (a damaged or edited file; ``charter audit`` says more)."""
    def bad(why: str) -> ExportError:
        return ExportError(f"journal entry {str(row.seq)[:20]} cannot be exported: {why} "
                           "(the ledger is damaged or was edited; `charter audit` says more)")

    if not isinstance(row.entry, str):
        raise bad("it is unreadable")
    try:
        data = json.loads(row.entry)
    except (ValueError, RecursionError):
        raise bad("it is not JSON") from None
    e = data.get("event") if isinstance(data, dict) else None
    if not (isinstance(e, dict) and all(isinstance(e.get(k), str) for k in
                                        ("id", "type", "submitter"))
            and type(e.get("time")) is int and -_I64 <= e["time"] < _I64):
        raise bad("its event has no id, type, submitter and time")
    ps = data.get("postings")
    if not isinstance(ps, list) or not all(
        isinstance(p, list) and len(p) == 5 and all(isinstance(p[i], str) for i in (0, 1, 2, 4))
        and type(p[3]) is int and -_I64 <= p[3] < _I64 for p in ps
    ):
        raise bad("its postings are not [from, to, asset, amount, kind] lists")
    return data


def _q(text: Any) -> str:
    return json.dumps(str(text), ensure_ascii=True)


def export(rows: Iterable[Any], fmt: str, out: TextIO, decimals: dict[str, int],
           balances: dict[str, int]) -> int:
    """Write ``rows`` (journal rows with hashes) as ``fmt``; returns the entries written."""
    if fmt not in FORMATS:
        raise ExportError(f"unknown format {fmt!r} (one of {', '.join(FORMATS)})")
    n = 0
    if fmt == "parquet":
        return _parquet(rows, out)
    if fmt == "jsonl":
        for row in rows:
            data = _entry(row)
            data["hash"] = row.hash
            out.write(json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
                      + "\n")
            n += 1
        return n
    if fmt == "csv":
        w = csv.writer(out, lineterminator="\n")
        w.writerow(["seq", "event_id", "time", "type", "submitter", "from", "to", "asset",
                    "amount", "amount_decimal", "kind"])
        for row in rows:
            ev = _entry(row)
            e = ev["event"]
            for src, dst, asset, amount, kind in ev["postings"]:
                w.writerow([row.seq, e["id"], e["time"], e["type"], e["submitter"], src, dst,
                            asset, amount, _decimal(amount, decimals.get(asset, 0)), kind])
            n += 1
        return n
    seen: dict[str, str] = {}  # account -> asset (accounts are few; entries are streamed)
    comms: dict[str, str] = {}
    last = "1970-01-01"
    out.write('option "title" "Charter ledger export"\n\n')
    for row in rows:
        ev = _entry(row)
        ps = ev["postings"]
        n += 1
        if not ps:
            continue
        e = ev["event"]
        last = max(last, _date(e["time"]))
        out.write(f'{_date(e["time"])} * {_q(e["submitter"])} {_q(e["type"] + " " + e["id"])}\n'
                  f'  event: {_q(e["id"])}\n  seq: {row.seq}\n  time: {e["time"]}\n'
                  f'  hash: {_q(row.hash)}\n')
        for src, dst, asset, amount, kind in ps:
            c = comms.get(asset)
            if c is None:
                c = comms[asset] = commodity(asset)
                if list(comms.values()).count(c) > 1:  # Token[usdc] and Token[USDC]
                    other = next(a for a, x in comms.items() if x == c and a != asset)
                    raise ExportError(f"assets {other!r} and {asset!r} would both be the "
                                      f"Beancount commodity {c!r}")
            seen.setdefault(src, asset)
            seen.setdefault(dst, asset)
            d = _decimal(amount, decimals.get(asset, 0))
            out.write(f"  {bean_account(src)}  -{d} {c}\n    kind: {_q(kind)}\n"
                      f"  {bean_account(dst)}  {d} {c}\n")
        out.write("\n")
    if len(set(comms.values())) != len(comms):
        raise ExportError("two assets differ only by case: Beancount commodities would clash")
    for acc in sorted(set(seen) | set(balances)):
        if acc not in seen:
            continue
        out.write(f"1970-01-01 open {bean_account(acc)} {comms[seen[acc]]}\n")
    after = (_dt.date.fromisoformat(last) + _dt.timedelta(days=1)).isoformat()
    for acc in sorted(seen):
        asset = seen[acc]
        out.write(f"{after} balance {bean_account(acc)}  "
                  f"{_decimal(balances.get(acc, 0), decimals.get(asset, 0))} {comms[asset]}\n")
    return n


# postings per Parquet row group: the Python lists of one group and its Arrow copy are
# what the export holds (16,384 keeps it near pyarrow's own footprint at any ledger size)
_ROW_GROUP = 16384


def _parquet(rows: Iterable[Any], path: Any) -> int:
    """``path``: a file name (Parquet is binary; the CLI passes -o)."""
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise ExportError("--format parquet needs pyarrow (pip install pyarrow)") from None
    schema = pa.schema([("seq", pa.int64()), ("event_id", pa.string()), ("time", pa.int64()),
                        ("type", pa.string()), ("submitter", pa.string()), ("from", pa.string()),
                        ("to", pa.string()), ("asset", pa.string()), ("amount", pa.int64()),
                        ("kind", pa.string())])
    cols: dict[str, list] = {c: [] for c in _COLUMNS}
    n = 0
    with pq.ParquetWriter(path, schema) as w:
        def spill() -> None:
            w.write_table(pa.table(cols, schema=schema))
            for v in cols.values():
                v.clear()

        for row in rows:
            ev = _entry(row)
            e = ev["event"]
            for src, dst, asset, amount, kind in ev["postings"]:
                for c, v in zip(_COLUMNS, (row.seq, e["id"], e["time"], e["type"],
                                           e["submitter"], src, dst, asset, amount, kind)):
                    cols[c].append(v)
            n += 1
            if len(cols["seq"]) >= _ROW_GROUP:
                spill()
        spill()
    return n
