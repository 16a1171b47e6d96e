"""Tamper evidence for ledger files: the checkpoint every commit writes, checked at open.

A full audit (``charter audit``) re-hashes the whole journal and replays it:
linear in the number of events.  Opening a ledger must stay cheap at
millions of events, so every commit also writes, in the same SQLite
transaction, one *checkpoint* row::

    seq, head          -- the last journal entry and its chain hash
    state_digest, rows -- a digest of every state row (balances, records,
                          roles, rights, clock) as of that entry
    meta_digest        -- a digest of the recorded policy, parameters, genesis
    hash               -- sha256 over all of the above

The state digest is a multiset hash (the sum, mod 2**256, of the sha256 of
each ``(kind, key, value)`` row), so a commit updates it from the rows it
changes alone.  Opening a ledger for writing then checks, without reading
the journal: the recorded policy parses and matches its fingerprint and the
genesis hash; the checkpoint's own hash; that the journal ends exactly at
the checkpoint's entry with the checkpoint's hash and has no gaps; the last
:data:`WINDOW` entries re-hash into that head; and the state rows hash to the
checkpoint's digest.  The cost is the state (which a runtime loads anyway)
plus a constant, not the journal.

What it catches: an edited balance, record, role or right; a deleted or
appended entry; an edited hash or entry among the last :data:`WINDOW`; a per-account
index row of those entries' blocks deleted or edited; a
chain re-computed after a forged posting (the head no longer matches); an
edited or unreadable recorded policy.  What it cannot catch: an edit of an
older entry that keeps its hash column (``charter audit`` re-hashes
everything and finds it), and a forger who re-computes the chain, the
state *and* the checkpoint with this public algorithm.  Stopping the last
needs a secret: a signed checkpoint (issue 18).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Iterable, Optional

import attrs

from charter.compiler import ir

from .journal import (
    BLOCK_SHIFT,
    JournalRow,
    anchor_at_or_before,
    audit_rows,
    genesis_hash,
    policy_fingerprint,
    verify_chain,
)

WINDOW = 1000  # newest journal entries re-hashed at every open
_MOD = 1 << 256
_TAG = "charter-checkpoint-v1"


def state_digest(rows: Iterable[tuple[Any, Any, Any]]) -> tuple[int, int]:
    """(digest, row count) of ``(kind, key, value)`` text rows: the sum mod 2**256 of
    each row's sha256 over ``len(kind):kind len(key):key value`` (length-prefixed, so
    unambiguous).  One loop, no call per row: it is most of the open check's cost and
    runs on every commit's changed rows."""
    sha, from_bytes = hashlib.sha256, int.from_bytes
    total = n = 0
    for kind, key, value in rows:
        if not (type(kind) is str and type(key) is str and type(value) is str):
            kind, key, value = str(kind), str(key), str(value)  # a damaged row: still hashed
        text = f"{len(kind)}:{kind}{len(key)}:{key}{value}"
        total += from_bytes(sha(text.encode("utf-8", "surrogatepass")).digest(), "big")
        n += 1
    return total % _MOD, n


def meta_digest(rows: Iterable[tuple[Any, Any]]) -> str:
    h = hashlib.sha256()
    for key, value in sorted((str(k), str(v)) for k, v in rows):
        h.update(f"{len(key)}:{key}{len(value)}:{value}".encode("utf-8", "surrogatepass"))
    return h.hexdigest()


@attrs.frozen
class Checkpoint:
    seq: int
    head: str
    state_digest: int
    state_rows: int
    meta_digest: str

    @property
    def hash(self) -> str:
        text = (
            f"{_TAG}\n{self.meta_digest}\n{self.seq}\n{self.head}\n"
            f"{self.state_digest:064x}\n{self.state_rows}"
        )
        return hashlib.sha256(text.encode()).hexdigest()

    def row(self) -> tuple[int, str, str, int, str, str]:
        return (
            self.seq,
            self.head,
            f"{self.state_digest:064x}",
            self.state_rows,
            self.meta_digest,
            self.hash,
        )

    def advanced(self, seq: int, head: str, removed: list[tuple], added: list[tuple]) -> "Checkpoint":
        """This checkpoint after a commit that replaced the state rows ``removed`` by ``added``
        (``(kind, key, value)`` text rows)."""
        out, n_out = state_digest(removed)
        into, n_in = state_digest(added)
        d = (self.state_digest - out + into) % _MOD
        return Checkpoint(seq, head, d, self.state_rows - n_out + n_in, self.meta_digest)


