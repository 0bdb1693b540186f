"""Running Sophia: the gateway and the MCP servers of one process, on one event loop, one container.

This is the one module that knows both the HTTP gateway and the MCP servers (the seed of the
coming supervisor). With one worker, ``serve`` starts the process's container (accounts, then the
gateway), then serves the gateway's HTTP app and every MCP server asked for, each on its port, all
sharing that container: a tool call is authenticated, limited, cached and booked exactly like an
HTTP call. With several workers uvicorn runs ``create_gateway_app`` in each process (the gateway
alone, with its own accounts); the MCP servers then run on their own (``sophia mcp serve``).
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from sophia.asgi import uvicorn_log_level
from sophia.container import Services
from sophia.settings import CONFIG_ENV, ENVIRONMENT_ENV, Settings, load_settings

if TYPE_CHECKING:
    from sophia.gateway.engine import Gateway
    from sophia.observe.monitor import Monitor


def configure_logging(settings: Settings) -> None:
    """The log format and level, with every secret masked: the settings' secret values join the known
    ones (``KNOWN``), and a ``MaskingFilter`` sits on the root handlers and on uvicorn's loggers (whose
    filters survive the ``dictConfig`` uvicorn runs later), so no line, traceback or access log leaks one."""
    from sophia.secrets.mask import KNOWN, known_from_settings, mask_logging

    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        force=False,
    )
    KNOWN.add(known_from_settings(settings))
    mask_logging()


def create_gateway_app(settings: Settings | None = None) -> Any:
    """The gateway's ASGI app on its own (it opens and closes its accounts in its lifespan); uvicorn's
    workers call this with no argument and read ``$SOPHIA_CONFIG``."""
    from sophia.gateway.app import GatewayApp
    from sophia.gateway.engine import Gateway

    settings = settings or load_settings()
    configure_logging(settings)
    return GatewayApp(Gateway(settings))


def mcp_servers(settings: Settings, asked: Sequence[str] | None = None) -> list[str]:
    """The MCP servers to serve: ``asked``, else ``mcp.serve``, else every registered one."""
    from sophia.mcp.registry import get_registry

    registry = get_registry()
    if asked is not None:
        names = list(asked)
    else:
        names = registry.names() if settings.mcp.serve is None else list(settings.mcp.serve)
    for name in names:
        registry.get(name)  # ConfigError for an unknown server, before anything starts
    return names


def serve(
    settings: Settings,
    *,
    host: str,
    port: int,
    workers: int = 1,
    mcp: Sequence[str] = (),
    mcp_ports: Mapping[str, int] | None = None,
) -> None:
    """Run in the foreground until a signal: the gateway on ``host:port`` and, with one worker, the MCP
    servers named in ``mcp`` (each on ``mcp_ports[name]``, else ``mcp.ports``, else its own port)."""
    import uvicorn

    from sophia.edge import uvicorn_options

    if settings._config_file is not None:
        os.environ[CONFIG_ENV] = str(settings._config_file.resolve())
    if settings.environment is not None:
        os.environ[ENVIRONMENT_ENV] = settings.environment[0]  # workers load the same environment
    configure_logging(settings)  # the supervisor's own lines too, with several workers
    if workers > 1:
        uvicorn.run(
            "sophia.serve:create_gateway_app",
            factory=True,
            workers=workers,
            host=host,
            port=port,
            log_level=uvicorn_log_level(settings.log_level),
            **uvicorn_options(settings.gateway),
        )
        return
    import uvloop

    uvloop.run(serve_together(settings, host=host, port=port, mcp=mcp, mcp_ports=mcp_ports or {}))


async def serve_together(
    settings: Settings, *, host: str, port: int, mcp: Sequence[str], mcp_ports: Mapping[str, int]
) -> None:
    """Start the container and the gateway, then serve the gateway and the MCP servers until one stops."""
    import uvicorn

    from sophia.edge import uvicorn_options
    from sophia.gateway.app import GatewayApp
    from sophia.gateway.service import GATEWAY
    from sophia.mcp.http import http_server

    services = Services(settings)
    try:
        gateway = await services.get(GATEWAY)
        if gateway.tracer is not None:
            gateway.tracer.install_global()  # third-party instrumentation's spans: redacted, exported, kept
        app = GatewayApp(gateway, lifespan=False)  # the container starts and stops the gateway
        config = uvicorn.Config(
            app,
            host=host,
            port=port,
            log_level=uvicorn_log_level(settings.log_level),
            **uvicorn_options(settings.gateway),
        )
        servers = [uvicorn.Server(config)]
        servers += [http_server(settings, name, port=mcp_ports.get(name), services=services) for name in mcp]
        tasks = [asyncio.ensure_future(server.serve()) for server in servers]
        names = ["gateway", *(f"mcp:{name}" for name in mcp)]
        monitor = await _monitor(settings, services, gateway, servers, names)
        helpers = []  # run beside the servers, cancelled when they stop
        if monitor is not None:
            helpers.append(asyncio.ensure_future(monitor.run()))
        if settings.environment is not None:
            from sophia.live import EnvironmentWatcher

            helpers.append(asyncio.ensure_future(EnvironmentWatcher(services).run()))
        try:
            done, _ = await asyncio.wait(tasks + helpers, return_when=asyncio.FIRST_COMPLETED)
            # One stopped (a signal, or a failure to bind): stop the others, then report any failure.
            for server in servers:
                server.should_exit = True
            for helper in helpers:
                helper.cancel()
            await asyncio.gather(*tasks, *helpers, return_exceptions=True)
        finally:
            if monitor is not None:
                await _stop_monitor(monitor, services, gateway)
        for task in done:
            task.result()
    finally:
        await services.close()


async def _monitor(
    settings: Settings, services: Services, gateway: Gateway, servers: Sequence[Any], names: Sequence[str]
) -> Monitor | None:
    """The uptime monitor over the servers this process serves and the providers its gateway reaches
    (``observe.monitor``), or None; the gateway holds it (``gateway.monitor``) for the dashboard."""
    if not settings.observe.monitor:
        return None
    from sophia.observe.monitor import Monitor, provider_probes
    from sophia.observe.uptime import HttpProbe
    from sophia.storage.db import open_database

    accounts = await services.open()
    probes: dict[str, Any] = {}
    for name, server in zip(names, servers, strict=True):
        host = server.config.host if server.config.host not in ("0.0.0.0", "::", "") else "127.0.0.1"
        host = f"[{host}]" if ":" in host else host
        path = "/health" if name == "gateway" else "/.well-known/oauth-protected-resource"
        probes[name] = HttpProbe(f"http://{host}:{server.config.port}{path}")
    board = gateway.breakers
    probes.update(provider_probes(gateway.catalog, lambda: board.breakers, settings.observe))
    # The monitor's own connection to the database: its reads (the hourly drift check scans a week of the
    # ledger) never queue behind, or hold up, the calls the servers make on theirs (one, with SQLite).
    memory = ":memory:" in settings.database_url
    db = accounts.db if memory else await open_database(settings.database_url)
    monitor = Monitor(settings.observe, db, probes)
    accounts.ledger.observers.append(monitor.observe_usage)
    gateway.monitor = monitor
    return monitor


async def _stop_monitor(monitor: Monitor, services: Services, gateway: Gateway) -> None:
    """Undo ``_monitor``: the gateway lets go of it, the ledger stops feeding it, its probes and its
    database connection close."""
    if gateway.monitor is monitor:
        gateway.monitor = None
    accounts = services.accounts
    if accounts is not None and monitor.observe_usage in accounts.ledger.observers:
        accounts.ledger.observers.remove(monitor.observe_usage)
    await monitor.aclose()
    if accounts is None or monitor.db is not accounts.db:
        await monitor.db.close()
