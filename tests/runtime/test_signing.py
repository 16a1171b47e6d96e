"""Signed events (issue 18, DESIGN 2.7): canonical signed bytes, the key registry, audit.

The attack the issue names is here as a test: a forger with write access to the
ledger file appends an event of a keyed party with its postings, recomputes the
hash chain, the balances and the checkpoint; the open check and a replay both
accept it, and ``charter audit`` must fail naming the entry.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from charter.cli import cli
from charter.runtime import signing
from charter.runtime.api import audit_ledger, open_runtime, replay
from charter.runtime.integrity import Checkpoint, meta_digest, state_digest
from charter.runtime.journal import chain, encode_entry

ROOT = Path(__file__).resolve().parents[2]
POLICY = str(ROOT / "examples" / "gig_market" / "policy.charter")

# A fixed test vector: RFC 8032 test 1's key, a fixed event and ledger.  A client in any
# language must produce these bytes and (Ed25519 is deterministic) this signature.
VECTOR_SEED = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60"
VECTOR_KEY = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"
VECTOR_LEDGER = "5f" * 32
VECTOR_EVENT = {
    "id": "e42",
    "type": "deposit",
    "submitter": "gw",
    "time": 1767225600,
    "args": {"to": "ann", "amount": "12.50", "note": "caf\u00e9 \u2615"},
}
VECTOR_BYTES = (
    b"charter-event-v1\n" + b"5f" * 32 + b"\n"
    b'{"args":{"amount":"12.50","note":"caf\xc3\xa9 \xe2\x98\x95","to":"ann"},'
    b'"id":"e42","submitter":"gw","time":1767225600,"type":"deposit"}'
)
VECTOR_SIG = (
    "cf10f3f23d9f5d7ef43f4a46d870c6c3c018a8721aa5aef2db6d7fd3730120c7"
    "f1c5b6885c89f00937fd34077a7f431cb8f053132a177f55d2838398a0303505"
)


def test_the_fixed_test_vector():
    sk = signing.private_key_from_hex(VECTOR_SEED)
    assert signing.public_hex(sk) == VECTOR_KEY  # RFC 8032 section 7.1, test 1
    assert signing.signed_bytes(VECTOR_EVENT, VECTOR_LEDGER) == VECTOR_BYTES
    signed = signing.sign_event(VECTOR_EVENT, sk, VECTOR_LEDGER)
    assert signed["sig"] == {"key": VECTOR_KEY, "value": VECTOR_SIG}
    assert signing.verify(VECTOR_KEY, VECTOR_SIG, VECTOR_BYTES)
    assert not signing.verify(VECTOR_KEY, VECTOR_SIG, VECTOR_BYTES.replace(b"12.50", b"12.51"))
    # key order of the submitted object does not matter; the signature is not signed
    shuffled = dict(reversed(list(signed.items())))
    assert signing.signed_bytes(shuffled, VECTOR_LEDGER) == VECTOR_BYTES


@pytest.mark.parametrize(
    "bad, why",
    [
        ({"amount": 12.5}, "floating-point"),
        ({"to": "\ud800"}, "lone surrogate"),
        ({1: "x"}, "keys must be text"),
    ],
)
def test_unsignable_events_are_refused(bad, why):
    with pytest.raises(signing.SigningError, match=why):
        signing.signed_bytes({**VECTOR_EVENT, "args": bad}, VECTOR_LEDGER)


class Clock:
    def __init__(self, t: int):
        self.t = t

    def __call__(self) -> int:
        return self.t


def _ledger(db, clock="events", time_source=None):
    rt = open_runtime(POLICY, str(db), clock=clock, time_source=time_source)
    t = None if clock == "system" else 100
    for i, (typ, sub, args) in enumerate(
        [
            ("join", "ann", {}),
            ("join", "bob", {}),
            ("appoint", "operator", {"gateway": "gw"}),
            ("deposit", "gw", {"to": "ann", "amount": "500.00"}),
        ]
    ):
        ev = {"id": f"s{i}", "type": typ, "submitter": sub, "args": args}
        if t is not None:
            ev["time"] = t + i
        assert rt.submit(ev).applied
    return rt


@pytest.fixture
def keyed(tmp_path):
    rt = _ledger(tmp_path / "l.sqlite")
    sk, pk = signing.generate_key()
    r = rt.register_key("add", "ann", pk)
    assert r.applied, r
    yield rt, sk, pk, tmp_path / "l.sqlite"
    rt.close()


def _ev(eid, typ, sub, t, **args):
    return {"id": eid, "type": typ, "submitter": sub, "time": t, "args": args}


def _snapshot(rt):
    return (rt.state_rows(), rt.head, rt.seq, rt.clock, set(rt.applied_ids))


def test_a_keyed_party_must_sign_and_rejections_change_nothing(keyed):
    rt, sk, pk, _ = keyed
    other, _ = signing.generate_key()
    w = _ev("w1", "withdraw", "ann", 200, amount="10.00")
    before = _snapshot(rt)
    cases = [
        (w, "unsigned"),
        (signing.sign_event(w, other, rt.genesis), "unknown_key"),
        ({**signing.sign_event(w, sk, rt.genesis), "time": 201}, "bad_signature"),
        (signing.sign_event(w, sk, "00" * 32), "bad_signature"),  # another ledger's signature
        ({**w, "sig": {"key": pk, "value": "zz"}}, "bad_envelope"),
        ({**w, "sig": {"key": pk, "value": "00" * 64, "signed": "{}"}}, "bad_envelope"),
        ({**w, "sig": None}, "bad_envelope"),
        (signing.sign_event(_ev("w1", "withdraw", "bob", 200, amount="1"), sk, rt.genesis),
         "unknown_key"),  # bob has no key: a signature by someone else's key is refused
    ]  # fmt: skip
    for ev, code in cases:
        out = rt.submit(ev)
        assert not out.applied and out.code == code, (ev, out)
        assert _snapshot(rt) == before
    ok = rt.submit(signing.sign_event(w, sk, rt.genesis))
    assert ok.applied, ok
    # unsigned events of parties without a key still apply
    assert rt.submit(_ev("b1", "withdraw", "bob", 201, amount="0.00")).code == "require"


def test_replayed_signatures_never_apply_twice(keyed):
    rt, sk, pk, _ = keyed
    signed = signing.sign_event(_ev("w1", "withdraw", "ann", 200, amount="10.00"), sk, rt.genesis)
    first = rt.submit(signed)
    assert first.applied and not first.duplicate
    bal = rt.balance("ann", "Credit")
    again = rt.submit(signed)  # the same signed event: the original receipt, nothing applied
    assert again.duplicate and again.tx == first.tx and rt.balance("ann", "Credit") == bal
    moved = {**signed, "id": "w2"}  # the signature under another id does not verify
    assert rt.submit(moved).code == "bad_signature"
    stripped = {k: v for k, v in signed.items() if k != "sig"}  # same id, signature removed
    assert rt.submit(stripped).code == "id_conflict"
    assert rt.balance("ann", "Credit") == bal


def test_clock_system_signed_events_carry_their_time_and_expire(tmp_path):
    now = Clock(1_800_000_000)
    rt = _ledger(tmp_path / "l.sqlite", clock="system", time_source=now)
    sk, pk = signing.generate_key()
    assert rt.register_key("add", "ann", pk).applied
    no_time = {"id": "w0", "type": "withdraw", "submitter": "ann", "args": {"amount": "1"}}
    assert rt.submit(signing.sign_event(no_time, sk, rt.genesis)).code == "bad_envelope"
    captured = signing.sign_event(_ev("w1", "withdraw", "ann", now.t, amount="1"), sk, rt.genesis)
    now.t += rt.max_skew + 1  # withheld, then replayed after the skew window
    assert rt.submit(captured).code == "time_skew"
    fresh = signing.sign_event(_ev("w2", "withdraw", "ann", now.t, amount="1"), sk, rt.genesis)
    r = rt.submit(fresh)
    assert r.applied, r
    rt.close()
    rep = audit_ledger(str(tmp_path / "l.sqlite"))
    assert rep.ok and rep.signatures == 1, rep


def test_rotation_and_revocation(keyed):
    rt, sk, pk, db = keyed
    sk2, pk2 = signing.generate_key()
    sk3, pk3 = signing.generate_key()
    # a party may not add a key for itself or anyone (only the operator may)
    add = signing.sign_event(_ev("k0", "@keys", "ann", 150, op="add", party="bob", key=pk2),
                             sk, rt.genesis)  # fmt: skip
    assert rt.submit(add).code == "unauthorised"
    assert rt.submit(_ev("k1", "@keys", "bob", 150, op="add", party="bob", key=pk2)).code == (
        "unauthorised"
    )
    assert rt.register_key("add", "ann", pk2).code == "key_exists"
    assert rt.register_key("add", "bob", pk).code == "key_in_use"
    assert rt.register_key("rotate", "bob", pk2).code == "no_key"
    # the party rotates its own key, signing with the current one
    rot = signing.sign_event(_ev("k2", "@keys", "ann", 150, op="rotate", party="ann", key=pk2),
                             sk, rt.genesis)  # fmt: skip
    assert rt.submit(rot).applied
    w = _ev("w1", "withdraw", "ann", 200, amount="1.00")
    assert rt.submit(signing.sign_event(w, sk, rt.genesis)).code == "key_retired"
    assert rt.submit(signing.sign_event(w, sk2, rt.genesis)).applied
    # revocation: the party is locked out until the operator adds a new key
    assert rt.register_key("revoke", "ann").applied
    w2 = _ev("w2", "withdraw", "ann", 201, amount="1.00")
    assert rt.submit(signing.sign_event(w2, sk2, rt.genesis)).code == "key_revoked"
    assert rt.submit(w2).code == "unsigned"
    assert rt.register_key("add", "ann", pk2).code == "key_in_use"  # never reused
    assert rt.register_key("add", "ann", pk3).applied
    assert rt.submit(signing.sign_event(w2, sk3, rt.genesis)).applied
    assert rt.keys("ann")["ann"] == {
        "active": pk3,
        "keys": dict(sorted({pk: "retired", pk2: "revoked", pk3: "active"}.items())),
    }
    rt.flush()
    rep = rt.audit()
    assert rep.ok and rep.signatures == 3, rep
    # the registry is state derived from the journal: replay and reopening reproduce it
    assert replay(rt).ok
    rt.close()
    again = open_runtime(None, str(db))
    assert again.keys() == {"ann": {"active": pk3, "keys": again.keys()["ann"]["keys"]}}
    assert again.keys()["ann"]["keys"][pk2] == "revoked"
    again.close()


def test_the_journal_keeps_each_signature(keyed):
    rt, sk, pk, db = keyed
    signed = signing.sign_event(_ev("w1", "withdraw", "ann", 200, amount="10.00"), sk, rt.genesis)
    assert rt.submit(signed).applied
    rt.flush()
    ev = rt.history()[-1]["event"]
    assert ev["sig"] == {
        "key": pk,
        "value": signed["sig"]["value"],
        "signed": signing.canonical_event(signed),
    }


# ------------------------------------------------------------------ the forgery


def _forge(db: Path, copy_sig: bool) -> int:
    """Append a withdrawal by ann with its postings; recompute the chain, the balances and the
    checkpoint with the public algorithm (a careful forger with write access to the file)."""
    from charter.runtime.sqlite_store import tamper_connection

    c = tamper_connection(db)  # entries are kept packed: entry_text/entry_blob
    meta = {k: json.loads(v) for k, v in c.execute("SELECT key, value FROM meta")}
    seq, entry = c.execute(
        "SELECT seq, entry_text(entry, seq, event_id) FROM journal ORDER BY seq DESC LIMIT 1"
    ).fetchone()
    head = c.execute("SELECT head FROM checkpoint").fetchone()[0]  # the last entry's hash
    last = json.loads(entry)
    genuine = [
        json.loads(e)["event"]
        for (e,) in c.execute("SELECT entry_text(entry, seq, event_id) FROM journal ORDER BY seq")
        if "sig" in json.loads(e)["event"]
    ]
    amount = 40000
    postings = [["party:ann:Credit", "supply:Credit", "Credit", amount, "burn"]]
    new = encode_entry(
        seq + 1, "forged", "ann", last["event"]["time"], "withdraw", {"amount": amount},
        [], postings, [], genuine[-1]["sig"] if copy_sig else None,
    )  # fmt: skip
    h = chain(head, new)
    c.execute("INSERT INTO journal (seq, event_id, entry, hash) VALUES (?, ?, entry_blob(?), "
              "raw_hash(?))", (seq + 1, "forged", new, h))  # fmt: skip
    c.execute(f"UPDATE state SET value = value - {amount} WHERE kind='balance' AND key=?",
              ("party:ann:Credit",))  # fmt: skip
    c.execute(f"UPDATE state SET value = value + {amount} WHERE kind='balance' AND key=?",
              ("supply:Credit",))  # fmt: skip
    d, n = state_digest(c.execute("SELECT kind, key, value FROM state"))
    cp = Checkpoint(seq + 1, h, d, n, meta_digest(c.execute("SELECT key, value FROM meta")))
    c.execute(
        "UPDATE checkpoint SET seq=?, head=?, state_digest=?, state_rows=?, meta_digest=?, hash=?",
        cp.row(),
    )
    c.commit()
    c.close()
    assert meta["genesis"]
    return seq + 1


@pytest.mark.parametrize("copy_sig", [False, True], ids=["unsigned", "copied-signature"])
def test_a_forged_event_with_a_recomputed_chain_is_caught(keyed, copy_sig):
    rt, sk, pk, db = keyed
    w = signing.sign_event(_ev("w1", "withdraw", "ann", 200, amount="10.00"), sk, rt.genesis)
    assert rt.submit(w).applied
    rt.close()
    assert audit_ledger(str(db)).ok
    seq = _forge(db, copy_sig)
    # the open check cannot tell (no secret in it): the forged ledger opens
    probe = open_runtime(None, str(db))
    assert probe.balance("ann", "Credit") == 50000 - 1000 - 40000
    probe.close()
    # a replay runs the signature step again on every journalled event
    rep = replay(str(db))
    assert not rep.ok and f"journal entry {seq} (event 'forged')" in rep.problems[0]
    r = CliRunner().invoke(cli, ["audit", str(db)])
    assert r.exit_code == 1, r.output
    why = "signed event's id differs" if copy_sig else "must be signed"
    assert f"journal entry {seq} (event 'forged'): signature check failed" in r.output
    assert why in r.output


def test_charter_audit_reports_the_signatures_it_verified(keyed):
    rt, sk, pk, db = keyed
    for i in range(3):
        ev = _ev(f"w{i}", "withdraw", "ann", 200 + i, amount="1.00")
        assert rt.submit(signing.sign_event(ev, sk, rt.genesis)).applied
    rt.close()
    r = CliRunner().invoke(cli, ["audit", str(db), "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["signatures"] == 3


# ------------------------------------------------------------------ hostile signature blocks

_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=80),
    lambda kids: st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=8), kids, max_size=4),
    max_leaves=12,
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    sig=_json | st.fixed_dictionaries({"key": _json, "value": _json}),
    args=st.dictionaries(st.text(max_size=8), _json, max_size=3),
    party=st.sampled_from(["ann", "bob", "@ann", "\ud800", "operator"]),
    typ=st.sampled_from(["withdraw", "@keys", "join", "@tick"]),
)
def test_hostile_signature_blocks_are_clear_rejections(keyed, sig, args, party, typ):
    rt, sk, pk, _ = keyed
    before = _snapshot(rt)
    for ev in (
        {"id": "h", "type": typ, "submitter": party, "time": 300, "args": args, "sig": sig},
        {"id": "h", "type": typ, "submitter": party, "time": 300, "args": args},
    ):
        out = rt.submit(ev)
        if out.applied:  # an unsigned join/@tick of a party without a key may apply: undo
            return
        assert out.code and out.message
        assert _snapshot(rt) == before


def test_charter_keys_commands_end_to_end(keyed, tmp_path):
    """gen -> add -> sign -> run -> audit, all through the command line."""
    rt, sk, pk, db = keyed
    rt.close()
    run = CliRunner()
    pem = tmp_path / "bob.pem"
    r = run.invoke(cli, ["keys", "gen", str(pem)])
    assert r.exit_code == 0 and (pem.stat().st_mode & 0o777) == 0o600
    bob_pk = r.output.strip()
    assert signing.hex_problem(bob_pk, 32) is None
    assert run.invoke(cli, ["keys", "gen", str(pem)]).exit_code == 2  # never overwrites a key
    r = run.invoke(cli, ["keys", "add", str(db), "bob", bob_pk])
    assert r.exit_code == 0, r.output
    r = run.invoke(cli, ["keys", "add", str(db), "bob", bob_pk])
    assert r.exit_code == 1 and "key_in_use" in r.output
    r = run.invoke(cli, ["keys", "list", str(db), "--json"])
    listed = json.loads(r.output)
    assert listed["keys"]["bob"]["active"] == bob_pk
    events = tmp_path / "ev.jsonl"
    events.write_text(json.dumps(_ev("b1", "withdraw", "bob", 300, amount="0.00")) + "\n")
    r = run.invoke(cli, ["keys", "sign", str(events), "--key", str(pem), "--ledger",
                         listed["genesis"]])  # fmt: skip
    assert r.exit_code == 0, r.output
    signed = tmp_path / "signed.jsonl"
    signed.write_text(r.output)
    # bob's signed withdrawal of 0.00 reaches the policy (its require refuses it), the
    # unsigned one is stopped at the signature step
    r = run.invoke(cli, ["run", POLICY, str(signed), "--db", str(db), "--json", "-q"])
    rej = Path(str(db) + ".rejections.jsonl").read_text()
    assert '"require"' in rej and "unsigned" not in rej, rej
    r = run.invoke(cli, ["run", POLICY, str(events), "--db", str(db), "--json", "-q"])
    assert '"unsigned"' in Path(str(db) + ".rejections.jsonl").read_text()
    r = run.invoke(cli, ["keys", "revoke", str(db), "bob"])
    assert r.exit_code == 0, r.output
    r = run.invoke(cli, ["audit", str(db)])
    assert r.exit_code == 0 and "OK" in r.output, r.output


def test_self_registration_is_proof_of_possession_and_off_by_default(tmp_path):
    sk, pk = signing.generate_key()
    other, opk = signing.generate_key()

    def add(rt, eid, party, key, signer, sub=None):
        ev = _ev(eid, "@keys", sub or party, 150, op="add", party=party, key=key)
        return rt.submit(signing.sign_event(ev, signer, rt.genesis) if signer else ev)

    off = _ledger(tmp_path / "off.sqlite")
    assert add(off, "k1", "bob", pk, sk).code == "unauthorised"
    assert off.keys() == {}
    off.close()
    rt = open_runtime(POLICY, str(tmp_path / "on.sqlite"), self_register=True)
    assert rt.submit(_ev("j", "join", "bob", 100)).applied
    before = _snapshot(rt)
    assert add(rt, "k1", "bob", pk, None).code == "unauthorised"  # unsigned
    assert add(rt, "k2", "bob", pk, other).code == "unknown_key"  # signed by another key
    assert add(rt, "k3", "cat", pk, sk, sub="bob").code == "unknown_key"  # for someone else
    assert _snapshot(rt) == before
    r = add(rt, "k4", "bob", pk, sk)
    assert r.applied, r
    assert rt.submit(_ev("w", "withdraw", "bob", 160, amount="0")).code == "unsigned"
    assert add(rt, "k5", "bob", opk, other).code == "unknown_key"  # a second add: not itself
    assert rt.register_key("revoke", "bob").applied
    assert add(rt, "k6", "bob", opk, other).code == "unknown_key"  # revoked: operator only
    rt.flush()
    rep = rt.audit()
    assert rep.ok and rep.signatures == 1, rep
    assert replay(rt).ok
    rt.close()


def test_the_vector_with_another_implementation(tmp_path):
    """OpenSSL's command line (another Ed25519 implementation) signs the vector's bytes,
    written out by hand above, to the same signature."""
    import shutil
    import subprocess

    if shutil.which("openssl") is None:
        pytest.skip("no openssl command")
    key = tmp_path / "k.pem"
    key.write_bytes(signing.private_key_pem(signing.private_key_from_hex(VECTOR_SEED)))
    msg = tmp_path / "m.bin"
    msg.write_bytes(VECTOR_BYTES)
    r = subprocess.run(
        ["openssl", "pkeyutl", "-sign", "-inkey", str(key), "-rawin", "-in", str(msg)],
        capture_output=True,
    )
    if r.returncode != 0:  # OpenSSL before 3.0 has no -rawin for Ed25519
        pytest.skip(f"openssl cannot sign raw Ed25519: {r.stderr[:200]!r}")
    assert r.stdout.hex() == VECTOR_SIG


KEYED = str(Path(__file__).resolve().parent / "signing" / "keyed.charter")


def test_a_policy_declares_its_key_registration_handler(tmp_path):
    """``on register_key(key: text) by m: Member``: the policy decides who may register (its
    ``by`` clause and requires); the event must be signed by the key it registers."""
    sk, pk = signing.generate_key()
    other, opk = signing.generate_key()
    db = tmp_path / "k.sqlite"
    rt = open_runtime(KEYED, str(db))
    assert rt.key_handler == "register_key"
    g = rt.genesis

    def reg(eid, sub, key, signer, t=10):
        ev = _ev(eid, "register_key", sub, t, key=key)
        return rt.submit(signing.sign_event(ev, signer, g) if signer else ev)

    assert reg("r0", "ann", pk, sk).code == "unauthorised"  # not a Member: the policy says no
    assert rt.submit(_ev("j", "join", "ann", 5)).applied
    before = _snapshot(rt)
    assert reg("r1", "ann", pk, None).code == "unsigned"  # proof of possession needed
    assert reg("r2", "ann", pk, other).code == "unknown_key"  # signed by another key
    assert reg("r3", "ann", "zz", None).code == "bad_argument"
    assert _snapshot(rt) == before
    r = reg("r4", "ann", pk, sk)
    assert r.applied, r
    assert rt.keys("ann")["ann"]["active"] == pk
    assert rt.records("Registered")["ann"]["key"] == pk
    assert rt.submit(_ev("g1", "grant", "ann", 11, amount="1.00")).code == "unsigned"
    signed = signing.sign_event(_ev("g2", "grant", "ann", 12, amount="1.00"), sk, g)
    assert rt.submit(signed).applied
    assert reg("r5", "ann", opk, other).code == "unknown_key"  # ann has a key: sign with it
    assert reg("r6", "ann", opk, sk, t=13).code == "require"  # the policy's rule: one key
    rt.close()
    rep = audit_ledger(str(db))
    assert rep.ok and rep.signatures == 2, rep
    assert replay(str(db)).ok


def test_a_key_registered_by_the_policy_handler_cannot_be_forged_in(tmp_path):
    """A forger rewrites the registration entry to another key: audit names it."""
    sk, pk = signing.generate_key()
    db = tmp_path / "k.sqlite"
    rt = open_runtime(KEYED, str(db))
    assert rt.submit(_ev("j", "join", "ann", 5)).applied
    ev = signing.sign_event(_ev("r", "register_key", "ann", 6, key=pk), sk, rt.genesis)
    assert rt.submit(ev).applied
    rt.close()
    _, mallory = signing.generate_key()
    # the careful forger: the key in the entry and in the state, the chain and the checkpoint
    from charter.runtime.journal import ANCHOR_EVERY
    from charter.runtime.sqlite_store import tamper_connection

    c = tamper_connection(db)  # entries are kept packed: entry_text/entry_blob
    meta = {k: json.loads(v) for k, v in c.execute("SELECT key, value FROM meta")}
    prev = meta["genesis"]
    rows = c.execute("SELECT seq, entry_text(entry, seq, event_id) FROM journal ORDER BY seq").fetchall()
    for seq, entry in rows:
        entry = entry.replace(pk, mallory)
        prev = chain(prev, entry)
        kept = prev if seq % ANCHOR_EVERY == 0 else None
        c.execute("UPDATE journal SET entry = entry_blob(?), hash = raw_hash(?) WHERE seq = ?",
                  (entry, kept, seq))
    c.execute("UPDATE state SET key = replace(key, ?, ?), value = replace(value, ?, ?)",
              (pk, mallory, pk, mallory))  # fmt: skip
    d, n = state_digest(c.execute("SELECT kind, key, value FROM state"))
    cp = Checkpoint(2, prev, d, n, meta_digest(c.execute("SELECT key, value FROM meta")))
    c.execute(
        "UPDATE checkpoint SET seq=?, head=?, state_digest=?, state_rows=?, meta_digest=?, hash=?",
        cp.row(),
    )
    c.commit()
    c.close()
    probe = open_runtime(None, str(db))  # the open check cannot tell
    assert probe.keys("ann")["ann"]["active"] == mallory
    probe.close()
    r = CliRunner().invoke(cli, ["audit", str(db)])
    assert r.exit_code == 1, r.output
    assert "journal entry 2 (event 'r'): signature check failed" in r.output, r.output
