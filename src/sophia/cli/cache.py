"""``sophia cache``: hit rates and savings, purges, data-version bumps and false-hit reports.

Works on the configured store directly (no running gateway needed). Running gateways honour a purge
or a bump within ``cache.confirm_interval`` (1 s): a hit is confirmed against the store, and tag
versions read from it, at most that long after the last time (PostgreSQL and Redis instances hear
bumps at once).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import orjson
import typer

from sophia.cli.common import ConfigOption, JsonOption, echo, fail, settings
from sophia.errors import SophiaError
from sophia.settings import Settings
from sophia.timeparse import parse_since

if TYPE_CHECKING:
    from sophia.accounts.ledger import Ledger
    from sophia.cache.admin import Reports
    from sophia.cache.cache import ResponseCache

app = typer.Typer(
    help="Inspect and manage the response cache (stats, purge, bump, report).", no_args_is_help=True
)
T = TypeVar("T")


def _with_cache(conf: Settings, action: Callable[[ResponseCache, Ledger, Reports], Awaitable[T]]) -> T:
    from sophia.accounts.ledger import Ledger
    from sophia.cache import ResponseCache
    from sophia.cache.admin import Reports
    from sophia.storage import open_database

    async def go() -> T:
        cache = await ResponseCache.open(conf.cache, conf.database_url, conf.storage.redis_url, serve=False)
        try:
            db = await open_database(conf.database_url)
            try:
                ledger = await Ledger.open(db)
                try:
                    return await action(cache, ledger, Reports(db))
                finally:
                    await ledger.close()
            finally:
                await db.close()
        finally:
            await cache.close()

    try:
        return asyncio.run(go())
    except SophiaError as exc:
        fail(exc.message)


def _print(data: dict[str, Any], as_json: bool) -> None:
    if as_json:
        echo(orjson.dumps(data, option=orjson.OPT_INDENT_2).decode())
        return
    flat = {k: v for k, v in data.items() if k != "aliases"}
    width = max(len(k) for k in flat)
    echo("\n".join(f"{k.ljust(width)}  {v}" for k, v in flat.items()))
    for alias, a in (data.get("aliases") or {}).items():
        echo(_alias_line(alias, a))


_RULES = {
    "learned": "learned rule",
    "threshold": "threshold rule",
    "withhold": "learning: the same words only",
    "backstop": "backstop: checks found it over budget, hits withheld while it re-learns",
}


def _alias_line(alias: str, a: dict[str, Any]) -> str:
    """One alias's wrong-answer budget: hits, the estimated error of served hits, checks and their cost."""
    budget = a.get("max_error_rate")
    head = f"alias {alias}: budget {budget:.1%}" if budget is not None else f"alias {alias}: no budget"
    parts = [
        f"{head} ({_RULES.get(a['state'], a['state'])}, {a['labelled']} labelled)",
        f"hits {a['hits_semantic']} semantic, {a['hits_exact']} exact",
    ]
    if a["checks"]:
        low, high = a["error_interval"]
        parts.append(
            f"estimated error {a['error_rate']:.1%} [{low:.1%}, {high:.1%}] from {a['checks']} checks"
        )
    else:
        parts.append("estimated error unknown (no checks yet)")
    parts.append(
        f"checks {a['checks_in_period']} in period ({a['check_share']:.1%} of would-be hits, "
        f"${a['check_cost_usd_in_period']:.6f})"
    )
    if a.get("held"):
        parts.append(f"{a['held']} held by the backstop ({a['held_wrong']} would have been wrong)")
    if a.get("reports"):
        parts.append(f"{a['reports']} reported wrong")
    if a.get("replaced"):
        parts.append(
            f"one question answered twice: {a['replaced_different']} of {a['replaced']} judged different"
        )
    return "; ".join(parts)


@app.command()
def stats(
    ctx: typer.Context,
    since: Annotated[
        str, typer.Option(help="Start of the period: 24h, 7d, today, month, or a date.")
    ] = "30d",
    json_: JsonOption = False,
    config: ConfigOption = None,
) -> None:
    """Hit rate (exact / semantic), dollars saved and false hits reported over a period; entries stored;
    per alias with a wrong-answer budget: the estimated error of served hits and the checks made."""
    from sophia.cache import admin

    conf = settings(ctx, config)
    try:
        start = parse_since(since)
    except SophiaError as exc:
        fail(exc.message, code=2)
    data = _with_cache(conf, lambda cache, ledger, reports: admin.stats(cache, ledger, reports, start))
    data["since"] = datetime.fromtimestamp(start, UTC).isoformat(timespec="seconds")
    _print(data, json_)


@app.command()
def purge(
    ctx: typer.Context,
    tag: Annotated[str | None, typer.Option(help="Entries that depended on this data source.")] = None,
    model: Annotated[str | None, typer.Option(help="Entries of this model or alias (as requested).")] = None,
    team: Annotated[str | None, typer.Option(help="Entries of this team.")] = None,
    all_: Annotated[bool, typer.Option("--all", help="Every entry (when no criterion is given).")] = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    config: ConfigOption = None,
) -> None:
    """Delete cached answers matching every criterion given (or all of them with --all)."""
    from sophia.cache import admin

    conf = settings(ctx, config)
    if tag is None and model is None and team is None and not all_:
        fail("name a --tag, --model or --team to purge, or --all for every entry", code=2)
    what = (
        ", ".join(f"{k}={v}" for k, v in (("tag", tag), ("model", model), ("team", team)) if v)
        or "every entry"
    )
    if not yes and not typer.confirm(f"Delete cached answers ({what})?"):
        fail("nothing deleted", code=1)
    deleted = _with_cache(
        conf,
        lambda cache, _ledger, _reports: admin.purge(cache, tag=tag, model=model, team=team, everything=all_),
    )
    echo(f"Deleted {deleted} cached answer{'s' if deleted != 1 else ''} ({what}).")


@app.command()
def bump(
    ctx: typer.Context,
    tag: Annotated[str, typer.Argument(help="The data source whose data changed, e.g. crm.deals.")],
    config: ConfigOption = None,
) -> None:
    """Data-version bump: every answer that depended on TAG (metadata.sources) is invalid from now on."""
    conf = settings(ctx, config)
    count = _with_cache(conf, lambda cache, _ledger, _reports: cache.bump(tag))
    echo(f"Bumped {tag}: {count} cached answer{'s' if count != 1 else ''} invalidated.")


@app.command()
def report(
    ctx: typer.Context,
    request_id: Annotated[str, typer.Argument(help="The x-request-id of the request answered wrongly.")],
    config: ConfigOption = None,
) -> None:
    """Report a false hit: the entry that answered REQUEST_ID is deleted and the report counted."""
    from sophia.cache import admin

    conf = settings(ctx, config)
    done = _with_cache(
        conf, lambda cache, ledger, reports: admin.report_false_hit(cache, ledger, reports, request_id, "cli")
    )
    echo(
        f"Reported {request_id} ({done['kind']} hit); entry {done['entry_id']} "
        + ("deleted." if done["removed"] else "was already gone.")
    )
