"""Table-driven checks of the front end: each snippet yields exactly the expected codes."""
from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import pytest

from charter.compiler import ir
from charter.compiler.diagnostics import CharterError
from charter.compiler.pipeline import Compilation

HERE = Path(__file__).parent

PRELUDE = """policy t version "1"
asset Credit: token, decimals 2, mintable, burnable
asset Rep: score, mintable, decays 10%
asset Fixed: token
asset Seat: right
role Agent
role Twin { originator: party }
param fee: percent = 2% within 0%..10%
pool commons of Credit
record Task holds Credit { poster: Agent, budget: Credit, best: Agent?, open: bool = true }
"""

# (snippet appended to PRELUDE, expected sorted codes)
CASES = [
    ("on a(x: Credit) by p: Agent { transfer x from p to commons }", []),
    ("on a(x: Credit, r: Rep) by p: Agent { require x + r > 0 Credit }", ["E0302"]),
    ("on a(r: Rep) by p: Agent { transfer r from p to @bob }", ["E0401"]),
    ("on a() by p: Agent { mint 5 Fixed to p }", ["E0402"]),
    ("on a() by p: Agent { burn 5 Rep from p }", ["E0403"]),
    ("on a(x: Credit) by p: Agent { transfer x * fee from p to commons }", ["E0303"]),
    ("on a(x: Credit) by p: Agent { transfer floor(x * fee) from p to commons }", []),
    ("on a(x: Credit) by p: Agent { transfer x / 3 from p to commons }", ["E0303"]),
    ("on a(x: Credit) by p: Agent { transfer round(x / 3) from p to commons }", []),
    ("on a(r: Rep) by p: Agent { mint r to commons }", ["E0404"]),
    ("on a(x: Credit) { transfer x from commons to @bob }", ["E0501"]),
    ("on a(x: Credit) by p: Agent { reject \"no\" transfer x from p to commons }", ["W0301"]),
    ("on a(id: Task) by p: Agent { transfer 1 Credit from Task(id) to Task(id).best }", ["E0309"]),
    ("on a(id: Task) by p: Agent { let t = Task(id) require t.best is some "
     "transfer 1 Credit from Task(id) to t.best }", []),
    ("on a(id: Task) by p: Agent { let t = Task(id) if t.best is some { "
     "transfer 1 Credit from t to t.best } }", []),
    ("on a() by p: Agent { transfer 1.005 Credit from p to commons }", ["E0105"]),
    ("on a() by p: Agent { transfer 5 Gold from p to commons }", ["E0210"]),
    ("on a() by p: Agent { grant Rep to p }", ["E0406"]),
    ("on a(k: text) by p: Agent { grant Seat[k] to p until now + 30 days }", []),
    ("on a() by p: Agent { require p has Seat }", ["W0304"]),
    ("on a() by p: Agent { create Task(\"x\") { poster = p } }", ["E0208"]),
    ("on a() by p: Agent { create Task(\"x\") { poster = p, budget = 1 Credit, colour = 1 } }",
     ["E0207"]),
    ("on a() by p: Agent { let x = unknown_thing }", ["E0201", "W0302"]),
    ("on a() by p: Agent { let fee = 1% require fee > 0% }", ["E0408"]),
    ("on a(o: party) by p: Twin { set p.originator = o }", ["E0408"]),
    ("on a() by p: Agent { decay Credit }", ["E0211"]),
    ("on a() by clock { decay Rep }", []),
    ("on a() by clock { split all of commons among x in Agent by balance(x, Rep) }", []),
    ("on a() by clock { split all of commons among x in Agent by balance(x, Rep) rounding coin }",
     ["E0407"]),
    # records as recipients: each one's escrow is paid
    ("on a() by clock { split all of commons among t in Task by t.budget }", []),
    ("on a() by clock { split all of commons among t in Task to t by 1 / 3 }", []),
    ("on a() by clock { split all of commons among x in Agent by 1 in weight order }", []),
    ("on a() by clock { split all of commons among x in Agent by 1 rounding floor_dust with minimum 1 Credit }",
     ["E0409"]),
    ("on a() by clock { split all of commons among x in Agent to 5 by 1 }", ["E0301"]),
    ("on a() by clock { split all of commons among t in Task to t.poster by t.budget }", []),
    ("on a() by clock { for each t in Task where t.open { set t.open = false } }", []),
    ("on a() by clock { for each t in 5 { reject \"x\" } }", ["E0307"]),
    ("on a(x: int) by p: Agent { require x }", ["E0304"]),
    ("on a() by p: Agent { admit p as Twin }", ["E0208"]),
    ("on a(o: party) by p: Agent { admit p as Twin { originator = o } }", []),
    ("on a() by p: Twin { transfer 1 Credit from p to p.originator }", []),
    ("every 0 days as tick { decay Rep }", ["E0503"]),
    ("when Task.budget passes as t { delete t }", ["E0301"]),
    ("property p: split in nothing is proportional", ["E0601"]),
    ("on b() by clock { decay Rep } property p: split in b is proportional", ["E0602"]),
    ("on b() by clock { split all of commons among x in Agent by 1 } "
     "property p: split in b is wobbly", ["E0603"]),
    ("param fee: percent = 1%", ["E0202"]),
    ("param big: percent = 20% within 0%..10%", ["E0308"]),
    ("on a() by p: Agent { let t = sum(t.budget for t in Task where t.open) "
     "require t >= 0 Credit }", ["W0304"]),
    ("on a() by p: Agent { require count(t for t in Task where t.open) < 3 }", ["W0304"]),
    ("on a(x: Credit) by p: Agent { require isqrt(x) > 0 Credit and pow(fee, 2) < 1 }", ["W0304"]),
    ("on a(n: int within 1..5) by p: Agent { mint n * 1 Rep to p }", []),
    ("on a(n: int within 5..1) by p: Agent { mint n * 1 Rep to p }", ["E0308"]),
    ("on a(q: int) by p: Agent { transfer if q > 3 then 2 Credit else 1 Credit from p to commons }",
     []),
    ("on a(q: int) by p: Agent { transfer if q > 3 then 2 Credit else 1 Rep from p to commons }",
     ["E0301"]),
    ("on a(id: Task) by p: Agent { let t = Task(id) "
     "transfer 1 Credit from t to if t.best is some then t.best else t.poster }", []),
    ("on a(x: Credit) by p: Agent { require minor(x) >= 100 "
     "transfer from_minor(minor(x) * 2, Credit) from p to commons }", []),
    ("on a(x: Credit) by p: Agent { transfer from_minor(minor(x) / 3, Credit) from p to commons }",
     ["E0301"]),
]


