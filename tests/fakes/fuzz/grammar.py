"""The grammar's valid shapes: request bodies and the productions (``PRODUCTIONS``) that make cases."""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from typing import Any

from .case import Case
from .values import CHAT_MODELS, EMBED_MODELS, GROUPS, maybe, text_value


def _content(rng: random.Random, images: bool) -> Any:
    if maybe(rng, 0.7):
        return text_value(rng)
    parts: list[Any] = [{"type": "text", "text": text_value(rng)}]
    for _ in range(rng.randint(0, 2)):
        if images and maybe(rng, 0.5):
            url = rng.choice(("https://example.com/cat.png", "data:image/png;base64,iVBORw0KGgo="))
            parts.append(
                {"type": "image_url", "image_url": {"url": url, "detail": rng.choice(("low", "high"))}}
            )
        else:
            parts.append({"type": "text", "text": text_value(rng)})
    return parts


def _tool_call(rng: random.Random, i: int) -> dict[str, Any]:
    args = json.dumps({"city": rng.choice(("Paris", "Oslo")), "days": rng.randint(1, 5)})
    return {"id": f"call_{i}", "type": "function", "function": {"name": "weather", "arguments": args}}


def _message(rng: random.Random, role: str) -> dict[str, Any]:
    if role == "assistant" and maybe(rng, 0.4):
        return {"role": role, "content": None, "tool_calls": [_tool_call(rng, 1)]}
    msg: dict[str, Any] = {"role": role, "content": _content(rng, images=role == "user")}
    if role == "tool":
        msg["tool_call_id"] = "call_1"
    elif role == "function" or (role == "user" and maybe(rng, 0.1)):
        msg["name"] = "weather" if role == "function" else "alice"
    elif role == "assistant" and maybe(rng, 0.1):
        msg["refusal"] = None
    return msg


def chat_body(rng: random.Random) -> dict[str, Any]:
    """A valid chat-completions body."""
    roles = [r for r in ("system", "developer") if maybe(rng, 0.3)]
    for _ in range(rng.randint(0, 2)):
        roles += ["user", rng.choice(("assistant", "assistant", "tool", "function"))]
    roles.append("user")
    body: dict[str, Any] = {"model": rng.choice(CHAT_MODELS), "messages": [_message(rng, r) for r in roles]}
    options: dict[str, Callable[[], Any]] = {
        "tools": lambda: [
            {
                "type": "function",
                "function": {
                    "name": "weather",
                    "description": "Forecast",
                    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
                },
            }
        ],
        "tool_choice": lambda: rng.choice(
            ("auto", "none", "required", {"type": "function", "function": {"name": "weather"}})
        ),
        "parallel_tool_calls": lambda: rng.choice((True, False)),
        "response_format": lambda: rng.choice(
            (
                {"type": "text"},
                {"type": "json_object"},
                {"type": "json_schema", "json_schema": {"name": "a", "schema": {"type": "object"}}},
            )
        ),
        "stop": lambda: rng.choice(("\n", ["END", "###"], [])),
        "stream": lambda: rng.choice((True, False)),
        "stream_options": lambda: {"include_usage": rng.choice((True, False))},
        "n": lambda: rng.randint(1, 3),
        "max_tokens": lambda: rng.randint(1, 4096),
        "max_completion_tokens": lambda: rng.randint(1, 4096),
        "temperature": lambda: rng.choice((0, 0.2, 0.7, 1, 1.5, 2)),
        "top_p": lambda: rng.choice((0, 0.5, 1)),
        "presence_penalty": lambda: rng.uniform(-2, 2),
        "frequency_penalty": lambda: rng.uniform(-2, 2),
        "logit_bias": lambda: {"50256": -100, "15339": rng.randint(-100, 100)},
        "logprobs": lambda: rng.choice((True, False)),
        "top_logprobs": lambda: rng.randint(0, 20),
        "metadata": lambda: _metadata(rng),
        "user": lambda: rng.choice(("alice", "user-42", "")),
        "seed": lambda: rng.randint(0, 2**31),
        "service_tier": lambda: rng.choice(("auto", "default", "flex")),
        "reasoning_effort": lambda: rng.choice(("low", "medium", "high")),
    }
    for name, make in options.items():
        if maybe(rng, 0.15):
            body[name] = make()
    return body


