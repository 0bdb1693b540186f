"""Bad input gets a clear 4xx in OpenAI's error format, never a stack trace."""

from __future__ import annotations

from typing import Any

import httpx
import pytest


async def post(client: httpx.AsyncClient, body: Any, path: str = "/v1/chat/completions") -> httpx.Response:
    content = body if isinstance(body, bytes) else None
    if content is not None:
        return await client.post(path, content=content, headers={"content-type": "application/json"})
    return await client.post(path, json=body)


@pytest.mark.parametrize(
    ("body", "param", "fragment"),
    [
        (b"{not json", None, "not valid JSON"),
        (b"", None, "empty"),
        (b"[1, 2]", None, "JSON object"),
        ({"messages": [{"role": "user", "content": "x"}]}, "model", "'model' is required"),
        ({"model": "vllm/ok"}, "messages", "'messages' is required"),
        ({"model": "vllm/ok", "messages": []}, "messages", "non-empty"),
        ({"model": "vllm/ok", "messages": ["hi"]}, "messages[0]", "must be an object"),
        (
            {"model": "vllm/ok", "messages": [{"role": "wizard", "content": "x"}]},
            "messages[0].role",
            "must be one of",
        ),
        ({"model": "vllm/ok", "messages": [{"role": "user"}]}, "messages[0].content", "is required"),
        ({"model": "vllm/ok", "messages": [{"role": "user", "content": 5}]}, "messages[0].content", "string"),
        (
            {"model": "vllm/ok", "messages": [{"role": "tool", "content": "x"}]},
            "messages[0].tool_call_id",
            "required",
        ),
        (
            {"model": "vllm/ok", "messages": [{"role": "user", "content": "x"}], "temperature": 3},
            "temperature",
            "between",
        ),
        (
            {"model": "vllm/ok", "messages": [{"role": "user", "content": "x"}], "top_p": "a"},
            "top_p",
            "number",
        ),
        (
            {"model": "vllm/ok", "messages": [{"role": "user", "content": "x"}], "max_tokens": -1},
            "max_tokens",
            "integer",
        ),
        ({"model": "vllm/ok", "messages": [{"role": "user", "content": "x"}], "n": 0}, "n", "at least 1"),
        (
            {"model": "vllm/ok", "messages": [{"role": "user", "content": "x"}], "stream": "yes"},
            "stream",
            "boolean",
        ),
        (
            {"model": "vllm/ok", "messages": [{"role": "user", "content": "x"}], "stop": [1]},
            "stop",
            "strings",
        ),
        (
            {"model": "vllm/ok", "messages": [{"role": "user", "content": "x"}], "metadata": {"a": {"b": 1}}},
            "metadata.a",
            "string",
        ),
    ],
)
async def test_invalid_chat_bodies(
    client: httpx.AsyncClient, body: Any, param: str | None, fragment: str
) -> None:
    resp = await post(client, body)
    assert resp.status_code == 400, resp.text
    err = resp.json()["error"]
    assert err["type"] == "invalid_request_error"
    assert err["param"] == param
    assert fragment in err["message"]
    assert "Traceback" not in resp.text


async def test_unknown_model_is_404(client: httpx.AsyncClient) -> None:
    resp = await post(client, {"model": "nope/never", "messages": [{"role": "user", "content": "x"}]})
    assert resp.status_code == 404
    assert resp.json()["error"]["code"] == "model_not_found"


async def test_model_of_a_disabled_provider_is_404(client: httpx.AsyncClient) -> None:
    resp = await post(
        client, {"model": "anthropic/claude-haiku-4-5", "messages": [{"role": "user", "content": "x"}]}
    )
    assert resp.status_code == 404
    assert "not enabled" in resp.json()["error"]["message"]


async def test_oversize_body_is_413(client: httpx.AsyncClient) -> None:
    big = {"model": "vllm/ok", "messages": [{"role": "user", "content": "x" * (5 * 1024 * 1024)}]}
    resp = await post(client, big)
    assert resp.status_code == 413
    assert resp.json()["error"]["code"] == "payload_too_large"


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"model": "openai/text-embedding-3-small"}, "input"),
        ({"model": "openai/text-embedding-3-small", "input": ""}, "input"),
        ({"model": "openai/text-embedding-3-small", "input": [1, "a"]}, "input"),
        (
            {"model": "openai/text-embedding-3-small", "input": "a", "encoding_format": "hex"},
            "encoding_format",
        ),
        ({"input": "a"}, "model"),
    ],
)
async def test_invalid_embedding_bodies(client: httpx.AsyncClient, body: Any, param: str) -> None:
    resp = await post(client, body, "/v1/embeddings")
    assert resp.status_code == 400
    assert resp.json()["error"]["param"] == param
