"""Arguments and results of the Data Intelligence tools (agents read these schemas: keep them terse)."""

from __future__ import annotations

from datetime import date
from typing import Any, Literal

from pydantic import Field

from sophia.mcp.tools import Input, Output


class FetchIn(Input):
    url: str = Field(min_length=1, max_length=4096, description="An http(s) URL.")
    max_chars: int = Field(4000, ge=0, le=100_000, description="Main text returned at most (all is stored).")


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

    def render(self) -> str:
        head = f"# {self.title or self.final_url}\n{self.final_url} (HTTP {self.status}"
        head += ", unchanged)" if not self.changed else ")"
        if self.duplicate_of:
            head += f"\nA copy of {self.duplicate_of}: not indexed again."
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
    backend: str = Field(description="Who answered: 'local index' or the service's name.")
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
