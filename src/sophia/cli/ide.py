"""``sophia ide``: write IDE MCP configs (Cursor, Claude Desktop, VS Code) and check them."""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from sophia.cli.common import ConfigOption, echo, fail, settings, table
from sophia.errors import SophiaError
from sophia.settings import Settings

if TYPE_CHECKING:
    from sophia.accounts.keys import KeyRecord

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


#: metadata ``created_by`` of the keys ``sophia ide install`` makes (so a re-install finds what it replaces)
MADE_BY = "sophia ide install"


@dataclass
class KeyOutcome:
    secret: str | None = None  # the key to write into the entry, or to show once (created)
    created: bool = False
    kept: str | None = None  # id of the key that still authenticates and is reused
    stale: bool = False  # a key was there but does not authenticate
    replaced: list[str] = field(default_factory=list)  # revoked once the config is written


def _made_by_install(key: KeyRecord, mark: dict[str, str]) -> bool:
    """Made by ``sophia ide install`` for this client and server (keys from before the mark: by name)."""
    meta = key.metadata
    if meta.get("created_by") == MADE_BY:
        return all(meta.get(k) == mark[k] for k in ("ide_client", "mcp_server"))
    return key.name == f"ide-{mark['ide_client']}" and key.allowed_tools == (f"{mark['mcp_server']}/*",)


async def _settle_key(
    conf: Settings, mark: dict[str, str], team: str, current: str | None, in_entry: bool, create: bool | None
) -> KeyOutcome:
    """Reuse ``current`` (the key written in the entry, or $SOPHIA_API_KEY) if it authenticates, unless
    ``create`` is True; otherwise (and unless ``create`` is False) make a least-privilege key. What it
    replaces, where ``sophia ide install`` made it: earlier keys made for this config, and the key
    written in the entry (never a key from the environment, which may serve another config)."""
    from sophia.accounts.keys import KeyStore
    from sophia.accounts.local import user_name

    store = await KeyStore.open(conf.database_url)
    try:
        record = await store.get_by_secret(current) if current else None
        if record is not None and create is not True:
            return KeyOutcome(secret=current, kept=record.id)
        if create is False:
            return KeyOutcome()
        secret, made = await store.create(
            name=f"ide-{mark['ide_client']}",
            owner=user_name(),
            team=team,
            allowed_tools=[f"{mark['mcp_server']}/*"],
            metadata=mark,
        )
        replaced = {k.id for k in await store.list() if k.metadata == mark and k.id != made.id}
    finally:
        await store.close()
    if in_entry and record is not None and _made_by_install(record, mark):
        replaced.add(record.id)
    return KeyOutcome(
        secret=secret, created=True, stale=bool(current) and record is None, replaced=sorted(replaced)
    )


