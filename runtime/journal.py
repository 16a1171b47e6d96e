"""The hash-chained journal: entry encoding, hashing and verification.

Every applied event becomes one entry::

    {"seq": 7, "event": {"id", "type", "submitter", "time", "args", "sig"?},
     "timers": [{"handler", "due", "key", "status", "reason"?}, ...],
     "postings": [[from, to, asset, amount, kind], ...], "flags": [...]}

Its hash is ``sha256(prev_hash + canonical_json(entry))`` (hex).  The first
``prev_hash`` is the *genesis* hash, which covers the policy (its source hash
or IR fingerprint) and the parameter values, so a journal cannot be replayed
against another policy unnoticed.
"""

from __future__ import annotations

import hashlib
import json
from json.encoder import c_make_encoder as _c_make_encoder
from json.encoder import encode_basestring as _json_str
from typing import Any, Iterable, Iterator, NamedTuple, Optional

import attrs

from charter.compiler import ir

from .ledger import Posting, balances_from_postings
from .values import canonical, to_json_value


def policy_fingerprint(policy: ir.Policy) -> str:
    """The policy's source hash, or (hand-built IR) a hash of its IR."""
    if policy.source_hash:
        return policy.source_hash
    return hashlib.sha256(canonical(ir.to_data(policy)).encode()).hexdigest()


def genesis_hash(policy: ir.Policy, params: dict[str, Any]) -> str:
    text = (
        "charter-journal-v1\n"
        + policy_fingerprint(policy)
        + "\n"
        + canonical(to_json_value(params))
    )
    return hashlib.sha256(text.encode()).hexdigest()


# CPython's C encoder, made once (json.dumps builds a new one on every call)
if _c_make_encoder is not None:
    # the same settings as values.canonical: sorted keys, no spaces, UTF-8 (no \u escapes)
    _c_canonical = _c_make_encoder(
        None, json.JSONEncoder().default, _json_str, None, ":", ",", True, False, True
    )

    def _canon(v: Any) -> str:
        return "".join(_c_canonical(v, 0))

else:  # pragma: no cover - Pythons without the C accelerator
    _canon = canonical


def encode_entry(
    seq: int,
    event_id: str,
    submitter: str,
    time: int,
    etype: str,
    args: dict[str, Any],
    timers: Any,
    postings: Any,
    flags: Any,
    sig: Any = None,
) -> str:
    """``canonical(entry)`` of one journal entry, byte for byte, written out directly.

    The entry's own keys and its event's keys are fixed, so they are laid
    out here in sorted order; only the variable parts (arguments, timers,
    postings, flags) go through the canonical encoder.  ``event_id``,
    ``submitter`` and ``etype`` must be ``str`` and ``seq``/``time`` ``int``
    (the engine has checked the envelope); ``args`` must already be JSON
    values.  ``sig`` is a signed event's signature block (``{"key", "signed",
    "value"}``, see :mod:`charter.runtime.signing`), absent from unsigned
    entries.  ``tests/runtime/test_journal_encoding.py`` holds it to
    :func:`~charter.runtime.values.canonical`.
    """
    return (
        '{"event":{"args":' + (_canon(args) if args else "{}")
        + ',"id":' + _json_str(event_id)
        + (',"sig":' + _canon(sig) if sig is not None else "")
        + ',"submitter":' + _json_str(submitter)
        + ',"time":' + int.__repr__(time)
        + ',"type":' + _json_str(etype)
        + '},"flags":' + (_canon(flags) if flags else "[]")
        + ',"postings":' + (_canon(postings) if postings else "[]")
        + ',"seq":' + int.__repr__(seq)
        + ',"timers":' + (_canon(timers) if timers else "[]")
        + "}"
    )  # fmt: skip


def chain(prev: str, entry_json: str) -> str:
    # surrogatepass: a hand-edited row with a lone surrogate is reported, not a crash
    return hashlib.sha256((prev + entry_json).encode("utf-8", "surrogatepass")).hexdigest()


class JournalRow(NamedTuple):
    """One stored journal entry (a NamedTuple: cheap to create once per event)."""

    seq: int
    event_id: str
    entry: str  # canonical JSON
    hash: str

    def data(self) -> dict[str, Any]:
        return json.loads(self.entry)

    def postings(self) -> list[Posting]:
        return [Posting(*p) for p in self.data()["postings"]]


