"""News: RSS and Atom feeds polled on a schedule, each article kept once, syndicated copies grouped.

``FeedPoller.poll`` asks for a feed conditionally (the stored ETag and Last-Modified; a 304 costs no
parse), hands the bytes to feedparser (as a stream: given a string or bytes feedparser would fetch a
URL or open a file itself) and keeps the entries it has not seen. An article's id is a hash of its
guid, else of its canonical link, else of its feed, title and date. feedparser reads a bare RSS guid
("1234") relative to the feed's URL, so two sites' "1234" differ while a site's category feeds share
it; a guid that is still not a URI after that is scoped to its feed. the canonical link (``urls.normalize``:
no fragment, no ``utm_*``/``fbclid``) is unique too, so an item whose guid changes but whose link does
not is still a duplicate. Both are enforced by the database (``ON CONFLICT DO NOTHING``), so two
pollers racing on one feed still keep one row.

A syndicated copy (the same story in another feed under another URL) is kept as a row of its own but
points at the first article of its story (``story_id``): title and summary are embedded with the
bundled MiniLM and compared with the articles of other feeds first seen in the last ``window_days``.
Each article's vector is stored (float32, base64 in a TEXT column for both databases) rather than
recomputed: re-embedding a week of articles on every poll would cost seconds of model time each
time, while a stored vector is 2 KB. The poller keeps the window's vectors in memory and reads only
rows newer than its last look (with an overlap for other processes' late commits).

Scheduling: a feed is due at ``next_poll``; a success sets it ``interval`` ahead, a failure
``interval * 2**failures`` ahead (at most ``max_backoff``), and a Retry-After answer never earlier
than it asks (up to a week).
"""

from __future__ import annotations

import asyncio
import hashlib
import html
import io
import logging
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

from sophia.collect.entities import extract_entities
from sophia.collect.news_store import Article, FeedState, FeedStore, PollResult, pack_vector, unpack_vector
from sophia.collect.urls import normalize
from sophia.embedder import get_encoder, run_model
from sophia.errors import InvalidRequest, SophiaError

if TYPE_CHECKING:
    import numpy as np

    from sophia.settings.collect import CollectSettings

log = logging.getLogger(__name__)

__all__ = [
    "Article",
    "FeedError",
    "FeedPoller",
    "FeedState",
    "FeedStore",
    "Fetcher",
    "ParsedFeed",
    "PollResult",
    "article_id",
    "pack_vector",
    "parse_feed",
    "unpack_vector",
]

#: the longest Retry-After honoured; a server asking for more is polled again after a week
MAX_RETRY_AFTER = 7 * 86400.0
#: seconds of overlap when reading the vectors other processes stored since the last look
_OVERLAP = 300.0
_SUMMARY_CHARS = 5000
_EMBED_CHARS = 1000
#: characters of title and summary below which an article is never matched with another
_MIN_COMPARED = 24
_GLOBAL_GUID = re.compile(r"^(?:https?|tag|urn):", re.IGNORECASE)
_TAGS = re.compile(r"<[^>]*>")
_SPACE = re.compile(r"\s+")


class FeedError(SophiaError):
    """A feed could not be polled: an error status, or a body from which no feed could be read."""

    code = "feed_error"

    def __init__(self, message: str, *, status: int | None = None, code: str | None = None) -> None:
        super().__init__(message, code=code)
        self.status = status


# -- what the poller needs from a fetcher and an encoder ---------------------------------------------


class FetchResponse(Protocol):
    """What ``sophia.collect.fetch.FetchResult`` offers that polling reads."""

    @property
    def url(self) -> str: ...
    @property
    def status(self) -> int: ...
    @property
    def not_modified(self) -> bool: ...
    @property
    def content(self) -> bytes: ...
    @property
    def content_type(self) -> str | None: ...
    @property
    def etag(self) -> str | None: ...
    @property
    def last_modified(self) -> str | None: ...
    @property
    def retry_after(self) -> float | None: ...


class Fetcher(Protocol):
    """``sophia.collect.fetch.SafeFetcher`` or anything fetching like it (conditional GET)."""

    async def fetch(
        self, url: str, *, etag: str | None = None, last_modified: str | None = None
    ) -> FetchResponse: ...


class Encoder(Protocol):
    def encode(self, texts: Sequence[str]) -> np.ndarray: ...


