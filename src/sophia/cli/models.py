"""``sophia models``: the models and aliases the gateway serves with this configuration."""

from __future__ import annotations

from typing import Any

import orjson
import typer

from sophia.cli.common import ConfigOption, JsonOption, echo, fail, settings, table
from sophia.errors import SophiaError


def models(ctx: typer.Context, json_: JsonOption = False, config: ConfigOption = None) -> None:
    """List enabled models (with prices per million tokens and context windows) and aliases."""
    from sophia.providers.catalog import Catalog

    conf = settings(ctx, config)
    try:
        catalog = Catalog(conf)
    except SophiaError as exc:
        fail(exc.message)
    rows: list[dict[str, Any]] = []
    for model_id, owner, info, alias in catalog.listing():
        row: dict[str, Any] = {"id": model_id, "provider": owner}
        if info is not None:
            row |= {
                "input_usd_mtok": info.input_price,
                "output_usd_mtok": info.output_price,
                "context": info.context_window,
            }
        if alias is not None:
            row["chain"] = " > ".join(alias.chain)
        rows.append(row)
    if json_:
        echo(orjson.dumps(rows, option=orjson.OPT_INDENT_2).decode())
        return
    echo(table(rows, ["id", "provider", "input_usd_mtok", "output_usd_mtok", "context", "chain"]))
