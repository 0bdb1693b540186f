"""Sophia's MCP servers on the official ``mcp`` SDK: one base, one module of tools per server.

* ``tools``     ``ToolGroup`` / ``Input`` / ``Output`` / ``Confirmable``: how a server declares its tools
* ``registry``  tool groups found through the ``register_mcp_tools`` plugin hook (``builtin`` registers ours)
* ``server``    the SDK low-level ``Server`` for a group: key filter, validation, errors, progress, ledger
* ``context``   ``ToolContext`` (key, gateway, progress, confirmation) and ``Services`` (the shared gateway)
* ``errors``    the MCP edge of ``sophia.errors``: every failure becomes an actionable tool error
* ``http``      streamable HTTP: Host/Origin checks, bearer keys, protected-resource metadata
* ``stdio``     stdio for IDEs; ``ide`` writes IDE configs
* ``ai``        the AI Intelligence server (8091)

Nothing here imports the gateway, models or the router until a tool call needs them.
"""
