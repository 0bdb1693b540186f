"""The Phoenix harness against the plain OpenTelemetry SDK: a trace exported over OTLP/HTTP or OTLP/gRPC
arrives in a real Phoenix server with its parent/child links, status, events and typed attributes, in the
project its resource names."""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcSpanExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.trace import Status, StatusCode

from observe import phoenix as harness
from observe.phoenix import PROJECT_ATTRIBUTE, PhoenixServer

pytestmark = pytest.mark.slow

#: an AI call's span: both AI attribute conventions, a cost beyond 32 bits, floats with and
#: without a fraction, a bool, a list of strings, and OpenInference's indexed messages
PARENT_ATTRIBUTES: dict[str, Any] = {
    "openinference.span.kind": "LLM",
    "gen_ai.operation.name": "chat",
    "gen_ai.request.model": "sophia/fast",
    "gen_ai.request.temperature": 1.0,
    "gen_ai.usage.input_tokens": 12,
    "gen_ai.usage.output_tokens": 34,
    "gen_ai.response.finish_reasons": ["stop"],
    "llm.token_count.prompt": 12,
    "llm.token_count.completion": 34,
    "llm.input_messages.0.message.role": "user",
    "llm.input_messages.0.message.content": "Hi",
    "sophia.cost.nanodollars": 1_234_567_890_123,
    "sophia.cache.similarity": 0.875,
    "sophia.cache.hit": False,
}
CHILD_ATTRIBUTES: dict[str, Any] = {
    "sophia.provider": "openai",
    "sophia.attempt": 2,
    "sophia.backoff_s": 0.25,
}


def _exporter(phoenix: PhoenixServer, transport: str) -> SpanExporter:
    if transport == "http":
        return HttpSpanExporter(endpoint=phoenix.http_endpoint, timeout=10)
    return GrpcSpanExporter(endpoint=phoenix.grpc_endpoint, insecure=True, timeout=10)


def _provider(exporter: SpanExporter, project: str | None) -> TracerProvider:
    resource = {"service.name": "sophia-tests"} | ({PROJECT_ATTRIBUTE: project} if project else {})
    provider = TracerProvider(resource=Resource.create(resource))
    provider.add_span_processor(BatchSpanProcessor(exporter))
    return provider


class _Recorder(SpanExporter):
    """Keeps what the SDK handed over, to compare Phoenix's copy with."""

    def __init__(self) -> None:
        self.spans: list[ReadableSpan] = []

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.spans.extend(spans)
        return SpanExportResult.SUCCESS


def _wait_for_name(
    phoenix: PhoenixServer, project: str, name: str, timeout: float = 30
) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while True:
        spans = phoenix.spans(project)
        if any(span["name"] == name for span in spans):
            return spans
        assert time.monotonic() < deadline, (
            f"no span {name!r} in Phoenix's project {project!r} after {timeout}s"
        )
        time.sleep(0.1)


def _unix_nano(moment: datetime) -> int:
    return (moment - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1) * 1_000