@pytest.mark.parametrize("snippet,codes", CASES, ids=[c[0][:60] for c in CASES])
def test_snippet_codes(snippet: str, codes: list[str]) -> None:
    c = Compilation.from_text(PRELUDE + snippet, "t.charter")
    got = sorted(d.code for d in c.diagnostics)
    assert got == sorted(codes), "\n".join(f"{d.code} {d.message}" for d in c.diagnostics)


def test_reports_all_independent_errors_in_one_run() -> None:
    text = PRELUDE + """
on a(x: Credit, r: Rep) by p: Agent { require x + r > 0 Credit }
on b() by p: Agent { mint 5 Fixed to p }
on c(x: Credit) { transfer x from commons to @bob }
"""
    codes = sorted(d.code for d in Compilation.from_text(text, "t.charter").diagnostics)
    assert codes == ["E0302", "E0402", "E0501"]


def test_reference_policy_lowers_to_expected_ir() -> None:
    policy = Compilation.from_path(HERE / "gig_reference.charter").ir
    assert [h.name for h in policy.handlers] == [
        "join", "deposit", "post", "bid", "complete", "epoch_end", "Task.deadline.passes",
        "monthly"]
    fee = policy.param("fee")
    assert (fee.default, fee.lo, fee.hi) == (Fraction(1, 50), Fraction(0), Fraction(1, 10))
    assert policy.param("min_budget").default == 100  # 1 Credit in minor units
    rep = policy.asset("Reputation")
    assert (rep.kind, rep.cap, rep.decay, rep.transferable) == ("score", 1000000,
                                                                 Fraction(1, 10), False)
    complete = policy.handler("complete")
    assert isinstance(complete.auth, ir.AuthParty)
    moves = [s for s in complete.body if isinstance(s, ir.Move)]
    assert [m.kind for m in moves] == ["release", "release", "refund", "mint"]
    assert isinstance(moves[0].src, ir.AccEscrow) and isinstance(moves[1].dst, ir.AccPool)
    assert policy.handler("monthly").period == 30 * 86400
    steps = policy.tests[0].steps
    assert ir.WhenEvent(event="post", args=(("id", "t1"), ("budget", 5000)), submitter="alice",
                        time=1000) in steps
    # JSON round trip: a non-Python runtime reads exactly this
    assert ir.from_data(ir.to_data(policy)) == policy


