"""`charter simulate`: scenarios, the real runtime, metrics, outputs, executors, errors."""
from __future__ import annotations

import copy
import json
import re
import tomllib
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings as hsettings, strategies as st

from charter.cli import cli
from charter.simulate import (ScenarioError, load_scenario, scenario_from_data, simulate)
from charter.simulate.metrics import gini, lorenz, top_share

pd = pytest.importorskip("pandas")

ROOT = Path(__file__).resolve().parents[2]
GIG_DIR = ROOT / "examples" / "gig_market"
GIG_SCENARIO = GIG_DIR / "scenario.toml"
EXAMPLE_SCENARIOS = sorted(ROOT.glob("examples/*/scenario.toml"))


def small(path: Path = GIG_SCENARIO, **header: Any) -> dict:
    """A scenario file's data, shrunk for the suite (fewer epochs and runs)."""
    data = tomllib.loads(path.read_text("utf-8"))
    data["scenario"].update({"epochs": 3, "runs": 2, **header})
    for p in data["populations"]:
        p["count"] = min(p["count"], 6)
    return data


def gig(data: dict, **kw: Any) -> Any:
    return scenario_from_data(data, base_dir=GIG_DIR, file="scenario.toml", **kw)


# ---- metrics, exactly ---------------------------------------------------------------

@pytest.mark.parametrize("values,want_gini,want_top", [
    ([], Fraction(0), Fraction(0)),
    ([0, 0, 0], Fraction(0), Fraction(0)),
    ([5, 5, 5, 5], Fraction(0), Fraction(1, 4)),
    ([0, 0, 0, 10], Fraction(3, 4), Fraction(1)),
    ([1, 2, 3, 4], Fraction(1, 4), Fraction(4, 10)),
    ([-5, 10], Fraction(1, 2), Fraction(1)),  # a debt counts as holding nothing
])
def test_inequality_measures_are_exact(values: list, want_gini: Fraction,
                                       want_top: Fraction) -> None:
    assert gini(values) == want_gini
    assert top_share(values) == want_top
    curve = lorenz(values)
    assert curve[0] == 0 and curve[-1] == (1 if sum(max(0, v) for v in values) else 1)
    assert all(a <= b for a, b in zip(curve, curve[1:]))


def test_gini_matches_the_mean_absolute_difference_definition() -> None:
    import random

    rng = random.Random(5)
    for _ in range(50):
        xs = [rng.randrange(0, 1000) for _ in range(rng.randrange(1, 30))]
        n, total = len(xs), sum(xs)
        if not total:
            continue
        mad = Fraction(sum(abs(a - b) for a in xs for b in xs), 2 * n * n)
        assert gini(xs) == mad / Fraction(total, n)


# ---- running ------------------------------------------------------------------------

def test_runs_settle_on_the_real_runtime_and_count_rejections() -> None:
    sc = gig(small())
    res = simulate(sc, executor="serial")
    assert len(res.results) == len(sc.points()) * sc.runs == 18
    df = res.frame
    assert {"point", "fee", "min_bid", "run", "epoch", "metric", "key", "value",
            "exact"} <= set(df.columns)
    # double entry: every minted Credit is somewhere (parties, pools, escrows)
    last = df[(df.epoch == 3) & (df.point == 0) & (df.run == 0)]
    supply = int(last[(last.metric == "supply") & (last.key == "Credit")].exact.iloc[0])
    held = last[last.metric == "balance"]
    held = held[held.key.str.endswith(":Credit")].exact.astype(int).sum()
    pools = last[last.metric == "pool"].exact.astype(int).sum()
    escrow = int(last[(last.metric == "escrow") & (last.key == "Credit")].exact.iloc[0])
    assert held + pools + escrow == supply > 0
    reasons = res.rejection_reasons()
    assert res.rejected == sum(reasons.values()) > 0
    counted = df[df.metric == "rejections"].value.sum()
    assert counted == res.rejected
    # every event was submitted to the runtime: applied + rejected
    assert sum(r.applied + r.rejected for r in res.results) == res.events
    # Gini values in the frame are exact fractions, shown as text
    g = df[df.metric == "gini"].exact
    assert all(re.fullmatch(r"-?\d+(/\d+)?", x) for x in g)


def test_sweep_points_share_random_draws_and_params_take_effect() -> None:
    data = small()
    data["sweep"] = {"min_bid": ["1", "100"]}
    res = simulate(gig(data), executor="serial")
    by_point = {r.point: r for r in res.results if r.run == 0}
    # a 100 Credit minimum bid refuses bids the 1 Credit one accepts
    rej = res.frame[(res.frame.metric == "rejections") & res.frame.key.str.contains("bid out")]
    per_point = rej.groupby("point").value.sum()
    assert per_point.get(1, 0) > per_point.get(0, 0)
    assert by_point[0].journal_hash != by_point[1].journal_hash


