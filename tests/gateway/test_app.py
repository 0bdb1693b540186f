"""The OpenAI-compatible routes, driven in-process through the ASGI app."""

from __future__ import annotations

import httpx
import orjson
import pytest

from fakes.helpers import chat
from fakes.upstream import FakeUpstream
from sophia.gateway.engine import Gateway


async def test_chat_passes_upstream_answer_through_with_cost_headers(
    client: httpx.AsyncClient, upstream: FakeUpstream, gateway: Gateway
) -> None:
    resp = await client.post("/v1/chat/completions", json=chat("vllm/priced", "hello there"))
    assert resp.status_code == 200
    body = resp.json()
    assert body["choices"][0]["message"]["content"] == "echo: hello there"
    assert resp.headers["x-sophia-model"] == "vllm/priced"
    assert resp.headers["x-sophia-provider"] == "vllm"
    # 10 prompt tokens at $1/M + 5 completion tokens at $2/M
    assert float(resp.headers["x-sophia-cost"]) == pytest.approx(10 * 1e-6 + 5 * 2e-6)
    assert resp.headers["x-sophia-cache"] == "miss"
    assert resp.headers["x-request-id"].startswith("req_")
    # the upstream got its own model id and no Sophia-only fields
    seen = upstream.requests[-1]
    assert seen.body["model"] == "priced"
    assert seen.path == "/vllm/v1/chat/completions"


async def test_vendor_auth_header_is_sent_upstream(client: httpx.AsyncClient, upstream: FakeUpstream) -> None:
    resp = await client.post("/v1/chat/completions", json=chat("openai/gpt-4.1-mini"))
    assert resp.status_code == 200
    assert upstream.requests[-1].headers["Authorization"] == "Bearer test-openai-key"
    assert upstream.requests[-1].body["model"] == "gpt-4.1-mini"


async def test_metadata_is_consumed_not_forwarded(
    client: httpx.AsyncClient, upstream: FakeUpstream, gateway: Gateway
) -> None:
    body = chat("vllm/ok", metadata={"task_type": "summarise", "sources": ["crm.deals"]})
    resp = await client.post("/v1/chat/completions", json=body)
    assert resp.status_code == 200
    assert "metadata" not in upstream.requests[-1].body
    await gateway.accounts.ledger.flush()
    rows = await gateway.accounts.ledger.report(0, None, ["task_type"])
    assert [r["task_type"] for r in rows] == ["summarise"]


async def test_bare_upstream_id_resolves_to_an_enabled_vendor(client: httpx.AsyncClient) -> None:
    resp = await client.post("/v1/chat/completions", json=chat("gpt-4.1-mini"))
    assert resp.status_code == 200
    assert resp.headers["x-sophia-model"] == "openai/gpt-4.1-mini"


async def test_models_lists_enabled_models_and_usable_aliases(client: httpx.AsyncClient) -> None:
    resp = await client.get("/v1/models")
    assert resp.status_code == 200
    rows = {m["id"]: m for m in resp.json()["data"]}
    assert rows["openai/gpt-4.1"]["pricing"] == {"input_per_mtok": 2.0, "output_per_mtok": 8.0}
    assert rows["openai/gpt-4.1"]["context_window"] == 1_047_576
    assert rows["test/fallback-500"]["chain"] == ["vllm/status-500", "ollama/ok"]
    assert "anthropic/claude-sonnet-4-5" not in rows  # no key, not enabled
    assert "local" not in rows  # disabled in these settings


async def test_embeddings_route(client: httpx.AsyncClient, upstream: FakeUpstream) -> None:
    resp = await client.post(
        "/v1/embeddings", json={"model": "openai/text-embedding-3-small", "input": ["a", "b"]}
    )
    assert resp.status_code == 200
    assert len(resp.json()["data"]) == 2
    assert float(resp.headers["x-sophia-cost"]) == pytest.approx(4 * 0.02e-6)


async def test_embeddings_refuse_a_chat_model(client: httpx.AsyncClient) -> None:
    resp = await client.post("/v1/embeddings", json={"model": "openai/gpt-4.1", "input": "x"})
    assert resp.status_code == 404
    assert "does not serve embeddings" in resp.json()["error"]["message"]


async def test_health_needs_no_key(gateway: Gateway) -> None:
    from sophia.gateway.app import GatewayApp

    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=GatewayApp(gateway)), base_url="http://t"
    ) as c:
        resp = await c.get("/health")
    assert resp.status_code == 200
    assert resp.json()["status"] == "ok"


async def test_paths_without_v1_prefix_work(client: httpx.AsyncClient) -> None:
    resp = await client.post("/chat/completions", json=chat("vllm/ok"))
    assert resp.status_code == 200


async def test_unknown_route_and_method(client: httpx.AsyncClient) -> None:
    assert (await client.get("/v1/nothing")).status_code == 404
    resp = await client.get("/v1/chat/completions")
    assert resp.status_code == 405
    assert resp.json()["error"]["type"] == "invalid_request_error"


async def test_ledger_records_every_call(client: httpx.AsyncClient, gateway: Gateway) -> None:
    await client.post("/v1/chat/completions", json=chat("vllm/priced"))
    await client.post("/v1/chat/completions", json=chat("vllm/status-400"))
    await gateway.accounts.ledger.flush()
    rows = await gateway.accounts.ledger.report(0, None, ["requested_model"])
    by_model = {r["requested_model"]: r for r in rows}
    assert by_model["vllm/priced"]["requests"] == 1
    assert by_model["vllm/priced"]["prompt_tokens"] == 10
    assert by_model["vllm/priced"]["cost_usd"] == pytest.approx(2e-5)
    assert by_model["vllm/status-400"]["errors"] == 1


async def test_upstream_400_is_passed_to_the_client(client: httpx.AsyncClient) -> None:
    resp = await client.post("/v1/chat/completions", json=chat("vllm/status-400"))
    assert resp.status_code == 400
    err = resp.json()["error"]
    assert "fake failure 400" in err["message"]
    assert "Traceback" not in resp.text


def test_error_bodies_are_openai_shaped() -> None:
    from sophia.errors import RateLimited
    from sophia.gateway.errors import error_body

    status, body = error_body(RateLimited("slow down", retry_after=3))
    assert status == 429
    assert orjson.loads(body) == {
        "error": {
            "message": "slow down",
            "type": "rate_limit_error",
            "param": None,
            "code": "rate_limit_exceeded",
        }
    }
