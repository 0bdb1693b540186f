"""Sitemaps (sitemaps.org 0.9): URL sets, sitemap indexes, gzip bodies, plain-text lists, RSS and Atom.

``parse_sitemap`` is a pure function of one response body, so the crawler decides what to fetch and
this module never touches the network. ``walk_sitemaps`` follows indexes with a fetch function the
caller gives it, to a fixed depth, each sitemap once.

A sitemap comes from whoever runs the site, so it is parsed as hostile: no entity is expanded and no
DTD or external resource is loaded (lxml with ``resolve_entities=False``, ``no_network=True``,
``load_dtd=False``), and the protocol's limits (50,000 URLs, 50 MB uncompressed) bound what one file costs.
"""

from __future__ import annotations

import io
import logging
import re
import zlib
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from urllib.parse import urljoin, urlsplit

from lxml import etree

from sophia.errors import PayloadTooLarge

__all__ = ["MAX_BYTES", "MAX_URLS", "Sitemap", "SitemapURL", "parse_sitemap", "walk_sitemaps"]

#: sitemaps.org: at most 50,000 URLs and 50 MB (52,428,800 bytes) uncompressed per file
MAX_URLS = 50_000
MAX_BYTES = 52_428_800

_GZIP_MAGIC = b"\x1f\x8b"
_log = logging.getLogger(__name__)
_W3C_DATE = re.compile(r"^\d{4}(-\d{2}(-\d{2})?)?$")
_BOM = b"\xef\xbb\xbf"
_DOCTYPE = re.compile(rb"<!DOCTYPE[^\[>]*(?:\[.*?\])?\s*>", re.IGNORECASE | re.DOTALL)


@dataclass(frozen=True, slots=True)
class SitemapURL:
    loc: str
    lastmod: datetime | None = None  # timezone-aware (UTC when the sitemap gave no zone)


@dataclass(slots=True)
class Sitemap:
    urls: list[SitemapURL] = field(default_factory=list)
    #: child sitemaps of a sitemap index (absolute http/https URLs)
    sitemaps: list[str] = field(default_factory=list)
    #: True when the file listed more than MAX_URLS entries and the rest were dropped
    truncated: bool = False


def parse_sitemap(content: bytes, base_url: str) -> Sitemap:
    """The URLs and child sitemaps one sitemap body lists, resolved against ``base_url``.

    Unparseable input gives an empty ``Sitemap`` (a broken sitemap should not stop a crawl); only a
    body over the 50 MB limit raises (``PayloadTooLarge``), since reading it is the cost to refuse.
    """
    body = _decompress(content) if content[:2] == _GZIP_MAGIC else content
    if len(body) > MAX_BYTES:
        raise PayloadTooLarge(
            f"the sitemap {base_url} is {len(body):,} bytes, over the protocol's limit of {MAX_BYTES:,}"
        )
    if body.removeprefix(_BOM).lstrip()[:1] == b"<" or body[:2] in (b"\xff\xfe", b"\xfe\xff"):
        return _parse_xml(body, base_url)
    return _parse_text(body, base_url)


def _decompress(content: bytes) -> bytes:
    """Gunzip at most MAX_BYTES + 1 bytes, so a small gzip bomb cannot expand to gigabytes."""
    inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    try:
        return inflater.decompress(content, MAX_BYTES + 1)
    except zlib.error as exc:
        _log.info("sitemap body is not valid gzip (%s): read as empty", exc)
        return b""


class _Collector:
    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.result = Sitemap()
        self._seen_urls: set[str] = set()
        self._seen_maps: set[str] = set()

    def url(self, loc: str | None, lastmod: str | None) -> None:
        absolute = _absolute(loc, self.base_url)
        if absolute is None or absolute in self._seen_urls:
            return
        if len(self.result.urls) >= MAX_URLS:
            self.result.truncated = True
            return
        self._seen_urls.add(absolute)
        self.result.urls.append(SitemapURL(absolute, _date(lastmod)))

    def sitemap(self, loc: str | None) -> None:
        absolute = _absolute(loc, self.base_url)
        if absolute is None or absolute in self._seen_maps:
            return
        if len(self.result.sitemaps) >= MAX_URLS:
            self.result.truncated = True
            return
        self._seen_maps.add(absolute)
        self.result.sitemaps.append(absolute)


def _local(tag: object) -> str:
    if not isinstance(tag, str):
        return ""  # comments, processing instructions, unresolved entities
    return tag.rsplit("}", 1)[-1].lower()


