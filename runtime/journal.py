"""The hash-chained journal: entry encoding, hashing and verification.

Every applied event becomes one entry::

    {"seq": 7, "event": {"id", "type", "submitter", "time", "args", "sig"?},
     "timers": [{"handler", "due", "key", "status", "reason"?}, ...],
     "postings": [[from, to, asset, amount, kind], ...], "flags": [...]}

Its hash is ``sha256(prev_hash + canonical_json(entry))`` (hex).  The first
``prev_hash`` is the *genesis* hash, which covers the policy (its source hash
or IR fingerprint) and the parameter values, so a journal cannot be replayed
against another policy unnoticed.

The canonical JSON text is what is hashed, signed and compared; every store
hashes exactly it.  What a store *keeps* may be more compact (this module is
the one place that defines it, so every store keeps the same bytes):

* :class:`EntryCodec` -- the entry text as raw DEFLATE primed with a
  dictionary made from the policy's own names (:func:`entry_dictionary`,
  recorded in the ledger's metadata as ``entry_dict``); consecutive entries
  of one anchor block go in one stream (a *chunk*, :data:`CHUNK`), which
  costs a fraction of the time and bytes: about 43 bytes for a 250-byte
  gig-market entry, decoded back to the identical text;
* the chain hash is implied by the entries, so a store keeps it only every
  :data:`ANCHOR_EVERY` entries (an *anchor*; the checkpoint keeps the head);
  :func:`verify_chain` re-hashes and compares at every kept hash, and
  :func:`with_hashes` fills in the others for readers (history, receipts).
"""

from __future__ import annotations

import hashlib
import json
import zlib
from json.encoder import c_make_encoder as _c_make_encoder
from json.encoder import encode_basestring as _json_str
from typing import Any, Iterable, Iterator, NamedTuple, Optional

import attrs

from .ledger import Posting
from .values import canonical, to_json_value


def policy_fingerprint(policy: Any) -> str:
    """The policy's source hash, or (hand-built IR) a hash of its IR."""
    if policy.source_hash:
        return policy.source_hash
    from charter.compiler import ir

    return hashlib.sha256(canonical(ir.to_data(policy)).encode()).hexdigest()


def genesis_hash(policy: Any, params: dict[str, Any]) -> str:
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


try:  # msgspec writes the same canonical text (sorted keys, no spaces, UTF-8) ~6x faster
    import msgspec as _msgspec

    _fast_canon: Any = _msgspec.json.Encoder(order="sorted").encode

    # The entry's own keys and its event's are fixed: as Structs whose fields are declared in
    # sorted order, msgspec writes them without building and sorting two dicts per entry
    # (half the encoder's time); everything inside (arguments, timers, flags) is still
    # sorted by the encoder.  ``_EventSig`` is a signed event's (``sig`` between ``id``
    # and ``submitter``, as sorting puts it).  Made and dropped once per entry, never in a
    # cycle: not tracked by the garbage collector (gc=False).
    class _Event(_msgspec.Struct, gc=False):
        args: Any
        id: str
        submitter: str
        time: int
        type: str

    class _EventSig(_msgspec.Struct, gc=False):
        args: Any
        id: str
        sig: Any
        submitter: str
        time: int
        type: str

    class _Entry(_msgspec.Struct, gc=False):
        event: Any
        flags: Any
        postings: Any
        seq: int
        timers: Any

