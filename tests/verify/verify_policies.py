"""Correct/buggy policy twins for the verifier tests, as Charter source (table rows use these)."""

from __future__ import annotations

HEADER = """policy {name} version "1"
asset Credit: token, decimals 2, mintable, burnable
role Agent
pool commons of Credit
param gateway: party = @gateway
on join() by p: party {{
    require not (p is Agent) else "already a member"
    admit p as Agent
}}
on deposit_credit(account: party, amount: Credit) by gateway {{
    require amount > 0 Credit else "amount must be positive"
    mint amount to account
}}
"""

# -- fee: a percent allowed above 100% makes a payout negative -------------
FEE = (
    HEADER
    + """
param fee: percent = 2% within 0%..{hi}
record Task holds Credit {{ poster: Agent, budget: Credit, worker: Agent?, open: bool = true }}
on post(id: text, budget: Credit) by poster: Agent {{
    require budget > 0 Credit else "budget must be positive"
    require balance(poster, Credit) >= budget else "insufficient funds"
    require not exists Task(id) else "task exists"
    create Task(id) {{ poster = poster, budget = budget, worker = poster }}
    escrow budget from poster into Task(id)
}}
on complete(id: Task) by Task(id).poster {{
    let t = Task(id)
    require t.open and t.worker is some else "not assignable"
    let cut = floor(t.budget * fee)
    release t.budget - cut from Task(id) to t.worker
    release cut from Task(id) to commons
    set t.open = false
}}
"""
)

# -- refund: releasable twice without an `open` guard ----------------------
REFUND = (
    HEADER
    + """
record Task holds Credit {{ poster: Agent, budget: Credit, open: bool = true }}
on post(id: text, budget: Credit) by poster: Agent {{
    require budget > 0 Credit else "budget must be positive"
    require balance(poster, Credit) >= budget else "insufficient funds"
    require not exists Task(id) else "task exists"
    create Task(id) {{ poster = poster, budget = budget }}
    escrow budget from poster into Task(id)
}}
on refund(id: Task) by Task(id).poster {{
    let t = Task(id)
    {guard}
    release t.budget from Task(id) to t.poster
}}
"""
)
REFUND_GUARD = 'require t.open else "already refunded"\n    set t.open = false'

# -- a stream that vests by whole days: the bug pays ahead of vesting once a collection (a
# clock tick 30 days in) has run, so its scenario needs time to pass between events -----
STREAM = (
    HEADER
    + """
record Stream holds Credit {{ sponsor: party, deposit: Credit, rate: Credit, start: time,
                             collected: Credit = 0 Credit, live: bool = true }}
fn vested_by(s: Stream, at: time) -> Credit {{
    return min(s.deposit, s.rate * floor((at - s.start) / 1 days))
}}
fn due(s: Stream, at: time) -> Credit {{
    return max(0 Credit, min({owed}, balance(s)))
}}
on open_stream(id: text, deposit: Credit, rate: Credit) by sp: party {{
    require not exists Stream(id) else "stream id taken"
    require deposit > 0 Credit and rate > 0 Credit else "positive"
    require balance(sp, Credit) >= deposit else "insufficient funds"
    create Stream(id) {{ sponsor = sp, deposit = deposit, rate = rate, start = now }}
    escrow deposit from sp into Stream(id)
}}
on stop(id: Stream) by Stream(id).sponsor
    ensures Stream(id).collected <= max(old(Stream(id).collected), vested_by(Stream(id), now)) {{
    let s = Stream(id)
    require s.live else "stopped"
    let d = due(s, now)
    release d from Stream(id) to commons
    set s.collected = s.collected + d
    refund rest of Stream(id) to s.sponsor
    set s.live = false
}}
every 30 days as collection {{
    for each s in Stream where s.live {{
        let d = due(s, now)
        release d from s to commons
        set s.collected = s.collected + d
    }}
}}
"""
)
STREAM_OWED = "vested_by(s, at) - s.collected"

