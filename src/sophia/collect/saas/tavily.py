"""Tavily web search, the ``search_web`` tool's upstream when a key is set.

Written against the published reference, https://docs.tavily.com/api-reference/endpoint/search:
``POST https://api.tavily.com/search`` with ``Authorization: Bearer <key>`` and a JSON body (``query``;
``max_results`` 0-20, default 5; ``topic`` ``general`` | ``news``; ``search_depth`` ``basic`` |
``advanced``; ``time_range`` ``day`` | ``week`` | ``month`` | ``year``; ``include_domains`` and
``exclude_domains`` lists). The 200 answer carries ``results``, each with ``title``, ``url``,
``content`` (the snippet), ``score`` (relevance) and, for ``topic: news``, ``published_date``.
Errors come as ``{"detail": {"error": "…"}}``: 401 for a missing or unknown key, 429 when over the
plan's rate, 432/433 when over the plan's or the pay-as-you-go credit limit.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import httpx

from sophia.collect.saas.base import SaaSClient, json_error_detail, parse_time
from sophia.errors import InvalidRequest

Topic = Literal["general", "news"]
TimeRange = Literal["day", "week", "month", "year"]
TOPICS = ("general", "news")
TIME_RANGES = ("day", "week", "month", "year")
MAX_RESULTS = 20


@dataclass(frozen=True, slots=True)
class WebResult:
    title: str
    url: str
    content: str  # Tavily's extract of the page most relevant to the query
    score: float
    published: datetime | None = None


class TavilyClient(SaaSClient):
    service = "tavily"
    label = "Tavily"
    default_base_url = "https://api.tavily.com"

    def _credentials(self, key: str) -> tuple[dict[str, str], dict[str, str]]:
        return {"Authorization": f"Bearer {key}"}, {}

    def _error_detail(self, response: httpx.Response) -> str:
        return json_error_detail(response, "detail", "error", "message")

    async def search(
        self,
        query: str,
        *,
        max_results: int = 5,
        topic: Topic = "general",
        include_domains: Sequence[str] = (),
        exclude_domains: Sequence[str] = (),
        time_range: TimeRange | None = None,
        search_depth: Literal["basic", "advanced"] = "basic",
    ) -> list[WebResult]:
        """The web's best pages for ``query``, best first (``search_depth="advanced"`` costs 2 credits)."""
        if not query.strip():
            raise InvalidRequest("a Tavily search needs a query", param="query")
        if not 1 <= max_results <= MAX_RESULTS:
            raise InvalidRequest(
                f"max_results must be 1 to {MAX_RESULTS} for Tavily, not {max_results}", param="max_results"
            )
        if topic not in TOPICS:
            raise InvalidRequest(f"topic must be one of {', '.join(TOPICS)}, not {topic!r}", param="topic")
        if time_range is not None and time_range not in TIME_RANGES:
            raise InvalidRequest(
                f"time_range must be one of {', '.join(TIME_RANGES)}, not {time_range!r}", param="time_range"
            )
        body: dict[str, Any] = {
            "query": query,
            "max_results": max_results,
            "topic": topic,
            "search_depth": search_depth,
            "include_answer": False,
            "include_raw_content": False,
            "include_images": False,
        }
        if include_domains:
            body["include_domains"] = list(include_domains)
        if exclude_domains:
            body["exclude_domains"] = list(exclude_domains)
        if time_range is not None:
            body["time_range"] = time_range
        data = self._json(await self._send("POST", "/search", json=body))
        results = data.get("results") if isinstance(data, Mapping) else None
        if not isinstance(results, list):
            raise self.invalid("answered a search without a results list")
        return [self._result(item) for item in results if isinstance(item, Mapping) and item.get("url")]

    @staticmethod
    def _result(item: Mapping[str, Any]) -> WebResult:
        score = item.get("score")
        return WebResult(
            title=str(item.get("title") or ""),
            url=str(item["url"]),
            content=str(item.get("content") or ""),
            score=float(score) if isinstance(score, int | float) else 0.0,
            published=parse_time(item.get("published_date")),
        )
