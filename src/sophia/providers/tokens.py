"""Fast token estimates for chat requests and streamed answers, where no tokenizer is at hand.

Used before a call (a budget's worst case, refusing a prompt no model in the chain can hold) and after
a stream that ended before its provider reported usage (a hang-up, a failure mid-stream), where the
ledger books the estimate marked as such. BPE tokenizers of the OpenAI, Llama and Claude families
average about four bytes of UTF-8 per token on English and code. Some tokens are much longer (runs of
spaces or punctuation: SmolLM2 has one of 81 bytes, cl100k ones of 128), so ``tokens_at_least`` counts
``LOWER_BOUND_BYTES`` bytes per token and one token per message: it never refuses a prompt that fits,
and still refuses floods (many messages, megabytes of text) before any model sees them. Where a
tokenizer is at hand (the local model) the count is exact.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import orjson

#: typical UTF-8 bytes per token (the estimate); and the most one token carries (the lower bound)
BYTES_PER_TOKEN = 4
LOWER_BOUND_BYTES = 128
#: tokens each message adds for its role and separators; an image part, at most
PER_MESSAGE = 4
PER_IMAGE = 1_105  # a high-detail 1024x1024 image on OpenAI's scale; providers charge less or similar
#: the completion assumed when a request sets no max_tokens and the model's context allows more
DEFAULT_OUTPUT_CAP = 4_096
#: the most choices (``n``) a request may ask for (OpenAI's own bound)
MAX_CHOICES = 128


def _bytes(text: str) -> int:
    return len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))


def text_tokens(text: str) -> int:
    """Estimated tokens of ``text``."""
    return -(-_bytes(text) // BYTES_PER_TOKEN)


def _part_bytes(value: Any) -> tuple[int, int]:
    """(bytes of text, images) in a message's content or tool calls."""
    if isinstance(value, str):
        return _bytes(value), 0
    if isinstance(value, list):
        size = images = 0
        for part in value:
            if isinstance(part, dict):
                kind = part.get("type")
                if kind in ("image_url", "image", "input_image"):
                    images += 1
                    continue
                text = part.get("text")
                if isinstance(text, str):
                    size += _bytes(text)
                    continue
            size += len(orjson.dumps(part, default=str))
        return size, images
    if value is None:
        return 0, 0
    return len(orjson.dumps(value, default=str)), 0


def prompt_size(body: dict[str, Any]) -> tuple[int, int, int]:
    """(bytes of text, messages, images) of a chat body's prompt: contents, tool calls and tool schemas."""
    size = images = count = 0
    messages = body.get("messages")
    for msg in messages if isinstance(messages, list) else ():
        if not isinstance(msg, dict):
            continue
        count += 1
        text, pics = _part_bytes(msg.get("content"))
        size += text
        images += pics
        for extra in ("tool_calls", "function_call", "name"):
            if extra in msg:
                size += _part_bytes(msg[extra])[0]
    tools = body.get("tools")
    if tools:
        size += _part_bytes(tools)[0]
    return size, count, images


def prompt_tokens(body: dict[str, Any]) -> int:
    """Estimated prompt tokens of a chat body."""
    size, count, images = prompt_size(body)
    return -(-size // BYTES_PER_TOKEN) + PER_MESSAGE * count + 3 + PER_IMAGE * images


def tokens_at_least(body: dict[str, Any]) -> int:
    """A lower bound on a chat body's prompt tokens (text only): more than a model's context means the
    request cannot fit, whatever its tokenizer."""
    size, count, _ = prompt_size(body)
    return size // LOWER_BOUND_BYTES + count


def output_cap(body: dict[str, Any], context_window: int, prompt: int) -> int:
    """The most completion tokens a call may produce: ``max_tokens`` (or ``max_completion_tokens``)
    times ``n``, else what the context leaves, capped at ``DEFAULT_OUTPUT_CAP``."""
    asked = body.get("max_completion_tokens") or body.get("max_tokens")
    n = body.get("n") or 1
    room = max(context_window - prompt, 1)  # no model writes past its context, whatever was asked
    per_choice = min(asked, room) if isinstance(asked, int) and asked > 0 else min(room, DEFAULT_OUTPUT_CAP)
    return per_choice * (min(n, MAX_CHOICES) if isinstance(n, int) and n > 0 else 1)


def streamed_tokens(events: Iterable[bytes]) -> int:
    """Estimated completion tokens in OpenAI-format SSE events (``data: {...}``): the text of every
    choice's delta (content, reasoning, tool-call arguments), at least one token per event with any."""
    size = tokens = 0
    for event in events:
        data = event[6:] if event.startswith(b"data: ") else event
        try:
            chunk = orjson.loads(data)
        except orjson.JSONDecodeError:
            continue
        choices = chunk.get("choices") if isinstance(chunk, dict) else None
        for choice in choices if isinstance(choices, list) else ():
            delta = choice.get("delta") if isinstance(choice, dict) else None
            if not isinstance(delta, dict):
                continue
            piece = 0
            for name in ("content", "reasoning", "reasoning_content", "refusal"):
                value = delta.get(name)
                if isinstance(value, str):
                    piece += _bytes(value)
            calls = delta.get("tool_calls")
            for call in calls if isinstance(calls, list) else ():
                fn = call.get("function") if isinstance(call, dict) else None
                if isinstance(fn, dict):
                    piece += sum(
                        _bytes(v) for v in (fn.get("name"), fn.get("arguments")) if isinstance(v, str)
                    )
            if piece:
                size += piece
                tokens += 1
    return max(tokens, -(-size // BYTES_PER_TOKEN))


def input_tokens(value: Any) -> int:
    """Estimated tokens of an embeddings ``input``: strings estimated, token arrays counted."""
    if isinstance(value, str):
        return text_tokens(value)
    if not isinstance(value, list):
        return 0
    total = 0
    for item in value:
        if isinstance(item, str):
            total += text_tokens(item)
        elif isinstance(item, list):
            total += len(item)
        else:
            total += 1
    return total
