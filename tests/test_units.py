"""One convention for amounts, ratios and durations at every entry point.

A JSON number is minor units / seconds (programs); a string is what a person writes:
``"12.50"`` (or ``"12.50 Credit"``) in asset units, ``"3%"``, ``"2 days"``.  The same table
of written values is fed to every entry point - ``load_policy(params=...)``,
``open_runtime(params=...)``, ``--param`` on the command line, event JSON arguments - and
each must read it as the same value (or refuse it, everywhere).  Range errors speak the
policy's units.
"""
from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from charter.cli import cli
from charter.compiler import ir, units
from charter.compiler.pipeline import CharterError, load_policy

POLICY = '''policy units version "1.0"
asset Credit: token, decimals 2, mintable
role Member
param bounty: Credit = 1 Credit within 0 Credit..10 Credit
param fee: percent = 5% within 0%..20%
param voting_period: duration = 2 days within 1 hour..30 days
param quorum: int = 3 within 1..10
on join() by p: party { admit p as Member }
on fund(account: party, amount: Credit) by clock { mint amount to account }
on post(amount: Credit, period: duration, cut: percent) by m: Member {
    require amount > 0 Credit
    require period >= 1 hour
    require cut <= 100%
    flag m "posted"
}
'''

# (type, written value, the value it means; None: refused everywhere)
TABLE = [
    ("bounty", "2.50", 250),
    ("bounty", "2.50 Credit", 250),
    ("bounty", 250, 250),  # a JSON integer: minor units
    ("bounty", "2", 200),  # a string is asset units
    ("bounty", "2.505", None),  # finer than the asset's decimals
    ("bounty", "two", None),
    ("fee", "3%", Fraction(3, 100)),
    ("fee", "250 bps", Fraction(1, 40)),
    ("fee", "1/50", Fraction(1, 50)),
    ("fee", "0.03", Fraction(3, 100)),
    ("fee", {"num": 1, "den": 20}, Fraction(1, 20)),
    ("fee", "3 %%", None),
    ("voting_period", "2 days", 172_800),
    ("voting_period", "1 week 2 days", 777_600),
    ("voting_period", "90 minutes", 5_400),
    ("voting_period", 7_200, 7_200),  # a JSON integer: seconds
    ("voting_period", "7200", 7_200),
    ("voting_period", "2 dayz", None),
    ("voting_period", "", None),
    ("quorum", 4, 4),
    ("quorum", "4.5", None),
]
# the command line has only text: there an int is written in digits
CLI_ONLY = [("quorum", "4", 4), ("quorum", "four", None)]
ARG_OF = {"bounty": "amount", "voting_period": "period", "fee": "cut"}


@pytest.fixture(scope="module")
def policy_file(tmp_path_factory) -> Path:
    p = tmp_path_factory.mktemp("units") / "units.charter"
    p.write_text(POLICY, encoding="utf-8")
    return p


def _value(pol: ir.Policy, name: str):
    return next(p.default for p in pol.params if p.name == name)


@pytest.mark.parametrize("name,written,means", TABLE, ids=[f"{n}={w!r}" for n, w, _ in TABLE])
def test_load_policy(policy_file, name, written, means) -> None:
    if means is None:
        with pytest.raises(CharterError):
            load_policy(policy_file, {name: written})
    else:
        assert _value(load_policy(policy_file, {name: written}), name) == means


@pytest.mark.parametrize("name,written,means", TABLE, ids=[f"{n}={w!r}" for n, w, _ in TABLE])
def test_open_runtime(policy_file, name, written, means) -> None:
    from charter.runtime.api import open_runtime
    from charter.runtime.engine import ParamError

    if means is None:
        with pytest.raises((ParamError, ValueError)):
            open_runtime(str(policy_file), ":memory:", params={name: written})
    else:
        rt = open_runtime(str(policy_file), ":memory:", params={name: written})
        assert rt.params[name] == means


CLI = [c for c in TABLE if isinstance(c[1], str) and "%%" not in c[1]] + CLI_ONLY


@pytest.mark.parametrize("name,written,means", CLI, ids=[f"{n}={w!r}" for n, w, _ in CLI])
def test_command_line_param(policy_file, tmp_path, name, written, means) -> None:
    from charter.cli_runtime import _param_overrides

    pol = load_policy(policy_file)
    if means is None:
        import click

        with pytest.raises(click.BadParameter):
            _param_overrides(pol, [f"{name}={written}"])
    else:
        assert _param_overrides(pol, [f"{name}={written}"]) == {name: means}


