"""`charter verify`: prove a policy's money safety with Z3, or show a counterexample.

For every handler (encoded by :mod:`charter.compiler.verify.encode`) the verifier asks Z3
a handful of questions, each ending **proved**, **refuted** (with a model,
rendered in the policy's own names plus a replayable scenario) or **unknown**
(time-out or an unsupported construct, said plainly).  Two more outcomes are
warnings, never green checks:

* ``guard_missing`` - inputs satisfying every ``require`` make a move overdraw
  a party's, stake's or pool's account.  The runtime rejects such an event
  (nothing changes, no value is created or lost), so this is *not* a money
  bug: it says the handler can be made to fail by an overdraft rather than by
  a clear ``require ... else "..."`` message.  ``--strict`` counts it as a
  failure.
* ``vacuous`` - the handler's ``require``s can never all hold, or a declared
  property's premise (e.g. two equal weights) is impossible, so "proved"
  would be meaningless.
* ``warning`` - a risk rather than a counterexample: a mintable asset without a
  cap whose mint sites nothing bounds (:mod:`.issuance`).  ``--strict`` fails on it.

Across handlers, :mod:`.authority` (who can move whose money), :mod:`.once` (a record
paid at most once per lifecycle stage), :mod:`.issuance`, :mod:`.stranded` (nothing left
where no rule can move it) and :mod:`.postconditions` (``ensures`` clauses) run as the
pipeline's ``policy`` stage.

Money bugs are ``refuted``: a negative move amount (a payout formula that
goes below zero for allowed parameters), a release from an escrow that can
exceed what it holds, minting beyond a cap, a split that loses or creates
units, declared fairness/budget/invariant properties that fail.

Declared invariants (and automatic candidates such as "amount fields of
records are >= 0") are established Houdini-style: all are assumed before
each handler and checked after it; those that fail are dropped and the rest
re-checked until stable.  The survivors are inductive, hence hold in every
reachable state, and every other check assumes them.

Collections (role members, records, list arguments) are modelled with up to
``bound`` items; results that depend on a collection say so ("for up to N
items").

Checks are modular: each handler is verified from an arbitrary pre-state that
satisfies the proved invariants (declared and automatic).  So a refutation's
pre-state may, for a policy whose invariants are too weak, be unreachable.
Every refutation is therefore also searched for from the initial state (no
records; party and pool balances and role members as a ``given`` setup) over
event sequences of up to :data:`MAX_TRACE` events ending in the failing
handler.  When found, the result says "confirmed reachable" and its scenario is
that trace as a Charter ``test`` block (given roles, funds and parameters, each
event, and the outcome the verifier predicts) which ``charter test`` replays on
the runtime; otherwise it says the pre-state may be unreachable and shows the
modular counterexample with the records it needs.

Not modelled (sound for properties about applied events, stated in results
where relevant): the runtime's step budget (it can only reject more events),
``dissolve`` (a flag, moves nothing), the time limit of granted rights, and the
total supply burned by ``decay`` (per-account decay is exact).

The package, one module per concern (the checks are listed in :mod:`.catalogue`, the
stages in :mod:`.pipeline`):

* encoding: :mod:`.terms` (values and Z3 helpers), :mod:`.model` (what a handler's
  encoding holds), :mod:`.encode` (IR -> Z3), :mod:`.splits` (split shares);
* solving: :mod:`.solver` (every Z3 query goes through it);
* checks: :mod:`.prepare`, :mod:`.invariants`, :mod:`.checks` (built-in, per handler),
  :mod:`.properties` (declared), :mod:`.search` (bounded search from the initial state);
* reporting: :mod:`.naming`, :mod:`.counterexample`, :mod:`.scenario`, :mod:`.render`;
* :mod:`.cache`, :mod:`.options`, :mod:`.result`.
"""

from __future__ import annotations

from .cache import user_cache_dir
from .catalogue import BUILTIN, CHECKS, Check
from .options import Options
from .pipeline import STAGES, verify
from .render import render_json, render_json_many, render_sarif, render_sarif_many, render_text
from .solver import DEFAULT_RLIMIT, DEFAULT_TIMEOUT_MS, Limits, Stats, stats
from .result import GUARD, PROVED, REFUTED, UNKNOWN, VACUOUS, WARNING, Result, exit_code, summary

__all__ = [
    "BUILTIN",
    "CHECKS",
    "Check",
    "DEFAULT_RLIMIT",
    "DEFAULT_TIMEOUT_MS",
    "GUARD",
    "Limits",
    "Options",
    "PROVED",
    "REFUTED",
    "Result",
    "STAGES",
    "Stats",
    "UNKNOWN",
    "VACUOUS",
    "WARNING",
    "exit_code",
    "render_json",
    "render_json_many",
    "render_sarif",
    "render_sarif_many",
    "render_text",
    "stats",
    "summary",
    "user_cache_dir",
    "verify",
]
