"""``charter mcp``: AI agents take part in a Charter economy through the Model Context Protocol.

:mod:`.economy` is what an agent can do (tools from handlers, resources, results,
limits), without the SDK; :mod:`.server` is the protocol glue (stdio and streamable
HTTP, on the ``mcp`` SDK's low-level server).  See ``docs/mcp.rst``.
"""