except ImportError:  # pragma: no cover - msgspec is a dependency; the encoder below suffices
    _fast_canon = None


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
    """``canonical(entry)`` of one journal entry, byte for byte.

    ``event_id``, ``submitter`` and ``etype`` must be ``str`` and
    ``seq``/``time`` ``int`` (the engine has checked the envelope); ``args``
    must already be JSON values.  ``sig`` is a signed event's signature block
    (``{"key", "signed", "value"}``, see :mod:`charter.runtime.signing`),
    absent from unsigned entries.  msgspec's sorted-key encoder writes the
    entry in one call; whatever it refuses (a lone surrogate, say) goes to
    :func:`encode_entry_text`, which words the failure exactly as before.
    ``tests/runtime/test_journal_encoding.py`` holds both to
    :func:`~charter.runtime.values.canonical`.
    """
    if _fast_canon is not None:
        try:
            event = (
                _Event(args, event_id, submitter, time, etype)
                if sig is None
                else _EventSig(args, event_id, sig, submitter, time, etype)
            )
            return _fast_canon(_Entry(event, flags, postings, seq, timers)).decode()
        except Exception:  # noqa: BLE001 - the encoder below decides (and words any failure)
            pass
    return encode_entry_text(seq, event_id, submitter, time, etype, args, timers, postings, flags,
                             sig)


