"""The runtime's mutable state, changed only inside transactions that can be undone.

An event is evaluated directly against this state, but every first change of
a balance, record, role, right or clock entry saves its *before image* in the
current transaction frame.  Records are copied on their first write in a
frame (the before image is the old dict itself, never changed afterwards), so
a dict handed out earlier (``state_rows()``) never shows a value that a
rolled-back transaction wrote.  A rejection restores the before images, so the
state is exactly as it was: the effect of a scratch overlay without copying
anything.  Frames nest (a timed handler that fails inside an event rolls
back only its own changes).  On commit the keys of the before images are the
"dirty" set a persistent store writes.

Store keys are ``(kind, key)`` string pairs: ``balance``/account,
``record``/``["Task","t1"]``, ``role``/``["Agent","alice"]``,
``right``/``["Licence",key,"alice"]``, ``meta``/name.
"""

from __future__ import annotations

import heapq
import json
import sys
from json.encoder import c_make_encoder, encode_basestring
from typing import Any, Iterable, Optional

from charter.compiler import ir

from .ledger import Posting, account_party
from . import paged
from .paged import GONE, PagedTable, Pager, trimmed
from .values import (
    MAX_INT, Rejected, amount_text, bound_problem, canonical, from_json_value, to_json_value,
)

_ABSENT = object()
_intern = sys.intern
# NamedTuple instances made per posting/event skip the generated __new__ (a Python frame)
_new_tuple = tuple.__new__
_NATIVE = (int, str, bool)


class Frame:
    __slots__ = ("bal", "rec", "role", "right", "meta", "parties", "pops", "npostings", "nflags")

    def __init__(self, npostings: int, nflags: int):
        # most events move value or write a record: the other before-image maps are made when
        # first needed.  ``bal`` and ``rec`` are never replaced (a nested frame's are merged
        # into them in place), so generated code reads them once per event (pygen, inline)
        self.bal: dict[str, Optional[int]] = {}
        self.rec: dict[tuple[str, str], Any] = {}
        self.role: Optional[dict[tuple[str, str], Any]] = None
        self.right: Optional[dict[tuple, Any]] = None
        self.meta: Optional[dict[str, Any]] = None
        self.parties: Optional[list[str]] = None
        self.pops: Optional[list[tuple[list, tuple]]] = None
        self.npostings = npostings
        self.nflags = nflags


def _restore(table: Any, images: dict) -> None:
    """Put back a frame's before images into one flat table (``_ABSENT``: the key was new)."""
    for key, old in images.items():
        if old is _ABSENT:
            table.pop(key, None)
        else:
            table[key] = old


def _merged(outer: Optional[dict], inner: dict) -> dict:
    """``outer`` with the entries of ``inner`` it lacks (``outer``'s values win)."""
    if not outer:
        return dict(inner)
    for k, v in inner.items():
        if k not in outer:
            outer[k] = v
    return outer


def _merge_into(outer: dict, inner: dict) -> None:
    """The entries of ``inner`` that ``outer`` lacks, added to ``outer`` itself."""
    for k, v in inner.items():
        if k not in outer:
            outer[k] = v


