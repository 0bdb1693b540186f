"""The Data Intelligence MCP server (port 8092): web pages, sites and news, collected safely and searchable.

One package of tools on the MCP base, like the AI and BI servers: ``pages`` (fetch one page; search
what was collected), ``crawls`` (crawl a site as a job: progress, status, cancel) and ``research``
(web search: Tavily when configured, else the local index, labelled; news feeds; cited research
summaries through the gateway; leads from the warehouse and collected pages). The room it stands on: ``sophia.collect`` (the SSRF-safe fetcher, extraction, the page
store), which indexes into ``sophia.knowledge``.
"""

from __future__ import annotations

from sophia.collect.service import CRAWLER, FEED_SCHEDULE
from sophia.mcp.data import crawls, pages, research
from sophia.mcp.tools import ToolGroup

group = ToolGroup(
    "data",
    port=8092,
    title="Sophia Data Intelligence",
    instructions=(
        "Web research with sources. fetch_page reads one page (public addresses only) and keeps it; crawl_site "
        "collects a site (job_status, cancel_crawl); news polls feeds; search_collected and search_web find "
        "passages with their URLs; business_research answers with every sentence cited; find_leads matches "
        "companies with evidence. Cite the URL of every passage you use."
    ),
    sets=[pages.tools, crawls.tools, research.tools],
    start=[CRAWLER, FEED_SCHEDULE],  # a crawl worker (with Redis) and the news schedule run while served
)
