"""Budgets hold across processes (issue 22): two gateway processes, many concurrent callers each, one
key with a $0.05 budget and $0.02 calls, on SQLite, PostgreSQL and Redis. Together they overshoot the
budget by at most one call's cost."""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import orjson
import pytest

from fakes.upstream import USAGE, FakeUpstream
from sophia.accounts.keys import KeyStore
from sophia.storage.testing import TEST_REDIS_URL, postgres_schema

TESTS = Path(__file__).resolve().parents[1]
CALL_USD = (USAGE["prompt_tokens"] * 1000.0 + USAGE["completion_tokens"] * 2000.0) / 1e6
BUDGET = 0.05
CALLERS = 12  # per process


@contextlib.asynccontextmanager
async def storage(kind: str, folder: Path) -> AsyncIterator[tuple[str, str]]:
    """(database url, redis url or "") for one kind of shared budget store."""
    if kind == "postgresql":
        async with postgres_schema() as url:
            yield url, ""
    else:
        yield f"sqlite:///{folder / 'shared.db'}", TEST_REDIS_URL if kind == "redis" else ""


def _worker(upstream: str, db: str, redis: str, secret: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": f"{TESTS}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    return subprocess.Popen(
        [sys.executable, "-m", "fakes.budget_worker", upstream, db, redis, secret, str(CALLERS)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


@pytest.mark.parametrize(
    "kind",
    [
        "sqlite",
        pytest.param("postgresql", marks=pytest.mark.postgres),
        pytest.param("redis", marks=pytest.mark.redis),
    ],
)
async def test_two_processes_overshoot_a_budget_by_at_most_one_call(
    kind: str, upstream: FakeUpstream, tmp_path: Path
) -> None:
    async with storage(kind, tmp_path) as (db_url, redis_url):
        store = await KeyStore.open(db_url)
        try:
            secret, _ = await store.create(name="shared", budget_daily_usd=BUDGET)
        finally:
            await store.close()
        workers = [_worker(upstream.url, db_url, redis_url, secret) for _ in range(2)]
        try:
            loop = asyncio.get_running_loop()
            for w in workers:
                line = await loop.run_in_executor(None, w.stdout.readline)  # type: ignore[union-attr]
                assert line.strip() == "ready", w.stderr.read() if w.stderr else line  # type: ignore[union-attr]
            for w in workers:
                w.stdin.write("go\n")  # type: ignore[union-attr]
                w.stdin.flush()  # type: ignore[union-attr]
            outputs = [await loop.run_in_executor(None, w.communicate) for w in workers]
        finally:
            for w in workers:
                if w.poll() is None:
                    w.kill()
        results = []
        for (out, err), w in zip(outputs, workers, strict=True):
            assert w.returncode == 0, err
            results.append(orjson.loads(out.strip().splitlines()[-1]))
        served = sum(r["ok"] for r in results)
        assert sum(r["ok"] + r["refused"] for r in results) == 2 * CALLERS
        assert served >= 1
        assert served * CALL_USD < BUDGET + CALL_USD, results  # at most one call past the budget
        assert upstream.calls["slow-0.3"] == served