class State:
    """Balances, records, roles, rights and the clock of one runtime."""

    def __init__(self, policy: ir.Policy):
        self.policy = policy
        self.balances: dict[str, int] = {}
        self.asset_of_acc: dict[str, str] = {}
        self.asset_of_get = self.asset_of_acc.__getitem__  # the ledger check's lookup, bound once
        self.holders: dict[str, set[str]] = {a.name: set() for a in policy.assets}
        # a ledger file may page big record tables and meta (trim; looked up by name, never
        # held across a commit)
        self.records: dict[str, dict[str, dict[str, Any]]] = {r.name: {} for r in policy.records}
        self.roles: dict[str, dict[str, dict[str, Any]]] = {r.name: {} for r in policy.roles}
        self.rights: dict[tuple[str, Optional[str], str], Optional[int]] = {}
        self.parties: set[str] = set()
        # clock: t0 (first applied event), time (latest applied), dissolved,
        # every:<handler> -> firings done, fired:<handler>:<key> -> due fired
        self.meta: dict[str, Any] = {}
        self._pagers: Optional[dict[tuple[str, Optional[str]], Pager]] = None
        self.pool_asset = {p.name: p.asset for p in policy.pools}
        # deadline handlers: record -> [(handler, field)], and a lazy heap per handler
        self.deadline_fields: dict[str, list[tuple[str, str]]] = {}
        self.heaps: dict[str, list[tuple[int, str]]] = {}
        self.deadline_of: dict[str, tuple[str, str]] = {}
        self._compact: set[str] = set()
        # "deadline fired" markers are meta keys ``f<i>:<record key>`` (i: the handler's
        # place among the policy's deadline handlers): one per record, so kept short
        self._fired_tag: dict[str, str] = {}
        for h in policy.handlers:
            if h.kind == "deadline":
                self.deadline_fields.setdefault(h.record, []).append((h.name, h.field))
                self.heaps[h.name] = []
                self.deadline_of[h.name] = (h.record, h.field)
                self._fired_tag[h.name] = f"f{len(self._fired_tag)}:"
        # a record's stored row is the list of its field values in declared order
        self.record_fields: dict[str, tuple[str, ...]] = {
            r.name: tuple(f.name for f in r.fields) for r in policy.records
        }
        # a live record is a dict sharing its field names with every record of its kind
        # (see _shared_keys): the attributes of an instance of the kind's own class
        self._record_cls: dict[str, type] = {
            r: _shared_keys(r, fields) for r, fields in self.record_fields.items()
        }
        self.frames: list[Frame] = []
        self.postings: list[Posting] = []
        self.flags: list[dict] = []
        # credit lines: asset -> how far (minor units) a party's account may go below zero
        # (an asset family's line is each member's: ``Token[USDC]`` finds ``Token``); a line a
        # parameter sets is known once the runtime has its parameters (set_params)
        self.set_params({})

    def set_params(self, params: dict) -> None:
        """The credit lines with the ledger's parameter values (a line set by a parameter,
        `credit barter_limit`, is its value; without the parameter, no line yet)."""
        assets = [a for a in self.policy.assets
                  if getattr(a, "credit_param", None) is None or a.credit_param in params]
        self.credit = ir.AssetMap(
            (a.name, a.credit_line(params)) for a in assets if a.credit_line(params))
        self.soft_credit = ir.AssetMap(
            (a.name, (a.soft_line(params), a.decimals))
            for a in self.policy.assets
            if (getattr(a, "soft_credit_param", None) is None or a.soft_credit_param in params)
            and a.soft_line(params) is not None
        )

    # ------------------------------------------------------------ transactions

    def begin(self) -> None:
        self.frames.append(Frame(len(self.postings), len(self.flags)))

    def rollback(self) -> None:
        f = self.frames.pop()
        # most frames wrote balances or records only: the other maps are None (not made)
        if f.bal:
            bal = self.balances
            for acc, old in f.bal.items():
                if old is None:
                    bal.pop(acc, None)
                else:
                    bal[acc] = old
        if f.rec:
            records = self.records
            for (r, k), old in f.rec.items():
                if old is _ABSENT:
                    records[r].pop(k, None)
                else:
                    records[r][k] = old
        if f.role:
            for (role, p), old in f.role.items():
                if old is _ABSENT:
                    self.roles[role].pop(p, None)
                else:
                    self.roles[role][p] = old
        if f.right:
            _restore(self.rights, f.right)
        if f.meta:
            _restore(self.meta, f.meta)
        if f.parties:
            for p in f.parties:
                self.parties.discard(p)
        if f.pops:
            for heap, item in reversed(f.pops):
                heapq.heappush(heap, item)
        if len(self.postings) > f.npostings:
            del self.postings[f.npostings :]
        if len(self.flags) > f.nflags:
            del self.flags[f.nflags :]
        if self._compact and not self.frames:
            self._compact_heaps()

    def commit(self) -> Frame:
        """Close the innermost frame; merged into the outer one if nested.  Returns it."""
        f = self.frames.pop()
        if self.frames:
            # merged into the outer frame, whose older before images win (a timed handler's
            # frame inside its event's, once per firing: written out, no getattr by name)
            outer = self.frames[-1]
            if f.bal:
                _merge_into(outer.bal, f.bal)
            if f.rec:
                _merge_into(outer.rec, f.rec)
            if f.meta:
                outer.meta = _merged(outer.meta, f.meta)
            if f.role:
                outer.role = _merged(outer.role, f.role)
            if f.right:
                outer.right = _merged(outer.right, f.right)
            if f.parties:
                outer.parties = (outer.parties or []) + f.parties
            if f.pops:
                outer.pops = (outer.pops or []) + f.pops
        elif self._compact:
            self._compact_heaps()
        return f

    # ------------------------------------------------------------ balances

    def balance(self, acc: str) -> int:
        return self.balances.get(acc, 0)

    def post(self, src: str, dst: str, asset: str, amount: int, kind: str) -> None:
        """Write one posting (the caller has checked funds and caps)."""
        bal = self.balances
        fb = self.frames[-1].bal
        # each balance read once: the before image (None: no account yet) and the new value
        old = bal.get(src)
        if src not in fb:
            fb[src] = old
        bal[src] = (old or 0) - amount
        old = bal.get(dst)
        if dst not in fb:
            fb[dst] = old
        bal[dst] = (old or 0) + amount
        known = self.asset_of_acc
        if dst not in known:
            self._new_account(dst, asset)
        if src not in known:
            self._new_account(src, asset)
        self.postings.append(_new_tuple(Posting, (src, dst, asset, amount, kind)))

    def post_many(self, moves: Iterable[tuple[str, str, int]], asset: str, kind: str) -> None:
        """:meth:`post` for each ``(src, dst, amount)`` of one asset and kind, in order (a
        split or a decay writes one per holder: the loop's lookups are made once)."""
        bal = self.balances
        get = bal.get
        fb = self.frames[-1].bal
        known = self.asset_of_acc
        append = self.postings.append
        for src, dst, amount in moves:
            old = get(src)
            if src not in fb:
                fb[src] = old
            bal[src] = (old or 0) - amount
            old = get(dst)
            if dst not in fb:
                fb[dst] = old
            bal[dst] = (old or 0) + amount
            if dst not in known:
                self._new_account(dst, asset)
            if src not in known:
                self._new_account(src, asset)
            append(_new_tuple(Posting, (src, dst, asset, amount, kind)))

    def _new_account(self, acc: str, asset: str) -> None:
        # account metadata is derived (from the name), so it needs no undo
        self.asset_of_acc[acc] = asset
        p = account_party(acc)
        if p is not None:
            if acc.startswith("party:"):
                self.holders.setdefault(asset, set()).add(acc)
            self.add_party(p)

    def flag_soft_credit(self, touched: Any) -> None:
        """Flag every party account the event touched that ends it below its asset's soft
        credit limit (the event still applies: a soft limit only flags), in account order."""
        for acc in sorted(touched):
            if not acc.startswith("party:"):
                continue
            asset = self.asset_of(acc)
            soft = self.soft_credit.get(asset)
            now = self.balances.get(acc, 0)
            if soft is None:
                continue
            limit = self.line_value(soft[0], account_party(acc))
            if limit is not None and now < -limit:
                self.flags.append({
                    "party": account_party(acc),
                    "message": f"owes more than its soft credit limit of "
                               f"{amount_text(limit, soft[1], asset)} (balance "
                               f"{amount_text(now, soft[1], asset)})",
                })

    def line_value(self, line: Any, party: Optional[str]) -> Optional[int]:
        """A credit limit for ``party``: the amount, or for a line each member sets (a
        ``(role, attribute)`` pair) the party's own attribute (None: not a member)."""
        if not isinstance(line, tuple):
            return line
        member = self.roles.get(line[0], {}).get(party)
        if member is None:
            return None
        v = member.get(line[1])
        return v if type(v) is int else None

    def floor_of(self, acc: str) -> int:
        """The lowest balance ``acc`` may hold: minus its asset's credit line for a party's
        own account, else 0 (supply accounts are not checked)."""
        if self.credit and acc.startswith("party:"):
            line = self.credit.get(self.asset_of(acc), 0)
            if isinstance(line, tuple):  # each member's own attribute
                return -(self.line_value(line, account_party(acc)) or 0)
            return -line
        return 0

    def audit_lines(self) -> Any:
        """The credit lines as the audit checks them, one amount per asset.  A line each
        member sets is not known from the journal (it is whatever attribute admitted the
        member, and an expelled debtor keeps its debt): the audit holds such balances only to
        the ledger's bounds; each move was checked against the holder's line when it settled."""
        out = ir.AssetMap()
        for asset, line in self.credit.items():
            out[asset] = 2**63 - 1 if isinstance(line, tuple) else line
        return out

    def asset_of(self, acc: str) -> str:
        a = self.asset_of_acc.get(acc)
        if a is not None:
            return a
        if acc.startswith("pool:"):
            pool, _, member = acc[5:].partition(":")
            return member or self.pool_asset[pool]  # `pool:vault:Token[USDC]` (a family pool)
        return acc.rpartition(":")[2]

    # ------------------------------------------------------------ parties, roles, rights

    def add_party(self, p: str) -> None:
        if p not in self.parties and p != "clock":
            self.parties.add(p)
            if self.frames:
                f = self.frames[-1]
                if f.parties is None:
                    f.parties = []
                f.parties.append(p)

    def has_role(self, party: str, role: str) -> bool:
        return party in self.roles[role]

    def set_role(self, role: str, party: str, attrs: Optional[dict]) -> None:
        f = self.frames[-1]
        fr = f.role
        if fr is None:
            fr = f.role = {}
        members = self.roles[role]
        if (role, party) not in fr:
            fr[(role, party)] = members.get(party, _ABSENT)
        if attrs is None:
            members.pop(party, None)
        else:
            _check_values(role, attrs)
            members[party] = attrs
            self.add_party(party)

    def set_right(self, key: tuple, until: Any) -> None:
        """``until`` is an int time, None (no expiry) or ``_ABSENT`` to revoke."""
        f = self.frames[-1]
        fr = f.right
        if fr is None:
            fr = f.right = {}
        if key not in fr:
            fr[key] = self.rights.get(key, _ABSENT)
        if until is not _ABSENT and until is not None and not -MAX_INT <= until <= MAX_INT:
            raise Rejected("out_of_bounds", f"{key[0]}: expiry time outside +-(2**63-1)")
        if until is _ABSENT:
            self.rights.pop(key, None)
        else:
            self.rights[key] = until

    def has_right(self, party: str, right: str, key: Optional[str], now: int) -> bool:
        until = self.rights.get((right, key, party), _ABSENT)
        return until is not _ABSENT and (until is None or now < until)

    # ------------------------------------------------------------ records

    def _save_record(self, r: str, k: str) -> None:
        fr = self.frames[-1].rec
        if (r, k) not in fr:
            fr[(r, k)] = self.records[r].get(k, _ABSENT)

    def compact_record(self, r: str, values: dict[str, Any]) -> dict[str, Any]:
        """``values`` as the record ``r`` is kept: when they are its declared fields in the
        declared order, a copy of the kind's prototype (its field names shared, not one
        table per record: ~140 bytes where a dict of its own takes ~280), its texts interned
        (a party's name is one string, not one per record).  Equal to ``values``."""
        cls = self._record_cls.get(r)
        if cls is None or tuple(values) != self.record_fields[r]:
            return values
        rec = cls().__dict__
        for f, v in values.items():  # item by item: dict.update would unshare the names
            rec[f] = _intern(v) if type(v) is str else v
        return rec

    def create_record(self, r: str, k: str, values: dict[str, Any]) -> None:
        _check_values(r, values)
        self._save_record(r, k)
        values = self.compact_record(r, values)
        self.records[r][k] = values
        for handler, field in self.deadline_fields.get(r, ()):
            self._arm(handler, values.get(field), k)

    def set_fields(self, r: str, k: str, values: dict[str, Any]) -> None:
        _check_values(r, values)
        fr = self.frames[-1].rec
        recs = self.records[r]
        if (r, k) in fr:
            rec = recs[k]  # a dict this frame made: nobody else holds it
        else:
            # copy on first write: the old dict is the before image and stays as it was
            # (a copy of a record keeps sharing its field names: State.compact_record)
            old = recs[k]
            fr[(r, k)] = old
            rec = recs[k] = old.copy()
        for f, v in values.items():
            rec[f] = _intern(v) if type(v) is str else v
        for handler, field in self.deadline_fields.get(r, ()):
            if field in values:
                self._arm(handler, values[field], k)

    def set_field(self, r: str, k: str, name: str, v: Any) -> None:
        """:meth:`set_fields` of one field, ``set_fields(r, k, {name: v})`` without the dict
        (the generated code writes one call per ``set``)."""
        t = type(v)
        if t is str:
            v = _intern(v)
        elif not (v is None or t is bool or (t is int and -MAX_INT <= v <= MAX_INT)):
            _check_values(r, {name: v})
        fr = self.frames[-1].rec
        recs = self.records[r]
        rk = (r, k)
        if rk in fr:
            rec = recs[k]  # a dict this frame made: nobody else holds it
        else:
            old = recs[k]  # copied on first write, as set_fields does
            fr[rk] = old
            rec = recs[k] = old.copy()
        rec[name] = v
        armed = self.deadline_fields.get(r)
        if armed:
            for handler, field in armed:
                if field == name:
                    self._arm(handler, v, k)

    def delete_record(self, r: str, k: str) -> None:
        self._save_record(r, k)
        del self.records[r][k]
        # a deleted record's "deadline fired" markers are dead weight: drop them with it
        for handler, _field in self.deadline_fields.get(r, ()):
            mk = self._fired_tag[handler] + k
            if mk in self.meta:
                f = self.frames[-1]
                fr = f.meta
                if fr is None:
                    fr = f.meta = {}
                if mk not in fr:
                    fr[mk] = self.meta[mk]
                del self.meta[mk]

    def _arm(self, handler: str, due: Any, key: str) -> None:
        # pushes need no undo: entries are checked against the record when popped.  Stale
        # entries (moved deadlines, deleted records, rolled-back events) are dropped when
        # they reach the top; so that rejected events cannot grow a heap without bound, a
        # heap more than twice the size of its record table is rebuilt (amortised O(1)).
        if isinstance(due, int):
            heap = self.heaps[handler]
            heapq.heappush(heap, (due, key))
            if len(heap) > 64 and len(heap) > 2 * len(self.records[self.deadline_of[handler][0]]) + 64:
                self._compact.add(handler)  # rebuilt when no transaction is open

    def _compact_heaps(self) -> None:
        """Rebuild oversized heaps from the records (only between transactions: inside one,
        a rolled-back delete or move would lose its entry)."""
        for handler in self._compact:
            record, field = self.deadline_of[handler]
            heap = self.heaps[handler]
            heap[:] = [
                (r[field], k) for k, r in self.records[record].items() if isinstance(r.get(field), int)
            ]
            heapq.heapify(heap)
        self._compact.clear()

    def deadline_top(
        self, handler: str, record: str, field: str, now: Optional[int] = None
    ) -> Optional[tuple[int, str]]:
        """The earliest due, unfired (due, key) of a deadline handler, dropping stale entries.

        With ``now``, returns None at once when even the earliest entry is later.
        """
        heap = self.heaps[handler]
        if now is not None and (not heap or heap[0][0] > now):
            return None
        recs = self.records[record]
        while heap:
            due, key = heap[0]
            rec = recs.get(key)
            if (
                rec is not None
                and rec.get(field) == due
                and self.meta.get(self._fired_tag[handler] + key) != due
            ):
                return due, key
            self.pop_deadline(handler)
        return None

    def fired_key(self, handler: str, key: str) -> str:
        """The meta key that marks deadline ``handler`` as fired for record ``key`` (its value:
        the due time it fired for)."""
        return self._fired_tag[handler] + key

    def pop_deadline(self, handler: str) -> None:
        heap = self.heaps[handler]
        item = heapq.heappop(heap)
        if self.frames:
            f = self.frames[-1]
            if f.pops is None:
                f.pops = []
            f.pops.append((heap, item))

    def fire_deadline(self, handler: str, key: str, due: int) -> None:
        """A deadline firing's bookkeeping, in the open frame (undone with it): its entry,
        the heap's top, popped (:meth:`pop_deadline`) and its "fired" marker set
        (``set_meta(fired_key(handler, key), due)``) - one call per firing."""
        heap = self.heaps[handler]
        item = heapq.heappop(heap)
        f = self.frames[-1]
        if f.pops is None:
            f.pops = []
        f.pops.append((heap, item))
        mk = self._fired_tag[handler] + key
        fr = f.meta
        if fr is None:
            fr = f.meta = {}
        meta = self.meta
        if mk not in fr:
            fr[mk] = meta.get(mk, _ABSENT)
        meta[mk] = due

    # ------------------------------------------------------------ clock / misc

    def set_meta(self, key: str, value: Any) -> None:
        f = self.frames[-1]
        fr = f.meta
        if fr is None:
            fr = f.meta = {}
        if key not in fr:
            fr[key] = self.meta.get(key, _ABSENT)
        self.meta[key] = value

    # ------------------------------------------------------------ persistence

    def dirty_keys(
        self, f: Frame, balances: bool = True, records: bool = True, meta: bool = True
    ) -> Iterable[tuple[str, Any]]:
        """Keys changed in a frame: ``(kind, key)``, key a str or tuple (see :func:`store_key`)."""
        if balances:
            for acc in f.bal:
                yield "balance", acc
        if records:
            for rk in f.rec or ():
                yield "record", rk
        for rp in f.role or ():
            yield "role", rp
        for key in f.right or ():
            yield "right", key
        if meta:
            for key in f.meta or ():
                yield "meta", key

    def value_of(self, kind: str, key: Any) -> Any:
        """The JSON value stored for a key, or None when it no longer exists."""
        if kind == "balance":
            return self.balances.get(key)  # the asset follows from the account name
        if kind == "meta":
            # an int (clock entries, deadline markers: most meta rows) is kept bare
            v = self.meta.get(key, _ABSENT)
            return None if v is _ABSENT else v if type(v) is int else {"v": to_json_value(v)}
        if isinstance(key, str):
            key = tuple(json.loads(key))
        if kind == "record":
            r, k = key
            rec = self.records[r].get(k)
            return None if rec is None else self.record_row(r, rec)
        if kind == "role":
            role, p = key
            attrs = self.roles[role].get(p)
            return None if attrs is None else to_json_value(attrs)
        if kind == "right":
            until = self.rights.get(key, _ABSENT)
            return None if until is _ABSENT else {"until": until}
        raise KeyError(kind)

    def record_row(self, r: str, rec: dict[str, Any]) -> Any:
        """A live record's stored JSON value: its field values in the declared order (the
        names are the policy's, not repeated in every row); an object of fields only
        for a record whose fields are not the declared ones (none the engine makes)."""
        fields = self.record_fields.get(r)
        if fields is not None and len(rec) == len(fields) and all(f in rec for f in fields):
            return [v if v is None or type(v) in _NATIVE else to_json_value(v)
                    for v in (rec[f] for f in fields)]
        return to_json_value(rec)

    def load_row(self, kind: str, key: str, value: Any) -> None:
        """Restore one stored row (inverse of :meth:`value_of`)."""

        if kind == "balance":
            if type(self.balances) is PagedTable:
                self.balances._n += 1  # a stored row read once: counted, left in the file
            else:
                self.balances[key] = value
            self._new_account(key, self.asset_of(key))
        elif kind == "record":
            r, k = json.loads(key)
            rec = self.record_value(r, value, key)
            table = self.records[r]
            if type(table) is PagedTable:
                table._n += 1  # a stored row read once: counted, left in the file
            else:
                table[k] = rec
            for handler, field in self.deadline_fields.get(r, ()):
                due = rec.get(field)
                # a deadline that fired for this due is never due again: not armed (the
                # markers load first: rows come in kind order, meta before record)
                if due is None or self.meta.get(self._fired_tag[handler] + k) != due:
                    self._arm(handler, due, k)
        elif kind == "role":
            role, p = json.loads(key)
            self.roles[role][p] = {f: from_json_value(x) for f, x in value.items()}
            self.add_party(p)
        elif kind == "right":
            right, k, p = json.loads(key)
            self.rights[(right, k, p)] = value["until"]
        elif kind == "meta":
            if type(self.meta) is PagedTable:
                self.meta._n += 1
            else:
                self.meta[key] = _meta_value(value)

    def load_rows(self, store: Any) -> None:
        """Restore every stored row of ``store`` (:meth:`load_row`).  On a ledger file
        (a store with ``row_text``) the tables past the cap page as they load
        (:meth:`trim`), so opening a big ledger does not hold every record either."""
        pages = hasattr(store, "row_text")
        load = self.load_row
        every = paged.PAGE_CAP  # a table grows by at most this many between trims
        for i, (kind, key, value) in enumerate(store.rows(), 1):
            load(kind, key, value)
            if pages and not i % every:
                self.trim(store)
        if pages:
            self.trim(store)

    def record_value(self, r: str, value: Any, key: Any = None) -> dict[str, Any]:
        """A stored record row's JSON value as the live record (inverse of
        :meth:`record_row`)."""
        if type(value) is list:
            fields = self.record_fields[r]
            if len(value) != len(fields):
                raise ValueError(f"record row {key or r} has {len(value)} values for "
                                 f"{len(fields)} fields")
            # party names and other texts repeat across records: one string each
            return self.compact_record(r, {
                f: x if x is None or type(x) in _NATIVE else from_json_value(x)
                for f, x in zip(fields, value)})
        # a record row of ledger schema 4 or older: an object of fields
        return self.compact_record(r, {f: from_json_value(x) for f, x in value.items()})

    def trim(self, store: Any) -> None:
        """After a commit to a ledger file (``SqliteStore.flush``): the balances, a record
        table or the meta table past :data:`~charter.runtime.paged.PAGE_CAP` entries
        becomes (or stays) a bounded cache that reads the rest from ``store``
        (``runtime/paged.py``); the account -> asset cache is emptied past it (an account
        is registered again when next posted to: ``_new_account`` is idempotent)."""
        pagers = self._pagers
        if pagers is None:
            pagers = self._pagers = self._make_pagers(store)
        cap = paged.PAGE_CAP
        records = self.records
        for r, table in records.items():
            if dict.__len__(table) > cap:
                records[r] = trimmed(table, pagers["record", r], cap)
        if dict.__len__(self.meta) > cap:
            self.meta = trimmed(self.meta, pagers["meta", None], cap)
        if dict.__len__(self.balances) > cap:
            self.balances = trimmed(self.balances, pagers["balance", None], cap)
        if len(self.asset_of_acc) > cap:
            self.asset_of_acc.clear()  # in place: asset_of_get is bound to it

    def _make_pagers(self, store: Any) -> dict[tuple[str, Optional[str]], Pager]:
        """How each paged table reads ``store``'s rows (``row_text``/``row_texts``),
        decoded as :meth:`load_row` decodes them, by ``(kind, record name or None)``."""
        loads = json.loads
        text_of, texts = store.row_text, store.row_texts

        def pager(kind: str, prefix: str, key_text: Any, key_of: Any, decode: Any) -> Pager:
            def fetch(k: Any) -> Any:
                if type(k) is not str:
                    return GONE
                text = text_of(kind, key_text(k))
                return GONE if text is None else decode(loads(text))

            def scan() -> Any:
                for key, text in texts(kind, prefix):
                    yield key_of(key), decode(loads(text))

            return Pager(fetch, scan)

        def same(x: Any) -> Any:
            return x

        out = {("meta", None): pager("meta", "", same, same, _meta_value),
               ("balance", None): pager("balance", "", same, same, same)}
        for r in self.records:
            # '["Task",': every stored key of the table starts so
            out["record", r] = pager(
                "record", store_key((r, ""))[:-3], lambda k, r=r: store_key((r, k)),
                lambda key: loads(key)[1], lambda v, r=r: self.record_value(r, v))
        return out

    def row_count(self) -> int:
        """How many rows :meth:`rows` gives (without making them)."""
        return (len(self.balances) + sum(map(len, self.records.values()))
                + sum(map(len, self.roles.values())) + len(self.rights) + len(self.meta))

    def rows(self) -> Iterable[tuple[str, str, Any]]:
        """Every stored row of the whole state (for snapshots and comparisons)."""
        for acc in sorted(self.balances):
            yield "balance", acc, self.value_of("balance", acc)
        for r in sorted(self.records):
            # items, not a lookup per key: a paged table reads its rows in one scan
            for k, rec in sorted(self.records[r].items()):
                yield "record", canonical([r, k]), self.record_row(r, rec)
        for role in sorted(self.roles):
            for p in sorted(self.roles[role]):
                key = canonical([role, p])
                yield "role", key, self.value_of("role", key)
        for right in sorted(self.rights, key=lambda t: canonical(list(t))):
            key = canonical(list(right))
            yield "right", key, self.value_of("right", key)
        for m, v in sorted(self.meta.items()):
            yield "meta", m, v if type(v) is int else {"v": to_json_value(v)}


