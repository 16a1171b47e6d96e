"""Each event handler's path (runtime/pathgen.py) is the settle table, written out.

Every event of a fuzzed stream (well-typed, hostile, duplicates, id conflicts,
time attacks) goes to two runtimes of the same policy: one runs handlers'
paths, the other the table step by step (``rt.paths`` emptied).  Receipts and
rejections (code, message, span and the step that refused) must be the same,
and so must the journals and states."""

from __future__ import annotations

import random
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))

import fuzz_events as F  # noqa: E402

from charter.runtime import pathgen, settle  # noqa: E402

_TARGETS = {t.name: t for t in F.targets(include_examples=True)}
_NAMES = ["gig_market", "example:gig_market", "time_bank", "quadratic_funding",
          "commons_maintenance", "crowdsourced_pool"]


def _key(out):
    if out.applied:
        return ("applied", out.duplicate, out.tx, out.journal_hash, out.postings, out.timers)
    return ("rejected", out.code, out.message, out.span, out.step)


def test_every_step_of_the_table_has_a_writer_in_order():
    assert list(pathgen.WRITERS) == settle.step_names()


@pytest.mark.parametrize("name", [n for n in _NAMES if n in _TARGETS])
def test_paths_and_the_table_step_by_step_agree(name):
    tg = _TARGETS[name]
    rng = random.Random(f"paths:{name}")
    steps_seen: set = set()
    for ep in range(3):
        rt, table = tg.runtime(), tg.runtime()
        assert rt.paths, "the python backend writes a path per event handler"
        table.paths = {}
        stream = F.Stream(tg, rng, ep)
        for _ in range(120):
            ev = stream.next(rt)
            a, b = rt.submit(ev), table.submit(ev)
            assert _key(a) == _key(b), ev
            if not a.applied:
                steps_seen.add(a.step)
            elif rt.clock is not None and rt.clock > stream.now:
                stream.now = rt.clock
        assert F.same_ledger(rt, table) is None
    # the stream exercises refusals in several steps, not one
    assert len(steps_seen) >= 3, steps_seen


def test_a_path_writes_the_by_clause_and_body_of_a_plain_handler_inline(gig_policy):
    from charter.runtime.api import open_runtime

    rt = open_runtime(gig_policy)
    src = rt.paths["bid"].__charter_source__
    assert "authorise(rt, tx)" not in src and "handler(rt, tx)" not in src
    # the body, its record writes written out too (the before image into the event's frame)
    assert "raise Rejected('require'" in src and "_fr[_rk] = _o" in src
    # a body that calls its closures (admit: roles) takes the steps' own functions
    assert "handler(rt, tx)" in rt.paths["join"].__charter_source__


@pytest.mark.parametrize(
    "event,code,step",
    [
        ({"id": "x1", "type": "bid", "submitter": "zed", "time": 10**7,
          "args": {"id": "t3", "price": 100}}, "unauthorised", "authorise"),
        ({"id": "x2", "type": "bid", "submitter": "ann", "time": 10**7,
          "args": {"id": "t3", "price": "lots"}}, "bad_argument", "convert"),
        ({"id": "x3", "type": "withdraw", "submitter": "ann", "time": 10**7,
          "args": {"amount": 0}}, "require", "handler"),
        ({"id": "x4", "type": "withdraw", "submitter": "ann", "time": 5,
          "args": {"amount": 1}}, "time_regressed", "clock"),
        ({"id": "e01", "type": "withdraw", "submitter": "ann", "time": 10**7,
          "args": {"amount": 1}}, "id_conflict", "identify"),
    ],
)
def test_a_refusal_in_a_path_names_its_step(gig_policy, gig_events, event, code, step):
    from charter.runtime.api import open_runtime

    rt = open_runtime(gig_policy)
    for e in gig_events[:30]:
        rt.submit(e)
    out = rt.submit(event)
    assert (out.applied, out.code, out.step) == (False, code, step), out
