"""Fixtures for the cache tests: ResponseCaches on a fresh database (a second one is a restart).

The local store runs on SQLite and, for the same tests, on the real PostgreSQL (a fresh schema).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from sophia.cache import CacheSettings, ResponseCache
from sophia.cache.store_local import LocalStore
from sophia.storage.testing import database_url


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
async def cache_factory(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Callable[..., Any]]:
    """Open ResponseCaches on one database (so a second one is a restart); closes them at the end."""
    opened: list[ResponseCache] = []
    async with database_url(request.param, tmp_path) as url:

        async def factory(**settings: Any) -> ResponseCache:
            cache = ResponseCache(CacheSettings(**settings), LocalStore(url))
            await cache.start()
            opened.append(cache)
            return cache

        yield factory
        for c in opened:
            await c.close()  # idempotent


@pytest.fixture
async def cache(cache_factory: Callable[..., Any]) -> ResponseCache:
    return await cache_factory()
