"""Double-entry accounts and postings, and the checks made before every commit.

Account names are strings, stable across stores and in the journal:

* ``party:<id>:<Asset>``  a party's own holding
* ``stake:<id>:<Asset>``  a party's locked stake
* ``pool:<name>``         a pool or treasury of the policy (one asset each)
* ``pool:<name>:<Family[key]>``  a pool of an asset family: one account per member
* ``escrow:<Record>:<key>:<Asset>``  the escrow a record holds
* ``supply:<Asset>``      minus the asset's supply: mint posts out of it, burn into it

A posting moves a non-negative amount of one asset from one account to
another, so a transaction's postings balance per asset by construction;
:func:`check_transaction` re-checks it anyway (sum per asset and
non-negativity of every touched non-supply account), because the runtime
must never trust its own evaluation with the books.
"""

from __future__ import annotations

from typing import Callable, Iterable, Mapping, NamedTuple, Optional, Sequence


class Posting(NamedTuple):
    src: str
    dst: str
    asset: str
    amount: int
    kind: str  # the author's verb: transfer, escrow, release, refund, split, mint, burn, decay, ...

    def to_list(self) -> list:
        return [self.src, self.dst, self.asset, self.amount, self.kind]

    def to_dict(self) -> dict:
        return {
            "from": self.src,
            "to": self.dst,
            "asset": self.asset,
            "amount": self.amount,
            "kind": self.kind,
        }


def party_account(party: str, asset: str) -> str:
    return f"party:{party}:{asset}"


def stake_account(party: str, asset: str) -> str:
    return f"stake:{party}:{asset}"


def pool_account(pool: str, member_asset: Optional[str] = None) -> str:
    """A pool's account; a pool of an asset family has one per member (``Token[USDC]``)."""
    return f"pool:{pool}" if member_asset is None else f"pool:{pool}:{member_asset}"


def escrow_account(record: str, key: str, asset: str) -> str:
    return f"escrow:{record}:{key}:{asset}"


def supply_account(asset: str) -> str:
    return f"supply:{asset}"


def is_supply(account: str) -> bool:
    return account.startswith("supply:")


def account_kind(account: str) -> str:
    return account.split(":", 1)[0]


def account_party(account: str) -> str | None:
    """The party of a ``party:``/``stake:`` account (ids may contain ':', assets may not)."""
    kind, _, rest = account.partition(":")
    if kind in ("party", "stake"):
        return rest.rpartition(":")[0]
    return None


class LedgerError(Exception):
    """The books do not add up: a bug or tampering, never a normal rejection."""


class BoundsError(LedgerError):
    """A balance or posting outside the documented bound (``|v| <= 2**63 - 1``)."""


MAX_BALANCE = 2**63 - 1  # = values.MAX_INT (ledger.py imports nothing of the runtime)


def check_transaction(
    postings: Sequence[Posting],
    before: Mapping[str, Optional[int]],
    balances: Mapping[str, int],
    asset_of: Callable[[str], str],
    floor_of: Optional[Callable[[str], int]] = None,
) -> None:
    """Re-check a transaction before commit.

    ``before`` holds the balance of every touched account before the
    transaction, ``balances`` the balances now.  Checks that every posting is
    non-negative and moves the asset both accounts hold, that the actual
    balance changes equal what the postings say, that they sum to zero per
    asset, and that no touched non-supply account is negative (below ``floor_of(account)``
    where a credit line lets a party's account go below zero).  Raises
    :class:`LedgerError` naming the asset or account at fault, or
    :class:`BoundsError` when a posting or a touched balance (supply
    included) is outside ``+-MAX_BALANCE``, so every stored balance stays
    encodable.
    """
    if len(postings) == 1 and len(before) == 2:
        # the common single move: the same checks, without the bookkeeping dicts
        src, dst, asset, amount = postings[0][:4]
        if src != dst and src in before and dst in before:
            if not -MAX_BALANCE <= amount <= MAX_BALANCE:
                raise BoundsError(f"a posting of {asset} from {src} to {dst} exceeds 2**63-1")
            if amount < 0:
                raise LedgerError(f"negative posting of {amount} {asset} from {src} to {dst}")
            if asset_of(src) != asset or asset_of(dst) != asset:
                raise LedgerError(f"posting of {asset} between {src} and {dst} mixes assets")
            s_now, d_now = balances.get(src, 0), balances.get(dst, 0)
            if not (
                -MAX_BALANCE <= s_now <= MAX_BALANCE
                and -MAX_BALANCE <= d_now <= MAX_BALANCE
            ):
                raise BoundsError(
                    f"a move of {asset} from {src} to {dst} is or leaves a balance "
                    "outside +-(2**63-1)"
                )
            if s_now - (before[src] or 0) != -amount or d_now - (before[dst] or 0) != amount:
                raise LedgerError(f"balances of {src} and {dst} do not match a move of {amount}")
            # with credit lines, only an account the move takes down is held to its line: a
            # member whose line ended (expelled while owing) may still be paid back
            if (s_now < 0 and not src.startswith("supply:")
                    and (floor_of is None or (amount > 0 and s_now < floor_of(src)))) or (
                d_now < 0 and not dst.startswith("supply:") and floor_of is None
            ):
                raise LedgerError(f"a move of {amount} {asset} leaves {src} or {dst} negative")
            return
    expected: dict[str, int] = {}
    get = expected.get
    for src, dst, asset, amount, _kind in postings:
        if not 0 <= amount <= MAX_BALANCE:
            if not -MAX_BALANCE <= amount <= MAX_BALANCE:
                raise BoundsError(f"a posting of {asset} from {src} to {dst} exceeds 2**63-1")
            raise LedgerError(f"negative posting of {amount} {asset} from {src} to {dst}")
        if asset_of(src) != asset or asset_of(dst) != asset:
            raise LedgerError(f"posting of {asset} between {src} and {dst} mixes assets")
        expected[src] = get(src, 0) - amount
        expected[dst] = get(dst, 0) + amount
    if not expected.keys() <= before.keys():
        raise LedgerError("an account was posted to without being tracked")
    # Every touched account changed by exactly what the postings say, and each posting
    # moves one asset between two accounts of that asset: so the changes sum to zero per
    # asset (the balance per asset follows from these checks, no sum of its own is needed).
    for acc, old in before.items():
        now = balances.get(acc, 0)
        delta = now - (old or 0)
        if delta != get(acc, 0):
            raise LedgerError(f"account {acc} changed by {delta}, postings say {get(acc, 0)}")
        if now < 0:
            if now < -MAX_BALANCE:
                raise BoundsError(f"the balance of {acc} would be outside +-(2**63-1)")
            if not acc.startswith("supply:") and (
                    floor_of is None or (delta < 0 and now < floor_of(acc))):
                raise LedgerError(f"account {acc} would be negative ({now})")
        elif now > MAX_BALANCE:
            raise BoundsError(f"the balance of {acc} would be outside +-(2**63-1)")


def balances_from_postings(postings: Iterable[Posting]) -> dict[str, int]:
    """Balances recomputed from postings alone (for audit and replay)."""
    out: dict[str, int] = {}
    for p in postings:
        out[p.src] = out.get(p.src, 0) - p.amount
        out[p.dst] = out.get(p.dst, 0) + p.amount
    return out


def totals_by_asset(balances: Mapping[str, int], asset_of: Mapping[str, str]) -> dict[str, int]:
    """Sum of every account per asset; zero for every asset in balanced books."""
    out: dict[str, int] = {}
    for acc, bal in balances.items():
        a = asset_of[acc]
        out[a] = out.get(a, 0) + bal
    return out
