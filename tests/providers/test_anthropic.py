"""The Anthropic Messages adapter against a real local HTTP server replaying Anthropic's documented answers.

The server (aiohttp on 127.0.0.1, random port) records every request it receives, so each test
reads as: this OpenAI-format request becomes exactly this Anthropic request, and this Anthropic
answer becomes exactly this OpenAI answer (or these chunks, or this error).
"""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiohttp import web
from openai.types.chat import ChatCompletion, ChatCompletionChunk

from sophia.errors import (
    InvalidRequest,
    ProviderError,
    ProviderHTTPError,
    ProviderTimeout,
    ProviderUnavailable,
)
from sophia.httpclient import HTTPClient
from sophia.providers.adapters.anthropic import DEFAULT_MAX_TOKENS, JSON_ONLY, AnthropicAdapter
from sophia.providers.anthropic import VENDOR
from sophia.providers.base import CallOptions
from sophia.settings import ProviderSettings, load_settings

DATA = Path(__file__).parent / "data" / "anthropic"
KEY = "test-anthropic-key"
MODEL = next(m for m in VENDOR.model_infos() if m.upstream == "claude-sonnet-4-5")
OPTIONS = CallOptions(timeout=5.0, first_byte_timeout=5.0)


# -- the fake Anthropic ---------------------------------------------------------------------------


@dataclass
class Reply:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    sse: bool = False  # stream the body in small pieces as text/event-stream
    hold_head: bool = False  # wait (until teardown) before answering at all
    hold_after: int | None = None  # stream this many bytes, then wait (until teardown)


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: dict[str, Any]


@dataclass
class Upstream:
    port: int
    replies: list[Reply] = field(default_factory=list)
    received: list[Received] = field(default_factory=list)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def reply_json(self, name: str, status: int = 200, headers: dict[str, str] | None = None) -> None:
        self.replies.append(Reply(status, (DATA / name).read_bytes(), headers or {}))

    def reply_sse(self, body: bytes | str, **kw: Any) -> None:
        raw = (DATA / body).read_bytes() if isinstance(body, str) else body
        self.replies.append(Reply(body=raw, sse=True, **kw))

    @property
    def last(self) -> dict[str, Any]:
        return self.received[-1].body


@pytest.fixture
async def upstream() -> AsyncIterator[Upstream]:
    release = asyncio.Event()
    state = Upstream(port=0)

    async def messages(request: web.Request) -> web.StreamResponse:
        state.received.append(Received(request.path, dict(request.headers), await request.json()))
        reply = state.replies.pop(0)
        if reply.hold_head:
            await release.wait()
        if not reply.sse:
            return web.Response(
                status=reply.status, body=reply.body, headers=reply.headers, content_type="application/json"
            )
        resp = web.StreamResponse(
            status=reply.status, headers={"Content-Type": "text/event-stream", **reply.headers}
        )
        await resp.prepare(request)
        body = reply.body if reply.hold_after is None else reply.body[: reply.hold_after]
        try:
            for start in range(0, len(body), 37):  # odd-sized pieces: events arrive split mid-line
                await resp.write(body[start : start + 37])
            if reply.hold_after is not None:
                await release.wait()
            await resp.write_eof()
        except ConnectionResetError:
            pass  # the adapter closed the stream early, as the test wanted
        return resp

    app = web.Application()
    app.router.add_post("/v1/messages", messages)
    runner = web.AppRunner(app, shutdown_timeout=1.0)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    state.port = runner.addresses[0][1]
    yield state
    release.set()
    await runner.cleanup()


@pytest.fixture
async def adapter(upstream: Upstream) -> AsyncIterator[AnthropicAdapter]:
    settings = ProviderSettings(api_key=KEY, base_url=upstream.base_url)
    adapter = AnthropicAdapter(VENDOR, settings, load_settings())
    client = HTTPClient()
    await adapter.start(client)
    yield adapter
    await adapter.close()
    await client.close()


def user(text: str) -> dict[str, Any]:
    return {"model": MODEL.upstream, "messages": [{"role": "user", "content": text}]}


