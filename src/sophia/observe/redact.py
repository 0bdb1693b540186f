"""Secrets out of telemetry: known and credential-shaped values masked, content stripped where it is off.

``Redactor.text`` masks every secret value the environment knows (``sophia.secrets.mask.KNOWN``,
in all its encoded forms), the exact secret values Sophia was configured with (provider keys,
webhook URLs), what looks like a credential (``sophia.secrets.scan.credential_spans``, the one rule
table: provider API keys, bearer tokens, JWTs, cloud access keys, private-key blocks,
``password=…`` pairs, URLs with a password) and the patterns of ``observe.redact_patterns``.
``Redactor.span`` applies it to a finished span's attributes and events, and drops prompt/answer
attributes entirely unless content capture is on, whoever emitted the span (Sophia or third-party
instrumentation in the process).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from typing import Any

from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from sophia.observe.spanbuild import SpanData
from sophia.secrets.mask import KNOWN, MASK, Masker, mask_credentials

__all__ = ["CONTENT_PREFIXES", "MASK", "TRUSTED", "RedactingExporter", "Redactor"]

_DROP = object()
#: a match of an ``observe.redact_patterns`` pattern that starts with a secret's name keeps the name
_PAIR = re.compile(r"(?i)^((?:api[_-]?key|secret|password|passwd|token|access[_-]?key)\"?\s*[:=]\s*\"?)")
#: attributes that hold prompts or answers, in both conventions (dropped unless content capture is on)
CONTENT_PREFIXES = (
    "input.value",
    "output.value",
    "llm.input_messages",
    "llm.output_messages",
    "llm.prompts",
    "llm.prompt_template",
    "gen_ai.prompt",
    "gen_ai.completion",
    "gen_ai.input.messages",
    "gen_ai.output.messages",
    "gen_ai.system_instructions",
    "gen_ai.tool.call.arguments",
    "gen_ai.tool.call.result",
    "tool.parameters",
    "retrieval.documents",
    "embedding.embeddings",
)
_CONTENT_EVENTS = ("gen_ai.content.", "gen_ai.user.message", "gen_ai.system.message", "gen_ai.assistant.message",
                   "gen_ai.tool.message", "gen_ai.choice", "gen_ai.client.inference.operation.details")  # fmt: skip


#: attributes whose values Sophia itself writes (never user text): not scanned
TRUSTED = frozenset({
    "sophia.request_id", "sophia.endpoint", "sophia.outcome", "sophia.cache", "sophia.stage", "sophia.cache.entry",
    "sophia.key_id", "user.id", "openinference.span.kind", "gen_ai.operation.name", "gen_ai.system",
    "gen_ai.provider.name", "llm.provider", "llm.system", "sophia.attempt.outcome", "error.type", "sophia.mcp.server",
    "gen_ai.tool.type",
})  # fmt: skip
_MEMO_MAX = 8192
_MEMO_LONGEST = 512


class Redactor:
    """``secrets``: exact values of its own (the settings' SecretStr values; in the export process, a
    snapshot of the server's); ``known``: the live set of the environment's secrets (``KNOWN``), read
    at every call so that a reload reaches spans at once."""

    def __init__(
        self,
        *,
        capture_content: bool,
        secrets: Iterable[str] = (),
        patterns: Sequence[str] = (),
        known: Masker = KNOWN,
    ) -> None:
        self.capture_content = capture_content
        self.own = Masker(secrets)
        self.known = known
        self.patterns = tuple(patterns)
        self._memo: dict[str, str] = {}
        self._memo_version = known.version
        self._pattern = (
            re.compile("|".join(f"(?i:{p[4:]})" if p.startswith("(?i)") else f"(?:{p})" for p in patterns))
            if patterns
            else None
        )

    @property
    def secrets(self) -> tuple[str, ...]:
        """Every exact value masked now, its own and the environment's (the export process gets these)."""
        return tuple(sorted({*self.own.values, *self.known.values}))

    def text(self, value: str) -> str:
        if not value:
            return value
        value = mask_credentials(self.own.mask(value), self.known)
        return self._pattern.sub(_mask, value) if self._pattern is not None else value

    def _text(self, value: str) -> str:
        """``text``, remembered for short values (models, routes, teams repeat on every span)."""
        if len(value) > _MEMO_LONGEST:
            return self.text(value)
        if self._memo_version != self.known.version:  # the environment's secrets changed
            self._memo.clear()
            self._memo_version = self.known.version
        clean = self._memo.get(value)
        if clean is None:
            if len(self._memo) >= _MEMO_MAX:
                self._memo.clear()
            clean = self._memo[value] = self.text(value)
        return clean

    def _plain(self, attributes: dict[str, Any]) -> dict[str, Any] | None:
        """Sophia's own span attributes redacted (a new dict), or None when nothing changed."""
        out: dict[str, Any] | None = None
        for name, value in attributes.items():
            if not self.capture_content and name.startswith(CONTENT_PREFIXES):
                clean: Any = _DROP
            elif type(value) is str and name not in TRUSTED:
                clean = self._text(value)
            else:
                continue
            if clean is _DROP or clean != value:
                if out is None:
                    out = dict(attributes)
                if clean is _DROP:
                    del out[name]
                else:
                    out[name] = clean
        return out

    def data(self, span: SpanData) -> SpanData:
        """One of Sophia's own spans redacted (the same object when nothing needed it)."""
        attributes = self._plain(span.attributes)
        events = span.events
        if events:
            kept = []
            for name, at, event_attributes in events:
                if not self.capture_content and name.startswith(_CONTENT_EVENTS):
                    continue
                kept.append((name, at, self._plain(event_attributes) or event_attributes))
            if kept != events:
                events = kept
        if attributes is None and events is span.events:
            return span
        return replace(
            span, attributes=attributes if attributes is not None else span.attributes, events=events
        )

    def value(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, tuple | list):
            return tuple(self.value(v) for v in value)
        return value

    def attributes(self, attributes: Mapping[str, Any] | None) -> tuple[dict[str, Any], bool]:
        """(attributes redacted, whether anything changed)."""
        out: dict[str, Any] = {}
        changed = False
        for name, value in (attributes or {}).items():
            if not self.capture_content and name.startswith(CONTENT_PREFIXES):
                changed = True
                continue
            clean = self.value(value)
            changed = changed or clean != value
            out[name] = clean
        return out, changed

    def span(self, span: ReadableSpan) -> ReadableSpan:
        """``span`` with secrets masked (the same object when nothing needed it)."""
        attributes, changed = self.attributes(span.attributes)
        events: list[Event] = []
        for event in span.events:
            if not self.capture_content and event.name.startswith(_CONTENT_EVENTS):
                changed = True
                continue
            event_attributes, event_changed = self.attributes(event.attributes)
            changed = changed or event_changed
            events.append(Event(event.name, event_attributes, event.timestamp) if event_changed else event)
        if not changed:
            return span
        return ReadableSpan(
            name=span.name,
            context=span.context,
            parent=span.parent,
            resource=span.resource,
            attributes=attributes,
            events=events,
            links=span.links,
            kind=span.kind,
            status=span.status,
            start_time=span.start_time,
            end_time=span.end_time,
            instrumentation_scope=span.instrumentation_scope,
        )


def _mask(match: re.Match[str]) -> str:
    """The mask for one match; a ``name=value`` pair keeps its name."""
    text = match.group(0)
    pair = _PAIR.match(text)
    return pair.group(1) + MASK if pair else MASK


class RedactingExporter(SpanExporter):
    """Wraps an exporter: every span it sends (Sophia's or not) passes through ``redactor`` first."""

    def __init__(self, inner: SpanExporter, redactor: Redactor) -> None:
        self.inner = inner
        self.redactor = redactor

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return self.inner.export([self.redactor.span(span) for span in spans])

    def shutdown(self) -> None:
        self.inner.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self.inner.force_flush(timeout_millis)
