"""Parsing an OpenAI chat request into what the local llama.cpp model can honour (or a clear refusal)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Literal

from sophia.errors import (
    InvalidRequest,
)
from sophia.providers.base import (
    JSON,
)

log = logging.getLogger(__name__)

DEFAULT_TEMPERATURE, DEFAULT_TOP_P = 0.2, 0.9
MAX_STOPS = 4
_ROLES = {"system": "system", "developer": "system", "user": "user", "assistant": "assistant"}
#: request fields the local model cannot honour when set to anything but their neutral value
_REFUSED = ("tools", "functions", "logprobs", "top_logprobs", "logit_bias", "audio", "prediction")

Finish = Literal["stop", "length"]


# -- request parsing ----------------------------------------------------------------------------


@dataclass(slots=True, frozen=True)
class ChatParams:
    """A validated chat request, in the terms the generation loop uses."""

    messages: list[dict[str, str]]
    max_tokens: int  # as asked, else ``local.default_max_tokens``
    temperature: float
    top_p: float
    stop: tuple[str, ...]
    seed: int | None
    frequency_penalty: float
    presence_penalty: float
    response_format: JSON | None  # {"type": "json_object"} or {"type": "json_schema", "schema": {...}}
    max_tokens_asked: bool = False  # set by the request: must fit as asked (else cut to what fits)


def parse_chat(request: JSON, default_max_tokens: int) -> ChatParams:
    """Validate an OpenAI chat-completions body; raise ``InvalidRequest`` naming the bad parameter."""
    for name in _REFUSED:
        if request.get(name) not in (None, False, [], {}) and not (
            name == "tools" and request.get("tool_choice") == "none"
        ):
            raise InvalidRequest(f"the local model does not support {name!r}", param=name)
    if request.get("n") not in (None, 1):
        raise InvalidRequest("the local model returns one choice: n must be 1", param="n")
    if request.get("modalities") not in (None, ["text"]):
        raise InvalidRequest("the local model only produces text", param="modalities")
    raw_max = request.get("max_completion_tokens")
    max_name = "max_completion_tokens"
    if raw_max is None:
        raw_max, max_name = request.get("max_tokens"), "max_tokens"
    return ChatParams(
        messages=_messages(request.get("messages")),
        max_tokens=default_max_tokens if raw_max is None else _int(raw_max, max_name, low=1),
        temperature=_number(request, "temperature", DEFAULT_TEMPERATURE, 0.0, 2.0),
        top_p=_number(request, "top_p", DEFAULT_TOP_P, 0.0, 1.0),
        stop=_stops(request.get("stop")),
        seed=None if request.get("seed") is None else _int(request["seed"], "seed"),
        frequency_penalty=_number(request, "frequency_penalty", 0.0, -2.0, 2.0),
        presence_penalty=_number(request, "presence_penalty", 0.0, -2.0, 2.0),
        response_format=_response_format(request.get("response_format")),
        max_tokens_asked=raw_max is not None,
    )


def _messages(value: Any) -> list[dict[str, str]]:
    if not isinstance(value, list) or not value:
        raise InvalidRequest("messages must be a non-empty list", param="messages")
    out = []
    for i, msg in enumerate(value):
        role = msg.get("role") if isinstance(msg, dict) else None
        if role not in _ROLES:
            raise InvalidRequest(
                f"messages[{i}].role {role!r} is not supported by the local model "
                "(system, developer, user, assistant)",
                param="messages",
            )
        if msg.get("tool_calls") or msg.get("function_call"):
            raise InvalidRequest(
                f"messages[{i}] carries tool calls: the local model has no tools", param="messages"
            )
        out.append({"role": _ROLES[role], "content": _text(msg.get("content"), i)})
    return out


def _text(content: Any, i: int) -> str:
    if isinstance(content, str):
        return content
    if content is None:
        return ""
    if isinstance(content, list):
        parts = []
        for part in content:
            if (
                not isinstance(part, dict)
                or part.get("type") != "text"
                or not isinstance(part.get("text"), str)
            ):
                kind = part.get("type") if isinstance(part, dict) else type(part).__name__
                raise InvalidRequest(
                    f"messages[{i}].content: the local model reads text parts only, not {kind!r}",
                    param="messages",
                )
            parts.append(part["text"])
        return "".join(parts)
    raise InvalidRequest(f"messages[{i}].content must be a string or a list of text parts", param="messages")


def _int(value: Any, name: str, low: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or (low is not None and value < low):
        bound = f" >= {low}" if low is not None else ""
        raise InvalidRequest(f"{name} must be an integer{bound}", param=name)
    return value


def _number(request: JSON, name: str, default: float, low: float, high: float) -> float:
    value = request.get(name)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        raise InvalidRequest(f"{name} must be a number from {low:g} to {high:g}", param=name)
    return float(value)


def _stops(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    stops = [value] if isinstance(value, str) else value
    if (
        not isinstance(stops, list)
        or len(stops) > MAX_STOPS
        or not all(isinstance(s, str) and s for s in stops)
    ):
        raise InvalidRequest(
            f"stop must be a string or a list of at most {MAX_STOPS} non-empty strings", param="stop"
        )
    return tuple(stops)


def _response_format(value: Any) -> JSON | None:
    if value is None:
        return None
    kind = value.get("type") if isinstance(value, dict) else None
    if kind == "text":
        return None
    if kind == "json_object":
        return {"type": "json_object"}
    if kind == "json_schema":
        spec = value.get("json_schema")
        schema = spec.get("schema") if isinstance(spec, dict) else None
        if not isinstance(schema, dict):
            raise InvalidRequest(
                "response_format.json_schema.schema must be an object", param="response_format"
            )
        return {"type": "json_schema", "schema": schema}
    raise InvalidRequest(
        "response_format.type must be text, json_object or json_schema", param="response_format"
    )