@pytest.mark.parametrize("name,written,means", [c for c in TABLE if c[0] in ARG_OF],
                         ids=[f"{n}={w!r}" for n, w, _ in TABLE if n in ARG_OF])
def test_event_json_argument(policy_file, name, written, means) -> None:
    from charter.runtime.api import open_runtime

    rt = open_runtime(str(policy_file), ":memory:")
    assert rt.submit({"id": "1", "type": "join", "submitter": "m", "time": 1, "args": {}}).applied
    args = {"amount": "1.00", "period": "1 day", "cut": "5%"}
    args[ARG_OF[name]] = written
    out = rt.submit({"id": "2", "type": "post", "submitter": "m", "time": 2, "args": args})
    if means is None:
        assert not out.applied and out.code == "bad_argument", out
    else:
        assert out.applied, out


def test_range_errors_speak_the_policy_units(policy_file, tmp_path) -> None:
    events = tmp_path / "events.jsonl"
    events.write_text("", encoding="utf-8")
    r = CliRunner().invoke(cli, ["run", str(policy_file), str(events), "--memory",
                                 "--param", "bounty=11"])
    assert r.exit_code != 0
    assert "11.00 Credit" in r.output and "10.00 Credit" in r.output and "1100" not in r.output
    r = CliRunner().invoke(cli, ["run", str(policy_file), str(events), "--memory",
                                 "--param", "fee=30"])
    assert "3000%" in r.output and "20%" in r.output and "1/5" not in r.output
    with pytest.raises(CharterError) as info:
        load_policy(policy_file, {"voting_period": "31 days"})
    msg = info.value.diagnostics[0].message
    assert "31 days" in msg and "1 hour..30 days" in msg


def test_runtime_range_errors_speak_the_policy_units(policy_file) -> None:
    from charter.runtime.api import open_runtime
    from charter.runtime.engine import ParamError

    with pytest.raises(ParamError) as info:
        open_runtime(str(policy_file), ":memory:", params={"bounty": "11"})
    assert "11.00 Credit" in str(info.value) and "10.00 Credit" in str(info.value)
    with pytest.raises(ParamError) as info:
        open_runtime(str(policy_file), ":memory:", params={"fee": Fraction(1, 2)})
    assert "50%" in str(info.value) and "20%" in str(info.value)


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=30),
                 st.lists(st.integers(), max_size=3), st.dictionaries(st.text(max_size=3),
                                                                       st.integers(),
                                                                       max_size=2),
                 st.text(alphabet="0123456789", min_size=4000, max_size=6000)),
       st.sampled_from([ir.TAmount(asset="Credit"), ir.TRatio(), ir.TDuration(), ir.TTime(),
                        ir.TInt()]))
def test_reading_hostile_values_is_a_value_or_a_unit_error(v, t) -> None:
    # every JSON type, huge numbers and junk text: a value of the type or UnitError
    try:
        out = units.read(t, v, 2, text=isinstance(v, str) and len(v) % 2 == 0)
    except units.UnitError as err:
        assert str(err).startswith("expected ")
        return
    assert isinstance(out, (int, Fraction)) and not isinstance(out, bool)
    assert not isinstance(v, (float, list)) and v is not None
    json.dumps(str(out))


def _stdlib_names() -> list[str]:
    from importlib import resources

    root = resources.files("charter.stdlib_policies")
    return sorted(p.name for p in root.iterdir() if p.name.endswith(".charter"))


@pytest.mark.parametrize("name", _stdlib_names())
def test_scenario_files_speak_the_same_convention(name) -> None:
    # `charter verify` writes counterexample scenarios with `--param` options: every
    # parameter value it can write reads back through the command line as itself
    from importlib import resources

    from charter.cli_runtime import _param_overrides
    from charter.compiler.verify.scenario import _default_plain, run_params

    pol = load_policy(resources.files("charter.stdlib_policies").joinpath(name))
    plain = {p.name: _default_plain(p) for p in pol.params if p.default is not None}
    read = _param_overrides(pol, run_params(pol, plain))
    assert read == {p.name: p.default for p in pol.params if p.default is not None}
