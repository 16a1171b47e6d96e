"""Buggy twins of stdlib policies: realistic one-line bugs, each as (id, stdlib policy,
the line as written, the buggy line, the finding that must replay or None).

The fixed twin is the stdlib policy itself.  Used by ``test_replay_twins.py`` (a CI-sized
subset) and ``tools/replay_mutants.py`` (all of them, plus every dropped guard).
"""

from __future__ import annotations


def apply(text: str, old: str, new: str) -> str:
    assert text.count(old) == 1, f"the twin's line must occur once: {old!r}"
    return text.replace(old, new)


TWINS: tuple[tuple, ...] = (
    # a milestone can be paid after the last one (guard dropped): the escrow runs dry
    ("gig milestone past the last", "gig_market",
     '    require t.paid_milestones + 1 < t.milestones else "the last milestone is paid by complete"\n'
     '    require t.worker is some else "task has no worker"\n'
     '    let due = floor(t.price * (t.paid_milestones + 1) / t.milestones) - floor(t.price * t.paid_milestones / t.milestones)\n'
     '    require balance(Task(id)) >= due else "the escrow does not cover this milestone"\n',
     '    require t.worker is some else "task has no worker"\n'
     '    let due = floor(t.price * (t.paid_milestones + 1) / t.milestones) - floor(t.price * t.paid_milestones / t.milestones)\n',
     "milestone.escrow_bound"),
    # a task can be completed twice: the second payout finds the escrow empty
    ("gig complete twice", "gig_market",
     '    require t.open else "task is closed"\n    require t.assigned else "task has no assigned worker"\n'
     '    require t.worker is some else "task has no worker"\n    # the gross',
     '    require t.assigned else "task has no assigned worker"\n'
     '    require t.worker is some else "task has no worker"\n    # the gross',
     None),
    # an expired task is closed without refunding the poster: a closed task keeps money
    ("gig expiry keeps the escrow", "gig_market",
     "    if t.open {\n        refund rest of t to t.poster\n        set t.open = false\n",
     "    if t.open {\n        set t.open = false\n",
     "closed_tasks_are_empty"),
    # a swarm that expires without members keeps its budget (the refund of the rest is gone)
    ("flash expiry keeps the budget", "flash_collaboration",
     "        split all of s among x in Seat where x.swarm == s to x.member by x.received "
     "rounding largest_remainder\n        refund rest of s to s.sponsor\n",
     "        split all of s among x in Seat where x.swarm == s to x.member by x.received "
     "rounding largest_remainder\n",
     "closed_swarms_are_empty"),
    # a DAO job can be accepted twice
    ("dao accept twice", "service_dao",
     '    require not j.done else "job already settled"\n', "", None),
    # a purpose-economy claim can be approved twice
    ("purpose approve twice", "purpose_economy",
     '    require not c.approved else "already approved"\n', "", None),
)
