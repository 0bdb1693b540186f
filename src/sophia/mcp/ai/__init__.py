"""The AI Intelligence MCP server (port 8091): Sophia's models, spend, cache and routing as tools.

One package per server, the template every server follows: one module per theme, each with its
``tools = ToolSet()``; ``schemas`` for argument and result models; this file assembles the group,
and ``sophia.mcp.builtin`` registers it with one line. Tools reach the rest of Sophia through the
process container (``ctx.service(GATEWAY)``, ``ctx.service(CACHE)``, ``ctx.services.open()``).
"""

from __future__ import annotations

from sophia.mcp.ai import cache, calls, catalog, operations, route
from sophia.mcp.tools import ToolGroup

group = ToolGroup(
    "ai",
    port=8091,
    title="Sophia AI Intelligence",
    instructions=(
        "Sophia's AI gateway: call models through routing, fallbacks, budgets and the cache "
        "(generate, embed), and inspect models, prices, spend and provider health."
    ),
    sets=[calls.tools, catalog.tools, operations.tools, cache.tools, route.tools],
)