def _metadata(rng: random.Random) -> dict[str, Any]:
    meta: dict[str, Any] = {}
    if maybe(rng, 0.5):
        meta["task_type"] = rng.choice(("qa", "code", "summarize", "chat"))
    if maybe(rng, 0.4):
        meta["sources"] = rng.choice(("crm.deals", "crm.deals,crm.calls", ["crm.deals", "wiki"]))
    if maybe(rng, 0.4):
        meta["cache"] = rng.choice(("off", "exact", "semantic"))
    if maybe(rng, 0.2):
        meta["quality_target"] = rng.choice(("0.9", "1.0", "0.5"))
    if maybe(rng, 0.2):
        meta["max_price"] = rng.choice(("0.01", "0.000001"))
    return meta


def embeddings_body(rng: random.Random) -> dict[str, Any]:
    """A valid embeddings body."""
    kind = rng.randrange(4)
    if kind == 0:
        value: Any = text_value(rng)
    elif kind == 1:
        value = [text_value(rng) for _ in range(rng.randint(1, 4))]
    elif kind == 2:
        value = [rng.randint(0, 50_000) for _ in range(rng.randint(1, 8))]
    else:
        value = [[rng.randint(0, 50_000) for _ in range(rng.randint(1, 5))] for _ in range(rng.randint(1, 3))]
    body: dict[str, Any] = {"model": rng.choice(EMBED_MODELS), "input": value}
    if maybe(rng):
        body["encoding_format"] = rng.choice(("float", "base64"))
    if maybe(rng, 0.15):
        body["dimensions"] = rng.choice((256, 512, 1536))
    if maybe(rng, 0.15):
        body["user"] = "alice"
    if maybe(rng, 0.2):
        body["metadata"] = _metadata(rng)
    return body


def key_create_body(rng: random.Random) -> dict[str, Any]:
    body: dict[str, Any] = {"name": f"fuzz-{rng.randrange(10_000)}"}
    optional: dict[str, Callable[[], Any]] = {
        "owner": lambda: "alice@example.com",
        "team": lambda: rng.choice(("qa", "data", "default")),
        "admin": lambda: False,  # an admin key made by the fuzzer would be harmless, but stays out
        "allowed_models": lambda: rng.choice((["vllm/*"], ["openai/gpt-4.1-mini", "sophia/fast"], [])),
        "allowed_tools": lambda: rng.choice((["ai/*"], ["ai/generate"], [])),
        "budget_daily_usd": lambda: rng.choice((0, 1.5, 100)),
        "budget_monthly_usd": lambda: rng.choice((0, 10, 1000)),
        "rpm": lambda: rng.randint(1, 600),
        "tpm": lambda: rng.randint(1, 100_000),
        "metadata": lambda: {"purpose": "fuzz", "ticket": "22"},
    }
    for name, make in optional.items():
        if maybe(rng):
            body[name] = make()
    return body


def key_update_body(rng: random.Random) -> dict[str, Any]:
    fields = {
        "allowed_models": ["ollama/*"],
        "allowed_tools": ["ai/list_models"],
        "budget_daily_usd": 3.0,
        "budget_monthly_usd": 30,
        "rpm": 120,
        "tpm": 9000,
    }
    return {k: v for k, v in fields.items() if maybe(rng, 0.4)}


def _key_id(rng: random.Random) -> str:
    return rng.choice(
        ("$VICTIM", "$VICTIM", "key_does_not_exist", "0", "%00", "..%2F..%2Fkeys", "%ff%fe", "a" * 300)
    )


