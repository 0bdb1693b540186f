"""The OTLP wire encoder, the collector address rules and the export process."""

from __future__ import annotations

import time
from typing import Any

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from sophia.accounts.ledger import UsageRecord, row_of
from sophia.observe.context import CallTrace
from sophia.observe.exporter import ExportProcess
from sophia.observe.otlp import Encoder
from sophia.observe.spanbuild import SpanData
from sophia.observe.tracing import otlp_target

#: shaped like an OpenAI project key (the scan's rules know that shape), and fake
FAKE_SECRET = "sk-proj-TESTONLY0a1b2c3d4e5f6g7h8i9j0k1l2m3n4o5p6q7r8s9t"  # pragma: allowlist secret


def test_the_encoder_writes_what_the_official_classes_read() -> None:
    encoder = Encoder({"service.name": "sophia", "openinference.project.name": "p"}, ("sophia", "1.2"))
    spans = [
        SpanData(2**127 + 5, 2**63 + 7, None, "chat m", "server", 1_700_000_000_000_000_000, 1_700_000_000_500_000_000,
                 "error", "AllProvidersFailed", {"s": "é text", "i": -3, "big": 2**40, "f": 0.25, "b": True,
                 "a": ("x", "y")}, [("gen_ai.content.prompt", 1_700_000_000_000_000_001, {"gen_ai.prompt": "hi"})]),
        SpanData(2**127 + 5, 11, 2**63 + 7, "admission", "internal", 1, 2, "ok", "", {"s": "é text"}),
    ]  # fmt: skip
    request = ExportTraceServiceRequest.FromString(encoder.request(spans) + encoder.request(spans[1:]))
    assert len(request.resource_spans) == 2  # two requests concatenated merge, as protobuf says
    resource = request.resource_spans[0]
    assert {kv.key: kv.value.string_value for kv in resource.resource.attributes}[
        "openinference.project.name"
    ] == "p"
    scope = resource.scope_spans[0]
    assert (scope.scope.name, scope.scope.version) == ("sophia", "1.2")
    root, child = scope.spans
    assert root.trace_id == (2**127 + 5).to_bytes(16, "big") and root.span_id == (2**63 + 7).to_bytes(
        8, "big"
    )
    assert not root.parent_span_id and child.parent_span_id == root.span_id
    assert (root.name, root.kind, root.start_time_unix_nano, root.end_time_unix_nano) == (
        "chat m", 2, 1_700_000_000_000_000_000, 1_700_000_000_500_000_000)  # fmt: skip
    assert (root.status.code, root.status.message) == (2, "AllProvidersFailed") and child.status.code == 1
    values = {kv.key: kv.value for kv in root.attributes}
    assert values["s"].string_value == "é text" and values["i"].int_value == -3
    assert values["big"].int_value == 2**40 and values["f"].double_value == 0.25 and values["b"].bool_value
    assert [v.string_value for v in values["a"].array_value.values] == ["x", "y"]
    (event,) = root.events
    assert event.name == "gen_ai.content.prompt" and event.attributes[0].value.string_value == "hi"
    assert child.kind == 1 and root.flags & 0x1


def test_the_collector_comes_from_the_setting_or_the_standard_variables(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("ENDPOINT", "TRACES_ENDPOINT", "PROTOCOL", "TRACES_PROTOCOL"):
        monkeypatch.delenv(f"OTEL_EXPORTER_OTLP_{name}", raising=False)
    assert otlp_target(None, "http/protobuf") is None
    assert otlp_target("http://c:4318/v1/traces", "http/protobuf") == (
        "http://c:4318/v1/traces",
        "http/protobuf",
    )
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318/")
    assert otlp_target(None, "http/protobuf") == ("http://collector:4318/v1/traces", "http/protobuf")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
    assert otlp_target(None, "http/protobuf") == ("http://collector:4318/", "grpc")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://traces:4317")
    assert otlp_target(None, "http/protobuf") == ("http://traces:4317", "grpc")


def rows(n: int, start: int = 0) -> list[tuple[Any, ...]]:
    out = []
    for i in range(start, start + n):
        marks = [("admission", 0.0, 0.0001, None), ("attempt", 0.0001, 0.2, ("vllm/ok", "vllm", "ok"))]
        record = UsageRecord(
            time.time(), f"r{i}", "key_1", "t", "chat", "vllm/ok", "vllm/ok", "vllm", 3, 4, 700, 200.0, None,
            "miss", metadata={"note": f"leaked {FAKE_SECRET}"}, trace_id=f"{i + 1:032x}",
            trace=CallTrace(0.0, time.time(), None, marks),
        )  # fmt: skip
        out.append(row_of(record))
    return out


def test_the_export_process_sends_redacted_spans_and_comes_back_after_dying(httpserver: HTTPServer) -> None:
    received: list[ExportTraceServiceRequest] = []

    def collect(request: Request) -> Response:
        assert request.headers["content-type"] == "application/x-protobuf"
        assert request.headers["x-api-key"] == "fake-header-value"
        received.append(ExportTraceServiceRequest.FromString(request.get_data()))
        return Response(b"", status=200)

    httpserver.expect_request("/v1/traces", method="POST").respond_with_handler(collect)
    config = {
        "resource": {"service.name": "sophia"}, "latest": False, "endpoint": httpserver.url_for("/v1/traces"),
        "protocol": "http/protobuf", "headers": {"x-api-key": "fake-header-value"}, "secrets": [], "patterns": [],
    }  # fmt: skip
    process = ExportProcess(config)
    try:
        process.submit(rows(3))
        assert process.flush(60)
        assert process.exported == 9 and process.failed == 0  # a root and two stages each
        assert process._proc is not None
        process._proc.kill()  # the process dies: the next batch starts another
        process._proc.wait()
        process.submit(rows(2, start=3))
        assert process.flush(60)
        assert process.exported == 6 and process.dropped == 0  # counted by the new process
    finally:
        process.close()
    spans = [s for r in received for rs in r.resource_spans for ss in rs.scope_spans for s in ss.spans]
    assert len(spans) == 15 and len({s.trace_id for s in spans}) == 5
    text = repr(received)
    assert FAKE_SECRET not in text and "[REDACTED]" in text
    assert process._proc is None
