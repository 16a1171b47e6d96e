"""Signed events: the canonical signed bytes, Ed25519 keys, the key registry and its audit.

A party may register an Ed25519 public key (``charter keys add``, or
:meth:`Runtime.register_key`).  From then on every event it submits must
carry a signature by its *active* key::

    {"id": "e7", "type": "pay", "submitter": "alice", "time": 1767000000,
     "args": {"to": "bob", "amount": "12.50"},
     "sig": {"key": "<public key, 64 hex digits>", "value": "<signature, 128 hex digits>"}}

**The signed bytes** (what a client in any language produces)::

    "charter-event-v1\\n" + LEDGER + "\\n" + CANONICAL_JSON(event without "sig")

``LEDGER`` is the ledger's genesis hash (64 lowercase hex digits, ``GET
/v1/ledger`` or ``charter audit --json``), so a signature for one ledger
is worthless on another.  ``CANONICAL_JSON`` is the event object exactly
as submitted (every key the client sends except ``sig``), with object keys
sorted by Unicode code point, no whitespace, strings UTF-8 with only ``"``,
``\\`` and control characters escaped (as ``json.dumps(...,
sort_keys=True, separators=(",", ":"), ensure_ascii=False)`` writes them),
integers in plain decimal.  Floating-point numbers, lone surrogates and
non-integer JSON numbers are refused in a signed event: amounts are
written as strings (``"12.50"``), as everywhere in Charter.  The bytes are
signed with Ed25519 (RFC 8032, pure, no pre-hash).

**Replay.** The signature covers the event id and the ledger: the same
signed event again is the same event (an idempotent no-op returning the
original receipt, never applied twice); with another id or on another
ledger it does not verify.  Under ``clock="system"`` a signed event must
carry its ``time``, which must lie within the runtime's skew window, so a
captured signed event that was withheld expires after ``max_skew`` seconds.

**Registry.** Each party's keys live in the ledger state (``meta`` rows
``key:PARTY``) and change only through ``@keys`` journal entries, so replay
and audit rebuild them.  Operations: ``add`` (a party without an active
key), ``rotate`` (the old key retires; its past signatures stay valid) and
``revoke`` (the party then has no active key and every event it submits is
refused until the operator adds a new one).  A key is never registered
twice, to anyone.  The operator submits any ``@keys`` entry; a party may
rotate or revoke its own key with an ``@keys`` event signed by that key.  A policy
may declare its own registration handler, ``on register_key(key: text) by ...``:
when its body applies, the submitter's key is registered, and the event must be
signed by that key (proof of possession).  And - where
the runtime allows self-registration (``self_register=True``, ``charter serve
--self-register-keys``) - a party without any key may add its first one with an
``@keys`` add event signed by the key it adds (proof of possession; first come,
first served, as agents that join an economy by themselves need).

**Audit.** The journal keeps each signature with the canonical text it
signed (``event.sig.signed``); :func:`audit_signatures` walks the journal,
rebuilding the registry, and checks that every entry of a keyed party is
signed by the key active at that point, that the signature verifies, and
that the signed text is the journalled event (same id, type, submitter
and arguments).  So an event forged into a ledger file with a recomputed
hash chain and balances is caught unless the forger holds the party's
private key.
"""

from __future__ import annotations

import json
from typing import Any, Callable, Iterable, Optional

from .values import Rejected, canonical, canonical_party, preview

DOMAIN = "charter-event-v1"
KEYS = "@keys"  # the reserved event type of key registry entries
KEY_OPS = ("add", "rotate", "revoke")
OPERATOR = "operator"  # the submitter of operator key entries
KEY_HANDLER = "register_key"  # a policy's handler ``on register_key(key: text) by ...``
META_PREFIX = "key:"
OWNER_PREFIX = "keyowner:"
_HEX = frozenset("0123456789abcdef")


class SigningError(ValueError):
    """An event cannot be signed (floats, lone surrogates, a bad key)."""


# ------------------------------------------------------------------ the signed bytes


