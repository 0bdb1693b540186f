"""A stand-in OTLP collector for the tests: what the tracer sends, kept and decoded."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter


@dataclass
class Sent:
    """One span as a collector received it (decoded from the OTLP bytes, or the SDK's for third parties)."""

    name: str
    root: bool
    attributes: dict[str, Any]
    events: list[tuple[str, dict[str, Any]]]


def _value(value: Any) -> Any:
    kind = value.WhichOneof("value")
    if kind == "array_value":
        return tuple(_value(v) for v in value.array_value.values)
    return getattr(value, kind)


class Collector:
    """Catches what the tracer sends over OTLP: Sophia's own spans as wire bytes (decoded with the
    official protobuf classes, so the encoder is checked too), third-party spans from the SDK.
    ``spans()`` decodes them; ``text()`` is everything as one searchable text (the redaction tests)."""

    def __init__(self) -> None:
        self.bodies: list[bytes] = []
        self.sdk = InMemorySpanExporter()

    def send(self, body: bytes) -> bool:
        self.bodies.append(body)
        return True

    def close(self) -> None:
        pass

    def spans(self) -> list[Sent]:
        out = []
        for body in self.bodies:
            request = ExportTraceServiceRequest.FromString(body)
            for resource in request.resource_spans:
                for scope in resource.scope_spans:
                    for span in scope.spans:
                        attrs = {kv.key: _value(kv.value) for kv in span.attributes}
                        events = [
                            (e.name, {kv.key: _value(kv.value) for kv in e.attributes}) for e in span.events
                        ]
                        out.append(Sent(span.name, not span.parent_span_id, attrs, events))
        for span in self.sdk.get_finished_spans():
            events = [(e.name, dict(e.attributes or {})) for e in span.events]
            out.append(Sent(span.name, span.parent is None, dict(span.attributes or {}), events))
        return out

    def text(self) -> str:
        decoded = [str(ExportTraceServiceRequest.FromString(body)) for body in self.bodies]
        # protobuf's text format escapes non-ASCII as octal bytes: the attribute values as strings too
        values = [
            kv.value.string_value
            for body in self.bodies
            for rs in ExportTraceServiceRequest.FromString(body).resource_spans
            for ss in rs.scope_spans
            for span in ss.spans
            for kv in [*span.attributes, *(a for e in span.events for a in e.attributes)]
        ]
        third = [repr((s.name, dict(s.attributes or {}), [dict(e.attributes or {}) for e in s.events]))
                 for s in self.sdk.get_finished_spans()]  # fmt: skip
        return "\n".join(decoded + values + third)
