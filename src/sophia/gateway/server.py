"""Running the gateway: the ASGI factory uvicorn workers import, and the first-run local key."""

from __future__ import annotations

import getpass
import logging
import os
from pathlib import Path

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
        secret, _ = await store.create(name="local-admin", owner=_user(), team="admin", admin=True)
    finally:
        await store.close()
    path = local_key_path(settings)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(secret + "\n")
    return secret


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "local"


def serve(settings: Settings, *, host: str, port: int, workers: int) -> None:
    """Run the gateway in the foreground with uvicorn (uvloop + httptools), ``workers`` processes."""
    import uvicorn

    if settings._config_file is not None:
        os.environ[CONFIG_ENV] = str(settings._config_file.resolve())
    common = {
        "host": host,
        "port": port,
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
        uvicorn.run("sophia.gateway.server:create_app", factory=True, workers=workers, **common)  # type: ignore[arg-type]
    else:
        uvicorn.run(create_app(settings), **common)  # type: ignore[arg-type]
