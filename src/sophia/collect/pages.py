"""Fetched pages as the collector keeps them: the raw body and the extracted document, each with a hash.

``sophia_pages`` (SQLite in the data folder by default, PostgreSQL for many workers) holds one row
per normalised URL: the validators a conditional GET sends back (ETag, Last-Modified), the body
compressed (zlib, base64 so that one portable TEXT column serves both databases), its SHA-256, the
extracted text's SHA-256 and metadata as JSON, and ``duplicate_of`` when the text is a copy of
another page's. A page is re-extracted and re-indexed only when its body's hash changes.
"""

from __future__ import annotations

import base64
import time
import zlib
from dataclasses import dataclass, field
from typing import Any

import orjson

from sophia.storage.db import Database

SCHEMA = [
    """CREATE TABLE IF NOT EXISTS sophia_pages (
        url TEXT PRIMARY KEY,
        final_url TEXT NOT NULL,
        domain TEXT NOT NULL,
        status INTEGER NOT NULL,
        content_type TEXT,
        etag TEXT,
        last_modified TEXT,
        raw_hash TEXT NOT NULL,
        raw TEXT NOT NULL,
        text_hash TEXT,
        extracted TEXT NOT NULL,
        duplicate_of TEXT,
        fetched_at DOUBLE PRECISION NOT NULL,
        changed_at DOUBLE PRECISION NOT NULL,
        fetches INTEGER NOT NULL
    )""",
    "CREATE INDEX IF NOT EXISTS sophia_pages_text_hash ON sophia_pages (text_hash)",
    "CREATE INDEX IF NOT EXISTS sophia_pages_domain ON sophia_pages (domain)",
]

_COLUMNS = (
    "url, final_url, domain, status, content_type, etag, last_modified, raw_hash, raw, text_hash, "
    "extracted, duplicate_of, fetched_at, changed_at, fetches"
)


@dataclass
class Page:
    """One stored page. ``extracted`` holds title, author, date, language, sitename, description,
    links and text (see ``sophia.collect.extract``)."""

    url: str
    final_url: str
    domain: str
    status: int
    raw_hash: str
    raw: bytes
    extracted: dict[str, Any] = field(default_factory=dict)
    content_type: str | None = None
    etag: str | None = None
    last_modified: str | None = None
    text_hash: str | None = None
    duplicate_of: str | None = None
    fetched_at: float = 0.0
    changed_at: float = 0.0
    fetches: int = 1

    @property
    def text(self) -> str:
        return str(self.extracted.get("text") or "")

    @property
    def title(self) -> str:
        return str(self.extracted.get("title") or "")


def _pack(raw: bytes) -> str:
    return base64.b64encode(zlib.compress(raw, 6)).decode("ascii")


def _unpack(text: str) -> bytes:
    return zlib.decompress(base64.b64decode(text))


def _page(row: Any) -> Page:
    return Page(
        url=row["url"],
        final_url=row["final_url"],
        domain=row["domain"],
        status=int(row["status"]),
        content_type=row["content_type"],
        etag=row["etag"],
        last_modified=row["last_modified"],
        raw_hash=row["raw_hash"],
        raw=_unpack(row["raw"]),
        text_hash=row["text_hash"],
        extracted=orjson.loads(row["extracted"]),
        duplicate_of=row["duplicate_of"],
        fetched_at=float(row["fetched_at"]),
        changed_at=float(row["changed_at"]),
        fetches=int(row["fetches"]),
    )


