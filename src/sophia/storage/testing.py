"""Helpers for tests that run against real databases (used by Sophia's own test suite).

``database_url(kind, folder)`` yields a URL for an empty database of either kind: a SQLite file in
``folder``, or a uniquely named PostgreSQL schema (dropped afterwards) reached through
``?search_path=``, so concurrent test runs never see each other's tables.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

#: the PostgreSQL server the tests use (trust auth on loopback), overridable for other set-ups
TEST_POSTGRES_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
#: the Redis server the tests use
TEST_REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


@asynccontextmanager
async def postgres_schema(url: str = TEST_POSTGRES_URL) -> AsyncIterator[str]:
    """Create a fresh schema, yield a URL whose connections use it, then drop it with everything in it."""
    import asyncpg

    name = f"sophia_test_{secrets.token_hex(6)}"
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(f'CREATE SCHEMA "{name}"')
    finally:
        await conn.close()
    try:
        yield f"{url}{'&' if '?' in url else '?'}search_path={name}"
    finally:
        conn = await asyncpg.connect(url)
        try:
            await conn.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')
        finally:
            await conn.close()


@asynccontextmanager
async def database_url(kind: str, folder: Path) -> AsyncIterator[str]:
    """An empty database of ``kind`` ("sqlite" or "postgresql") for the duration of the block."""
    if kind == "sqlite":
        yield f"sqlite:///{folder / 'sophia.db'}"
    elif kind == "postgresql":
        async with postgres_schema() as url:
            yield url
    else:
        raise ValueError(f"unknown database kind {kind!r}")


async def forget_redis_prefix(prefix: str, url: str = TEST_REDIS_URL) -> None:
    """Delete every key under ``prefix`` (a test's own namespace in the shared Redis)."""
    from redis.asyncio import Redis

    redis = Redis.from_url(url)
    try:
        keys = [k async for k in redis.scan_iter(match=f"{prefix}*", count=1000)]
        if keys:
            await redis.delete(*keys)
    finally:
        await redis.aclose()
