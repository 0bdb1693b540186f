"""``sophia mcp``: serve Sophia's MCP servers over streamable HTTP or stdio."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Annotated, Any

import typer

from sophia.cli.common import ConfigOption, JsonOption, echo, fail, settings, table
from sophia.errors import SophiaError

if TYPE_CHECKING:
    from sophia.container import Services

app = typer.Typer(help="Serve Sophia's MCP servers (tools for IDE agents).", no_args_is_help=True)


def run_async(coro: Coroutine[Any, Any, None]) -> None:
    """Run ``coro`` on uvloop when it is installed."""
    try:
        import uvloop

        factory = uvloop.new_event_loop
    except ImportError:  # Windows: uvloop does not exist there
        factory = None
    with asyncio.Runner(loop_factory=factory) as runner:
        runner.run(coro)


@app.command()
def serve(
    ctx: typer.Context,
    server: Annotated[str, typer.Argument(help="Which server: ai (sophia mcp list shows them).")] = "ai",
    stdio: Annotated[bool, typer.Option("--stdio", help="Speak MCP on stdin/stdout (for IDEs).")] = False,
    port: Annotated[int | None, typer.Option(help="HTTP port (default: the server's, 8091 for ai).")] = None,
    host: Annotated[str | None, typer.Option(help="Address to bind (default 127.0.0.1).")] = None,
    config: ConfigOption = None,
) -> None:
    """Serve one MCP server over streamable HTTP at http://127.0.0.1:PORT/mcp, or over stdio.

    Over HTTP every request needs `Authorization: Bearer <gateway key>`. Over stdio the key is
    read from $SOPHIA_API_KEY (`sophia ide install` writes IDE configs that pass it).
    """
    conf = settings(ctx, config)
    if stdio and (port is not None or host is not None):
        fail("--stdio takes no --port or --host", code=2)
    from sophia.mcp.registry import get_registry
    from sophia.serve import configure_logging

    configure_logging(conf)  # on stderr, every known secret masked (stdout is the stdio transport's)
    try:
        group = get_registry().get(server)
    except SophiaError as exc:
        fail(exc.message, code=2)
    try:
        if stdio:
            from sophia.mcp.stdio import serve_stdio

            run_async(serve_stdio(conf, group))
            return
        # With an active environment the server owns a container and watches the environment, so a
        # rotated key or database password reaches it without a restart (sophia.live).
        from sophia.container import Services
        from sophia.mcp.http import http_server

        services = Services(conf) if conf.environment is not None else None
        http = http_server(conf, group, host=host, port=port, services=services)
        bind = host or conf.mcp.host
        typer.echo(
            f"Sophia MCP server '{group.name}' ({group.title}) on http://{bind}:{http.config.port}/mcp; "
            "Ctrl-C stops it.",
            err=True,
        )
        if services is None:
            http.run()
        else:
            run_async(_serve_watching(http, services))
    except SophiaError as exc:
        fail(exc.message)
    except KeyboardInterrupt:
        raise typer.Exit(130) from None


async def _serve_watching(http: Any, services: Services) -> None:
    from sophia.live import EnvironmentWatcher

    watch = asyncio.ensure_future(EnvironmentWatcher(services).run())
    try:
        await http.serve()
    finally:
        watch.cancel()
        await asyncio.gather(watch, return_exceptions=True)
        await services.close()


@app.command("list")
def list_servers(ctx: typer.Context, json_: JsonOption = False, config: ConfigOption = None) -> None:
    """List the MCP servers, their ports and tools."""
    import orjson

    from sophia.mcp.registry import get_registry

    conf = settings(ctx, config).mcp
    registry = get_registry()
    rows = []
    for name in registry.names():
        group = registry.get(name)
        rows.append(
            {
                "server": name,
                "port": conf.ports.get(name, group.port),
                "title": group.title,
                "tools": sorted(group.tools),
                "resources": sorted(group.resources),
            }
        )
    if json_:
        echo(orjson.dumps(rows, option=orjson.OPT_INDENT_2).decode())
        return
    echo(table(rows, ["server", "port", "title", "tools"]))


if __name__ == "__main__":  # `python -m sophia.cli.mcp …`: the lean entry IDE configs can use
    app()