def test_python_behaviours_and_metrics() -> None:
    def gift(agent: Any, ctx: Any) -> dict:
        return {"type": "withdraw", "args": {"amount": 1 + ctx.rng.randrange(100)}}

    def agents_with_credit(rt: Any) -> int:
        return sum(1 for k, v in rt.state.balances.items()
                   if k.startswith("party:") and k.endswith(":Credit") and v > 0)

    data = small()
    data["populations"][2]["behaviour"] = [{"python": "gift", "probability": 0.5}]
    data["metrics"] = [("holders", agents_with_credit)]
    res = simulate(gig(data, callables={"gift": gift}), executor="serial")
    df = res.frame
    assert (df[(df.metric == "custom") & (df.key == "holders")].value > 0).all()
    assert any("withdraw" in k or "insufficient" in k for k in res.rejection_reasons()) or \
        res.events > 0


def test_mostly_rejected_scenario_says_so(tmp_path: Path) -> None:
    data = small()
    data["populations"][1]["behaviour"][0]["args"]["budget"] = "100000"  # more than they hold
    data["populations"][2]["behaviour"] = [{"event": "withdraw",
                                            "args": {"amount": "100000"}}]
    res = simulate(gig(data), executor="serial")
    assert res.rejected / res.events > 0.5
    res.write(tmp_path)
    assert "Most events were rejected" in (tmp_path / "report.html").read_text()


def test_identical_bytes_whatever_the_executor(tmp_path: Path) -> None:
    sc = gig(small())
    a = simulate(sc, executor="serial")
    b = simulate(sc, executor="processes", jobs=2)
    a.write(tmp_path / "a")
    b.write(tmp_path / "b")
    names = sorted(p.name for p in (tmp_path / "a").iterdir())
    assert names == sorted(p.name for p in (tmp_path / "b").iterdir())
    assert {"report.html", "metrics.csv", "metrics.parquet", "gini.png", "gini.svg",
            "lorenz.svg", "sweep.png", "balances.svg"} <= set(names)
    for n in names:
        assert (tmp_path / "a" / n).read_bytes() == (tmp_path / "b" / n).read_bytes(), n
    # and again: same scenario, same seed, same bytes
    simulate(sc, executor="serial").write(tmp_path / "c")
    for n in names:
        assert (tmp_path / "a" / n).read_bytes() == (tmp_path / "c" / n).read_bytes(), n
    parquet = pd.read_parquet(tmp_path / "a" / "metrics.parquet")
    pd.testing.assert_frame_equal(parquet, a.frame, check_dtype=False)  # str vs object


def test_same_results_on_a_dask_cluster() -> None:
    distributed = pytest.importorskip("distributed")
    sc = gig(small(runs=3))
    local = simulate(sc, executor="serial")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None, host="127.0.0.1") as cluster:
        address = cluster.scheduler_address  # tcp://127.0.0.1:PORT
        remote = simulate(sc, executor="dask://" + address.split("://", 1)[1])
    pd.testing.assert_frame_equal(local.frame, remote.frame)
    assert [r.journal_hash for r in local.results] == [r.journal_hash for r in remote.results]


# ---- the command line ----------------------------------------------------------------

def test_cli_writes_plots_report_and_csv(tmp_path: Path) -> None:
    out = tmp_path / "out"
    r = CliRunner().invoke(cli, ["simulate", str(GIG_SCENARIO), "-o", str(out), "--runs",
                                 "1", "--epochs", "2", "--executor", "serial", "--json"])
    assert r.exit_code == 0, r.output
    summary = json.loads(r.stdout)
    assert summary["points"] == 9 and summary["runs"] == 1 and summary["events"] > 0
    for name in ("report.html", "metrics.csv", "balances.png", "gini.svg", "lorenz.png",
                 "sweep.svg", "rejections.png"):
        assert (out / name).stat().st_size > 0, name
    csv = pd.read_csv(out / "metrics.csv")
    assert set(csv.epoch) == {0, 1, 2}
    assert "<svg" in (out / "report.html").read_text()


@pytest.mark.parametrize("scenario", EXAMPLE_SCENARIOS, ids=lambda p: p.parent.name)
def test_every_example_scenario_runs(scenario: Path) -> None:
    sc = scenario_from_data(small(scenario), base_dir=scenario.parent, file=str(scenario))
    res = simulate(sc, executor="serial")
    assert res.events > 0 and res.rejected < res.events


# ---- errors: file, line, key; never a traceback ----------------------------------------