@dataclass(frozen=True, slots=True)
class ParsedFeed:
    title: str | None
    entries: list[Article]  # story_id, entities and first_seen not yet set
    malformed: str | None  # feedparser's complaint when it recovered what it could


@dataclass(slots=True)
class _Known:
    feed_url: str
    story_id: str
    vector: np.ndarray
    first_seen: float


# -- parsing ---------------------------------------------------------------------------------------


def article_id(feed_url: str, *, guid: str | None, url: str | None, title: str, published: str | None) -> str:
    """A stable id: of the guid (a bare one scoped to its feed), else the canonical link, else the title."""
    if guid:
        key = f"guid\n{guid}" if _GLOBAL_GUID.match(guid) else f"guid\n{feed_url}\n{guid}"
    elif url:
        key = f"link\n{url}"
    else:
        key = f"title\n{feed_url}\n{title}\n{published or ''}"
    return hashlib.sha256(key.encode()).hexdigest()[:32]


def parse_feed(content: bytes, feed_url: str) -> ParsedFeed:
    """The entries of an RSS 0.9x/1.0/2.0 or Atom body; ``FeedError`` when no feed can be read from it.

    A malformed feed gives what feedparser's lenient parser recovers (``malformed`` says why).
    """
    import feedparser  # a second's import on a small machine; only polling pays for it

    # A stream, never bytes or a string (feedparser would open a URL or a file); the content type is
    # fixed so that the XML declaration, not a guessed HTTP charset, decides the encoding.
    parsed = feedparser.parse(
        io.BytesIO(content),
        response_headers={"content-location": feed_url, "content-type": "application/xml"},
    )
    problem = parsed.get("bozo_exception") if parsed.get("bozo") else None
    feed = parsed.get("feed", {})
    if not parsed.entries and (problem is not None or not parsed.get("version")):
        why = f": {_describe(problem)}" if problem is not None else " (no RSS or Atom elements)"
        raise FeedError(f"{feed_url} is not a feed that can be read{why}", code="feed_unreadable")
    language = feed.get("language") or None
    entries = [a for a in (_entry(feed_url, e, language) for e in parsed.entries) if a is not None]
    return ParsedFeed(
        title=_plain(feed.get("title")) or None,
        entries=entries,
        malformed=_describe(problem) if problem is not None else None,
    )


def _entry(feed_url: str, entry: Any, feed_language: str | None) -> Article | None:
    guid = (entry.get("id") or "").strip() or None
    url = _canonical(entry.get("link"), feed_url)
    title = _plain(entry.get("title"))
    body = entry.get("summary") or next((c.get("value") for c in entry.get("content") or []), "")
    summary = _plain(body)[:_SUMMARY_CHARS]
    if not (guid or url or title):
        return None  # nothing to tell it from another entry by
    published = _iso(entry.get("published_parsed") or entry.get("updated_parsed"))
    authors = [str(a["name"]) for a in entry.get("authors") or [] if a.get("name")]
    if not authors and entry.get("author"):
        authors = [str(entry["author"])]
    details = (entry.get("title_detail") or {}, entry.get("summary_detail") or {})
    language = next((d.get("language") for d in details if d.get("language")), None) or feed_language
    ident = article_id(feed_url, guid=guid, url=url, title=title, published=published)
    return Article(
        id=ident,
        feed_url=feed_url,
        url=url,
        title=title,
        summary=summary,
        published=published,
        authors=authors,
        language=language,
        story_id=ident,
    )


def _canonical(link: object, base: str) -> str | None:
    if not isinstance(link, str) or not link.strip():
        return None
    try:
        return normalize(link, base=base)
    except InvalidRequest:
        return None  # a mailto:, javascript: or broken link identifies nothing fetchable


def _plain(value: object) -> str:
    """Text of a (sanitised) HTML fragment: tags dropped, entities decoded, spaces collapsed."""
    if not isinstance(value, str):
        return ""
    return _SPACE.sub(" ", html.unescape(_TAGS.sub(" ", value))).strip()


def _iso(parsed: object) -> str | None:
    if not isinstance(parsed, tuple):  # time.struct_time is one
        return None
    year, month, day, hour, minute, second = tuple(parsed)[:6]
    try:
        return datetime(year, month, day, hour, minute, second, tzinfo=UTC).isoformat()
    except (TypeError, ValueError):
        return None


def _describe(problem: object) -> str:
    text = str(problem).strip() or type(problem).__name__
    return text[:300]


# -- polling ---------------------------------------------------------------------------------------