# -- splits: method and options vary; declared fairness properties ---------
SPLIT = (
    HEADER
    + """
on deposit(amount: Credit) by g: Agent {{
    require amount > 0 Credit else "positive"
    require balance(g, Credit) >= amount else "insufficient funds"
    transfer amount from g to commons
}}
on epoch(amount: Credit) by clock {{
    require amount >= 0 Credit and balance(commons) >= amount else "pool too small"
    split amount from commons among a in Agent by {weight} rounding {method}{opts}
}}
{props}
"""
)

# -- budget: a payout bounded by min() vs not ------------------------------
BUDGET = (
    HEADER
    + """
on donate(amount: Credit) by d: party {{
    require amount > 0 Credit and balance(d, Credit) >= amount else "funds"
    transfer amount from d to commons
}}
on claim(amount: Credit) by a: Agent {{
    require amount > 0 Credit else "positive"
    let pay = {pay}
    require balance(commons) >= pay else "pool too small"
    transfer pay from commons to a
}}
property claim_small: claim pays from commons at most 10 Credit
"""
)

# -- record invariant: closed tasks hold nothing -----------------------------
INVARIANT = (
    HEADER
    + """
record Job holds Credit {{ client: Agent, price: Credit, open: bool = true }}
on order(id: text, price: Credit) by c: Agent {{
    require price > 0 Credit else "positive"
    require balance(c, Credit) >= price else "insufficient funds"
    require not exists Job(id) else "exists"
    create Job(id) {{ client = c, price = price }}
    escrow price from c into Job(id)
}}
on close(id: Job) by Job(id).client {{
    let j = Job(id)
    require j.open else "closed"
    {body}
    set j.open = false
}}
property closed_empty: for each j in Job always j.open or balance(Job(j)) == 0 Credit
"""
)

# -- vacuity: requires that can never all hold -------------------------------
VACUOUS = (
    HEADER
    + """
on odd(amount: Credit) by a: Agent {{
    require amount > 5 Credit else "big"
    require amount < {lo} else "small"
    transfer amount from commons to a
}}
"""
)

# -- reachability: a branch no applied event can take -----------------------
BRANCH = (
    HEADER
    + """
on pay(amount: Credit) by a: Agent {{
    require amount > 0 Credit and amount <= 10 Credit else "1..10"
    require balance(commons) >= amount else "pool too small"
    if amount > {limit} {{
        transfer amount from commons to a
    }} else {{
        transfer amount from commons to a
    }}
}}
"""
)

# -- aggregate invariant over records: creating a record must respect a total cap ----
TOTAL_CAP = (
    HEADER
    + """
record Pledge {{ backer: Agent, amount: Credit }}
on pledge(id: text, amount: Credit) by b: Agent {{
    require amount > 0 Credit else "positive"
    require not exists Pledge(id) else "exists"
    {guard}
    create Pledge(id) {{ backer = b, amount = amount }}
}}
property capped_total: always sum(p.amount for p in Pledge) <= 100 Credit
"""
)
TOTAL_CAP_GUARD = 'require sum(p.amount for p in Pledge) + amount <= 100 Credit else "cap reached"'

# -- a modular refutation that is not reachable (counterexample to induction) ------
BOX = (
    HEADER
    + """
record Box holds Credit {{ owner: Agent, amount: Credit, mult: int, open: bool = true }}
on make(id: text, amount: Credit) by o: Agent {{
    require amount > 0 Credit else "positive"
    require balance(o, Credit) >= amount * 2 else "insufficient funds"
    require not exists Box(id) else "exists"
    create Box(id) {{ owner = o, amount = amount, mult = 2 }}
    escrow amount * 2 from o into Box(id)
}}
on take(id: Box) by Box(id).owner {{
    let b = Box(id)
    require b.open else "taken"
    release b.amount * b.mult from Box(id) to b.owner
    set b.open = false
}}
"""
)

