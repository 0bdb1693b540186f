"""``search_web``, ``news``, ``business_research`` and ``find_leads``: research with its sources shown.

* ``search_web`` asks Tavily when ``collect.tavily.api_key`` is set; otherwise it searches the pages
  collected so far and says so (``backend``, ``note``).
* ``news`` polls RSS/Atom feeds (the ones given, else those due) and lists or searches the articles;
  syndicated copies are one story.
* ``business_research`` searches, reads the best pages, then has the gateway's model summarise the
  collected passages. Every sentence of the summary must cite a passage as ``[n]``: sentences that
  cite nothing, or a source that does not exist, are dropped (and counted); with nothing left, the
  passages themselves are the answer.
* ``find_leads`` combines the warehouse's accounts (size, region, PMS vendor) with companies named in
  collected pages, each lead with its evidence.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from sophia.collect.service import COLLECTOR
from sophia.errors import SophiaError
from sophia.mcp.context import ToolContext
from sophia.mcp.data.pages import web_hit
from sophia.mcp.data.schemas import (
    Article,
    Lead,
    LeadsIn,
    LeadsOut,
    NewsIn,
    NewsOut,
    ResearchIn,
    ResearchOut,
    SearchOut,
    SearchWebIn,
    Source,
    WebHit,
)
from sophia.mcp.tools import ToolSet

tools = ToolSet()
MODEL = "sophia/fast"
LOCAL = "local index"
_CITE = re.compile(r"\[(\d{1,2})\]")
_SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[A-Z\[\"'(])")


async def _twingly(ctx: ToolContext) -> Any:
    from sophia.collect.saas.twingly import TwinglyClient

    settings = ctx.services.settings.collect
    return TwinglyClient.from_settings(settings) if TwinglyClient.configured(settings) else None


async def _apify(ctx: ToolContext) -> Any:
    from sophia.collect.saas.apify import ApifyClient

    settings = ctx.services.settings.collect
    return ApifyClient.from_settings(settings) if ApifyClient.configured(settings) else None


async def _phantombuster(ctx: ToolContext) -> Any:
    from sophia.collect.saas.phantombuster import PhantomBusterClient

    settings = ctx.services.settings.collect
    if not PhantomBusterClient.configured(settings) or not settings.phantombuster.options.get("leads_agent"):
        return None
    return PhantomBusterClient.from_settings(settings)


async def _tavily(ctx: ToolContext) -> Any:
    from sophia.collect.saas.tavily import TavilyClient

    settings = ctx.services.settings.collect
    return TavilyClient.from_settings(settings) if TavilyClient.configured(settings) else None


DEFAULT_SEARCH_ACTOR = "apify/google-search-scraper"


def search_rows(items: list[dict[str, Any]]) -> list[WebHit]:
    """Web results from an Apify search Actor's dataset: rows with ``organicResults`` (Apify's Google
    Search Scraper) or rows that are results themselves (title, url, description/snippet)."""
    rows = [r for item in items for r in (item.get("organicResults") or [item])]
    hits = []
    for rank, row in enumerate(rows):
        url = row.get("url") or row.get("link")
        if isinstance(url, str) and url.startswith(("http://", "https://")):
            quote = row.get("description") or row.get("snippet") or ""
            hits.append(
                WebHit(title=str(row.get("title") or url), url=url, quote=str(quote), score=1 / (rank + 1))
            )
    return hits


@tools.tool(title="Search the web", read_only=True, destructive=False, idempotent=True, open_world=True)
async def search_web(ctx: ToolContext, args: SearchWebIn) -> SearchOut:
    """Search the web (Tavily or an Apify Actor when configured; else the collected pages, labelled)."""
    client = await _tavily(ctx)
    if client is not None:
        async with client:
            results = await client.search(
                args.query, max_results=args.k, topic=args.topic, include_domains=args.include_domains
            )
        hits = [
            WebHit(title=r.title, url=r.url, quote=r.content, score=float(r.score or 0.0), date=r.published)
            for r in results
        ]
        return SearchOut(backend="tavily", hits=hits)
    apify = await _apify(ctx)
    if apify is not None:
        actor = apify.options.get("search_actor", DEFAULT_SEARCH_ACTOR)
        query = " ".join([args.query, *(f"site:{d}" for d in args.include_domains)])
        async with apify:
            items = await apify.run_and_collect(
                actor, {"queries": query, "maxPagesPerQuery": 1, "resultsPerPage": args.k}, max_items=50
            )
        return SearchOut(backend=f"apify:{actor}", hits=search_rows(items)[: args.k])
    collector = await ctx.service(COLLECTOR)
    filters: dict[str, Any] = {"source": "news"} if args.topic == "news" else {}
    if args.include_domains:
        filters["domain"] = [d.lower().removeprefix("www.") for d in args.include_domains]
    found = await collector.search(args.query, k=args.k, filters=filters)
    return SearchOut(
        backend=LOCAL,
        note="no web search service is configured (collect.tavily.api_key): these are the pages collected so far",
        hits=[web_hit(h) for h in found],
    )


@tools.tool(title="News", read_only=False, destructive=False, idempotent=False, open_world=True)
async def news(ctx: ToolContext, args: NewsIn) -> NewsOut:
    """Poll RSS/Atom feeds (given now, configured when due); list or search the news (Twingly when configured); copies of one story merged."""
    collector = await ctx.service(COLLECTOR)
    results = await collector.poll_feeds(args.feeds or None)
    polled = {
        feed: (
            f"{len([a for a in r.new if not a.syndicated])} new, {r.syndicated} syndicated copies"
            + (" (not modified)" if r.not_modified else "")
            if hasattr(r, "new")
            else f"error: {r.message if isinstance(r, SophiaError) else type(r).__name__}"
        )
        for feed, r in results.items()
    }
    poller = await collector.poller()
    twingly = await _twingly(ctx)
    if args.query and twingly is not None:
        async with twingly:
            start = dt.datetime.combine(args.since, dt.time(), dt.UTC) if args.since else None
            found = await twingly.search(args.query, max_results=args.k, since=start)
        return NewsOut(
            backend="twingly",
            polled=polled,
            articles=[
                Article(
                    title=a.title,
                    url=a.url,
                    published=a.published.isoformat() if a.published else None,
                    feed=a.source,
                    quote=a.text[:500],
                    people=list(a.authors),
                )
                for a in found
            ],
        )
    if args.query:
        filters: dict[str, Any] = {"source": "news"}
        if args.since:
            filters["date_from"] = args.since.isoformat()
        hits = await collector.search(args.query, k=args.k, filters=filters)
        articles = [
            Article(
                title=h.citation.title,
                url=h.citation.url,
                published=(h.metadata or {}).get("date"),
                feed=(h.metadata or {}).get("feed"),
                quote=h.citation.quote,
                companies=list((h.metadata or {}).get("companies") or []),
                people=list((h.metadata or {}).get("people") or []),
            )
            for h in hits
        ]
        return NewsOut(polled=polled, articles=articles)
    since = dt.datetime.combine(args.since, dt.time(), dt.UTC).timestamp() if args.since else None
    rows = await poller.store.articles(since=since, limit=args.k * 4)
    stories: dict[str, Article] = {}
    for a in rows:
        if a.story_id in stories:
            stories[a.story_id].copies += 1
            continue
        stories[a.story_id] = Article(
            title=a.title,
            url=a.url,
            published=a.published,
            feed=a.feed_url,
            quote=a.summary[:500],
            companies=list(a.entities.companies),
            people=list(a.entities.people),
        )
    return NewsOut(polled=polled, articles=list(stories.values())[: args.k])


# -- research -------------------------------------------------------------------------------------


def cited_summary(text: str, sources: int) -> tuple[str, int]:
    """``text`` kept to the sentences that cite an existing source as [n]; (summary, sentences dropped)."""
    kept, dropped = [], 0
    for sentence in _SENTENCE.split(text.strip()):
        sentence = sentence.strip()
        if not sentence:
            continue
        refs = [int(n) for n in _CITE.findall(sentence)]
        if refs and all(1 <= n <= sources for n in refs):
            kept.append(sentence)
        else:
            dropped += 1
    return " ".join(kept), dropped


def _prompt(question: str, sources: list[Source]) -> str:
    passages = "\n".join(f"[{s.n}] {s.title}: {s.quote[:700]}" for s in sources)
    return (
        "Answer the question from these passages only. Write 2-5 short sentences; end every sentence with "
        "the number of the passage it comes from, like [1] or [2][3]. If the passages do not answer it, say "
        f"what they do say, with citations.\n\nPassages:\n{passages}\n\nQuestion: {question}\nAnswer:"
    )


@tools.tool(title="Business research", read_only=False, destructive=False, idempotent=False, open_world=True)
async def business_research(ctx: ToolContext, args: ResearchIn) -> ResearchOut:
    """Research a question: search, read the best pages, summarise with every sentence citing a collected passage [n]."""
    collector = await ctx.service(COLLECTOR)
    fetched: list[str] = []
    backend = LOCAL
    urls = list(args.urls)
    client = await _tavily(ctx)
    if client is not None:
        backend = "tavily"
        async with client:
            urls += [r.url for r in await client.search(args.question, max_results=args.max_sources)]
    for url in dict.fromkeys(urls):
        await ctx.progress(f"reading {url[:200]}")
        try:
            page = await collector.fetch_page(url)
            fetched.append(page.final_url)
        except SophiaError:
            continue  # refused or unreachable: the other sources still count
    hits = await collector.search(args.question, k=args.max_sources)
    sources = [
        Source(n=n, title=h.citation.title, url=h.citation.url, quote=h.citation.quote)
        for n, h in enumerate(hits, start=1)
    ]
    if not sources:
        return ResearchOut(
            summary="Nothing collected answers this yet: pass urls to read, or configure web search.",
            sources=[],
            searched_with=backend,
            fetched=fetched,
        )
    text, _ = await ctx.ask_model(_prompt(args.question, sources), model=MODEL, max_tokens=350)
    summary, dropped = cited_summary(text, len(sources))
    if not summary:  # the model cited nothing usable: the passages are the answer
        summary = " ".join(f"{s.quote[:240].strip()} [{s.n}]" for s in sources[:3])
    return ResearchOut(
        summary=summary,
        sources=sources,
        searched_with=backend,
        fetched=fetched,
        dropped_sentences=dropped,
        model_calls=1,
    )


@tools.tool(title="Find leads", read_only=True, destructive=False, idempotent=True, open_world=False)
async def find_leads(ctx: ToolContext, args: LeadsIn) -> LeadsOut:
    """Companies by industry, size, region: warehouse accounts, collected pages, a PhantomBuster agent if set; with evidence."""
    from sophia.collect.entities import extract_entities
    from sophia.warehouse.service import WAREHOUSE

    leads: dict[str, Lead] = {}
    note = None
    try:
        warehouse = await ctx.service(WAREHOUSE)
        leads.update(await _accounts(warehouse, args))
    except SophiaError as exc:
        note = f"the warehouse could not be read ({exc.message}): leads from collected pages only"
    collector = await ctx.service(COLLECTOR)
    query = " ".join(p for p in (args.industry or "property management", args.region or "", "company") if p)
    hits = await collector.search(query, k=20)
    n = 0
    phantom = await _phantombuster(ctx)
    if phantom is not None:  # an agent that exports companies for a search (LinkedIn, Maps …)
        async with phantom:
            rows = await phantom.launch_and_collect(
                phantom.options["leads_agent"], {"search": query}, wait_s=120
            )
        for row in rows[:50]:
            name = row.get("companyName") or row.get("company") or row.get("name")
            if not isinstance(name, str) or not name.strip():
                continue
            lead = leads.setdefault(name.strip().lower(), Lead(company=name.strip(), customer=False))
            if len(lead.evidence) >= 3:
                continue
            n += 1
            url = row.get("companyUrl") or row.get("website") or row.get("url") or row.get("profileUrl")
            said = row.get("description") or row.get("industry") or row.get("tagline") or row.get("title")
            quote = str(said or row.get("name") or name)
            lead.evidence.append(Source(n=n, title="PhantomBuster agent result", url=url, quote=quote[:500]))
    for hit in hits:
        for company in extract_entities(hit.citation.quote).companies:
            key = company.lower()
            lead = leads.get(key) or Lead(company=company, customer=False)
            if len(lead.evidence) < 3:
                n += 1
                lead.evidence.append(
                    Source(n=n, title=hit.citation.title, url=hit.citation.url, quote=hit.citation.quote)
                )
            leads[key] = lead
    ranked = sorted(leads.values(), key=lambda lead: (-len(lead.evidence), -(lead.units or 0), lead.company))
    return LeadsOut(leads=ranked[: args.k], note=note)


async def _accounts(warehouse: Any, args: LeadsIn) -> dict[str, Lead]:
    """Accounts of the warehouse that match on region and size (a table ``accounts`` with ``name``,
    ``portfolio_units``, ``region``, ``pms_vendor``, ``became_customer_on``, ``churned_on``, as the demo
    warehouse has; the industry narrows the collected pages, since every account is in ours)."""
    where = ["1 = 1"]
    if args.region:
        where.append(f"lower(region) = {_literal(args.region.lower())}")
    if args.min_units is not None:
        where.append(f"portfolio_units >= {int(args.min_units)}")
    if args.max_units is not None:
        where.append(f"portfolio_units <= {int(args.max_units)}")
    sql = (
        "SELECT name, portfolio_units, region, pms_vendor, became_customer_on IS NOT NULL AND churned_on IS NULL "
        f"AS customer FROM accounts WHERE {' AND '.join(where)} ORDER BY portfolio_units DESC, name LIMIT {args.k}"
    )
    result = await warehouse.query(sql, limit=args.k)
    return {
        str(r[0]).lower(): Lead(
            company=str(r[0]), units=r[1], region=r[2], pms_vendor=r[3], customer=bool(r[4])
        )
        for r in result.rows
    }


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"
