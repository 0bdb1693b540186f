"""Fixtures for the cache tests: ResponseCaches on a fresh SQLite file (a second one is a restart)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from sophia.cache import CacheSettings, ResponseCache
from sophia.cache.store_local import LocalStore


@pytest.fixture
async def cache_factory(tmp_path: Path) -> AsyncIterator[Callable[..., Any]]:
    """Open ResponseCaches on one SQLite file (so a second one is a restart); closes them at the end."""
    opened: list[ResponseCache] = []

    async def factory(**settings: Any) -> ResponseCache:
        cache = ResponseCache(CacheSettings(**settings), LocalStore(f"sqlite:///{tmp_path / 'cache.db'}"))
        await cache.start()
        opened.append(cache)
        return cache

    yield factory
    for c in opened:
        await c.close()  # idempotent


@pytest.fixture
async def cache(cache_factory: Callable[..., Any]) -> ResponseCache:
    return await cache_factory()
