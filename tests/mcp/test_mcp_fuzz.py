"""Fuzzed arguments never become protocol errors, stack traces or leaked secrets: always a tool result."""

from __future__ import annotations

import random
import string
from typing import Any

import pytest
from mcp_support import MODES, Env, connect, text

from sophia.mcp.registry import get_registry

WEIRD_STRINGS = [
    "",
    " ",
    "\x00",
    "😀" * 50,
    "a" * 10_000,
    "'; DROP TABLE sophia_usage; --",
    "${env:HOME}",
    "\ud7ff",
]


def fuzz_value(rng: random.Random, depth: int = 0) -> Any:
    kind = rng.randrange(9 if depth < 3 else 6)
    if kind == 0:
        return None
    if kind == 1:
        return rng.choice([True, False])
    if kind == 2:
        return rng.choice([0, -1, 1, 2**63, -(2**70), 7])
    if kind == 3:
        return rng.choice([0.5, -1e308, 1e308, 3.14])
    if kind == 4:
        return rng.choice(WEIRD_STRINGS)
    if kind == 5:
        return "".join(rng.choice(string.printable) for _ in range(rng.randrange(30)))
    if kind in (6, 7):
        return [fuzz_value(rng, depth + 1) for _ in range(rng.randrange(4))]
    return {
        rng.choice(["role", "content", "x", ""]): fuzz_value(rng, depth + 1) for _ in range(rng.randrange(4))
    }


def fuzz_arguments(rng: random.Random, properties: list[str]) -> dict[str, Any]:
    names = [*properties, "unexpected", "__proto__", ""]
    return {rng.choice(names): fuzz_value(rng) for _ in range(rng.randrange(5))}


@pytest.mark.parametrize("mode", MODES)
async def test_fuzzed_arguments_always_get_a_tool_result(env: Env, mode: str) -> None:
    rng = random.Random(20261126)
    group = get_registry().get("ai")
    async with connect(env, env.admin, mode) as client:
        for name, tool in group.tools.items():
            properties = list(tool.input_schema.get("properties", {}))
            for _ in range(40):
                args = fuzz_arguments(rng, properties)
                result = await client.call_tool(name, args)  # a protocol error would raise here
                message = text(result)
                assert "Traceback" not in message and 'File "' not in message
                assert env.admin not in message and "sk-sophia-" not in message
                if result.is_error:
                    assert message.strip(), f"{name} gave an empty error for {args!r}"
