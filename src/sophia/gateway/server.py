"""Running the gateway: the ASGI factory uvicorn workers import, and the first-run local key."""

from __future__ import annotations

import asyncio
import getpass
import logging
import os
from pathlib import Path
from typing import Any

from sophia.gateway.app import GatewayApp
from sophia.gateway.engine import Gateway
from sophia.gateway.keys import KeyStore
from sophia.settings import CONFIG_ENV, Settings, load_settings

LOCAL_KEY_FILE = "admin-key"


def configure_logging(settings: Settings) -> None:
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        force=False,
    )


def create_app(settings: Settings | None = None) -> GatewayApp:
    """The ASGI app; uvicorn workers call it with no argument and read ``$SOPHIA_CONFIG``."""
    settings = settings or load_settings()
    configure_logging(settings)
    return GatewayApp(Gateway(settings))


def local_key_path(settings: Settings) -> Path:
    return settings.config_dir / LOCAL_KEY_FILE


def read_local_key(settings: Settings) -> str | None:
    path = local_key_path(settings)
    try:
        return path.read_text(encoding="utf-8").strip() or None
    except FileNotFoundError:
        return None


async def ensure_local_key(settings: Settings) -> str | None:
    """With no active key at all, create a local admin key, keep it in the config dir, and return it."""
    store = await KeyStore.open(settings.database_url)
    try:
        if await store.count_active() > 0:
            return None
        secret, _ = await store.create(name="local-admin", owner=user_name(), team="admin", admin=True)
    finally:
        await store.close()
    path = local_key_path(settings)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(secret + "\n")
    return secret


def user_name() -> str:
    """The login name, for a key's owner (\"local\" where there is none)."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "local"


def serve(settings: Settings, *, host: str, port: int, workers: int, mcp_port: int | None = None) -> None:
    """Run the gateway in the foreground with uvicorn (uvloop + httptools), ``workers`` processes.

    With one worker, the AI Intelligence MCP server runs in the same process and event loop on
    ``mcp_port`` (None: not started), sharing the gateway, so its tool calls are routed, limited
    and booked like HTTP calls.
    """
    import uvicorn

    if settings._config_file is not None:
        os.environ[CONFIG_ENV] = str(settings._config_file.resolve())
    common: dict[str, Any] = {
        "loop": "uvloop",
        "http": "httptools",
        "log_level": "warning" if settings.log_level == "info" else settings.log_level,
        "access_log": False,
        "lifespan": "on",
        "timeout_graceful_shutdown": 5,
        # Sophia reads no X-Forwarded-* headers and announces no server name: less work per request.
        "proxy_headers": False,
        "server_header": False,
    }
    if workers > 1:
        uvicorn.run(
            "sophia.gateway.server:create_app", factory=True, workers=workers, host=host, port=port, **common
        )
        return
    app = create_app(settings)
    gateway_server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, **common))
    if mcp_port is None:
        gateway_server.run()
        return
    import uvloop

    uvloop.run(_serve_both(gateway_server, app.gateway, settings, mcp_port))


async def _serve_both(gateway_server: Any, gateway: Gateway, settings: Settings, mcp_port: int) -> None:
    from sophia.mcp.http import http_server

    mcp_server = http_server(settings, "ai", port=mcp_port, gateway=gateway)
    tasks = [asyncio.ensure_future(gateway_server.serve()), asyncio.ensure_future(mcp_server.serve())]
    done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    # One stopped (a signal, or a failure to bind): stop the other, then report any failure.
    gateway_server.should_exit = mcp_server.should_exit = True
    await asyncio.gather(*tasks, return_exceptions=True)
    for task in done:
        task.result()
