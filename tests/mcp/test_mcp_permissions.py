"""One permission rule for both faces: an MCP tool and the admin route that does the same thing ask
`sophia.accounts.permissions`, so a key gets the same answer from each (an MCP tool that can narrow its
answer to the key's team does so where the admin API, which cannot, answers 403)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from mcp_support import ALIASES, Env, answering, connect, text

from fakes.helpers import gateway_settings
from fakes.upstream import FakeUpstream
from sophia.accounts.permissions import RULES
from sophia.container import Services
from sophia.gateway.app import GatewayApp
from sophia.gateway.service import GATEWAY


@pytest.fixture
async def faces(upstream: FakeUpstream) -> AsyncIterator[tuple[Env, httpx.AsyncClient]]:
    settings = gateway_settings(upstream.url, aliases=ALIASES, cache={"enabled": True})
    services = Services(settings)
    gw = await services.get(GATEWAY)
    admin, _ = await gw.accounts.keys.create(name="admin", team="ops", admin=True)
    user, _ = await gw.accounts.keys.create(name="dev", team="alpha")
    robot, _ = await gw.accounts.keys.create(
        name="nightly", team="alpha", metadata={"mcp_unattended": "true"}
    )
    env = Env(settings, services, gw, upstream, admin, user, user, robot)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=GatewayApp(gw)), base_url="http://t"
    ) as http:
        yield env, http
    await services.close()


#: (operation, MCP tool and arguments, the admin route, what a non-admin key gets over MCP)
CASES = [
    ("usage.all_teams", "usage_report", {"since": "1h"}, ("GET", "/admin/usage?since=1h", None), "team"),
    ("cache.stats.all_teams", "cache_stats", {"since": "1h"}, ("GET", "/admin/cache?since=1h", None), "team"),
    (
        "cache.purge.all_teams",
        "cache_purge",
        {"all": True},
        ("POST", "/admin/cache/purge", {"all": True}),
        "team",
    ),
    ("providers.health", "provider_health", {}, ("GET", "/admin/providers", None), "refused"),
]


async def both_faces(
    env: Env,
    http: httpx.AsyncClient,
    secret: str,
    tool: str,
    args: dict[str, Any],
    route: tuple[str, str, Any],
) -> tuple[Any, httpx.Response]:
    async with connect(env, secret, elicitation_callback=answering("accept")) as client:
        result = await client.call_tool(tool, args)
    method, path, body = route
    answer = await http.request(method, path, json=body, headers={"Authorization": f"Bearer {secret}"})
    return result, answer


@pytest.mark.parametrize(("operation", "tool", "args", "route", "narrowed"), CASES, ids=[c[0] for c in CASES])
async def test_an_admin_key_may_do_it_on_both_faces(
    faces: tuple[Env, httpx.AsyncClient],
    operation: str,
    tool: str,
    args: dict[str, Any],
    route: Any,
    narrowed: str,
) -> None:
    env, http = faces
    result, answer = await both_faces(env, http, env.admin, tool, args, route)
    assert not result.is_error, text(result)
    assert answer.status_code == 200, answer.text
    if narrowed == "team":
        assert result.structured_content["scope"] in ("all teams", "every cached answer")


@pytest.mark.parametrize("who", ["user", "unattended"])  # a key made for unattended work is no admin key
@pytest.mark.parametrize(("operation", "tool", "args", "route", "narrowed"), CASES, ids=[c[0] for c in CASES])
async def test_a_non_admin_key_gets_the_same_rule_on_both_faces(
    faces: tuple[Env, httpx.AsyncClient],
    who: str,
    operation: str,
    tool: str,
    args: dict[str, Any],
    route: Any,
    narrowed: str,
) -> None:
    env, http = faces
    result, answer = await both_faces(env, http, getattr(env, who), tool, args, route)
    refusal = f"{RULES[operation].what} needs an admin key"
    assert answer.status_code == 403 and answer.json()["error"]["message"] == refusal
    if narrowed == "team":  # the MCP tool narrows to the key's own team instead
        assert not result.is_error, text(result)
        assert result.structured_content["scope"] == "team alpha"
    else:
        assert result.is_error and text(result).startswith(refusal)