def _child_text(element: etree._Element, name: str) -> str | None:
    for child in element:
        if _local(child.tag) == name:
            return "".join(child.itertext()).strip() or None
    return None


def _parse_xml(body: bytes, base_url: str) -> Sitemap:
    collect = _Collector(base_url)
    if b"<!doctype" in body[:65536].lower():
        # no sitemap needs a DTD: dropping it leaves entity bombs undefined (libxml2 would otherwise
        # abort the whole document on its amplification check and lose every URL of it)
        body = _DOCTYPE.sub(b"", body, count=1)
    events = etree.iterparse(
        io.BytesIO(body),
        events=("end",),
        recover=True,
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        huge_tree=False,
        remove_comments=True,
    )
    try:
        for _, element in events:
            name = _local(element.tag)
            if name == "url":  # <urlset><url><loc/><lastmod/>
                collect.url(_child_text(element, "loc"), _child_text(element, "lastmod"))
            elif name == "sitemap":  # <sitemapindex><sitemap><loc/>
                collect.sitemap(_child_text(element, "loc"))
            elif name == "item":  # RSS 2.0 <item><link/><pubDate/>
                collect.url(_child_text(element, "link"), _child_text(element, "pubdate"))
            elif name == "entry":  # Atom <entry><link href/><updated/>
                collect.url(_atom_link(element), _child_text(element, "updated"))
            else:
                continue
            # free what was read: a 50 MB sitemap should not become a 500 MB tree
            element.clear(keep_tail=False)
            while element.getprevious() is not None:
                del element.getparent()[0]
    except etree.XMLSyntaxError as exc:
        # recover=True gives up only on hopeless input (empty, not XML): keep what was read before it
        _log.info(
            "sitemap %s is not well-formed XML (%s): kept %d URLs", base_url, exc, len(collect.result.urls)
        )
    return collect.result


def _atom_link(entry: etree._Element) -> str | None:
    fallback = None
    for child in entry:
        if _local(child.tag) == "link":
            rel = child.get("rel", "alternate")
            if rel == "alternate":
                return child.get("href")
            fallback = fallback or child.get("href")
    return fallback


def _parse_text(body: bytes, base_url: str) -> Sitemap:
    """sitemaps.org "text file": one URL per line, UTF-8; other lines are ignored."""
    collect = _Collector(base_url)
    for raw in body.removeprefix(_BOM).decode("utf-8", "replace").splitlines():
        line = raw.strip()
        if line.lower().startswith(("http://", "https://")):
            collect.url(line, None)
    return collect.result


def _absolute(loc: str | None, base_url: str) -> str | None:
    if not loc:
        return None
    absolute = urljoin(base_url, loc.strip())
    parts = urlsplit(absolute)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    return absolute.split("#", 1)[0]


def _date(value: str | None) -> datetime | None:
    """W3C Datetime (``2024``, ``2024-05``, ``2024-05-01``, ``2024-05-01T10:00:00+02:00``) or RFC 822 (RSS)."""
    if not value:
        return None
    text = value.strip()
    try:
        if _W3C_DATE.match(text):
            parsed = datetime.strptime(text + "-01-01"[len(text) - 4 :], "%Y-%m-%d")
        else:
            parsed = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        from email.utils import parsedate_to_datetime

        try:
            parsed = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


async def walk_sitemaps(
    roots: list[str],
    fetch: Callable[[str], Awaitable[bytes | None]],
    *,
    max_depth: int = 3,
    max_files: int = 1_000,
) -> AsyncIterator[SitemapURL]:
    """Every page URL reachable from ``roots`` through sitemap indexes, each sitemap fetched once.

    ``fetch`` returns a sitemap's body (``None`` when it could not be had: skipped). An index deeper than
    ``max_depth`` (roots are depth 0) is not followed, nor any file past ``max_files``: indexes that
    point at each other or fan out without end cost a bounded number of requests.
    """
    seen: set[str] = set()
    queue: deque[tuple[str, int]] = deque((url, 0) for url in roots)
    fetched = 0
    while queue and fetched < max_files:
        url, depth = queue.popleft()
        if url in seen:
            continue
        seen.add(url)
        body = await fetch(url)
        fetched += 1
        if body is None:
            continue
        try:
            sitemap = parse_sitemap(body, url)
        except PayloadTooLarge as exc:
            _log.warning("skipped sitemap: %s", exc.message)
            continue
        for entry in sitemap.urls:
            yield entry
        if depth < max_depth:
            queue.extend((child, depth + 1) for child in sitemap.sitemaps if child not in seen)
