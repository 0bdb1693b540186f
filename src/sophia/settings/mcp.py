"""The MCP servers' section (``mcp:``, ``SOPHIA_MCP__…``): bind address, ports, extra Host/Origin values,
and which servers ``sophia run`` serves beside the gateway."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


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
    serve: list[str] | None = Field(
        None,
        description="MCP servers that `sophia run` serves in the gateway's process (one worker only); "
        "None: every registered server, [] none.",
    )
