"""Traces of gateway calls and MCP tool calls: stages, both conventions, one cost figure, redaction."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from fakes.helpers import chat, gateway_settings
from fakes.otlp import Collector
from fakes.upstream import FakeUpstream
from sophia.accounts.ledger import Ledger, UsageRecord
from sophia.gateway.app import GatewayApp
from sophia.gateway.engine import Gateway
from sophia.observe.context import CallTrace
from sophia.observe.spans import SpanStore, StoredSpan

TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
#: shaped like an OpenAI project key (the scan's rules know that shape), and fake
FAKE_KEY = "sk-proj-TESTONLY0a1b2c3d4e5f6g7h8i9j0k1l2m3n4o5p6q7r8s9t"  # pragma: allowlist secret


async def open_gateway(upstream: FakeUpstream, **overrides: Any) -> Gateway:
    settings = gateway_settings(upstream.url, **overrides)
    gateway = Gateway(settings)
    await gateway.start()
    return gateway


@pytest.fixture
async def traced(upstream: FakeUpstream) -> AsyncIterator[tuple[Gateway, httpx.AsyncClient]]:
    gateway = await open_gateway(upstream, cache={"enabled": True})
    secret, _ = await gateway.accounts.keys.create(name="ops", team="platform", admin=True)
    transport = httpx.ASGITransport(app=GatewayApp(gateway))
    async with httpx.AsyncClient(
        transport=transport, base_url="http://sophia.test", headers={"Authorization": f"Bearer {secret}"}
    ) as client:
        yield gateway, client
    await gateway.close()


async def spans_of(gateway: Gateway) -> dict[str, list[StoredSpan]]:
    """Every stored span by trace id, after the ledger and the exporters are flushed."""
    await gateway.accounts.ledger.flush()
    assert gateway.tracer is not None
    assert await gateway.tracer.flush()
    store = gateway.tracer.store
    assert store is not None
    rows = await store.db.fetchall(
        "SELECT trace_id FROM sophia_usage WHERE trace_id IS NOT NULL UNION SELECT trace_id FROM sophia_spans"
    )
    return {row["trace_id"]: await store.trace(row["trace_id"]) for row in rows}


@pytest.fixture
def exported(monkeypatch: pytest.MonkeyPatch) -> Collector:
    """What the tracer sends over OTLP, caught in memory (as if an endpoint were set)."""
    collector = Collector()
    monkeypatch.setattr("sophia.observe.tracing.otlp_sender", lambda *args: collector)
    monkeypatch.setattr("sophia.observe.tracing.otlp_exporter", lambda *args: collector.sdk)
    return collector


def root(spans: list[StoredSpan]) -> StoredSpan:
    roots = [s for s in spans if s.parent_id is None or s.parent_id not in {x.span_id for x in spans}]
    assert len(roots) == 1, [s.name for s in spans]
    return roots[0]


async def test_a_chat_call_has_a_span_per_stage_in_both_conventions(traced: Any) -> None:
    gateway, client = traced
    resp = await client.post("/v1/chat/completions", json=chat("vllm/priced", metadata={"task_type": "qa"}))
    assert resp.status_code == 200
    trace_id = resp.headers["x-sophia-trace-id"]
    traces = await spans_of(gateway)
    spans = traces[trace_id]
    top = root(spans)
    assert top.name == "chat vllm/priced" and top.kind == "server" and top.status == "ok"
    assert [s.name for s in spans if s is not top] == [
        "admission",
        "cache.lookup",
        "route",
        "chat vllm/priced",
    ]
    assert all(s.parent_id == top.span_id for s in spans if s is not top)
    assert all(top.start_ns <= s.start_ns <= s.end_ns <= top.end_ns for s in spans)

    row = await gateway.accounts.ledger.find(resp.headers["x-request-id"])
    assert row is not None and row["trace_id"] == trace_id and row["cost_nanos"] > 0
    a = top.attributes
    # OpenTelemetry GenAI (the default, pre-1.37 attribute set) and OpenInference, side by side
    assert a["gen_ai.operation.name"] == "chat" and a["gen_ai.request.model"] == "vllm/priced"
    assert a["gen_ai.response.model"] == "vllm/priced" and a["gen_ai.system"] == "vllm"
    assert "gen_ai.provider.name" not in a
    assert a["openinference.span.kind"] == "CHAIN"
    assert a["gen_ai.usage.input_tokens"] > 0 and a["gen_ai.usage.output_tokens"] > 0
    assert a["sophia.cost.nanodollars"] == row["cost_nanos"]
    assert a["gen_ai.usage.cost"] == row["cost_nanos"] / 1e9
    assert a["sophia.cache"] == "miss" and a["sophia.team"] == "platform" and a["sophia.task_type"] == "qa"
    assert a["sophia.key_id"] == a["user.id"] and a["sophia.route"] == "vllm/priced=ok"
    attempt = spans[-1].attributes
    assert spans[-1].kind == "client"
    assert attempt["openinference.span.kind"] == "LLM" and attempt["llm.model_name"] == "vllm/priced"
    assert attempt["llm.token_count.prompt"] == a["gen_ai.usage.input_tokens"]
    assert (
        attempt["llm.token_count.total"] == a["gen_ai.usage.input_tokens"] + a["gen_ai.usage.output_tokens"]
    )
    assert (
        attempt["llm.cost.total"] == row["cost_nanos"] / 1e9
        and attempt["sophia.cost.nanodollars"] == row["cost_nanos"]
    )
    # content is off by default: no prompt or answer anywhere
    assert not any(k.startswith(("input.", "output.", "llm.input_messages", "gen_ai.prompt")) for s in spans
                   for k in s.attributes)  # fmt: skip


async def test_fallbacks_cache_hits_streams_and_errors_are_traced(traced: Any) -> None:
    gateway, client = traced
    fell = await client.post("/v1/chat/completions", json=chat("test/fallback-500"))
    assert fell.status_code == 200
    first = await client.post("/v1/chat/completions", json=chat("vllm/priced", "cache me"))
    await gateway.cache.drain()  # the answer is stored off the response path
    hit = await client.post("/v1/chat/completions", json=chat("vllm/priced", "cache me"))
    assert hit.headers["x-sophia-cache"] == "exact"
    async with client.stream("POST", "/v1/chat/completions", json=chat("vllm/ok", stream=True)) as streamed:
        assert streamed.status_code == 200
        stream_trace = streamed.headers["x-sophia-trace-id"]
        _ = [chunk async for chunk in streamed.aiter_bytes()]
    failed = await client.post("/v1/chat/completions", json=chat("test/all-bad"))
    assert failed.status_code >= 500
    traces = await spans_of(gateway)

    fallback = traces[fell.headers["x-sophia-trace-id"]]
    attempts = [s for s in fallback if s.kind == "client"]
    failed_tries = [(s.name, s.status) for s in attempts[:-1]]  # retried, then the next model
    assert len(failed_tries) >= 1 and set(failed_tries) == {("chat vllm/status-500", "error")}
    assert (attempts[-1].name, attempts[-1].status) == ("chat ollama/ok", "ok")
    assert attempts[0].attributes["error.type"] and "llm.token_count.prompt" not in attempts[0].attributes
    assert root(fallback).attributes["sophia.attempts"] == len(attempts)

    cached = traces[hit.headers["x-sophia-trace-id"]]
    top = root(cached)
    assert top.attributes["sophia.cache"] == "exact" and top.attributes["sophia.cost.nanodollars"] == 0
    original = await gateway.accounts.ledger.find(first.headers["x-request-id"])
    assert original is not None and top.attributes["sophia.saved.nanodollars"] == original["cost_nanos"]
    assert [s.name for s in cached if s is not top] == ["admission", "cache.lookup"]
    assert next(s for s in cached if s.name == "cache.lookup").attributes["sophia.cache"] == "exact"

    stream = traces[stream_trace]
    assert [s.name for s in stream if s is not root(stream)][-1] == "stream"
    assert "sophia.ttft_ms" in root(stream).attributes

    broken = [spans for spans in traces.values() if root(spans).name == "chat test/all-bad"]
    assert len(broken) == 1 and root(broken[0]).status == "error"
    assert root(broken[0]).attributes["error.type"] == "AllProvidersFailed"


async def test_a_callers_traceparent_is_joined(traced: Any) -> None:
    gateway, client = traced
    resp = await client.post(
        "/v1/chat/completions", json=chat("vllm/ok"), headers={"traceparent": TRACEPARENT}
    )
    assert resp.headers["x-sophia-trace-id"] == TRACEPARENT.split("-")[1]
    spans = (await spans_of(gateway))[TRACEPARENT.split("-")[1]]
    assert root(spans).parent_id == TRACEPARENT.split("-")[2]
    bad = await client.post(
        "/v1/chat/completions", json=chat("vllm/ok"), headers={"traceparent": "00-zz-11-01"}
    )
    assert bad.status_code == 200 and len(bad.headers["x-sophia-trace-id"]) == 32


async def test_latest_genai_conventions_on_opt_in(
    upstream: FakeUpstream, monkeypatch: pytest.MonkeyPatch, exported: Collector
) -> None:
    monkeypatch.setenv("OTEL_SEMCONV_STABILITY_OPT_IN", "http, gen_ai_latest_experimental")
    gateway = await open_gateway(upstream, observe={"capture_content": True})
    try:
        await gateway.chat(chat("vllm/ok", "hello there"), None)
        (local,) = (await spans_of(gateway)).values()
    finally:
        await gateway.close()
    assert root(local).attributes["gen_ai.provider.name"] == "vllm"  # the local store follows the same choice
    assert "gen_ai.input.messages" not in root(local).attributes  # ... but never keeps content
    (top,) = [s for s in exported.spans() if s.root]
    a = top.attributes
    assert a["gen_ai.provider.name"] == "vllm" and "gen_ai.system" not in a
    assert '"hello there"' in a["gen_ai.input.messages"] and "gen_ai.output.messages" in a


async def test_captured_content_is_redacted_even_in_third_party_spans(
    upstream: FakeUpstream, exported: Collector
) -> None:
    gateway = await open_gateway(upstream, observe={"capture_content": True})
    try:
        secret_prompt = f"my key is {FAKE_KEY} and the db is postgres://admin:hunter2hunter@db/prod"  # pragma: allowlist secret (a fake, on purpose)
        await gateway.chat(chat("vllm/ok", secret_prompt), None)
        assert gateway.tracer is not None
        # a span from other instrumentation in the process (say, an HTTP client's) goes the same way
        other = gateway.tracer.provider.get_tracer("third.party")
        with other.start_as_current_span("GET upstream") as span:
            span.set_attribute("http.request.header.authorization", f"Bearer {FAKE_KEY}")
            span.set_attribute("input.value", f"api_key={FAKE_KEY}")
        traces = await spans_of(gateway)
    finally:
        await gateway.close()
    sent = exported.spans()
    everything = repr([(s.name, s.attributes, s.events) for s in sent])
    everything += repr([(s.name, s.attributes) for spans in traces.values() for s in spans])
    assert FAKE_KEY not in everything and "hunter2hunter" not in everything
    (call,) = [s for s in sent if s.name == "chat vllm/ok" and s.root]
    captured = call.attributes
    assert "[REDACTED]" in captured["input.value"] and "and the db is" in captured["input.value"]
    assert captured["llm.input_messages.0.message.role"] == "user"
    assert isinstance(captured["output.value"], str) and captured["output.value"]
    assert [name for name, _ in call.events] == ["gen_ai.content.prompt", "gen_ai.content.completion"]
    assert "[REDACTED]" in call.events[0][1]["gen_ai.prompt"]
    (third,) = [s for s in sent if s.name == "GET upstream"]
    assert third.attributes["http.request.header.authorization"] == "Bearer [REDACTED]"
    local = next(s for spans in traces.values() for s in spans if s.name == "GET upstream")
    assert local.attributes["http.request.header.authorization"] == "Bearer [REDACTED]"


async def test_content_attributes_from_third_parties_are_dropped_when_capture_is_off(
    upstream: FakeUpstream,
) -> None:
    gateway = await open_gateway(upstream)
    try:
        assert gateway.tracer is not None
        with gateway.tracer.provider.get_tracer("third.party").start_as_current_span("llm call") as span:
            span.set_attribute("input.value", "a private prompt")
            span.set_attribute("llm.input_messages.0.message.content", "a private prompt")
            span.set_attribute("llm.model_name", "some-model")
        spans = [s for ss in (await spans_of(gateway)).values() for s in ss]
    finally:
        await gateway.close()
    (third,) = spans
    assert third.attributes == {"llm.model_name": "some-model"}


async def test_one_cost_figure_in_ledger_spans_metrics_and_dashboard(traced: Any) -> None:
    """A replay of mixed traffic: each request's cost is the same integer in the ledger and its spans,
    and the totals of /metrics and the dashboard's data are exactly the ledger's sum."""
    gateway, client = traced
    models = ["vllm/priced", "vllm/ok", "test/fallback-500", "vllm/priced"]
    for i in range(24):
        body = chat(models[i % len(models)], f"question {i % 6}", max_tokens=5 + i % 3)  # repeats after 12
        assert (await client.post("/v1/chat/completions", json=body)).status_code == 200
        await gateway.cache.drain()
    traces = await spans_of(gateway)
    rows = await gateway.accounts.ledger.db.fetchall(
        "SELECT request_id, trace_id, cost_nanos, saved_nanos, served_model FROM sophia_usage WHERE endpoint = 'chat'"
    )
    assert len(rows) == 24 and sum(r["cost_nanos"] for r in rows) > 0
    assert any(r["saved_nanos"] > 0 for r in rows)  # the replay repeats questions: some are cache hits
    for row in rows:
        top = root(traces[row["trace_id"]]).attributes
        assert (
            top["sophia.cost.nanodollars"] == row["cost_nanos"]
            and top["sophia.request_id"] == row["request_id"]
        )
    ledger_total = sum(r["cost_nanos"] for r in rows)

    metrics = (await client.get("/metrics")).text
    samples = [s for family in text_string_to_metric_families(metrics) for s in family.samples]
    metric_total = sum(s.value for s in samples if s.name == "sophia_cost_nanodollars_total")
    assert metric_total == ledger_total

    data = (await client.get("/dashboard/data", params={"window": "24h"})).json()
    assert data["totals"]["cost_nanos"] == ledger_total
    dearest = data["expensive"][0]
    assert dearest["cost_nanos"] == max(r["cost_nanos"] for r in rows)
    trace_page = await client.get(f"/dashboard/traces/{dearest['trace_id']}")
    assert trace_page.status_code == 200 and "chat " in trace_page.text


async def test_old_spans_go_after_their_retention(tmp_path: Any) -> None:
    ledger = await Ledger.open(f"sqlite:///{tmp_path / 'sophia.db'}")
    store = await SpanStore.open(ledger.db, retention=3600)
    try:
        now = 1_800_000_000.0
        for ts, trace_id in ((now - 7200, "a" * 32), (now - 60, "c" * 32)):
            marks = [("admission", 0.0, 0.001, None), ("attempt", 0.001, 0.2, ("vllm/ok", "vllm", "ok"))]
            ledger.record(
                UsageRecord(
                    ts, f"r{ts}", None, "t", "chat", "vllm/ok", "vllm/ok", "vllm", 3, 4, 500, 210.0, None, "miss",
                    trace_id=trace_id, trace=CallTrace(0.0, ts, None, marks),
                )
            )  # fmt: skip
        await ledger.flush()
        third = StoredSpan("a" * 32, "b" * 16, None, "other", "client", int((now - 7200) * 1e9),
                           int((now - 7199) * 1e9), "ok", {"n": 1})  # fmt: skip
        await store.db.executemany(
            "INSERT INTO sophia_spans (trace_id, span_id, parent_id, name, kind, service, start_ns, end_ns, status, "
            "attributes) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [third.row()],
        )
        assert len(await store.trace("a" * 32)) == 4  # root, two stages, the stored span
        recent = await store.trace("c" * 32)
        assert [s.name for s in recent] == ["chat vllm/ok", "admission", "chat vllm/ok"]
        assert recent[0].attributes["sophia.cost.nanodollars"] == 500
        assert await store.prune(now) == 2  # the stored span and the old row's stages
        assert await store.trace("a" * 32) == []
        assert await store.trace("c" * 32) == recent  # rebuilt the same: same ids, same attributes
        row = await ledger.db.fetchone("SELECT cost_nanos FROM sophia_usage WHERE trace_id = ?", ["a" * 32])
        assert row is not None and row["cost_nanos"] == 500  # the ledger row itself stays
    finally:
        await store.close()
        await ledger.close()