async def collect(stream: AsyncIterator[bytes]) -> list[dict[str, Any]]:
    """Every chunk of a stream, checked for SSE framing and decoded."""
    chunks = []
    async for event in stream:
        assert event.startswith(b"data: ")
        assert event.endswith(b"\n\n")
        assert event != b"data: [DONE]\n\n"
        chunks.append(orjson.loads(event[6:]))
    return chunks


# -- requests: OpenAI -> Anthropic ----------------------------------------------------------------


async def test_text_message_request_and_answer(adapter: AnthropicAdapter, upstream: Upstream) -> None:
    upstream.reply_json("message_text.json")
    request = {
        "model": MODEL.upstream,
        "messages": [
            {"role": "system", "content": "You are Claude."},
            {"role": "developer", "content": [{"type": "text", "text": "Be brief."}]},
            {"role": "user", "content": "Hello, who are you?"},
        ],
    }

    completion = await adapter.chat(MODEL, request, OPTIONS)

    [received] = upstream.received
    assert received.path == "/v1/messages"
    assert received.headers["x-api-key"] == KEY
    assert received.headers["anthropic-version"] == "2023-06-01"
    assert received.headers["Content-Type"] == "application/json"
    assert "Authorization" not in received.headers
    assert received.body == {
        "model": "claude-sonnet-4-5",
        "messages": [{"role": "user", "content": [{"type": "text", "text": "Hello, who are you?"}]}],
        "max_tokens": DEFAULT_MAX_TOKENS,
        "system": [{"type": "text", "text": "You are Claude."}, {"type": "text", "text": "Be brief."}],
    }
    body = orjson.loads(completion.body)
    assert body["id"] == "chatcmpl-msg_013Zva2CMHLNnXjNJJKqJ2EF"
    assert body["object"] == "chat.completion"
    assert body["model"] == "anthropic/claude-sonnet-4-5"
    assert isinstance(body["created"], int)
    assert body["choices"] == [
        {
            "index": 0,
            "message": {"role": "assistant", "content": "Hi! My name is Claude.", "refusal": None},
            "logprobs": None,
            "finish_reason": "stop",
        }
    ]
    # prompt = input_tokens + cache writes + cache reads
    assert body["usage"] == {
        "prompt_tokens": 2095 + 100 + 1000,
        "completion_tokens": 503,
        "total_tokens": 3195 + 503,
        "prompt_tokens_details": {"cached_tokens": 1000},
    }
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (3195, 503)


