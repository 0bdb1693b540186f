"""Schema-guided fuzzing of every tool of every registered MCP server (issue 22).

For each tool, arguments are generated from its ``input_schema`` (valid values per JSON-schema type,
enum, bound and ``anyOf``), and most are then mutated: edge values the schema lets through (a
``since`` of year 1 or of 10^20 days, a 200,000-character prompt), values at and past each bound,
missing and unknown arguments, and the generic value mutations of ``fakes.fuzz`` (type confusion,
huge and odd numbers, deep nesting, unicode edge cases). Every call must come back as a tool result
(never a protocol error) whose text holds no traceback and no secret, and never as the internal-error
result (the MCP side's 5xx). ``test_mcp_fuzz.py`` keeps the older, schema-blind fuzz.
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from typing import Any

import pytest
from mcp_support import ALIASES, MODES, Env, connect, text

from fakes.fuzz import SECRET_SHAPE, SEED, mutate_arguments, schema_value
from fakes.helpers import gateway_settings
from fakes.upstream import FakeUpstream
from sophia.container import Services
from sophia.gateway.service import GATEWAY
from sophia.mcp.registry import get_registry

#: calls per tool and protocol era; a quarter of them valid
PER_TOOL = 48
MUTATED = 0.75
#: findings shown in full (the rest are counted)
SHOWN = 12


def _problems(message: str, result: Any, secrets: tuple[str, ...]) -> list[str]:
    found = []
    if "Traceback" in message or 'File "' in message:
        found.append("traceback text")
    if any(s in message for s in secrets) or SECRET_SHAPE.search(message):
        found.append("a secret in the result")
    if "failed with an internal error" in message:
        found.append("internal error (the tool raised an unexpected exception)")
    if result.is_error and not message.strip():
        found.append("an empty error")
    return found


@pytest.fixture(params=[False, True], ids=["cache-off", "cache-on"])
async def any_env(request: pytest.FixtureRequest, env: Env, upstream: FakeUpstream) -> AsyncIterator[Env]:
    """The usual environment (cache off), or one like it with the response cache on (the cache tools
    only reach their code then)."""
    if not request.param:
        yield env
        return
    settings = gateway_settings(upstream.url, aliases=ALIASES, cache={"enabled": True})
    services = Services(settings)
    gw = await services.get(GATEWAY)
    admin, _ = await gw.accounts.keys.create(name="admin", team="ops", admin=True)
    user, _ = await gw.accounts.keys.create(name="dev", team="alpha")
    yield Env(settings, services, gw, upstream, admin, user, user)
    await services.close()


@pytest.mark.parametrize("mode", MODES)
async def test_schema_guided_arguments_always_get_a_clean_tool_result(any_env: Env, mode: str) -> None:
    env = any_env
    rng = random.Random(SEED + MODES.index(mode) + 2 * (env.gateway.cache is not None))
    registry = get_registry()
    secrets = (env.admin, env.user, env.limited)
    findings: dict[str, list[str]] = {}
    calls = 0
    for server in registry.names():
        group = registry.get(server)
        async with connect(env, env.admin, mode, group=group) as client:
            for name, tool in group.tools.items():
                for _ in range(PER_TOOL):
                    args: Any = schema_value(rng, tool.input_schema)
                    how = "valid"
                    if rng.random() < MUTATED:
                        args, how = mutate_arguments(rng, args, tool.input_schema)
                    calls += 1
                    try:
                        result = await client.call_tool(name, args)
                    except Exception as exc:
                        key = f"{server}/{name}: protocol error {type(exc).__name__}"
                        findings.setdefault(key, []).append(f"{how}: {args!r:.300} -> {exc!s:.200}")
                        continue
                    message = text(result)
                    for problem in _problems(message, result, secrets):
                        key = f"{server}/{name}: {problem}"
                        findings.setdefault(key, []).append(f"{how}: {args!r:.300} -> {message[:200]!r}")
    report = [
        f"* {key} ({len(seen)} call(s)), e.g. {seen[0]}" for key, seen in list(findings.items())[:SHOWN]
    ] + [f"* {key} ({len(seen)} call(s))" for key, seen in list(findings.items())[SHOWN:]]
    assert not findings, f"{len(findings)} distinct finding(s) in {calls} calls ({mode}):\n" + "\n".join(
        report
    )