@pytest.mark.parametrize("transport", ["http", "grpc"])
def test_a_trace_exported_over_otlp_arrives_whole_with_typed_attributes(
    phoenix: PhoenixServer, transport: str
) -> None:
    project = f"harness-{transport}-{uuid4().hex[:8]}"
    provider = _provider(_exporter(phoenix, transport), project)
    sent = _Recorder()
    provider.add_span_processor(BatchSpanProcessor(sent))
    tracer = provider.get_tracer("tests.observe.phoenix")
    with tracer.start_as_current_span("chat sophia/fast", attributes=PARENT_ATTRIBUTES) as parent:
        parent.set_status(Status(StatusCode.OK))
        with tracer.start_as_current_span("provider.call", attributes=CHILD_ATTRIBUTES) as child:
            child.add_event("retry", {"attempt": 2, "reason": "upstream 503"})
            child.set_status(Status(StatusCode.ERROR, "upstream 503"))
    assert provider.force_flush(10_000)
    provider.shutdown()

    spans = phoenix.spans(project, wait_for=2)

    assert len(spans) == 2  # nothing else landed in this project
    root, leaf = (
        next(s for s in spans if s["name"] == name) for name in ("chat sophia/fast", "provider.call")
    )
    context = parent.get_span_context()
    assert root["trace_id"] == leaf["trace_id"] == f"{context.trace_id:032x}"
    assert root["span_id"] == f"{context.span_id:016x}"
    assert root["parent_id"] is None
    assert leaf["parent_id"] == root["span_id"]
    assert leaf["span_id"] == f"{child.get_span_context().span_id:016x}"

    stored = root["attributes"]
    assert {key: stored.get(key) for key in PARENT_ATTRIBUTES} == PARENT_ATTRIBUTES
    assert {key: type(stored[key]) for key in PARENT_ATTRIBUTES} == {
        key: type(value) for key, value in PARENT_ATTRIBUTES.items()
    }  # 1.0 stays a float, 12 an int, False a bool
    # Phoenix (20.26) fills in the OpenInference attributes it derives from gen_ai.*, never replacing one sent
    assert {key: value for key, value in stored.items() if key not in PARENT_ATTRIBUTES} == {
        "llm.model_name": "sophia/fast",
        "llm.token_count.total": 46,
        "llm.finish_reason": "stop",
        "llm.invocation_parameters": '{"temperature": 1.0}',
    }
    assert leaf["attributes"] == CHILD_ATTRIBUTES
    assert type(leaf["attributes"]["sophia.attempt"]) is int

    assert (root["status_code"], root["status_message"]) == ("OK", "")
    assert (leaf["status_code"], leaf["status_message"]) == ("ERROR", "upstream 503")
    assert [(e["name"], e["attributes"]) for e in leaf["events"]] == [
        ("retry", {"attempt": 2, "reason": "upstream 503"})
    ]

    by_name = {s.name: s for s in sent.spans}
    for got in (root, leaf):
        original = by_name[got["name"]]
        assert original.start_time is not None and original.end_time is not None
        # Phoenix keeps microseconds, decoded through a float (nanoseconds / 1e9): within 1 µs
        assert abs(_unix_nano(got["start_time"]) - original.start_time) <= 1_000
        assert abs(_unix_nano(got["end_time"]) - original.end_time) <= 1_000
    assert root["start_time"] <= leaf["start_time"] <= leaf["end_time"] <= root["end_time"]


def test_the_resource_names_the_project_a_header_overrides_it_and_without_either_it_is_default(
    phoenix: PhoenixServer,
) -> None:
    tag = uuid4().hex[:8]
    project, header_project = f"harness-project-{tag}", f"harness-header-{tag}"
    sends = (  # (resource's project, x-project-name header, span name)
        (project, None, f"named-{tag}"),
        (project, header_project, f"headed-{tag}"),
        (None, None, f"unnamed-{tag}"),
    )
    for resource_project, header, span_name in sends:
        headers = {"x-project-name": header} if header else None
        exporter = HttpSpanExporter(endpoint=phoenix.http_endpoint, headers=headers, timeout=10)
        provider = _provider(exporter, resource_project)
        with provider.get_tracer("tests.observe.phoenix").start_as_current_span(span_name):
            pass
        assert provider.force_flush(10_000)
        provider.shutdown()

    assert [s["name"] for s in phoenix.spans(project, wait_for=1)] == [f"named-{tag}"]
    assert [s["name"] for s in phoenix.spans(header_project, wait_for=1)] == [f"headed-{tag}"]
    default = _wait_for_name(phoenix, "default", f"unnamed-{tag}")  # "default" is shared by the session
    assert not {f"named-{tag}", f"headed-{tag}"} & {s["name"] for s in default}


def test_waiting_for_spans_that_never_come_times_out_with_the_count(phoenix: PhoenixServer) -> None:
    project = f"harness-empty-{uuid4().hex[:8]}"
    assert phoenix.spans(project) == []  # an unknown project has no spans (Phoenix answers 404)
    with pytest.raises(
        TimeoutError, match=r"holds 0 span\(s\) in project 'harness-empty-.*expected at least 1"
    ):
        phoenix.spans(project, wait_for=1, timeout=0.5)


def test_without_its_venv_the_harness_fails_and_says_make_phoenix_builds_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(harness, "PHOENIX", tmp_path / ".venv-phoenix" / "bin" / "phoenix")
    server = PhoenixServer()
    with pytest.raises(RuntimeError, match=r"run `make phoenix` to build \.venv-phoenix"):
        server.start()
    assert not server.workdir.exists()  # its temporary folder went with it


def test_a_server_not_ready_in_time_is_ended_and_its_log_is_in_the_error(tmp_path: Path) -> None:
    server = PhoenixServer(tmp_path, startup_timeout=1)
    with pytest.raises(RuntimeError, match=r"not ready within 1s; its last lines"):
        server.start()
    marker = f"PHOENIX_WORKING_DIR={tmp_path}".encode()
    assert not [pid for pid in _pids() if marker in _environ(pid)]  # no Phoenix process left behind


def _pids() -> list[int]:
    return [int(entry.name) for entry in Path("/proc").iterdir() if entry.name.isdigit()]


def _environ(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:  # gone meanwhile, or not ours to read
        return b""