def parse_checkpoint(row: tuple) -> Optional[Checkpoint]:
    """The stored row as a Checkpoint, or None if its fields are malformed or its hash wrong."""
    try:
        seq, head, digest, rows, md, h = row
        if not (type(seq) is int and type(rows) is int and seq >= 0 and rows >= 0):
            return None
        if not all(isinstance(x, str) for x in (head, digest, md, h)) or len(digest) != 64:
            return None
        cp = Checkpoint(seq, head, int(digest, 16), rows, md)
    except (ValueError, TypeError):
        return None
    return cp if cp.hash == h else None


def decode_meta(rows: Iterable[tuple[Any, Any]], path: object) -> tuple[dict[str, Any], list[str]]:
    meta: dict[str, Any] = {}
    problems = []
    for k, v in rows:
        try:
            meta[str(k)] = json.loads(v)
        except (ValueError, TypeError, RecursionError):
            problems.append(f"metadata {k!r} is not valid JSON")
    return meta, problems


# recorded policy texts decoded lately (least recently used first): a ledger command decodes
# its ledger's policy at the open check and again for the runtime, and a process that opens
# ledgers of one policy again and again (a server, a fuzzer) would decode and compile it anew
# each time (the same object also hits pygen's compile cache).  Decoding is a pure function of
# the text, so any other text -- an edited one included -- is decoded afresh.
_POLICIES: dict[str, tuple[ir.Policy, str]] = {}
_POLICIES_KEPT = 16


def _decoded_policy(text: str) -> tuple[ir.Policy, str]:
    """(policy, fingerprint) of a recorded ``policy_ir`` text; raises what decoding raises."""
    hit = _POLICIES.pop(text, None)
    if hit is None:
        pol = ir.from_data(json.loads(text))
        hit = pol, policy_fingerprint(pol)
        while len(_POLICIES) >= _POLICIES_KEPT:
            del _POLICIES[next(iter(_POLICIES))]
    _POLICIES[text] = hit
    return hit


def recorded_policy(meta: dict[str, Any]) -> tuple[Optional[ir.Policy], Optional[str], list[str]]:
    """(policy, genesis recomputed from it and the parameters, problems) of a ledger's metadata."""
    from .values import from_json_value

    text = meta.get("policy_ir")
    if not isinstance(text, str):
        return None, None, ["the ledger records no policy (its policy_ir is missing or not text)"]
    try:
        pol, fp = _decoded_policy(text)
    except Exception as exc:  # noqa: BLE001 - untrusted file contents through a general decoder
        return None, None, [f"the recorded policy cannot be read ({type(exc).__name__}: {exc})"]
    problems = []
    if fp != meta.get("fingerprint"):
        problems.append(
            "the recorded policy does not match the recorded fingerprint "
            f"({str(meta.get('fingerprint'))[:12]}... vs {fp[:12]}...)"
        )
    params = meta.get("params")
    try:
        if not isinstance(params, dict):
            raise TypeError("not an object")
        genesis: Optional[str] = genesis_hash(
            pol, {k: from_json_value(v) for k, v in params.items()}
        )
    except Exception as exc:  # noqa: BLE001 - as above
        problems.append(f"the recorded parameters cannot be read ({type(exc).__name__}: {exc})")
        genesis = None
    if genesis is not None and genesis != meta.get("genesis"):
        problems.append(
            "the recorded genesis hash does not match the recorded policy and parameters"
        )
    return pol, genesis, problems


