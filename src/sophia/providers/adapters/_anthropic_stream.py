"""Anthropic Messages answers in OpenAI's format: stop reasons, usage, and the streamed events.

Anthropic streams ``message_start``, then per content block ``content_block_start`` /
``content_block_delta``… / ``content_block_stop``, then ``message_delta`` (stop reason, cumulative
usage) and ``message_stop``; ``ping`` may come anywhere and ``error`` ends a broken stream.
``AnthropicStream`` re-emits that as ``chat.completion.chunk`` events.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import orjson

from sophia.errors import ProviderError, ProviderUnavailable
from sophia.providers.adapters._http import SSEBuffer, event_data, read_chunk, upstream_error
from sophia.providers.base import JSON, ChunkStream, Usage

if TYPE_CHECKING:
    from sophia.httpclient import Response
    from sophia.providers.base import CallOptions, ModelInfo

#: Anthropic ``stop_reason`` -> OpenAI ``finish_reason`` (anything else -> "stop")
FINISH_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}

#: Anthropic ``error.type`` -> the HTTP status it stands for outside a stream
ERROR_STATUS = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "billing_error": 402,
    "permission_error": 403,
    "not_found_error": 404,
    "request_too_large": 413,
    "rate_limit_error": 429,
    "api_error": 500,
    "timeout_error": 504,
    "overloaded_error": 529,
}


def finish_reason(stop_reason: Any) -> str:
    return FINISH_REASONS.get(stop_reason, "stop") if isinstance(stop_reason, str) else "stop"


def _count(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def convert_usage(raw: Any) -> tuple[Usage, JSON]:
    """Sophia's usage and the OpenAI ``usage`` object from an Anthropic ``usage`` object.

    Anthropic's input total is ``input_tokens`` + cache writes + cache reads; the cache reads are
    also reported as OpenAI's ``prompt_tokens_details.cached_tokens``.
    """
    raw = raw if isinstance(raw, dict) else {}
    cached = _count(raw.get("cache_read_input_tokens"))
    prompt = _count(raw.get("input_tokens")) + _count(raw.get("cache_creation_input_tokens")) + cached
    usage = Usage(prompt, _count(raw.get("output_tokens")))
    return usage, {
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "total_tokens": usage.total_tokens,
        "prompt_tokens_details": {"cached_tokens": cached},
    }


class AnthropicStream(ChunkStream):
    """Upstream Anthropic SSE in, OpenAI ``chat.completion.chunk`` SSE out (no ``[DONE]``)."""

    __slots__ = (
        "_buffer",
        "_created",
        "_done",
        "_eof",
        "_events",
        "_id",
        "_options",
        "_out",
        "_provider",
        "_raw_usage",
        "_resp",
        "_stop_reason",
        "_tools",
        "model",
        "usage",
    )

    def __init__(
        self,
        resp: Response,
        model: ModelInfo,
        options: CallOptions,
        provider: str,
        created: int,
    ) -> None:
        self._resp = resp
        self.model = model
        self._options = options
        self._provider = provider
        self._created = created
        self._buffer = SSEBuffer()
        self._events: deque[bytes] = deque()
        self._out: deque[bytes] = deque()
        self._done = False
        self._eof = False
        self._id = "chatcmpl-"
        self._tools: dict[Any, int] = {}  # Anthropic content-block index -> OpenAI tool_calls index
        self._stop_reason: str | None = None
        self._raw_usage: JSON = {}
        self.usage = Usage()

    async def __anext__(self) -> bytes:
        while True:
            if self._out:
                return self._out.popleft()
            if self._done:
                raise StopAsyncIteration
            if not self._events and not self._eof:
                await self._fill()
                continue
            try:
                self._out.extend(self._translate(self._events.popleft()) if self._events else self._at_end())
            except ProviderError:
                await self.aclose()
                raise

    async def _fill(self) -> None:
        try:
            chunk = await read_chunk(self._resp, self._options.timeout, self._provider, self.model.id)
        except ProviderError:
            await self.aclose()
            raise
        if chunk:
            self._events.extend(self._buffer.feed(chunk))
            return
        self._resp.release()
        self._events.extend(self._buffer.flush())
        self._eof = True

    async def aclose(self) -> None:
        self._done = True
        self._events.clear()
        self._out.clear()
        self._resp.close()

    # -- event translation ---------------------------------------------------------------------

    def _translate(self, event: bytes) -> list[bytes]:
        data = event_data(event)
        if data is None:
            return []
        try:
            message = orjson.loads(data)
        except orjson.JSONDecodeError:
            raise ProviderError(
                f"{self._provider} sent an unreadable stream event for {self.model.id}",
                provider=self._provider,
                model=self.model.id,
            ) from None
        if not isinstance(message, dict):
            return []
        handler = _HANDLERS.get(str(message.get("type")))
        return handler(self, message) if handler is not None else []

    def _chunk(self, delta: JSON, finish: str | None = None) -> bytes:
        body = {
            "id": self._id,
            "object": "chat.completion.chunk",
            "created": self._created,
            "model": self.model.id,
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
        }
        return b"data: " + orjson.dumps(body) + b"\n\n"

    def _add_usage(self, raw: Any) -> None:
        if isinstance(raw, dict):
            self._raw_usage.update({k: v for k, v in raw.items() if v is not None})
            self.usage = convert_usage(self._raw_usage)[0]

    def _on_message_start(self, event: JSON) -> list[bytes]:
        message = event.get("message") or {}
        self._id = f"chatcmpl-{message.get('id', '')}"
        self._add_usage(message.get("usage"))
        return [self._chunk({"role": "assistant", "content": ""})]

    def _on_block_start(self, event: JSON) -> list[bytes]:
        block = event.get("content_block") or {}
        if block.get("type") == "tool_use":
            position = self._tools[event.get("index")] = len(self._tools)
            call = {"index": position, "id": block.get("id"), "type": "function"}
            call["function"] = {"name": block.get("name"), "arguments": ""}
            return [self._chunk({"tool_calls": [call]})]
        if block.get("type") == "text" and block.get("text"):
            return [self._chunk({"content": block["text"]})]
        return []  # thinking and server-tool blocks are not part of an OpenAI answer

    def _on_block_delta(self, event: JSON) -> list[bytes]:
        delta = event.get("delta") or {}
        kind = delta.get("type")
        if kind == "text_delta" and delta.get("text"):
            return [self._chunk({"content": delta["text"]})]
        position = self._tools.get(event.get("index"))
        if kind == "input_json_delta" and position is not None and delta.get("partial_json"):
            call = {"index": position, "function": {"arguments": delta["partial_json"]}}
            return [self._chunk({"tool_calls": [call]})]
        return []  # empty fragments, thinking_delta, signature_delta, citations_delta

    def _on_message_delta(self, event: JSON) -> list[bytes]:
        stop_reason = (event.get("delta") or {}).get("stop_reason")
        if stop_reason:
            self._stop_reason = stop_reason
        self._add_usage(event.get("usage"))
        return []

    def _on_message_stop(self, event: JSON) -> list[bytes]:
        self._done = True
        self._resp.release()  # nothing follows message_stop; an unread tail closes the connection
        out = [self._chunk({}, finish_reason(self._stop_reason))]
        if self._options.include_usage:
            body = {
                "id": self._id,
                "object": "chat.completion.chunk",
                "created": self._created,
                "model": self.model.id,
                "choices": [],
                "usage": convert_usage(self._raw_usage)[1],
            }
            out.append(b"data: " + orjson.dumps(body) + b"\n\n")
        return out

    def _on_error(self, event: JSON) -> list[bytes]:
        error = event.get("error")
        status = ERROR_STATUS.get(str(error.get("type")), 500) if isinstance(error, dict) else 500
        raise upstream_error(status, orjson.dumps(event), None, self._provider, self.model.id)

    def _at_end(self) -> list[bytes]:
        """The body ended without ``message_stop``: finish if the stop reason was seen, else fail."""
        if self._stop_reason is not None:
            return self._on_message_stop({})
        raise ProviderUnavailable(
            f"{self._provider} ended the stream of {self.model.id} before it finished",
            provider=self._provider,
            model=self.model.id,
        )


_HANDLERS: dict[str, Callable[[AnthropicStream, JSON], list[bytes]]] = {
    "message_start": AnthropicStream._on_message_start,
    "content_block_start": AnthropicStream._on_block_start,
    "content_block_delta": AnthropicStream._on_block_delta,
    "message_delta": AnthropicStream._on_message_delta,
    "message_stop": AnthropicStream._on_message_stop,
    "error": AnthropicStream._on_error,
}
