"""The safe fetcher against a real local web server and a DNS stub on loopback: every SSRF class refused
directly and after a redirect, DNS rebinding reaching nothing new, the allow-list opening an internal
source, conditional GETs, byte caps and timeouts. The public SSRF payload collection in
ssrf_payloads.txt is refused entry by entry, and ordinary public URLs are refused by none."""

from __future__ import annotations

import asyncio
import datetime as dt
import gzip
import ipaddress
import re
import ssl
from collections.abc import Callable, Iterator
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from sophia.collect.addresses import AddressPolicy, AddressRefused, URLRefused
from sophia.collect.fetch import FetchFailed, FetchTimeout, PageTooLarge, SafeFetcher, parse_retry_after
from sophia.errors import PayloadTooLarge

PUBLIC_V4, PUBLIC_V6 = "93.184.215.14", "2606:2800:21f:cb07:6820:80da:af6b:8b2c"
#: one TLS context for the tests that never connect (building one per fetcher loads the CA bundle each time)
NO_TLS = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)


class StaticResolver:
    """Answers from a table, as the public DNS would, and fails a test that needs a name it lacks."""

    def __init__(self, table: dict[str, list[str]], default: list[str] | None = None) -> None:
        self.table = table
        self.default = default
        self.asked: list[str] = []

    async def __call__(self, host: str, port: int) -> list[str]:
        self.asked.append(host)
        if host in self.table:
            return self.table[host]
        if self.default is not None:
            return self.default
        raise AssertionError(
            f"the test resolver has no answer for {host!r}: annotate the payload with => ADDRESS"
        )


# -- the public payload collection ---------------------------------------------------------------------


def _payloads() -> Iterator[Any]:
    path = Path(__file__).with_name("ssrf_payloads.txt")
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        url, _, answer = line.partition(" => ")
        addresses = [a.strip() for a in answer.split(",")] if answer else []
        yield pytest.param(url, addresses, id=f"line{number}")


PAYLOADS = list(_payloads())


def test_the_payload_collection_is_whole() -> None:
    assert len(PAYLOADS) >= 180


@pytest.mark.parametrize(("url", "addresses"), PAYLOADS)
async def test_every_payload_is_refused(url: str, addresses: list[str]) -> None:
    resolver = StaticResolver({})
    async with SafeFetcher(AddressPolicy(), resolver=resolver, ssl_context=NO_TLS) as fetcher:
        if addresses:
            target = AddressPolicy().check_url(url)  # a name that only its DNS answer makes internal
            resolver.table[target.host] = addresses
        with pytest.raises(URLRefused) as refused:
            await fetcher.resolve(url)
    assert "refused" in refused.value.message
    assert len(refused.value.message) < 400  # a hostile URL is quoted cut short, never whole


PUBLIC_URLS = [
    "http://example.com/",
    "https://example.com",
    "https://www.example.com/index.html",
    "HTTPS://WWW.EXAMPLE.COM/Path/With/Case",
    "https://example.com./",  # fully qualified, with the root's dot
    "https://example.com:443/",
    "http://example.com:8080/status",
    "https://example.com:8443/api/v1/items?page=2&sort=-date",
    "https://en.wikipedia.org/wiki/Server-side_request_forgery",
    "https://news.ycombinator.com/item?id=1",
    "https://www.bbc.co.uk/news/technology",
    "https://api.github.com/repos/python/cpython/issues?per_page=100#readme",
    "https://docs.python.org/3/library/ipaddress.html#ipaddress.IPv4Address.is_global",
    "https://example.com/search?q=a%20b&email=someone@example.org",  # an @ in the query, not the authority
    "https://example.com/page#section@top",  # and in the fragment
    "https://example.com/a b/c",  # a space in the path (sent encoded)
    "https://example.com/%7Euser/",
    "https://example.com/path/../other/./file.pdf",
    "https://sub_domain.example.com/",
    "https://a-b-c.example.net/",
    "https://123.example.com/",  # a numeric first label is still a name
    "https://1e100.net/",
    "https://3com.com/",
    "https://0x.org/",
    "https://xn--bcher-kva.example/",
    "https://bücher.example/katalog",  # an internationalised name
    "https://münchen.de/",
    "http://ⓔⓧⓐⓜⓟⓛⓔ.ⓒⓞⓜ/",  # enclosed alphanumerics that spell a public name
    "https://例え.jp/",
    "https://feeds.example.org/rss.xml",
    "https://cdn.example.net/assets/app.js?v=3",
    "https://example.com:65535/",
    "http://93.184.215.14/",  # public literals
    "http://1.1.1.1/",
    "http://16843009/",  # 1.1.1.1 as one number
    "http://[2606:4700:4700::1111]/",
    "https://[2a00:1450:4001:82b::200e]:443/",
    "http://[2002:5db8:d70e::1]/",  # 6to4 of a public address
    "https://long-subdomain-name.with.many.labels.example.co.uk/a/b/c/d/e/f",
]


