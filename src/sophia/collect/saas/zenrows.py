"""ZenRows: fetch a page through ZenRows' Universal Scraper API (rotating proxies, optional headless
browser) when a site refuses ordinary fetchers.

Written against https://docs.zenrows.com/universal-scraper-api/api-reference: ``GET
https://api.zenrows.com/v1/?apikey=<key>&url=<target>`` with optional ``js_render=true`` (a headless
browser, 5 credits) and ``premium_proxy=true`` (residential addresses, 10 credits); the key travels only
as the ``apikey`` parameter. A success is the target's body with its ``Content-Type``, ``Zr-Final-Url``
(the address after redirects) and the ``Concurrency-Limit``/``Concurrency-Remaining``/``X-Request-Cost``
headers (https://docs.zenrows.com/first-steps/faq/what-is-concurrency). Errors are JSON problem
documents (``code``, ``title``, ``detail``, ``status``; https://docs.zenrows.com/api-error-codes): 401
for a missing or wrong key (``AUTH001``/``AUTH002``), 402 when the plan's budget is spent, 422 when the
target could not be fetched (``RESP001``), 429 over the plan's concurrency (``AUTH006``) or rate.

The target URL goes to ZenRows, which fetches it from its own network: the SSRF policy of
``sophia.collect.addresses`` is the caller's to apply before choosing this path.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import urlsplit

import httpx

from sophia.collect.saas.base import SaaSClient, json_error_detail
from sophia.errors import InvalidRequest

#: ZenRows' own bookkeeping headers, kept apart from the target's
SERVICE_HEADERS = ("concurrency-limit", "concurrency-remaining", "x-request-cost", "x-request-id")


@dataclass(frozen=True, slots=True)
class FetchedPage:
    url: str  # where the page was found (after redirects)
    status: int
    content: bytes
    content_type: str | None
    headers: dict[str, str] = field(default_factory=dict)


class ZenRowsClient(SaaSClient):
    service = "zenrows"
    label = "ZenRows"
    default_base_url = "https://api.zenrows.com"

    def _credentials(self, key: str) -> tuple[dict[str, str], dict[str, str]]:
        return {}, {"apikey": key}

    def _error_detail(self, response: httpx.Response) -> str:
        detail = json_error_detail(response, "title", "detail", "message", "error")
        code = _code(response)
        return f"{detail} ({code})" if code and code not in detail else detail

    async def fetch(self, url: str, *, js_render: bool = False, premium_proxy: bool = False) -> FetchedPage:
        """The page at ``url`` as ZenRows fetched it (``js_render``: after running its scripts)."""
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise InvalidRequest(f"ZenRows fetches http(s) URLs only, not {url!r}", param="url")
        params = {
            "url": url,
            "js_render": True if js_render else None,
            "premium_proxy": premium_proxy or None,
        }
        response = await self._send("GET", "/v1/", params=params)
        headers = {name.lower(): value for name, value in response.headers.items()}
        return FetchedPage(
            url=headers.pop("zr-final-url", "") or url,
            status=response.status_code,
            content=response.content,
            content_type=headers.get("content-type"),
            headers=headers,
        )


def _code(response: httpx.Response) -> str:
    try:
        data = response.json()
    except ValueError:
        return ""
    code = data.get("code") if isinstance(data, dict) else None
    return code if isinstance(code, str) else ""