def check_open(store: Any, state: bool = True) -> tuple[list[str], Optional[Checkpoint]]:
    """The open-time check of a ledger (see the module docstring).

    Returns (problems, checkpoint); no problems and no checkpoint means a new,
    not yet initialised ledger.  ``state=False`` leaves out the state digest (the one
    part whose cost grows with the ledger: a reader of the journal alone, such as
    ``ledger history``, opens in time that does not depend on the ledger's size)."""
    q = store._query
    problems: list[str] = []
    meta_rows = q("SELECT key, value FROM meta")
    (maxseq, count), = q("SELECT max(seq), count(*) FROM journal")
    maxseq = maxseq or 0
    if type(maxseq) is not int:
        return [f"journal sequence numbers are not integers (found {str(maxseq)[:20]!r})"], None
    if state:
        digest, nrows = state_digest(store._scan("SELECT kind, key, value FROM state"))
    else:  # not read (nor compared below)
        nrows = 0 if meta_rows else q("SELECT count(*) FROM state")[0][0]
        digest = 0
    if not meta_rows:
        if count or nrows:
            problems.append(
                f"the ledger holds {count} journal entries and {nrows} state rows but records "
                "no policy (its metadata was deleted)"
            )
        return problems, None
    meta, problems = decode_meta(meta_rows, store.path)
    _, genesis, more = recorded_policy(meta)
    problems += more
    cp_rows = q("SELECT seq, head, state_digest, state_rows, meta_digest, hash FROM checkpoint")
    cp = parse_checkpoint(cp_rows[0]) if len(cp_rows) == 1 else None
    if cp is None:
        problems.append(
            "the checkpoint row is missing or does not match its own hash (edited by hand?)"
        )
        return problems, None
    if cp.meta_digest != meta_digest(meta_rows):
        problems.append(
            "the recorded policy, parameters or genesis changed since the last commit "
            "(metadata digest differs from the checkpoint)"
        )
    if maxseq != cp.seq:
        how = "entries deleted" if maxseq < cp.seq else "entries appended outside Charter"
        problems.append(
            f"the journal ends at entry {maxseq} but the last commit wrote entry {cp.seq} ({how})"
        )
    if count != maxseq:
        problems.append(
            f"the journal holds {count} entries numbered up to {maxseq} (entries missing)"
        )
    packed = hasattr(store, "kept_hash")  # a store that keeps hashes at anchors only (SQLite)
    if packed and not isinstance(meta.get("entry_dict"), str):
        problems.append("the recorded entry dictionary (entry_dict) is missing or not text")
    # re-hash from the kept hash at or before WINDOW entries back (journal.ANCHOR_EVERY)
    start = anchor_at_or_before(max(cp.seq - WINDOW, 0)) if packed else max(cp.seq - WINDOW, 0)
    prev: Any
    if start == 0:
        prev = genesis if genesis is not None else meta.get("genesis")
    elif packed:
        prev = store.kept_hash(start)
    else:
        got = q("SELECT hash FROM journal WHERE seq = ?", (start,))
        prev = got[0][0] if got else None
    if cp.seq == 0 and prev != cp.head:
        problems.append("the checkpoint's genesis hash differs from the recorded policy's")
    if isinstance(prev, str) and cp.seq and maxseq == cp.seq:
        rows = store.journal(start + 1) if packed else [
            JournalRow(*r) for r in q(
                "SELECT seq, event_id, entry, hash FROM journal WHERE seq > ? ORDER BY seq",
                (start,))
        ]
        blocks: Optional[set[int]] = set() if hasattr(store, "account_blocks") else None
        found, head, _, _ = verify_chain(rows, prev, first_seq=start + 1, blocks=blocks)
        problems += found
        problems += head_problems(head, cp)
        if blocks is not None and not found:
            problems += window_index_problems(q, blocks, start)
    elif cp.seq and not isinstance(prev, str):
        problems.append(f"journal entry {start} is missing or keeps no chain hash")
    if state and (digest, nrows) != (cp.state_digest, cp.state_rows):
        problems.append(
            f"the state rows ({nrows}) do not hash to the digest the last commit recorded "
            f"({cp.state_rows} rows): a balance, record, role, right or clock entry was "
            "changed outside Charter"
        )
    return problems, cp


