"""Serving an MCP server over stdio, for IDEs that spawn it (the key comes from ``$SOPHIA_API_KEY``)."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from sophia.container import Services
from sophia.mcp.context import KEY_ENV
from sophia.mcp.registry import get_registry
from sophia.mcp.server import build_server

if TYPE_CHECKING:
    from sophia.mcp.tools import ToolGroup
    from sophia.settings import Settings


async def serve_stdio(
    settings: Settings, group: str | ToolGroup = "ai", *, secret: str | None = None
) -> None:
    """Serve ``group`` on this process's stdin/stdout until the client closes it.

    Nothing but the SDK and the tool group's own module is loaded before the first request: the
    accounts open when a key must be checked, the gateway only when a tool calls a model.
    """
    from mcp.server.stdio import stdio_server

    tool_group = get_registry().get(group) if isinstance(group, str) else group
    services = Services(settings)
    server = build_server(tool_group, services, secret=secret or os.environ.get(KEY_ENV) or None)
    try:
        async with stdio_server() as (read_stream, write_stream):
            await server.run(read_stream, write_stream, server.create_initialization_options())
    finally:
        await services.close()
