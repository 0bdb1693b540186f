"""Fixtures for the collector's tests: a DNS stub on loopback (dnslib over UDP, answers set per test and
every query logged), a resolver that asks it, and a local web server (pytest-httpserver on 127.0.0.1)."""

from __future__ import annotations

import asyncio
import ipaddress
import ssl
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator

import pytest
from dnslib import AAAA, QTYPE, RCODE, RR, A, DNSRecord
from pytest_httpserver import HTTPServer

from sophia.collect.fetch import FetchFailed


class DNSStub(asyncio.DatagramProtocol):
    """An authoritative stub: ``answer(name, first, second, ...)`` sets what the 1st, 2nd, ... query of
    each type gets (the last repeats), so a test can make a name change its answer (DNS rebinding)."""

    def __init__(self) -> None:
        self.records: dict[str, list[list[str]]] = {}
        self.queries: list[tuple[str, str]] = []
        self._served: Counter[tuple[str, str]] = Counter()
        self._transport: asyncio.DatagramTransport | None = None
        self.address: tuple[str, int] = ("127.0.0.1", 0)

    def answer(self, name: str, *answers: str | list[str]) -> None:
        self.records[name.lower().rstrip(".")] = [[a] if isinstance(a, str) else list(a) for a in answers]

    def count(self, name: str, qtype: str = "A") -> int:
        return sum(1 for q in self.queries if q == (name, qtype))

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        request = DNSRecord.parse(data)
        name = str(request.q.qname).rstrip(".").lower()
        qtype = QTYPE[request.q.qtype]
        self.queries.append((name, qtype))
        reply = request.reply()
        rotation = self.records.get(name)
        if rotation is None:
            reply.header.rcode = RCODE.NXDOMAIN
        else:
            served = self._served[(name, qtype)]
            self._served[(name, qtype)] += 1
            for text in rotation[min(served, len(rotation) - 1)]:
                address = ipaddress.ip_address(text)
                if qtype == "A" and address.version == 4:
                    reply.add_answer(RR(request.q.qname, QTYPE.A, rdata=A(text), ttl=0))
                elif qtype == "AAAA" and address.version == 6:
                    reply.add_answer(RR(request.q.qname, QTYPE.AAAA, rdata=AAAA(address.exploded), ttl=0))
        assert self._transport is not None
        self._transport.sendto(reply.pack(), addr)

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(lambda: self, local_addr=("127.0.0.1", 0))
        self.address = transport.get_extra_info("sockname")[:2]

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()


class DNSStubResolver:
    """A ``SafeFetcher`` resolver that asks a DNS server over UDP (A and AAAA), as a stub resolver does."""

    def __init__(self, server: tuple[str, int], timeout: float = 2.0) -> None:
        self.server = server
        self.timeout = timeout

    async def __call__(self, host: str, port: int) -> list[str]:
        a, aaaa = await asyncio.gather(self._query(host, "A"), self._query(host, "AAAA"))
        if a is None and aaaa is None:
            raise FetchFailed(f"cannot resolve {host}: no such name", code="dns_failed")
        return (a or []) + (aaaa or [])

    async def _query(self, host: str, qtype: str) -> list[str] | None:
        loop = asyncio.get_running_loop()
        answered: asyncio.Future[bytes] = loop.create_future()

        class Client(asyncio.DatagramProtocol):
            def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
                if not answered.done():
                    answered.set_result(data)

            def error_received(self, exc: Exception) -> None:
                if not answered.done():
                    answered.set_exception(exc)

        transport, _ = await loop.create_datagram_endpoint(Client, remote_addr=self.server)
        try:
            transport.sendto(DNSRecord.question(host, qtype).pack())
            reply = DNSRecord.parse(await asyncio.wait_for(answered, self.timeout))
        finally:
            transport.close()
            await asyncio.sleep(0)
        if reply.header.rcode == RCODE.NXDOMAIN:
            return None
        return [str(rr.rdata) for rr in reply.rr if QTYPE[rr.rtype] == qtype]


@pytest.fixture
async def dns_stub() -> AsyncIterator[DNSStub]:
    stub = DNSStub()
    await stub.start()
    yield stub
    stub.close()
    await asyncio.sleep(0)  # the transport closes its socket on the next turn of the loop


@pytest.fixture
def dns_resolver(dns_stub: DNSStub) -> DNSStubResolver:
    return DNSStubResolver(dns_stub.address)


@pytest.fixture
def web_server_factory() -> Iterator[Callable[..., HTTPServer]]:
    """Starts real HTTP(S) servers on a given loopback address and port; all stop after the test."""
    servers: list[HTTPServer] = []

    def start(
        host: str = "127.0.0.1", port: int = 0, ssl_context: ssl.SSLContext | None = None
    ) -> HTTPServer:
        server = HTTPServer(host=host, port=port, ssl_context=ssl_context, threaded=True)
        server.start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.clear()
        server.stop()


@pytest.fixture
def web_server(web_server_factory: Callable[..., HTTPServer]) -> HTTPServer:
    """A real HTTP server on 127.0.0.1 (a random port); handlers are set per test."""
    return web_server_factory()
