"""robots.txt by RFC 9309, with the leniency of Google's reference parser where the RFC leaves room.

Written here rather than taken from ``protego`` (0.7): run on the cases of tests/collect/test_robots.py,
protego lets an unknown line (``Invalid-Unknown-Line: x``) close a group of user-agent lines and does
not obey ``User-agent: Foo Bar`` as ``Foo`` (8 of the 96 cases fail), and it knows nothing of what
an HTTP status means for the file (RFC 9309 2.3.1) nor of the 500 KiB parse limit (2.5). The matcher
below is small, linear in path x pattern, and ours to keep right.

What the fetcher passes in is the body and the final status after following at most five redirects
(2.3.1.2): 2xx is parsed, 3xx (too many redirects) and 4xx mean "no robots.txt" (everything allowed),
5xx or no answer at all (status 0) mean "assume complete disallow" (2.3.1.3, 2.3.1.4).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

__all__ = ["MAX_BYTES", "UNREACHABLE", "Robots", "Rule", "normalise_path"]

#: RFC 9309 2.5: a parser must read at least 500 KiB; what lies past it is ignored
MAX_BYTES = 500 * 1024
#: the status to pass when the file could not be fetched at all (DNS, refused, timed out)
UNREACHABLE = 0

_UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
_HEX = frozenset("0123456789abcdefABCDEF")
# printable ASCII that may stand unescaped in a URI path or query (RFC 3986 pchar, "/", "?", and the
# two characters robots.txt gives a meaning to); anything else is percent-encoded before comparing
_KEEP = _UNRESERVED | frozenset("!$&'()*+,;=:@/?%[]")
_PRODUCT = re.compile(r"[A-Za-z_-]+")
_EOL = re.compile(r"\r\n|\r|\n")  # RFC 9309 2.2: CR, LF or CRLF, nothing else
# field names as Google's parser accepts them, typos included (robots.cc, ParseKeyAndValue)
_USER_AGENT = frozenset({"user-agent", "useragent", "user agent"})
_ALLOW = frozenset({"allow"})
_DISALLOW = frozenset({"disallow", "dissallow", "dissalow", "disalow", "diasllow", "disallaw"})
_SITEMAP = frozenset({"sitemap", "site-map"})
_CRAWL_DELAY = frozenset({"crawl-delay", "crawl delay", "crawldelay"})
_KNOWN = _USER_AGENT | _ALLOW | _DISALLOW | _SITEMAP | _CRAWL_DELAY


def normalise_path(value: str) -> str:
    """The form in which a rule and a URL path are compared (RFC 9309 2.2.2).

    Non-ASCII characters become their UTF-8 octets percent-encoded, escapes of unreserved characters
    are decoded (``%62%61%7A`` is ``baz``), other escapes get upper-case hex (``%aa`` is ``%AA``).
    Both sides go through this one function, so equal resources compare equal however they were written.
    """
    out: list[str] = []
    i, n = 0, len(value)
    while i < n:
        ch = value[i]
        if ch == "%" and i + 2 < n and value[i + 1] in _HEX and value[i + 2] in _HEX:
            decoded = chr(int(value[i + 1 : i + 3], 16))
            out.append(decoded if decoded in _UNRESERVED else "%" + value[i + 1 : i + 3].upper())
            i += 3
            continue
        if ch in _KEEP:
            out.append("%25" if ch == "%" else ch)
        else:
            out.extend(f"%{byte:02X}" for byte in ch.encode("utf-8", "surrogatepass"))
        i += 1
    return "".join(out)


def _path_of(url_or_path: str) -> str:
    """Path, params and query of a URL, or of a bare path; "/" when there is none (fragments dropped).

    Like Google's ``GetPathParamsQuery``: ``example.com/a`` (no scheme) is host ``example.com``.
    """
    value = url_or_path.strip().split("#", 1)[0]
    if not value.startswith("/") or value.startswith("//"):
        if "://" in value or value.startswith("//"):
            parts = urlsplit(value if "://" in value else "http:" + value)
            value = parts.path + (("?" + parts.query) if parts.query or value.endswith("?") else "")
        else:
            # no scheme: whatever stands before the first "/" or "?" is the host
            cut = min((i for i in (value.find("/"), value.find("?")) if i >= 0), default=len(value))
            value = value[cut:]
    if not value.startswith("/"):
        value = "/" + value
    return value


def _matches(path: str, pattern: str) -> bool:
    """Whether ``pattern`` (with ``*`` and a final ``$``) matches the start of ``path``.

    Google's set-of-positions matcher: O(len(path) * len(pattern)) whatever the pattern, where a
    regular expression of many ``*`` can backtrack for a very long time on a hostile robots.txt.
    """
    size = len(path)
    positions = [0]
    last = len(pattern) - 1
    for index, ch in enumerate(pattern):
        if ch == "$" and index == last:
            return positions[-1] == size
        if ch == "*":
            positions = list(range(positions[0], size + 1))
            continue
        positions = [p + 1 for p in positions if p < size and path[p] == ch]
        if not positions:
            return False
    return True


@dataclass(frozen=True, slots=True)
class Rule:
    allow: bool
    pattern: str  # normalised (normalise_path)

    @property
    def priority(self) -> int:
        """RFC 9309 2.2.2: the most specific match is the one with the most octets."""
        return len(self.pattern)


@dataclass(slots=True)
class _Group:
    agents: list[str] = field(default_factory=list)
    rules: list[Rule] = field(default_factory=list)
    crawl_delay: float | None = None


def _split_line(line: str) -> tuple[str, str] | None:
    line = line.split("#", 1)[0].strip()
    if not line:
        return None
    if ":" in line:
        key, _, value = line.partition(":")
    else:
        # Google accepts "disallow /" for "disallow: /": the meaning is plain, so we take it too
        parts = line.split(None, 1)
        if len(parts) != 2 or parts[0].lower() not in _KNOWN:
            return None
        key, value = parts
    return " ".join(key.lower().split()), value.strip()


def _product_token(agent: str) -> str:
    match = _PRODUCT.match(agent.strip())
    return match.group(0).lower() if match else ""


@dataclass(slots=True)
class Robots:
    """What one robots.txt says. Build it with ``Robots.parse(text, status=...)``."""

    status: int
    groups: list[_Group] = field(default_factory=list)
    sitemaps: list[str] = field(default_factory=list)
    #: True for 5xx or unreachable: nothing but /robots.txt may be fetched
    disallow_all: bool = False
    #: True when the body was longer than MAX_BYTES and its end was ignored
    truncated: bool = False

    @classmethod
    def parse(cls, text: str | bytes, *, status: int) -> Robots:
        if status == UNREACHABLE or status >= 500 or status < 200:
            return cls(status=status, disallow_all=True)
        if status >= 300:
            return cls(status=status)
        raw = text if isinstance(text, bytes) else text.encode("utf-8", "surrogatepass")
        truncated = len(raw) > MAX_BYTES
        # a BOM, whole or cut short, is skipped (Google's robots_test.cc, ID_UTF8ByteOrderMarkIsSkipped)
        for bom in (b"\xef\xbb\xbf", b"\xef\xbb", b"\xef"):
            if raw.startswith(bom):
                raw = raw[len(bom) :]
                break
        body = raw[:MAX_BYTES].decode("utf-8", "replace")
        robots = cls(status=status, truncated=truncated)
        robots._read(_EOL.split(body))
        return robots

    @classmethod
    def allow_all(cls) -> Robots:
        return cls(status=404)

    def _read(self, lines: Iterable[str]) -> None:
        current: _Group | None = None
        in_agents = False  # the last group line was a user-agent: another one joins the same group
        seen_sitemaps: set[str] = set()
        for line in lines:
            parsed = _split_line(line)
            if parsed is None:
                continue
            key, value = parsed
            if key in _USER_AGENT:
                if current is None or not in_agents:
                    current = _Group()
                    self.groups.append(current)
                # "Foo Bar" is an invalid token; like Google we obey it as "Foo"
                token = value.split()[0].lower() if value.split() else ""
                if token:
                    current.agents.append(token)
                in_agents = True
            elif key in _ALLOW or key in _DISALLOW:
                in_agents = False
                if current is not None and value:
                    current.rules.append(Rule(allow=key in _ALLOW, pattern=normalise_path(value)))
            elif key in _CRAWL_DELAY:
                if current is not None and current.crawl_delay is None:
                    current.crawl_delay = _delay(value)
            elif key in _SITEMAP and value and value not in seen_sitemaps:
                # sitemaps belong to no group and do not end one (RFC 9309 2.2.4)
                seen_sitemaps.add(value)
                self.sitemaps.append(value)

    def _groups_for(self, agent: str) -> list[_Group]:
        token = _product_token(agent)
        if token:
            mine = [g for g in self.groups if token in g.agents]
            if mine:
                return mine
        return [g for g in self.groups if "*" in g.agents]

    def rules_for(self, agent: str) -> list[Rule]:
        """The rules that apply to ``agent``: every group naming its product token, else every ``*`` group."""
        return [rule for group in self._groups_for(agent) for rule in group.rules]

    def allowed(self, url_or_path: str, agent: str) -> bool:
        path = _path_of(url_or_path)
        if path == "/robots.txt":
            return True  # RFC 9309 2.2.2: implicitly allowed
        if self.disallow_all:
            return False
        target = normalise_path(path)
        best: Rule | None = None
        for rule in self.rules_for(agent):
            if best is not None and (
                rule.priority < best.priority or (rule.priority == best.priority and not rule.allow)
            ):
                continue
            if _matches(target, rule.pattern):
                best = rule
        return best is None or best.allow

    def crawl_delay(self, agent: str) -> float | None:
        """Seconds between requests the site asks of ``agent`` (not in RFC 9309, widely used)."""
        if self.disallow_all:
            return None
        for group in self._groups_for(agent):
            if group.crawl_delay is not None:
                return group.crawl_delay
        return None


def _delay(value: str) -> float | None:
    try:
        delay = float(value)
    except ValueError:
        return None
    if delay != delay or delay < 0 or delay == float("inf"):
        return None
    return delay