class FeedPoller:
    """Polls feeds through ``fetcher`` into ``store`` (see the module's docstring for the rules)."""

    def __init__(
        self,
        fetcher: Fetcher,
        store: FeedStore,
        *,
        encoder: Encoder | None = None,
        near_duplicate: float = 0.92,
        interval: float = 900.0,
        window_days: float = 7.0,
        max_backoff: float = 86400.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.fetcher = fetcher
        self.store = store
        self.near_duplicate = near_duplicate
        self.interval = interval
        self.window = window_days * 86400.0
        self.max_backoff = max(max_backoff, interval)
        self.clock = clock
        self._encoder = encoder
        self._recent: dict[str, _Known] = {}
        self._looked: float | None = None
        # one feed at a time decides what is new and which story it joins, so two feeds polled at once
        # cannot both miss each other's copy of a story
        self._lock = asyncio.Lock()

    @classmethod
    def from_settings(
        cls, fetcher: Fetcher, store: FeedStore, settings: CollectSettings, **options: Any
    ) -> FeedPoller:
        """A poller with the ``collect`` section's ``feed_interval`` and ``near_duplicate``."""
        return cls(
            fetcher,
            store,
            near_duplicate=settings.near_duplicate,
            interval=settings.feed_interval,
            **options,
        )

    async def due(self, now: float | None = None) -> list[str]:
        """The feeds whose next poll is at ``now`` or earlier, earliest first."""
        return await self.store.due(self.clock() if now is None else now)

    async def poll_due(
        self, now: float | None = None, *, concurrency: int = 4
    ) -> dict[str, PollResult | SophiaError]:
        """Poll every due feed (``concurrency`` fetches at once); a feed that fails gives its error."""
        gate = asyncio.Semaphore(max(1, concurrency))
        results: dict[str, PollResult | SophiaError] = {}

        async def one(url: str) -> None:
            async with gate:
                try:
                    results[url] = await self.poll(url)
                except SophiaError as exc:
                    log.warning("feed %s: %s", url, exc.message)
                    results[url] = exc

        urls = await self.due(now)
        await asyncio.gather(*(one(url) for url in urls))
        return {url: results[url] for url in urls}

    async def poll(self, feed_url: str) -> PollResult:
        """Fetch ``feed_url`` once (conditionally) and keep what is new; ``FeedError`` (or the
        fetcher's error) when it fails, after the failure is booked for the schedule."""
        now = self.clock()
        state = await self.store.feed(feed_url) or FeedState(url=feed_url)
        try:
            response = await self.fetcher.fetch(feed_url, etag=state.etag, last_modified=state.last_modified)
        except SophiaError as exc:
            await self._failed(state, now, None, getattr(exc, "retry_after", None), exc.message)
            raise
        except OSError as exc:
            error = FeedError(f"fetching {feed_url} failed: {exc.strerror or exc}", code="feed_fetch_failed")
            await self._failed(state, now, None, None, error.message)
            raise error from None
        if response.not_modified or response.status == 304:
            await self._succeeded(state, now, response, state.title)
            return PollResult(feed_url, [], 0, 0, True, response.status)
        if not 200 <= response.status < 300:
            error = FeedError(
                f"{feed_url} answered HTTP {response.status}", status=response.status, code="feed_http_error"
            )
            await self._failed(state, now, response.status, response.retry_after, error.message)
            raise error
        try:
            parsed = parse_feed(response.content, feed_url)
        except FeedError as exc:
            exc.status = response.status
            await self._failed(state, now, response.status, response.retry_after, exc.message)
            raise
        if parsed.malformed:
            log.warning("feed %s is malformed (%s); kept what could be read", feed_url, parsed.malformed)
        async with self._lock:
            new, duplicates, syndicated = await self._keep(feed_url, parsed.entries, now)
        await self._succeeded(state, now, response, parsed.title or state.title)
        return PollResult(feed_url, new, duplicates, syndicated, False, response.status)

    # -- what is new, and which story it joins

    async def _keep(
        self, feed_url: str, entries: list[Article], now: float
    ) -> tuple[list[Article], int, int]:
        fresh: list[Article] = []
        seen_ids: set[str] = set()
        seen_urls: set[str] = set()
        for entry in entries:
            if entry.id in seen_ids or (entry.url is not None and entry.url in seen_urls):
                continue
            seen_ids.add(entry.id)
            if entry.url is not None:
                seen_urls.add(entry.url)
            fresh.append(entry)
        have_ids, have_urls = await self.store.known([a.id for a in fresh], [a.url for a in fresh if a.url])
        fresh = [a for a in fresh if a.id not in have_ids and (a.url is None or a.url not in have_urls)]
        if not fresh:
            return [], len(entries), 0
        texts = [f"{a.title}. {a.summary}"[:_EMBED_CHARS] for a in fresh]
        # a few words say too little to call two articles one story (two untitled items would match)
        comparable = [len(f"{a.title} {a.summary}".strip()) >= _MIN_COMPARED for a in fresh]
        vectors = await self._embed(texts)
        stories = await self._stories(feed_url, vectors, now)
        stories = [story if ok else None for story, ok in zip(stories, comparable, strict=True)]
        articles = [
            replace(
                a,
                story_id=story or a.id,
                entities=extract_entities(f"{a.title}.\n{a.summary}"),
                first_seen=now,
            )
            for a, story in zip(fresh, stories, strict=True)
        ]
        packed = [pack_vector(v) if ok else None for v, ok in zip(vectors, comparable, strict=True)]
        kept = await self.store.insert(articles, packed)
        new = [a for a, ok in zip(articles, kept, strict=True) if ok]
        for article, vector, ok, compared in zip(articles, vectors, kept, comparable, strict=True):
            if ok and compared:
                self._recent[article.id] = _Known(feed_url, article.story_id, vector, now)
        return new, len(entries) - len(new), sum(a.syndicated for a in new)

    async def _embed(self, texts: list[str]) -> np.ndarray:
        import numpy as np

        if self._encoder is None:
            loaded, _ = await run_model(get_encoder)  # loading takes a second: not on the event loop
            self._encoder = loaded
        encoder = self._encoder
        vectors, _ = await run_model(encoder.encode, texts)
        matrix = np.asarray(vectors, dtype=np.float32)
        norms = np.linalg.norm(matrix, axis=1, keepdims=True)
        return matrix / np.where(norms > 0, norms, 1.0)

    async def _stories(self, feed_url: str, vectors: np.ndarray, now: float) -> list[str | None]:
        """For each vector, the story of the most similar recent article of another feed, if similar enough."""
        import numpy as np

        await self._refresh(now)
        others = [k for k in self._recent.values() if k.feed_url != feed_url]
        if not others:
            return [None] * len(vectors)
        similarity = vectors @ np.stack([k.vector for k in others]).T
        best = similarity.argmax(axis=1)
        return [
            others[j].story_id if similarity[i, j] >= self.near_duplicate else None
            for i, j in enumerate(best)
        ]

    async def _refresh(self, now: float) -> None:
        """Bring the window of recent vectors up to date: drop what aged out, read what is newer."""
        cutoff = now - self.window
        since = cutoff if self._looked is None else max(cutoff, self._looked - _OVERLAP)
        for row in await self.store.vectors_since(since):
            if row["id"] not in self._recent:
                vector = unpack_vector(row["vector"])
                self._recent[row["id"]] = _Known(
                    row["feed_url"], row["story_id"], vector, float(row["first_seen"])
                )
        self._recent = {k: v for k, v in self._recent.items() if v.first_seen >= cutoff}
        self._looked = now

    # -- the schedule

    async def _succeeded(
        self, state: FeedState, now: float, response: FetchResponse, title: str | None
    ) -> None:
        not_modified = response.not_modified or response.status == 304
        wait = max(self.interval, min(response.retry_after or 0.0, MAX_RETRY_AFTER))
        await self.store.save_feed(
            replace(
                state,
                etag=(response.etag or state.etag) if not_modified else response.etag,
                last_modified=(response.last_modified or state.last_modified)
                if not_modified
                else response.last_modified,
                last_polled=now,
                next_poll=now + wait,
                failures=0,
                last_status=response.status,
                last_error=None,
                title=title,
            )
        )

    async def _failed(
        self, state: FeedState, now: float, status: int | None, retry_after: float | None, error: str
    ) -> None:
        failures = state.failures + 1
        backoff = min(self.interval * 2.0**failures, self.max_backoff)
        wait = max(backoff, min(retry_after or 0.0, MAX_RETRY_AFTER))
        await self.store.save_feed(
            replace(
                state,
                last_polled=now,
                next_poll=now + wait,
                failures=failures,
                last_status=status,
                last_error=error[:500],
            )
        )
