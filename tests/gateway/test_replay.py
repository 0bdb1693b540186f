"""Streams rebuilt into answers and answers replayed as streams (used by the response cache)."""

from __future__ import annotations

import orjson
from openai.types.chat import ChatCompletion, ChatCompletionChunk

from sophia.gateway.replay import StreamCollector, completion_events

ANSWER = {
    "id": "chatcmpl-1",
    "object": "chat.completion",
    "created": 1700000000,
    "model": "m",
    "choices": [
        {"index": 0, "message": {"role": "assistant", "content": "x" * 150}, "finish_reason": "stop"}
    ],
    "usage": {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7},
}


def test_a_completion_replays_as_valid_chunks_and_round_trips() -> None:
    events = completion_events(orjson.dumps(ANSWER), include_usage=True)
    chunks = [ChatCompletionChunk.model_validate_json(e[6:]) for e in events]  # the SDK accepts each
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "x" * 150
    assert chunks[-1].usage is not None and chunks[-1].usage.total_tokens == 7
    collector = StreamCollector()
    for e in events:
        collector.feed(e)
    rebuilt = collector.completion()
    assert rebuilt is not None
    assert orjson.loads(rebuilt) == {
        **ANSWER,
        "choices": [{**ANSWER["choices"][0], "message": {"role": "assistant", "content": "x" * 150}}],
    }
    ChatCompletion.model_validate_json(rebuilt)


def test_usage_chunk_only_when_asked() -> None:
    events = completion_events(orjson.dumps(ANSWER), include_usage=False)
    assert all(orjson.loads(e[6:])["choices"] for e in events)


def test_tool_call_deltas_are_merged() -> None:
    collector = StreamCollector()
    for delta in (
        {
            "role": "assistant",
            "tool_calls": [
                {"index": 0, "id": "call_1", "type": "function", "function": {"name": "f", "arguments": ""}}
            ],
        },
        {"tool_calls": [{"index": 0, "function": {"arguments": '{"a":'}}]},
        {"tool_calls": [{"index": 0, "function": {"arguments": " 1}"}}]},
    ):
        collector.feed(
            b"data: "
            + orjson.dumps({"id": "c", "model": "m", "created": 1, "choices": [{"index": 0, "delta": delta}]})
            + b"\n\n"
        )
    collector.feed(
        b'data: {"id": "c", "choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]}\n\n'
    )
    body = orjson.loads(collector.completion() or b"null")
    call = body["choices"][0]["message"]["tool_calls"][0]
    assert call == {"type": "function", "id": "call_1", "function": {"name": "f", "arguments": '{"a": 1}'}}


def test_incomplete_or_failed_streams_are_not_answers() -> None:
    collector = StreamCollector()
    collector.feed(b'data: {"choices": [{"index": 0, "delta": {"content": "half"}}]}\n\n')
    assert collector.completion() is None  # no finish_reason: cut short
    failed = StreamCollector()
    failed.feed(b'data: {"choices": [{"index": 0, "delta": {"content": "x"}, "finish_reason": "stop"}]}\n\n')
    failed.feed(b'data: {"error": {"message": "boom"}}\n\n')
    assert failed.completion() is None