# -- a record invariant over a record no handler creates --------------------------
NEVER_CREATED = (
    HEADER
    + """
record Ghost {{ amount: Credit }}
on noop(amount: Credit) by a: Agent {{
    require amount > 0 Credit else "positive"
    require balance(a, Credit) >= amount else "funds"
    transfer amount from a to commons
}}
property ghosts_small: for each g in Ghost always g.amount <= 1 Credit
"""
)

# -- deleting a record whose escrow still holds value --------------------------------
DELETE = (
    HEADER
    + """
record Job holds Credit {{ client: Agent, price: Credit }}
on order(id: text, price: Credit) by c: Agent {{
    require price > 0 Credit else "positive"
    require balance(c, Credit) >= price else "insufficient funds"
    require not exists Job(id) else "exists"
    create Job(id) {{ client = c, price = price }}
    escrow price from c into Job(id)
}}
on close(id: Job) by Job(id).client {{
    let j = Job(id)
    {body}
    delete Job(id)
}}
"""
)

# -- authority: who may cancel (the "cancel by anyone") --------------------------
AUTHORITY = (
    HEADER
    + """
record Task holds Credit {{ poster: Agent, budget: Credit, open: bool = true }}
on post(id: text, budget: Credit) by poster: Agent {{
    require budget > 0 Credit else "budget must be positive"
    require balance(poster, Credit) >= budget else "insufficient funds"
    require not exists Task(id) else "task exists"
    create Task(id) {{ poster = poster, budget = budget }}
    escrow budget from poster into Task(id)
}}
on cancel(id: Task) by {by} {{
    let t = Task(id)
    require t.open else "already cancelled"
    refund rest of Task(id) to t.poster
    set t.open = false
}}
{extra}
"""
)

# -- authority over membership: who may make another party a member ----------------------
ADMISSION = (
    HEADER
    + """
role Member
param founder: party = @founder
on found() by founder {{
    require count(m for m in Member) == 0 else "already founded"
    admit founder as Member
}}
on vouch(newcomer: party) by {by} {{
    require not (newcomer is Member) else "already a member"
    admit newcomer as Member
    mint 2 Credit to newcomer
}}
"""
)

# -- once: a case ruled twice (the guard on its state is the bug) -------------------------
ONCE = (
    HEADER
    + """
record Case holds Credit {{ requester: party, arbiter: party, fee: Credit, status: text = "open" }}
on open_case(id: text, arbiter: party, fee: Credit) by p: party {{
    require not exists Case(id) else "case id taken"
    require fee > 0 Credit and balance(p, Credit) >= fee else "fee out of range"
    create Case(id) {{ requester = p, arbiter = arbiter, fee = fee }}
    escrow fee from p into Case(id)
}}
on rule(id: Case) by Case(id).arbiter {{
    let c = Case(id)
    {guard}
    release floor(c.fee / 2) from Case(id) to c.arbiter
    set c.status = "ruled"
}}
"""
)
ONCE_GUARD = 'require c.status == "open" else "already ruled"'

# -- issuance: a reward minted from supply, capped or not ---------------------------------
ISSUANCE = """policy {name} version "1"
asset Credit: token, decimals 2, mintable, burnable
asset Rep: score, decimals 0, mintable{cap}
role Agent
param gateway: party = @gateway
record Item {{ owner: party, uses: int = 0 }}
on deposit(account: party, amount: Credit) by gateway {{
    require amount > 0 Credit else "amount must be positive"
    mint amount to account
}}
on add(id: text) by p: party {{
    require not exists Item(id) else "id taken"
    create Item(id) {{ owner = p }}
}}
on rate(id: Item, score: int within 1..5) by p: party {{
    set Item(id).uses = Item(id).uses + 1
    {mint}
}}
"""
ISSUANCE_RATE = "mint score * 1 Rep to Item(id).owner"
ISSUANCE_UNBOUNDED = "mint score * Item(id).uses * 1 Rep to Item(id).owner"
ISSUANCE_CAPPED = (
    "if supply(Rep) + score * Item(id).uses * 1 Rep <= 1000 Rep {{\n"
    "        mint score * Item(id).uses * 1 Rep to Item(id).owner\n    }}"
)

