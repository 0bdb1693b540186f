"""Sitemaps: URL sets, indexes, gzip, text, feeds, the protocol's limits, and hostile XML."""

from __future__ import annotations

import gzip
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from sophia.collect.sitemaps import MAX_BYTES, MAX_URLS, SitemapURL, parse_sitemap, walk_sitemaps
from sophia.errors import PayloadTooLarge

BASE = "https://example.com/sitemap.xml"

URLSET = b"""<?xml version="1.0" encoding="UTF-8"?>
<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9"
        xmlns:image="http://www.google.com/schemas/sitemap-image/1.1">
  <url><loc>https://example.com/</loc><lastmod>2024-05-01</lastmod><priority>1.0</priority></url>
  <url>
    <loc> https://example.com/a?x=1&amp;y=2 </loc>
    <lastmod>2024-05-01T10:30:00+02:00</lastmod>
    <image:image><image:loc>https://cdn.example.com/a.png</image:loc></image:image>
  </url>
  <url><loc>/relative/page</loc><lastmod>2023</lastmod></url>
  <url><loc>https://example.com/</loc></url>
  <url><loc>ftp://example.com/file</loc></url>
  <url><loc>javascript:alert(1)</loc></url>
  <url><lastmod>2024-01-01</lastmod></url>
  <url><loc>https://example.com/b</loc><lastmod>not a date</lastmod></url>
  <url><loc>https://example.com/c</loc><lastmod>2024-02-03T04:05:06Z</lastmod></url>
</urlset>
"""


def test_urlset_locs_and_lastmods() -> None:
    sitemap = parse_sitemap(URLSET, BASE)
    assert sitemap.sitemaps == []
    assert sitemap.urls == [
        SitemapURL("https://example.com/", datetime(2024, 5, 1, tzinfo=UTC)),
        SitemapURL(
            "https://example.com/a?x=1&y=2",
            datetime(2024, 5, 1, 10, 30, tzinfo=timezone(timedelta(hours=2))),
        ),
        SitemapURL("https://example.com/relative/page", datetime(2023, 1, 1, tzinfo=UTC)),
        SitemapURL("https://example.com/b", None),
        SitemapURL("https://example.com/c", datetime(2024, 2, 3, 4, 5, 6, tzinfo=UTC)),
    ]


def test_sitemap_index() -> None:
    index = b"""<?xml version="1.0" encoding="UTF-8"?>
    <sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">
      <sitemap><loc>https://example.com/sitemap-posts.xml.gz</loc><lastmod>2024-01-01</lastmod></sitemap>
      <sitemap><loc>sitemap-pages.xml</loc></sitemap>
      <sitemap><loc>https://example.com/sitemap-posts.xml.gz</loc></sitemap>
    </sitemapindex>"""
    sitemap = parse_sitemap(index, BASE)
    assert sitemap.urls == []
    assert sitemap.sitemaps == [
        "https://example.com/sitemap-posts.xml.gz",
        "https://example.com/sitemap-pages.xml",
    ]


def test_gzip_body_is_decompressed() -> None:
    sitemap = parse_sitemap(gzip.compress(URLSET), BASE + ".gz")
    assert [u.loc for u in sitemap.urls][:2] == ["https://example.com/", "https://example.com/a?x=1&y=2"]


def test_broken_gzip_is_empty_not_an_error() -> None:
    assert parse_sitemap(gzip.compress(URLSET)[:40], BASE).urls == []


def test_plain_text_sitemap() -> None:
    text = "\ufeffhttps://example.com/one\r\n\n  https://example.com/two  \n# not a url\nmailto:x@y.z\nhttps://example.com/one\n"
    sitemap = parse_sitemap(text.encode(), "https://example.com/sitemap.txt")
    assert [u.loc for u in sitemap.urls] == ["https://example.com/one", "https://example.com/two"]
    assert all(u.lastmod is None for u in sitemap.urls)


def test_rss_and_atom_feeds_as_sitemaps() -> None:
    rss = b"""<rss version="2.0"><channel><title>t</title><link>https://example.com/</link>
      <item><link>https://example.com/post-1</link><pubDate>Tue, 02 Jan 2024 10:00:00 GMT</pubDate></item>
      <item><link>/post-2</link></item></channel></rss>"""
    assert parse_sitemap(rss, "https://example.com/feed").urls == [
        SitemapURL("https://example.com/post-1", datetime(2024, 1, 2, 10, tzinfo=UTC)),
        SitemapURL("https://example.com/post-2", None),
    ]
    atom = b"""<feed xmlns="http://www.w3.org/2005/Atom"><link href="https://example.com/"/>
      <entry><link rel="self" href="https://example.com/self"/><link href="https://example.com/e1"/>
        <updated>2024-03-04T05:06:07Z</updated></entry>
      <entry><link rel="enclosure" href="https://example.com/e2.mp3"/></entry></feed>"""
    assert parse_sitemap(atom, "https://example.com/atom").urls == [
        SitemapURL("https://example.com/e1", datetime(2024, 3, 4, 5, 6, 7, tzinfo=UTC)),
        SitemapURL("https://example.com/e2.mp3", None),
    ]


