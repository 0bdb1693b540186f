"""Helpers for the MCP tests (imported by name: tests/mcp/conftest.py puts this folder on sys.path)."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from fakes.upstream import FakeUpstream
from mcp import Client
from sophia.container import Services
from sophia.gateway.engine import Gateway
from sophia.mcp.registry import get_registry
from sophia.mcp.server import build_server
from sophia.mcp.tools import ToolGroup
from sophia.settings import Settings

#: the two protocol eras every in-memory test runs in
MODES = ("legacy", "2026-07-28")
ALIASES = {
    "sophia/fast": ["ollama/fast"],
    "sophia/smart": ["vllm/priced", "ollama/ok"],
    "test/slow": ["vllm/slow-30"],
    "test/fallback-500": ["vllm/status-500", "ollama/ok"],
}


@dataclass
class Env:
    settings: Settings
    services: Services
    gateway: Gateway
    upstream: FakeUpstream
    admin: str  # secrets
    user: str
    limited: str
    unattended: str = ""  # a key of the user's team whose metadata allows unattended destructive calls


def ai_group() -> ToolGroup:
    return get_registry().get("ai")


@asynccontextmanager
async def connect(
    env: Env, secret: str | None, mode: str = "legacy", group: ToolGroup | None = None, **client: Any
) -> AsyncIterator[Client]:
    """An SDK client in memory against the server, as the stdio transport would run it (key from the environment)."""
    server = build_server(group or ai_group(), env.services, secret=secret)
    async with Client(server, mode=mode, **client) as c:
        yield c


def text(result: Any) -> str:
    return "\n".join(getattr(block, "text", "") for block in result.content)


def answering(action: Any, confirm: bool = True) -> Any:
    """An elicitation callback (the user's side of a confirmation) that answers ``action``; ``.asked``
    holds the questions it was asked."""
    import mcp_types as types

    asked: list[str] = []

    async def callback(context: Any, params: types.ElicitRequestParams) -> types.ElicitResult:
        asked.append(params.message)
        return types.ElicitResult(action=action, content={"confirm": confirm} if action == "accept" else None)

    callback.asked = asked  # type: ignore[attr-defined,unused-ignore]
    return callback


def sophia_cli(*args: str) -> list[str]:
    """`sophia <args>` as a command (the installed CLI, through this interpreter)."""
    return [sys.executable, "-m", "sophia", *args]


def start_http_server(name: str, config: Any, port: int) -> Any:
    """`sophia mcp serve NAME --port PORT` as a process, once it answers (fails the test if it does not)."""
    import subprocess
    import time

    import httpx
    import pytest

    proc = subprocess.Popen(
        sophia_cli("mcp", "serve", name, "--port", str(port), "--config", str(config)),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(
                f"http://127.0.0.1:{port}/.well-known/oauth-protected-resource", timeout=1
            ).is_success:
                return proc
        except httpx.HTTPError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            out = proc.communicate()[0] if proc.poll() is not None else ""
            pytest.fail(f"sophia mcp serve {name} did not start:\n{out}")
        time.sleep(0.1)