@pytest.mark.parametrize("url", PUBLIC_URLS)
async def test_ordinary_public_urls_are_refused_by_none(url: str) -> None:
    resolver = StaticResolver({}, default=[PUBLIC_V4, PUBLIC_V6])
    async with SafeFetcher(AddressPolicy(), resolver=resolver, ssl_context=NO_TLS) as fetcher:
        destination = await fetcher.resolve(url)
    assert destination.addresses
    assert all(ipaddress.ip_address(a).is_global for a in destination.addresses)


def test_there_are_enough_public_urls() -> None:
    assert len(PUBLIC_URLS) >= 30


# -- against the local server and the DNS stub --------------------------------------------------------

#: (id, how the target is reached, the DNS answer for target.example, what the refusal names)
CLASS_CASES = [
    ("loopback", "http://target.example:{port}/secret", ["127.0.0.1"], "loopback"),
    ("private", "http://target.example:{port}/secret", ["10.0.0.1"], "private (RFC 1918)"),
    ("link-local", "http://target.example:{port}/secret", ["169.254.10.10"], "link-local"),
    ("cgnat", "http://target.example:{port}/secret", ["100.64.1.1"], "CGNAT"),
    ("multicast", "http://target.example:{port}/secret", ["224.0.0.251"], "multicast"),
    ("reserved", "http://target.example:{port}/secret", ["240.0.0.1"], "reserved"),
    (
        "ipv4-mapped",
        "http://target.example:{port}/secret",
        ["::ffff:127.0.0.1"],
        "IPv4-mapped IPv6 of 127.0.0.1",
    ),
    ("nat64", "http://target.example:{port}/secret", ["64:ff9b::7f00:1"], "NAT64"),
    ("metadata-oracle", "http://target.example:{port}/secret", ["192.0.0.192"], "Oracle Cloud metadata"),
    (
        "metadata-aws-ipv6",
        "http://target.example:{port}/secret",
        ["fd00:ec2::254"],
        "AWS metadata endpoint (IPv6)",
    ),
    ("metadata-aws", "http://target.example:{port}/secret", ["169.254.169.254"], "cloud metadata"),
    (
        "one-bad-answer",
        "http://target.example:{port}/secret",
        [PUBLIC_V4, "127.0.0.1"],
        "127.0.0.1, which is loopback",
    ),
    ("decimal", "http://2130706433:{port}/secret", [], "127.0.0.1 is loopback"),
    ("octal", "http://0177.0.0.1:{port}/secret", [], "127.0.0.1 is loopback"),
    ("hex", "http://0x7f.0x0.0x0.0x1:{port}/secret", [], "127.0.0.1 is loopback"),
    ("short", "http://127.1:{port}/secret", [], "127.0.0.1 is loopback"),
    ("literal", "http://127.0.0.1:{port}/secret", [], "127.0.0.1 is loopback"),
    ("ipv6-loopback", "http://[::1]:{port}/secret", [], "::1 is loopback"),
    ("localhost", "http://localhost:{port}/secret", [], "special-use domain .localhost"),
    ("scheme-gopher", "gopher://127.0.0.1:{port}/_secret", [], "scheme 'gopher' is refused"),
    ("scheme-file", "file:///etc/passwd", [], "scheme 'file' is refused"),
    ("userinfo", "http://public.example:{port}@127.0.0.1:{port}/secret", [], "carries credentials"),
]


def _never_served(server: HTTPServer, path: str = "/secret") -> bool:
    return all(request.path != path for request, _ in server.log)


