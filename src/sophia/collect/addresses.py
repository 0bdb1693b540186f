"""Which URLs and addresses the collector may reach: the SSRF policy, pure and fast (no I/O).

A collector fetches URLs that people, feeds and crawled pages hand it, so it must never become a
confused deputy that reads the cloud metadata service or a database on the private network for them.
A blacklist of spellings fails (one we tried missed 35 of 98 payloads); this module instead decodes
every spelling of a host to the one address a socket would dial and judges that address:

* ``parse_host`` reads a host as ``inet_aton`` and the WHATWG URL standard do: ``2130706433``,
  ``0177.0.0.1``, ``0x7f.1``, ``127.1``, ``①②⑦.⓪.⓪.①``, ``127。0。0。1``, ``%31%32%37.0.0.1``,
  ``[::ffff:7f00:1]``, ``[fe80::1%25eth0]`` and a trailing dot. A host whose last label is a number
  must be a valid IPv4 address (``0o177.0.0.1``, ``7147006462``, ``425.510.425.510`` are refused,
  never looked up as names).
* ``AddressPolicy.check`` refuses every address that is not public unicast on the Internet, naming
  its class; the table below is explicit because ``ipaddress.is_global`` calls some of them global
  (192.0.0.192, multicast, 64:ff9b::/96, fec0::/10, IPv4-compatible IPv6 on Python 3.11).
* ``AddressPolicy.check_url`` admits only ``http``/``https`` URLs with no credentials, a valid port
  and a host that is an address or a name outside the special-use domains (``localhost``, ``.internal``,
  single labels, ...), and returns the normalised target that the fetcher then resolves and dials.

The allow-list (settings: ``collect.allow``) opens named internal sources. An entry is one of

* a host name, ``intranet.corp``, or every subdomain of one, ``*.corp.example``;
* an address or a CIDR network, ``10.1.2.3``, ``10.1.2.0/24``, ``fd12:3456::/48``;
* either of the first two with a port, ``intranet.corp:8443``, ``127.0.0.1:8080``, ``[::1]:8080``,
  which opens that port only.

An allowed name may resolve to internal addresses, but never to a cloud metadata endpoint or the
unspecified address: only an entry naming that address (or a network holding it) opens those, so one
DNS change cannot turn an allowed intranet name into a credential leak.
"""

from __future__ import annotations

import ipaddress
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

import idna

from sophia.errors import ConfigError, InvalidRequest

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

SCHEMES = {"http": 80, "https": 443}


class URLRefused(InvalidRequest):
    """A URL the collector will not fetch: a scheme other than http(s), credentials, a bad port or host."""

    code = "url_refused"


class AddressRefused(URLRefused):
    """The host is, or resolves to, an address that is not public (loopback, private, metadata, ...)."""

    code = "address_refused"


_v4, _v6 = ipaddress.IPv4Network, ipaddress.IPv6Network

#: cloud metadata and platform endpoints: refused even for an allowed host name (only an allow-list
#: entry naming the address opens one)
METADATA: dict[IPAddress, str] = {
    ipaddress.ip_address("169.254.169.254"): "link-local (cloud metadata)",
    ipaddress.ip_address("169.254.170.2"): "link-local (AWS ECS credentials)",
    ipaddress.ip_address("169.254.170.23"): "link-local (AWS EKS pod identity)",
    ipaddress.ip_address("192.0.0.192"): "the Oracle Cloud metadata endpoint",
    ipaddress.ip_address("100.100.100.200"): "the Alibaba Cloud metadata endpoint",
    ipaddress.ip_address("168.63.129.16"): "the Azure platform endpoint (WireServer)",
    ipaddress.ip_address("fd00:ec2::254"): "the AWS metadata endpoint (IPv6)",
    ipaddress.ip_address("fd00:ec2::23"): "the AWS EKS pod identity endpoint (IPv6)",
    ipaddress.ip_address("fd20:ce::254"): "the Google Cloud metadata endpoint (IPv6)",
}

