"""Several gateway processes share keys and the ledger (PostgreSQL) and limits (Redis)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest

from fakes.helpers import chat
from fakes.process import Server, free_port, write_config
from fakes.upstream import FakeUpstream
from sophia.accounts.keys import KeyStore
from sophia.accounts.ledger import Ledger
from sophia.storage.testing import TEST_REDIS_URL, postgres_schema

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.slow]

LIMIT = 12


async def test_two_instances_admit_n_requests_per_minute_in_total(
    upstream: FakeUpstream, tmp_path: Path
) -> None:
    async with postgres_schema() as db_url:
        config = write_config(
            tmp_path / "sophia.yaml",
            {
                "home": str(tmp_path / "home"),
                "providers": {"vllm": {"base_url": f"{upstream.url}/vllm/v1"}, "local": {"enabled": False}},
                "storage": {"database_url": db_url, "redis_url": TEST_REDIS_URL, "key_cache_ttl": 1},
            },
        )
        store = await KeyStore.open(db_url)
        secret, record = await store.create(name="shared", rpm=LIMIT)
        await store.close()

        # one instance with two workers (`--workers 2`) and one with a single worker: three processes
        servers = [Server(config, free_port(), "--workers", "2"), Server(config, free_port())]
        try:
            await asyncio.gather(*(asyncio.to_thread(s.wait_ready) for s in servers))
            headers = {"Authorization": f"Bearer {secret}"}
            async with httpx.AsyncClient(headers=headers, timeout=30) as http:

                async def call(i: int) -> httpx.Response:
                    return await http.post(f"{servers[i % 2].url}/v1/chat/completions", json=chat("vllm/ok"))

                # half the limit one by one, alternating: each instance admits its share
                first = [await call(i) for i in range(LIMIT // 2)]
                # then a concurrent burst of the whole limit at both: only the other half may pass
                burst = await asyncio.gather(*(call(i) for i in range(LIMIT + LIMIT // 2)))
        finally:
            for s in servers:
                s.stop()
        assert [r.status_code for r in first] == [200] * (LIMIT // 2)
        assert {r.request.url.port for r in first} == {s.port for s in servers}
        codes = [r.status_code for r in burst]
        assert codes.count(200) == LIMIT - LIMIT // 2, codes
        assert codes.count(429) == LIMIT
        # and both wrote to the one shared ledger
        ledger = await Ledger.open(db_url)
        try:
            rows = await ledger.report(0, None, ["key"])
        finally:
            await ledger.close()
        assert rows[0]["key"] == record.id
        assert rows[0]["requests"] == 2 * LIMIT
        assert rows[0]["errors"] == LIMIT