@pytest.mark.parametrize(
    ("case", "location", "answer", "named"), CLASS_CASES, ids=[c[0] for c in CLASS_CASES]
)
async def test_every_class_is_refused_directly(
    case: str,
    location: str,
    answer: list[str],
    named: str,
    web_server: HTTPServer,
    dns_stub: Any,
    dns_resolver: Any,
) -> None:
    web_server.expect_request("/secret").respond_with_data("internal secret")
    dns_stub.answer("target.example", answer or ["127.0.0.1"])
    async with SafeFetcher(AddressPolicy(), resolver=dns_resolver) as fetcher:
        with pytest.raises(URLRefused, match=named.replace("(", r"\(").replace(")", r"\)")):
            await fetcher.fetch(location.format(port=web_server.port))
    assert web_server.log == []  # refused before any connection


@pytest.mark.parametrize(
    ("case", "location", "answer", "named"), CLASS_CASES, ids=[c[0] for c in CLASS_CASES]
)
async def test_every_class_is_refused_after_a_redirect(
    case: str,
    location: str,
    answer: list[str],
    named: str,
    web_server: HTTPServer,
    dns_stub: Any,
    dns_resolver: Any,
) -> None:
    """public.example is allowed (it is the test server on 127.0.0.1) and tries to pivot by redirecting."""
    port = web_server.port
    web_server.expect_request("/start").respond_with_response(
        Response(status=302, headers={"Location": location.format(port=port)})
    )
    web_server.expect_request("/secret").respond_with_data("internal secret")
    dns_stub.answer("public.example", ["127.0.0.1"])
    dns_stub.answer("target.example", answer or ["127.0.0.1"])
    policy = AddressPolicy([f"public.example:{port}"])
    async with SafeFetcher(policy, resolver=dns_resolver) as fetcher:
        with pytest.raises(URLRefused, match=named.replace("(", r"\(").replace(")", r"\)")):
            await fetcher.fetch(f"http://public.example:{port}/start")
    assert [request.path for request, _ in web_server.log] == ["/start"]
    assert _never_served(web_server)


async def test_redirects_are_followed_and_recorded(
    web_server: HTTPServer, dns_stub: Any, dns_resolver: Any
) -> None:
    port = web_server.port
    web_server.expect_request("/a").respond_with_response(Response(status=301, headers={"Location": "/b"}))
    web_server.expect_request("/b").respond_with_response(
        Response(status=307, headers={"Location": f"http://other.example:{port}/c?x=1"})
    )
    web_server.expect_request("/c").respond_with_data("<p>done</p>", content_type="text/html; charset=utf-8")
    dns_stub.answer("public.example", ["127.0.0.1"])
    dns_stub.answer("other.example", ["127.0.0.1"])
    policy = AddressPolicy([f"public.example:{port}", f"other.example:{port}"])
    async with SafeFetcher(policy, resolver=dns_resolver) as fetcher:
        result = await fetcher.fetch(f"http://public.example:{port}/a")
    assert result.status == 200
    assert result.content == b"<p>done</p>"
    assert result.url == f"http://other.example:{port}/c?x=1"
    assert result.redirects == [f"http://public.example:{port}/a", f"http://public.example:{port}/b"]
    assert result.content_type == "text/html"
    assert result.headers["content-type"] == "text/html; charset=utf-8"
    assert result.address == "127.0.0.1"
    assert result.elapsed_s > 0
    host_headers = [request.headers["Host"] for request, _ in web_server.log]
    assert host_headers == [f"public.example:{port}", f"public.example:{port}", f"other.example:{port}"]


async def test_redirect_hops_are_capped(web_server: HTTPServer, dns_stub: Any, dns_resolver: Any) -> None:
    port = web_server.port
    web_server.expect_request("/loop").respond_with_response(
        Response(status=302, headers={"Location": "/loop"})
    )
    dns_stub.answer("public.example", ["127.0.0.1"])
    async with SafeFetcher(
        AddressPolicy([f"public.example:{port}"]), resolver=dns_resolver, max_redirects=3
    ) as fetcher:
        with pytest.raises(FetchFailed, match="redirects more than 3 times") as failed:
            await fetcher.fetch(f"http://public.example:{port}/loop")
    assert failed.value.code == "too_many_redirects"
    assert len(web_server.log) == 4


