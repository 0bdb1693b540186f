"""``fetch_page`` and ``search_collected``: one page fetched safely and kept; the kept pages searched, cited.

``fetch_page`` goes through ``sophia.collect.Collector``: the SSRF-safe fetcher, a conditional GET
when the page is stored, main-text extraction, the page store and the knowledge room's index.
``search_collected`` searches what was collected (``kind: web``) and cites each passage with its URL.
"""

from __future__ import annotations

from typing import Any

from sophia.collect.service import COLLECTOR
from sophia.mcp.context import ToolContext
from sophia.mcp.data.schemas import FetchIn, PageOut, SearchCollectedIn, SearchOut, WebHit, plain
from sophia.mcp.tools import ToolSet

tools = ToolSet()


@tools.tool(title="Fetch a web page", read_only=False, destructive=False, idempotent=True, open_world=True)
async def fetch_page(ctx: ToolContext, args: FetchIn) -> PageOut:
    """Fetch an http(s) page (public addresses only), extract its main text and metadata, keep and index it for search_collected."""
    collector = await ctx.service(COLLECTOR)
    await ctx.progress(f"fetching {args.url[:200]}")
    page = await collector.fetch_page(args.url, render=args.render_js)
    text = page.text[: args.max_chars]
    note = None
    if args.render_js and page.via != "zenrows":
        note = "JavaScript was not run (no rendering service: set collect.zenrows.api_key); fetched directly."
    return PageOut(
        url=page.url,
        final_url=page.final_url,
        status=page.status,
        title=page.title,
        author=page.author,
        date=page.date,
        language=page.language,
        changed=page.changed,
        indexed=page.indexed,
        duplicate_of=page.duplicate_of,
        text=text,
        truncated=len(text) < len(page.text),
        links=len(page.links),
        redirects=page.redirects,
        elapsed_ms=page.elapsed_ms,
        via=page.via,
        note=note,
    )


def web_hit(hit: Any) -> WebHit:
    c = hit.citation
    meta = hit.metadata or {}
    return WebHit(
        title=c.title,
        url=c.url or str(meta.get("url") or ""),
        quote=c.quote,
        score=round(float(hit.score), 6),
        date=meta.get("date"),
        document_id=c.document_id,
        char_start=c.char_start,
        char_end=c.char_end,
    )


@tools.tool(
    title="Search collected pages", read_only=True, destructive=False, idempotent=True, open_world=False
)
async def search_collected(ctx: ToolContext, args: SearchCollectedIn) -> SearchOut:
    """Search the pages and articles collected so far (keywords + meaning); each hit quotes its passage and URL."""
    collector = await ctx.service(COLLECTOR)
    filters = {
        k: plain(v)
        for k, v in (
            ("domain", args.domain),
            ("source", args.source),
            ("date_from", args.date_from),
            ("date_to", args.date_to),
        )
        if v is not None
    }
    hits = await collector.search(args.query, k=args.k, filters=filters, mode=args.mode)
    return SearchOut(backend="local index", hits=[web_hit(h) for h in hits])
