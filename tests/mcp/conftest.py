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
from sophia.gateway.engine import Gateway


@pytest.fixture
async def env(upstream: FakeUpstream) -> AsyncIterator[Env]:
    settings = gateway_settings(upstream.url, aliases=ALIASES)
    gw = Gateway(settings)
    await gw.start()
    assert gw.keys is not None
    admin, _ = await gw.keys.create(name="admin", team="ops", admin=True)
    user, _ = await gw.keys.create(name="dev", team="alpha")
    limited, _ = await gw.keys.create(
        name="narrow",
        team="beta",
        allowed_tools=["ai/list_models", "ai/gen*"],
        allowed_models=["sophia/fast"],
    )
    yield Env(settings, gw, upstream, admin, user, limited)
    await gw.close()
