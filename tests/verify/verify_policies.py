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