#: (network, class) in the order they are tested; the first match names the refusal. From the IANA
#: special-purpose registries (RFC 6890 and successors) and RFC 1918/6598/4193/6052/8215.
_IPV4_CLASSES: tuple[tuple[ipaddress.IPv4Network, str], ...] = (
    (_v4("0.0.0.0/8"), "unspecified ('this network', 0.0.0.0/8)"),
    (_v4("127.0.0.0/8"), "loopback"),
    (_v4("10.0.0.0/8"), "private (RFC 1918)"),
    (_v4("172.16.0.0/12"), "private (RFC 1918)"),
    (_v4("192.168.0.0/16"), "private (RFC 1918)"),
    (_v4("100.64.0.0/10"), "shared address space (CGNAT, RFC 6598)"),
    (_v4("169.254.0.0/16"), "link-local"),
    (_v4("192.0.0.0/24"), "IETF protocol assignments (192.0.0.0/24)"),
    (_v4("192.0.2.0/24"), "documentation (TEST-NET-1)"),
    (_v4("198.51.100.0/24"), "documentation (TEST-NET-2)"),
    (_v4("203.0.113.0/24"), "documentation (TEST-NET-3)"),
    (_v4("198.18.0.0/15"), "benchmarking (RFC 2544)"),
    (_v4("192.88.99.0/24"), "the deprecated 6to4 relay anycast"),
    (_v4("224.0.0.0/4"), "multicast"),
    (_v4("255.255.255.255/32"), "broadcast"),
    (_v4("240.0.0.0/4"), "reserved (240.0.0.0/4)"),
)
_IPV6_CLASSES: tuple[tuple[ipaddress.IPv6Network, str], ...] = (
    (_v6("::1/128"), "loopback"),
    (_v6("::/128"), "unspecified"),
    (_v6("64:ff9b::/96"), "NAT64 (64:ff9b::/96)"),
    (_v6("64:ff9b:1::/48"), "local-use NAT64 (64:ff9b:1::/48)"),
    (_v6("100::/64"), "discard-only (100::/64)"),
    (_v6("2001:db8::/32"), "documentation"),
    (_v6("3fff::/20"), "documentation"),
    (_v6("5f00::/16"), "segment routing (SRv6 SIDs)"),
    (_v6("fc00::/7"), "private (unique local, fc00::/7)"),
    (_v6("fe80::/10"), "link-local"),
    (_v6("fec0::/10"), "site-local (deprecated)"),
    (_v6("ff00::/8"), "multicast"),
)
_MAPPED = _v6("::ffff:0:0/96")
_COMPATIBLE = _v6("::/96")
_GLOBAL_UNICAST = _v6("2000::/3")
#: IPv4 embedded in the low 32 bits of these IPv6 prefixes (SIIT, RFC 6052/7915)
_TRANSLATED = _v6("::ffff:0:0:0/96")

#: special-use and private-use domains (RFC 6761, 6762, 8375, ICANN's .internal) and the common
#: corporate suffixes; they name machines on a private network, so only the allow-list opens them
SPECIAL_DOMAINS = frozenset(
    {"localhost", "local", "internal", "localdomain", "home.arpa", "lan", "intranet", "corp", "home", "svc"}
)

_HOST_CHARS = re.compile(r"^[a-z0-9_.-]+$")
_NUMBER_LABEL = re.compile(r"^(?:[0-9]+|0x[0-9a-f]*)$")
_DOTS = str.maketrans({"\u3002": ".", "\uff0e": ".", "\uff61": "."})  # ideographic and fullwidth full stops
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def parse_host(host: str) -> IPAddress | None:
    """The address a socket would dial for ``host``, or None when ``host`` is a name to look up.

    Raises ``URLRefused`` for a host that cannot be read, and ``AddressRefused`` for one that ends in a
    number but is not a valid IPv4 address (some resolvers would read it, so it is never looked up).
    """
    text = host.strip()
    if text.startswith("[") or ":" in text:
        return _parse_ipv6(text, host)
    return _parse_name_or_ipv4(normalize_host(text), host)


