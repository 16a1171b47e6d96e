"""Table-driven formatter examples: input -> canonical output, one per construct.

Each case is also run through every promise of ``charter fmt`` (same AST,
same comments, idempotent, same IR when it compiles).
"""
from __future__ import annotations

import pytest

from charter.compiler.fmt import format_source
from fmt_support import assert_formats_safely

H = 'policy p version "1"\n\n'

# (name, input after the header, expected output after the header)
CASES = [
    # ---- declarations ----
    ("import", 'import "skill_licensing"  as lic with {fee=3%,}',
     'import "skill_licensing" as lic with { fee = 3% }\n'),
    ("import plain", 'import "./x.charter"', 'import "./x.charter"\n'),
    ("import empty settings", 'import "x" with {}', 'import "x"\n'),
    ("asset", 'asset Reputation :score,decimals 0,mintable,cap 1000000,decays 10 %',
     "asset Reputation: score, decimals 0, mintable, cap 1000000, decays 10%\n"),
    ("assets stay grouped", "asset A: token\nasset B: score\n\n\n\nasset C: right",
     "asset A: token\nasset B: score\n\nasset C: right\n"),
    ("kinds are separated", "asset A: token\nrole R\nrole S",
     "asset A: token\n\nrole R\nrole S\n"),
    ("role with fields", "role Twin {originator:party,}", "role Twin { originator: party }\n"),
    ("role empty braces", "role Twin {}", "role Twin\n"),
    ("param", "param fee:percent=2%within 0%..10%",
     "param fee: percent = 2% within 0%..10%\n"),
    ("param amount range", "param m: Credit = 1 Credit within 0 Credit .. 1000 Credit",
     "param m: Credit = 1 Credit within 0 Credit..1000 Credit\n"),
    ("party range", "param x: party = @b within @a .. @c",
     "param x: party = @b within @a..@c\n"),
    ("handler refs", "property a: split in lib.pay is monotone\nproperty b: Task.deadline.passes "
     "pays from commons at most 0 Credit",
     "property a: split in lib.pay is monotone\n"
     "property b: Task.deadline.passes pays from commons at most 0 Credit\n"),
    ("pool and treasury", "pool commons of Credit\ntreasury fund of Credit",
     "pool commons of Credit\ntreasury fund of Credit\n"),
    ("record short", "record Task holds Credit {\n  poster: Agent,\n  best: Agent?,\n}",
     "record Task holds Credit { poster: Agent, best: Agent? }\n"),
    ("record types", "record R { a: int within 1..5, b: list of party, c: bool = true }",
     "record R { a: int within 1..5, b: list of party, c: bool = true }\n"),
    ("record empty", "record R {   }", "record R {}\n"),
    ("record long", "record Task holds Credit { poster: Agent, budget: Credit, best: Agent?, "
     "open: bool = true, deadline: time, note: text }",
     "record Task holds Credit {\n    poster: Agent,\n    budget: Credit,\n    best: Agent?,\n"
     "    open: bool = true,\n    deadline: time,\n    note: text,\n}\n"),
    ("handler by role", "on join ( ) by p : party { admit p as Agent }",
     "on join() by p: party {\n    admit p as Agent\n}\n"),
    ("handler by expr", "on close(id: Task, q: int within 1..5) by Task(id).poster { dissolve }",
     "on close(id: Task, q: int within 1..5) by Task(id).poster {\n    dissolve\n}\n"),
    ("handler no by", "on x() { dissolve }", "on x() {\n    dissolve\n}\n"),
    ("handler empty", "on tick() by clock {\n\n}", "on tick() by clock {}\n"),
    ("handler ensures", "on pay(a: int) by p: party ensures a>0 ensures old( a )==a else \"x\" "
     "{ dissolve }",
     "on pay(a: int) by p: party\n    ensures a > 0\n    ensures old(a) == a else \"x\" {\n"
     "    dissolve\n}\n"),
    ("timed handlers ensures", "every 1 days as t ensures true {}\n"
     "when T.d passes as r ensures   true  { dissolve }",
     "every 1 days as t\n    ensures true {}\n\nwhen T.d passes as r\n    ensures true {\n"
     "    dissolve\n}\n"),
    ("anyone may call", "property open:anyone  may call lib.finalize",
     "property open: anyone may call lib.finalize\n"),
    ("every", "every 30 days as monthly { decay Reputation }",
     "every 30 days as monthly {\n    decay Reputation\n}\n"),
    ("deadline", "when Task.deadline passes as t { refund rest of t to t.poster delete t }",
     "when Task.deadline passes as t {\n    refund rest of t to t.poster\n    delete t\n}\n"),
    ("properties",
     "property a: split in h is proportional within 1 Credit\nproperty b: split in h is monotone\n"
     "property c: split in h gives at least 1 Credit\nproperty d: split in h gives at most 2 Credit\n"
     "property e: h pays from commons at most 0 Credit\nproperty f: always balance(commons)>=0 Credit\n"
     "property g: for each t in Task always t.open or balance(t)==0 Credit", None),
    ("test block",
     'test "t" { given @a as Agent given @b as Twin {originator=@a} given 5 Credit in @a '
     'given param fee = 3% when post(id="t1",budget=5 Credit) by @a at 10 when tick() by clock '
     'expect ok expect rejected "no" expect rejected expect balance(@a, Credit)==0 Credit }',
     'test "t" {\n    given @a as Agent\n    given @b as Twin { originator = @a }\n'
     '    given 5 Credit in @a\n    given param fee = 3%\n'
     '    when post(id = "t1", budget = 5 Credit) by @a at 10\n    when tick() by clock\n'
     '    expect ok\n    expect rejected "no"\n    expect rejected\n'
     '    expect balance(@a, Credit) == 0 Credit\n}\n'),
    ("test empty", 'test "x" {}', 'test "x" {}\n'),
]