def _check_signable(v: Any, where: str, depth: int = 0) -> None:
    if depth > 64:
        raise SigningError(f"{where}: nested more than 64 levels")
    t = type(v)
    if v is None or t is bool or t is int:
        return
    if t is str:
        try:
            v.encode("utf-8")
        except UnicodeEncodeError:
            raise SigningError(f"{where}: text with a lone surrogate cannot be signed") from None
        return
    if t is list:
        for i, x in enumerate(v):
            _check_signable(x, f"{where}[{i}]", depth + 1)
        return
    if t is dict:
        for k, x in v.items():
            if type(k) is not str:
                raise SigningError(f"{where}: object keys must be text")
            _check_signable(k, where, depth + 1)
            _check_signable(x, f"{where}.{k}", depth + 1)
        return
    if t is float:
        raise SigningError(
            f"{where}: a signed event carries no floating-point numbers "
            "(write amounts as text, e.g. \"12.50\")"
        )
    raise SigningError(f"{where}: {t.__name__} is not a JSON value")


def canonical_event(event: dict[str, Any]) -> str:
    """The canonical JSON text of ``event`` without its ``sig`` (what is signed)."""
    if not isinstance(event, dict):
        raise SigningError("an event is a JSON object")
    body = {k: v for k, v in event.items() if k != "sig"}
    _check_signable(body, "event")
    return canonical(body)


def message(ledger: str, text: str) -> bytes:
    """The bytes an Ed25519 signature covers: domain, ledger (genesis hash), canonical event."""
    return (DOMAIN + "\n" + ledger + "\n" + text).encode("utf-8")


def signed_bytes(event: dict[str, Any], ledger: str) -> bytes:
    """The exact bytes a client signs for ``event`` on the ledger with genesis hash ``ledger``."""
    return message(ledger, canonical_event(event))


# ------------------------------------------------------------------ keys


def generate_key() -> tuple[Any, str]:
    """A new Ed25519 private key and its public key as hex."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    sk = Ed25519PrivateKey.generate()
    return sk, public_hex(sk)


def public_hex(private_key: Any) -> str:
    from cryptography.hazmat.primitives import serialization

    raw = private_key.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    return raw.hex()


def private_key_from_hex(seed_hex: str) -> Any:
    """An Ed25519 private key from its 32-byte seed in hex (RFC 8032 test vectors use it)."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    return Ed25519PrivateKey.from_private_bytes(bytes.fromhex(seed_hex))


def private_key_pem(private_key: Any) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return private_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def load_private_key(data: bytes) -> Any:
    """A PEM (PKCS#8) Ed25519 private key, or a 64-hex-digit seed."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    text = data.strip()
    if len(text) == 64 and all(chr(c) in _HEX for c in text.lower()):
        return private_key_from_hex(text.decode())
    key = serialization.load_pem_private_key(text, password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise SigningError("not an Ed25519 private key")
    return key


def sign_event(event: dict[str, Any], private_key: Any, ledger: str) -> dict[str, Any]:
    """``event`` with a ``sig`` by ``private_key`` for the ledger whose genesis is ``ledger``."""
    sig = private_key.sign(signed_bytes(event, ledger))
    out = {k: v for k, v in event.items() if k != "sig"}
    out["sig"] = {"key": public_hex(private_key), "value": sig.hex()}
    return out


def verify(key_hex: str, sig_hex: str, data: bytes) -> bool:
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    try:
        Ed25519PublicKey.from_public_bytes(bytes.fromhex(key_hex)).verify(
            bytes.fromhex(sig_hex), data
        )
    except (InvalidSignature, ValueError):
        return False
    return True


def hex_problem(v: Any, nbytes: int) -> Optional[str]:
    """Why ``v`` is not ``nbytes`` bytes in lowercase hex, or None."""
    if type(v) is not str:
        return f"expected {2 * nbytes} lowercase hex digits, got {preview(v)}"
    if len(v) != 2 * nbytes or not _HEX.issuperset(v):
        return f"expected {2 * nbytes} lowercase hex digits, got {preview(v, 80)}"
    return None


def decode_sig(sig: Any, replaying: bool) -> dict[str, str]:
    """The envelope's ``sig`` checked for shape (``bad_envelope`` otherwise)."""
    allowed = {"key", "value", "signed"} if replaying else {"key", "value"}
    if type(sig) is not dict or not sig.keys() <= allowed or not {"key", "value"} <= sig.keys():
        raise Rejected(
            "bad_envelope",
            "event 'sig': expected {\"key\": public key hex, \"value\": signature hex}, "
            f"got {preview(sig)}",
        )
    for name, n in (("key", 32), ("value", 64)):
        bad = hex_problem(sig[name], n)
        if bad:
            raise Rejected("bad_envelope", f"event 'sig.{name}': {bad}")
    if "signed" in sig and type(sig["signed"]) is not str:
        raise Rejected("bad_envelope", "event 'sig.signed': expected text")
    return sig


