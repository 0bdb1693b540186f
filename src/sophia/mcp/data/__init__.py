"""The Data Intelligence MCP server (port 8092): web pages, sites and news, collected safely and searchable.

One package of tools on the MCP base, like the AI and BI servers: ``pages`` (fetch one page; search
what was collected) and ``web`` (search the web: Tavily when configured, else the local index,
labelled). The room it stands on: ``sophia.collect`` (the SSRF-safe fetcher, extraction, the page
store), which indexes into ``sophia.knowledge``.
"""

from __future__ import annotations

from sophia.mcp.data import pages
from sophia.mcp.tools import ToolGroup

group = ToolGroup(
    "data",
    port=8092,
    title="Sophia Data Intelligence",
    instructions=(
        "Web research with sources: fetch_page reads one page (public addresses only) and keeps it; "
        "search_collected searches everything collected, quoting each passage with its URL. Cite the URL of "
        "every passage you use."
    ),
    sets=[pages.tools],
)
