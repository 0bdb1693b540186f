"""Twingly: news and blog posts searched in Twingly's index (its Blog Search API v3, XML over HTTP).

Written against https://developer.twingly.com/resources/search/ (Blog Search API v3): ``GET
https://api.twingly.com/blog/search/api/v3/search?apikey=<key>&q=<query>&format=xml``. The key can only
travel as the ``apikey`` query parameter; the filters are part of the query language
(https://developer.twingly.com/resources/search-language/): ``page-size:`` (at most 1000 hits per
query), ``start-date:`` and ``lang:``; dates are written as Twingly's official client does
(github.com/twingly/twingly-search-api-python, ``constants.QUERY_DATE_TIME_FORMAT``: UTC
``%Y-%m-%d %H:%M:%S``).

The answer is ``<twinglydata numberOfMatchesReturned=… numberOfMatchesTotal=… incompleteResult=…>``
holding ``<post>`` elements (``id``, ``author``, ``url``, ``title``, ``text``, ``languageCode``,
``publishedAt``, ``indexedAt``, ``blogName``, ``blogUrl``, ``tags``, ``links`` …). An error is
``<error code="40101"><message>…</message></error>`` with the HTTP status in the code's first three
digits (400 bad query, 401 unknown key, 403 no access, 404, 500, 503).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from datetime import UTC, datetime
from urllib.parse import urlsplit

import httpx

from sophia.collect.saas.base import SaaSClient, parse_time
from sophia.errors import InvalidRequest

SEARCH_PATH = "/blog/search/api/v3/search"
MAX_RESULTS = 1000
QUERY_TIME = "%Y-%m-%d %H:%M:%S"


@dataclass(frozen=True, slots=True)
class NewsArticle:
    title: str
    url: str
    text: str
    published: datetime | None
    source: str  # the blog's or site's name, else its host
    language: str | None
    authors: list[str] = field(default_factory=list)


class TwinglyClient(SaaSClient):
    service = "twingly"
    label = "Twingly"
    default_base_url = "https://api.twingly.com"

    def _credentials(self, key: str) -> tuple[dict[str, str], dict[str, str]]:
        return {}, {"apikey": key}

    def _error_detail(self, response: httpx.Response) -> str:
        try:
            root = ET.fromstring(response.content)
        except ET.ParseError:
            return response.text
        if root.tag != "error":
            return response.text
        message = (root.findtext("message") or "").strip()
        code = root.get("code")
        return f"{message} (code {code})" if code else message

    async def search(
        self,
        query: str,
        *,
        max_results: int = 20,
        since: datetime | None = None,
        language: str | None = None,
    ) -> list[NewsArticle]:
        """Posts matching ``query`` (Twingly's query language), newest first, at most ``max_results``."""
        if not query.strip():
            raise InvalidRequest("a Twingly search needs a query", param="query")
        if not 1 <= max_results <= MAX_RESULTS:
            raise InvalidRequest(
                f"max_results must be 1 to {MAX_RESULTS} for Twingly, not {max_results}", param="max_results"
            )
        parts = [query.strip(), f"page-size:{max_results}"]
        if since is not None:
            when = since.astimezone(UTC) if since.tzinfo else since
            parts.append(f"start-date:{when.strftime(QUERY_TIME)}")
        if language:
            parts.append(f"lang:{language}")
        response = await self._send("GET", SEARCH_PATH, params={"q": " ".join(parts), "format": "xml"})
        try:
            root = ET.fromstring(response.content)
        except ET.ParseError:
            raise self.invalid(
                f"answered a search with a body that is not XML ({len(response.content)} bytes)"
            ) from None
        if root.tag != "twinglydata":
            raise self.invalid(f"answered a search with <{root.tag}> instead of <twinglydata>")
        articles = [self._article(post) for post in root.iter("post")]
        return [article for article in articles if article.url][:max_results]

    @staticmethod
    def _article(post: ET.Element) -> NewsArticle:
        def text(name: str) -> str:
            return (post.findtext(name) or "").strip()

        blog_url = text("blogUrl")
        author = text("author")
        return NewsArticle(
            title=text("title"),
            url=text("url"),
            text=text("text") or text("summary"),
            published=parse_time(text("publishedAt") or text("published")),
            source=text("blogName") or urlsplit(blog_url).hostname or "",
            language=text("languageCode") or None,
            authors=[author] if author else [],
        )
