"""Long work: progress at least every 2 s, cancellation within 1 s, confirmation of destructive tools."""

from __future__ import annotations

import asyncio
import itertools
import time

import pytest
from mcp_support import MODES, Env, answering, connect, text

from sophia.mcp.context import ToolContext
from sophia.mcp.tools import Confirmable, Output, ToolGroup

pytestmark = pytest.mark.parametrize("mode", MODES)


async def test_long_generate_sends_progress_at_least_every_two_seconds(env: Env, mode: str) -> None:
    seen: list[tuple[float, float, str | None]] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        seen.append((time.monotonic(), progress, message))

    started = time.monotonic()
    async with connect(env, env.user, mode) as client:
        result = await client.call_tool(
            "generate", {"prompt": "slowly", "model": "vllm/slow-2.5"}, progress_callback=on_progress
        )
    ended = time.monotonic()
    assert not result.is_error, text(result)
    assert len(seen) >= 2
    stamps = [started] + [t for t, _, _ in seen] + [ended]
    assert max(b - a for a, b in itertools.pairwise(stamps)) <= 2.0
    assert [p for _, p, _ in seen] == sorted({p for _, p, _ in seen})  # strictly increasing
    assert seen[0][2] == "asking vllm/slow-2.5"


async def test_cancelling_a_call_stops_the_model_call_within_a_second(env: Env, mode: str) -> None:
    async with connect(env, env.user, mode) as client:
        call = asyncio.create_task(client.call_tool("generate", {"prompt": "x", "model": "vllm/slow-30"}))
        while not env.upstream.requests:
            await asyncio.sleep(0.01)
        cancelled_at = time.monotonic()
        call.cancel()
        with pytest.raises(asyncio.CancelledError):
            await call
        while env.upstream.cancelled == 0 and time.monotonic() - cancelled_at < 1.0:
            await asyncio.sleep(0.01)
        assert env.upstream.cancelled == 1, "the upstream call was not stopped within 1 s"
        assert time.monotonic() - cancelled_at < 1.0
        # the session is still usable afterwards
        assert not (await client.call_tool("list_models", {})).is_error
    await env.gateway.accounts.ledger.flush()
    rows = await env.gateway.accounts.db.fetchall(
        "SELECT endpoint, outcome, status FROM sophia_usage ORDER BY ts"
    )
    assert {"endpoint": "mcp:ai/generate", "outcome": "cancelled", "status": 499} in rows


# -- confirmation -------------------------------------------------------------------------------------

danger = ToolGroup("danger", port=0, title="A test server with one destructive tool")
wiped: list[str] = []


class WipeIn(Confirmable):
    what: str


class WipeOut(Output):
    wiped: str


@danger.tool(title="Wipe", read_only=False, destructive=True, idempotent=True, open_world=False)
async def wipe(ctx: ToolContext, args: WipeIn) -> WipeOut:
    """Delete something for good."""
    await ctx.confirm(f"Delete {args.what} for good?")
    wiped.append(args.what)
    return WipeOut(wiped=args.what)


@pytest.fixture(autouse=True)
def _clean() -> None:
    wiped.clear()


async def test_without_elicitation_an_agents_confirm_is_not_the_users_consent(env: Env, mode: str) -> None:
    # The probe: confirm=true let the agent say yes for the user. A key not made for unattended work
    # is refused with or without it, and told how the user can go ahead.
    async with connect(env, env.user, mode, group=danger) as client:
        unconfirmed = await client.call_tool("wipe", {"what": "cache"})
        agent_says_yes = await client.call_tool("wipe", {"what": "cache", "confirm": True})
    assert wiped == []
    for refused in (unconfirmed, agent_says_yes):
        said = text(refused)
        assert refused.is_error and said.startswith("Delete cache for good? Not done:")
        assert "confirm=true from an agent is not the user's consent" in said
        assert "elicitation" in said and "mcp_unattended: true" in said
        assert "Ask an admin for a key that allows it" not in said  # no contradicting generic hint


async def test_without_elicitation_a_key_made_for_unattended_work_goes_ahead_with_confirm(
    env: Env, mode: str
) -> None:
    async with connect(env, env.unattended, mode, group=danger) as client:
        unconfirmed = await client.call_tool("wipe", {"what": "cache"})
        assert wiped == []
        done = await client.call_tool("wipe", {"what": "cache", "confirm": True})
    assert unconfirmed.is_error and "call wipe again with confirm=true" in text(unconfirmed)
    assert not done.is_error and wiped == ["cache"]


@pytest.mark.parametrize("value", ["yes", "true", 1])
async def test_confirm_is_a_boolean_not_a_truthy_value(env: Env, mode: str, value: object) -> None:
    async with connect(env, env.unattended, mode, group=danger) as client:
        result = await client.call_tool("wipe", {"what": "cache", "confirm": value})
    assert result.is_error and "Invalid arguments for wipe: confirm: Input should be a valid boolean" in text(
        result
    )
    assert wiped == []


async def test_with_elicitation_the_user_is_asked_whatever_confirm_says(env: Env, mode: str) -> None:
    no = answering("decline")
    async with connect(env, env.unattended, mode, group=danger, elicitation_callback=no) as client:
        result = await client.call_tool("wipe", {"what": "index", "confirm": True})
    assert no.asked == ["Delete index for good?"]
    assert result.is_error and "did not confirm" in text(result) and wiped == []


async def test_a_client_with_elicitation_is_asked(env: Env, mode: str) -> None:
    yes = answering("accept")
    async with connect(env, env.user, mode, group=danger, elicitation_callback=yes) as client:
        done = await client.call_tool("wipe", {"what": "index"})
    assert not done.is_error, text(done)
    assert yes.asked == ["Delete index for good?"] and wiped == ["index"]


@pytest.mark.parametrize(("action", "confirm"), [("decline", True), ("cancel", True), ("accept", False)])
async def test_no_answer_but_yes_changes_nothing(env: Env, mode: str, action: str, confirm: bool) -> None:
    async with connect(
        env, env.user, mode, group=danger, elicitation_callback=answering(action, confirm)
    ) as client:
        result = await client.call_tool("wipe", {"what": "index"})
    assert result.is_error and "did not confirm" in text(result)
    assert wiped == []


async def test_tool_definitions_say_the_tool_is_destructive(env: Env, mode: str) -> None:
    async with connect(env, env.user, mode, group=danger) as client:
        (tool,) = (await client.list_tools()).tools
    assert tool.annotations is not None and tool.annotations.destructive_hint is True
    assert tool.input_schema["properties"]["confirm"]["type"] == "boolean"


@pytest.mark.parametrize(("flag", "goes_ahead"), [(True, True), ("true", True), ("yes", False), (1, False)])
async def test_only_a_true_unattended_flag_lets_confirm_through(
    env: Env, mode: str, flag: object, goes_ahead: bool
) -> None:
    secret, _ = await env.gateway.accounts.keys.create(
        name="job", team="alpha", metadata={"mcp_unattended": flag}
    )
    async with connect(env, secret, mode, group=danger) as client:
        result = await client.call_tool("wipe", {"what": "logs", "confirm": True})
    assert result.is_error is not goes_ahead, text(result)
    assert wiped == (["logs"] if goes_ahead else [])
