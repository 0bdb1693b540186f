"""``sophia demo-data``, ``sophia warehouse`` and ``sophia knowledge``: the BI rooms from the shell.

``demo-data`` builds the deterministic demo warehouse (DuckDB by default, PostgreSQL with
``--postgres``), records the load (data versions and the gateway cache's ``warehouse.<table>`` tags
move, so no answer computed from older data is served again) and indexes the call transcripts.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal, TypeVar, cast

import orjson
import typer

from sophia.cli.common import ConfigOption, JsonOption, echo, fail, run_services, settings, table
from sophia.errors import SophiaError

if TYPE_CHECKING:
    from sophia.container import Services

T = TypeVar("T")
DEMO_SOURCE = "demo-calls"

warehouse_app = typer.Typer(
    help="Query the warehouse and record loads (read-only, guarded).", no_args_is_help=True
)
knowledge_app = typer.Typer(help="Index documents and search them with citations.", no_args_is_help=True)


class _Progress:
    """One status line on a terminal (a line per step elsewhere)."""

    def __init__(self) -> None:
        self.tty = sys.stderr.isatty()
        self.last = ""

    def __call__(self, step: str, done: float) -> None:
        line = f"  {step}: {done:4.0%}"
        if self.tty:
            sys.stderr.write("\r" + line.ljust(60))
        elif step != self.last:
            sys.stderr.write(line + "\n")
        self.last = step
        sys.stderr.flush()

    def close(self) -> None:
        if self.tty:
            sys.stderr.write("\n")


def demo_data(
    ctx: typer.Context,
    config: ConfigOption = None,
    scale: Annotated[
        float,
        typer.Option(min=0.001, max=100.0, help="Size: 1.0 is ~2,000 accounts and a 1M-row fact table."),
    ] = 1.0,
    seed: Annotated[int, typer.Option(help="Random seed (same scale and seed: the same data).")] = 0,
    path: Annotated[
        Path | None, typer.Option(help="DuckDB file to write (default: the data folder's warehouse).")
    ] = None,
    postgres: Annotated[
        str | None, typer.Option(metavar="DSN", help="Also load the same data into this PostgreSQL database.")
    ] = None,
    schema: Annotated[str, typer.Option(help="PostgreSQL schema for --postgres.")] = "public",
    index: Annotated[bool, typer.Option(help="Index the call transcripts into the knowledge base.")] = True,
    if_missing: Annotated[
        bool, typer.Option("--if-missing", help="Do nothing when warehouse.url is set or the file exists.")
    ] = False,
) -> None:
    """Build the demo warehouse of a software company selling to property managers: accounts, reps,
    deals, calls with transcripts, tickets, usage, invoices and payments over three years (2024-01-01
    to 2026-11-30), deterministic. `make run` builds it when no warehouse is configured."""
    from sophia.warehouse.demo import TABLES, build_duckdb, load_postgres, transcript_documents
    from sophia.warehouse.service import DEMO_FILE

    conf = settings(ctx, config)
    target = path or conf.data_dir / DEMO_FILE
    if if_missing and (target.is_file() or (path is None and conf.warehouse.url)):
        echo(f"a warehouse is configured or {target} exists (--if-missing: nothing to do)")
        return
    started = time.perf_counter()
    progress = _Progress()
    try:
        counts = build_duckdb(target, scale=scale, seed=seed, progress=progress)
    except SophiaError as exc:
        fail(exc.message)
    finally:
        progress.close()
    rows = sum(counts.values())
    echo(f"built {target}: {len(counts)} tables, {rows:,} rows in {time.perf_counter() - started:.1f} s")
    if postgres:
        try:
            load_postgres(target, postgres, schema=schema)
        except SophiaError as exc:
            fail(exc.message)
        echo(f"loaded the same rows into PostgreSQL (schema {schema})")

    async def record(services: Services) -> int:
        from sophia.warehouse.service import record_load

        await record_load(services, list(TABLES))
        if not index:
            return 0
        from sophia.knowledge import Document
        from sophia.knowledge.service import KNOWLEDGE

        kb = await services.get(KNOWLEDGE)
        docs = [Document.from_dict(d, source=DEMO_SOURCE) for d in transcript_documents(target)]
        await kb.sync(DEMO_SOURCE, docs)
        return len(docs)

    started = time.perf_counter()
    indexed = run_services(conf, record)
    if index:
        echo(f"indexed {indexed} call transcripts in {time.perf_counter() - started:.1f} s")


@warehouse_app.command("tables")
def tables(ctx: typer.Context, config: ConfigOption = None, as_json: JsonOption = False) -> None:
    """The warehouse's tables and their row counts."""
    from sophia.warehouse.service import WAREHOUSE

    async def go(services: Services) -> list[dict[str, Any]]:
        found = await (await services.get(WAREHOUSE)).datasets()
        return [{"table": t.name, "rows": t.rows, "columns": t.columns} for t in found]

    rows = run_services(settings(ctx, config), go)
    echo(orjson.dumps(rows).decode() if as_json else table(rows, ["table", "rows", "columns"]))