def test_malformed_xml_keeps_what_it_can() -> None:
    broken = b"""<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">
      <url><loc>https://example.com/ok</loc></url>
      <url><loc>https://example.com/unclosed</loc>
      <url><loc>https://example.com/after & before</loc></url>"""
    locs = [u.loc for u in parse_sitemap(broken, BASE).urls]
    assert "https://example.com/ok" in locs
    assert parse_sitemap(b"", BASE).urls == []
    assert parse_sitemap(b"<<<>>>", BASE).urls == []


def test_url_limit_truncates_at_50000() -> None:
    rows = b"".join(b"<url><loc>https://example.com/p%d</loc></url>" % i for i in range(MAX_URLS + 5))
    sitemap = parse_sitemap(
        b'<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">' + rows + b"</urlset>", BASE
    )
    assert len(sitemap.urls) == MAX_URLS
    assert sitemap.truncated
    assert sitemap.urls[-1].loc == f"https://example.com/p{MAX_URLS - 1}"


def test_size_limit_applies_after_decompression() -> None:
    bomb = gzip.compress(b"<urlset>" + b" " * MAX_BYTES + b"</urlset>")
    assert len(bomb) < 200_000
    with pytest.raises(PayloadTooLarge, match="over the protocol's limit"):
        parse_sitemap(bomb, BASE)
    with pytest.raises(PayloadTooLarge):
        parse_sitemap(b"https://example.com/\n" * (MAX_BYTES // 20), BASE)


def test_entities_are_not_expanded() -> None:
    laughs = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<urlset><url><loc>https://example.com/&lol9;</loc></url><url><loc>https://example.com/x</loc></url></urlset>"""
    sitemap = parse_sitemap(laughs, BASE)
    assert all("lollol" not in u.loc for u in sitemap.urls)
    assert "https://example.com/x" in [u.loc for u in sitemap.urls]


def test_external_entities_are_not_loaded(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("TOPSECRET")
    xxe = f"""<?xml version="1.0"?>
<!DOCTYPE urlset [<!ENTITY xxe SYSTEM "file://{secret}">]>
<urlset><url><loc>https://example.com/&xxe;</loc></url></urlset>""".encode()
    sitemap = parse_sitemap(xxe, BASE)
    assert all("TOPSECRET" not in u.loc for u in sitemap.urls)


async def test_walk_follows_indexes_once_to_a_depth() -> None:
    def index(*children: str) -> bytes:
        rows = "".join(f"<sitemap><loc>{c}</loc></sitemap>" for c in children)
        return f"<sitemapindex>{rows}</sitemapindex>".encode()

    def urlset(*pages: str) -> bytes:
        return ("<urlset>" + "".join(f"<url><loc>{p}</loc></url>" for p in pages) + "</urlset>").encode()

    site = {
        "https://e.test/root.xml": index(
            "https://e.test/a.xml", "https://e.test/deep1.xml", "https://e.test/root.xml"
        ),
        "https://e.test/a.xml": gzip.compress(urlset("https://e.test/1", "https://e.test/2")),
        "https://e.test/deep1.xml": index("https://e.test/deep2.xml", "https://e.test/gone.xml"),
        "https://e.test/deep2.xml": index("https://e.test/deep3.xml"),
        "https://e.test/deep3.xml": urlset("https://e.test/too-deep"),
    }
    calls: list[str] = []

    async def fetch(url: str) -> bytes | None:
        calls.append(url)
        return site.get(url)

    found = [u.loc async for u in walk_sitemaps(["https://e.test/root.xml"], fetch, max_depth=2)]
    assert found == ["https://e.test/1", "https://e.test/2"]
    assert sorted(calls) == sorted(set(calls))  # each sitemap at most once, the self-loop included
    assert "https://e.test/deep3.xml" not in calls

    calls.clear()
    found = [u.loc async for u in walk_sitemaps(["https://e.test/root.xml"], fetch, max_depth=3)]
    assert found[-1] == "https://e.test/too-deep"

    calls.clear()
    found = [u.loc async for u in walk_sitemaps(["https://e.test/root.xml"], fetch, max_files=1)]
    assert found == [] and calls == ["https://e.test/root.xml"]
