"""The collector: fetch a page safely, keep it, extract its text, and index it in the knowledge room.

``Collector.fetch_page(url)`` is the one path every collected page takes (the ``fetch_page`` tool, the
CLI, each page of a crawl):

1. the URL is normalised (``sophia.collect.urls``) and the stored page, if any, gives the validators
   for a conditional GET;
2. ``SafeFetcher`` resolves, checks and dials the checked address (``sophia.collect.fetch``);
3. a 304, or a body whose hash is the stored one, is a no-op: nothing is extracted or indexed again;
4. otherwise the main text and metadata are extracted (trafilatura, ``sophia.collect.extract``), the
   page is stored with both hashes, and indexed in the knowledge room as a ``web`` document
   (id ``web:<url>``, source ``web`` unless the caller names one, metadata domain, date, author,
   language) whose hits cite the verbatim passage and the URL;
5. a page whose text is another page's (same hash), or nearly (MiniLM cosine over the first chunk at
   least ``collect.page_near_duplicate``), is stored with ``duplicate_of`` and not indexed.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sophia.collect.addresses import AddressPolicy
from sophia.collect.extract import extract
from sophia.collect.fetch import SafeFetcher
from sophia.collect.pages import Page, PageStore
from sophia.collect.urls import domain, normalize
from sophia.errors import InvalidRequest
from sophia.settings import CollectSettings
from sophia.storage.db import Database, open_with_schema

if TYPE_CHECKING:
    from sophia.knowledge.knowledge import Knowledge

WEB_SOURCE = "web"
MIN_TEXT = 40  # characters of main text below which a page is kept but not indexed


def document_id(url: str) -> str:
    return f"web:{url}"


@dataclass
class PageResult:
    """What one fetch did: ``changed`` is False for a 304 or an unchanged body (nothing re-indexed)."""

    url: str
    final_url: str
    status: int
    changed: bool
    not_modified: bool
    indexed: bool
    duplicate_of: str | None
    title: str
    author: str | None
    date: str | None
    language: str | None
    text: str
    links: list[str] = field(default_factory=list)
    content_hash: str = ""
    redirects: list[str] = field(default_factory=list)
    elapsed_ms: float = 0.0
    retry_after: float | None = None
    via: str = "direct"  # "zenrows" when the page was rendered by ZenRows


def normalized_links(links: list[str]) -> list[str]:
    """The page's http(s) links in their canonical form, first occurrence first (the crawl's frontier)."""
    out: dict[str, None] = {}
    for link in links:
        try:
            out.setdefault(normalize(link), None)
        except InvalidRequest:
            continue
    return list(out)


def _charset(content_type_header: str | None) -> str | None:
    for part in (content_type_header or "").split(";")[1:]:
        key, _, value = part.strip().partition("=")
        if key.lower() == "charset" and value:
            return value.strip().strip('"')
    return None


class Collector:
    """Pages fetched, stored and indexed; one per process (``sophia.collect.service.COLLECTOR``)."""

    def __init__(
        self,
        settings: CollectSettings,
        store: PageStore,
        fetcher: SafeFetcher,
        knowledge: Knowledge | None,
        *,
        owned_db: Database | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.fetcher = fetcher
        self.knowledge = knowledge
        self._owned_db = owned_db
        self._poller: Any = None

    @classmethod
    async def open(
        cls,
        settings: CollectSettings,
        data_dir: Path,
        knowledge: Knowledge | None,
        *,
        fetcher: SafeFetcher | None = None,
    ) -> Collector:
        url = settings.store_url
        if url is None:
            folder = data_dir / "collect"
            folder.mkdir(parents=True, exist_ok=True)
            url = f"sqlite:///{folder / 'pages.db'}"
        db, _ = await open_with_schema(url, [])
        store = PageStore(db)
        await store.migrate()
        if fetcher is None:
            fetcher = SafeFetcher(
                AddressPolicy(settings.allow),
                timeout=settings.timeout,
                max_bytes=settings.max_bytes,
                max_redirects=settings.max_redirects,
                user_agent=settings.user_agent,
            )
        return cls(settings, store, fetcher, knowledge, owned_db=db)

    async def close(self) -> None:
        await self.fetcher.aclose()
        if self._owned_db is not None:
            await self._owned_db.close()

    @property
    def renders(self) -> bool:
        """Whether pages can be rendered with JavaScript (ZenRows is configured)."""
        from sophia.collect.saas.zenrows import ZenRowsClient

        return ZenRowsClient.configured(self.settings)

    async def fetch_page(
        self,
        url: str,
        *,
        source: str = WEB_SOURCE,
        index: bool = True,
        metadata: Mapping[str, Any] | None = None,
        render: bool = False,
    ) -> PageResult:
        """Fetch ``url`` (conditionally when stored), keep it and index it; see the module docstring.

        ``render``: through ZenRows with JavaScript rendering when it is configured (the URL passes
        the same URL rules first); the caller checks ``renders`` to say when it is not.
        """
        started = time.perf_counter()
        url = normalize(url)
        prior = await self.store.get(url)
        if render and self.renders:
            result = await self._rendered(url)
        else:
            result = await self.fetcher.fetch(
                url,
                etag=prior.etag if prior else None,
                last_modified=prior.last_modified if prior else None,
            )
        raw_hash = hashlib.sha256(result.content).hexdigest()
        if prior is not None and (
            result.not_modified or (result.status == prior.status and raw_hash == prior.raw_hash)
        ):
            await self.store.touch(url, etag=result.etag, last_modified=result.last_modified)
            return self._result(prior, result, started, changed=False)
        if result.status in (429, 503):  # busy, come back later: nothing to keep, the caller decides
            return PageResult(
                url=url, final_url=result.url, status=result.status, changed=False, not_modified=False,
                indexed=False, duplicate_of=None, title="", author=None, date=None, language=None, text="",
                redirects=list(result.redirects), retry_after=result.retry_after,
                elapsed_ms=round((time.perf_counter() - started) * 1000, 3),
            )  # fmt: skip
        if result.not_modified:  # a 304 for validators we did not send: nothing to keep
            raise InvalidRequest(
                f"{url} answered 304 Not Modified to an unconditional request", code="fetch_failed"
            )
        charset = _charset(result.headers.get("content-type"))
        # CPU-bound (40-60 ms a page): off the event loop, so that other requests go on meanwhile
        extracted = await asyncio.to_thread(extract, result.content, result.url, charset=charset)
        text_hash = extracted.content_hash if extracted.text else None
        page = Page(
            url=url,
            final_url=result.url,
            domain=domain(result.url),
            status=result.status,
            raw_hash=raw_hash,
            raw=result.content,
            content_type=result.content_type,
            etag=result.etag,
            last_modified=result.last_modified,
            text_hash=text_hash,
            extracted={
                "title": extracted.title,
                "author": extracted.author,
                "date": extracted.date,
                "language": extracted.language,
                "sitename": extracted.sitename,
                "description": extracted.description,
                "links": normalized_links(extracted.links),
                "text": extracted.text,
            },
            fetched_at=time.time(),
            changed_at=time.time(),
        )
        indexable = index and result.status < 400 and len(extracted.text) >= MIN_TEXT
        if indexable and text_hash is not None:
            page.duplicate_of = await self.store.with_text(text_hash, other_than=url)
            if page.duplicate_of is None:
                page.duplicate_of = await self._near_duplicate(url, extracted.text)
        await self.store.put(page)
        indexed = False
        if self.knowledge is not None:
            if indexable and page.duplicate_of is None:
                await self.knowledge.ingest([self._document(page, source, metadata)])
                indexed = True
            elif prior is not None:  # it was indexed before and is a copy (or empty, or an error) now
                await self.knowledge.delete([document_id(url)])
        return self._result(page, result, started, changed=True, indexed=indexed)

    async def _rendered(self, url: str) -> Any:
        """``url`` fetched by ZenRows (JavaScript rendered), as a ``FetchResult``."""
        from sophia.collect.fetch import FetchResult
        from sophia.collect.saas.zenrows import ZenRowsClient

        self.fetcher.policy.check_url(url)  # the same URL rules (scheme, user info, literal addresses)
        async with ZenRowsClient.from_settings(self.settings) as client:
            page = await client.fetch(url, js_render=True)
        content_type = page.content_type or "text/html"
        return FetchResult(
            url=normalize(page.url or url),
            status=page.status,
            headers={"content-type": content_type, "x-sophia-via": "zenrows"},
            content=page.content,
            content_type=content_type.split(";")[0].strip().lower(),
            etag=None,
            last_modified=None,
            not_modified=False,
        )

    def _document(self, page: Page, source: str, metadata: Mapping[str, Any] | None) -> Any:
        from sophia.knowledge import Document

        meta: dict[str, Any] = {"domain": page.domain, "url": page.final_url}
        date = page.extracted.get("date")
        meta["date"] = date or time.strftime("%Y-%m-%d", time.gmtime(page.fetched_at))
        for key in ("author", "language", "sitename"):
            if page.extracted.get(key):
                meta[key] = page.extracted[key]
        meta.update(metadata or {})
        return Document(
            document_id(page.url),
            kind="web",
            title=page.title or page.final_url,
            text=page.text,
            source=source,
            metadata=meta,
            url=page.final_url,
        )

    async def _near_duplicate(self, url: str, text: str) -> str | None:
        """The URL of an indexed page whose opening reads like this one's (syndicated or mirrored copy)."""
        if self.knowledge is None:
            return None
        hits = await self.knowledge.search(text[:1500], k=2, filters={"kind": "web"}, mode="vector")
        for hit in hits:
            if hit.document_id != document_id(url) and hit.score >= self.settings.page_near_duplicate:
                return str(hit.document_id).removeprefix("web:")
        return None

    def _result(
        self, page: Page, fetched: Any, started: float, *, changed: bool, indexed: bool = False
    ) -> PageResult:
        ex = page.extracted
        return PageResult(
            url=page.url,
            final_url=page.final_url,
            status=page.status,
            changed=changed,
            not_modified=bool(fetched.not_modified),
            indexed=indexed,
            duplicate_of=page.duplicate_of,
            title=page.title,
            author=ex.get("author"),
            date=ex.get("date"),
            language=ex.get("language"),
            text=page.text,
            links=list(ex.get("links") or []),
            content_hash=page.text_hash or "",
            redirects=list(fetched.redirects),
            elapsed_ms=round((time.perf_counter() - started) * 1000, 3),
            via="zenrows" if fetched.headers.get("x-sophia-via") == "zenrows" else "direct",
        )

    async def search(
        self, query: str, *, k: int = 5, filters: Mapping[str, Any] | None = None, mode: str = "hybrid"
    ) -> list[Any]:
        """Hybrid search over collected pages (``kind: web``) with the knowledge room's filters."""
        if self.knowledge is None:
            raise InvalidRequest("no knowledge room: collected pages are not searchable here")
        merged = {"kind": "web", **dict(filters or {})}
        return await self.knowledge.search(query, k=k, filters=merged, mode=mode)  # type: ignore[arg-type]

    async def stats(self) -> dict[str, Any]:
        return await self.store.stats()

    # -- news -------------------------------------------------------------------------------------

    async def poller(self) -> Any:
        """The feed poller on this collector's database and fetcher, with ``collect.feeds`` registered."""
        if self._poller is None:
            from sophia.collect.news import FeedPoller, FeedStore

            store = FeedStore(self.store.db)
            if self.settings.feeds:
                await store.add_feeds([normalize(f) for f in self.settings.feeds])
            self._poller = FeedPoller.from_settings(self.fetcher, store, self.settings)
        return self._poller

    async def poll_feeds(self, urls: list[str] | None = None) -> dict[str, Any]:
        """Poll ``urls`` now (added to the schedule), else every feed that is due; index what is new.

        Each new article that is not a syndicated copy goes into the knowledge room as a ``web``
        document of source ``news`` (title and summary, its URL, published date, feed, entities).
        Returns feed URL -> ``PollResult`` or the error that feed gave.
        """
        poller = await self.poller()
        if urls:
            feeds = [normalize(u) for u in urls]
            await poller.store.add_feeds(feeds)
            results: dict[str, Any] = {}
            for url in feeds:
                try:
                    results[url] = await poller.poll(url)
                except Exception as exc:  # noqa: BLE001 - one feed's failure is that feed's result
                    results[url] = exc
        else:
            results = await poller.poll_due()
        if self.knowledge is not None:
            docs = [
                self._article(a)
                for r in results.values()
                if hasattr(r, "new")
                for a in r.new
                if not a.syndicated
            ]
            docs = [d for d in docs if d is not None]
            if docs:
                await self.knowledge.ingest(docs)
        return results

    def _article(self, article: Any) -> Any:
        from sophia.knowledge import Document

        text = "\n\n".join(p for p in (article.title, article.summary) if p)
        if len(text) < 20:
            return None
        meta: dict[str, Any] = {"feed": article.feed_url, "story_id": article.story_id}
        if article.url:
            meta["domain"] = domain(article.url)
            meta["url"] = article.url
        if article.published:
            meta["date"] = article.published[:10]
        if article.entities.companies:
            meta["companies"] = list(article.entities.companies)
        if article.entities.people:
            meta["people"] = list(article.entities.people)
        return Document(
            f"news:{article.id}", kind="web", title=article.title or (article.url or ""), text=text,
            source="news", metadata=meta, url=article.url,
        )  # fmt: skip
