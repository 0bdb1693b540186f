"""A client that goes away cancels the upstream call (real uvicorn server on loopback)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest

from fakes.helpers import chat, gateway_settings
from fakes.helpers import served as serve_gateway
from fakes.upstream import FakeUpstream
from sophia.gateway.engine import Gateway


@pytest.fixture
async def served(upstream: FakeUpstream) -> AsyncIterator[tuple[str, Gateway, str]]:
    gw = Gateway(gateway_settings(upstream.url, reliability={"timeout": 30, "first_byte_timeout": 30}))
    async with serve_gateway(gw) as url:
        secret, _ = await gw.accounts.keys.create(name="disconnect")
        yield url, gw, secret


async def wait_for(predicate: object, seconds: float = 5.0) -> None:
    for _ in range(int(seconds / 0.02)):
        if predicate():  # type: ignore[operator]
            return
        await asyncio.sleep(0.02)


async def test_client_disconnect_cancels_a_pending_upstream_call(
    served: tuple[str, Gateway, str], upstream: FakeUpstream
) -> None:
    url, gw, secret = served
    async with httpx.AsyncClient(headers={"Authorization": f"Bearer {secret}"}) as http:
        with pytest.raises(httpx.ReadTimeout):
            await http.post(f"{url}/v1/chat/completions", json=chat("vllm/slow-10"), timeout=0.5)
    await wait_for(lambda: upstream.cancelled == 1)
    assert upstream.cancelled == 1  # the upstream saw its caller leave long before its 10 s were up
    await gw.accounts.ledger.flush()
    rows = await gw.accounts.ledger.db.fetchall("SELECT outcome, status FROM sophia_usage")
    assert rows == [{"outcome": "cancelled", "status": 499}]


async def test_client_disconnect_mid_stream_stops_the_upstream_stream(
    served: tuple[str, Gateway, str], upstream: FakeUpstream
) -> None:
    url, gw, secret = served
    async with (
        httpx.AsyncClient(headers={"Authorization": f"Bearer {secret}"}, timeout=10) as http,
        http.stream("POST", f"{url}/v1/chat/completions", json=chat("vllm/long", stream=True)) as resp,
    ):
        assert resp.status_code == 200
        seen = 0
        async for line in resp.aiter_lines():
            if line.startswith("data: "):
                seen += 1
            if seen == 3:
                break
    await wait_for(lambda: upstream.cancelled == 1)
    assert upstream.cancelled == 1
    assert upstream.streamed_events < 100  # of 200: it stopped when the client left
    await gw.accounts.ledger.flush()
    rows = await gw.accounts.ledger.db.fetchall("SELECT outcome, served_model FROM sophia_usage")
    assert rows == [{"outcome": "cancelled", "served_model": "vllm/long"}]
