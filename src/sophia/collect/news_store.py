"""News as it is kept: feeds (validators, schedule, failures) and articles (one row per story copy,
with its MiniLM vector), on a ``sophia.storage.Database`` (SQLite or PostgreSQL).

The article id is the primary key and the canonical URL is unique, so two pollers racing on one feed
still keep one row; inserts use ``ON CONFLICT DO NOTHING``. Vectors are kept (base64 float32) so that
near-duplicate checks never re-embed a week of articles. The poller is ``sophia.collect.news``.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import orjson

from sophia.collect.entities import Entities
from sophia.storage.db import Database, open_with_schema

SCHEMA = [
    """CREATE TABLE IF NOT EXISTS sophia_feeds (
        url TEXT PRIMARY KEY,
        etag TEXT,
        last_modified TEXT,
        last_polled DOUBLE PRECISION,
        next_poll DOUBLE PRECISION NOT NULL,
        failures INTEGER NOT NULL,
        last_status INTEGER,
        last_error TEXT,
        title TEXT
    )""",
    "CREATE INDEX IF NOT EXISTS sophia_feeds_next_poll ON sophia_feeds (next_poll)",
    """CREATE TABLE IF NOT EXISTS sophia_articles (
        id TEXT PRIMARY KEY,
        feed_url TEXT NOT NULL,
        url TEXT UNIQUE,
        title TEXT NOT NULL,
        summary TEXT NOT NULL,
        published TEXT,
        authors TEXT NOT NULL,
        language TEXT,
        story_id TEXT NOT NULL,
        entities TEXT NOT NULL,
        first_seen DOUBLE PRECISION NOT NULL,
        vector TEXT
    )""",
    "CREATE INDEX IF NOT EXISTS sophia_articles_first_seen ON sophia_articles (first_seen)",
    "CREATE INDEX IF NOT EXISTS sophia_articles_story ON sophia_articles (story_id)",
    "CREATE INDEX IF NOT EXISTS sophia_articles_feed ON sophia_articles (feed_url, first_seen)",
]
_ARTICLE_COLUMNS = (
    "id, feed_url, url, title, summary, published, authors, language, story_id, entities, first_seen"
)
_FEED_COLUMNS = "url, etag, last_modified, last_polled, next_poll, failures, last_status, last_error, title"


# -- records ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Article:
    id: str
    feed_url: str
    url: str | None  # canonical (urls.normalize); None when the entry has no usable link
    title: str
    summary: str  # plain text
    published: str | None  # ISO 8601, UTC
    authors: list[str]
    language: str | None
    story_id: str  # the id of the first article of its story (its own id unless it is a syndicated copy)
    entities: Entities = field(default_factory=Entities)
    first_seen: float = 0.0

    @property
    def syndicated(self) -> bool:
        return self.story_id != self.id


@dataclass(frozen=True, slots=True)
class PollResult:
    feed_url: str
    new: list[Article]  # syndicated copies included (they are new rows)
    duplicates: int  # entries already kept (by id or canonical URL), or repeated within the feed
    syndicated: int  # of ``new``, those that joined an earlier story
    not_modified: bool
    status: int


@dataclass(frozen=True, slots=True)
class FeedState:
    url: str
    etag: str | None = None
    last_modified: str | None = None
    last_polled: float | None = None
    next_poll: float = 0.0
    failures: int = 0
    last_status: int | None = None
    last_error: str | None = None
    title: str | None = None


# -- storage ---------------------------------------------------------------------------------------


class FeedStore:
    """Feeds' polling state and the articles kept from them, in one database (SQLite or PostgreSQL)."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._ready = False
        self._owned = False

    @classmethod
    async def open(cls, database: str | Database) -> FeedStore:
        """A store on ``database`` (a URL, opened and later closed here, or a shared ``Database``)."""
        db, owned = await open_with_schema(database, SCHEMA)
        store = cls(db)
        store._ready, store._owned = True, owned
        return store

    async def close(self) -> None:
        if self._owned:
            await self.db.close()

    async def _schema(self) -> None:
        if not self._ready:
            await self.db.migrate(SCHEMA)
            self._ready = True

    async def add_feeds(self, urls: Iterable[str], *, now: float = 0.0) -> None:
        """Subscribe to feeds (due at ``now``); feeds already known keep their state."""
        await self._schema()
        rows = [(url.strip(), now) for url in dict.fromkeys(urls) if url.strip()]
        if rows:
            await self.db.executemany(
                "INSERT INTO sophia_feeds (url, next_poll, failures) VALUES (?, ?, 0) ON CONFLICT DO NOTHING",
                rows,
            )

    async def feed(self, url: str) -> FeedState | None:
        await self._schema()
        row = await self.db.fetchone(f"SELECT {_FEED_COLUMNS} FROM sophia_feeds WHERE url = ?", (url,))
        return None if row is None else FeedState(**row)

    async def feeds(self) -> list[FeedState]:
        await self._schema()
        rows = await self.db.fetchall(f"SELECT {_FEED_COLUMNS} FROM sophia_feeds ORDER BY url")
        return [FeedState(**row) for row in rows]

    async def save_feed(self, state: FeedState) -> None:
        await self._schema()
        await self.db.execute(
            f"INSERT INTO sophia_feeds ({_FEED_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (url) DO UPDATE SET etag = excluded.etag, last_modified = excluded.last_modified, "
            "last_polled = excluded.last_polled, next_poll = excluded.next_poll, failures = excluded.failures, "
            "last_status = excluded.last_status, last_error = excluded.last_error, title = excluded.title",
            (
                state.url,
                state.etag,
                state.last_modified,
                state.last_polled,
                state.next_poll,
                state.failures,
                state.last_status,
                state.last_error,
                state.title,
            ),
        )

    async def due(self, now: float) -> list[str]:
        await self._schema()
        rows = await self.db.fetchall(
            "SELECT url FROM sophia_feeds WHERE next_poll <= ? ORDER BY next_poll, url", (now,)
        )
        return [row["url"] for row in rows]

    async def known(self, ids: Sequence[str], urls: Sequence[str]) -> tuple[set[str], set[str]]:
        """Which of ``ids`` and which of ``urls`` some kept article already has."""
        await self._schema()
        have_ids: set[str] = set()
        have_urls: set[str] = set()
        for column, values, found in (("id", ids, have_ids), ("url", urls, have_urls)):
            for i in range(0, len(values), 500):
                part = list(values[i : i + 500])
                marks = ", ".join("?" * len(part))
                rows = await self.db.fetchall(
                    f"SELECT {column} FROM sophia_articles WHERE {column} IN ({marks})", part
                )
                found.update(row[column] for row in rows)
        return have_ids, have_urls

    async def insert(self, articles: Sequence[Article], vectors: Sequence[str | None]) -> list[bool]:
        """Keep articles (one transaction); each flag says whether it was new (False: another poller
        kept the same id or URL first)."""
        await self._schema()
        if not articles:
            return []
        sql = (
            f"INSERT INTO sophia_articles ({_ARTICLE_COLUMNS}, vector) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING"
        )
        steps = [
            (
                sql,
                (
                    a.id,
                    a.feed_url,
                    a.url,
                    a.title,
                    a.summary,
                    a.published,
                    orjson.dumps(a.authors).decode(),
                    a.language,
                    a.story_id,
                    orjson.dumps(a.entities.as_json()).decode(),
                    a.first_seen,
                    vector,
                ),
            )
            for a, vector in zip(articles, vectors, strict=True)
        ]
        counts = await self.db.transaction(steps, lock="sophia_articles")
        return [count > 0 for count in counts]

    async def vectors_since(self, since: float) -> list[dict[str, Any]]:
        """id, feed_url, story_id, first_seen and vector (base64) of articles first seen at ``since`` or later."""
        await self._schema()
        return await self.db.fetchall(
            "SELECT id, feed_url, story_id, first_seen, vector FROM sophia_articles "
            "WHERE first_seen >= ? AND vector IS NOT NULL",
            (since,),
        )

    async def articles(
        self,
        *,
        feed_url: str | None = None,
        story_id: str | None = None,
        since: float | None = None,
        limit: int = 100,
    ) -> list[Article]:
        """Kept articles, newest first."""
        await self._schema()
        where: list[str] = []
        params: list[Any] = []
        for clause, value in (
            ("feed_url = ?", feed_url),
            ("story_id = ?", story_id),
            ("first_seen >= ?", since),
        ):
            if value is not None:
                where.append(clause)
                params.append(value)
        sql = f"SELECT {_ARTICLE_COLUMNS} FROM sophia_articles"
        if where:
            sql += " WHERE " + " AND ".join(where)
        rows = await self.db.fetchall(f"{sql} ORDER BY first_seen DESC, id LIMIT ?", [*params, int(limit)])
        return [_article(row) for row in rows]


def _article(row: dict[str, Any]) -> Article:
    return Article(
        id=row["id"],
        feed_url=row["feed_url"],
        url=row["url"],
        title=row["title"],
        summary=row["summary"],
        published=row["published"],
        authors=list(orjson.loads(row["authors"])),
        language=row["language"],
        story_id=row["story_id"],
        entities=Entities.from_json(orjson.loads(row["entities"])),
        first_seen=float(row["first_seen"]),
    )


def pack_vector(vector: np.ndarray) -> str:
    import numpy as np

    return base64.b64encode(np.asarray(vector, dtype="<f4").tobytes()).decode("ascii")


def unpack_vector(text: str) -> np.ndarray:
    import numpy as np

    return np.frombuffer(base64.b64decode(text), dtype="<f4")
