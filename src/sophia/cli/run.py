"""``sophia run``: start Sophia with what is configured (today: the AI gateway)."""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer

from sophia.cli.common import ConfigOption, fail, settings
from sophia.errors import SophiaError


def _ports(values: list[str] | None) -> dict[str, int]:
    ports = {}
    for value in values or []:
        name, sep, number = value.partition("=")
        if not sep or not name or not number.isdigit() or not 0 < int(number) < 65536:
            fail(f"--mcp-port takes SERVER=PORT, e.g. ai=8091; not {value!r}", code=2)
        ports[name] = int(number)
    return ports


def run(
    ctx: typer.Context,
    config: ConfigOption = None,
    host: Annotated[
        str | None, typer.Option(help="Address to bind (default: gateway.host, 127.0.0.1).")
    ] = None,
    port: Annotated[int | None, typer.Option(help="Port (default: gateway.port, 8090).")] = None,
    mcp_port: Annotated[
        list[str] | None,
        typer.Option(
            metavar="SERVER=PORT",
            help="Port of an MCP server, e.g. ai=9091 (repeatable; default: mcp.ports, else the server's own).",
        ),
    ] = None,
    mcp: Annotated[
        bool,
        typer.Option(
            help="Also serve the MCP servers (mcp.serve; default: every one) in this process (one worker only)."
        ),
    ] = True,
    workers: Annotated[
        int | None,
        typer.Option(
            help="Worker processes (default: gateway.workers). Share limits through storage.redis_url."
        ),
    ] = None,
) -> None:
    """Start the gateway on 127.0.0.1:8090 with the local model (and every provider whose key is set),
    and the MCP servers (AI Intelligence on 127.0.0.1:8091, streamable HTTP at /mcp) in the same process.

    On first run, with no key in the store, it creates a local admin key, prints it once and keeps
    it in the config dir (`sophia keys local` prints it again).
    """
    from sophia.accounts.local import LOCAL_KEY_FILE, ensure_local_key
    from sophia.serve import mcp_servers, serve

    conf = settings(ctx, config)
    bind_host = host or conf.gateway.host
    bind_port = port if port is not None else conf.gateway.port
    n_workers = workers or conf.gateway.workers
    ports = {**conf.mcp.ports, **_ports(mcp_port)}
    key_file = conf.config_dir / LOCAL_KEY_FILE
    try:
        secret = asyncio.run(ensure_local_key(conf.database_url, key_file))
        servers = mcp_servers(conf) if mcp and n_workers == 1 else []
    except SophiaError as exc:
        fail(exc.message)
    if secret:
        typer.echo(f"Created a local admin key (kept in {key_file}; `sophia keys local` shows it):")
        typer.echo(f"  {secret}")
    if n_workers > 1 and not conf.storage.redis_url:
        typer.secho(
            "warning: with several workers and no storage.redis_url, rate limits and budgets hold per worker",
            fg=typer.colors.YELLOW,
            err=True,
        )
    typer.echo(
        f"Sophia gateway on http://{bind_host}:{bind_port}/v1 ({n_workers} worker(s)); Ctrl-C stops it."
    )
    from sophia.mcp.registry import get_registry

    for name in servers:
        group = get_registry().get(name)
        typer.echo(
            f"{group.title} MCP server on http://{conf.mcp.host}:{ports.get(name, group.port)}/mcp "
            "(bearer: a gateway key)."
        )
    if mcp and n_workers > 1:
        typer.echo("With several workers, start the MCP servers on their own: sophia mcp serve NAME")
    serve(conf, host=bind_host, port=bind_port, workers=n_workers, mcp=servers, mcp_ports=ports)