def window_index_problems(q: Any, implied: set[int], start: int) -> list[str]:
    """The per-account index (``account_block``) against the ``tag << 32 | block`` pairs
    that the re-hashed entries after ``start`` imply, for the blocks wholly inside them:
    ``history --account`` trusts the index, so a pair missing there would silently leave
    the account's entries out.  Indexed lookups of the accounts the window touches."""
    first = 0 if start == 0 else (start >> BLOCK_SHIFT) + 1
    want: dict[int, set[int]] = {}
    for pair in implied:
        if pair & 0xFFFFFFFF >= first:
            want.setdefault(pair >> 32, set()).add(pair & 0xFFFFFFFF)
    tags = list(want)
    for i in range(0, len(tags), 500):  # a few indexed lookups per query
        chunk = tags[i:i + 500]
        for tag, blk in q("SELECT account, block FROM account_block WHERE block >= ? AND "
                          f"account IN ({','.join('?' * len(chunk))})", (first, *chunk)):
            if tag in want:  # a damaged index page can return rows its WHERE excludes
                want[tag].discard(blk)
    lacking = sum(len(b) for b in want.values())
    if not lacking:
        return []
    # the audit's wording (auditpass.IndexCheck), so an audit that finds it too says it once
    return [f"the per-account index lacks {lacking} (account, block) pair(s) the journal's "
            "postings imply: history --account would miss entries (edited outside Charter)"]


def head_problems(head: str, cp: Checkpoint) -> list[str]:
    """The chain's head against the one the last commit recorded (the final anchor)."""
    if head == cp.head:
        return []
    base = anchor_at_or_before(cp.seq - 1)
    return [
        f"journal entries {base + 1}-{cp.seq} hash to {str(head)[:16]}... but the last commit "
        f"recorded {cp.head[:16]}... (modified row, chain rewritten or hash edited)"
    ]


def full_check(store: Any, genesis: Optional[str]) -> list[str]:
    """The audit's chain and balance findings (read the whole journal: for diagnoses and
    upgrades, never on the ordinary open path)."""
    if genesis is None:
        return []
    stored: dict[str, int] = {}
    problems: list[str] = []
    for kind, key, value in store._scan("SELECT kind, key, value FROM state WHERE kind = 'balance'"):
        try:
            v = json.loads(value)
            if type(v) is not int or not isinstance(key, str):
                raise ValueError
            stored[key] = v
        except (ValueError, TypeError, RecursionError):
            problems.append(f"stored balance row {key!r} is malformed ({str(value)[:40]!r})")
    credit = None
    meta = getattr(store, "meta_or_empty", None)
    if meta is not None:
        m = meta()
        pol = recorded_policy(m)[0]
        if pol is not None:
            # a line a parameter sets is the ledger's recorded value (an amount: an int)
            from .state import State

            params = {k: v for k, v in (m.get("params") or {}).items() if type(v) is int}
            try:
                st = State(pol)
                st.set_params(params)
                credit = st.audit_lines()
            except Exception as exc:  # noqa: BLE001 - untrusted file contents, as _runtime
                # a damaged policy_ir can decode yet be no policy (a misspelt "node" key
                # leaves a plain dict where a record was) and keep its fingerprint (the
                # source hash inside it): said, and the balances checked without credit lines
                problems.append(f"the recorded policy cannot be used ({type(exc).__name__}: "
                                f"{str(exc)[:80]})")
    # the head against the checkpoint is the open check's finding, not repeated here: a chain
    # that is whole but ends elsewhere is a rewrite only a replay can pin down
    return problems + list(audit_rows(store.journal(), genesis, stored, credit=credit).problems)
