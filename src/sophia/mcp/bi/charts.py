"""``chart``: a Vega-Lite v5 spec built from a query's rows, validated against Vega-Lite's own JSON
schema, and rendered to PNG offline (``vl-convert-python``: Vega's JavaScript in an embedded engine).

No model-written code is ever executed: the spec is data built here from the chosen columns, and
the only thing a caller picks is which column goes on which channel. The schema
(``vega-lite-v5.20.1.schema.json.gz``, BSD-3-Clause, from the Vega-Lite project via Altair 5.5)
is bundled, so validation needs no network.
"""

from __future__ import annotations

import gzip
import json
import threading
from datetime import date
from importlib import resources
from typing import Any

from sophia.errors import InvalidRequest
from sophia.mcp.bi.schemas import ChartIn, ChartOut, Column
from sophia.mcp.bi.sources import rows_for
from sophia.mcp.context import ToolContext
from sophia.mcp.tools import ToolSet

tools = ToolSet()

SCHEMA_FILE = "vega-lite-v5.20.1.schema.json.gz"
VEGA_LITE = "https://vega.github.io/schema/vega-lite/v5.20.1.json"
VL_VERSION = "5.20"  # the vl-convert bundle that renders it
MAX_POINTS = 5_000
NUMERIC = ("INT", "DECIMAL", "DOUBLE", "FLOAT", "REAL", "NUMERIC", "HUGEINT", "BIGINT", "SMALLINT")
TEMPORAL = ("DATE", "TIME")

_validator: Any = None
_lock = threading.Lock()


def validator() -> Any:
    """The Draft-7 validator of the bundled Vega-Lite schema (loaded once)."""
    global _validator
    if _validator is None:
        with _lock:
            if _validator is None:
                import jsonschema

                raw = resources.files("sophia.mcp.bi").joinpath(SCHEMA_FILE).read_bytes()
                _validator = jsonschema.Draft7Validator(json.loads(gzip.decompress(raw)))
    return _validator


def field_type(column: Column) -> str:
    kind = column.type.upper()
    if any(k in kind for k in TEMPORAL):
        return "temporal"
    if any(k in kind for k in NUMERIC):
        return "quantitative"
    return "nominal"


def choose(
    columns: list[Column], x: str | None, y: str | None, color: str | None
) -> tuple[str, str, str | None]:
    """The columns for x, y and color: the ones asked for, else a time or category on x, a number on y
    and a second category on color."""
    names = [c.name for c in columns]
    for asked in (x, y, color):
        if asked is not None and asked not in names:
            raise InvalidRequest(f"the result has no column {asked!r}; it has {', '.join(names)}", param="x")
    kinds = {c.name: field_type(c) for c in columns}
    numbers = [n for n in names if kinds[n] == "quantitative" and n not in (x, color)]
    others = [n for n in names if kinds[n] != "quantitative" and n not in (y, color)]
    if y is None:
        if not numbers:
            raise InvalidRequest("the result has no numeric column to plot on y", param="y")
        y = numbers[-1]
    if x is None:
        temporal = [n for n in others if kinds[n] == "temporal"]
        pick = temporal or others or [n for n in names if n != y]
        if not pick:
            raise InvalidRequest("the result needs a second column to plot on x", param="x")
        x = pick[0]
    if color is None:
        rest = [n for n in others if n not in (x, y)]
        color = rest[0] if rest else None
    return x, y, color


def build_spec(args: ChartIn, columns: list[Column], rows: list[list[Any]]) -> dict[str, Any]:
    """The Vega-Lite spec: inline data values, one mark, typed channels."""
    x, y, color = choose(columns, args.x, args.y, args.color)
    kinds = {c.name: field_type(c) for c in columns}
    names = [c.name for c in columns]
    values = [dict(zip(names, (_plain(v) for v in row), strict=True)) for row in rows]
    mark = args.mark or ("line" if kinds[x] == "temporal" else "bar")
    encoding: dict[str, Any] = {
        "x": {"field": x, "type": kinds[x], "title": x},
        "y": {"field": y, "type": kinds[y], "title": y},
        "tooltip": [{"field": n, "type": kinds[n]} for n in names],
    }
    if kinds[x] == "nominal" and mark == "bar":
        encoding["x"]["sort"] = "-y"
    if color is not None:
        encoding["color"] = {"field": color, "type": kinds[color], "title": color}
    spec: dict[str, Any] = {
        "$schema": VEGA_LITE,
        "title": args.title or f"{y} by {x}" + (f" and {color}" if color else ""),
        "data": {"values": values},
        "mark": {"type": mark, "tooltip": True} if mark != "line" else {"type": "line", "point": True},
        "encoding": encoding,
        "width": 560,
        "height": 320,
    }
    errors = sorted(validator().iter_errors(spec), key=lambda e: list(e.path))
    if errors:
        raise InvalidRequest(f"the chart is not valid Vega-Lite: {errors[0].message[:300]}")
    return spec


def render_png(spec: dict[str, Any]) -> bytes:
    import vl_convert

    png: bytes = vl_convert.vegalite_to_png(spec, vl_version=VL_VERSION, scale=1)
    return png


def _plain(value: Any) -> Any:
    return value.isoformat() if isinstance(value, date) else value


@tools.tool(title="Chart", read_only=True, destructive=False, idempotent=True, open_world=False)
async def chart(ctx: ToolContext, args: ChartIn) -> ChartOut:
    """Chart SQL rows or a metrics query as a validated Vega-Lite v5 spec and a PNG."""
    import asyncio

    columns, rows, sql = await rows_for(ctx, args, limit=MAX_POINTS)
    if not rows:
        raise InvalidRequest("the query returned no rows to plot")
    spec = build_spec(args, columns, rows)
    png = await asyncio.to_thread(render_png, spec) if args.png else None
    out = ChartOut(spec=spec, sql=sql, points=len(rows))
    out._png = png
    return out