async def test_tools_history_and_alternation(adapter: AnthropicAdapter, upstream: Upstream) -> None:
    upstream.reply_json("message_tool_use.json")
    weather = {
        "type": "object",
        "properties": {
            "location": {"type": "string"},
            "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
        },
        "required": ["location"],
    }
    request = {
        "model": MODEL.upstream,
        "messages": [
            {"role": "system", "content": "You are a weather bot."},
            {"role": "user", "content": "Weather in Paris and Berlin?"},
            {
                "role": "assistant",
                "content": "Checking both.",
                "tool_calls": [
                    {
                        "id": "toolu_01",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": '{"location": "Paris"}'},
                    },
                    {
                        "id": "toolu_02",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": '{"location": "Berlin"}'},
                    },
                ],
            },
            {"role": "tool", "tool_call_id": "toolu_01", "content": "18 C, sunny"},
            {"role": "tool", "tool_call_id": "toolu_02", "content": [{"type": "text", "text": "12 C, rain"}]},
            {"role": "user", "content": "And San Francisco?"},
            {"role": "user", "content": [{"type": "text", "text": "In Celsius."}]},
        ],
        "tools": [
            {
                "type": "function",
                "function": {
                    "name": "get_weather",
                    "description": "Get the current weather",
                    "parameters": weather,
                },
            },
            {"type": "function", "function": {"name": "get_time"}},
        ],
        "tool_choice": "required",
        "parallel_tool_calls": False,
    }

    completion = await adapter.chat(MODEL, request, OPTIONS)

    assert upstream.last == {
        "model": "claude-sonnet-4-5",
        "system": [{"type": "text", "text": "You are a weather bot."}],
        "messages": [
            {"role": "user", "content": [{"type": "text", "text": "Weather in Paris and Berlin?"}]},
            {
                "role": "assistant",
                "content": [
                    {"type": "text", "text": "Checking both."},
                    {
                        "type": "tool_use",
                        "id": "toolu_01",
                        "name": "get_weather",
                        "input": {"location": "Paris"},
                    },
                    {
                        "type": "tool_use",
                        "id": "toolu_02",
                        "name": "get_weather",
                        "input": {"location": "Berlin"},
                    },
                ],
            },
            {  # both tool results and the two user messages: one user turn, tool results first
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": "toolu_01", "content": "18 C, sunny"},
                    {
                        "type": "tool_result",
                        "tool_use_id": "toolu_02",
                        "content": [{"type": "text", "text": "12 C, rain"}],
                    },
                    {"type": "text", "text": "And San Francisco?"},
                    {"type": "text", "text": "In Celsius."},
                ],
            },
        ],
        "max_tokens": DEFAULT_MAX_TOKENS,
        "tools": [
            {"name": "get_weather", "description": "Get the current weather", "input_schema": weather},
            {"name": "get_time", "input_schema": {"type": "object", "properties": {}}},
        ],
        "tool_choice": {"type": "any", "disable_parallel_tool_use": True},
    }
    body = orjson.loads(completion.body)
    [choice] = body["choices"]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"] == {
        "role": "assistant",
        "content": "I'll check the current weather in San Francisco for you.",
        "refusal": None,
        "tool_calls": [
            {
                "id": "toolu_01A09q90qw90lq917835lq9",
                "type": "function",
                "function": {
                    "name": "get_weather",
                    "arguments": '{"location":"San Francisco, CA","unit":"celsius"}',
                },
            }
        ],
    }
    assert json.loads(choice["message"]["tool_calls"][0]["function"]["arguments"]) == {
        "location": "San Francisco, CA",
        "unit": "celsius",
    }
    assert body["usage"]["prompt_tokens"] == 384
    assert body["usage"]["completion_tokens"] == 58


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        ("auto", {"type": "auto"}),
        ("none", {"type": "none"}),
        ({"type": "function", "function": {"name": "get_time"}}, {"type": "tool", "name": "get_time"}),
    ],
)
async def test_tool_choice(adapter: AnthropicAdapter, upstream: Upstream, choice: Any, expected: Any) -> None:
    upstream.reply_json("message_text.json")
    tools = [{"type": "function", "function": {"name": "get_time", "parameters": {"type": "object"}}}]

    await adapter.chat(MODEL, {**user("Time?"), "tools": tools, "tool_choice": choice}, OPTIONS)

    assert upstream.last["tool_choice"] == expected


async def test_sampling_parameters_and_json_mode(adapter: AnthropicAdapter, upstream: Upstream) -> None:
    upstream.reply_json("message_text.json")
    request = {
        **user("List three colours."),
        "max_tokens": 100,
        "max_completion_tokens": 300,  # the newer name wins
        "temperature": 0.2,
        "top_p": 0.9,
        "stop": "END",
        "user": "user-42",
        "response_format": {"type": "json_object"},
        "seed": 7,  # soft hints Anthropic lacks are dropped
        "presence_penalty": 0.5,
        "n": 1,
    }

    await adapter.chat(MODEL, request, OPTIONS)

    assert upstream.last == {
        "model": "claude-sonnet-4-5",
        "messages": [{"role": "user", "content": [{"type": "text", "text": "List three colours."}]}],
        "max_tokens": 300,
        "system": [{"type": "text", "text": JSON_ONLY}],
        "temperature": 0.2,
        "top_p": 0.9,
        "stop_sequences": ["END"],
        "metadata": {"user_id": "user-42"},
    }


