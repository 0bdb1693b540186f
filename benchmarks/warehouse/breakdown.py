"""Where run_sql's time goes for one query, beyond DuckDB's own: each step timed alone, interleaved.

Per repetition, in this order: the guard (`check`: sqlglot parse, walk, regenerate), the paging
rewrite (`Backend.paged_sql`: a second parse and the LIMIT wrapper), the engine on the statement
Sophia sends (fetching the page plus one row, no conversion) and on the original text under the
same LIMIT (the direct page), the two in turn going first, the JSON conversion of the page
(`to_json` on every value), then `Warehouse.query` whole and `run_sql` whole, each after clearing
the result cache (so both are misses), then `run_sql` on a cache hit and the SDK client's own check
of that result against the tool's output schema (`ClientSession.validate_tool_result`: every
`call_tool` of the SDK client runs it, jsonschema walking every value of the page). The rest follows
by difference: the warehouse's other work (the worker-thread hop, the data versions, the cursor,
the cache entry's size) and the MCP framing (key, tool dispatch, argument validation, the ledger
row, the output model and its JSON, the in-memory transport, the client's parsing)."""

from __future__ import annotations

import statistics
import time
from typing import Any

from harness import Sides, page_sql

from sophia.warehouse.backends.base import to_json
from sophia.warehouse.guard import check


async def breakdown(sides: Sides, sql: str, reps: int) -> dict[str, Any]:
    """Milliseconds of each step (the fastest of ``reps``: its cost with the least interference from
    the machine; medians beside them), and the parts of the overhead derived from the fastest."""
    steps: dict[str, list[float]] = {}

    def record(name: str, started: float) -> float:
        now = time.perf_counter()
        steps.setdefault(name, []).append((now - started) * 1000)
        return now

    backend = sides.warehouse.backend
    for rep in range(reps):
        t = time.perf_counter()
        checked = check(sql, backend.dialect)
        t = record("guard", t)
        paged = backend.paged_sql(checked.sql, sides.page + 1, 0)
        record("paging_rewrite", t)
        for engine in ("sophia", "direct") if rep % 2 == 0 else ("direct", "sophia"):  # either may go first
            t = time.perf_counter()
            if engine == "sophia":
                rows = sides.con.execute(paged).fetchmany(sides.page + 1)
                record("engine_sophia_sql", t)
            else:
                sides.con.execute(page_sql(sql, sides.page)).fetchall()
                record("engine_direct_page", t)
        t = time.perf_counter()
        [[to_json(v) for v in row] for row in rows[: sides.page]]
        record("to_json", t)
        sides.clear_result_cache()
        t = time.perf_counter()
        await sides.warehouse.query(sql)
        record("warehouse_query", t)
        sides.clear_result_cache()
        t = time.perf_counter()
        await sides.run_sql(sql)
        record("run_sql", t)
        t = time.perf_counter()
        hit = await sides.client.call_tool("run_sql", {"sql": sql})
        t = record("run_sql_hit", t)
        if (hit.structured_content or {}).get("cache") != "hit":
            raise RuntimeError("the repeated call was not a cache hit")
        await sides.client.session.validate_tool_result("run_sql", hit)
        record("client_output_validation", t)
    ms = {name: min(values) for name, values in steps.items()}
    own = ms["guard"] + ms["paging_rewrite"] + ms["engine_sophia_sql"] + ms["to_json"]
    parts = {
        "guard parse + check": ms["guard"],
        "paging rewrite (second sqlglot parse)": ms["paging_rewrite"],
        "engine: Sophia's SQL - original SQL": ms["engine_sophia_sql"] - ms["engine_direct_page"],
        "JSON conversion (to_json)": ms["to_json"],
        "warehouse other (thread hop, versions, cursor, cache put)": ms["warehouse_query"] - own,
        "MCP: the SDK client's output-schema validation (jsonschema)": ms["client_output_validation"],
        "MCP: the rest (key, dispatch, ledger, output model, transport)": ms["run_sql"]
        - ms["warehouse_query"]
        - ms["client_output_validation"],
    }
    return {
        "reps": reps,
        "steps_ms": {k: round(v, 3) for k, v in ms.items()},
        "steps_median_ms": {k: round(statistics.median(v), 3) for k, v in steps.items()},
        "overhead_ms": {k: round(v, 3) for k, v in parts.items()},
        "overhead_total_ms": round(ms["run_sql"] - ms["engine_direct_page"], 3),
        "hit_without_guard_ms": round(ms["run_sql_hit"] - ms["guard"], 3),
        "rows_in_page": min(len(rows), sides.page),
    }