def encode_entry_text(
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
    """:func:`encode_entry` with the standard library's encoder alone.

    The entry's own keys and its event's keys are fixed, so they are laid
    out here in sorted order; only the variable parts (arguments, timers,
    postings, flags) go through the canonical encoder."""
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


# ------------------------------------------------------------------ compact storage

# Recorded in a ledger's metadata: how its entries are kept.  ``deflate-dict-3`` (ledger
# schema 7): the whole entry texts, newline-joined, one raw DEFLATE stream (level 3, a 32 KB
# window) per chunk.  ``deflate-dict-2`` (schemas 5 and 6): each text without its seq and
# event id (:func:`_strip`), level 6 with a 2 KB window.  ``deflate-dict-1`` (schema 4):
# whole texts, each on its own, as ``-2``'s stream.  Stripping saved 7 bytes an entry but
# cost as much time as the compression itself (and level 6 twice level 3's): a ledger
# writer now spends on its entries about a third of what ``-2`` did.  The older codecs
# are read by the migration (``charter ledger migrate``) and written by the tests'
# downgrade of a ledger to an older schema.
ENTRY_CODEC = "deflate-dict-3"
ENTRY_CODEC_V2 = "deflate-dict-2"
ENTRY_CODEC_V1 = "deflate-dict-1"
# codec -> (DEFLATE level, window bits, memory level, entries stripped of seq and id)
_CODECS = {
    ENTRY_CODEC: (3, 15, 8, False),
    ENTRY_CODEC_V2: (6, 11, 5, True),
    ENTRY_CODEC_V1: (6, 11, 5, False),
}
# A packed entry that starts with this byte holds the whole text, seq and id included, and is
# no chunk (``-2``: an entry whose text the stripping cannot reproduce exactly, or one written
# by a tool that knows no seq; ``-3``: an entry holding a raw newline, which no canonical text
# does).  No raw DEFLATE stream starts with it: BFINAL=1 with block type 3, which DEFLATE
# reserves as an error.
_WHOLE = b"\x07"
# A packed blob that starts with this byte is a *chunk*: the texts (``-3``: whole, ``-2``:
# stripped) of consecutive entries of one anchor block (:func:`block_of`), newline-separated
# (canonical JSON holds no raw newline), in one DEFLATE stream, kept in the row of the first
# of them (the chunk's *head*); the chunk's other rows keep an empty blob.  One stream per
# chunk instead of one per entry: DEFLATE's cost is mostly per stream.  No raw DEFLATE
# stream starts with this byte either (BFINAL=0 with the reserved block type 3).
CHUNK = b"\x06"
ANCHOR_EVERY = 32  # a store keeps the chain hash of every entry whose seq is a multiple of this
_KINDS = ("transfer", "escrow", "release", "refund", "split", "mint", "burn", "decay", "stake")
_DICT_MAX = 2048  # entry_dictionary's length (the -1/-2 codecs' window, 2**11, held it whole)


def entry_dictionary(policy: Any) -> str:
    """The DEFLATE dictionary of a policy's journal entries: the JSON skeleton of an entry,
    its event types with their argument names, account prefixes, assets, posting kinds.

    Deterministic (the same policy gives the same text), so two stores of one policy
    keep identical bytes; the most common strings come last (DEFLATE codes short
    distances in fewer bits)."""
    parts: list[str] = []
    parts += [f'"{k}"]' for k in _KINDS]
    for r in policy.records:
        parts.append(f'"escrow:{r.name}:')
    for role in policy.roles:
        parts.append(f'"{role.name}"')
    for a in policy.assets:
        parts.append(f'["supply:{a.name}","party:')
        parts.append(f':{a.name}","{a.name}",')
    for p in policy.pools:
        parts.append(f'"pool:{p.name}",')
    parts.append('"timers":[{"due":,"handler":"","key":"","status":"applied"}]')
    for h in policy.handlers:
        if h.kind != "event":
            parts.append(f'"handler":"{h.name}"')
            continue
        args = ",".join(f'"{f.name}":' for f in sorted(h.params, key=lambda f: f.name))
        parts.append(f'{{"event":{{"args":{{{args}}},"submitter":"","time":,"type":"{h.name}"}},')
    parts.append('"flags":[],"postings":[],"timers":[]}')
    text = "".join(parts)
    return text[-_DICT_MAX:] if len(text.encode()) > _DICT_MAX else text


def _strip(entry: str, seq: int, event_id: str) -> Optional[str]:
    """``entry`` without its ``"seq"`` member and its event's ``"id"``, or None when
    :func:`_unstrip` would not give the very same text back."""
    seq_txt = ',"seq":' + int.__repr__(seq)
    i = entry.rfind(seq_txt + ',"timers":[')
    id_txt = ',"id":' + _json_str(event_id)
    j = entry.find(id_txt + ",")
    if i < 0 or j < 0 or j > i:
        return None
    rest = j + len(id_txt)
    out = entry[:j] + entry[rest:i] + entry[i + len(seq_txt) :]
    # _unstrip puts the id back at the first ',"submitter":' (or a ',"sig":{' before it) and
    # the seq after the last '],"timers":[''s ']': the very places they came from exactly when
    # these hold (neither marker can straddle the cut: each holds ',"' only at its start)
    head = entry[:j]
    if ',"submitter":' in head or ',"sig":{' in head:
        return None
    if entry.startswith(',"sig":{', rest):
        if out.find(',"submitter":', j) < 0:
            return None
    elif not entry.startswith(',"submitter":', rest):
        return None
    if out.rfind('],"timers":[') != i - 1 - len(id_txt):
        return None
    return out


def _unstrip(text: str, seq: int, event_id: str) -> Optional[str]:
    """Put ``seq`` and the event ``id`` back where canonical JSON has them: ``seq`` before
    the entry's last key (``timers``: a quote inside a string is escaped, so ``],"timers":[``
    is never inside one), the id after ``args`` (before ``sig`` or ``submitter``)."""
    i = text.rfind('],"timers":[')
    k = text.find(',"submitter":')
    if i < 0 or k < 0:
        return None
    g = text.find(',"sig":{', 0, k)
    if g >= 0:
        k = g
    return (text[:k] + ',"id":' + _json_str(event_id) + text[k : i + 1]
            + ',"seq":' + int.__repr__(seq) + text[i + 1 :])


class EntryCodec:
    """Entry text <-> the bytes a store keeps: raw DEFLATE primed with the ledger's
    dictionary, for one of the codecs of :data:`_CODECS` (the current one by default).

    ``-3`` keeps each text whole, so any entry comes back byte for byte; the row's seq
    and event id are columns of their own, and :func:`verify_chain` checks that the text
    names the same ones.  ``-2`` keeps the text without the ``seq`` and event id the row
    has: ``pack`` checks that the stripped text gives the entry back exactly, and keeps
    any entry that would not (hand-made, or with an id that also appears earlier) whole,
    marked by a leading :data:`_WHOLE` byte.  ``-1`` keeps every text whole, unmarked.
    DEFLATE is deterministic for one zlib build; the hash never depends on it (it covers
    the text), so a ledger stays valid whatever zlib later reads it."""

    __slots__ = ("dictionary", "codec", "strip", "chunks", "_level", "_wbits", "_mem", "_zd",
                 "_d")

    def __init__(self, dictionary: str, codec: str = ENTRY_CODEC):
        self.dictionary = dictionary
        self.codec = codec
        self._level, self._wbits, self._mem, self.strip = _CODECS[codec]
        self.chunks = codec != ENTRY_CODEC_V1  # -1 packs each entry on its own
        self._zd = dictionary.encode("utf-8", "surrogatepass")[-(1 << self._wbits):]
        # primed once; each entry gets a copy (cheaper than priming again)
        self._d = zlib.decompressobj(-self._wbits, self._zd)

    def _deflate(self, text: str) -> bytes:
        # a fresh stream primed with the dictionary: cheaper than copying a primed one
        # (a 32 KB window's state is ~256 KB to copy)
        c = zlib.compressobj(self._level, zlib.DEFLATED, -self._wbits, self._mem,
                             zlib.Z_DEFAULT_STRATEGY, self._zd)
        return c.compress(text.encode("utf-8", "surrogatepass")) + c.flush()

    def pack(self, entry: str, seq: Optional[int] = None, event_id: Optional[str] = None) -> bytes:
        """The bytes kept for ``entry`` on its own (the entry of row ``seq`` /
        ``event_id``; ``-2`` strips them when it can)."""
        if not self.chunks:
            return self._deflate(entry)
        short = self.stripped(entry, seq, event_id) if self.strip else (
            entry if "\n" not in entry else None)
        if short is not None:
            return self._deflate(short)
        return _WHOLE + self._deflate(entry)

    def stripped(self, entry: str, seq: Any, event_id: Any) -> Optional[str]:
        """The text a chunk keeps for an entry (``-3``: the entry; ``-2``: without its seq
        and id), or None when the entry must be kept whole, on its own (see :meth:`pack`)."""
        if not self.strip:
            return entry if self.chunks and "\n" not in entry else None
        if type(seq) is not int or type(event_id) is not str:
            return None
        short = _strip(entry, seq, event_id)
        return short if short is not None and "\n" not in short else None

    def pack_run(self, texts: list[str]) -> bytes:
        """The head's blob of a run of consecutive chunk texts (:meth:`stripped`): a
        chunk, or the one entry packed on its own."""
        if len(texts) == 1:
            return self._deflate(texts[0])
        return CHUNK + self._deflate("\n".join(texts))

    def _inflate(self, data: bytes) -> Optional[str]:
        try:
            d = self._d.copy()
            raw = d.decompress(data, 1 << 26)
            if not d.eof or d.unconsumed_tail or d.unused_data:
                return None
            return raw.decode("utf-8", "surrogatepass")
        except (zlib.error, UnicodeDecodeError, MemoryError):
            return None

    def run_texts(self, blob: Any) -> Optional[list[str]]:
        """The chunk texts a head row's blob holds (one for an entry packed on its own),
        or None when it holds none (a whole entry, a damaged blob)."""
        if type(blob) is not bytes or not blob or not self.chunks or blob[:1] == _WHOLE:
            return None
        if blob[:1] == CHUNK:
            text = self._inflate(blob[1:])
            return None if text is None else text.split("\n")
        text = self._inflate(blob)
        return None if text is None else [text]

    def in_run(self, texts: Optional[list[str]], head: int, seq: Any, event_id: Any) -> Optional[str]:
        """The text of entry ``seq`` of the run whose head is entry ``head`` (None when the
        run does not hold it)."""
        if texts is None or type(seq) is not int or type(event_id) is not str:
            return None
        i = seq - head
        if not (0 <= i < len(texts)) or block_of(seq) != block_of(head):
            return None
        return _unstrip(texts[i], seq, event_id) if self.strip else texts[i]

    def unpack(self, blob: Any, seq: Any = None, event_id: Any = None) -> Optional[str]:
        """The entry's text, or None when ``blob`` is not a well-formed packed entry (or,
        ``-2``, the row's ``seq``/``event_id`` it needs are not an int and a text).  A
        chunk's head gives its own (first) entry; the chunk's other rows need the head
        (:meth:`in_run`)."""
        if type(blob) is not bytes:
            return None
        if not self.chunks:
            return self._inflate(blob)
        if blob[:1] == _WHOLE:
            return self._inflate(blob[1:])
        texts = self.run_texts(blob)
        if texts is None:
            return None
        if not self.strip:
            return texts[0]
        if type(seq) is not int or type(event_id) is not str:
            return None
        return _unstrip(texts[0], seq, event_id)


def block_of(seq: int) -> int:
    """The anchor block of entry ``seq`` (a chunk never spans two)."""
    return seq // ANCHOR_EVERY


# The per-account index (a ledger file's ``account_block`` table) names, for each account,
# the blocks of 2**BLOCK_SHIFT consecutive entries whose postings touch it, the account by
# a 31-bit tag (CRC-32): a few bytes per (account, block) instead of a row per posting.
# A tag two accounts share only makes a reader scan a block more; it filters by name.
BLOCK_SHIFT = 10


def account_tag(account: str) -> int:
    return zlib.crc32(account.encode("utf-8", "surrogatepass")) & 0x7FFFFFFF


def is_anchor(seq: int) -> bool:
    return seq % ANCHOR_EVERY == 0


def anchor_at_or_before(seq: int) -> int:
    """The seq of the newest anchor at or before ``seq`` (0: the genesis hash)."""
    return seq - seq % ANCHOR_EVERY if seq > 0 else 0


def with_hashes(rows: Iterable["JournalRow"], prev: str) -> Iterator["JournalRow"]:
    """``rows`` with every hash filled in by chaining from ``prev`` (the hash before the
    first row).  For readers (history, receipts, replay); verification is
    :func:`verify_chain`'s job."""
    for row in rows:
        entry = row.entry
        prev = chain(prev, entry) if isinstance(entry, str) else str(row.hash)
        if row.hash != prev:
            row = row._replace(hash=prev)
        yield row


def chain(prev: str, entry_json: str) -> str:
    # surrogatepass: a hand-edited row with a lone surrogate is reported, not a crash
    return hashlib.sha256((prev + entry_json).encode("utf-8", "surrogatepass")).hexdigest()


class JournalRow(NamedTuple):
    """One stored journal entry (a NamedTuple: cheap to create once per event)."""

    seq: int
    event_id: str
    entry: str  # canonical JSON
    hash: Optional[str]  # hex; a store returns None where it keeps no hash (see ANCHOR_EVERY)

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
    rows: Iterable[JournalRow], genesis: str, first_seq: int = 1,
    blocks: Optional[set[int]] = None,
    bal: Optional[dict[str, int]] = None,
) -> tuple[list[str], str, int, dict[str, int]]:
    """Re-hash every entry; returns (problems, head, count, balances from the postings).

    ``genesis`` is the hash before the first row, which should be entry
    ``first_seq`` (the open-time check verifies only the newest entries).
    Streams: memory does not grow with the number of rows.  ``blocks``, when
    given, receives the per-account index the postings imply (``tag << 32 | block``
    for every account of every posting, see :data:`BLOCK_SHIFT`).  ``bal``, when
    given, is the dict the postings are summed into (``runtime/auditpass.py`` empties
    it into a scratch file between rows: the audit's memory stays bounded)."""
    problems: list[str] = []
    prev = genesis
    n = 0
    since_kept = first_seq
    if bal is None:
        bal = {}
    get = bal.get
    loads = json.loads
    for row in rows:
        expect = first_seq + n
        n += 1
        where = f"journal entry {row.seq} (event {row.event_id!r})"
        if row.seq != expect:
            problems.append(
                f"{where}: sequence number {row.seq}, expected {expect} "
                "(entry missing or reordered)"
            )
        if not isinstance(row.entry, str) or not (row.hash is None or isinstance(row.hash, str)):
            problems.append(f"{where}: entry or hash is not readable (edited by hand?)")
            prev = str(row.hash)
            continue
        try:
            data = loads(row.entry)
            ev_id = data["event"]["id"]
            ps = [Posting(*p) for p in data["postings"]]
            canon = _canon(data)
            for p in ps:  # hand-edited postings must not crash the balance recomputation
                if not (type(p.amount) is int and isinstance(p.src, str) and isinstance(p.dst, str)):
                    raise TypeError(f"malformed posting {list(p)!r}")
        except (ValueError, KeyError, TypeError, RecursionError) as exc:
            problems.append(f"{where}: entry is not valid journal JSON ({exc})")
            prev = row.hash if row.hash is not None else chain(prev, row.entry)
            continue
        if data.get("seq") != row.seq or ev_id != row.event_id:
            problems.append(f"{where}: entry content names seq {data.get('seq')} / event {ev_id!r}")
        if canon != row.entry:
            problems.append(f"{where}: entry is not in canonical form (edited by hand?)")
        h = chain(prev, row.entry)
        if row.hash is None:
            prev = h  # not kept: implied by the entry; the next kept hash checks it
        else:
            if h != row.hash:
                since = f"entries {since_kept}-{row.seq}" if since_kept < row.seq else "the entry"
                problems.append(
                    f"{where}: the kept hash does not match the content of {since} and "
                    "the hash before (modified row)"
                )
            prev = row.hash
            since_kept = row.seq + 1
        for src, dst, _asset, amount, _kind in ps:
            bal[src] = get(src, 0) - amount
            bal[dst] = get(dst, 0) + amount
        if blocks is not None and ps and type(row.seq) is int:
            blk = row.seq >> BLOCK_SHIFT
            for p in ps:
                blocks.add(account_tag(p.src) << 32 | blk)
                blocks.add(account_tag(p.dst) << 32 | blk)
    return problems, prev, n, bal


