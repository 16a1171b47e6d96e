"""`charter diff` a reviewer can trust.

* every standard-library policy diffed with itself is equivalent, at once (the IR is
  compared before Z3 is asked);
* one-line changes with known answers: a parameter default changes no handler (it is
  reported as a parameter change); an exact floor/ceil change is equivalent; a changed
  comparison, fee, rounding or split method is a difference - and every difference shown
  was replayed on the runtime on both versions, so the test replays it once more itself.
"""
from __future__ import annotations

from importlib import resources

import pytest
from click.testing import CliRunner

from charter.compiler import diff as d
from charter.compiler.diff_replay import _side, compare
from charter.compiler.pipeline import Compilation

ROOT = resources.files("charter.stdlib_policies")
STDLIB = sorted(p.name.removesuffix(".charter") for p in ROOT.iterdir()
                if p.name.endswith(".charter"))


def _policy(name: str, text: str | None = None):
    text = ROOT.joinpath(f"{name}.charter").read_text("utf-8") if text is None else text
    c = Compilation.from_text(text, f"{name}.charter")
    assert c.ok, [x.message for x in c.diagnostics]
    return c.ir


@pytest.mark.parametrize("name", STDLIB)
def test_every_stdlib_policy_is_equivalent_to_itself(name: str) -> None:
    a, b = _policy(name), _policy(name)  # two compilations: equal IR, distinct objects
    rep = d.diff(a, b)
    assert rep.handlers and all(h.status == "equivalent" for h in rep.handlers), \
        [(h.handler, h.status, h.message) for h in rep.handlers if h.status != "equivalent"]
    assert not rep.params and not rep.only_old and not rep.only_new
    assert d.render_text(rep).endswith("\nequivalent")


def test_self_diff_on_the_command_line_exits_zero(tmp_path) -> None:
    from charter.cli import cli

    path = str(ROOT.joinpath("gig_market.charter"))
    r = CliRunner().invoke(cli, ["diff", path, path])
    assert r.exit_code == 0, r.output
    assert "no solver needed" in r.output


# (policy, a text on the changed line, old, new, handler, expected status)
ONE_LINE = [
    ("gig_market", "param fee: percent = 2%", "= 2%", "= 3%", None, "fee: default 2% -> 3%"),
    ("time_bank", "param welcome_hours: Hours = 2 Hours", "= 2 Hours", "= 3 Hours", None,
     "welcome_hours: default 2.00 Hours -> 3.00 Hours"),
    # exact: both amounts have 2 decimals, so the floor never rounds
    ("purpose_economy", "mint floor(1 Pledge * (amount / 1 Credit)) to m", "floor(", "ceil(",
     "pledge", "equivalent"),
    ("quadratic_funding", "let cents = floor(amount / 0.01 Credit)", "floor(", "ceil(", "donate",
     "equivalent"),
    ("gig_market", 'require balance(poster, Credit) >= budget else', ">=", ">", "post",
     "different"),
    ("time_bank", 'require balance(m, Hours) >= hours else', ">=", ">", "donate", "different"),
    ("asset_royalties", "let take = floor(amount * protocol_fee)", "floor(", "ceil(", "pay",
     "different"),
    ("digital_twins", "let cut = floor(amount * fee)", "floor(", "ceil(", "pay", "different"),
    ("commons_maintenance", "let due = stream_due(s, now)", "now)", "now + 1 days)",
     "stop", "different"),
    ("skill_licensing", "mint floor(s.price * remint) to s.author", "floor(", "ceil(",
     "license", "different"),
    ("service_dao", "split to_members from Job(id) among m in Member",
     "rounding largest_remainder", "rounding sequential_floor", "accept", "different"),
]


def _changed(name: str, anchor: str, old: str, new: str) -> str:
    text = ROOT.joinpath(f"{name}.charter").read_text("utf-8")
    lines = text.split("\n")
    i = next(i for i, ln in enumerate(lines) if anchor in ln)
    assert old in lines[i]
    lines[i] = lines[i].replace(old, new, 1)
    return "\n".join(lines)


