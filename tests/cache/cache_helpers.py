"""Helpers for the cache tests: chat bodies, contexts, and store-and-ask shortcuts."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from sophia.cache import CacheContext, ResponseCache

MODEL = "sophia/fast"


def chat(question: str, *, system: str = "You are a helpful assistant.", **extra: Any) -> dict[str, Any]:
    return {
        "model": MODEL,
        "messages": [{"role": "system", "content": system}, {"role": "user", "content": question}],
        **extra,
    }


def ctx(tenant: str = "team-a", **kw: Any) -> CacheContext:
    return CacheContext(model=kw.pop("model", MODEL), tenant=tenant, **kw)


async def remember(cache: ResponseCache, question: str, answer: str = "", **kw: Any) -> None:
    """Store ``answer`` (default: an answer naming the question) for a chat request."""
    request = chat(question, **kw.pop("body", {}))
    body = (answer or f"answer to: {question}").encode()
    await cache.store(request, ctx(**kw), body, 12, 34, "openai/gpt-4.1-mini", 0.0002)


async def answer(cache: ResponseCache, question: str, **kw: Any) -> str | None:
    hit = await cache.lookup(chat(question, **kw.pop("body", {})), ctx(**kw))
    return None if hit is None else hit.body.decode()


async def eventually(check: Callable[[], Awaitable[Any]], within: float = 5.0) -> Any:
    """Poll ``check`` until it returns something truthy (other instances hear within milliseconds)."""
    deadline = asyncio.get_running_loop().time() + within
    while True:
        result = await check()
        if result or asyncio.get_running_loop().time() > deadline:
            return result
        await asyncio.sleep(0.02)