async def test_images_and_pdf(adapter: AnthropicAdapter, upstream: Upstream) -> None:
    upstream.reply_json("message_text.json")
    content = [
        {"type": "text", "text": "Compare these."},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo=", "detail": "high"}},
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg"}},
        {"type": "file", "file": {"filename": "a.pdf", "file_data": "data:application/pdf;base64,JVBERi0x"}},
    ]

    await adapter.chat(
        MODEL, {"model": MODEL.upstream, "messages": [{"role": "user", "content": content}]}, OPTIONS
    )

    assert upstream.last["messages"] == [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "Compare these."},
                {
                    "type": "image",
                    "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="},
                },
                {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.jpg"}},
                {
                    "type": "document",
                    "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBERi0x"},
                },
            ],
        }
    ]


@pytest.mark.parametrize(
    ("change", "param"),
    [
        ({"n": 2}, "n"),
        ({"logprobs": True}, "logprobs"),
        ({"top_logprobs": 3}, "top_logprobs"),
        ({"temperature": 1.5}, "temperature"),
        ({"temperature": -0.1}, "temperature"),
        ({"max_tokens": 0}, "max_tokens"),
        ({"modalities": ["text", "audio"]}, "modalities"),
        ({"response_format": {"type": "grammar"}}, "response_format"),
        ({"tools": [{"type": "custom", "custom": {"name": "x"}}]}, "tools[0]"),
        (
            {"tools": [{"type": "function", "function": {"name": "f"}}], "tool_choice": "sometimes"},
            "tool_choice",
        ),
        (
            {
                "messages": [
                    {"role": "user", "content": [{"type": "input_audio", "input_audio": {"data": "AA"}}]}
                ]
            },
            "messages[0].content[0].type",
        ),
        (
            {
                "messages": [
                    {
                        "role": "user",
                        "content": [{"type": "image_url", "image_url": {"url": "file:///etc/x"}}],
                    }
                ]
            },
            "messages[0].content[0].image_url",
        ),
        (
            {
                "messages": [
                    {"role": "user", "content": "hi"},
                    {
                        "role": "assistant",
                        "tool_calls": [
                            {"id": "t1", "type": "function", "function": {"name": "f", "arguments": "{oops"}}
                        ],
                    },
                ]
            },
            "messages[1].tool_calls[0].function.arguments",
        ),
        ({"messages": [{"role": "function", "name": "f", "content": "x"}]}, "messages[0].role"),
        ({"messages": [{"role": "tool", "content": "x"}]}, "messages[0].tool_call_id"),
        ({"messages": [{"role": "system", "content": "only a system prompt"}]}, "messages"),
    ],
)
async def test_refused_before_any_call(
    adapter: AnthropicAdapter, upstream: Upstream, change: dict[str, Any], param: str
) -> None:
    with pytest.raises(InvalidRequest) as caught:
        await adapter.chat(MODEL, {**user("hi"), **change}, OPTIONS)

    assert caught.value.param == param
    assert upstream.received == []


@pytest.mark.parametrize(
    ("stop_reason", "finish_reason"),
    [
        ("stop_sequence", "stop"),
        ("max_tokens", "length"),
        ("refusal", "content_filter"),
        ("pause_turn", "stop"),
    ],
)
async def test_stop_reasons(
    adapter: AnthropicAdapter, upstream: Upstream, stop_reason: str, finish_reason: str
) -> None:
    message = orjson.loads((DATA / "message_text.json").read_bytes())
    upstream.replies.append(Reply(body=orjson.dumps({**message, "stop_reason": stop_reason})))

    completion = await adapter.chat(MODEL, user("hi"), OPTIONS)

    assert orjson.loads(completion.body)["choices"][0]["finish_reason"] == finish_reason


async def test_unreadable_answer_is_a_provider_error(adapter: AnthropicAdapter, upstream: Upstream) -> None:
    upstream.replies.append(Reply(body=b"<html>gateway hiccup</html>"))

    with pytest.raises(ProviderError, match="unexpected body"):
        await adapter.chat(MODEL, user("hi"), OPTIONS)


# -- errors -------------------------------------------------------------------------------------