def _stmt(src: str, out: str) -> tuple[str, str]:
    return (f"on h() by clock {{ {src} }}", "on h() by clock {\n" + out + "}\n")


STMTS = [
    ("require", 'require  x>0 else"m"', '    require x > 0 else "m"\n'),
    ("require bare", "require ok", "    require ok\n"),
    ("reject", 'reject "no"', '    reject "no"\n'),
    ("let", "let x=1", "    let x = 1\n"),
    ("set", "set Task(id).open=false", "    set Task(id).open = false\n"),
    ("if", "if a {let x = 1}", "    if a {\n        let x = 1\n    }\n"),
    ("if else", "if a {let x = 1} else {let y = 2}",
     "    if a {\n        let x = 1\n    } else {\n        let y = 2\n    }\n"),
    ("else if", "if a {} else if b {dissolve} else {reject \"r\"}",
     '    if a {\n    } else if b {\n        dissolve\n    } else {\n        reject "r"\n    }\n'),
    ("else block with only if is else if", "if a {dissolve} else { if b {dissolve} }",
     "    if a {\n        dissolve\n    } else if b {\n        dissolve\n    }\n"),
    ("for each", "for each t in Task where t.open {set t.open=false}",
     "    for each t in Task where t.open {\n        set t.open = false\n    }\n"),
    ("for each empty", "for each a in Agent {}", "    for each a in Agent {}\n"),
    ("transfer", "transfer 1 Credit from a to b", "    transfer 1 Credit from a to b\n"),
    ("escrow", "escrow b from p into Task(id)", "    escrow b from p into Task(id)\n"),
    ("release", "release b from Task(id) to p", "    release b from Task(id) to p\n"),
    ("refund rest", "refund all of Task(id) to p", "    refund rest of Task(id) to p\n"),
    ("refund amount", "refund 1 Credit from Task(id) to p",
     "    refund 1 Credit from Task(id) to p\n"),
    ("split full", "split rest of commons among a in Agent where a is Agent to a "
     "by balance(a, R) at most 5 Credit rounding dhondt at least 1 Credit",
     "    split all of commons among a in Agent where a is Agent to a by balance(a, R) "
     "rounding dhondt at least 1 Credit at most 5 Credit\n"),
    ("split amount", "split 5 Credit from commons among a in Agent by 1",
     "    split 5 Credit from commons among a in Agent by 1\n"),
    ("mint burn", "mint 1 R to p burn 1 R from p", "    mint 1 R to p\n    burn 1 R from p\n"),
    ("stake", "lock 1 C from p unlock 1 C of p slash 1 C of p slash 1 C of p to commons",
     "    lock 1 C from p\n    unlock 1 C of p\n    slash 1 C of p\n"
     "    slash 1 C of p to commons\n"),
    ("rights", 'grant L["k"] to p until now+1 days grant L to p revoke L[k] from p',
     '    grant L["k"] to p until now + 1 days\n    grant L to p\n    revoke L[k] from p\n'),
    ("roles", "admit p as Agent {score=1} admit p as Agent expel p from Agent",
     "    admit p as Agent { score = 1 }\n    admit p as Agent\n    expel p from Agent\n"),
    ("records", "create Task(id) {a=1,b=2,} update Task(id){a=2} delete Task(id) create R(k) {}",
     "    create Task(id) { a = 1, b = 2 }\n    update Task(id) { a = 2 }\n    delete Task(id)\n"
     "    create R(k) {}\n"),
    ("create long", "create Task(id) { poster = poster, budget = budget, deadline = now + 7 days, "
     "skill = skill, open = true }",
     "    create Task(id) {\n        poster = poster,\n        budget = budget,\n"
     "        deadline = now + 7 days,\n        skill = skill,\n        open = true,\n    }\n"),
    ("decay flag dissolve", 'decay R flag p "odd" dissolve',
     '    decay R\n    flag p "odd"\n    dissolve\n'),
    ("blank lines kept once", "let a = 1\n\n\n\nlet b = 2\nlet c = 3",
     "    let a = 1\n\n    let b = 2\n    let c = 3\n"),
]