def normalize_host(host: str) -> str:
    """The ASCII, lower-case, dot-terminated-free form of a host name, as the request will carry it."""
    text = unicodedata.normalize("NFKC", unquote(host.strip())).translate(_DOTS).lower()
    if text.endswith("."):
        text = text[:-1]
    if not text:
        raise URLRefused("the URL has no host: refused")
    if not text.isascii():
        try:
            text = idna.encode(text, uts46=True).decode("ascii").lower()
        except idna.IDNAError as exc:
            raise URLRefused(
                f"the host {host!r} is not a valid internationalised name ({exc}): refused"
            ) from None
    if not _HOST_CHARS.match(text) or len(text) > 253:
        raise URLRefused(f"the host {host!r} holds characters a host name cannot: refused")
    if any(not label or len(label) > 63 for label in text.split(".")):
        raise URLRefused(f"the host {host!r} has an empty or over-long label: refused")
    return text


def _parse_name_or_ipv4(text: str, original: str) -> IPAddress | None:
    labels = text.split(".")
    if not _NUMBER_LABEL.match(labels[-1]):
        return None
    address = _inet_aton(labels)
    if address is None:
        raise AddressRefused(
            f"the host {original!r} ends in a number but is not a valid IPv4 address: refused"
        )
    return address


def _inet_aton(labels: list[str]) -> ipaddress.IPv4Address | None:
    """IPv4 as inet_aton(3) and the WHATWG URL parser read it: 1 to 4 parts, each decimal, 0-prefixed
    octal or 0x-prefixed hex, the last part filling the bytes that remain (``127.1`` is 127.0.0.1)."""
    if len(labels) > 4:
        return None
    numbers: list[int] = []
    for label in labels:
        if label.startswith("0x"):
            digits, base = label[2:] or "0", 16
        elif len(label) > 1 and label.startswith("0"):
            digits, base = label[1:], 8
        else:
            digits, base = label, 10
        try:
            numbers.append(int(digits, base))
        except ValueError:
            return None
    *head, last = numbers
    if any(n > 255 for n in head) or last >= 256 ** (5 - len(numbers)):
        return None
    value = last
    for index, n in enumerate(head):
        value += n << (8 * (3 - index))
    return ipaddress.IPv4Address(value)


def _parse_ipv6(text: str, original: str) -> ipaddress.IPv6Address:
    if text.startswith("[") != text.endswith("]"):
        raise URLRefused(f"the host {original!r} has an unbalanced bracket: refused")
    inner = unquote(text[1:-1] if text.startswith("[") else text)
    inner = unicodedata.normalize("NFKC", inner).translate(_DOTS)
    address, _, zone = inner.partition("%")  # a zone id only picks the interface; the address decides
    if zone and not re.fullmatch(r"[A-Za-z0-9_.-]+", zone):
        raise URLRefused(f"the host {original!r} has an invalid IPv6 zone id: refused")
    try:
        return ipaddress.IPv6Address(address)
    except ValueError:
        raise URLRefused(f"the host {original!r} is not a valid IPv6 address: refused") from None


def classify(ip: IPAddress) -> str | None:
    """Why ``ip`` must not be dialled ("loopback", "link-local (cloud metadata)", ...), None if public."""
    if ip in METADATA:
        return METADATA[ip]
    if isinstance(ip, ipaddress.IPv4Address):
        for network, label in _IPV4_CLASSES:
            if ip in network:
                return label
        return None if ip.is_global else "not globally reachable"
    for network6, label6 in _IPV6_CLASSES:
        if ip in network6:
            return label6
    embedded = _embedded_ipv4(ip)
    if embedded is not None:
        kind, inner = embedded
        # the kernel dials the embedded IPv4 for these; no public site publishes one in its AAAA record
        if kind in ("IPv4-mapped IPv6", "IPv4-compatible IPv6", "IPv4-translated IPv6"):
            what = classify(inner)
            return f"{kind} of {inner}" + (f" ({what})" if what else "")
        what = classify(inner)
        if what is not None:
            return f"{kind} of {inner} ({what})"
    if ip not in _GLOBAL_UNICAST:
        return "reserved (outside global unicast 2000::/3)"
    return None if ip.is_global else "not globally reachable"


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> tuple[str, ipaddress.IPv4Address] | None:
    if ip in _MAPPED:
        return "IPv4-mapped IPv6", ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    if ip in _TRANSLATED:
        return "IPv4-translated IPv6", ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    if ip in _COMPATIBLE:
        return "IPv4-compatible IPv6", ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    if ip.sixtofour is not None:
        return "6to4", ip.sixtofour
    if ip.teredo is not None:
        server, client = ip.teredo
        return ("Teredo", client) if classify(client) else ("Teredo", server)
    return None


