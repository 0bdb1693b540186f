"""Spans from usage records: a call's root span and one per stage, in both AI attribute conventions.

Every span carries both conventions:

* OpenTelemetry GenAI (``gen_ai.*``, Development status). By default the attributes of the 1.36 and
  earlier conventions (``gen_ai.system``, content as ``gen_ai.content.*`` events); with
  ``OTEL_SEMCONV_STABILITY_OPT_IN=gen_ai_latest_experimental`` the latest (``gen_ai.provider.name``,
  ``gen_ai.input.messages`` / ``gen_ai.output.messages``), as the OpenTelemetry instrumentations do.
* OpenInference (what Phoenix and Arize show): ``openinference.span.kind`` (CHAIN for the call,
  LLM / EMBEDDING for the model attempt, TOOL for an MCP tool, RETRIEVER for the cache lookup,
  GUARDRAIL for admission), ``llm.*`` token counts and cost, ``input.value`` / ``output.value`` when
  content is captured, ``metadata``, ``user.id``.

No standard cost attribute exists yet: cost is ``sophia.cost.nanodollars`` (integer, the ledger's
figure), with the proposed ``gen_ai.usage.cost`` and OpenInference's ``llm.cost.total`` (USD) beside
it. Span ids are derived from the call (trace id, request id, endpoint, stage), so the spans rebuilt
from a ledger row are the very spans that were exported.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import orjson
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import SpanContext, SpanKind, Status, StatusCode, TraceFlags

from sophia import __version__
from sophia.accounts.ledger import UsageRecord
from sophia.accounts.limits import NANOS
from sophia.observe.context import derived_span_id

COST_ATTRIBUTE = "sophia.cost.nanodollars"
_SAMPLED = TraceFlags(TraceFlags.SAMPLED)
SCOPE = InstrumentationScope("sophia", __version__)
_CODES = {"ok": StatusCode.OK, "error": StatusCode.ERROR, "unset": StatusCode.UNSET}
_KINDS = {"server": SpanKind.SERVER, "client": SpanKind.CLIENT, "internal": SpanKind.INTERNAL}
#: a stage's span name and OpenInference kind
_STAGES = {
    "admission": ("admission", "GUARDRAIL"),
    "cache": ("cache.lookup", "RETRIEVER"),
    "route": ("route", "CHAIN"),
    "stream": ("stream", "CHAIN"),
}


def latest_genai_conventions() -> bool:
    """Whether ``OTEL_SEMCONV_STABILITY_OPT_IN`` asks for the latest experimental GenAI conventions."""
    opted = os.environ.get("OTEL_SEMCONV_STABILITY_OPT_IN", "")
    return "gen_ai_latest_experimental" in {part.strip() for part in opted.split(",")}


def default_resource(service: str = "sophia", project: str = "sophia") -> Resource:
    return Resource.create(
        {"service.name": service, "service.version": __version__, "openinference.project.name": project}
    )


@dataclass(slots=True)
class SpanData:
    """One finished span, as plain values (the OTLP encoder writes it as is; ``readable`` makes the SDK's)."""

    trace_id: int
    span_id: int
    parent_id: int | None
    name: str
    kind: str  # "server" | "client" | "internal"
    start_ns: int
    end_ns: int
    status: str  # "ok" | "error" | "unset"
    status_message: str
    attributes: dict[str, Any]
    events: list[tuple[str, int, dict[str, Any]]] = field(default_factory=list)
    remote_parent: bool = False

    def readable(self, resource: Resource) -> ReadableSpan:
        """The same span as the OpenTelemetry SDK's ``ReadableSpan``."""
        parent = None
        if self.parent_id:
            parent = SpanContext(self.trace_id, self.parent_id, self.remote_parent, _SAMPLED)
        code = _CODES[self.status]
        return ReadableSpan(
            name=self.name,
            context=SpanContext(self.trace_id, self.span_id, False, _SAMPLED),
            parent=parent,
            resource=resource,
            attributes=self.attributes,
            events=[Event(name, attributes, at) for name, at, attributes in self.events],
            kind=_KINDS[self.kind],
            status=Status(code, self.status_message or None) if code is StatusCode.ERROR else Status(code),
            start_time=self.start_ns,
            end_time=max(self.end_ns, self.start_ns),
            instrumentation_scope=SCOPE,
        )


class SpanBuilder:
    """Turns usage records into finished spans (``SpanData``) in both conventions."""

    def __init__(self, resource: Resource, *, latest: bool, capture_content: bool) -> None:
        self.resource = resource
        self.latest = latest
        self.capture_content = capture_content
        self.provider_key = "gen_ai.provider.name" if latest else "gen_ai.system"

    def spans(self, rec: UsageRecord) -> list[SpanData]:
        """The record's spans: the call's root, then one per stage (none without a trace id)."""
        if not rec.trace_id:
            return []
        trace_id = int(rec.trace_id, 16)
        call = rec.trace
        start = int(rec.ts * 1e9)
        end = start + int(max(rec.latency_ms, 0.0) * 1e6)
        parent_hex = call.parent_span if call is not None else None
        parent = int(parent_hex, 16) if parent_hex else None
        if call is not None and call.span_id:
            root_id = int(call.span_id, 16)
        else:
            root_id = derived_span_id(rec.trace_id, rec.request_id, rec.endpoint)
        is_tool = rec.endpoint.startswith("mcp:")
        ok = rec.outcome == "ok"
        if is_tool:
            name, attributes = f"execute_tool {rec.endpoint[4:].partition('/')[2]}", self._tool(rec)
        else:
            name, attributes = f"{self._operation(rec)} {rec.requested_model}", self._call(rec)
        root = SpanData(trace_id, root_id, parent, name, "server", start, end, "ok" if ok else "error",
                        "" if ok else (rec.error_class or rec.outcome), attributes,
                        self._content_events(rec, start) if not is_tool else [], parent is not None)  # fmt: skip
        out = [root]
        if call is None:
            return out
        t0, root_hex = call.t0, f"{root_id:016x}"
        for n, (stage, began, ended, detail) in enumerate(call.marks):
            s, e = start + int((began - t0) * 1e9), start + int((ended - t0) * 1e9)
            span_id = derived_span_id(root_hex, str(n))
            if stage == "attempt":
                attrs, status = self._attempt(rec, detail, served=detail[2] == "ok")
                name = f"{self._operation(rec)} {detail[0]}"
                message = "" if status == "ok" else str(detail[2])
                out.append(SpanData(trace_id, span_id, root_id, name, "client", s, e, status, message, attrs))
                continue
            span_name, oi_kind = _STAGES.get(stage, (stage, "CHAIN"))
            attrs = {"openinference.span.kind": oi_kind, "sophia.stage": stage}
            if stage == "cache":
                attrs["sophia.cache"] = detail
            elif stage == "route" and detail:
                attrs["sophia.route.reason"] = str(detail)
            elif stage == "stream" and rec.ttft_ms is not None:
                attrs["sophia.ttft_ms"] = float(rec.ttft_ms)
            out.append(SpanData(trace_id, span_id, root_id, span_name, "internal", s, e, "ok", "", attrs))
        return out

    # -- attributes -------------------------------------------------------------------------------

    @staticmethod
    def _operation(rec: UsageRecord) -> str:
        return "embeddings" if rec.endpoint == "embeddings" else "chat"

    def _common(self, rec: UsageRecord) -> dict[str, Any]:
        attrs: dict[str, Any] = {
            "sophia.request_id": rec.request_id,
            "sophia.endpoint": rec.endpoint,
            "sophia.team": rec.team,
            "sophia.outcome": rec.outcome,
            "sophia.status": rec.status,
            COST_ATTRIBUTE: rec.cost_nanos,
            "gen_ai.usage.cost": rec.cost_nanos / NANOS,
        }
        if rec.key_id:
            attrs["sophia.key_id"] = attrs["user.id"] = rec.key_id
        if rec.task_type:
            attrs["sophia.task_type"] = rec.task_type
        if rec.error_class:
            attrs["error.type"] = rec.error_class
        metadata = {"team": rec.team, **(rec.metadata or {})}
        attrs["metadata"] = orjson.dumps(metadata, default=str).decode()
        return attrs

    def _call(self, rec: UsageRecord) -> dict[str, Any]:
        """The call's root span: what was asked, what served it, cache, route, tokens, cost."""
        attrs = self._common(rec)
        attrs.update(
            {
                "openinference.span.kind": "CHAIN",
                "gen_ai.operation.name": self._operation(rec),
                "gen_ai.request.model": rec.requested_model,
                "gen_ai.usage.input_tokens": rec.prompt_tokens,
                "gen_ai.usage.output_tokens": rec.completion_tokens,
                "sophia.cache": rec.cache,
                "sophia.attempts": rec.attempts,
                "sophia.latency_ms": float(rec.latency_ms),
            }
        )
        if rec.served_model:
            attrs["gen_ai.response.model"] = rec.served_model
        if rec.provider:
            attrs[self.provider_key] = rec.provider
        if rec.route:
            attrs["sophia.route"] = rec.route
        if rec.saved_nanos:
            attrs["sophia.saved.nanodollars"] = rec.saved_nanos
        if rec.cache_entry:
            attrs["sophia.cache.entry"] = rec.cache_entry
        if rec.estimated:
            attrs["sophia.tokens.estimated"] = True
        if rec.ttft_ms is not None:
            attrs["sophia.ttft_ms"] = float(rec.ttft_ms)
        attrs.update(self._content_attributes(rec))
        return attrs

    def _attempt(
        self, rec: UsageRecord, detail: tuple[str, str, str], *, served: bool
    ) -> tuple[dict[str, Any], str]:
        """One provider attempt; the one that served the call carries its tokens and cost."""
        model, provider, outcome = detail
        embeddings = rec.endpoint == "embeddings"
        attrs: dict[str, Any] = {
            "openinference.span.kind": "EMBEDDING" if embeddings else "LLM",
            "gen_ai.operation.name": self._operation(rec),
            "gen_ai.request.model": model,
            self.provider_key: provider,
            "llm.provider": provider,
            "llm.system": provider,
            "sophia.attempt.outcome": outcome,
        }
        if embeddings:
            attrs["embedding.model_name"] = model
        else:
            attrs["llm.model_name"] = model
        if not served:
            attrs["error.type"] = outcome
            return attrs, "ok" if outcome == "ok" else "error"
        attrs.update(
            {
                "gen_ai.response.model": model,
                "gen_ai.usage.input_tokens": rec.prompt_tokens,
                "gen_ai.usage.output_tokens": rec.completion_tokens,
                "llm.token_count.prompt": rec.prompt_tokens,
                "llm.token_count.completion": rec.completion_tokens,
                "llm.token_count.total": rec.prompt_tokens + rec.completion_tokens,
                COST_ATTRIBUTE: rec.cost_nanos,
                "gen_ai.usage.cost": rec.cost_nanos / NANOS,
                "llm.cost.total": rec.cost_nanos / NANOS,
            }
        )
        if rec.cache != "miss":
            attrs["sophia.cache"] = rec.cache
        attrs.update(self._content_attributes(rec))
        return attrs, "ok"

    def _tool(self, rec: UsageRecord) -> dict[str, Any]:
        server, _, tool = rec.endpoint[4:].partition("/")
        attrs = self._common(rec)
        meta = rec.metadata or {}
        attrs.update(
            {
                "openinference.span.kind": "TOOL",
                "gen_ai.operation.name": "execute_tool",
                "gen_ai.tool.name": tool,
                "gen_ai.tool.type": "function",
                "tool.name": tool,
                "sophia.mcp.server": server,
                "sophia.latency_ms": float(rec.latency_ms),
            }
        )
        if meta.get("model_calls"):
            attrs["sophia.model_calls"] = int(meta["model_calls"])
        return attrs

    # -- content (only with observe.capture_content; redacted on export) ----------------------------

    def _messages(self, rec: UsageRecord) -> tuple[list[dict[str, Any]], str | None]:
        content = rec.trace.content if rec.trace is not None else None
        if not self.capture_content or content is None:
            return [], None
        request, answer = content
        messages = [m for m in (request or {}).get("messages") or [] if isinstance(m, dict)]
        text = None
        if answer:
            try:
                body = orjson.loads(answer)
                text = body["choices"][0]["message"].get("content")
            except (orjson.JSONDecodeError, KeyError, IndexError, TypeError, AttributeError):
                text = None
        return messages, text if isinstance(text, str) else None

    def _content_attributes(self, rec: UsageRecord) -> dict[str, Any]:
        messages, answer = self._messages(rec)
        if not messages and answer is None:
            return {}
        attrs: dict[str, Any] = {
            "input.value": orjson.dumps({"messages": messages}, default=str).decode(),
            "input.mime_type": "application/json",
        }
        for i, message in enumerate(messages):
            attrs[f"llm.input_messages.{i}.message.role"] = str(message.get("role", ""))
            if isinstance(message.get("content"), str):
                attrs[f"llm.input_messages.{i}.message.content"] = message["content"]
        if answer is not None:
            attrs["output.value"] = answer
            attrs["output.mime_type"] = "text/plain"
            attrs["llm.output_messages.0.message.role"] = "assistant"
            attrs["llm.output_messages.0.message.content"] = answer
        if self.latest:
            inputs = [
                {"role": m.get("role"), "parts": [{"type": "text", "content": m.get("content")}]}
                for m in messages
            ]
            attrs["gen_ai.input.messages"] = orjson.dumps(inputs, default=str).decode()
            if answer is not None:
                output = [{"role": "assistant", "parts": [{"type": "text", "content": answer}]}]
                attrs["gen_ai.output.messages"] = orjson.dumps(output).decode()
        return attrs

    def _content_events(self, rec: UsageRecord, at: int) -> list[tuple[str, int, dict[str, Any]]]:
        if self.latest:
            return []
        messages, answer = self._messages(rec)
        events = []
        if messages:
            prompt = orjson.dumps(messages, default=str).decode()
            events.append(("gen_ai.content.prompt", at, {"gen_ai.prompt": prompt}))
        if answer is not None:
            events.append(("gen_ai.content.completion", at, {"gen_ai.completion": answer}))
        return events
