"""Random event streams against the market economies (hypothesis).

Each stream is a list of plausible, often invalid, events from a handful of
parties; many are rejected, which is the point: rejected events must change
nothing and applied ones must keep the economy's own invariants.  After every
event we check, independently of the runtime's own re-check:

* every non-supply balance is >= 0 and each asset's balances sum to zero
  (the supply account is minus the supply);
* the economy's invariants, computed from records and balances in Python
  (for example: a closed gig task holds nothing; an open one holds exactly its
  budget minus the milestones already paid; a royalty payment leaves exactly
  floor(amount * fee) in the protocol pool).
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import pytest

pytest.importorskip("charter.runtime.api")
hypothesis = pytest.importorskip("hypothesis")
from charter.compiler.pipeline import Compilation
from charter.runtime.api import open_runtime
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

ROOT = Path(__file__).resolve().parents[2]
SETTINGS = settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
PARTIES = ["ann", "bob", "cat"]
party = st.sampled_from(PARTIES)


def _policy(name: str):
    return Compilation.from_path(str(ROOT / "stdlib_policies" / f"{name}.charter")).ir


_CACHE: dict = {}


def policy(name: str):
    if name not in _CACHE:
        _CACHE[name] = _policy(name)
    return _CACHE[name]


def check_books(rt) -> None:
    per_asset: dict[str, int] = defaultdict(int)
    for account, amount in rt.balances().items():
        asset = account.rsplit(":", 1)[-1] if not account.startswith("pool:") else None
        if not account.startswith("supply:"):
            # a party's account may go down to its asset's credit line (mutual credit)
            floor = -rt.state.credit.get(asset, 0) if account.startswith("party:") else 0
            assert amount >= floor, (account, amount)
        if account.startswith("supply:"):
            per_asset[account.split(":", 1)[1]] += amount
        elif asset is not None:
            per_asset[asset] += amount
    # pools carry no asset suffix: add them through the policy's declarations
    for pool in rt.policy.pools:
        per_asset[pool.asset] += rt.balances().get(f"pool:{pool.name}", 0)
    assert all(v == 0 for v in per_asset.values()), dict(per_asset)


def run(rt, events, after, resolve=None) -> int:
    applied = 0
    for i, (etype, sub, args, dt) in enumerate(events):
        # time passing is committed on its own before an event (engine step 3):
        # tick first so `before` is the state the event itself starts from
        assert rt.submit(
            {"id": f"tick{i}", "type": "@tick", "submitter": "clock", "time": 1000 + dt, "args": {}}
        ).applied
        check_books(rt)
        after(rt, {"type": "@tick"}, None, rt.balances())
        before = rt.balances()
        if sub == "POSTER":
            task = rt.records("Task").get(args.get("id")) if "Task" in rt.state.records else None
            sub = task["poster"] if task else PARTIES[0]
        if resolve is not None:
            sub, args = resolve(rt, etype, sub, dict(args))
        ev = {"id": f"r{i}", "type": etype, "submitter": sub, "time": 1000 + dt, "args": args}
        out = rt.submit(ev)
        if out.applied:
            applied += 1
        else:
            assert rt.balances() == before, "a rejected event changed balances"
        check_books(rt)
        after(rt, ev, out, before)
    return applied


# ---- gig market -------------------------------------------------------------

task_id = st.sampled_from(["t1", "t2", "t3", "t4"])
# mostly sensible amounts, sometimes zero, negative or too large
money = st.one_of(st.integers(100, 6000), st.integers(100, 6000), st.integers(-50, 20000))

_post = st.tuples(
    st.just("post"),
    party,
    st.fixed_dictionaries(
        {
            "id": task_id,
            "budget": money,
            "skill": st.just("s"),
            "payout": st.sampled_from(["fixed", "quality", "milestone", "milestone", "barter"]),
            "milestones": st.sampled_from([1, 1, 2, 3]),
            "duration": st.integers(3600, 5 * 86400),
        }
    ),
)
_bid = st.tuples(st.just("bid"), party, st.fixed_dictionaries({"id": task_id, "price": money}))
# "POSTER" is resolved when the event is submitted to the poster of the task
# named in its args (so poster-only events are mostly authorised)
by_poster = st.sampled_from(["POSTER", "POSTER", "POSTER"] + PARTIES)
gig_event = st.one_of(
    _post,
    _post,
    _bid,
    _bid,
    _bid,
    st.tuples(st.just("award"), by_poster, st.fixed_dictionaries({"id": task_id})),
    st.tuples(
        st.just("assign"),
        by_poster,
        st.fixed_dictionaries({"id": task_id, "worker": party, "price": money}),
    ),
    st.tuples(st.just("milestone"), by_poster, st.fixed_dictionaries({"id": task_id})),
    st.tuples(
        st.just("complete"),
        by_poster,
        st.fixed_dictionaries({"id": task_id, "quality": st.integers(1, 5)}),
    ),
    st.tuples(
        st.just("complete"),
        by_poster,
        st.fixed_dictionaries({"id": task_id, "quality": st.integers(1, 5)}),
    ),
    st.tuples(st.just("cancel"), by_poster, st.fixed_dictionaries({"id": task_id})),
)


def _timed(ev_strategy, spread: int = 3 * 86400):
    return st.lists(st.tuples(ev_strategy, st.integers(0, spread)), min_size=10, max_size=40).map(
        lambda xs: [(e[0], e[1], e[2], t) for e, t in sorted(xs, key=lambda x: x[1])]
    )


def _gig_invariants(rt, ev, out, before) -> None:
    for key, t in rt.records("Task").items():
        held = rt.balance(f"escrow:Task:{key}:Credit")
        if not t["open"]:
            assert held == 0, (key, t, held)
        else:
            paid = t["price"] * t["paid_milestones"] // t["milestones"]
            assert held == t["budget"] - paid, (key, t, held)
        assert t["price"] <= t["budget"]
    if out is not None and out.applied and ev["type"] == "complete":
        # the fee of a completion goes into the commons, never out of it
        assert rt.balance("commons") >= before.get("pool:commons", 0)


_valid_post = st.tuples(
    st.just("post"),
    party,
    st.fixed_dictionaries(
        {
            "id": task_id,
            "budget": st.integers(100, 6000),
            "skill": st.just("s"),
            "payout": st.sampled_from(["fixed", "quality", "milestone"]),
            "milestones": st.just(1),
            "duration": st.integers(3600, 5 * 86400),
        }
    ),
)


@SETTINGS
@given(
    setup=st.lists(_valid_post, min_size=2, max_size=4), stream=_timed(gig_event, spread=8 * 3600)
)
def test_gig_market_random_streams(setup, stream) -> None:
    events = [(e[0], e[1], e[2], 0) for e in setup] + stream
    rt = open_runtime(policy("gig_market"))
    for i, p in enumerate(PARTIES):
        assert rt.submit(
            {"id": f"j{i}", "type": "join", "submitter": p, "time": 0, "args": {}}
        ).applied
        assert rt.submit(
            {
                "id": f"d{i}",
                "type": "deposit",
                "submitter": "gateway",
                "time": 0,
                "args": {"account": p, "amount": 10000},
            }
        ).applied
    run(rt, events, _gig_invariants)
    # nothing is burned in the gig market: all Credit minted is still somewhere
    assert rt.supply("Credit") == 30000


# ---- asset royalties -------------------------------------------------------

work = st.sampled_from(["w1", "w2", "w3", "w4"])
roy_event = st.one_of(
    st.tuples(
        st.just("register"),
        party,
        st.fixed_dictionaries(
            {"id": work, "rate": st.sampled_from(["0%", "5%", "10%", "25%", "40%", "101%"])}
        ),
    ),
    st.tuples(
        st.just("declare_reuse"),
        party,
        st.fixed_dictionaries({"child": work, "parent": work}),
    ),
    st.tuples(st.just("pay"), party, st.fixed_dictionaries({"work": work, "amount": money})),
    st.tuples(st.just("claim"), party, st.fixed_dictionaries({"work": work})),
)


def _roy_invariants(rt, ev, out, before) -> None:
    works = rt.records("Work")
    for key in works:
        parents = [e for e in rt.records("Reuse").values() if e["child"] == key]
        assert (
            sum(works[e["parent"]]["rate"] for e in parents)
            <= policy("asset_royalties").param("max_royalty").default
        )
    if out is not None and out.applied and ev["type"] == "pay":
        amount = ev["args"]["amount"]
        fee = policy("asset_royalties").param("protocol_fee").default
        assert (
            rt.balance("protocol") - before.get("pool:protocol", 0)
            == amount * fee.numerator // fee.denominator
        )
        escrow_gain = sum(
            rt.balance(f"escrow:Work:{k}:Credit") - before.get(f"escrow:Work:{k}:Credit", 0)
            for k in works
        )
        # every unit the buyer paid is either the protocol's or in some work's escrow
        assert escrow_gain == amount - amount * fee.numerator // fee.denominator


@SETTINGS
@given(events=_timed(roy_event))
def test_asset_royalties_random_streams(events) -> None:
    rt = open_runtime(policy("asset_royalties"))
    for i, p in enumerate(PARTIES):
        assert rt.submit(
            {"id": f"j{i}", "type": "join", "submitter": p, "time": 0, "args": {}}
        ).applied
        assert rt.submit(
            {
                "id": f"d{i}",
                "type": "deposit",
                "submitter": "gateway",
                "time": 0,
                "args": {"account": p, "amount": 10000},
            }
        ).applied
    run(rt, events, _roy_invariants)
    assert rt.supply("Credit") == 30000


# ---- skill licensing ---------------------------------------------------------

skill = st.sampled_from(["s1", "s2", "s3"])
_publish = st.tuples(
    st.just("publish"),
    party,
    st.fixed_dictionaries(
        {
            "id": skill,
            "mode": st.sampled_from(["per_use", "burn", "stake", "free"]),
            "price": st.integers(0, 500),
            "deposit": st.just(0),
            "term": st.integers(3600, 2 * 86400),
        }
    ),
)
_publish_staked = st.tuples(
    st.just("publish"),
    party,
    st.fixed_dictionaries(
        {
            "id": skill,
            "mode": st.just("stake"),
            "price": st.just(0),
            "deposit": st.integers(0, 3000),
            "term": st.integers(3600, 2 * 86400),
        }
    ),
)
_license = st.tuples(
    st.just("license"),
    party,
    st.fixed_dictionaries(
        {"id": st.sampled_from(["L1", "L2", "L3", "L4", "L5", "L6"]), "skill": skill}
    ),
)
lic_event = st.one_of(
    _publish,
    _publish_staked,
    _license,
    _license,
    st.tuples(
        st.just("use"), party, st.fixed_dictionaries({"skill": skill, "calls": st.integers(1, 50)})
    ),
    st.tuples(
        st.just("report_violation"),
        st.just("judge"),
        st.fixed_dictionaries(
            {"lease": st.sampled_from(["L1", "L2", "L3", "L4"]), "reason": st.just("x")}
        ),
    ),
)


def _lic_invariants(rt, ev, out, before) -> None:
    leases = rt.records("Lease")
    for p in PARTIES:
        live = sum(l["deposit"] for l in leases.values() if l["live"] and l["holder"] == p)
        # every live deposit is locked in its holder's stake, nothing more
        assert rt.balance(f"stake:{p}:Credit") == live, (p, live)
    assert rt.balance("treasury") >= before.get("pool:treasury", 0)


@SETTINGS
@given(events=_timed(lic_event))
def test_skill_licensing_random_streams(events) -> None:
    rt = open_runtime(policy("skill_licensing"))
    assert rt.submit(
        {
            "id": "a",
            "type": "appoint_arbiter",
            "submitter": "gateway",
            "time": 0,
            "args": {"who": "judge"},
        }
    ).applied
    for i, p in enumerate(PARTIES):
        assert rt.submit(
            {"id": f"j{i}", "type": "join", "submitter": p, "time": 0, "args": {}}
        ).applied
        assert rt.submit(
            {
                "id": f"d{i}",
                "type": "deposit",
                "submitter": "gateway",
                "time": 0,
                "args": {"account": p, "amount": 10000},
            }
        ).applied
    run(rt, events, _lic_invariants)


# ---- IaaS micro-market -------------------------------------------------------

cap = st.sampled_from(["c1", "c2", "c3"])
iaas_event = st.one_of(
    st.tuples(
        st.just("list"),
        party,
        st.fixed_dictionaries(
            {
                "id": cap,
                "price": st.integers(0, 300),
                "price_usdc": st.integers(0, 3_000_000),
                "barter": st.booleans(),
            }
        ),
    ),
    st.tuples(
        st.just("call"),
        party,
        # max_price mostly above the listed prices (0..300), sometimes below
        st.fixed_dictionaries(
            {"cap": cap, "calls": st.integers(1, 60), "max_price": st.integers(0, 400)}
        ),
    ),
    st.tuples(
        st.just("call_usdc"),
        party,
        st.fixed_dictionaries(
            {"cap": cap, "calls": st.integers(1, 60), "max_price": st.integers(0, 4_000_000)}
        ),
    ),
    st.tuples(st.just("join_barter"), party, st.just({})),
    st.tuples(st.just("leave_barter"), party, st.just({})),
    st.tuples(
        st.just("barter_call"),
        party,
        st.fixed_dictionaries(
            {"cap": cap, "calls": st.integers(1, 40), "max_price": st.integers(0, 400)}
        ),
    ),
    st.tuples(
        st.just("barter_call"),
        party,
        st.fixed_dictionaries(
            {"cap": cap, "calls": st.integers(1, 40), "max_price": st.integers(0, 400)}
        ),
    ),
    st.tuples(st.just("rebond"), party, st.fixed_dictionaries({"amount": st.integers(1, 3000)})),
)


def _iaas_invariants(rt, ev, out, before) -> None:
    limit = policy("iaas_market").param("barter_limit").default
    barter = {k: v for k, v in rt.balances().items() if k.endswith(":Barter")}
    members = set(rt.members("Barterer")) if hasattr(rt, "members") else None
    for acc, v in barter.items():
        if acc.startswith("party:"):
            # mutual credit on the ledger: never below the credit line
            assert v >= -limit, (acc, v)
            if members is not None:
                assert acc.split(":")[1] in members or v == 0, (acc, v)
    # barter is double entry: what members owe, other members hold
    assert sum(v for k, v in barter.items() if k.startswith("party:")) == 0
    assert rt.balance("clearing") == 0
    assert rt.balance("fees") >= before.get("pool:fees", 0)
    if out is not None and out.applied and ev["type"] == "call":
        c = rt.records("Capability")[ev["args"]["cap"]]
        gross = c["price"] * ev["args"]["calls"]
        paid = before.get(f"party:{ev['submitter']}:Credit", 0) - rt.balance(
            ev["submitter"], "Credit"
        )
        assert paid == gross
        assert rt.balance("fees") - before.get("pool:fees", 0) == gross * 2 // 100


def _iaas_resolve(rt, etype, sub, args):
    return sub, args


@SETTINGS
@given(
    prices=st.lists(st.integers(0, 300), min_size=3, max_size=3),
    events=_timed(iaas_event, spread=20 * 86400),
)
def test_iaas_market_random_streams(prices, events) -> None:
    rt = open_runtime(policy("iaas_market"))
    for i, p in enumerate(PARTIES):
        assert rt.submit(
            {"id": f"j{i}", "type": "join", "submitter": p, "time": 0, "args": {}}
        ).applied
        assert rt.submit(
            {
                "id": f"d{i}",
                "type": "deposit",
                "submitter": "gateway",
                "time": 0,
                "args": {"account": p, "amount": 10000},
            }
        ).applied
        assert rt.submit(
            {
                "id": f"u{i}",
                "type": "deposit_usdc",
                "submitter": "gateway",
                "time": 0,
                "args": {"account": p, "amount": 50_000_000},
            }
        ).applied
        # every party lists one capability (the last not for barter) and joins barter
        assert rt.submit(
            {
                "id": f"l{i}",
                "type": "list",
                "submitter": p,
                "time": 0,
                "args": {
                    "id": f"c{i + 1}",
                    "price": prices[i],
                    "price_usdc": prices[i] * 10_000,
                    "barter": i < 2,
                },
            }
        ).applied
        assert rt.submit(
            {"id": f"b{i}", "type": "join_barter", "submitter": p, "time": 0, "args": {}}
        ).applied
    run(rt, events, _iaas_invariants, _iaas_resolve)
    assert rt.supply("Credit") == 30000 and rt.supply("USDC") == 150_000_000


# ---- computation staking -------------------------------------------------------

job = st.sampled_from(["j1", "j2", "j3", "j4"])
node = st.sampled_from(["n-ann", "n-bob"])
provider = st.sampled_from(["ann", "bob"])
compute_event = st.one_of(
    st.tuples(
        st.just("submit_job"),
        st.just("cat"),
        st.fixed_dictionaries(
            {"id": job, "provider": provider, "payment": money, "window": st.integers(600, 86400)}
        ),
    ),
    st.tuples(
        st.just("prove"),
        st.sampled_from(["PROVIDER", "PROVIDER", "ann"]),
        st.fixed_dictionaries({"job": job, "proof": st.just("p")}),
    ),
    st.tuples(
        st.just("verify"),
        st.just("val"),
        st.fixed_dictionaries({"job": job, "valid": st.booleans()}),
    ),
    st.tuples(
        st.just("verify"),
        st.just("val"),
        st.fixed_dictionaries({"job": job, "valid": st.booleans()}),
    ),
    st.tuples(st.just("heartbeat"), provider, st.fixed_dictionaries({"node": node})),
    st.tuples(
        st.just("report_downtime"),
        st.sampled_from(["cat", "val"]),
        st.fixed_dictionaries({"node": node}),
    ),
    st.tuples(st.just("unjail"), provider, st.fixed_dictionaries({"node": node})),
    st.tuples(st.just("bond"), provider, st.fixed_dictionaries({"amount": st.integers(1, 5000)})),
    st.tuples(
        st.just("unbond"),
        provider,
        st.fixed_dictionaries(
            {"id": st.sampled_from(["u1", "u2", "u3"]), "amount": st.integers(1, 20000)}
        ),
    ),
)


def _compute_invariants(rt, ev, out, before) -> None:
    pol = policy("compute_staking")
    max_jobs = pol.param("max_jobs").default
    for key, j in rt.records("Job").items():
        held = rt.balance(f"escrow:Job:{key}:Credit")
        assert held == (j["payment"] if j["state"] in ("open", "proved") else 0), (key, j, held)
    for p in ("ann", "bob"):
        unfinished = [
            j
            for j in rt.records("Job").values()
            if j["provider"] == p and j["state"] in ("open", "proved")
        ]
        assert len(unfinished) <= max_jobs
    for key in rt.records("Unbond"):
        assert rt.balance(f"escrow:Unbond:{key}:Credit") >= 0
    # nothing is minted after setup; slashes may burn
    assert rt.supply("Credit") <= 60000


def _compute_resolve(rt, etype, sub, args):
    if sub == "PROVIDER":
        j = rt.records("Job").get(args["job"])
        sub = j["provider"] if j else "bob"
    return sub, args


@SETTINGS
@given(events=_timed(compute_event, spread=10 * 86400))
def test_compute_staking_random_streams(events) -> None:
    rt = open_runtime(policy("compute_staking"))
    setup = [("appoint_verifier", "gateway", {"who": "val"}), ("join", "cat", {})]
    for p in ("ann", "bob", "cat"):
        setup.append(("deposit", "gateway", {"account": p, "amount": 20000}))
    for p in ("ann", "bob"):
        # min_stake is 100.00 Credit
        setup += [("register_node", p, {"id": f"n-{p}"}), ("bond", p, {"amount": 15000})]
    setup += [
        ("submit_job", "cat", {"id": "j1", "provider": "ann", "payment": 1234, "window": 86400}),
        ("submit_job", "cat", {"id": "j2", "provider": "bob", "payment": 999, "window": 7200}),
    ]
    for i, (etype, sub, args) in enumerate(setup):
        assert rt.submit(
            {"id": f"s{i}", "type": etype, "submitter": sub, "time": 0, "args": args}
        ).applied
    run(rt, events, _compute_invariants, _compute_resolve)
