"""``sophia collect fetch|crawl|feeds|search|status|cancel|worker``: the collector from the shell.

``fetch`` reads one page (the SSRF-safe fetcher; ``collect.allow`` opens internal sources), keeps it
and indexes it; ``crawl`` crawls a site with a progress bar and prints the coverage report; ``feeds``
polls RSS/Atom feeds (once, or ``--watch``);
``worker`` works crawl jobs from Redis (start one per machine to share crawls); ``search`` searches
what was collected, each hit with its URL and the verbatim passage.
"""

from __future__ import annotations

import asyncio
import sys
from typing import TYPE_CHECKING, Annotated, Any, Literal, TypeVar

import orjson
import typer

from sophia.cli.common import ConfigOption, JsonOption, echo, fail, run_services, settings

if TYPE_CHECKING:
    from sophia.collect.crawl import Progress
    from sophia.container import Services

T = TypeVar("T")
app = typer.Typer(
    help="Collect web pages and sites safely, and search them with sources.", no_args_is_help=True
)


@app.command("fetch")
def fetch(
    ctx: typer.Context,
    url: Annotated[
        str, typer.Argument(help="An http(s) URL (public addresses, or those collect.allow opens).")
    ],
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Fetch one page, extract its main text, keep it and index it (unchanged pages cost a 304)."""
    from sophia.collect.service import COLLECTOR

    async def go(services: Services) -> Any:
        return await (await services.get(COLLECTOR)).fetch_page(url)

    page = run_services(settings(ctx, config), go)
    if as_json:
        echo(orjson.dumps(page.__dict__).decode())
        return
    state = (
        "unchanged"
        if not page.changed
        else f"copy of {page.duplicate_of}"
        if page.duplicate_of
        else "indexed"
    )
    echo(f"{page.final_url} (HTTP {page.status}, {state}, {page.elapsed_ms:.0f} ms)")
    echo(
        f"title: {page.title}\nauthor: {page.author or '-'}  date: {page.date or '-'}  language: {page.language or '-'}"
    )
    echo(f"links: {len(page.links)}  text: {len(page.text)} characters\n\n{page.text[:1500]}")


def _bar(progress: Progress) -> str:
    done = progress.seen - progress.pending
    width = 30
    filled = int(width * done / progress.seen) if progress.seen else 0
    s = progress.stats
    return (
        f"[{'#' * filled}{'.' * (width - filled)}] {done}/{progress.seen} pages  fetched {s.get('fetched', 0)}  "
        f"robots {s.get('robots', 0)}  failed {s.get('failed', 0)}  dups {s.get('duplicates', 0)}"
    )


def report(progress: Progress) -> str:
    s = progress.stats
    lines = [
        f"crawl {progress.crawl_id} of {progress.start_url}: {progress.status}",
        f"  pages seen {progress.seen}, pending {progress.pending}",
        *(f"  {name:<11} {s.get(name, 0)}" for name in s),
    ]
    lines += [f"  error: {e}" for e in progress.errors]
    return "\n".join(lines)


@app.command("crawl")
def crawl(
    ctx: typer.Context,
    url: Annotated[str, typer.Argument(help="The start page.")],
    config: ConfigOption = None,
    max_pages: Annotated[
        int | None, typer.Option(min=1, help="Pages at most (default collect.max_pages).")
    ] = None,
    max_depth: Annotated[
        int | None, typer.Option(min=0, help="Links followed at most (collect.max_depth).")
    ] = None,
    delay: Annotated[float | None, typer.Option(min=0, help="Seconds between requests to one host.")] = None,
    any_origin: Annotated[
        bool, typer.Option("--any-origin", help="Follow links to other sites too.")
    ] = False,
    no_robots: Annotated[
        bool, typer.Option("--ignore-robots", help="Do not read robots.txt (only for your own sites).")
    ] = False,
    source: Annotated[str, typer.Option(help="Source name the pages are indexed under.")] = "web",
    detach: Annotated[
        bool, typer.Option("--detach", help="Queue the crawl and return its id (Redis only).")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Crawl a site (same origin by default) with a progress bar; prints the coverage report."""
    from sophia.collect.crawl import CrawlSpec
    from sophia.collect.service import CRAWLER

    conf = settings(ctx, config)
    c = conf.collect

    async def go(services: Services) -> Progress:
        service = await services.get(CRAWLER)
        if detach and not service.shared:
            fail(
                "--detach needs Redis (collect.queue_url or storage.redis_url): in-process crawls end with this command"
            )
        spec = CrawlSpec(
            url,
            max_pages=max_pages or c.max_pages,
            max_depth=c.max_depth if max_depth is None else max_depth,
            same_origin=not any_origin,
            delay=c.delay if delay is None else delay,
            source=source,
            respect_robots=not no_robots,
        )
        crawl_id = await service.crawler.start(spec)
        if detach:
            return await service.crawler.progress(crawl_id)
        tty = sys.stderr.isatty()

        async def show(progress: Progress) -> None:
            line = _bar(progress)
            sys.stderr.write(f"\r{line}" if tty else f"{line}\n")
            sys.stderr.flush()

        try:
            done = await service.crawler.wait(crawl_id, timeout=float("inf"), on_progress=show)
        except asyncio.CancelledError:
            await service.crawler.cancel(crawl_id)
            raise
        if tty:
            sys.stderr.write("\n")
        return done

    progress = run_services(conf, go)
    echo(orjson.dumps(progress.as_dict()).decode() if as_json else report(progress))


@app.command("status")
def status(
    ctx: typer.Context,
    crawl_id: Annotated[str, typer.Argument(help="The crawl's id.")],
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """A crawl's progress and coverage report (crawls on Redis)."""
    from sophia.collect.service import queue_url

    conf = settings(ctx, config)
    if queue_url(conf) is None:
        fail("crawls are kept only on Redis (collect.queue_url or storage.redis_url)")
    progress = run_services(conf, lambda services: _crawler_call(services, "progress", crawl_id))
    echo(orjson.dumps(progress.as_dict()).decode() if as_json else report(progress))


@app.command("cancel")
def cancel(
    ctx: typer.Context,
    crawl_id: Annotated[str, typer.Argument(help="The crawl's id.")],
    config: ConfigOption = None,
) -> None:
    """Cancel a crawl: queued pages are dropped, pages in flight finish."""
    progress = run_services(
        settings(ctx, config), lambda services: _crawler_call(services, "cancel", crawl_id)
    )
    echo(report(progress))


async def _crawler_call(services: Services, method: str, crawl_id: str) -> Progress:
    from sophia.collect.service import open_crawler

    service = await open_crawler(services, worker=False)
    try:
        progress: Progress = await getattr(service.crawler, method)(crawl_id)
        return progress
    finally:
        await service.close()


@app.command("worker")
def worker(
    ctx: typer.Context,
    config: ConfigOption = None,
    burst: Annotated[
        bool,
        typer.Option(
            "--burst", help="Stop once the queue has been empty, with no job running, for a second."
        ),
    ] = False,
) -> None:
    """Work crawl jobs from Redis until stopped; start one per machine to share crawls."""
    from sophia.collect.service import COLLECTOR, open_crawler, queue_url

    conf = settings(ctx, config)
    if queue_url(conf) is None:
        fail("a crawl worker needs Redis: set collect.queue_url (or storage.redis_url)")

    async def go(services: Services) -> None:
        from sophia.collect.service import make_worker, run_until_idle, stop_worker

        await services.get(COLLECTOR)
        service = await open_crawler(services, worker=False)
        runner = make_worker(service.crawler, service.redis, conf)
        echo(f"crawl worker on queue {conf.collect.queue_name} ({conf.collect.workers} jobs at a time)")
        try:
            await (run_until_idle(runner) if burst else runner.async_run())
        finally:
            await stop_worker(runner)
            await service.close()

    run_services(conf, go)


@app.command("feeds")
def feeds(
    ctx: typer.Context,
    urls: Annotated[
        list[str] | None, typer.Argument(help="Feeds to poll now (added to the schedule).")
    ] = None,
    config: ConfigOption = None,
    watch: Annotated[bool, typer.Option("--watch", help="Keep polling the feeds that are due.")] = False,
    as_json: JsonOption = False,
) -> None:
    """Poll RSS/Atom feeds (the given ones, else collect.feeds when due); new stories are indexed."""
    from sophia.collect.service import COLLECTOR

    conf = settings(ctx, config)

    def line(feed: str, result: Any) -> str:
        if not hasattr(result, "new"):
            return f"{feed}: error: {getattr(result, 'message', type(result).__name__)}"
        fresh = [a for a in result.new if not a.syndicated]
        state = " (not modified)" if result.not_modified else ""
        titles = "".join(f"\n  + {a.title}" for a in fresh[:10])
        return f"{feed}: {len(fresh)} new, {result.syndicated} syndicated, {result.duplicates} seen before{state}{titles}"

    async def go(services: Services) -> None:
        collector = await services.get(COLLECTOR)
        first = True
        while first or watch:
            results = await collector.poll_feeds(urls if first else None)
            first = False
            if as_json:
                echo(orjson.dumps({f: line(f, r) for f, r in results.items()}).decode())
            else:
                for feed, result in results.items():
                    echo(line(feed, result))
                if not results and not watch:
                    echo("no feed is due (set collect.feeds, or pass feed URLs)")
            if watch:
                await asyncio.sleep(min(60.0, conf.collect.feed_interval))

    run_services(conf, go)


@app.command("search")
def search(
    ctx: typer.Context,
    text: Annotated[str, typer.Argument(help="What to look for.")],
    config: ConfigOption = None,
    k: Annotated[int, typer.Option("-k", min=1, max=50, help="Hits to show.")] = 5,
    domain: Annotated[str | None, typer.Option(help="Only pages of this domain.")] = None,
    mode: Annotated[
        Literal["hybrid", "text", "vector"], typer.Option(help="hybrid, text or vector.")
    ] = "hybrid",
    as_json: JsonOption = False,
) -> None:
    """Search collected pages; every hit shows its URL and the verbatim passage."""
    from sophia.collect.service import COLLECTOR

    async def go(services: Services) -> Any:
        filters = {"domain": domain} if domain else {}
        return await (await services.get(COLLECTOR)).search(text, k=k, filters=filters, mode=mode)

    hits = run_services(settings(ctx, config), go)
    if as_json:
        echo(orjson.dumps([{"score": h.score, "citation": h.citation.to_dict()} for h in hits]).decode())
        return
    if not hits:
        echo("no collected page matches")
    for n, hit in enumerate(hits, 1):
        c = hit.citation
        echo(f"{n}. {c.title} <{c.url}> ({hit.score:.3f})\n   {c.quote[:300]}")
