"""`generate` through the cache, `cache_stats` and `cache_purge` (destructive: confirmed, team-scoped)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from mcp_support import ALIASES, MODES, Env, connect, text

from fakes.helpers import gateway_settings
from fakes.upstream import FakeUpstream
from sophia.container import Services
from sophia.gateway.service import GATEWAY

pytestmark = pytest.mark.parametrize("mode", MODES)
ASK = {"prompt": "What is our net revenue retention?", "model": "vllm/priced"}


@pytest.fixture
async def cached(upstream: FakeUpstream) -> AsyncIterator[Env]:
    settings = gateway_settings(upstream.url, aliases=ALIASES, cache={"enabled": True})
    services = Services(settings)
    gw = await services.get(GATEWAY)
    admin, _ = await gw.accounts.keys.create(name="admin", team="ops", admin=True)
    user, _ = await gw.accounts.keys.create(name="dev", team="alpha")
    yield Env(settings, services, gw, upstream, admin, user, user)
    await services.close()


async def settle(env: Env) -> None:
    assert env.gateway.cache is not None
    await env.gateway.cache.drain()


async def test_a_repeated_generate_is_a_free_cache_hit_and_counted(cached: Env, mode: str) -> None:
    async with connect(cached, cached.user, mode) as client:
        first = (await client.call_tool("generate", ASK)).structured_content
        await settle(cached)
        again = (await client.call_tool("generate", ASK)).structured_content
        stats = await client.call_tool("cache_stats", {"since": "1h"})
    assert (first["cache"], again["cache"]) == ("miss", "exact")
    assert again["answer"] == first["answer"] and again["cost_usd"] == 0.0
    assert "cache=exact entry=" in again["route"]
    assert cached.upstream.calls["priced"] == 1
    out = stats.structured_content
    assert not stats.is_error, text(stats)
    assert (out["lookups"], out["hits_exact"], out["hits_semantic"], out["entries"]) == (2, 1, 0, 1)
    assert out["hit_rate"] == 0.5 and out["saved_usd"] == pytest.approx(first["cost_usd"])


async def test_purge_asks_for_confirmation_and_stays_in_the_teams_scope(cached: Env, mode: str) -> None:
    async with connect(cached, cached.admin, mode) as admin:
        await admin.call_tool("generate", ASK)
    async with connect(cached, cached.user, mode) as user:
        await user.call_tool("generate", ASK)
        await settle(cached)
        refused = await user.call_tool("cache_purge", {"all": True})
        assert refused.is_error and "confirm=true" in text(refused)
        vague = await user.call_tool("cache_purge", {"confirm": True})
        assert vague.is_error and "all=true" in text(vague)
        done = await user.call_tool("cache_purge", {"all": True, "confirm": True})
        assert done.structured_content == {"deleted": 1, "scope": "team alpha"}
        assert (await user.call_tool("generate", ASK)).structured_content["cache"] == "miss"
    async with connect(cached, cached.admin, mode) as admin:
        assert (await admin.call_tool("generate", ASK)).structured_content["cache"] == "exact"
        await settle(cached)
        done = await admin.call_tool("cache_purge", {"model": "vllm/priced", "confirm": True})
        assert done.structured_content["deleted"] == 2  # every team's


async def test_cache_tools_say_when_the_cache_is_off(env: Env, mode: str) -> None:
    async with connect(env, env.admin, mode) as client:
        result = await client.call_tool("cache_stats", {})
    assert result.is_error and "cache.enabled: false" in text(result)