@dataclass(frozen=True, slots=True)
class URLTarget:
    """A URL the policy admitted, normalised: what the fetcher resolves, dials and sends."""

    scheme: str
    host: str  # ASCII, lower case; an IPv6 address without brackets
    port: int
    ip: IPAddress | None  # the address when the host is one, else None (a name to resolve)
    target: str  # path and query, as sent in the request line

    @property
    def authority(self) -> str:
        host = f"[{self.host}]" if isinstance(self.ip, ipaddress.IPv6Address) else self.host
        return host if SCHEMES[self.scheme] == self.port else f"{host}:{self.port}"

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.authority}{self.target}"


@dataclass(frozen=True, slots=True)
class _Entry:
    port: int | None


@dataclass(frozen=True, slots=True)
class _NameEntry(_Entry):
    name: str
    subdomains: bool

    def matches(self, host: str) -> bool:
        return host.endswith("." + self.name) if self.subdomains else host == self.name


@dataclass(frozen=True, slots=True)
class _NetworkEntry(_Entry):
    network: IPNetwork


class AddressPolicy:
    """Refuses every URL and address that is not public, except what the allow-list opens."""

    def __init__(self, allow: Iterable[str] = ()) -> None:
        self._names: list[_NameEntry] = []
        self._networks: list[_NetworkEntry] = []
        for entry in allow:
            self._add(entry)

    def _add(self, entry: str) -> None:
        text = entry.strip()
        try:
            if "/" in text:
                self._networks.append(_NetworkEntry(None, ipaddress.ip_network(text, strict=False)))
                return
            bare_ipv6 = text.count(":") > 1 and not text.startswith("[")
            host, port = (text, None) if bare_ipv6 else _split_host_port(text)
            subdomains = host.startswith(("*.", "."))
            if subdomains:
                host = host.lstrip("*").lstrip(".")
            ip = None if subdomains else parse_host(host)
        except (ValueError, URLRefused) as exc:
            reason = exc.message if isinstance(exc, URLRefused) else str(exc)
            raise ConfigError(
                f"collect.allow entry {entry!r} is not a host, host:port, *.domain or CIDR network ({reason})"
            ) from None
        if ip is not None:
            self._networks.append(_NetworkEntry(port, ipaddress.ip_network(ip)))
        else:
            self._names.append(_NameEntry(port, normalize_host(host), subdomains))

    def allows_host(self, host: str, port: int | None = None) -> bool:
        """Whether the allow-list names ``host`` (normalised) on ``port``."""
        return any(e.matches(host) and e.port in (None, port) for e in self._names)

    def allows_address(self, ip: IPAddress, port: int | None = None) -> bool:
        """Whether an address or network entry of the allow-list holds ``ip`` on ``port``."""
        return any(ip in e.network and e.port in (None, port) for e in self._networks)

    def check(self, ip: IPAddress | str, *, host: str | None = None, port: int | None = None) -> None:
        """Raise ``AddressRefused`` unless ``ip`` (an address ``host`` resolved to) may be dialled."""
        address = ip if not isinstance(ip, str) else _address(ip)
        if self.allows_address(address, port):
            return
        reason = classify(address)
        if reason is None:
            return
        always = _explicit_only(address)
        if host is not None and not always and self.allows_host(host, port):
            return
        subject = (
            f"{host} resolves to {address}, which is" if host and host != str(address) else f"{address} is"
        )
        hint = "" if always else " (add the host to collect.allow to open an internal source)"
        raise AddressRefused(f"{subject} {reason}: refused{hint}")

    def check_url(self, url: str) -> URLTarget:
        """The normalised target of ``url``, or ``URLRefused``/``AddressRefused`` saying what is wrong.

        Addresses given literally are checked here; a name's addresses are the fetcher's to resolve and
        pass to ``check``.
        """
        text = url.strip()
        if _CONTROL.search(text):
            raise URLRefused(f"the URL {_show(text)} holds a control character: refused")
        try:
            parts = urlsplit(text)
        except ValueError as exc:
            raise URLRefused(f"the URL {_show(text)} cannot be read ({exc}): refused") from None
        scheme = parts.scheme.lower()
        if scheme not in SCHEMES:
            shown = f"scheme {scheme!r}" if scheme else "a URL without a scheme"
            raise URLRefused(f"{shown} is refused: only http and https URLs are fetched ({_show(text)})")
        authority = parts.netloc
        if not authority:
            raise URLRefused(f"the URL {_show(text)} has no host: refused")
        if "@" in authority:
            raise URLRefused(
                f"the URL {_show(text)} carries credentials (user@host), a common way to disguise the real "
                "host: refused"
            )
        if "\\" in authority:
            raise URLRefused(f"the URL {_show(text)} has a backslash in its host: refused")
        raw_host, port = _split_host_port(authority, default=SCHEMES[scheme])
        ip = parse_host(raw_host)
        host = str(ip) if ip is not None else normalize_host(raw_host)
        assert port is not None
        if ip is not None:
            self.check(ip, host=host, port=port)
        elif not self.allows_host(host, port):
            self._check_name(host)
        path = parts.path or "/"
        target = f"{path}?{parts.query}" if parts.query else path
        return URLTarget(scheme, host, port, ip, target)

    @staticmethod
    def _check_name(host: str) -> None:
        for domain in SPECIAL_DOMAINS:
            if host == domain or host.endswith("." + domain):
                raise AddressRefused(
                    f"{host} is in the special-use domain .{domain}, which names local machines: refused "
                    "(add it to collect.allow to open an internal source)"
                )
        if "." not in host:
            raise AddressRefused(
                f"{host} is a single-label name, which resolves on the local network: refused "
                "(add it to collect.allow to open an internal source)"
            )


