"""``charter serve``: a ledger over HTTP (Starlette on uvicorn).

:mod:`.worker` owns the runtime (one thread, group commit, acknowledge after
commit), :mod:`.app` the routes and status codes, :mod:`.openapi` the
contract, :mod:`.server` uvicorn, signals and JSON logs.
"""