ABSENT = _ABSENT


def _meta_value(value: Any) -> Any:
    """A stored meta row's JSON value as the live one (an int is kept bare)."""
    return value if type(value) is int else from_json_value(value["v"])


def _shared_keys(record: str, fields: tuple[str, ...]) -> type:
    """A class whose instances' ``__dict__`` (an ordinary ``dict``) share one table of the
    record's field names: CPython keeps such a dict as a split table (PEP 412), values
    only, and ``dict.copy`` keeps it split.  Setting its fields one by one in the declared
    order keeps it split; anything else (another order, a new key, a deletion) makes that
    one record an ordinary dict again, never a wrong one."""
    cls = type(f"_{record}Fields", (), {})
    first = cls()
    for f in fields:
        setattr(first, f, None)  # an attribute, not a dict item: this grows the shared table
    return cls


def _check_values(where: str, values: dict[str, Any]) -> None:
    """Every value stored in a record or role stays within the documented bounds."""
    for name, v in values.items():
        t = type(v)
        if t is int:
            if -MAX_INT <= v <= MAX_INT:
                continue
        elif v is None or t is str or t is bool:
            continue
        problem = bound_problem(v)
        if problem:
            raise Rejected("out_of_bounds", f"{where}.{name}: {problem}")


_list_json = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode
if c_make_encoder is not None:  # the same text from one C encoder made once (encode()
    # builds a new one on every call: most of a key's cost)
    _c_key = c_make_encoder(
        None, json.JSONEncoder().default, encode_basestring, None, ":", ",", False, False, True
    )

    def _list_json(v: Any) -> str:  # noqa: F811 - replaces the portable definition above
        return "".join(_c_key(v, 0))


def store_key(key: Any) -> str:
    """A state key as stored: strings as they are, tuples as canonical JSON lists.

    (A list of strings and None has no keys to sort, so the plain encoder
    gives exactly :func:`canonical`'s text, faster.)"""
    return key if isinstance(key, str) else _list_json(key)
