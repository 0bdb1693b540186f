"""Fixtures for the MCP tests: a fake upstream, a started gateway with three keys."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # the tests here import mcp_support by name

from mcp_support import ALIASES, Env

from fakes.helpers import gateway_settings
from fakes.upstream import FakeUpstream
from sophia.container import Services
from sophia.gateway.service import GATEWAY


@pytest.fixture
async def env(upstream: FakeUpstream) -> AsyncIterator[Env]:
    settings = gateway_settings(upstream.url, aliases=ALIASES)
    services = Services(settings)
    gw = await services.get(GATEWAY)
    admin, _ = await gw.accounts.keys.create(name="admin", team="ops", admin=True)
    user, _ = await gw.accounts.keys.create(name="dev", team="alpha")
    limited, _ = await gw.accounts.keys.create(
        name="narrow",
        team="beta",
        allowed_tools=["ai/list_models", "ai/gen*"],
        allowed_models=["sophia/fast"],
    )
    unattended, _ = await gw.accounts.keys.create(
        name="nightly-clean-up", team="alpha", metadata={"mcp_unattended": True}
    )
    yield Env(settings, services, gw, upstream, admin, user, limited, unattended)
    await services.close()
