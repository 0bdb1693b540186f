"""MCP server settings (host, ports, extra allowed Host/Origin values).

They belong in ``sophia.settings.Settings`` as an ``mcp`` section (``SOPHIA_MCP__HOST``…); until it
has one, ``mcp_settings()`` returns these defaults, so every server binds 127.0.0.1 on its group's port.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]")


class McpSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    host: str = Field("127.0.0.1", description="Address the MCP servers bind.")
    ports: dict[str, int] = Field(
        default_factory=dict, description="Port per server, e.g. {ai: 8091}; default: the server's own."
    )
    allowed_hosts: list[str] = Field(
        default_factory=list, description="Host header values accepted besides loopback and the bind address."
    )
    allowed_origins: list[str] = Field(
        default_factory=list, description="Origins accepted besides http(s)://<allowed host>[:port]."
    )


def mcp_settings(settings: Any) -> McpSettings:
    value = getattr(settings, "mcp", None)
    if isinstance(value, McpSettings):
        return value
    return McpSettings.model_validate(value.model_dump() if isinstance(value, BaseModel) else value or {})
