"""Inputs a hostile client sent (issue 22): each got a 5xx or was accepted before; now each is a 4xx
with an OpenAI-format error, and nothing reaches a model that cannot take it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import orjson
import pytest

from fakes.helpers import chat, gateway_settings
from fakes.upstream import FakeUpstream
from sophia.gateway.app import MAX_DEPTH, GatewayApp
from sophia.gateway.engine import Gateway


@pytest.fixture(params=[False, True], ids=["cache-off", "cache-on"])
async def http(upstream: FakeUpstream, request: pytest.FixtureRequest) -> AsyncIterator[httpx.AsyncClient]:
    settings = gateway_settings(
        upstream.url,
        cache={"enabled": request.param},
        models={"vllm/tiny": {"input_price": 0.0, "output_price": 0.0, "context_window": 512}},
        aliases={"test/tiny-first": ["vllm/tiny", "ollama/ok"], "test/all-tiny": ["vllm/tiny"]},
    )
    gw = Gateway(settings)
    await gw.start()
    secret, _ = await gw.accounts.keys.create(name="hostile")
    transport = httpx.ASGITransport(app=GatewayApp(gw, lifespan=False))
    async with httpx.AsyncClient(
        transport=transport, base_url="http://sophia.test", headers={"Authorization": f"Bearer {secret}"}
    ) as client:
        yield client
    await gw.close()


def nested(depth: int) -> Any:
    value: Any = "deep"
    for i in range(depth - 1):
        value = [value] if i % 2 else {"k": value}
    return value


def assert_openai_error(resp: httpx.Response, status: int, code: str | None = None) -> dict[str, Any]:
    assert resp.status_code == status, resp.text
    error = resp.json()["error"]
    assert set(error) == {"message", "type", "param", "code"} and error["message"]
    if code is not None:
        assert error["code"] == code
    return error


@pytest.mark.parametrize("role", [["user"], {"user": 1}, 7, None, True])
async def test_a_role_that_is_not_a_string_is_a_400(http: httpx.AsyncClient, role: Any) -> None:
    body = {"model": "vllm/ok", "messages": [{"role": role, "content": "hi"}]}
    error = assert_openai_error(await http.post("/v1/chat/completions", json=body), 400)
    assert error["param"] == "messages[0].role"


@pytest.mark.parametrize("where", ["content", "metadata", "tools", "unknown_field", "top"])
@pytest.mark.parametrize("depth", [MAX_DEPTH + 1, 300])
async def test_deep_nesting_anywhere_is_refused_at_parse_time(
    http: httpx.AsyncClient, upstream: FakeUpstream, where: str, depth: int
) -> None:
    body: Any = chat("vllm/ok")
    if where == "content":
        body["messages"][0]["content"] = [{"type": "text", "text": "x", "extra": nested(depth)}]
    elif where == "metadata":
        body["metadata"] = {"tag": nested(depth)}
    elif where == "tools":
        body["tools"] = [{"type": "function", "function": {"name": "f", "parameters": nested(depth)}}]
    elif where == "unknown_field":
        body["whatever"] = nested(depth)
    else:
        body = nested(depth)
    raw = orjson.dumps(body) if depth < 250 else _dumps_deep(body)
    resp = await http.post("/v1/chat/completions", content=raw, headers={"content-type": "application/json"})
    error = assert_openai_error(resp, 400)
    assert "nest" in error["message"] or "JSON" in error["message"]
    assert upstream.calls["ok"] == 0


def _dumps_deep(value: Any) -> bytes:
    """JSON for values nested past orjson's own limit (the attack's bodies are hand-written)."""
    if isinstance(value, dict):
        return b"{" + b",".join(orjson.dumps(k) + b":" + _dumps_deep(v) for k, v in value.items()) + b"}"
    if isinstance(value, list):
        return b"[" + b",".join(_dumps_deep(v) for v in value) + b"]"
    return orjson.dumps(value)


async def test_a_body_nested_to_the_limit_is_served(http: httpx.AsyncClient) -> None:
    body = chat("vllm/ok", metadata={"a": "b"})
    body["tools"] = [{"type": "function", "function": {"name": "f", "parameters": nested(MAX_DEPTH - 5)}}]
    assert (await http.post("/v1/chat/completions", json=body)).status_code == 200


async def test_a_prompt_no_model_can_hold_is_refused_before_any_model_sees_it(
    http: httpx.AsyncClient, upstream: FakeUpstream
) -> None:
    long = "word " * 20_000  # 100 kB: at least 12,500 tokens, against a 512-token context
    for model in ("vllm/tiny", "test/all-tiny"):
        resp = await http.post("/v1/chat/completions", json=chat(model, long))
        error = assert_openai_error(resp, 400, "context_length_exceeded")
        assert "512-token context" in error["message"]
    many = {"model": "vllm/tiny", "messages": [{"role": "user", "content": "hi"}] * 20_000}
    assert_openai_error(await http.post("/v1/chat/completions", json=many), 400, "context_length_exceeded")
    assert upstream.calls["tiny"] == 0


async def test_a_chain_skips_the_models_too_small_for_the_prompt(
    http: httpx.AsyncClient, upstream: FakeUpstream
) -> None:
    resp = await http.post("/v1/chat/completions", json=chat("test/tiny-first", "word " * 20_000))
    assert resp.status_code == 200
    assert resp.headers["x-sophia-model"] == "ollama/ok"
    assert upstream.calls["tiny"] == 0
    short = await http.post("/v1/chat/completions", json=chat("test/tiny-first", "hello"))
    assert short.headers["x-sophia-model"] == "vllm/tiny"  # a prompt that fits still goes first


async def test_the_key_is_checked_before_the_body_is_read(upstream: FakeUpstream) -> None:
    """A stranger's body is never read: the 401 comes first, whatever the body."""
    gw = Gateway(gateway_settings(upstream.url))
    await gw.start()
    reads = 0

    async def receive() -> dict[str, Any]:
        nonlocal reads
        reads += 1
        return {"type": "http.request", "body": b"x" * 1024, "more_body": True}

    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "method": "POST",
        "path": "/v1/chat/completions",
        "headers": [(b"authorization", b"Bearer sk-sophia-not-a-key"), (b"content-length", b"100000000")],
    }
    try:
        await GatewayApp(gw, lifespan=False)(scope, receive, send)
    finally:
        await gw.close()
    assert sent[0]["status"] == 401 and reads == 0


@pytest.mark.parametrize("value", ["nan", "inf", "-1", "-inf", "abc"])
async def test_router_options_must_be_finite_non_negative_numbers(
    http: httpx.AsyncClient, value: str
) -> None:
    body = chat("sophia/auto", metadata={"quality_target": value})
    error = assert_openai_error(await http.post("/v1/chat/completions", json=body), 400)
    assert error["param"] == "metadata.quality_target"