# ------------------------------------------------------------------ the registry


def registry(meta: dict[str, Any], party: str) -> Optional[dict[str, Any]]:
    """``{"active": key or None, "keys": {key: "active"|"retired"|"revoked"}}`` or None."""
    return meta.get(META_PREFIX + party)


def decode_key_op(args: dict[str, Any]) -> dict[str, Any]:
    """The arguments of an ``@keys`` entry, checked: ``op``, ``party`` and (add/rotate) ``key``."""
    op = args.get("op")
    if op not in KEY_OPS:
        raise Rejected("bad_argument", f"{KEYS}: 'op' must be one of add, rotate, revoke, got {preview(op)}")
    allowed = {"op", "party", "key"} if op != "revoke" else {"op", "party"}
    extra = sorted(preview(k) for k in args if k not in allowed)
    if extra:
        raise Rejected("unknown_argument", f"{KEYS} {op}: unknown argument(s) {', '.join(extra)}")
    if "party" not in args:
        raise Rejected("missing_argument", f"{KEYS} {op}: missing argument 'party'")
    party = canonical_party(args["party"], f"{KEYS} argument 'party'")
    out = {"op": op, "party": party}
    if op != "revoke":
        if "key" not in args:
            raise Rejected("missing_argument", f"{KEYS} {op}: missing argument 'key'")
        bad = hex_problem(args["key"], 32)
        if bad:
            raise Rejected("bad_argument", f"{KEYS} argument 'key': {bad}")
        try:  # a point that is not on the curve cannot verify anything: refuse it now
            from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

            Ed25519PublicKey.from_public_bytes(bytes.fromhex(args["key"]))
        except ValueError:
            raise Rejected("bad_argument", f"{KEYS} argument 'key': not an Ed25519 public key") from None
        out["key"] = args["key"]
    return out


def apply_key_op(meta: dict[str, Any], set_meta: Callable[[str, Any], None], op: dict) -> None:
    """Apply a checked ``@keys`` operation to the state (through the undo-logged ``set_meta``)."""
    party = op["party"]
    reg = registry(meta, party)
    keys = dict(reg["keys"]) if reg else {}
    active = reg["active"] if reg else None
    if op["op"] in ("add", "rotate"):
        key = op["key"]
        owner = meta.get(OWNER_PREFIX + key)
        if owner is not None:
            raise Rejected(
                "key_in_use", f"key {key[:16]}... is already registered (to {owner}); use a new key"
            )
        if op["op"] == "add" and active is not None:
            raise Rejected(
                "key_exists", f"party {party} already has an active key ({active[:16]}...); rotate it"
            )
        if op["op"] == "rotate":
            if active is None:
                raise Rejected("no_key", f"party {party} has no active key to rotate; add one")
            keys[active] = "retired"
        keys[key] = "active"
        set_meta(OWNER_PREFIX + key, party)
        set_meta(META_PREFIX + party, {"active": key, "keys": keys})
    else:
        if active is None:
            raise Rejected("no_key", f"party {party} has no active key to revoke")
        keys[active] = "revoked"
        set_meta(META_PREFIX + party, {"active": None, "keys": keys})


