"""The official openai SDK, pointed at the gateway, works unchanged."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import openai
import pytest

from sophia.gateway.app import GatewayApp
from sophia.gateway.engine import Gateway


@pytest.fixture
async def sdk(gateway: Gateway, key: str) -> AsyncIterator[openai.AsyncOpenAI]:
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=GatewayApp(gateway)))
    client = openai.AsyncOpenAI(
        base_url="http://sophia.test/v1", api_key=key, http_client=http, max_retries=0
    )
    yield client
    await client.close()


async def test_chat(sdk: openai.AsyncOpenAI) -> None:
    reply = await sdk.chat.completions.create(model="vllm/ok", messages=[{"role": "user", "content": "ping"}])
    assert reply.choices[0].message.content == "echo: ping"
    assert reply.usage is not None and reply.usage.total_tokens == 15


async def test_chat_stream_with_usage(sdk: openai.AsyncOpenAI) -> None:
    stream = await sdk.chat.completions.create(
        model="vllm/ok",
        messages=[{"role": "user", "content": "ping"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    parts, usage = [], None
    async for chunk in stream:
        if chunk.choices:
            parts.append(chunk.choices[0].delta.content or "")
        if chunk.usage:
            usage = chunk.usage
    assert "".join(parts) == "one two three "
    assert usage is not None and usage.completion_tokens == 5


async def test_embeddings_and_models(sdk: openai.AsyncOpenAI) -> None:
    emb = await sdk.embeddings.create(model="openai/text-embedding-3-small", input=["a", "b"])
    assert len(emb.data) == 2
    ids = [m.id async for m in sdk.models.list()]
    assert "openai/gpt-4.1" in ids and "test/fallback-500" in ids


async def test_errors_map_to_sdk_exceptions(sdk: openai.AsyncOpenAI, gateway: Gateway) -> None:
    with pytest.raises(openai.NotFoundError):
        await sdk.chat.completions.create(model="no/such", messages=[{"role": "user", "content": "x"}])
    with pytest.raises(openai.BadRequestError):
        await sdk.chat.completions.create(model="vllm/ok", messages=[])
    bad = openai.AsyncOpenAI(
        base_url="http://sophia.test/v1",
        api_key="sk-sophia-wrong",
        http_client=httpx.AsyncClient(transport=httpx.ASGITransport(app=GatewayApp(gateway))),
        max_retries=0,
    )
    with pytest.raises(openai.AuthenticationError):
        await bad.chat.completions.create(model="vllm/ok", messages=[{"role": "user", "content": "x"}])
    await bad.close()
