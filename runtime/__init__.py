"""The Charter settlement runtime: executes the IR on a double-entry ledger.

Modules, in the order an event meets them:

* :mod:`.engine` -- :class:`~.engine.Runtime`: envelope and payload checks,
  authorisation, timed handlers, atomic apply, receipts and rejections;
* :mod:`.codegen` -- compiles each IR handler once into Python closures;
* :mod:`.pygen` -- the default backend: each handler body as one generated
  Python function (same semantics, faster; closures for the rarer nodes);
* :mod:`.semantics` -- exact rounding and the split algorithms (shared with the verifier);
* :mod:`.state` -- balances, records, roles, rights, clock, with undoable transactions;
* :mod:`.ledger` -- account names, postings, the pre-commit re-check;
* :mod:`.journal` -- the hash-chained journal and its verification;
* :mod:`.store`, :mod:`.sqlite_store` -- in-memory and SQLite persistence;
* :mod:`.testing` -- runs a policy's in-language ``test`` blocks;
* :mod:`.api` -- the embedding API (``open_runtime``, ``replay``, ``audit_ledger``, ...).
"""