def _since(rng: random.Random) -> str:
    return rng.choice(
        ("30d", "1h", "24h", "7d", "30m", "today", "month", "2026-01-01", "2026-11-01T10:00:00%2B02:00")
    )


# -- productions -----------------------------------------------------------------------------------


JSON_CT = ("content-type", "application/json")


def auth(who: str) -> tuple[str, str]:
    return ("authorization", f"Bearer ${who}")


def _caller(rng: random.Random) -> str:
    """Whose key a model call carries: budgets and rate limits take code paths a plain key skips."""
    return rng.choices(("USER", "BUDGET", "ADMIN"), (50, 35, 15))[0]


def chat_case(rng: random.Random) -> tuple[Case, Any]:
    path = rng.choice(("/v1/chat/completions", "/v1/chat/completions", "/chat/completions"))
    return Case("POST", path, (auth(_caller(rng)), JSON_CT), b"", "chat"), chat_body(rng)


def embeddings_case(rng: random.Random) -> tuple[Case, Any]:
    path = rng.choice(("/v1/embeddings", "/embeddings"))
    return Case("POST", path, (auth(_caller(rng)), JSON_CT), b"", "embeddings"), embeddings_body(rng)


def admin_write_case(rng: random.Random) -> tuple[Case, Any]:
    kind = rng.randrange(6)
    heads = (auth("ADMIN"), JSON_CT)
    if kind == 0:
        return Case("POST", "/admin/keys", heads, b"", "admin.create"), key_create_body(rng)
    if kind == 1:
        return Case("PATCH", f"/admin/keys/{_key_id(rng)}", heads, b"", "admin.update"), key_update_body(rng)
    if kind == 2:
        return Case("DELETE", f"/admin/keys/{_key_id(rng)}", (auth("ADMIN"),), b"", "admin.revoke"), None
    if kind == 3:
        spec = rng.choice(
            (
                {"tag": "crm.deals"},
                {"model": "vllm/ok"},
                {"team": "qa"},
                {"all": True},
                {},
                {"tag": "wiki", "team": "qa"},
            )
        )
        return Case("POST", "/admin/cache/purge", heads, b"", "admin.purge"), spec
    if kind == 4:
        tag = rng.choice(("crm.deals", "wiki", "crm.calls"))
        return Case("POST", "/admin/cache/bump", heads, b"", "admin.bump"), {"tag": tag}
    report = {"request_id": rng.choice(("$REQUEST_ID", "$REQUEST_ID", "req_nope"))}
    return Case("POST", "/admin/cache/reports", heads, b"", "admin.report"), report


def _admin_read_case(rng: random.Random) -> tuple[Case, Any]:
    kind = rng.randrange(4)
    if kind == 0:
        query = rng.choice(("", "?include_revoked=1", "?include_revoked=true", "?include_revoked=no"))
        path = "/admin/keys" + query
    elif kind == 1:
        groups = ",".join(rng.sample(GROUPS[:8], rng.randint(1, 3)))
        path = f"/admin/usage?since={_since(rng)}&group_by={groups}"
    elif kind == 2:
        path = f"/admin/cache?since={_since(rng)}"
    else:
        path = "/admin/providers"
    return Case("GET", path, (auth("ADMIN"),), b"", "admin.read"), None


def _probe_case(rng: random.Random) -> tuple[Case, Any]:
    path = rng.choice(("/v1/models", "/models", "/health", "/v1/health"))
    return Case("GET", path, (auth(rng.choice(("USER", "ADMIN"))),), b"", "probe"), None


PRODUCTIONS: tuple[tuple[Callable[[random.Random], tuple[Case, Any]], int], ...] = (
    (chat_case, 45),
    (embeddings_case, 14),
    (admin_write_case, 18),
    (_admin_read_case, 13),
    (_probe_case, 10),
)
