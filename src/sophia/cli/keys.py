"""``sophia keys``: create, list and revoke gateway API keys (virtual keys)."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, TypeVar

import orjson
import typer

from sophia.accounts.keys import MAX_BUDGET_USD, MAX_RATE, KeyStore
from sophia.cli.common import ConfigOption, JsonOption, echo, fail, settings, table
from sophia.errors import SophiaError
from sophia.settings import Settings

app = typer.Typer(help="Create, list and revoke gateway API keys.", no_args_is_help=True)
T = TypeVar("T")


def _with_store(conf: Settings, action: Callable[[KeyStore], Awaitable[T]]) -> T:
    async def go() -> T:
        store = await KeyStore.open(conf.database_url)
        try:
            return await action(store)
        finally:
            await store.close()

    try:
        return asyncio.run(go())
    except SophiaError as exc:
        fail(exc.message)


@app.command()
def create(
    ctx: typer.Context,
    name: Annotated[str, typer.Option(help="A name for the key (who or what uses it).")],
    owner: Annotated[str, typer.Option(help="Owner (person or service).")] = "",
    team: Annotated[str, typer.Option(help="Team the spend is booked to.")] = "default",
    admin: Annotated[bool, typer.Option(help="May use the admin API.")] = False,
    model: Annotated[
        list[str] | None,
        typer.Option("--model", help="Allowed model or alias (repeat; wildcards like openai/*)."),
    ] = None,
    tool: Annotated[
        list[str] | None,
        typer.Option("--tool", help="Allowed MCP tool as server/tool (repeat; wildcards like ai/*)."),
    ] = None,
    rpm: Annotated[int | None, typer.Option(help="Requests per minute.", min=1, max=MAX_RATE)] = None,
    tpm: Annotated[int | None, typer.Option(help="Tokens per minute.", min=1, max=MAX_RATE)] = None,
    budget_daily: Annotated[
        float | None, typer.Option(help="USD per UTC day.", min=0, max=MAX_BUDGET_USD)
    ] = None,
    budget_monthly: Annotated[
        float | None, typer.Option(help="USD per UTC month.", min=0, max=MAX_BUDGET_USD)
    ] = None,
    mcp_unattended: Annotated[
        bool,
        typer.Option(
            "--mcp-unattended",
            help="Let MCP agents using this key make destructive calls with confirm=true without asking "
            "a person (CI or scheduled jobs only).",
        ),
    ] = False,
    print_secret_only: Annotated[bool, typer.Option(help="Print only the secret (for scripts).")] = False,
    config: ConfigOption = None,
) -> None:
    """Create a key; its secret is printed once and only its hash is stored."""
    conf = settings(ctx, config)
    secret, record = _with_store(
        conf,
        lambda store: store.create(
            name=name,
            owner=owner,
            team=team,
            admin=admin,
            allowed_models=tuple(model) if model else None,
            allowed_tools=tuple(tool) if tool else None,
            rpm=rpm,
            tpm=tpm,
            budget_daily_usd=budget_daily,
            budget_monthly_usd=budget_monthly,
            metadata={"mcp_unattended": True} if mcp_unattended else None,
        ),
    )
    if print_secret_only:
        echo(secret)
        return
    echo(f"Created key {record.id} ({record.name}, team {record.team}). Its secret, shown only now:")
    echo(f"  {secret}")


def _row(rec: Any) -> dict[str, Any]:
    data = dataclasses.asdict(rec)
    data.pop("hash", None)
    return data


@app.command("list")
def list_keys(
    ctx: typer.Context,
    all_: Annotated[bool, typer.Option("--all", help="Include revoked keys.")] = False,
    json_: JsonOption = False,
    config: ConfigOption = None,
) -> None:
    """List keys (never their secrets)."""
    conf = settings(ctx, config)
    records = _with_store(conf, lambda store: store.list(include_revoked=all_))
    rows = [_row(r) for r in records]
    if json_:
        echo(orjson.dumps(rows, option=orjson.OPT_INDENT_2).decode())
        return
    echo(
        table(
            rows,
            [
                "id",
                "name",
                "team",
                "prefix",
                "admin",
                "rpm",
                "tpm",
                "budget_daily_usd",
                "budget_monthly_usd",
                "allowed_models",
                "revoked_at",
            ],
        )
    )


@app.command()
def revoke(
    ctx: typer.Context,
    key_id: Annotated[str, typer.Argument(help="The key's id (key_…), from `sophia keys list`.")],
    config: ConfigOption = None,
) -> None:
    """Revoke a key; gateways refuse it within storage.key_cache_ttl seconds."""
    conf = settings(ctx, config)
    if not _with_store(conf, lambda store: store.revoke(key_id)):
        fail(f"no active key {key_id!r}")
    echo(f"Revoked {key_id}.")


@app.command()
def local(ctx: typer.Context, config: ConfigOption = None) -> None:
    """Print the local admin key that the first `sophia run` created."""
    from sophia.accounts.local import LOCAL_KEY_FILE, read_local_key

    conf = settings(ctx, config)
    path = conf.config_dir / LOCAL_KEY_FILE
    secret = read_local_key(path)
    if secret is None:
        fail(f"no local key at {path}: `sophia run` creates one when the key store is empty")
    echo(secret)
