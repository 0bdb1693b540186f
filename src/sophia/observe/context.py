"""Trace context for the request path: ids, the caller's ``traceparent``, and what a call leaves for its spans.

Nothing here touches OpenTelemetry: the request path only notes ids and stage times (cheap), and
``sophia.observe.tracing`` builds the spans from them after the ledger has written the call's row.
"""

from __future__ import annotations

import hashlib
import random
import re
from dataclasses import dataclass
from typing import Any

import orjson

_TRACEPARENT = re.compile(r"([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-[^\s]*)?\Z")
_ZERO_TRACE, _ZERO_SPAN = "0" * 32, "0" * 16


def new_trace_id() -> str:
    """A W3C trace id (32 hex digits, never all zeros) without a system call."""
    return f"{random.getrandbits(128) | 1:032x}"


def new_span_id() -> str:
    """A W3C span id (16 hex digits, never all zeros)."""
    return f"{random.getrandbits(64) | 1:016x}"


def trace_parent(header: str | None) -> tuple[str, str] | None:
    """(trace id, parent span id) from a W3C ``traceparent`` header, or None when absent or malformed
    (a version-00 header has exactly four fields; a later version may add more; ``ff`` is invalid)."""
    if not header or len(header) > 512:
        return None
    match = _TRACEPARENT.match(header.strip().lower())
    if match is None:
        return None
    version, trace, span, _flags, rest = match.groups()
    if version == "ff" or (version == "00" and rest) or trace == _ZERO_TRACE or span == _ZERO_SPAN:
        return None
    return trace, span


@dataclass(slots=True)
class CallTrace:
    """How a call went, for its spans (built off the request path by ``sophia.observe.tracing``).

    ``marks``: (stage, start, end, detail) in ``perf_counter`` seconds: "admission", "cache" (detail:
    the hit's kind or "miss"), "route" (detail: the router's reason), "attempt" (detail: (model id,
    provider, outcome)), "stream" (first event to the last). ``t0``/``ts``: the call's start on both clocks."""

    t0: float
    ts: float
    parent_span: str | None
    marks: list[tuple[str, float, float, Any]]
    content: tuple[Any, Any] | None = None  # (request, answer) when content capture is on
    span_id: str | None = None  # the root span's id when it was given out before (an MCP tool call)

    def encode(self) -> str:
        """What the ledger keeps of it (column ``trace_detail``): the caller's span, the root span's id
        if given, and the stages in microseconds from the call's start. Never the content."""
        t0 = self.t0
        marks = [
            (stage, int((start - t0) * 1e6), int((end - t0) * 1e6), detail)
            for stage, start, end, detail in self.marks
        ]
        return orjson.dumps((self.parent_span, self.span_id, marks)).decode()

    @classmethod
    def decode(cls, text: str | None, ts: float) -> CallTrace | None:
        """A ``CallTrace`` from the ledger's ``trace_detail`` (None when absent or unreadable)."""
        if not text:
            return None
        try:
            parent, span_id, marks = orjson.loads(text)
            stages = [
                (str(stage), start / 1e6, end / 1e6, tuple(detail) if isinstance(detail, list) else detail)
                for stage, start, end, detail in marks
            ]
        except (orjson.JSONDecodeError, TypeError, ValueError):
            return None
        return cls(0.0, ts, parent, stages, None, span_id)


def derived_span_id(*parts: str) -> int:
    """A span id that the same call always gets (so spans rebuilt from the ledger are the spans exported)."""
    digest = hashlib.blake2b("/".join(parts).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") or 1
