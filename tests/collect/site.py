"""A small local web site for the collector's tests: robots.txt, a sitemap, links, copies, errors, a busy page.

``Site(httpserver)`` serves every path through one handler that logs each request, so a test can
say exactly what was fetched and how often. ``slow`` delays every page (to kill a crawl mid-way).
"""

from __future__ import annotations

import re
import threading
import time
from collections import Counter

from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

WORDS = [
    "leasing",
    "occupancy",
    "renewals",
    "maintenance",
    "residents",
    "portfolio",
    "pricing",
    "integration",
    "screening",
    "tours",
    "concessions",
    "delinquency",
    "turnover",
    "amenities",
    "payments",
]


def article(title: str, seed: int, links: list[str]) -> str:
    body = " ".join(WORDS[(seed * 7 + i * 3) % len(WORDS)] for i in range(60))
    anchors = " ".join(f'<a href="{href}">{href}</a>' for href in links)
    return (
        f"<html><head><title>{title}</title></head><body><nav>{anchors}</nav><article><h1>{title}</h1>"
        f"<p>{title} page {seed}: {body}.</p><p>Operators of page {seed} said {body[:120]}.</p></article></body></html>"
    )


class Site:
    def __init__(self, server: HTTPServer, *, slow: float = 0.0) -> None:
        self.server = server
        self.slow = slow
        self.log: list[str] = []
        self._lock = threading.Lock()
        self.busy_left = 1
        base = server.url_for("/").rstrip("/")
        self.pages: dict[str, str] = {
            "/": article("Home", 0, ["/a", "/b", "/private/secret", "/private/open", "/dup", "/missing",
                                     "http://elsewhere.example/", "/busy", "/a?utm_source=nav"]),
            "/a": article("Section A", 1, ["/a/1", "/a/2", "/"]),
            "/a/1": article("A one", 2, ["/a"]),
            "/a/2": article("A two", 3, ["/a", "/a/3"]),
            "/a/3": article("A three", 4, []),
            "/b": article("Section B", 5, ["/b/1"]),
            "/b/1": article("B one", 6, []),
            "/private/secret": article("Secret", 7, []),
            "/private/open": article("Open", 8, []),
            "/dup": article("A one", 2, ["/a"]),  # the same page as /a/1 under another URL
            "/orphan": article("Orphan", 9, []),  # only the sitemap lists it
            "/busy": article("Busy", 10, []),
        }  # fmt: skip
        self.robots = (
            "User-agent: *\nDisallow: /private\nAllow: /private/open\n"
            f"User-agent: SophiaBot\nDisallow: /private\nAllow: /private/open\nSitemap: {base}/sitemap.xml\n"
        )
        self.sitemap = (
            '<?xml version="1.0" encoding="UTF-8"?><urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
            f"<url><loc>{base}/orphan</loc></url><url><loc>{base}/a</loc></url></urlset>"
        )
        server.expect_request(re.compile(r"^/.*")).respond_with_handler(self.handle)

    def url(self, path: str = "/") -> str:
        return self.server.url_for(path)

    def handle(self, request: Request) -> Response:
        path = request.path
        with self._lock:
            self.log.append(path)
        if path == "/robots.txt":
            return Response(self.robots, content_type="text/plain")
        if path == "/sitemap.xml":
            return Response(self.sitemap, content_type="application/xml")
        if self.slow:
            time.sleep(self.slow)
        if path == "/busy":
            with self._lock:
                busy, self.busy_left = self.busy_left > 0, self.busy_left - 1
            if busy:
                return Response("slow down", status=429, headers={"Retry-After": "1"})
        if path in self.pages:
            return Response(self.pages[path], content_type="text/html; charset=utf-8")
        return Response("not here", status=404)

    def fetched(self) -> Counter[str]:
        """Page requests per path (robots.txt and the sitemap aside)."""
        with self._lock:
            return Counter(p for p in self.log if p not in ("/robots.txt", "/sitemap.xml"))
