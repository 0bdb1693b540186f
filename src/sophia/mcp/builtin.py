"""Sophia's own MCP servers, registered through the same hook as third-party plugins."""

from __future__ import annotations

from sophia.mcp.registry import ToolRegistry


def register_mcp_tools(registry: ToolRegistry) -> None:
    registry.add("sophia.mcp.ai:group", name="ai")
    registry.add("sophia.mcp.bi:group", name="bi")
    registry.add("sophia.mcp.data:group", name="data")
