"""Fixtures for driving the gateway in-process against a real loopback upstream."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from fakes.helpers import gateway_settings
from fakes.upstream import FakeUpstream
from sophia.gateway.app import GatewayApp
from sophia.gateway.engine import Gateway


@pytest.fixture
async def gateway(upstream: FakeUpstream) -> AsyncIterator[Gateway]:
    gw = Gateway(gateway_settings(upstream.url))
    await gw.start()
    yield gw
    await gw.close()


@pytest.fixture
async def key(gateway: Gateway) -> str:
    secret, _ = await gateway.accounts.keys.create(name="tester", team="qa", admin=True)
    return secret


@pytest.fixture
async def client(gateway: Gateway, key: str) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=GatewayApp(gateway))
    async with httpx.AsyncClient(
        transport=transport, base_url="http://sophia.test", headers={"Authorization": f"Bearer {key}"}
    ) as http:
        yield http
