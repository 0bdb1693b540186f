"""Turning streams into answers and answers into streams, for the response cache.

``StreamCollector`` rebuilds the ``chat.completion`` that a streamed answer amounts to (so a
streamed miss can be cached); ``completion_events`` replays a cached ``chat.completion`` as the
SSE events a streaming client expects (so a cached hit can be streamed).
"""

from __future__ import annotations

from typing import Any

import orjson

from sophia.providers.adapters._http import event_data


class StreamCollector:
    """Feed it the SSE events of a streamed chat completion; ``completion()`` is the whole answer."""

    __slots__ = ("_content", "_created", "_finish", "_id", "_model", "_ok", "_role", "_tools", "_usage")

    def __init__(self) -> None:
        self._content: list[str] = []
        self._tools: dict[int, dict[str, Any]] = {}
        self._finish: str | None = None
        self._usage: dict[str, Any] | None = None
        self._id = self._model = ""
        self._created = 0
        self._role = "assistant"
        self._ok = True

    def feed(self, event: bytes) -> None:
        data = event_data(event.rstrip(b"\n"))
        if not data or data == b"[DONE]" or not self._ok:
            return
        try:
            chunk = orjson.loads(data)
        except orjson.JSONDecodeError:
            self._ok = False
            return
        if not isinstance(chunk, dict) or "error" in chunk:
            self._ok = False
            return
        self._id = chunk.get("id") or self._id
        self._model = chunk.get("model") or self._model
        self._created = chunk.get("created") or self._created
        if isinstance(chunk.get("usage"), dict):
            self._usage = chunk["usage"]
        for choice in chunk.get("choices") or ():
            if choice.get("index", 0) != 0:
                self._ok = False  # n > 1: not a single answer to cache
                return
            delta = choice.get("delta") or {}
            self._role = delta.get("role") or self._role
            if delta.get("content"):
                self._content.append(delta["content"])
            for call in delta.get("tool_calls") or ():
                self._merge_tool_call(call)
            if choice.get("finish_reason"):
                self._finish = choice["finish_reason"]

    def _merge_tool_call(self, call: dict[str, Any]) -> None:
        slot = self._tools.setdefault(
            call.get("index", 0), {"type": "function", "function": {"arguments": ""}}
        )
        if call.get("id"):
            slot["id"] = call["id"]
        function = call.get("function") or {}
        if function.get("name"):
            slot["function"]["name"] = function["name"]
        slot["function"]["arguments"] += function.get("arguments") or ""

    def completion(self) -> bytes | None:
        """The equivalent ``chat.completion`` body, or None if the stream was not one whole answer."""
        if not self._ok or self._finish is None:
            return None
        message: dict[str, Any] = {
            "role": self._role,
            "content": "".join(self._content) if self._content else None,
        }
        if self._tools:
            message["tool_calls"] = [self._tools[i] for i in sorted(self._tools)]
        body: dict[str, Any] = {
            "id": self._id,
            "object": "chat.completion",
            "created": self._created,
            "model": self._model,
            "choices": [{"index": 0, "message": message, "finish_reason": self._finish}],
        }
        if self._usage is not None:
            body["usage"] = self._usage
        return orjson.dumps(body)


def completion_events(body: bytes, include_usage: bool, piece: int = 64) -> list[bytes]:
    """SSE events (without ``[DONE]``) that replay a ``chat.completion`` body as a stream."""
    data = orjson.loads(body)
    choice = data["choices"][0]
    message = choice.get("message") or {}
    head = {
        "id": data.get("id", ""),
        "object": "chat.completion.chunk",
        "created": data.get("created", 0),
        "model": data.get("model", ""),
    }

    def event(delta: dict[str, Any], finish: str | None = None) -> bytes:
        chunk = {**head, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
        return b"data: " + orjson.dumps(chunk) + b"\n\n"

    events = [event({"role": message.get("role", "assistant"), "content": ""})]
    text = message.get("content") or ""
    events.extend(event({"content": text[i : i + piece]}) for i in range(0, len(text), piece))
    for index, call in enumerate(message.get("tool_calls") or ()):
        events.append(event({"tool_calls": [{"index": index, **call}]}))
    events.append(event({}, choice.get("finish_reason") or "stop"))
    if include_usage and data.get("usage"):
        events.append(b"data: " + orjson.dumps({**head, "choices": [], "usage": data["usage"]}) + b"\n\n")
    return events