async def _revoke(conf: Settings, key_ids: list[str]) -> list[str]:
    from sophia.accounts.keys import KeyStore

    store = await KeyStore.open(conf.database_url)
    try:
        return [key_id for key_id in key_ids if await store.revoke(key_id)]
    finally:
        await store.close()


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
            help="Create a key limited to this server's tools (default: unless the entry's key, or "
            "$SOPHIA_API_KEY for Cursor and VS Code, still authenticates; the key it replaces is revoked "
            "if `sophia ide install` made it).",
            show_default=False,
        ),
    ] = None,
    team: Annotated[str, typer.Option(help="Team the created key's spend is booked to.")] = "default",
    config: ConfigOption = None,
) -> None:
    """Add Sophia's MCP server to an IDE's config, keeping every other server in it.

    Cursor and VS Code configs refer to the key (${env:SOPHIA_API_KEY}, ${input:sophia-api-key})
    instead of holding it; Claude Desktop cannot, so its config gets a generated key that may call
    only this server's tools. Run again, it keeps a key that still authenticates; a key it creates
    replaces (and revokes) the ones earlier installs made for the same config.
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
        name_in_config = f"sophia-{group.name}"
        servers = data.get(target.servers_key)
        previous = servers.get(name_in_config) if isinstance(servers, dict) else None
        if must_write_key:
            current = ide.written_key(previous) if isinstance(previous, dict) else None
        else:
            current = os.environ.get(KEY_ENV) or None
        mark = {
            "created_by": MADE_BY,
            "ide_client": name,
            "ide_config": str(target.path.resolve()),
            "mcp_server": group.name,
        }
        key = asyncio.run(_settle_key(conf, mark, team, current, must_write_key, create_key))
        if must_write_key and key.secret is None:
            fail(
                f"{name} cannot reference a key, so it needs one written into its config: drop --no-create-key"
            )
        secret = key.secret if must_write_key or key.created else None
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
        others = len(set(data.get(target.servers_key) or {}) - {name_in_config})
        ide.write_config(target.path, ide.merge(data, target, name_in_config, entry), private=must_write_key)
        revoked = asyncio.run(_revoke(conf, key.replaced)) if key.replaced else []
    except SophiaError as exc:
        fail(exc.message)
    echo(f"Wrote {name_in_config} ({transport}) to {target.path}; kept its {others} other server(s).")
    _tell_key(name, group.name, key, must_write_key, revoked)
    if transport == "http":
        echo(f"The HTTP server must be running: `sophia mcp serve {group.name}` (or `make run`).")


def _tell_key(client: str, server: str, key: KeyOutcome, must_write_key: bool, revoked: list[str]) -> None:
    from sophia.cli import ide_config as ide
    from sophia.mcp.context import KEY_ENV

    where = "its entry" if must_write_key else f"${KEY_ENV}"
    if key.kept:
        echo(f"Kept the key in {where} ({key.kept}): it still authenticates.")
    elif key.stale:
        echo(f"The key in {where} does not authenticate here (unknown or revoked), so a new one was created.")
    if key.created and not must_write_key:
        echo(f"Created a key limited to the {server} tools; it is shown only now:\n  {key.secret}")
        if client == "cursor":
            echo(f"Set it where Cursor starts: export {KEY_ENV}={key.secret}")
        else:
            echo(f"VS Code asks for it ('{ide.INPUT_ID}') the first time it starts the server.")
    elif key.created:
        echo(f"Its entry holds a generated key limited to the {server} tools (file readable by you only).")
    if revoked:
        echo(f"Revoked the key(s) it replaces, made by an earlier `sophia ide install`: {', '.join(revoked)}")


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


def _check_server(client: str, server: dict[str, Any], timeout: float) -> str:
    """ "ok: N tools (…)" or "failed: why". A server that lists its tools to a client without a key
    (stdio does, so that the IDE shows them) is still a failure: every call would be refused."""
    from sophia.cli import ide_config as ide
    from sophia.mcp.context import KEY_ENV

    if not ide.sent_key(server, dict(os.environ)):
        return (
            f"failed: no key: the entry passes no Sophia API key. Set ${KEY_ENV} here (and where the IDE "
            f"starts, or in its prompt), or run `sophia ide install {client}` again"
        )
    try:
        tools = asyncio.run(_list_tools(server, timeout))
    except Exception as exc:  # noqa: BLE001 - a broken config or server is reported, and the check goes on
        return f"failed: {_reason(exc)}"[:300]
    return f"ok: {len(tools)} tools ({', '.join(tools)})"


@app.command()
def check(
    client: Annotated[str | None, typer.Argument(help="Only this client.", show_default=False)] = None,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for each server.")] = 60.0,
) -> None:
    """Start each Sophia server configured in the IDE configs found here and list its tools with the
    key its entry passes (an entry that passes none fails).

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
                if server_name.startswith("sophia"):
                    result = _check_server(name, server, timeout)
                    rows.append(
                        {"client": name, "config": str(t.path), "server": server_name, "result": result}
                    )
    if not rows:
        fail("no Sophia server is configured here; run `sophia ide install cursor|claude-desktop|vscode`")
    echo(table(rows, ["client", "config", "server", "result"]))
    if any(not str(r["result"]).startswith("ok") for r in rows):
        raise typer.Exit(1)


if __name__ == "__main__":  # `python -m sophia.cli.ide …` works before `sophia ide` is wired into main
    app()
