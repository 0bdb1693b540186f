"""The Business Intelligence MCP server (port 8094): the warehouse, its metrics and the documents.

One package of tools on the MCP base, like the AI server: ``data`` (datasets, tables, read-only
SQL), ``metrics`` (the dbt-format catalogue, queries, KPI reports), ``documents`` (cited search),
``ask`` (questions answered metrics first) and ``charts`` (Vega-Lite specs and PNGs). The rooms it
stands on: ``sophia.warehouse`` (engines, guard, result cache, metrics) and ``sophia.knowledge``.
"""

from __future__ import annotations

from sophia.mcp.bi import ask, charts, data, documents, metrics
from sophia.mcp.tools import ToolGroup

group = ToolGroup(
    "bi",
    port=8094,
    title="Sophia Business Intelligence",
    instructions=(
        "The company's warehouse (deals, accounts, reps, calls, revenue, usage), its defined metrics and "
        "its documents (sales-call transcripts). Prefer list_metrics + query_metrics or ask_data to raw SQL; "
        "run_sql is read-only and paged; search_documents cites every passage it returns."
    ),
    sets=[data.tools, metrics.tools, documents.tools, ask.tools, charts.tools],
)