async def test_overloaded_529_is_retryable(adapter: AnthropicAdapter, upstream: Upstream) -> None:
    upstream.reply_json("error_overloaded.json", status=529)

    with pytest.raises(ProviderHTTPError) as caught:
        await adapter.chat(MODEL, user("hi"), OPTIONS)

    assert caught.value.status == 529
    assert caught.value.retryable
    assert "Overloaded" in caught.value.message
    assert (caught.value.provider, caught.value.model) == ("anthropic", "anthropic/claude-sonnet-4-5")


async def test_rate_limit_429_carries_retry_after(adapter: AnthropicAdapter, upstream: Upstream) -> None:
    upstream.reply_json("error_rate_limit.json", status=429, headers={"retry-after": "30"})

    with pytest.raises(ProviderHTTPError) as caught:
        await adapter.chat(MODEL, user("hi"), OPTIONS)

    assert caught.value.status == 429
    assert caught.value.retryable
    assert caught.value.retry_after == 30.0
    assert "exceed the rate limit" in caught.value.message


async def test_invalid_request_400_is_not_retryable(adapter: AnthropicAdapter, upstream: Upstream) -> None:
    upstream.reply_json("error_invalid_request.json", status=400)

    with pytest.raises(ProviderHTTPError) as caught:
        await adapter.chat_stream(MODEL, user("hi"), OPTIONS)

    assert caught.value.status == 400
    assert not caught.value.retryable
    assert "max_tokens: 100000 > 64000" in caught.value.message
    assert KEY not in caught.value.message


async def test_no_response_head_in_time(adapter: AnthropicAdapter, upstream: Upstream) -> None:
    upstream.replies.append(Reply(hold_head=True))

    with pytest.raises(ProviderTimeout):
        await adapter.chat(MODEL, user("hi"), CallOptions(timeout=5.0, first_byte_timeout=0.2))


async def test_unreachable_upstream() -> None:
    with socket.socket() as sock:  # a port that was just free: nothing listens there
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    settings = ProviderSettings(api_key=KEY, base_url=f"http://127.0.0.1:{port}/v1")
    adapter = AnthropicAdapter(VENDOR, settings, load_settings())
    client = HTTPClient()
    await adapter.start(client)
    with pytest.raises(ProviderUnavailable):
        await adapter.chat(MODEL, user("hi"), OPTIONS)
    await client.close()


# -- streaming ----------------------------------------------------------------------------------


async def test_text_stream(adapter: AnthropicAdapter, upstream: Upstream) -> None:
    upstream.reply_sse("stream_text.sse")

    stream = await adapter.chat_stream(MODEL, user("Hello"), OPTIONS)
    chunks = await collect(stream)

    assert upstream.last["stream"] is True
    assert {c["id"] for c in chunks} == {"chatcmpl-msg_1nZdL29xx5MUA1yADyHTEsnR8uuvGzszyY"}
    assert {c["model"] for c in chunks} == {"anthropic/claude-sonnet-4-5"}
    assert {c["object"] for c in chunks} == {"chat.completion.chunk"}
    assert [c["choices"] for c in chunks] == [
        [
            {
                "index": 0,
                "delta": {"role": "assistant", "content": ""},
                "logprobs": None,
                "finish_reason": None,
            }
        ],
        [{"index": 0, "delta": {"content": "Hello"}, "logprobs": None, "finish_reason": None}],
        [{"index": 0, "delta": {"content": "!"}, "logprobs": None, "finish_reason": None}],
        [{"index": 0, "delta": {}, "logprobs": None, "finish_reason": "stop"}],
        [],
    ]
    assert chunks[-1]["usage"] == {
        "prompt_tokens": 25,
        "completion_tokens": 15,
        "total_tokens": 40,
        "prompt_tokens_details": {"cached_tokens": 0},
    }
    assert (stream.usage.prompt_tokens, stream.usage.completion_tokens) == (25, 15)


async def test_stream_without_usage_chunk_still_counts(adapter: AnthropicAdapter, upstream: Upstream) -> None:
    upstream.reply_sse("stream_text.sse")

    stream = await adapter.chat_stream(MODEL, user("Hello"), CallOptions(include_usage=False))
    chunks = await collect(stream)

    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"
    assert all("usage" not in c for c in chunks)
    assert stream.usage.total_tokens == 40