def key_handler_of(events: dict[str, Any]) -> Optional[str]:
    """The policy's key registration handler: an event handler ``register_key`` whose one
    parameter is ``key: text`` (None when the policy declares none)."""
    from charter.compiler import ir

    ch = events.get(KEY_HANDLER)
    if ch is None or len(ch.params) != 1:
        return None
    p = ch.params[0]
    return KEY_HANDLER if p.name == "key" and isinstance(p.type, ir.TText) else None


def handler_key(etype: Any, args: Any, key_handler: Optional[str]) -> Optional[str]:
    """The key a policy's ``register_key`` event registers for its submitter, else None."""
    if key_handler is not None and etype == key_handler and isinstance(args, dict):
        key = args.get("key")
        return key if isinstance(key, str) else None
    return None


def register_own_key(meta: dict, set_meta: Callable[[str, Any], None], party: str,
                     key: Any, signed_by: Optional[str]) -> None:  # fmt: skip
    """What a policy's ``register_key`` handler does once its body has run: add ``key`` for
    the submitter, which must have signed the event with it (proof of possession)."""
    op = decode_key_op({"op": "add", "party": party, "key": key})
    if signed_by != key:
        raise Rejected(
            "unsigned",
            f"{KEY_HANDLER}: the event must be signed by the key it registers (proof of possession)",
        )
    apply_key_op(meta, set_meta, op)


def self_key(etype: Any, op: Any, submitter: str) -> Optional[str]:
    """The key a party adds for itself in an ``@keys`` add entry (signed with that very key:
    proof of possession), else None."""
    if etype == KEYS and isinstance(op, dict) and op.get("op") == "add":
        if op.get("party") == submitter:
            return op.get("key")
    return None


def check_signature(
    meta: dict[str, Any], ledger: str, submitter: str, sig: Optional[dict], text: Optional[str],
    own_key: Optional[str] = None,
) -> None:  # fmt: skip
    """Refuse an event of ``submitter`` whose signature is missing, unknown, retired or wrong.

    ``text`` is the canonical event that ``sig`` must cover.  ``own_key``: the key a
    party without one registers for itself; the event must be signed by it."""
    reg = registry(meta, submitter)
    if reg is None and own_key is not None and sig is not None and sig["key"] == own_key:
        if text is None or not verify(own_key, sig["value"], message(ledger, text)):
            raise Rejected("bad_signature", "the signature does not verify with the key being added")
        return
    if reg is None:
        if sig is not None:
            raise Rejected(
                "unknown_key",
                f"party {submitter} has no registered key; register one (charter keys add) "
                "or submit the event unsigned",
            )
        return
    active = reg["active"]
    if sig is None:
        raise Rejected(
            "unsigned",
            f"party {submitter} has a registered key: its events must be signed"
            + ("" if active else " (its key is revoked: the operator must add a new one)"),
        )
    key = sig["key"]
    if key != active:
        status = reg["keys"].get(key)
        if status is None:
            raise Rejected("unknown_key", f"key {key[:16]}... is not registered to {submitter}")
        raise Rejected(
            "key_revoked" if status == "revoked" else "key_retired",
            f"key {key[:16]}... of {submitter} is {status}"
            + (f"; sign with its active key {active[:16]}..." if active else ""),
        )
    if text is None or not verify(key, sig["value"], message(ledger, text)):
        raise Rejected(
            "bad_signature",
            f"the signature does not verify with {submitter}'s key {key[:16]}... "
            "(sign the canonical event for this ledger: see docs/deployment.rst)",
        )


# ------------------------------------------------------------------ audit