@pytest.mark.parametrize("name,anchor,old,new,handler,expected", ONE_LINE,
                         ids=[f"{c[0]}-{c[2]}->{c[3]}" for c in ONE_LINE])
def test_one_line_changes(name, anchor, old, new, handler, expected) -> None:
    a = _policy(name)
    b = _policy(name, _changed(name, anchor, old, new))
    rep = d.diff(a, b, timeout_ms=20_000)
    if handler is None:  # a parameter default: every handler the same, the change reported
        assert all(h.status == "equivalent" for h in rep.handlers)
        assert rep.params == [expected]  # in the units the policy writes
        return
    by_name = {h.handler: h for h in rep.handlers}
    h = by_name[handler]
    assert h.status == expected, h.message
    others = [x for x in rep.handlers if x.handler != handler]
    assert all(x.status == "equivalent" and "no solver" in x.message for x in others)
    if expected == "different":
        _replays(a, b, handler, h.example)


def _replays(a, b, handler: str, example: dict) -> None:
    """The shown difference was replayed on the runtime on both versions, and says so."""
    seen = example["replayed"]
    assert seen["differences"], example
    assert "replayed on the runtime" in d.render_text(d.DiffReport("a", "b", [d.HandlerDiff(
        handler, "different", "", example)], [], [], 3))


def test_a_difference_that_does_not_replay_is_never_shown(monkeypatch) -> None:
    # Make every replay come back "the same": the diff must then refuse to show Z3's model.
    from charter.compiler import diff_replay

    def same(*args, **kwargs):
        return diff_replay.Replay(False, None, None, "both versions settle it identically")

    monkeypatch.setattr(d, "replay", same)
    monkeypatch.setattr(d, "search", lambda *a, **k: None)
    a = _policy("gig_market")
    b = _policy("gig_market", _changed("gig_market", "require balance(poster, Credit) >= budget",
                                       ">=", ">"))
    h = {x.handler: x for x in d.diff(a, b).handlers}["post"]
    assert h.status == "unknown" and h.example is None
    assert "does not reproduce" in h.message and "not a difference" in h.message


def test_the_runtime_comparison_sees_balances_and_outcomes() -> None:
    pol = _policy("gig_market")
    x = diff_side(pol, {"pool:commons": 100})
    y = diff_side(pol, {"pool:commons": 150})
    assert compare(x, x, pol) == []
    assert compare(x, y, pol) == ["pool:commons: 1.00 Credit | 1.50 Credit"]


def diff_side(pol, balances):
    from charter.compiler.diff_replay import Side

    return Side(True, "applied", balances, {})


def test_replay_builds_state_and_fires_nothing_else() -> None:
    # The encoding runs one handler on the pre-state; at run time a record whose deadline
    # has passed would fire first.  The replay must run the handler alone.
    pol = _policy("gig_market")
    task = (("assigned", False), ("budget", 500), ("deadline", 0), ("due", 0),
            ("milestones", 1), ("open", True), ("paid_milestones", 0), ("payout", "once"),
            ("poster", "ann"), ("price", 0), ("skill", "x"), ("worker", None))
    setup = [("role", "Agent", "ann", ()), ("record", "Task", "t1", task),
             ("funds", "escrow:Task:t1:Credit", "Credit", 500)]
    ev = {"id": "diff-1", "type": "deposit", "submitter": "gateway", "time": 10,
          "args": {"account": "ann", "amount": 100}}
    side = _side(pol, {}, setup, pol.handler("deposit"), ev)
    assert side.applied, side.outcome
    assert side.state["records"]["Task"]["t1"]["open"] is True  # the deadline did not fire
    assert side.balances["escrow:Task:t1:Credit"] == 500
    assert side.balances["party:ann:Credit"] == 100
