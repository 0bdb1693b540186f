"""What gateway calls return: ``Result`` (the wire body, for the HTTP edge) and the typed results of
``Gateway.complete`` and ``Gateway.embed_texts`` (for code inside the process).

The HTTP edge passes the upstream's OpenAI bytes through untouched; a caller in the process (an MCP
tool, a BI question, a summariser) wants the answer, not the wire format. These objects are that
answer, with what it cost and how it was served; the body is parsed once, here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from sophia.errors import ProviderError
from sophia.providers.base import ModelInfo, Usage


@dataclass(slots=True)
class Result:
    """A finished call: the client body (OpenAI JSON bytes) and what it cost."""

    body: bytes
    model: ModelInfo
    usage: Usage
    cost: float
    attempts: int
    route: str
    request_id: str
    cache: str = "miss"  # "exact" | "semantic" on a hit (then cost is 0 and saved_usd what it saved)
    saved_usd: float = 0.0
    trace_id: str | None = None  # the call's trace (its spans, when telemetry is on)


#: a chat message as the typed API takes it: {"role": "user", "content": "…"} (OpenAI's form)
Message = dict[str, Any]


def _served(result: Result) -> dict[str, Any]:
    return {
        "model": result.model.id,
        "provider": result.model.provider,
        "cost_usd": result.cost,
        "cache": result.cache,
        "saved_usd": result.saved_usd,
        "route": result.route,
        "request_id": result.request_id,
        "prompt_tokens": result.usage.prompt_tokens,
        "completion_tokens": result.usage.completion_tokens,
    }


def _body(result: Result) -> dict[str, Any]:
    try:
        data = orjson.loads(result.body)
    except orjson.JSONDecodeError:
        data = None
    if not isinstance(data, dict):
        raise ProviderError(
            f"{result.model.id} answered with a body that is not a JSON object",
            provider=result.model.provider,
            model=result.model.id,
        )
    return data


@dataclass(frozen=True, slots=True)
class ChatAnswer:
    """A chat completion: the text (and tool calls), then how it was served and what it cost."""

    text: str
    finish_reason: str | None
    tool_calls: list[dict[str, Any]] | None
    requested: str
    model: str
    provider: str
    cost_usd: float
    cache: str  # "miss", "exact" or "semantic"
    saved_usd: float
    route: str
    request_id: str
    prompt_tokens: int
    completion_tokens: int

    @classmethod
    def of(cls, result: Result, requested: str) -> ChatAnswer:
        choices = _body(result).get("choices") or [{}]
        choice: dict[str, Any] = choices[0] if isinstance(choices[0], dict) else {}
        found = choice.get("message")
        message: dict[str, Any] = found if isinstance(found, dict) else {}
        content = message.get("content")
        return cls(
            text=content if isinstance(content, str) else "",
            finish_reason=choice.get("finish_reason"),
            tool_calls=message.get("tool_calls") or None,
            requested=requested,
            **_served(result),
        )


@dataclass(frozen=True, slots=True)
class Embeddings:
    """One vector per input text, in order, and what they cost."""

    vectors: list[list[float]]
    requested: str
    model: str
    provider: str
    cost_usd: float
    cache: str
    saved_usd: float
    route: str
    request_id: str
    prompt_tokens: int
    completion_tokens: int

    @property
    def dimensions(self) -> int:
        return len(self.vectors[0]) if self.vectors else 0

    @classmethod
    def of(cls, result: Result, requested: str) -> Embeddings:
        items = _body(result).get("data") or []
        ordered = sorted(
            (item for item in items if isinstance(item, dict)), key=lambda item: item.get("index", 0)
        )
        return cls(
            vectors=[list(item.get("embedding") or ()) for item in ordered],
            requested=requested,
            **_served(result),
        )
