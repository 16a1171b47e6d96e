"""The Charter settlement runtime: executes the IR on a double-entry ledger.

Modules, in the order an event meets them:

* :mod:`.engine` -- :class:`~.engine.Runtime`: the state of a settled policy,
  argument conversion, timed handlers, queries, audit;
* :mod:`.settle` -- the one path of an event, an ordered table of named steps
  (decode, identify, clock, timers, convert, authorise, handler, ledger,
  encode, commit), receipts and rejections;
* :mod:`.pygen` -- the engine's backend: each handler body as one generated
  Python function (closures from :mod:`.codegen` for the rarer nodes);
* :mod:`.codegen` -- the engine's closures: one closure per IR node, compiled once;
* :mod:`.reference` -- the reference interpreter: walks the IR per event, shares
  no code with the engine's handlers; the tests and event fuzzers compare the
  engine against it (the oracle);
* :mod:`.values` -- conversion of event input, bounds, canonical party ids;
* :mod:`.semantics` -- exact rounding and the split algorithms (shared with the verifier);
* :mod:`.state` -- balances, records, roles, rights, clock, with undoable transactions;
* :mod:`.ledger` -- account names, postings, the pre-commit re-check;
* :mod:`.journal` -- the hash-chained journal and its verification;
* :mod:`.store`, :mod:`.sqlite_store` -- in-memory and SQLite persistence;
* :mod:`.testing` -- runs a policy's in-language ``test`` blocks;
* :mod:`.api` -- the embedding API (``open_runtime``, ``replay``, ``audit_ledger``, ...).
"""