# (what, text in the file, replaced by, message, hint, key named)
BAD = [
    ("unknown event", 'event = "bid"', 'event = "bidd"', "the policy has no event 'bidd'",
     "did you mean `bid`?", "populations[2].behaviour[0].event"),
    ("argument type", 'budget = { uniform = ["5", "60"] }', 'budget = { uniform = ["5", "lots"] }',
     "Credit", None, "populations[1].behaviour[0].args.budget.uniform[1]"),
    ("argument range", "quality = { uniform = [1, 5] }", "quality = 9",
     "outside the declared range", None, "populations[1].behaviour[1].args.quality"),
    ("unknown argument", 'args = { id = "$new", budget', 'args = { id = "$new", budgets',
     "event post has no argument 'budgets'", "did you mean `budget`?",
     "populations[1].behaviour[0].args.budgets"),
    ("swept param out of range", 'fee = ["1%", "5%", "10%"]', 'fee = ["1%", "50%"]',
     "fee", None, "sweep.fee[1]"),
    ("unknown param", 'min_bid = ["1", "5", "10"]', 'min_bids = ["1", "5", "10"]',
     "the policy has no parameter 'min_bids'", "did you mean `min_bid`?", "sweep.min_bids"),
    ("probability", "probability = 0.6", "probability = 1.5", "within 0..1", None,
     "populations[2].behaviour[0].probability"),
    ("count", "count = 30", "count = -3", "outside 0..100000", None, "populations[2].count"),
    ("unknown key", "epochs = 12", "epoch = 12", "unknown key", "did you mean `epochs`?",
     "scenario.epoch"),
    ("no such role", '"$any:gateway"', '"$any:gateways"', "no population or role 'gateways'",
     "did you mean `gateway`?", "populations[1].setup[1].submitter"),
]


@pytest.mark.parametrize("what,old,new,message,hint,key", BAD, ids=[b[0] for b in BAD])
def test_bad_scenario_names_file_line_and_key(tmp_path: Path, what: str, old: str, new: str,
                                             message: str, hint: str | None,
                                             key: str) -> None:
    text = GIG_SCENARIO.read_text("utf-8").replace(
        'policy = "policy.charter"', f'policy = "{GIG_DIR / "policy.charter"}"')
    assert old in text
    text = text.replace(old, new, 1)
    f = tmp_path / "bad.toml"
    f.write_text(text, "utf-8")
    want_line = next(n for n, line in enumerate(text.splitlines(), 1) if new in line)
    r = CliRunner().invoke(cli, ["simulate", str(f), "-o", str(tmp_path / "o")])
    assert r.exit_code == 1, r.output
    assert "Traceback" not in r.output
    first = r.stderr.splitlines()[0]
    assert first.startswith(f"{f}:{want_line}: {key}: "), r.stderr
    assert message in r.stderr
    if hint:
        assert hint in r.stderr


def test_toml_syntax_error_names_the_line(tmp_path: Path) -> None:
    f = tmp_path / "s.toml"
    f.write_text('[scenario]\nname = "x"\npolicy = \n', "utf-8")
    with pytest.raises(ScenarioError) as err:
        load_scenario(f)
    assert f"{f}:3" in err.value.render()


LEAVES = (st.none() | st.booleans() | st.integers(min_value=-2**70, max_value=2**70)
          | st.floats() | st.text(max_size=40)
          | st.sampled_from(["$self", "$new", "$any", "$any:nobody", "$", "1e999", "5%",
                             "10 days", "-1", "\udcff", "0x10", "1" * 300]))
HOSTILE = st.recursive(LEAVES, lambda c: st.lists(c, max_size=3)
                       | st.dictionaries(st.text(max_size=10), c, max_size=3), max_leaves=10)
PATHS = [("scenario", "epochs"), ("scenario", "epoch_length"), ("scenario", "seed"),
         ("scenario", "runs"), ("scenario", "policy"), ("scenario", "tick"), ("sweep", "fee"),
         ("sweep",), ("params",), ("params", "fee"), ("setup",), ("setup", 0, "args"),
         ("populations", 1, "count"), ("populations", 1, "setup"), ("populations", 1, "name"),
         ("populations", 2, "behaviour", 0, "args", "price"),
         ("populations", 2, "behaviour", 0, "args", "id"),
         ("populations", 2, "behaviour", 0, "args", "id", "where"),
         ("populations", 2, "behaviour", 0, "submitter"),
         ("populations", 2, "behaviour", 0, "probability"),
         ("populations", 1, "behaviour", 0, "args", "duration", "choice"),
         ("populations", 1, "behaviour", 0, "args", "budget", "uniform"),
         ("populations", 1, "behaviour", 0), ("populations", 2), ("populations",),
         ("metrics", 0), ("metrics", 0, "where"), ("schedule", 0, "event"), ()]
BASE = small()


@hsettings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.sampled_from(PATHS), HOSTILE)
def test_hostile_scenario_values_are_errors_not_tracebacks(path: tuple, value: Any) -> None:
    data = copy.deepcopy(BASE)
    data["scenario"]["epochs"] = 1
    data["scenario"]["runs"] = 1
    if path:
        node = data
        for p in path[:-1]:
            node = node.setdefault(p, {}) if isinstance(node, dict) else node[p]
        node[path[-1]] = value
    else:
        data = value
    try:
        sc = gig(data)
    except ScenarioError as err:
        text = err.render()
        assert text and "Traceback" not in text
        return
    if sum(p.count for p in sc.populations) <= 60 and sc.epochs * sc.runs <= 3:
        simulate(sc, executor="serial")  # accepted: it must run
