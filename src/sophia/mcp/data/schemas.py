"""Arguments and results of the Data Intelligence tools (agents read these schemas: keep them terse)."""

from __future__ import annotations

from datetime import date
from typing import Any, Literal

from pydantic import Field

from sophia.mcp.tools import Input, Output


class FetchIn(Input):
    url: str = Field(min_length=1, max_length=4096, description="An http(s) URL.")
    max_chars: int = Field(4000, ge=0, le=100_000, description="Main text returned at most (all is stored).")
    render_js: bool = Field(False, description="Run the page's JavaScript (ZenRows, when configured).")


class PageOut(Output):
    url: str
    final_url: str
    status: int
    title: str
    author: str | None = None
    date: str | None = None
    language: str | None = None
    changed: bool
    indexed: bool
    duplicate_of: str | None = None
    text: str
    truncated: bool
    links: int
    redirects: list[str] = Field(default_factory=list)
    elapsed_ms: float
    via: str = "direct"
    note: str | None = None

    def render(self) -> str:
        head = f"# {self.title or self.final_url}\n{self.final_url} (HTTP {self.status}"
        head += ", unchanged)" if not self.changed else ")"
        if self.duplicate_of:
            head += f"\nA copy of {self.duplicate_of}: not indexed again."
        if self.note:
            head += f"\n{self.note}"
        meta = ", ".join(f"{k}: {v}" for k, v in (("author", self.author), ("date", self.date)) if v)
        return f"{head}\n{meta}\n\n{self.text}" if meta else f"{head}\n\n{self.text}"


class SearchCollectedIn(Input):
    query: str = Field(min_length=1, max_length=2_000)
    k: int = Field(5, ge=1, le=50)
    mode: Literal["hybrid", "text", "vector"] = "hybrid"
    domain: str | None = Field(None, max_length=253, description="Only pages of this domain (no www.).")
    source: str | None = Field(None, max_length=200, description="web, news, or a crawl's name.")
    date_from: date | None = None
    date_to: date | None = None


class WebHit(Output):
    title: str
    url: str
    quote: str
    score: float
    date: str | None = None
    document_id: str | None = None
    char_start: int | None = None
    char_end: int | None = None


class SearchOut(Output):
    backend: str
    note: str | None = None
    hits: list[WebHit]

    def render(self) -> str:
        lines = [f"{len(self.hits)} results from {self.backend}" + (f" ({self.note})" if self.note else "")]
        for n, h in enumerate(self.hits, 1):
            lines.append(f"[{n}] {h.title} <{h.url}>\n    {h.quote[:400]}")
        return "\n".join(lines)


class SearchWebIn(Input):
    query: str = Field(min_length=1, max_length=400)
    k: int = Field(5, ge=1, le=20)
    topic: Literal["general", "news"] = "general"
    include_domains: list[str] = Field(default_factory=list, max_length=20)


def plain(value: Any) -> Any:
    return value.isoformat() if hasattr(value, "isoformat") else value


class CrawlIn(Input):
    url: str = Field(min_length=1, max_length=4096, description="The start page; same origin is crawled.")
    max_pages: int = Field(50, ge=1, le=5000)
    max_depth: int = Field(2, ge=0, le=10)
    wait_s: float = Field(
        20.0, ge=0, le=600, description="Wait this long with progress; the crawl goes on after."
    )


class JobIn(Input):
    job_id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")


class CrawlOut(Output):
    job_id: str
    status: str
    start_url: str
    seen: int
    pending: int
    stats: dict[str, int]
    errors: list[str] = Field(default_factory=list)
    shared: bool

    def render(self) -> str:
        counts = ", ".join(f"{k} {v}" for k, v in self.stats.items() if v)
        return (
            f"crawl {self.job_id} of {self.start_url}: {self.status}; {self.seen - self.pending}/{self.seen} pages "
            f"handled ({counts or 'nothing yet'})" + "".join(f"\n  error: {e}" for e in self.errors)
        )


class NewsIn(Input):
    query: str | None = Field(
        None, max_length=400, description="Search the collected news; none: the latest."
    )
    feeds: list[str] = Field(default_factory=list, max_length=20, description="RSS/Atom feeds to poll now.")
    since: date | None = None
    k: int = Field(10, ge=1, le=50)


class Article(Output):
    title: str
    url: str | None = None
    published: str | None = None
    feed: str | None = None
    quote: str = ""
    companies: list[str] = Field(default_factory=list)
    people: list[str] = Field(default_factory=list)
    copies: int = 0


class NewsOut(Output):
    backend: str = "local index"
    polled: dict[str, str]
    articles: list[Article]

    def render(self) -> str:
        lines = [f"{feed}: {what}" for feed, what in self.polled.items()]
        for n, a in enumerate(self.articles, 1):
            lines.append(f"[{n}] {a.title} <{a.url}> {a.published or ''}".rstrip())
        return "\n".join(lines) or "no news collected yet: pass feeds to poll"


class ResearchIn(Input):
    question: str = Field(min_length=3, max_length=1000)
    urls: list[str] = Field(default_factory=list, max_length=10, description="Pages to read first.")
    max_sources: int = Field(6, ge=1, le=12)


class Source(Output):
    n: int
    title: str
    url: str | None = None
    quote: str


class ResearchOut(Output):
    summary: str
    sources: list[Source]
    searched_with: str
    fetched: list[str] = Field(default_factory=list)
    dropped_sentences: int = 0
    model_calls: int = 0

    def render(self) -> str:
        refs = "\n".join(f"[{s.n}] {s.title} <{s.url}>" for s in self.sources)
        return f"{self.summary}\n\nSources:\n{refs}"


class LeadsIn(Input):
    industry: str | None = Field(None, max_length=200)
    region: str | None = Field(
        None, max_length=100, description="A region as the warehouse names it, e.g. West."
    )
    min_units: int | None = Field(None, ge=0, description="Smallest portfolio, in units.")
    max_units: int | None = Field(None, ge=0)
    k: int = Field(10, ge=1, le=50)


class Lead(Output):
    company: str
    units: int | None = None
    region: str | None = None
    pms_vendor: str | None = None
    customer: bool
    evidence: list[Source] = Field(default_factory=list)


class LeadsOut(Output):
    leads: list[Lead]
    note: str | None = None

    def render(self) -> str:
        lines = [self.note] if self.note else []
        for lead in self.leads:
            facts = ", ".join(
                f for f in (
                    f"{lead.units:,} units" if lead.units else "",
                    lead.region or "",
                    lead.pms_vendor or "",
                    "customer" if lead.customer else "",
                ) if f
            )  # fmt: skip
            lines.append(f"- {lead.company} ({facts})")
            lines += [f"    [{e.n}] {e.quote[:200]} <{e.url}>" for e in lead.evidence]
        return "\n".join(lines) or "no lead matches"