@attrs.frozen
class AuditReport:
    ok: bool
    entries: int
    head: str
    problems: tuple[str, ...]
    balances_checked: int
    signatures: int = 0  # signatures re-verified (runtime/signing.py)

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "entries": self.entries,
            "head": self.head,
            "problems": list(self.problems),
            "balances_checked": self.balances_checked,
            "signatures": self.signatures,
        }


def verify_chain(
    rows: Iterable[JournalRow], genesis: str, first_seq: int = 1
) -> tuple[list[str], str, int, list[Posting]]:
    """Re-hash every entry; returns (problems, head, count, all postings).

    ``genesis`` is the hash before the first row, which should be entry
    ``first_seq`` (the open-time check verifies only the newest entries)."""
    problems: list[str] = []
    prev = genesis
    n = 0
    postings: list[Posting] = []
    for row in rows:
        expect = first_seq + n
        n += 1
        where = f"journal entry {row.seq} (event {row.event_id!r})"
        if row.seq != expect:
            problems.append(
                f"{where}: sequence number {row.seq}, expected {expect} "
                "(entry missing or reordered)"
            )
        if not (isinstance(row.entry, str) and isinstance(row.hash, str)):
            problems.append(f"{where}: entry or hash is not text (edited by hand?)")
            prev = str(row.hash)
            continue
        try:
            data = json.loads(row.entry)
            ev_id = data["event"]["id"]
            ps = [Posting(*p) for p in data["postings"]]
            canon = canonical(data)
            for p in ps:  # hand-edited postings must not crash the balance recomputation
                if not (type(p.amount) is int and isinstance(p.src, str) and isinstance(p.dst, str)):
                    raise TypeError(f"malformed posting {list(p)!r}")
        except (ValueError, KeyError, TypeError, RecursionError) as exc:
            problems.append(f"{where}: entry is not valid journal JSON ({exc})")
            prev = row.hash
            continue
        if data.get("seq") != row.seq or ev_id != row.event_id:
            problems.append(f"{where}: entry content names seq {data.get('seq')} / event {ev_id!r}")
        if canon != row.entry:
            problems.append(f"{where}: entry is not in canonical form (edited by hand?)")
        h = chain(prev, row.entry)
        if h != row.hash:
            problems.append(
                f"{where}: hash does not match its content and predecessor (modified row)"
            )
        postings.extend(ps)
        prev = row.hash
    return problems, prev, n, postings


def compare_balances(recomputed: dict[str, int], stored: dict[str, int]) -> list[str]:
    problems = []
    for acc in sorted(set(recomputed) | set(stored)):
        a, b = recomputed.get(acc, 0), stored.get(acc, 0)
        if a != b:
            problems.append(f"balance of {acc} is {b} but the journal's postings give {a}")
    return problems


def audit_rows(
    rows: Iterable[JournalRow],
    genesis: str,
    stored_balances: dict[str, int],
    asset_of: Optional[dict[str, str]] = None,
    credit: Optional[dict[str, int]] = None,
) -> AuditReport:
    """``credit``: the policy's credit lines (asset -> how far below zero a party's own
    account may go)."""
    problems, head, n, postings = verify_chain(rows, genesis)
    recomputed = balances_from_postings(postings)
    problems += compare_balances(recomputed, stored_balances)
    for acc, bal in sorted(recomputed.items()):
        if bal < 0 and not acc.startswith("supply:"):
            line = credit.get(acc.rpartition(":")[2], 0) if credit and \
                acc.startswith("party:") else 0
            if bal < -line:
                problems.append(f"account {acc} is negative ({bal}) in the journal"
                                + (f", beyond its credit line of {line}" if line else ""))
    return AuditReport(
        ok=not problems,
        entries=n,
        head=head,
        problems=tuple(problems),
        balances_checked=len(set(recomputed) | set(stored_balances)),
    )


def iter_events(rows: Iterable[JournalRow]) -> Iterator[dict[str, Any]]:
    for row in rows:
        yield json.loads(row.entry)["event"]