def test_parameter_override_within_range_and_refused_outside() -> None:
    path = HERE / "gig_reference.charter"
    assert Compilation.from_path(path, {"fee": Fraction(5, 100)}).ir.param("fee").default == \
        Fraction(1, 20)
    with pytest.raises(CharterError) as err:
        Compilation.from_path(path, {"fee": Fraction(1, 2)}).ir
    assert [d.code for d in err.value.diagnostics] == ["E0308"]


def test_import_shares_assets_and_namespaces_the_rest(tmp_path: Path) -> None:
    (tmp_path / "lib.charter").write_text(
        'policy lib version "1"\nasset Credit: token, decimals 2\npool fees of Credit\n'
        'param rate: percent = 1% within 0%..5%\n'
        'on pay(x: Credit) by p: party { transfer floor(x * rate) from p to fees }\n')
    (tmp_path / "main.charter").write_text(
        'policy main version "1"\nimport "./lib.charter" as lib with { rate = 3% }\n'
        'asset Credit: token, decimals 2\n'
        'on drain() by clock { transfer balance(lib.fees) from lib.fees to @treasurer }\n')
    policy = Compilation.from_path(tmp_path / "main.charter").ir
    assert {h.name for h in policy.handlers} == {"lib.pay", "drain"}
    assert policy.param("lib.rate").default == Fraction(3, 100)
    assert [p.name for p in policy.pools] == ["lib.fees"]


def test_import_errors(tmp_path: Path) -> None:
    (tmp_path / "a.charter").write_text('policy a version "1"\nimport "./b.charter"\n')
    (tmp_path / "b.charter").write_text('policy b version "1"\nimport "./a.charter"\n'
                                        'asset Credit: token, decimals 0\n')
    (tmp_path / "c.charter").write_text('policy c version "1"\nimport "./b.charter"\n'
                                        'asset Credit: token, decimals 2\n'
                                        'import "nonexistent_module"\n')
    codes = sorted(d.code for d in Compilation.from_path(tmp_path / "a.charter").diagnostics)
    assert codes == ["E0204"]
    codes = sorted(d.code for d in Compilation.from_path(tmp_path / "c.charter").diagnostics)
    assert codes == ["E0203", "E0204", "E0206"]


def test_imported_records_are_reached_through_their_alias(tmp_path: Path) -> None:
    (tmp_path / "lib.charter").write_text(
        'policy lib version "1"\nasset Credit: token, decimals 2\nrole Author\n'
        'record Skill holds Credit { author: Author, price: Credit }\n'
        'on publish(id: text, price: Credit) by a: Author {\n'
        '    create Skill(id) { author = a, price = price }\n}\n')
    (tmp_path / "main.charter").write_text(
        'policy main version "1"\nimport "./lib.charter" as lib\n'
        'asset Credit: token, decimals 2\nrole Author\n'
        'record Job { skill: lib.Skill, worker: party }\n'
        'on hire(id: text, skill: lib.Skill) by p: party {\n'
        '    require exists lib.Skill(skill) else "no such skill"\n'
        '    let s = lib.Skill(skill)\n'
        '    create Job(id) { skill = skill, worker = p }\n'
        '    transfer s.price from p to s.author\n}\n'
        'test "t" {\n    when lib.publish(id = "x", price = 1 Credit) by @ann\n'
        '    expect lib.Skill("x").price == 1 Credit\n}\n')
    policy = Compilation.from_path(tmp_path / "main.charter").ir
    job = policy.record("Job")
    assert job.fields[0].type == ir.TRecord(record="lib.Skill")
    hire = policy.handler("hire")
    assert isinstance(hire.body[0].cond, ir.Exists) and hire.body[0].cond.record == "lib.Skill"
    assert policy.tests[0].steps[0].event == "lib.publish"
    bad = Compilation.from_text('policy m version "1"\non h() by clock { let x = nope.R("k") }',
                                "m.charter")
    assert "E0201" in [d.code for d in bad.diagnostics]
