"""`generate` through the cache, `cache_stats` (team-scoped for non-admin keys) and `cache_purge` (destructive:
confirmed by the user, team-scoped)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from mcp_support import ALIASES, MODES, Env, answering, connect, text

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
    robot, _ = await gw.accounts.keys.create(name="nightly", team="alpha", metadata={"mcp_unattended": True})
    yield Env(settings, services, gw, upstream, admin, user, user, robot)
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
    assert (out["scope"], out["lookups"], out["hits_exact"], out["hits_semantic"]) == ("team alpha", 2, 1, 0)
    assert out["hit_rate"] == 0.5 and out["saved_usd"] == pytest.approx(first["cost_usd"])


async def test_cache_stats_of_a_non_admin_key_cover_its_own_team_only(cached: Env, mode: str) -> None:
    # The probe: any key read every team's cache figures, which /admin/cache refuses to non-admin keys.
    async with connect(cached, cached.admin, mode) as admin:
        await admin.call_tool("generate", ASK)
        await settle(cached)
        await admin.call_tool("generate", ASK)  # team ops: a miss, then an exact hit
    async with connect(cached, cached.user, mode) as user:
        await user.call_tool("generate", ASK)  # team alpha: its own entry, a miss
        await settle(cached)
        mine = (await user.call_tool("cache_stats", {"since": "1h"})).structured_content
    async with connect(cached, cached.admin, mode) as admin:
        every = (await admin.call_tool("cache_stats", {"since": "1h"})).structured_content
    assert (mine["scope"], mine["lookups"], mine["hits_exact"], mine["saved_usd"]) == ("team alpha", 1, 0, 0)
    assert not {"entries", "false_hits_reported", "false_hit_rate_semantic"} & set(mine)  # store-wide
    assert (every["scope"], every["lookups"], every["hits_exact"], every["entries"]) == ("all teams", 3, 1, 2)
    assert every["false_hits_reported"] == 0


async def test_purge_stays_in_the_teams_scope(cached: Env, mode: str) -> None:
    async with connect(cached, cached.admin, mode) as admin:
        await admin.call_tool("generate", ASK)
    async with connect(cached, cached.unattended, mode) as robot:  # team alpha, made for unattended work
        await robot.call_tool("generate", ASK)
        await settle(cached)
        vague = await robot.call_tool("cache_purge", {"confirm": True})
        assert vague.is_error and "all=true" in text(vague)
        done = await robot.call_tool("cache_purge", {"all": True, "confirm": True})
        assert done.structured_content == {"deleted": 1, "scope": "team alpha"}
        assert (await robot.call_tool("generate", ASK)).structured_content["cache"] == "miss"
    yes = answering("accept")
    async with connect(cached, cached.admin, mode, elicitation_callback=yes) as admin:
        assert (await admin.call_tool("generate", ASK)).structured_content["cache"] == "exact"
        await settle(cached)
        done = await admin.call_tool("cache_purge", {"model": "vllm/priced"})
        assert done.structured_content["deleted"] == 2  # every team's
    assert yes.asked == ["Delete cached answers (model vllm/priced)?"]


async def test_an_agent_cannot_confirm_a_purge_for_the_user(cached: Env, mode: str) -> None:
    # The probe: `confirm: true` (or "yes") purged at once; the agent had said yes for the user.
    async with connect(cached, cached.user, mode) as user:
        await user.call_tool("generate", ASK)
        await settle(cached)
        flagged = await user.call_tool("cache_purge", {"all": True, "confirm": True})
        stringy = await user.call_tool("cache_purge", {"all": True, "confirm": "yes"})
        all_yes = await user.call_tool("cache_purge", {"all": "yes", "confirm": True})
        kept = (await user.call_tool("generate", ASK)).structured_content["cache"]
    assert kept == "exact"  # nothing was deleted
    said = text(flagged)
    assert flagged.is_error and said.startswith("Delete cached answers (team alpha)? Not done:")
    assert "run `sophia cache purge --team alpha` themselves" in said
    assert "mcp_unattended: true" in said
    assert stringy.is_error and "confirm: Input should be a valid boolean" in text(stringy)
    assert all_yes.is_error and "all: Input should be a valid boolean" in text(all_yes)


async def test_with_elicitation_the_user_decides_whatever_confirm_says(cached: Env, mode: str) -> None:
    no = answering("decline")
    async with connect(cached, cached.unattended, mode, elicitation_callback=no) as robot:
        await robot.call_tool("generate", ASK)
        await settle(cached)
        declined = await robot.call_tool("cache_purge", {"all": True, "confirm": True})
        kept = (await robot.call_tool("generate", ASK)).structured_content["cache"]
    assert no.asked == ["Delete cached answers (team alpha)?"]
    assert declined.is_error and "did not confirm" in text(declined) and kept == "exact"
    yes = answering("accept")
    async with connect(cached, cached.user, mode, elicitation_callback=yes) as user:
        done = await user.call_tool("cache_purge", {"tag": "crm.deals"})
        everything = await user.call_tool("cache_purge", {"all": True})
    assert yes.asked == [
        "Delete cached answers (tag crm.deals, team alpha)?",
        "Delete cached answers (team alpha)?",
    ]
    assert done.structured_content == {"deleted": 0, "scope": "tag crm.deals, team alpha"}
    assert everything.structured_content == {"deleted": 1, "scope": "team alpha"}


async def test_cache_tools_say_when_the_cache_is_off(env: Env, mode: str) -> None:
    async with connect(env, env.admin, mode) as client:
        result = await client.call_tool("cache_stats", {})
    assert result.is_error and "cache.enabled: false" in text(result)
