"""The OpenAI-compatible adapter: vendor headers, SSE framing edge cases, errors, Retry-After."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import orjson
import pytest
from aiohttp import web

from sophia.errors import ProviderError, ProviderHTTPError, ProviderTimeout, ProviderUnavailable
from sophia.httpclient import HTTPClient
from sophia.providers import openrouter, portkey, vllm
from sophia.providers.adapters._http import SSEBuffer, event_data, parse_retry_after
from sophia.providers.adapters.openai_compat import OpenAICompatAdapter
from sophia.providers.base import CallOptions, ModelInfo
from sophia.settings import ProviderSettings, load_settings

MODEL = ModelInfo("vllm/m", "vllm", "m", 0.0, 0.0, 1000)
CHAT = {"model": "vllm/m", "messages": [{"role": "user", "content": "hi"}]}


class Upstream:
    """A loopback server whose next answer is set by each test."""

    def __init__(self) -> None:
        self.headers: dict[str, str] = {}
        self.body: dict[str, object] = {}
        self.reply: bytes = b""
        self.status = 200
        self.extra: dict[str, str] = {}
        self.pieces: list[bytes] = []

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.headers = dict(request.headers)
        self.body = orjson.loads(await request.read())
        if self.pieces:
            resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
            await resp.prepare(request)
            for piece in self.pieces:
                await resp.write(piece)
            return resp
        return web.Response(
            body=self.reply, status=self.status, headers=self.extra, content_type="application/json"
        )


@pytest.fixture
async def upstream() -> AsyncIterator[tuple[Upstream, str]]:
    state = Upstream()
    app = web.Application()
    app.router.add_post("/v1/chat/completions", state.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield state, f"http://127.0.0.1:{port}/v1"
    await runner.cleanup()


async def adapter_for(
    vendor_module: object, config: ProviderSettings
) -> tuple[OpenAICompatAdapter, aiohttp.ClientSession]:
    adapter = OpenAICompatAdapter(vendor_module.VENDOR, config, load_settings())  # type: ignore[attr-defined]
    session = HTTPClient()
    await adapter.start(session)
    return adapter, session


async def test_portkey_routes_on_option_headers(upstream: tuple[Upstream, str]) -> None:
    state, url = upstream
    state.reply = orjson.dumps({"choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 4}})
    config = ProviderSettings(
        api_key="test-portkey-key",
        base_url=url,
        options={"virtual_key": "vk-test", "config": {"retry": {"attempts": 2}}},
    )
    adapter, session = await adapter_for(portkey, config)
    try:
        result = await adapter.chat(MODEL, CHAT, CallOptions())
    finally:
        await session.close()
    assert state.headers["x-portkey-api-key"] == "test-portkey-key"
    assert "Authorization" not in state.headers
    assert state.headers["x-portkey-virtual-key"] == "vk-test"
    assert orjson.loads(state.headers["x-portkey-config"]) == {"retry": {"attempts": 2}}
    assert (result.usage.prompt_tokens, result.usage.completion_tokens) == (3, 4)
    assert state.body["model"] == "m"
    assert state.body["stream"] is False


async def test_openrouter_sends_bearer_and_attribution(upstream: tuple[Upstream, str]) -> None:
    state, url = upstream
    state.reply = b'{"choices": []}'
    adapter, session = await adapter_for(openrouter, ProviderSettings(api_key="test-or-key", base_url=url))
    try:
        result = await adapter.chat(MODEL, CHAT, CallOptions())
    finally:
        await session.close()
    assert state.headers["Authorization"] == "Bearer test-or-key"
    assert state.headers["X-Title"] == "Sophia"
    assert result.usage.total_tokens == 0  # an answer without usage costs what it says: nothing known


async def test_error_status_carries_message_and_retry_after(upstream: tuple[Upstream, str]) -> None:
    state, url = upstream
    state.status, state.reply = 429, b'{"error": {"message": "slow down please"}}'
    state.extra = {"Retry-After": "7"}
    adapter, session = await adapter_for(vllm, ProviderSettings(base_url=url))
    try:
        with pytest.raises(ProviderHTTPError) as info:
            await adapter.chat(MODEL, CHAT, CallOptions())
    finally:
        await session.close()
    assert info.value.status == 429
    assert info.value.retry_after == 7
    assert info.value.retryable
    assert "slow down please" in info.value.message


async def test_invalid_json_answer_is_a_provider_error(upstream: tuple[Upstream, str]) -> None:
    state, url = upstream
    state.reply = b"<html>oops</html>"
    adapter, session = await adapter_for(vllm, ProviderSettings(base_url=url))
    try:
        with pytest.raises(ProviderError, match="invalid JSON"):
            await adapter.chat(MODEL, CHAT, CallOptions())
    finally:
        await session.close()


async def test_stream_split_across_reads_with_crlf_and_comments(upstream: tuple[Upstream, str]) -> None:
    state, url = upstream
    chunk = orjson.dumps({"choices": [{"delta": {"content": "hé"}}]})
    usage = orjson.dumps({"choices": [], "usage": {"prompt_tokens": 2, "completion_tokens": 1}})
    wire = b": keep-alive\r\n\r\ndata: " + chunk + b"\r\n\r\ndata: " + usage + b"\r\n\r\ndata: [DONE]\r\n\r\n"
    state.pieces = [wire[i : i + 7] for i in range(0, len(wire), 7)]  # cut everywhere, even inside UTF-8
    adapter, session = await adapter_for(vllm, ProviderSettings(base_url=url))
    try:
        stream = await adapter.chat_stream(MODEL, CHAT, CallOptions(include_usage=False))
        events = [e async for e in stream]
    finally:
        await session.close()
    assert events == [b"data: " + chunk + b"\n\n"]  # the usage-only chunk is dropped on request
    assert stream.usage.prompt_tokens == 2
    assert state.body["stream_options"] == {"include_usage": True}


async def test_refused_connection_and_head_timeout() -> None:
    adapter, session = await adapter_for(vllm, ProviderSettings(base_url="http://127.0.0.1:9/v1"))
    try:
        with pytest.raises(ProviderUnavailable):
            await adapter.chat(MODEL, CHAT, CallOptions())
    finally:
        await session.close()

    async def slow(request: web.Request) -> web.Response:
        import asyncio

        await asyncio.sleep(2)
        return web.Response(text="{}")

    app = web.Application()
    app.router.add_post("/v1/chat/completions", slow)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    adapter, session = await adapter_for(vllm, ProviderSettings(base_url=f"http://127.0.0.1:{port}/v1"))
    try:
        with pytest.raises(ProviderTimeout, match=r"within 0\.2s"):
            await adapter.chat(MODEL, CHAT, CallOptions(first_byte_timeout=0.2))
    finally:
        await session.close()
        await runner.cleanup()


def test_sse_buffer_and_event_data() -> None:
    buf = SSEBuffer()
    assert buf.feed(b"data: a\n") == []
    assert buf.feed(b"\ndata: b\n\nda") == [b"data: a", b"data: b"]
    assert buf.flush() == [b"da"]
    assert event_data(b"data: x") == b"x"
    assert event_data(b"event: y\ndata: 1\ndata: 2") == b"1\n2"
    assert event_data(b": comment") is None


def test_retry_after_forms() -> None:
    assert parse_retry_after("3") == 3.0
    assert parse_retry_after(None) is None
    assert parse_retry_after("soon") is None
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0  # a date in the past: retry now


async def test_an_upstream_error_that_echoes_the_key_is_scrubbed(upstream: tuple[Upstream, str]) -> None:
    state, url = upstream
    state.status = 401
    state.reply = b'{"error": {"message": "Incorrect API key provided: sk-test-0123456789abcdef. Check it."}}'
    adapter, session = await adapter_for(
        vllm,
        ProviderSettings(
            base_url=url,
            api_key="sk-test-0123456789abcdef",  # pragma: allowlist secret (a fake, on purpose)
        ),
    )
    try:
        with pytest.raises(ProviderHTTPError) as info:
            await adapter.chat(MODEL, CHAT, CallOptions())
    finally:
        await session.close()
    assert "0123456789abcdef" not in info.value.message
    assert "Incorrect API key provided: [redacted]. Check it." in info.value.message
