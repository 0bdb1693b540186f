"""``sophia run``: start Sophia with what is configured (today: the AI gateway)."""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer

from sophia.cli.common import ConfigOption, fail, settings
from sophia.errors import SophiaError


def run(
    ctx: typer.Context,
    config: ConfigOption = None,
    host: Annotated[
        str | None, typer.Option(help="Address to bind (default: gateway.host, 127.0.0.1).")
    ] = None,
    port: Annotated[int | None, typer.Option(help="Port (default: gateway.port, 8090).")] = None,
    mcp_port: Annotated[
        int | None, typer.Option(help="Port of the AI Intelligence MCP server (default: mcp.ports.ai, 8091).")
    ] = None,
    mcp: Annotated[
        bool, typer.Option(help="Also serve the AI Intelligence MCP server (one worker only).")
    ] = True,
    workers: Annotated[
        int | None,
        typer.Option(
            help="Worker processes (default: gateway.workers). Share limits through storage.redis_url."
        ),
    ] = None,
) -> None:
    """Start the gateway on 127.0.0.1:8090 with the local model (and every provider whose key is set),
    and the AI Intelligence MCP server on 127.0.0.1:8091 (streamable HTTP at /mcp).

    On first run, with no key in the store, it creates a local admin key, prints it once and keeps
    it in the config dir (`sophia keys local` prints it again).
    """
    from sophia.gateway.server import ensure_local_key, local_key_path, serve

    conf = settings(ctx, config)
    bind_host = host or conf.gateway.host
    bind_port = port if port is not None else conf.gateway.port
    n_workers = workers or conf.gateway.workers
    try:
        secret = asyncio.run(ensure_local_key(conf))
    except SophiaError as exc:
        fail(exc.message)
    if secret:
        typer.echo(
            f"Created a local admin key (kept in {local_key_path(conf)}; `sophia keys local` shows it):"
        )
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
    serve_mcp = mcp and n_workers == 1
    port_mcp = mcp_port if mcp_port is not None else conf.mcp.ports.get("ai", 8091)
    if serve_mcp:
        typer.echo(
            f"AI Intelligence MCP server on http://{conf.mcp.host}:{port_mcp}/mcp (bearer: a gateway key)."
        )
    elif mcp:
        typer.echo("With several workers, start the MCP server on its own: sophia mcp serve ai")
    serve(conf, host=bind_host, port=bind_port, workers=n_workers, mcp_port=port_mcp if serve_mcp else None)