async def test_tool_use_stream(adapter: AnthropicAdapter, upstream: Upstream) -> None:
    upstream.reply_sse("stream_tool_use.sse")

    stream = await adapter.chat_stream(MODEL, user("Weather in SF?"), OPTIONS)
    chunks = await collect(stream)

    deltas = [c["choices"][0]["delta"] for c in chunks if c["choices"]]
    assert deltas[0] == {"role": "assistant", "content": ""}
    text = "".join(d.get("content", "") for d in deltas)
    assert text == "Okay, let's check the weather for San Francisco, CA:"
    calls = [d["tool_calls"][0] for d in deltas if "tool_calls" in d]
    # the tool is Anthropic's content block 1 but OpenAI's first tool call: index 0
    assert calls[0] == {
        "index": 0,
        "id": "toolu_01T1x1fJ34qAmk2tNTrN7Up6",
        "type": "function",
        "function": {"name": "get_weather", "arguments": ""},
    }
    assert all(set(c) == {"index", "function"} and c["index"] == 0 for c in calls[1:])
    arguments = "".join(c["function"]["arguments"] for c in calls)
    assert json.loads(arguments) == {"location": "San Francisco, CA", "unit": "fahrenheit"}
    assert len(calls) == 1 + 8  # the empty first fragment is not forwarded
    assert chunks[-2]["choices"][0] == {
        "index": 0,
        "delta": {},
        "logprobs": None,
        "finish_reason": "tool_calls",
    }
    assert chunks[-1]["usage"]["total_tokens"] == 472 + 89


def sse(*events: dict[str, Any]) -> bytes:
    return b"".join(b"event: %s\ndata: %s\n\n" % (e["type"].encode(), orjson.dumps(e)) for e in events)


START = {
    "type": "message_start",
    "message": {
        "id": "msg_01Parallel",
        "type": "message",
        "role": "assistant",
        "content": [],
        "model": "claude-sonnet-4-5-20250929",
        "stop_reason": None,
        "stop_sequence": None,
        "usage": {
            "input_tokens": 50,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 200,
            "output_tokens": 1,
        },
    },
}


def tool_block(index: int, tool_id: str, name: str, *fragments: str) -> list[dict[str, Any]]:
    block = {"type": "tool_use", "id": tool_id, "name": name, "input": {}}
    return [
        {"type": "content_block_start", "index": index, "content_block": block},
        *(
            {
                "type": "content_block_delta",
                "index": index,
                "delta": {"type": "input_json_delta", "partial_json": f},
            }
            for f in fragments
        ),
        {"type": "content_block_stop", "index": index},
    ]


async def test_parallel_tool_calls_get_their_own_index(adapter: AnthropicAdapter, upstream: Upstream) -> None:
    upstream.reply_sse(
        sse(
            START,
            *tool_block(0, "toolu_A", "get_weather", '{"location": ', '"Paris"}'),
            *tool_block(1, "toolu_B", "get_time", '{"tz": "CET"}'),
            {
                "type": "message_delta",
                "delta": {"stop_reason": "tool_use", "stop_sequence": None},
                "usage": {"output_tokens": 40},
            },
            {"type": "message_stop"},
        )
    )

    stream = await adapter.chat_stream(MODEL, user("Paris?"), OPTIONS)
    chunks = await collect(stream)

    calls = [
        c["choices"][0]["delta"]["tool_calls"][0]
        for c in chunks
        if c["choices"] and "tool_calls" in c["choices"][0]["delta"]
    ]
    assert [
        (c["index"], c.get("id"), c["function"].get("name"), c["function"]["arguments"]) for c in calls
    ] == [
        (0, "toolu_A", "get_weather", ""),
        (0, None, None, '{"location": '),
        (0, None, None, '"Paris"}'),
        (1, "toolu_B", "get_time", ""),
        (1, None, None, '{"tz": "CET"}'),
    ]
    assert chunks[-1]["usage"]["prompt_tokens"] == 250
    assert chunks[-1]["usage"]["prompt_tokens_details"] == {"cached_tokens": 200}