EXPRS = [
    ("left assoc kept", "a - (b - c)", "a - (b - c)"),
    ("left assoc dropped", "(a - b) - c", "a - b - c"),
    ("product in sum", "(a * b) + c * (d + e)", "a * b + c * (d + e)"),
    ("division", "a / (b / c) / d", "a / (b / c) / d"),
    ("and or", "(a and b) or (c and (d or e))", "a and b or c and (d or e)"),
    ("or in and", "(a or b) and c", "(a or b) and c"),
    ("not", "not (a and b)", "not (a and b)"),
    ("not of test keeps clarity", "not (p is Agent)", "not (p is Agent)"),
    ("not not", "not not a", "not not a"),
    ("compare sums", "(a + 1) >= (b - 2)", "a + 1 >= b - 2"),
    ("compare of compares", "(a < b) == (c != d)", "(a < b) == (c != d)"),
    ("not in compare", "(not a) == b", "(not a) == b"),
    ("neg", "-(a.b) + -(-x) - (-y)", "-a.b + - -x - -y"),
    ("neg product", "-(a * b)", "-(a * b)"),
    ("exists", "exists (Task(id)) and not exists R(k)", "exists Task(id) and not exists R(k)"),
    ("exists needs parens", "exists (a + b)", "exists (a + b)"),
    ("is has", "(x + 1) is some or p has L[k] or p has L", "x + 1 is some or p has L[k] or p has L"),
    ("field of paren", "(a + b).c", "(a + b).c"),
    ("field of number", "(1).c", "(1).c"),
    ("calls", "max( a ,b, )", "max(a, b)"),
    ("aggregate", "sum( t.budget for t in Task where t.open )",
     "sum(t.budget for t in Task where t.open)"),
    ("count", "count(x for x in Agent)", "count(x for x in Agent)"),
    ("literals as written", "1_000.50 Credit + 25 bps * 10 ppm + 2.5 % + 007",
     "1_000.50 Credit + 25 bps * 10 ppm + 2.5% + 007"),
    ("string escapes", r'"a \"b\" \\ c\n\td"', r'"a \"b\" \\ c\n\td"'),
    ("party", "@alice_b-c:d", "@alice_b-c:d"),
    ("party attribute", "(@tw).originator", "@tw.originator"),
    ("list literal", "[ @a,@b , ]", "[@a, @b]"),
    ("conditional", "if a>1 then b else if c then d else e", "if a > 1 then b else if c then d else e"),
    ("conditional in a sum", "( if a then 1 else 2 ) + 3", "(if a then 1 else 2) + 3"),
    ("sum in a conditional", "if a then 1 + 2 else 3 * 4", "if a then 1 + 2 else 3 * 4"),
]


