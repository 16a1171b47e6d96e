"""Every check the verifier runs, in one table: its name, what it proves, what a failure
looks like, and the buggy twin in ``tests/verify/verify_policies.py`` that it must catch.

The renderers (SARIF rules, text) and the docs read their descriptions from here; a new
check is added by adding its row here and its stage in :mod:`.checks`/:mod:`.properties`.
"""

from __future__ import annotations

from typing import Optional

import attrs


@attrs.frozen
class Check:
    name: str  # the result ``kind``
    scope: str  # handler: one result per handler; declared: per declared property
    proves: str  # what "proved" means
    fails_as: str  # the status a violation gets (refuted / guard_missing / vacuous)
    counterexample: str  # what a failing result shows
    twin: Optional[str] = None  # the buggy twin in tests/verify/verify_policies.py
    runner: Optional[str] = None  # policy-scope checks: "module:function" in this package


CHECKS: tuple[Check, ...] = (
    Check("applicable", "handler",
          "the handler's requires can all hold (otherwise it is dead code)",
          "vacuous", "none: no input satisfies the requires", "VACUOUS"),
    Check("reachability", "handler",
          "every `if`/`else` branch can be taken by some applied event",
          "vacuous", "the lines of the dead branches", "BRANCH"),
    Check("conservation", "handler",
          "every posting moves one asset between two accounts; supply changes only by "
          "mint/burn of an asset that declares it",
          "refuted", "the line that mints or burns an asset that does not allow it"),
    Check("non_negative", "handler",
          "no move or split amount is negative for inputs that satisfy the requires",
          "refuted", "an event whose move amount is negative", "FEE"),
    Check("no_overdraft", "handler",
          "no move overdraws a party, stake or pool account for inputs that satisfy "
          "the requires",
          "guard_missing", "an event the runtime rejects by an overdraft, not a require"),
    Check("escrow_bound", "handler",
          "an escrow never releases more than it holds",
          "refuted", "an event releasing more than the record's escrow holds", "REFUND"),
    Check("supply_cap", "handler",
          "minting never pushes supply above the asset's cap",
          "guard_missing", "a mint beyond the cap that no require stops"),
    Check("delete_empty", "handler",
          "a record is deleted only when its escrow is empty (else the runtime rejects)",
          "guard_missing", "a delete of a record that still holds value", "DELETE"),
    Check("rounding", "handler",
          "a split's shares are >= 0 and shares + leftover == amount; methods other than "
          "floor_dust distribute the whole amount when anyone has weight",
          "refuted", "weights, shares and leftover of a split that loses or creates units"),
    Check("invariant", "declared",
          "a declared invariant holds initially and every handler preserves it",
          "refuted", "events from the initial state that break it, or a step that does",
          "INVARIANT"),
    Check("split_proportional", "declared",
          "every share is within the bound of its exact proportional part",
          "refuted", "weights and shares of an unfair split", "SPLIT"),
    Check("split_monotone", "declared",
          "a larger weight never gets a smaller share",
          "refuted", "weights and shares of a non-monotone split", "SPLIT"),
    Check("split_symmetric", "declared",
          "equal weights get shares within the bound of each other",
          "refuted", "weights and shares of an asymmetric split", "SPLIT"),
    Check("split_floor", "declared",
          "every recipient gets at least the bound",
          "refuted", "weights and shares with a share below the floor", "SPLIT"),
    Check("split_cap", "declared",
          "no recipient gets more than the bound",
          "refuted", "weights and shares with a share above the cap", "SPLIT"),
    Check("budget", "declared",
          "one event never pays more than the limit out of the pool",
          "refuted", "an event paying more than the limit", "BUDGET"),
)

CHECKS += (
    Check("authority", "policy",
          "only the account's owner, the clock, a declared party, a party the record names, "
          "or members of a role only an authority grants can make the handler move value out "
          "of an account (or the handler is declared `anyone may call`); reports list who "
          "can move whose money; likewise only such an authority makes *another* party a "
          "member of a role (``H.admission``: joining yourself is how open roles work)",
          "refuted", "an applied event whose submitter owns none of the account it empties, "
          "or that makes another party a member without authority",
          "AUTHORITY", "authority:check_authority"),
    Check("once", "policy",
          "the same event applied twice to a record pays out of someone else's account at "
          "most once, unless the first advanced the record (a counter, amount or time field)",
          "refuted", "two identical events that both pay, with the record's lifecycle fields "
          "unchanged in between", "ONCE", "once:check_once"),
    Check("issuance", "policy",
          "every mint site is bounded: by the asset's declared cap, by a per-event rate Z3 "
          "can bound, by what the same event burns or pays in, by what earlier events burned "
          "into the record field it re-issues (a bond), or issued only by a declared party; "
          "an asset with an unbounded mint site is a warning that lists its sites",
          "warning", "the mint sites with no cap, rate or issuer bounding them", "ISSUANCE",
          "issuance:check_issuance"),
    Check("stranded", "policy",
          "`dissolve` leaves no value in pools, escrows or stakes, and an event that leaves a "
          "record's escrow holding value leaves some handler able to pay it out",
          "refuted", "an applied event after which value sits where no handler can move it",
          "DISSOLVE", "stranded:check_stranded"),
    Check("postcondition", "policy",
          "every `ensures` clause of a handler holds after every applied event (`old(e)`: "
          "`e` before it)",
          "refuted", "an applied event after which the clause is false", "ENSURES",
          "postconditions:check_postconditions"),
)

# checks run once per policy after the per-handler ones, in this order (see pipeline._policy)
POLICY_CHECKS = tuple(c for c in CHECKS if c.scope == "policy")

BY_NAME = {c.name: c for c in CHECKS}

# the built-in per-handler checks, with what they mean (also used for docs/SARIF rules)
BUILTIN = {c.name: c.proves for c in CHECKS if c.scope == "handler"}

# result kinds of declared properties checked per handler (cached with that handler)
DECLARED_KINDS = {c.name for c in CHECKS if c.scope == "declared" and c.name != "invariant"}
