"""``sophia usage``: spend from the ledger, grouped by model, team, task type…"""

from __future__ import annotations

import asyncio
import dataclasses
from time import time
from typing import Annotated, Any

import orjson
import typer

from sophia.accounts.ledger import Ledger
from sophia.cli.common import ConfigOption, JsonOption, echo, fail, settings, table
from sophia.errors import SophiaError
from sophia.gateway.admin import GROUPS
from sophia.timeparse import parse_since


def usage(
    ctx: typer.Context,
    since: Annotated[
        str, typer.Option(help="Start of the period: 24h, 7d, today, month, or a date.")
    ] = "30d",
    by: Annotated[str, typer.Option(help=f"Group by, comma-separated: {', '.join(GROUPS)}.")] = "model",
    recommend: Annotated[
        bool,
        typer.Option(
            "--recommend",
            help="Per task type and model: cost and a quality proxy, and where a cheaper model did as well.",
        ),
    ] = False,
    json_: JsonOption = False,
    config: ConfigOption = None,
) -> None:
    """Print requests, tokens and spend over a period from the usage ledger (or, with --recommend, savings)."""
    conf = settings(ctx, config)
    group_by = [g.strip() for g in by.split(",") if g.strip()]
    unknown = [g for g in group_by if g not in GROUPS]
    if unknown:
        fail(f"--by takes {', '.join(GROUPS)}; not {', '.join(unknown)}", code=2)
    try:
        start = parse_since(since)
        if recommend:
            return _recommend(conf.database_url, start, json_)
        rows = asyncio.run(_report(conf.database_url, start, group_by))
    except SophiaError as exc:
        fail(exc.message)
    if json_:
        echo(orjson.dumps(rows, option=orjson.OPT_INDENT_2).decode())
        return
    total = sum(r.get("cost_usd") or 0.0 for r in rows)
    requests = sum(r.get("requests") or 0 for r in rows)
    cols = [
        *group_by,
        "requests",
        "errors",
        "prompt_tokens",
        "completion_tokens",
        "cost_usd",
        "avg_latency_ms",
    ]
    echo(table(rows, cols))
    echo(f"\n{requests} requests, ${total:.6f} since {since}")


def _recommend(url: str, since: float, as_json: bool) -> None:
    from sophia.router.recommend import analyse, format_analysis

    async def rows() -> list[dict[str, Any]]:
        ledger = await Ledger.open(url)
        try:
            return await ledger.rows(since, time())
        finally:
            await ledger.close()

    analysis = analyse(asyncio.run(rows()), period_days=max((time() - since) / 86_400, 1 / 24))
    if as_json:
        data = {
            "proxy": analysis.proxy,
            "recommendations": [r.text for r in analysis.recommendations],
            "cells": [dataclasses.asdict(c) for c in analysis.cells],
        }
        echo(orjson.dumps(data, option=orjson.OPT_INDENT_2).decode())
    else:
        echo(format_analysis(analysis))


async def _report(url: str, since: float, group_by: list[str]) -> list[dict[str, Any]]:
    ledger = await Ledger.open(url)
    try:
        return await ledger.report(since, time(), group_by)
    finally:
        await ledger.close()