# a bond: Rep burned on entry, minted back when it unlocks (backed by the burn); the buggy
# twin bonds without burning, so the re-mint creates Rep from nothing
BOND = """policy {name} version "1"
asset Rep: score, decimals 0, mintable, burnable
role Agent
param admin: party = @admin
record Bond {{ holder: party, amount: Rep = 0 Rep, unlocks: time }}
on grant_rep(to: party, amount: Rep within 1 Rep..100 Rep) by admin {{
    mint amount to to
}}
on bond(amount: Rep) by p: party {{
    require amount > 0 Rep and balance(p, Rep) >= amount else "amount out of range"
    require not exists Bond(p) else "already bonded"
    {burn}
    create Bond(p) {{ holder = p, amount = amount, unlocks = now + 7 days }}
}}
on slash(holder: party, amount: Rep) by admin {{
    require exists Bond(holder) and amount > 0 Rep and amount <= Bond(holder).amount else "out of range"
    set Bond(holder).amount = Bond(holder).amount - amount
}}
when Bond.unlocks passes as b {{
    mint b.amount to b.holder
    delete b
}}
"""
BOND_BURN = "burn amount from p"

# -- stranded: a fund dissolved with money in it; a task closed without its refund ---------
DISSOLVE = (
    HEADER
    + """
on give(amount: Credit) by p: Agent {{
    require amount > 0 Credit and balance(p, Credit) >= amount else "amount out of range"
    transfer amount from p to commons
}}
on wind_up() by p: Agent {{
    {payout}
    dissolve
}}
"""
)
DISSOLVE_PAYOUT = "transfer balance(commons) from commons to p"

CLOSE = (
    HEADER
    + """
record Task holds Credit {{ poster: Agent, budget: Credit, open: bool = true }}
on post(id: text, budget: Credit) by poster: Agent {{
    require budget > 0 Credit else "budget must be positive"
    require balance(poster, Credit) >= budget else "insufficient funds"
    require not exists Task(id) else "task exists"
    create Task(id) {{ poster = poster, budget = budget }}
    escrow budget from poster into Task(id)
}}
on pay(id: Task, amount: Credit) by Task(id).poster {{
    require Task(id).open else "closed"
    require amount > 0 Credit and amount <= balance(Task(id)) else "amount out of range"
    release amount from Task(id) to Task(id).poster
}}
on close(id: Task) by Task(id).poster {{
    require Task(id).open else "closed"
    {refund}
    set Task(id).open = false
}}
"""
)
CLOSE_REFUND = "refund rest of Task(id) to Task(id).poster"

# -- postconditions: "the worker receives at most the agreed price in total" ---------------
ENSURES = (
    HEADER
    + """
record Job holds Credit {{
    client: Agent, worker: party, price: Credit, budget: Credit, paid: Credit = 0 Credit,
}}
on hire(id: text, worker: party, price: Credit, budget: Credit) by c: Agent {{
    require not exists Job(id) else "job id taken"
    require price > 0 Credit and budget >= price else "price out of range"
    require balance(c, Credit) >= budget else "not enough Credit"
    create Job(id) {{ client = c, worker = worker, price = price, budget = budget }}
    escrow budget from c into Job(id)
}}
on pay(id: Job, amount: Credit) by Job(id).client
    ensures Job(id).paid <= Job(id).price else "the worker receives at most the agreed price"
    ensures Job(id).paid == old(Job(id).paid) + amount
    ensures balance(Job(id)) == old(balance(Job(id))) - amount {{
    let j = Job(id)
    require amount > 0 Credit and amount <= balance(Job(id)) else "amount out of range"
    {guard}
    release amount from Job(id) to j.worker
    set j.paid = j.paid + amount
}}
property escrow_pays_the_budget: for each j in Job always j.paid + balance(j) == j.budget
"""
)
ENSURES_GUARD = 'require j.paid + amount <= j.price else "more than the price"'