def _cases():
    for name, src, out in CASES:
        yield pytest.param(H + src, None if out is None else H + out, id=name)
    for name, src, out in STMTS:
        a, b = _stmt(src, out)
        yield pytest.param(H + a, H + b, id="stmt " + name)
    for name, src, out in EXPRS:
        yield pytest.param(H + f"on h() by clock {{ let x = {src} }}",
                           H + f"on h() by clock {{\n    let x = {out}\n}}\n", id="expr " + name)


@pytest.mark.parametrize("source,expected", list(_cases()))
def test_canonical_output(source: str, expected: str | None) -> None:
    out = assert_formats_safely(source)
    if expected is not None:
        assert out == expected
    else:  # the case only checks the promises; the output must at least be stable
        assert format_source(out) == out


COMMENT_CASES = [
    ("every position",
     "# before header\npolicy p version \"1\"  # header\n# before asset\nasset A: token # asset\n"
     "on h() by clock { # after brace\n  # own line\n  let x = 1 # trailing\n  if a { # if\n"
     "  } # after if\n  # end of block\n} # after handler\n# end of file\n",
     "# before header\npolicy p version \"1\"  # header\n\n# before asset\nasset A: token  # asset\n\n"
     "on h() by clock {  # after brace\n    # own line\n    let x = 1  # trailing\n"
     "    if a {  # if\n    }  # after if\n    # end of block\n}  # after handler\n# end of file\n"),
    ("inside a joined statement moves above it",
     "policy p version \"1\"\non h() by clock {\n  require a and # why a\n    b else \"m\"\n}\n",
     "policy p version \"1\"\n\non h() by clock {\n    # why a\n    require a and b else \"m\"\n}\n"),
    ("comment in a brace list keeps it multi-line",
     "policy p version \"1\"\nrecord R { a: int, # the a\n b: int }\n",
     "policy p version \"1\"\n\nrecord R {\n    a: int,  # the a\n    b: int,\n}\n"),
    ("else branch comments",
     "policy p version \"1\"\non h() by clock {\n  if a {\n    let x = 1\n    # then end\n"
     "  } else { # else\n    # else start\n    let y = 2\n  }\n}\n",
     "policy p version \"1\"\n\non h() by clock {\n    if a {\n        let x = 1\n"
     "        # then end\n    } else {  # else\n        # else start\n        let y = 2\n    }\n}\n"),
    ("banner paragraphs",
     "policy p version \"1\"\n\n# ---- part one ----\n\n# about A\nasset A: token\n",
     "policy p version \"1\"\n\n# ---- part one ----\n\n# about A\nasset A: token\n"),
    ("comment with hash and quotes", "policy p version \"1\" # a \"#\" b\n",
     "policy p version \"1\"  # a \"#\" b\n"),
    ("string with hash and braces", "policy p version \"1\"\ntest \"{ # }\" { expect ok }\n",
     "policy p version \"1\"\n\ntest \"{ # }\" {\n    expect ok\n}\n"),
]


@pytest.mark.parametrize("source,expected", [pytest.param(s, e, id=n) for n, s, e in COMMENT_CASES])
def test_comment_placement(source: str, expected: str) -> None:
    assert assert_formats_safely(source) == expected


def test_crlf_and_tabs_normalised() -> None:
    src = 'policy p version "1"\r\n\ton h() by clock {\r\n\t\tlet x = 1\t# c\r\n}\r\n'
    assert assert_formats_safely(src) == H + "on h() by clock {\n    let x = 1  # c\n}\n"


def test_header_only() -> None:
    assert assert_formats_safely('policy   p\n version   "1" ') == 'policy p version "1"\n'
