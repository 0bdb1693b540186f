"""``sophia ide``: write IDE MCP configs (Cursor, Claude Desktop, VS Code) and check them."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Annotated, Any

import typer

from sophia.cli.common import ConfigOption, echo, fail, settings, table
from sophia.errors import SophiaError
from sophia.settings import Settings

app = typer.Typer(help="Connect IDEs to Sophia's MCP servers.", no_args_is_help=True)

ClientArg = Annotated[str, typer.Argument(help="cursor, claude-desktop or vscode.", show_default=False)]
ScopeOption = Annotated[
    bool | None,
    typer.Option(
        "--project/--global",
        help="The project's config (./.cursor, ./.vscode) or the user's; default: project, global for Claude.",
        show_default=False,
    ),
]


def _client(name: str) -> Any:
    from sophia.cli.ide_config import CLIENTS

    if name not in CLIENTS:
        fail(f"unknown client {name!r}: use one of {', '.join(CLIENTS)}", code=2)
    return name


async def _create_key(conf: Settings, client: str, server: str, team: str) -> str:
    from sophia.accounts.keys import KeyStore
    from sophia.accounts.local import user_name

    store = await KeyStore.open(conf.database_url)
    try:
        secret, _ = await store.create(
            name=f"ide-{client}", owner=user_name(), team=team, allowed_tools=[f"{server}/*"]
        )
    finally:
        await store.close()
    return secret


@app.command()
def install(
    ctx: typer.Context,
    client: ClientArg,
    project: ScopeOption = None,
    transport: Annotated[str, typer.Option(help="stdio (the IDE starts Sophia) or http.")] = "stdio",
    server: Annotated[str, typer.Option(help="Which MCP server.")] = "ai",
    create_key: Annotated[
        bool | None,
        typer.Option(
            "--create-key/--no-create-key",
            help="Create a key limited to this server's tools (default: when $SOPHIA_API_KEY is unset).",
            show_default=False,
        ),
    ] = None,
    team: Annotated[str, typer.Option(help="Team the created key's spend is booked to.")] = "default",
    config: ConfigOption = None,
) -> None:
    """Add Sophia's MCP server to an IDE's config, keeping every other server in it.

    Cursor and VS Code configs refer to the key (${env:SOPHIA_API_KEY}, ${input:sophia-api-key})
    instead of holding it; Claude Desktop cannot, so its config gets a generated key that may call
    only this server's tools.
    """
    from sophia.cli import ide_config as ide
    from sophia.mcp.context import KEY_ENV
    from sophia.mcp.registry import get_registry

    name = _client(client)
    if transport not in ("stdio", "http"):
        fail("--transport is stdio or http", code=2)
    conf = settings(ctx, config)
    try:
        group = get_registry().get(server)
        target = ide.target(name, project=project if project is not None else name != "claude-desktop")
        data = ide.read_config(target.path)
        must_write_key = not target.key_ref
        wanted = create_key if create_key is not None else (must_write_key or not os.environ.get(KEY_ENV))
        if must_write_key and not wanted:
            fail(
                f"{name} cannot reference a key, so it needs one written into its config: drop --no-create-key"
            )
        secret = asyncio.run(_create_key(conf, name, group.name, team)) if wanted else None
        mcp = conf.mcp
        url = f"http://{mcp.host}:{mcp.ports.get(group.name, group.port)}/mcp"
        entry = ide.entry(
            target,
            group.name,
            transport,  # type: ignore[arg-type]
            url,
            secret,
            config=conf._config_file,
            home=os.environ.get("SOPHIA_HOME"),
        )
        others = len(set(data.get(target.servers_key) or {}) - {f"sophia-{group.name}"})
        ide.write_config(
            target.path, ide.merge(data, target, f"sophia-{group.name}", entry), private=must_write_key
        )
    except SophiaError as exc:
        fail(exc.message)
    echo(f"Wrote sophia-{group.name} ({transport}) to {target.path}; kept its {others} other server(s).")
    if secret and not must_write_key:
        echo(f"Created a key limited to the {group.name} tools; it is shown only now:\n  {secret}")
        if name == "cursor":
            echo(f"Set it where Cursor starts: export {KEY_ENV}={secret}")
        else:
            echo(f"VS Code asks for it ('{ide.INPUT_ID}') the first time it starts the server.")
    elif secret:
        echo(
            f"Its entry holds a generated key limited to the {group.name} tools (file readable by you only)."
        )
    if transport == "http":
        echo(f"The HTTP server must be running: `sophia mcp serve {group.name}` (or `make run`).")


async def _list_tools(server: dict[str, Any], limit: float) -> list[str]:
    import anyio
    from mcp.client.streamable_http import create_mcp_http_client, streamable_http_client

    from mcp import Client
    from sophia.cli.ide_config import resolve_refs

    env = dict(os.environ)
    with anyio.fail_after(limit):
        if "url" in server:
            headers = {k: resolve_refs(str(v), env) for k, v in (server.get("headers") or {}).items()}
            async with create_mcp_http_client(headers=headers) as http:
                transport = streamable_http_client(resolve_refs(server["url"], env), http_client=http)
                async with Client(transport, mode="legacy") as client:
                    return [t.name for t in (await client.list_tools()).tools]
        return await _list_stdio_tools(server, env)


async def _list_stdio_tools(server: dict[str, Any], env: dict[str, str]) -> list[str]:
    """Spawn a stdio server as the IDE would; its stderr goes to a file, quoted when it fails."""
    import tempfile

    from mcp.client.stdio import StdioServerParameters, stdio_client

    from mcp import Client
    from sophia.cli.ide_config import resolve_refs

    extra = {k: resolve_refs(str(v), env) for k, v in (server.get("env") or {}).items()}
    params = StdioServerParameters(
        command=server["command"],
        args=[resolve_refs(str(a), {**env, **extra}) for a in server.get("args") or []],
        env={**env, **extra},
    )
    with tempfile.TemporaryFile("w+", encoding="utf-8") as errlog:
        try:
            async with Client(stdio_client(params, errlog=errlog), mode="legacy") as client:
                return [t.name for t in (await client.list_tools()).tools]
        except Exception as exc:
            errlog.seek(0)
            said = " | ".join(line.strip() for line in errlog.read().splitlines()[-3:] if line.strip())
            if said:
                exc.add_note(f"the server said: {said}")
            raise


def _reason(exc: BaseException) -> str:
    notes = getattr(exc, "__notes__", [])
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
        notes = notes or getattr(exc, "__notes__", [])
    return "; ".join([f"{type(exc).__name__}: {exc}", *notes])


@app.command()
def check(
    client: Annotated[str | None, typer.Argument(help="Only this client.", show_default=False)] = None,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for each server.")] = 60.0,
) -> None:
    """Start each Sophia server configured in the IDE configs found here and list its tools.

    ${env:NAME} references are read from this shell's environment and ${input:sophia-api-key}
    from $SOPHIA_API_KEY.
    """
    from sophia.cli import ide_config as ide

    names = [_client(client)] if client else list(ide.CLIENTS)
    rows: list[dict[str, Any]] = []
    seen: set[Path] = set()
    for name in names:
        for project in (True, False):
            try:
                t = ide.target(name, project=project)
            except SophiaError:
                continue
            if t.path in seen or not t.path.exists():
                continue
            seen.add(t.path)
            try:
                servers = ide.servers_in(t.path, t.servers_key)
            except SophiaError as exc:
                rows.append({"client": name, "config": str(t.path), "server": "-", "result": exc.message})
                continue
            for server_name, server in servers.items():
                if not server_name.startswith("sophia"):
                    continue
                try:
                    tools = asyncio.run(_list_tools(server, timeout))
                    result = f"ok: {len(tools)} tools ({', '.join(tools)})"
                except Exception as exc:  # noqa: BLE001 - a broken config or server is reported, and the check goes on
                    result = f"failed: {_reason(exc)}"[:300]
                rows.append({"client": name, "config": str(t.path), "server": server_name, "result": result})
    if not rows:
        fail("no Sophia server is configured here; run `sophia ide install cursor|claude-desktop|vscode`")
    echo(table(rows, ["client", "config", "server", "result"]))
    if any(not str(r["result"]).startswith("ok") for r in rows):
        raise typer.Exit(1)


if __name__ == "__main__":  # `python -m sophia.cli.ide …` works before `sophia ide` is wired into main
    app()
