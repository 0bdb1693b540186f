"""The admin API: keys, usage and provider health, for admin keys only."""

from __future__ import annotations

import httpx

from fakes.helpers import chat
from sophia.gateway.app import GatewayApp
from sophia.gateway.engine import Gateway


async def test_create_use_list_and_revoke_a_key(client: httpx.AsyncClient, gateway: Gateway) -> None:
    resp = await client.post(
        "/admin/keys", json={"name": "ci", "team": "data", "rpm": 60, "budget_daily_usd": 5}
    )
    assert resp.status_code == 201
    created = resp.json()
    assert created["key"].startswith("sk-sophia-")
    assert "hash" not in created
    new_secret, key_id = created["key"], created["id"]

    transport = httpx.ASGITransport(app=GatewayApp(gateway))
    async with httpx.AsyncClient(
        transport=transport, base_url="http://t", headers={"Authorization": f"Bearer {new_secret}"}
    ) as other:
        assert (await other.post("/v1/chat/completions", json=chat("vllm/ok"))).status_code == 200
        # a non-admin key may not use the admin API
        assert (await other.get("/admin/keys")).status_code == 403

    listed = (await client.get("/admin/keys")).json()["data"]
    assert any(k["id"] == key_id and k["team"] == "data" and k["rpm"] == 60 for k in listed)
    assert all(new_secret not in str(k) for k in listed)

    patched = await client.patch(f"/admin/keys/{key_id}", json={"rpm": 10})
    assert patched.status_code == 200
    assert patched.json()["rpm"] == 10

    assert (await client.delete(f"/admin/keys/{key_id}")).status_code == 200
    assert (await client.delete(f"/admin/keys/{key_id}")).status_code == 400
    # revoked through the admin API: refused at once by this process, whatever the cache TTL
    async with httpx.AsyncClient(
        transport=transport, base_url="http://t", headers={"Authorization": f"Bearer {new_secret}"}
    ) as other:
        assert (await other.post("/v1/chat/completions", json=chat("vllm/ok"))).status_code == 401


async def test_invalid_key_spec_is_a_clear_400(client: httpx.AsyncClient) -> None:
    resp = await client.post("/admin/keys", json={"name": "x", "rpm": 0})
    assert resp.status_code == 400
    assert resp.json()["error"]["param"] == "rpm"
    resp = await client.post("/admin/keys", json={"name": "x", "colour": "red"})
    assert resp.status_code == 400


async def test_usage_report_groups_spend(client: httpx.AsyncClient) -> None:
    for model in ("vllm/priced", "vllm/priced", "vllm/ok"):
        await client.post("/v1/chat/completions", json=chat(model, metadata={"task_type": "qa"}))
    resp = await client.get("/admin/usage", params={"since": "1h", "group_by": "model,team,task_type"})
    assert resp.status_code == 200
    rows = resp.json()["data"]
    priced = next(r for r in rows if r["model"] == "vllm/priced")
    assert priced["requests"] == 2
    assert priced["team"] == "qa"
    assert priced["task_type"] == "qa"
    bad = await client.get("/admin/usage", params={"group_by": "colour"})
    assert bad.status_code == 400


async def test_provider_health_shows_breakers(client: httpx.AsyncClient) -> None:
    await client.post("/v1/chat/completions", json=chat("test/fallback-500"))
    health = (await client.get("/admin/providers")).json()
    assert health["models"]["vllm/status-500"]["errors"] == 3
    assert health["models"]["ollama/ok"]["state"] == "closed"


ADMIN_ROUTES = [
    ("GET", "/admin/keys", "managing API keys"),
    ("POST", "/admin/keys", "managing API keys"),
    ("PATCH", "/admin/keys/key_x", "managing API keys"),
    ("DELETE", "/admin/keys/key_x", "managing API keys"),
    ("GET", "/admin/usage", "reading every team's usage"),
    ("GET", "/admin/providers", "reading provider health"),
    ("GET", "/admin/cache", "reading every team's cache statistics"),
    ("POST", "/admin/cache/purge", "purging every team's cached answers"),
    ("POST", "/admin/cache/bump", "bumping a data source's version"),
    ("POST", "/admin/cache/reports", "reporting a false cache hit"),
]


async def test_every_admin_route_names_its_operation_to_a_non_admin_key(gateway: Gateway) -> None:
    """The routes ask sophia.accounts.permissions (as the MCP tools do): 403 and which operation it was,
    for a plain key and for one made for unattended MCP work alike (that flag is no admin right)."""
    plain, _ = await gateway.accounts.keys.create(name="dev", team="alpha")
    robot, _ = await gateway.accounts.keys.create(name="job", team="alpha", metadata={"mcp_unattended": True})
    transport = httpx.ASGITransport(app=GatewayApp(gateway))
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
        for secret in (plain, robot):
            for method, path, what in ADMIN_ROUTES:
                answer = await http.request(
                    method, path, json={}, headers={"Authorization": f"Bearer {secret}"}
                )
                assert answer.status_code == 403, (method, path)
                error = answer.json()["error"]
                assert (error["message"], error["code"]) == (
                    f"{what} needs an admin key",
                    "permission_denied",
                )


async def test_metrics_parse_and_match_the_ledger(client: httpx.AsyncClient, gateway: Gateway) -> None:
    """One cost figure: /metrics shows the dollars, tokens and requests the ledger wrote (parsed with
    prometheus_client's own parser); only a key that may read every team's usage can scrape it."""
    from prometheus_client.parser import text_string_to_metric_families

    for model in ("vllm/priced", "vllm/priced", "vllm/ok"):
        assert (await client.post("/v1/chat/completions", json=chat(model))).status_code == 200
    await gateway.accounts.ledger.flush()
    resp = await client.get("/metrics")
    assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/plain")
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(resp.text)
        for s in family.samples
    }

    def total(name: str, **labels: str) -> float:
        return sum(
            v
            for (n, ls), v in samples.items()
            if n == name and all(dict(ls).get(k) == w for k, w in labels.items())
        )

    rows = await gateway.accounts.ledger.db.fetchall(
        "SELECT cost_nanos, prompt_tokens, completion_tokens FROM sophia_usage WHERE endpoint = 'chat'"
    )
    assert total("sophia_requests_total", endpoint="chat") == len(rows) == 3
    # one cost figure: the ledger's integer nano-dollars, exactly
    assert total("sophia_cost_nanodollars_total") == sum(r["cost_nanos"] for r in rows) > 0
    assert total("sophia_tokens_total") == sum(r["prompt_tokens"] + r["completion_tokens"] for r in rows)
    assert total("sophia_request_latency_seconds_count", endpoint="chat") == 3
    assert total("sophia_breaker_state", state="closed") >= 1  # read at scrape time

    admin_only = await client.get("/admin/metrics")
    assert admin_only.status_code == 200
    transport = httpx.ASGITransport(app=GatewayApp(gateway))
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as anonymous:
        assert (await anonymous.get("/metrics")).status_code == 401
