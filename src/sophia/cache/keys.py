"""Cache keys that carry context: an answer is only reused where it was produced for the same setting.

The **namespace** of a request is a digest of everything, besides the user's words, that shapes the
answer: the model or alias asked for, the system (and developer) prompts, every other body
parameter (tools, tool_choice, response_format, max_tokens, stop, seed, …; unknown ones too, so a new
OpenAI parameter can never leak an answer across settings), the temperature / top_p *band*, the
tenant (unless sharing is configured), the data-source tags, and the number of user turns.
Semantic search only ever looks inside one namespace.

The **exact key** adds the whole conversation, normalised: message keys sorted, text trimmed and
CR/LF unified. Whitespace inside a message is kept (it matters in code).

Sampling parameters go in by band, not by value: 0.2 and 0.25 give the same kind of answer, 0 and 1
do not. Above ``max_temperature`` the caller asked for variety, so only exact reuse applies.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import orjson

from sophia.cache.text import UserText, content_text, user_text

#: body fields that are not part of the namespace (the conversation, transport and bookkeeping)
_NOT_CONTEXT = frozenset(
    {"messages", "model", "stream", "stream_options", "metadata", "user", "temperature", "top_p"}
)
_SYSTEM_ROLES = ("system", "developer")
#: upper bounds of the temperature bands
_TEMPERATURE_BANDS = ((0.0, "t0"), (0.3, "t0.3"), (0.7, "t0.7"), (1.0, "t1"), (2.0, "t2"))


@dataclass(frozen=True, slots=True)
class RequestKeys:
    namespace: str
    exact: str
    text: UserText
    semantic_ok: bool


def sampling_band(body: dict[str, Any]) -> str:
    """The band of the request's temperature and top_p (``default`` when neither is set)."""
    temperature, top_p = body.get("temperature"), body.get("top_p")
    parts = []
    if isinstance(temperature, int | float):
        parts.append(next(name for bound, name in _TEMPERATURE_BANDS if temperature <= bound or bound == 2.0))
    if isinstance(top_p, int | float) and top_p < 0.99:
        parts.append(f"p{round(top_p, 1):g}")
    return "/".join(parts) or "default"


def _digest(value: Any) -> str:
    return hashlib.blake2b(orjson.dumps(value, option=orjson.OPT_SORT_KEYS), digest_size=16).hexdigest()


def _normalised_message(message: Any) -> Any:
    if not isinstance(message, dict):
        return message
    out = dict(message)
    content = out.get("content")
    if isinstance(content, str):
        out["content"] = content.replace("\r\n", "\n").strip()
    return out


def request_keys(
    body: dict[str, Any],
    *,
    model: str,
    tenant: str | None,
    tags: Iterable[str] = (),
    max_temperature: float = 0.7,
) -> RequestKeys:
    """The namespace, exact key and semantic text of a chat-completions body.

    ``tenant`` None means the entry is shared by every tenant (``share_across_tenants``).
    """
    messages = body.get("messages")
    listed = messages if isinstance(messages, list) else []
    system = [
        content_text(m.get("content"))
        for m in listed
        if isinstance(m, dict) and m.get("role") in _SYSTEM_ROLES
    ]
    text = user_text(messages)
    params = {k: v for k, v in body.items() if k not in _NOT_CONTEXT}
    namespace = _digest(
        {
            "model": model,
            "system": [s.strip() if s is not None else None for s in system],
            "params": params,
            "band": sampling_band(body),
            "tenant": "*" if tenant is None else tenant,
            "tags": sorted(set(tags)),
            "turns": text.turns,
        }
    )
    exact = _digest({"ns": namespace, "messages": [_normalised_message(m) for m in listed]})
    temperature = body.get("temperature")
    cool = not isinstance(temperature, int | float) or temperature <= max_temperature
    return RequestKeys(namespace, exact, text, text.eligible and cool and body.get("n", 1) == 1)