async def test_error_event_mid_stream(adapter: AnthropicAdapter, upstream: Upstream) -> None:
    text = {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}
    hello = {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hel"}}
    error = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
    upstream.reply_sse(sse(START, text, {"type": "ping"}, hello, error))

    stream = await adapter.chat_stream(MODEL, user("hi"), OPTIONS)
    seen = [orjson.loads((await stream.__anext__())[6:])["choices"][0]["delta"] for _ in range(2)]
    with pytest.raises(ProviderHTTPError) as caught:
        await stream.__anext__()

    assert seen == [{"role": "assistant", "content": ""}, {"content": "Hel"}]
    assert caught.value.status == 529
    assert caught.value.retryable
    assert "Overloaded" in caught.value.message
    with pytest.raises(StopAsyncIteration):
        await stream.__anext__()


async def test_stream_cut_before_it_finished(adapter: AnthropicAdapter, upstream: Upstream) -> None:
    hello = {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hel"}}
    upstream.reply_sse(sse(START, hello))

    stream = await adapter.chat_stream(MODEL, user("hi"), OPTIONS)
    with pytest.raises(ProviderUnavailable):
        await collect(stream)


async def test_stream_ending_after_stop_reason_finishes(
    adapter: AnthropicAdapter, upstream: Upstream
) -> None:
    delta = {
        "type": "message_delta",
        "delta": {"stop_reason": "max_tokens", "stop_sequence": None},
        "usage": {"output_tokens": 9},
    }
    upstream.reply_sse(sse(START, delta))  # no message_stop

    chunks = await collect(await adapter.chat_stream(MODEL, user("hi"), OPTIONS))

    assert chunks[-2]["choices"][0]["finish_reason"] == "length"
    assert chunks[-1]["usage"]["completion_tokens"] == 9


async def test_stalled_stream_times_out(adapter: AnthropicAdapter, upstream: Upstream) -> None:
    body = sse(START, {"type": "ping"})
    upstream.reply_sse(body + b"event: ping\n", hold_after=len(body))

    stream = await adapter.chat_stream(MODEL, user("hi"), CallOptions(timeout=0.3))
    assert orjson.loads((await stream.__anext__())[6:])["choices"][0]["delta"]["role"] == "assistant"
    with pytest.raises(ProviderTimeout):
        await stream.__anext__()


async def test_aclose_stops_the_stream(adapter: AnthropicAdapter, upstream: Upstream) -> None:
    body = sse(START)
    upstream.reply_sse(body + b"event: ping\n", hold_after=len(body))

    stream = await adapter.chat_stream(MODEL, user("hi"), OPTIONS)
    await stream.__anext__()
    await stream.aclose()

    with pytest.raises(StopAsyncIteration):
        await stream.__anext__()


# -- the official OpenAI SDK accepts what we produce -------------------------------------------


@pytest.mark.parametrize("recorded", ["message_text.json", "message_tool_use.json"])
async def test_openai_sdk_accepts_completions(
    adapter: AnthropicAdapter, upstream: Upstream, recorded: str
) -> None:
    upstream.reply_json(recorded)

    completion = await adapter.chat(MODEL, user("hi"), OPTIONS)

    parsed = ChatCompletion.model_validate_json(completion.body)
    assert parsed.choices[0].message.role == "assistant"
    assert parsed.usage is not None
    assert parsed.usage.total_tokens == completion.usage.total_tokens


@pytest.mark.parametrize("recorded", ["stream_text.sse", "stream_tool_use.sse"])
async def test_openai_sdk_accepts_chunks(
    adapter: AnthropicAdapter, upstream: Upstream, recorded: str
) -> None:
    upstream.reply_sse(recorded)

    stream = await adapter.chat_stream(MODEL, user("hi"), OPTIONS)
    parsed = [ChatCompletionChunk.model_validate_json(event[6:]) async for event in stream]

    assert parsed[0].choices[0].delta.role == "assistant"
    assert parsed[-1].usage is not None
    assert parsed[-2].choices[0].finish_reason in ("stop", "tool_calls")