@warehouse_app.command("query")
def query(
    ctx: typer.Context,
    sql: Annotated[str, typer.Argument(help="One read-only statement.")],
    config: ConfigOption = None,
    limit: Annotated[int, typer.Option(min=1, max=10_000, help="Rows to show.")] = 50,
    as_json: JsonOption = False,
) -> None:
    """Run one read-only statement through the same guard as the MCP tool."""
    from sophia.warehouse.service import WAREHOUSE

    async def go(services: Services) -> Any:
        return await (await services.get(WAREHOUSE)).query(sql, limit=limit)

    result = run_services(settings(ctx, config), go)
    names = [c.name for c in result.columns]
    records = [dict(zip(names, row, strict=True)) for row in result.rows]
    if as_json:
        echo(orjson.dumps({"columns": names, "rows": result.rows, "sql": result.sql}).decode())
        return
    echo(table(records, names))
    more = " (more: raise --limit)" if result.truncated else ""
    echo(f"{result.row_count} rows{more}, {result.elapsed_ms:.1f} ms, cache {result.cache}")


@warehouse_app.command("loaded")
def loaded(
    ctx: typer.Context,
    tables: Annotated[list[str], typer.Argument(help="Tables that were (re)loaded.")],
    config: ConfigOption = None,
) -> None:
    """Record that tables were loaded (by dbt, an ELT job…): cached results and gateway answers computed
    from them are no longer served."""
    from sophia.warehouse.service import record_load

    async def go(services: Services) -> dict[str, int]:
        return await record_load(services, tables)

    versions = run_services(settings(ctx, config), go)
    for name, version in versions.items():
        echo(f"{name}: data version {version}")


@knowledge_app.command("ingest")
def ingest(
    ctx: typer.Context,
    paths: Annotated[list[Path], typer.Argument(help="Files or folders (.md, .txt, .pdf with sophia[pdf]).")],
    config: ConfigOption = None,
    source: Annotated[
        str, typer.Option(help="Source name; re-ingesting a source replaces what changed.")
    ] = "files",
) -> None:
    """Index documents; a changed file is re-indexed, an unchanged one is not."""
    from sophia.knowledge.service import KNOWLEDGE

    docs = _documents(paths, source)
    if not docs:
        fail("no .md, .markdown, .txt or .pdf file found in the paths given")

    async def go(services: Services) -> Any:
        return await (await services.get(KNOWLEDGE)).ingest(docs)

    result = run_services(settings(ctx, config), go)
    echo(orjson.dumps(result.to_dict()).decode())


KINDS = {".md": "markdown", ".markdown": "markdown", ".txt": "text", ".pdf": "pdf"}


def _documents(paths: list[Path], source: str) -> list[Any]:
    """The files under ``paths`` as documents (id: the path as given; a PDF needs sophia[pdf])."""
    from sophia.knowledge import Document
    from sophia.knowledge.pdf import read_pdf

    files = [
        f for p in paths for f in (sorted(p.rglob("*")) if p.is_dir() else [p]) if f.suffix.lower() in KINDS
    ]
    docs = []
    for f in files:
        kind = KINDS[f.suffix.lower()]
        try:
            if kind == "pdf":
                docs.append(read_pdf(f, id=str(f), title=f.name, source=source, metadata={}, url=None))
            else:
                text = f.read_text(encoding="utf-8")
                docs.append(Document(id=str(f), kind=cast(Any, kind), title=f.name, text=text, source=source))
        except (OSError, UnicodeDecodeError, SophiaError) as exc:
            fail(f"cannot read {f}: {getattr(exc, 'message', exc)}")
    return docs


@knowledge_app.command("search")
def search(
    ctx: typer.Context,
    text: Annotated[str, typer.Argument(help="What to look for.")],
    config: ConfigOption = None,
    k: Annotated[int, typer.Option("-k", min=1, max=50, help="Hits to show.")] = 5,
    mode: Annotated[
        Literal["hybrid", "text", "vector"], typer.Option(help="hybrid, text or vector.")
    ] = "hybrid",
    as_json: JsonOption = False,
) -> None:
    """Search the knowledge base; every hit cites its source span."""
    from sophia.knowledge.service import KNOWLEDGE

    async def go(services: Services) -> Any:
        return await (await services.get(KNOWLEDGE)).search(text, k=k, mode=mode)

    hits = run_services(settings(ctx, config), go)
    if as_json:
        echo(
            orjson.dumps(
                [{"score": h.score, "text": h.text, "citation": h.citation.__dict__} for h in hits]
            ).decode()
        )
        return
    for n, hit in enumerate(hits, 1):
        c = hit.citation
        where = f"turns {c.turn_start}-{c.turn_end}" if c.turn_start is not None else ""
        echo(f"{n}. [{c.title or c.document_id}] {where} ({hit.score:.3f})\n   {c.quote[:300]}")