class SignatureAudit:
    """Re-verify every signature in the journal against the registry rebuilt from it, one
    row at a time (:meth:`feed` each row in order; an audit that reads the journal once
    feeds it beside its other checks).

    ``same_args(type, signed_args, journal_args)`` says whether the arguments a
    client signed convert to the journalled ones (the runtime's converter).
    ``problems`` and ``verified`` (the number of signatures verified) grow as rows come."""

    def __init__(
        self,
        ledger: str,
        same_args: Callable[[str, dict, dict], bool],
        key_handler: Optional[str] = None,
    ):
        self.ledger = ledger
        self.same_args = same_args
        self.key_handler = key_handler
        self.problems: list[str] = []
        self.verified = 0
        self.meta: dict[str, Any] = {}
        # texts whose presence means an entry may matter here (see feed)
        self._marks = ('"sig":', f'"{KEYS}"', "\\u") + (
            (key_handler,) if key_handler is not None else ()
        )

    def feed(self, row: Any) -> None:
        meta = self.meta
        entry = row.entry
        if not meta and type(entry) is str and not any(m in entry for m in self._marks):
            # no key registered yet, and no signature, key entry or key handler named (nor
            # any \u escape that could spell one): an unsigned event of a party without
            # keys, which passes unchanged -- the same outcome without decoding the entry
            return
        where = f"journal entry {row.seq} (event {row.event_id!r})"
        try:
            ev = json.loads(row.entry)["event"]
            sub = ev["submitter"]
        except (ValueError, KeyError, TypeError):
            return  # the chain audit reports unreadable entries
        sig = ev.get("sig")
        operator = ev.get("type") == KEYS and sub == OPERATOR and sig is None
        try:
            if operator:
                pass  # the operator's own entries (charter keys) carry no signature
            elif sig is not None:
                decode_sig(sig, True)
            if not operator:
                text = sig.get("signed") if isinstance(sig, dict) else None
                own = self_key(ev.get("type"), ev.get("args"), sub) or handler_key(
                    ev.get("type"), ev.get("args"), self.key_handler
                )
                check_signature(meta, self.ledger, sub, sig, text, own)
            if sig is not None:
                signed = json.loads(text)
                if not isinstance(signed, dict):
                    raise Rejected("bad_signature", "the signed text is not an event")
                for k in ("id", "type"):
                    if signed.get(k) != ev.get(k):
                        raise Rejected("bad_signature", f"the signed event's {k} differs")
                if canonical_party(signed.get("submitter"), "signed submitter") != sub:
                    raise Rejected("bad_signature", "the signed event's submitter differs")
                if not self.same_args(ev["type"], signed.get("args", {}), ev.get("args", {})):
                    raise Rejected("bad_signature", "the signed event's arguments differ")
                self.verified += 1
        except Rejected as r:
            self.problems.append(f"{where}: signature check failed: {r.code}: {r.message}")
        except (ValueError, TypeError, AttributeError) as exc:
            self.problems.append(f"{where}: signature block unreadable ({exc})")
        own_key = handler_key(ev.get("type"), ev.get("args"), self.key_handler)
        if own_key is not None:
            try:
                signer = sig.get("key") if isinstance(sig, dict) else None
                register_own_key(meta, meta.__setitem__, sub, own_key, signer)
            except (Rejected, TypeError, AttributeError) as exc:
                self.problems.append(f"{where}: key registration does not apply ({exc})")
        if ev.get("type") == KEYS:
            try:
                op = decode_key_op(ev.get("args") or {})
                apply_key_op(meta, meta.__setitem__, op)
            except (Rejected, TypeError, AttributeError) as exc:
                self.problems.append(f"{where}: key registry entry does not apply ({exc})")


def audit_signatures(
    rows: Iterable[Any],
    ledger: str,
    same_args: Callable[[str, dict, dict], bool],
    key_handler: Optional[str] = None,
) -> tuple[list[str], int]:
    """:class:`SignatureAudit` over ``rows``: (problems, number of signatures verified)."""
    audit = SignatureAudit(ledger, same_args, key_handler)
    for row in rows:
        audit.feed(row)
    return audit.problems, audit.verified
