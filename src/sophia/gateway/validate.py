"""Validation of OpenAI request bodies at the edge: cheap checks with messages that name the parameter.

Hand-written rather than a pydantic model on purpose: this runs on every request of the hot path.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sophia.errors import InvalidRequest

ROLES = frozenset({"system", "developer", "user", "assistant", "tool", "function"})
MAX_METADATA_PAIRS = 16
#: body fields Sophia consumes and does not forward upstream
SOPHIA_FIELDS = ("metadata",)

_RANGES: dict[str, tuple[float, float]] = {
    "temperature": (0.0, 2.0),
    "top_p": (0.0, 1.0),
    "presence_penalty": (-2.0, 2.0),
    "frequency_penalty": (-2.0, 2.0),
}
#: integer parameters and their largest values (n and top_logprobs: OpenAI's bounds; the others fit
#: every provider's 32- or 64-bit fields)
_POSITIVE_INTS = {
    "max_tokens": 2**31 - 1,
    "max_completion_tokens": 2**31 - 1,
    "n": 128,
    "top_logprobs": 20,
    "seed": 2**63 - 1,
}


@dataclass(slots=True)
class ChatParams:
    model: str
    stream: bool
    include_usage: bool
    task_type: str | None
    metadata: dict[str, str] | None
    #: work derived from this body once and reused while the same body comes back (cache keys)
    memo: dict[Any, Any] = field(default_factory=dict, compare=False, repr=False)


def _fail(message: str, param: str | None) -> InvalidRequest:
    return InvalidRequest(message, param=param)


def _model(body: dict[str, Any]) -> str:
    model = body.get("model")
    if not isinstance(model, str) or not model.strip():
        raise _fail("'model' is required and must be a non-empty string", "model")
    return model


def _metadata(body: dict[str, Any]) -> tuple[dict[str, str] | None, str | None]:
    meta = body.get("metadata")
    if meta is None:
        return None, None
    if not isinstance(meta, dict):
        raise _fail("'metadata' must be an object of string values", "metadata")
    if len(meta) > MAX_METADATA_PAIRS:
        raise _fail(f"'metadata' may hold at most {MAX_METADATA_PAIRS} pairs", "metadata")
    clean: dict[str, str] = {}
    for k, v in meta.items():
        if isinstance(v, (str, int, float, bool)):
            clean[str(k)] = str(v)
        elif isinstance(v, list) and all(isinstance(x, str) for x in v):
            clean[str(k)] = ",".join(v)
        else:
            raise _fail(f"'metadata.{k}' must be a string (or a list of strings)", f"metadata.{k}")
    task = clean.get("task_type")
    return clean, task


def _check_message(i: int, msg: Any) -> None:
    if not isinstance(msg, dict):
        raise _fail(f"'messages[{i}]' must be an object with 'role' and 'content'", f"messages[{i}]")
    role = msg.get("role")
    if not isinstance(role, str) or role not in ROLES:
        raise _fail(
            f"'messages[{i}].role' must be one of {', '.join(sorted(ROLES))}, not {role!r}",
            f"messages[{i}].role",
        )
    content = msg.get("content")
    if content is None:
        if role == "assistant" and (msg.get("tool_calls") or msg.get("function_call")):
            return
        raise _fail(f"'messages[{i}].content' is required", f"messages[{i}].content")
    if isinstance(content, list):
        for j, part in enumerate(content):
            if not isinstance(part, dict) or not isinstance(part.get("type"), str):
                raise _fail(
                    f"'messages[{i}].content[{j}]' must be a content part with a 'type'",
                    f"messages[{i}].content[{j}]",
                )
    elif not isinstance(content, str):
        raise _fail(f"'messages[{i}].content' must be a string or a list of parts", f"messages[{i}].content")
    if role == "tool" and not isinstance(msg.get("tool_call_id"), str):
        raise _fail(
            f"'messages[{i}].tool_call_id' is required for tool messages", f"messages[{i}].tool_call_id"
        )


def _check_numbers(body: dict[str, Any]) -> None:
    for name, (lo, hi) in _RANGES.items():
        value = body.get(name)
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, (int, float)) or not lo <= value <= hi
        ):
            raise _fail(f"'{name}' must be a number between {lo:g} and {hi:g}", name)
    for name, top in _POSITIVE_INTS.items():
        value = body.get(name)
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= top
        ):
            raise _fail(f"'{name}' must be an integer from 0 to {top}", name)
    if body.get("n") == 0 or body.get("max_tokens") == 0 or body.get("max_completion_tokens") == 0:
        which = next(k for k in ("n", "max_tokens", "max_completion_tokens") if body.get(k) == 0)
        raise _fail(f"'{which}' must be at least 1", which)


def chat_params(body: Any) -> ChatParams:
    """Validate a chat-completions body; returns what the gateway needs to know about it."""
    if not isinstance(body, dict):
        raise _fail("the request body must be a JSON object", None)
    model = _model(body)
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise _fail("'messages' is required and must be a non-empty array", "messages")
    for i, msg in enumerate(messages):
        _check_message(i, msg)
    stream = body.get("stream", False)
    if not isinstance(stream, bool):
        raise _fail("'stream' must be a boolean", "stream")
    stop = body.get("stop")
    if stop is not None and not (
        isinstance(stop, str)
        or (isinstance(stop, list) and len(stop) <= 4 and all(isinstance(s, str) for s in stop))
    ):
        raise _fail("'stop' must be a string or an array of at most 4 strings", "stop")
    _check_numbers(body)
    tools = body.get("tools")
    if tools is not None and (not isinstance(tools, list) or not all(isinstance(t, dict) for t in tools)):
        raise _fail("'tools' must be an array of tool objects", "tools")
    include_usage = True
    opts = body.get("stream_options")
    if opts is not None:
        if not isinstance(opts, dict):
            raise _fail("'stream_options' must be an object", "stream_options")
        if opts.get("include_usage") is False:
            include_usage = False
    metadata, task_type = _metadata(body)
    return ChatParams(model, stream, include_usage, task_type, metadata)


def embedding_params(body: Any) -> tuple[str, dict[str, str] | None, str | None]:
    """Validate an embeddings body; returns (model, metadata, task_type)."""
    if not isinstance(body, dict):
        raise _fail("the request body must be a JSON object", None)
    model = _model(body)
    value = body.get("input")
    ok = (isinstance(value, str) and value != "") or (
        isinstance(value, list)
        and value
        and (
            all(isinstance(x, str) for x in value)
            or all(isinstance(x, int) for x in value)
            or all(isinstance(x, list) and x and all(isinstance(t, int) for t in x) for x in value)
        )
    )
    if not ok:
        raise _fail("'input' must be a non-empty string or array of strings (or of token arrays)", "input")
    fmt = body.get("encoding_format")
    if fmt is not None and fmt not in ("float", "base64"):
        raise _fail("'encoding_format' must be 'float' or 'base64'", "encoding_format")
    metadata, task_type = _metadata(body)
    return model, metadata, task_type


def upstream_body(body: dict[str, Any]) -> dict[str, Any]:
    """The body to forward: Sophia's own fields removed (no copy when there are none)."""
    if any(f in body for f in SOPHIA_FIELDS):
        return {k: v for k, v in body.items() if k not in SOPHIA_FIELDS}
    return body
