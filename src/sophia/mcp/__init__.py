"""Sophia's MCP servers on the official ``mcp`` SDK: one base, one package of tools per server.

The base:

* ``tools``     ``ToolSet`` / ``ToolGroup`` / ``Input`` / ``Output`` / ``Confirmable``: how a server declares its tools
* ``registry``  tool groups found through the ``register_mcp_tools`` plugin hook (``builtin`` registers ours)
* ``server``    the SDK low-level ``Server`` for a group: key filter, validation, errors, progress, ledger
* ``context``   ``ToolContext``: the caller's key, the process's services, progress, the user's confirmation
* ``errors``    the MCP edge of ``sophia.errors``: every failure becomes an actionable tool error
* ``http``      streamable HTTP: Host/Origin checks, bearer keys, OAuth discovery documents
* ``stdio``     stdio for IDEs

The servers, one package each (docs/mcp-servers.md has the recipe for a new one):

* ``ai``        the AI Intelligence server (8091)

Keys are checked and calls booked by ``sophia.accounts`` through the process container
(``sophia.container``); nothing here imports the gateway, numpy or the cache until a tool needs them.
"""
