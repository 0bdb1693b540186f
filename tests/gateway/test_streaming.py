"""Streamed chat completions: SSE framing, usage chunk, fallback before the first byte, errors."""

from __future__ import annotations

import httpx
import orjson

from fakes.helpers import chat
from fakes.upstream import FakeUpstream
from sophia.gateway.engine import Gateway


def events(text: str) -> list[bytes]:
    return [e[6:].encode() for e in text.split("\n\n") if e.startswith("data: ")]


async def test_stream_relays_chunks_usage_and_done(client: httpx.AsyncClient, gateway: Gateway) -> None:
    resp = await client.post("/v1/chat/completions", json=chat("vllm/priced", stream=True))
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("text/event-stream")
    data = events(resp.text)
    assert data[-1] == b"[DONE]"
    chunks = [orjson.loads(d) for d in data[:-1]]
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks if c["choices"])
    assert text == "one two three "
    assert chunks[-1]["choices"] == []
    assert chunks[-1]["usage"]["total_tokens"] == 15
    await gateway.accounts.ledger.flush()
    rows = await gateway.accounts.ledger.report(0, None, ["model"])
    assert rows[0]["cost_usd"] > 0
    assert rows[0]["completion_tokens"] == 5


async def test_usage_chunk_is_dropped_when_the_client_opts_out(
    client: httpx.AsyncClient, upstream: FakeUpstream, gateway: Gateway
) -> None:
    body = chat("vllm/priced", stream=True, stream_options={"include_usage": False})
    resp = await client.post("/v1/chat/completions", json=body)
    chunks = [orjson.loads(d) for d in events(resp.text)[:-1]]
    assert all(c["choices"] for c in chunks)
    # Sophia still asked the upstream for usage, and booked it
    assert upstream.requests[-1].body["stream_options"] == {"include_usage": True}
    await gateway.accounts.ledger.flush()
    assert (await gateway.accounts.ledger.report(0, None, ["model"]))[0]["prompt_tokens"] == 10


async def test_stream_falls_back_when_first_event_is_late(
    client: httpx.AsyncClient, upstream: FakeUpstream
) -> None:
    resp = await client.post("/v1/chat/completions", json=chat("test/fallback-stall", stream=True))
    assert resp.status_code == 200
    assert resp.headers["x-sophia-model"] == "ollama/ok"
    assert "vllm/stall-5=provider_timeout" in resp.headers["x-sophia-route"]


async def test_stream_error_before_first_byte_is_a_json_error(client: httpx.AsyncClient) -> None:
    resp = await client.post("/v1/chat/completions", json=chat("test/all-bad", stream=True))
    assert resp.status_code == 502
    assert resp.json()["error"]["code"] == "all_providers_failed"


async def test_stream_through_a_fallback_chain_after_500s(client: httpx.AsyncClient) -> None:
    resp = await client.post("/v1/chat/completions", json=chat("test/fallback-500", stream=True))
    assert resp.status_code == 200
    assert events(resp.text)[-1] == b"[DONE]"
