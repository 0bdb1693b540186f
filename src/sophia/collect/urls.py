"""URLs as the collector keeps them: one spelling per page, so a page is stored, indexed and crawled once.

``normalize`` lower-cases the scheme and host, drops the default port, the fragment and tracking
parameters (``utm_*``, ``fbclid``, ``gclid`` …), resolves ``.``/``..`` path segments and keeps the
rest of the query in its order (a query's order can matter to a server). It refuses what the
fetcher would refuse anyway (no scheme but http/https, no host, user info), with a clear error.
"""

from __future__ import annotations

import posixpath
from urllib.parse import parse_qsl, quote, unquote, urlencode, urljoin, urlsplit, urlunsplit

from sophia.errors import InvalidRequest

TRACKING = frozenset({"fbclid", "gclid", "dclid", "msclkid", "mc_cid", "mc_eid", "_hsenc", "_hsmi", "igshid"})
DEFAULT_PORTS = {"http": 80, "https": 443}
MAX_URL = 4096


def _path(path: str) -> str:
    if not path:
        return "/"
    trailing = path.endswith("/")
    clean = posixpath.normpath(path)
    if clean.startswith("//"):
        clean = "/" + clean.lstrip("/")
    if trailing and not clean.endswith("/"):
        clean += "/"
    # one spelling of each character: decode what need not be encoded, encode what must be
    return quote(unquote(clean), safe="/:@!$&'()*+,;=-._~%")


def normalize(url: str, base: str | None = None) -> str:
    """The canonical form of ``url`` (joined to ``base`` first when given)."""
    if not isinstance(url, str) or not url.strip():
        raise InvalidRequest("the URL is empty", param="url")
    url = url.strip()
    if len(url) > MAX_URL:
        raise InvalidRequest(f"the URL is longer than {MAX_URL} characters", param="url")
    if base is not None:
        url = urljoin(base, url)
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise InvalidRequest(f"not a valid URL: {exc}", param="url") from None
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS:
        raise InvalidRequest(
            f"only http and https URLs are collected, not {scheme or 'a relative URL'!r}", param="url"
        )
    if parts.username is not None or parts.password is not None:
        raise InvalidRequest("URLs with user info (user@host) are refused", param="url")
    host = (parts.hostname or "").rstrip(".").lower()
    if not host:
        raise InvalidRequest("the URL has no host", param="url")
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    netloc = host if port is None or port == DEFAULT_PORTS[scheme] else f"{host}:{port}"
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if not _tracking(k)]
    return urlunsplit((scheme, netloc, _path(parts.path), urlencode(query, doseq=True), ""))


def _tracking(key: str) -> bool:
    key = key.lower()
    return key.startswith("utm_") or key in TRACKING


def origin(url: str) -> str:
    """``scheme://host[:port]`` of a normalised URL: what same-origin crawling and robots.txt key on."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def domain(url: str) -> str:
    """The host of a URL without ``www.``: what search filters and reports group pages by."""
    host = (urlsplit(url).hostname or "").lower()
    return host[4:] if host.startswith("www.") else host
