"""End to end: a replay of traffic through the gateway reaches a real Arize Phoenix over OTLP (HTTP and
gRPC) with the same spans and costs as the local span store and the ledger, in both conventions."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
import pytest

from fakes.helpers import chat, gateway_settings
from fakes.upstream import FakeUpstream
from observe.phoenix import PhoenixServer
from sophia.gateway.app import GatewayApp
from sophia.gateway.engine import Gateway
from sophia.observe.spans import SpanStore

pytestmark = pytest.mark.slow


async def replay(gateway: Gateway) -> None:
    """Mixed traffic: priced and free models, a fallback, a cache hit, a stream, a failure."""
    secret, _ = await gateway.accounts.keys.create(name="replay", team="sales", admin=True)
    transport = httpx.ASGITransport(app=GatewayApp(gateway))
    async with httpx.AsyncClient(
        transport=transport, base_url="http://t", headers={"Authorization": f"Bearer {secret}"}
    ) as client:
        for body in (
            chat("vllm/priced", "what is our churn?", max_tokens=20),
            chat("test/fallback-500", "summarise the call"),
            chat("vllm/priced", "what is our churn?", max_tokens=20),  # a cache hit
            chat("vllm/ok", "stream it", stream=True),
            chat("test/all-bad", "this fails"),
        ):
            await client.post("/v1/chat/completions", json=body)
            assert gateway.cache is not None
            await gateway.cache.drain()


@pytest.mark.parametrize("protocol", ["http/protobuf", "grpc"])
async def test_replayed_traffic_reaches_phoenix_with_the_local_stores_spans_and_costs(
    phoenix: PhoenixServer, upstream: FakeUpstream, protocol: str
) -> None:
    project = f"sophia-{protocol.split('/')[0]}-{uuid.uuid4().hex[:8]}"
    endpoint = phoenix.http_endpoint if protocol == "http/protobuf" else phoenix.grpc_endpoint
    settings = gateway_settings(
        upstream.url,
        cache={"enabled": True},
        observe={"otlp_endpoint": endpoint, "otlp_protocol": protocol, "project": project},
    )
    gateway = Gateway(settings)
    await gateway.start()
    try:
        await replay(gateway)
        await gateway.accounts.ledger.flush()
        ledger = await gateway.accounts.ledger.db.fetchall(
            "SELECT trace_id, cost_nanos, cache FROM sophia_usage WHERE endpoint = 'chat'"
        )
    finally:
        await gateway.close()  # flushes the tracer: every span is exported before it returns
    store = await SpanStore.open(settings.database_url)
    try:
        local = {row["trace_id"]: await store.trace(row["trace_id"]) for row in ledger}
    finally:
        await store.close()
    expected = sum(len(spans) for spans in local.values())
    assert len(ledger) == 5 and expected >= 5 * 3

    found = await asyncio.to_thread(phoenix.spans, project, wait_for=expected, timeout=60)
    assert len(found) == expected
    by_trace: dict[str, list[dict[str, Any]]] = {}
    for span in found:
        by_trace.setdefault(span["trace_id"], []).append(span)
    assert set(by_trace) == set(local)
    for row in ledger:
        theirs = by_trace[row["trace_id"]]
        ours = local[row["trace_id"]]
        assert sorted(s["name"] for s in theirs) == sorted(s.name for s in ours)
        assert {s["span_id"] for s in theirs} == {s.span_id for s in ours}
        (top,) = [s for s in theirs if s["parent_id"] is None]
        attrs = top["attributes"]
        assert attrs["sophia.cost.nanodollars"] == row["cost_nanos"]  # the ledger's integer, exactly
        assert attrs["gen_ai.usage.cost"] == pytest.approx(row["cost_nanos"] / 1e9, abs=0)
        assert attrs["openinference.span.kind"] == "CHAIN" and attrs["gen_ai.operation.name"] == "chat"
        assert attrs["sophia.cache"] == row["cache"]
        served = [s for s in theirs if s["attributes"].get("sophia.attempt.outcome") == "ok"]
        if row["cache"] == "miss" and served:
            llm = served[0]["attributes"]
            assert (
                llm["openinference.span.kind"] == "LLM" and llm["llm.cost.total"] == row["cost_nanos"] / 1e9
            )
            assert llm["llm.token_count.prompt"] == llm["gen_ai.usage.input_tokens"] > 0
            assert llm["gen_ai.system"] == llm["llm.provider"]
    statuses = {s["status_code"] for s in found if s["parent_id"] is None}
    assert statuses == {"OK", "ERROR"}  # the failed call is an error in Phoenix too