async def test_dns_rebinding_reaches_nothing_new(
    web_server_factory: Callable[..., HTTPServer], dns_stub: Any, dns_resolver: Any
) -> None:
    """The name answers an allowed address first and loopback after: the fetch resolves once and dials
    the checked address, so the server on 127.0.0.1 (same port) never sees a request."""
    good = web_server_factory("127.0.0.2")
    good.expect_request("/").respond_with_data("public page")
    try:
        evil = web_server_factory("127.0.0.1", good.port)
    except OSError:
        pytest.skip("the same port is taken on 127.0.0.1")
    evil.expect_request("/").respond_with_data("internal secret")
    dns_stub.answer("rebind.example", ["127.0.0.2"], ["127.0.0.1"])
    async with SafeFetcher(AddressPolicy(["127.0.0.2"]), resolver=dns_resolver) as fetcher:
        result = await fetcher.fetch(f"http://rebind.example:{good.port}/")
        assert (result.content, result.address) == (b"public page", "127.0.0.2")
        assert dns_stub.count("rebind.example") == 1  # resolved once, not again to connect
        assert evil.log == []
        with pytest.raises(
            AddressRefused, match=re.escape("rebind.example resolves to 127.0.0.1, which is loopback")
        ):
            await fetcher.fetch(f"http://rebind.example:{good.port}/")  # the next fetch checks the new answer
    assert evil.log == []


async def test_an_allowed_internal_source_works(web_server: HTTPServer) -> None:
    web_server.expect_request("/wiki").respond_with_data("intranet page")
    port = web_server.port
    async with SafeFetcher(AddressPolicy([f"127.0.0.1:{port}"])) as fetcher:
        result = await fetcher.fetch(f"http://127.0.0.1:{port}/wiki")
    assert (result.status, result.content, result.address) == (200, b"intranet page", "127.0.0.1")
    for allow in ([], [f"127.0.0.1:{port + 1 if port < 65535 else port - 1}"], ["10.0.0.0/8"]):
        async with SafeFetcher(AddressPolicy(allow)) as fetcher:
            with pytest.raises(AddressRefused, match=re.escape("127.0.0.1 is loopback")):
                await fetcher.fetch(f"http://127.0.0.1:{port}/wiki")
    assert len(web_server.log) == 1


async def test_the_system_resolver_is_used_by_default(web_server: HTTPServer) -> None:
    web_server.expect_request("/").respond_with_data("via getaddrinfo")
    async with SafeFetcher(AddressPolicy([f"localhost:{web_server.port}"])) as fetcher:
        result = await fetcher.fetch(f"http://localhost:{web_server.port}/")
    assert result.content == b"via getaddrinfo"
    assert result.address in ("127.0.0.1", "::1")


async def test_a_name_that_does_not_resolve_fails_clearly(dns_resolver: Any) -> None:
    async with SafeFetcher(AddressPolicy(), resolver=dns_resolver) as fetcher:
        with pytest.raises(FetchFailed, match=re.escape("cannot resolve nowhere.example")) as failed:
            await fetcher.fetch("http://nowhere.example/")
    assert failed.value.code == "dns_failed"


async def test_a_refused_connection_is_a_fetch_failure(dns_stub: Any, dns_resolver: Any) -> None:
    dns_stub.answer("down.example", ["127.0.0.3"])
    async with SafeFetcher(AddressPolicy(["127.0.0.3"]), resolver=dns_resolver) as fetcher:
        with pytest.raises(FetchFailed, match=re.escape("cannot fetch http://down.example:1/")):
            await fetcher.fetch("http://down.example:1/")


# -- TLS to the pinned address, verified for the name --------------------------------------------------