class PageStore:
    """The pages table on a ``sophia.storage.Database`` (SQLite or PostgreSQL)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def migrate(self) -> None:
        await self.db.migrate(SCHEMA)

    async def get(self, url: str) -> Page | None:
        row = await self.db.fetchone(f"SELECT {_COLUMNS} FROM sophia_pages WHERE url = ?", (url,))
        return None if row is None else _page(row)

    async def put(self, page: Page) -> None:
        """Insert or replace ``page`` (its ``fetches`` counts every fetch of the URL).

        A page with text that no other page is known to copy is written under a lock on its text's
        hash, and becomes a copy there if another original with that text got in first: two workers
        fetching two URLs of one text at once (a crawl on several arq workers) keep one original, as
        one worker would. ``page.duplicate_of`` is set to what was stored."""
        if page.text_hash is None or page.duplicate_of is not None:
            await self.db.execute(*self._upsert(page))
            return
        sql, values = self._upsert(page)
        await self.db.transaction(
            [
                (sql, values),
                (
                    "UPDATE sophia_pages SET duplicate_of = (SELECT o.url FROM sophia_pages o WHERE "
                    "o.text_hash = ? AND o.url <> ? AND o.duplicate_of IS NULL ORDER BY o.changed_at, o.url "
                    "LIMIT 1) WHERE url = ?",
                    (page.text_hash, page.url, page.url),
                ),
            ],
            lock=f"sophia_pages:text:{page.text_hash}",
        )
        row = await self.db.fetchone("SELECT duplicate_of FROM sophia_pages WHERE url = ?", (page.url,))
        page.duplicate_of = None if row is None or row["duplicate_of"] is None else str(row["duplicate_of"])

    def _upsert(self, page: Page) -> tuple[str, tuple[Any, ...]]:
        now = time.time()
        page.fetched_at = page.fetched_at or now
        page.changed_at = page.changed_at or now
        values = (
            page.url,
            page.final_url,
            page.domain,
            page.status,
            page.content_type,
            page.etag,
            page.last_modified,
            page.raw_hash,
            _pack(page.raw),
            page.text_hash,
            orjson.dumps(page.extracted).decode(),
            page.duplicate_of,
            page.fetched_at,
            page.changed_at,
            page.fetches,
        )
        return (
            f"INSERT INTO sophia_pages ({_COLUMNS}) VALUES ({', '.join('?' * len(values))}) "
            "ON CONFLICT (url) DO UPDATE SET final_url = excluded.final_url, domain = excluded.domain, "
            "status = excluded.status, content_type = excluded.content_type, etag = excluded.etag, "
            "last_modified = excluded.last_modified, raw_hash = excluded.raw_hash, raw = excluded.raw, "
            "text_hash = excluded.text_hash, extracted = excluded.extracted, "
            "duplicate_of = excluded.duplicate_of, fetched_at = excluded.fetched_at, "
            "changed_at = excluded.changed_at, fetches = sophia_pages.fetches + 1",
            values,
        )

    async def touch(self, url: str, *, etag: str | None, last_modified: str | None) -> None:
        """A fetch that found the page unchanged (304, or the same body): new validators, same content."""
        await self.db.execute(
            "UPDATE sophia_pages SET fetched_at = ?, fetches = fetches + 1, "
            "etag = COALESCE(?, etag), last_modified = COALESCE(?, last_modified) WHERE url = ?",
            (time.time(), etag, last_modified, url),
        )

    async def with_text(self, text_hash: str, *, other_than: str) -> str | None:
        """The URL of another stored, non-duplicate page whose text hashes to ``text_hash``."""
        row = await self.db.fetchone(
            "SELECT url FROM sophia_pages WHERE text_hash = ? AND url <> ? AND duplicate_of IS NULL "
            "ORDER BY changed_at, url LIMIT 1",
            (text_hash, other_than),
        )
        return None if row is None else str(row["url"])

    async def stats(self) -> dict[str, Any]:
        rows = await self.db.fetchall(
            "SELECT domain, COUNT(*) AS pages, SUM(CASE WHEN duplicate_of IS NULL THEN 0 ELSE 1 END) AS dups "
            "FROM sophia_pages GROUP BY domain ORDER BY pages DESC, domain"
        )
        domains = {
            str(r["domain"]): {"pages": int(r["pages"]), "duplicates": int(r["dups"] or 0)} for r in rows
        }
        return {
            "pages": sum(d["pages"] for d in domains.values()),
            "duplicates": sum(d["duplicates"] for d in domains.values()),
            "domains": domains,
        }
