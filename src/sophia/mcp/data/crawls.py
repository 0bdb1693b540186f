"""``crawl_site``, ``job_status``, ``cancel_crawl``: a site crawled by the collector's workers, watched live.

``crawl_site`` queues the crawl (arq over Redis when configured, else in this process), then reports
progress notifications for up to ``wait_s`` seconds and returns the job id with the coverage so far;
the crawl goes on. Cancelling the call (MCP cancellation) cancels the crawl; ``cancel_crawl`` does the
same later.
"""

from __future__ import annotations

import asyncio
from typing import Any

from sophia.collect.crawl import CrawlSpec, Progress
from sophia.collect.service import CRAWLER
from sophia.mcp.context import ToolContext
from sophia.mcp.data.schemas import CrawlIn, CrawlOut, JobIn
from sophia.mcp.tools import ToolSet

tools = ToolSet()


def crawl_out(progress: Progress, shared: bool) -> CrawlOut:
    return CrawlOut(
        job_id=progress.crawl_id,
        status=progress.status,
        start_url=progress.start_url,
        seen=progress.seen,
        pending=progress.pending,
        stats=progress.stats,
        errors=progress.errors,
        shared=shared,
    )


@tools.tool(title="Crawl a site", read_only=False, destructive=False, idempotent=False, open_world=True)
async def crawl_site(ctx: ToolContext, args: CrawlIn) -> CrawlOut:
    """Crawl a site (same origin, robots.txt obeyed, polite) into the collected pages; returns a job id, reports progress, cancellable."""
    service = await ctx.service(CRAWLER)
    settings = ctx.services.settings.collect
    spec = CrawlSpec(args.url, max_pages=args.max_pages, max_depth=args.max_depth, delay=settings.delay)
    crawl_id = await service.crawler.start(spec)

    async def report(progress: Progress) -> Any:
        handled = progress.seen - progress.pending
        await ctx.progress(f"{handled}/{progress.seen} pages ({progress.stats.get('fetched', 0)} fetched)")

    try:
        progress = await service.crawler.wait(crawl_id, args.wait_s, report)
    except asyncio.CancelledError:
        await asyncio.shield(service.crawler.cancel(crawl_id))
        raise
    return crawl_out(progress, service.shared)


@tools.tool(title="Crawl status", read_only=True, destructive=False, idempotent=True, open_world=False)
async def job_status(ctx: ToolContext, args: JobIn) -> CrawlOut:
    """A crawl's progress and coverage: pages fetched, skipped by robots.txt, failed, duplicates."""
    service = await ctx.service(CRAWLER)
    return crawl_out(await service.crawler.progress(args.job_id), service.shared)


@tools.tool(title="Cancel a crawl", read_only=False, destructive=False, idempotent=True, open_world=False)
async def cancel_crawl(ctx: ToolContext, args: JobIn) -> CrawlOut:
    """Stop a crawl: queued pages are dropped, pages already collected stay."""
    service = await ctx.service(CRAWLER)
    return crawl_out(await service.crawler.cancel(args.job_id), service.shared)