def _certificates(tmp_path: Path) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """A CA and a server certificate for secure.example: (the server's context, a client's trusting the CA)."""
    x509 = pytest.importorskip("cryptography.x509")
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = dt.datetime.now(dt.UTC)

    def certificate(subject: str, key: Any, issuer: str, signer: Any, *, ca: bool) -> Any:
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
            .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(hours=1))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        )
        if ca:
            builder = builder.add_extension(
                x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
            ).add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        else:
            builder = builder.add_extension(
                x509.SubjectAlternativeName([x509.DNSName("secure.example")]), critical=False
            ).add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(signer.public_key()), critical=False
            )
        return builder.sign(signer, hashes.SHA256())

    ca_key, server_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca = certificate("Sophia test CA", ca_key, "Sophia test CA", ca_key, ca=True)
    leaf = certificate("secure.example", server_key, "Sophia test CA", ca_key, ca=False)
    pem = serialization.Encoding.PEM
    (tmp_path / "server.pem").write_bytes(
        leaf.public_bytes(pem)
        + server_key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(tmp_path / "server.pem")
    client = ssl.create_default_context(cadata=ca.public_bytes(pem).decode())
    return server, client


async def test_tls_is_verified_for_the_name_while_the_pinned_address_is_dialled(
    tmp_path: Path, web_server_factory: Callable[..., HTTPServer], dns_stub: Any, dns_resolver: Any
) -> None:
    server_context, client_context = _certificates(tmp_path)
    server = web_server_factory("127.0.0.2", ssl_context=server_context)
    server.expect_request("/").respond_with_data("over TLS")
    dns_stub.answer("secure.example", ["127.0.0.2"])
    dns_stub.answer("impostor.example", ["127.0.0.2"])
    policy = AddressPolicy(["127.0.0.2"])
    async with SafeFetcher(policy, resolver=dns_resolver, ssl_context=client_context) as fetcher:
        result = await fetcher.fetch(f"https://secure.example:{server.port}/")
        assert (result.content, result.address) == (b"over TLS", "127.0.0.2")
        with pytest.raises(FetchFailed, match="certificate"):
            await fetcher.fetch(f"https://impostor.example:{server.port}/")  # same address, wrong name
    assert [request.headers["Host"] for request, _ in server.log] == [f"secure.example:{server.port}"]


# -- conditional GET, caps, timeouts, Retry-After ------------------------------------------------------


async def test_conditional_get_with_an_etag(web_server: HTTPServer) -> None:
    def page(request: Request) -> Response:
        if request.headers.get("If-None-Match") == '"v1"':
            return Response(status=304, headers={"ETag": '"v1"'})
        return Response("<p>v1</p>", headers={"ETag": '"v1"'}, content_type="text/html")

    web_server.expect_request("/page").respond_with_handler(page)
    url = f"http://127.0.0.1:{web_server.port}/page"
    async with SafeFetcher(AddressPolicy([f"127.0.0.1:{web_server.port}"])) as fetcher:
        first = await fetcher.fetch(url)
        again = await fetcher.fetch(url, etag=first.etag)
        changed = await fetcher.fetch(url, etag='"v0"')
    assert (first.status, first.not_modified, first.etag, first.content) == (200, False, '"v1"', b"<p>v1</p>")
    assert (again.status, again.not_modified, again.etag, again.content) == (304, True, '"v1"', b"")
    assert (changed.status, changed.not_modified) == (200, False)


async def test_conditional_get_with_last_modified(web_server: HTTPServer) -> None:
    stamp = "Wed, 21 Oct 2015 07:28:00 GMT"

    def page(request: Request) -> Response:
        if request.headers.get("If-Modified-Since") == stamp:
            return Response(status=304)  # without the validator: the one sent is kept
        return Response("feed", headers={"Last-Modified": stamp}, content_type="application/rss+xml")

    web_server.expect_request("/feed").respond_with_handler(page)
    url = f"http://127.0.0.1:{web_server.port}/feed"
    async with SafeFetcher(AddressPolicy([f"127.0.0.1:{web_server.port}"])) as fetcher:
        first = await fetcher.fetch(url)
        again = await fetcher.fetch(url, last_modified=first.last_modified)
    assert (first.last_modified, first.content_type, first.not_modified) == (
        stamp,
        "application/rss+xml",
        False,
    )
    assert (again.status, again.not_modified, again.last_modified, again.content) == (304, True, stamp, b"")


async def test_an_oversized_page_is_refused(web_server: HTTPServer) -> None:
    def streamed(request: Request) -> Response:
        return Response((b"x" * 1000 for _ in range(50)), content_type="text/plain")  # no Content-Length

    web_server.expect_request("/declared").respond_with_data(b"x" * 5000)
    web_server.expect_request("/streamed").respond_with_handler(streamed)
    web_server.expect_request("/small").respond_with_data(b"x" * 1000)
    base = f"http://127.0.0.1:{web_server.port}"
    async with SafeFetcher(AddressPolicy([f"127.0.0.1:{web_server.port}"]), max_bytes=4000) as fetcher:
        for path in ("/declared", "/streamed"):
            with pytest.raises(PageTooLarge, match="4,000-byte cap") as too_large:
                await fetcher.fetch(base + path)
            assert too_large.value.code == "page_too_large"
            assert isinstance(too_large.value, PayloadTooLarge)
        assert (await fetcher.fetch(base + "/small")).content == b"x" * 1000


async def test_compressed_bodies_are_decoded_under_the_cap(web_server: HTTPServer) -> None:
    bomb = gzip.compress(b"\0" * 10_000_000)  # about 10 kB that decode to 10 MB
    web_server.expect_request("/bomb").respond_with_data(bomb, headers={"Content-Encoding": "gzip"})
    web_server.expect_request("/page").respond_with_data(
        gzip.compress(b"<p>hello</p>" * 100), headers={"Content-Encoding": "gzip"}, content_type="text/html"
    )
    base = f"http://127.0.0.1:{web_server.port}"
    async with SafeFetcher(AddressPolicy([f"127.0.0.1:{web_server.port}"]), max_bytes=100_000) as fetcher:
        assert (await fetcher.fetch(base + "/page")).content == b"<p>hello</p>" * 100
        with pytest.raises(PageTooLarge):
            await fetcher.fetch(base + "/bomb")
    assert len(bomb) < 100_000  # the cap applies to what the page decodes to, not to what it sends


async def _stalling_server(send_head: bool, release: asyncio.Event) -> asyncio.Server:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        if send_head:
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly part of it")
            await writer.drain()
        await release.wait()
        writer.close()

    return await asyncio.start_server(handle, "127.0.0.1", 0)


@pytest.mark.parametrize("send_head", [False, True], ids=["no-answer", "stalled-body"])
async def test_a_slow_response_times_out(send_head: bool) -> None:
    release = asyncio.Event()
    server = await _stalling_server(send_head, release)
    port = server.sockets[0].getsockname()[1]
    try:
        async with SafeFetcher(AddressPolicy([f"127.0.0.1:{port}"]), timeout=0.5) as fetcher:
            started = asyncio.get_running_loop().time()
            with pytest.raises(FetchTimeout, match=r"0\.5s") as timed_out:
                await fetcher.fetch(f"http://127.0.0.1:{port}/slow")
            assert asyncio.get_running_loop().time() - started < 2.0
        assert timed_out.value.code == "fetch_timeout"
    finally:
        release.set()
        server.close()
        await server.wait_closed()


async def test_retry_after_is_read_on_429_and_503(web_server: HTTPServer) -> None:
    later = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=90)
    web_server.expect_request("/busy").respond_with_data(
        "slow down", status=429, headers={"Retry-After": "120"}
    )
    web_server.expect_request("/down").respond_with_data(
        "maintenance", status=503, headers={"Retry-After": format_datetime(later, usegmt=True)}
    )
    web_server.expect_request("/gone").respond_with_data("no", status=404, headers={"Retry-After": "5"})
    base = f"http://127.0.0.1:{web_server.port}"
    async with SafeFetcher(AddressPolicy([f"127.0.0.1:{web_server.port}"])) as fetcher:
        busy, down, gone = [await fetcher.fetch(base + p) for p in ("/busy", "/down", "/gone")]
    assert (busy.status, busy.retry_after) == (429, 120.0)
    assert down.status == 503
    assert down.retry_after is not None and 80 <= down.retry_after <= 91
    assert (gone.status, gone.retry_after, gone.content) == (404, None, b"no")


def test_parse_retry_after() -> None:
    now = dt.datetime(2026, 1, 1, 12, 0, tzinfo=dt.UTC).timestamp()
    assert parse_retry_after("0", now) == 0.0
    assert parse_retry_after(" 30 ", now) == 30.0
    assert parse_retry_after("Thu, 01 Jan 2026 12:01:00 GMT", now) == 60.0
    assert parse_retry_after("Thu, 01 Jan 2026 11:00:00 GMT", now) == 0.0  # in the past: retry now
    assert parse_retry_after("-5", now) is None
    assert parse_retry_after("soon", now) is None
    assert parse_retry_after(None, now) is None