def compare_balances(recomputed: dict[str, int], stored: dict[str, int]) -> list[str]:
    problems = []
    for acc in sorted(set(recomputed) | set(stored)):
        a, b = recomputed.get(acc, 0), stored.get(acc, 0)
        if a != b:
            problems.append(balance_problem(acc, a, b))
    return problems


def balance_problem(acc: str, recomputed: Any, stored: Any) -> str:
    return f"balance of {acc} is {stored} but the journal's postings give {recomputed}"


def negative_problem(acc: str, bal: int, credit: Optional[dict[str, int]]) -> Optional[str]:
    """What is wrong with account ``acc`` ending at ``bal`` by the journal's postings (a
    party's own account below its credit line, any other but a supply below zero)."""
    if bal < 0 and not acc.startswith("supply:"):
        line = credit.get(acc.rpartition(":")[2], 0) if credit and \
            acc.startswith("party:") else 0
        if bal < -line:
            return (f"account {acc} is negative ({bal}) in the journal"
                    + (f", beyond its credit line of {line}" if line else ""))
    return None


def audit_rows(
    rows: Iterable[JournalRow],
    genesis: str,
    stored_balances: dict[str, int],
    asset_of: Optional[dict[str, str]] = None,
    credit: Optional[dict[str, int]] = None,
    blocks: Optional[set[int]] = None,
) -> AuditReport:
    """``credit``: the policy's credit lines (asset -> how far below zero a party's own
    account may go); ``blocks``: see :func:`verify_chain`."""
    problems, head, n, recomputed = verify_chain(rows, genesis, blocks=blocks)
    problems += compare_balances(recomputed, stored_balances)
    for acc, bal in sorted(recomputed.items()):
        p = negative_problem(acc, bal, credit)
        if p is not None:
            problems.append(p)
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