def _split_host_port(authority: str, default: int | None = None) -> tuple[str, int | None]:
    if authority.startswith("["):
        end = authority.find("]")
        if end < 0:
            raise URLRefused(f"the host {authority!r} has an unbalanced bracket: refused")
        host, rest = authority[: end + 1], authority[end + 1 :]
        if rest and not rest.startswith(":"):
            raise URLRefused(f"the authority {authority!r} has text after the IPv6 address: refused")
        port_text = rest[1:] if rest else ""
    else:
        host, _, port_text = authority.rpartition(":") if ":" in authority else (authority, "", "")
        if ":" in host:
            raise URLRefused(f"the authority {authority!r} holds an IPv6 address without brackets: refused")
    if not port_text:
        return host, default
    if not port_text.isascii() or not port_text.isdigit():
        raise URLRefused(f"the port {port_text!r} is not a number: refused")
    port = int(port_text)
    if not 1 <= port <= 65535:
        raise URLRefused(f"the port {port} is outside 1-65535: refused")
    return host, port


def _explicit_only(ip: IPAddress) -> bool:
    """Metadata endpoints and the unspecified address (which reaches this machine), also when embedded in
    IPv6: only an allow-list entry naming the address opens them, never an allowed host name."""
    embedded = _embedded_ipv4(ip) if isinstance(ip, ipaddress.IPv6Address) else None
    candidates = (ip, embedded[1]) if embedded else (ip,)
    return any(c in METADATA or c.is_unspecified for c in candidates)


def _address(text: str) -> IPAddress:
    try:
        return ipaddress.ip_address(text.partition("%")[0])
    except ValueError:
        raise AddressRefused(f"{text!r} is not an IP address: refused") from None


def _show(url: str) -> str:
    """A URL quoted for a message, cut short so an error never echoes a whole hostile payload."""
    return repr(url if len(url) <= 200 else url[:200] + "...")
