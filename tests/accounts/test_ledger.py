"""The usage ledger: O(1) recording, batched writes, bounded memory, reports, spend, crash recovery."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Iterable
from pathlib import Path
from typing import Any

import pytest

from sophia.accounts.ledger import Ledger, UsageRecord
from sophia.errors import InvalidRequest, StorageError
from sophia.storage import Database, open_database
from sophia.storage.db import Params
from sophia.storage.testing import database_url

BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
DAY = 86_400.0
T0 = 1_750_000_000.0  # a fixed moment: 2025-06-15 15:06:40 UTC


def usage(n: float = 0, **fields: Any) -> UsageRecord:
    values: dict[str, Any] = {
        "ts": T0 + n,
        "request_id": f"req-{n}",
        "key_id": "key_a",
        "team": "default",
        "endpoint": "chat",
        "requested_model": "sophia/fast",
        "served_model": "openai/gpt-4.1-mini",
        "provider": "openai",
        "prompt_tokens": 10,
        "completion_tokens": 5,
        "cost_nanos": 1_000_000,
        "latency_ms": 100.0,
        "ttft_ms": None,
        "cache": "miss",
    }
    return UsageRecord(**(values | fields))


async def eventually(check: Any, what: str) -> None:
    """Poll ``check`` (async, returns bool) until true; fails only if it never becomes true."""
    for _ in range(600):
        if await check():
            return
        await asyncio.sleep(0.05)
    pytest.fail(f"never happened: {what}")


async def count(db: Database) -> int:
    row = await db.fetchone("SELECT COUNT(*) AS n FROM sophia_usage")
    return int(row["n"]) if row else 0


@pytest.fixture(params=BACKENDS)
async def url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    async with database_url(request.param, tmp_path) as u:
        yield u


@pytest.fixture
async def ledger(url: str) -> AsyncIterator[Ledger]:
    led = await Ledger.open(url, batch_size=4, flush_interval=3600)
    yield led
    await led.close()


async def test_records_round_trip(ledger: Ledger) -> None:
    ledger.record(usage(1, metadata={"user": "ana", "tags": ["x"]}, ttft_ms=12.5, route="cheapest"))
    ledger.record(usage(2, key_id=None, served_model=None, provider=None, outcome="error", status=502))
    assert await ledger.flush() == 2
    assert await ledger.flush() == 0
    rows = await ledger.db.fetchall("SELECT * FROM sophia_usage ORDER BY ts")
    assert rows[0]["metadata"] == '{"user":"ana","tags":["x"]}'
    assert (rows[0]["ttft_ms"], rows[0]["route"], rows[0]["status"]) == (12.5, "cheapest", 200)
    assert (rows[1]["key_id"], rows[1]["served_model"], rows[1]["outcome"]) == (None, None, "error")
    assert rows[1]["metadata"] is None
    assert rows[1]["prompt_tokens"] == 10


async def test_background_flusher_writes_full_batches_and_on_interval(url: str) -> None:
    full = await Ledger.open(url, batch_size=4, flush_interval=3600)
    full.start()
    try:
        for n in range(4):
            full.record(usage(n))
        await eventually(lambda: _has(full.db, 4), "a full batch is written without waiting the interval")
    finally:
        await full.close()
    timed = await Ledger.open(url, batch_size=1000, flush_interval=0.05)
    timed.start()
    try:
        timed.record(usage(9))
        await eventually(lambda: _has(timed.db, 5), "a lone record is written after the interval")
    finally:
        await timed.close()


async def _has(db: Database, n: int) -> bool:
    return await count(db) >= n


async def test_close_writes_what_is_left_and_later_records_are_counted_as_dropped(url: str) -> None:
    led = await Ledger.open(url, batch_size=100, flush_interval=3600)
    led.start()
    for n in range(7):
        led.record(usage(n))
    await led.close()
    led.record(usage(99))  # after close: no error, counted
    assert led.dropped == 1
    again = await Ledger.open(url)
    try:
        assert await count(again.db) == 7
    finally:
        await again.close()


async def test_spend_counts_flushed_and_buffered_records(ledger: Ledger) -> None:
    ledger.record(usage(0, cost_nanos=1_000_000_000))
    ledger.record(usage(10, cost_nanos=2_000_000_000))
    ledger.record(usage(20, cost_nanos=4_000_000_000, key_id="key_b"))
    await ledger.flush()
    ledger.record(usage(30, cost_nanos=8_000_000_000))  # not yet written
    assert await ledger.spend("key_a", T0) == pytest.approx(11.0)
    assert await ledger.spend("key_a", T0 + 5) == pytest.approx(10.0)
    assert await ledger.spend("key_b", T0) == pytest.approx(4.0)
    assert await ledger.spend("key_none", T0) == 0.0


async def test_report_groups_and_sorts_by_cost(ledger: Ledger) -> None:
    rows = [
        usage(0, served_model="m/cheap", provider="p1", team="a", cost_nanos=10_000_000, latency_ms=100),
        usage(1, served_model="m/cheap", provider="p1", team="b", cost_nanos=10_000_000, latency_ms=300),
        usage(
            2, served_model="m/dear", provider="p2", team="a", cost_nanos=500_000_000, saved_nanos=250_000_000
        ),
        usage(3, served_model=None, provider=None, team="a", cost_nanos=0, outcome="error"),
        usage(
            4 + DAY, served_model="m/cheap", provider="p1", team="a", cost_nanos=20_000_000, task_type="code"
        ),
        usage(-DAY, served_model="m/old", cost_nanos=9_000_000_000),  # before `since`
    ]
    for r in rows:
        ledger.record(r)
    by_model = await ledger.report(T0)
    assert [r["model"] for r in by_model] == ["m/dear", "m/cheap", None]
    cheap = by_model[1]
    assert cheap["requests"] == 3
    assert cheap["errors"] == 0
    assert (cheap["prompt_tokens"], cheap["completion_tokens"]) == (30, 15)
    assert cheap["cost_usd"] == pytest.approx(0.04)
    assert by_model[0]["saved_usd"] == pytest.approx(0.25)
    assert by_model[2]["errors"] == 1
    assert set(cheap) == {
        "model", "requests", "errors", "prompt_tokens", "completion_tokens",
        "cost_nanos", "saved_nanos", "cost_usd", "saved_usd", "avg_latency_ms",
    }  # fmt: skip
    assert cheap["cost_nanos"] == 40_000_000 and cheap["cost_usd"] == cheap["cost_nanos"] / 1e9

    two = await ledger.report(T0, T0 + DAY, group_by=("team", "provider"))
    assert [(r["team"], r["provider"], r["requests"]) for r in two] == [
        ("a", "p2", 1), ("a", "p1", 1), ("b", "p1", 1), ("a", None, 1),
    ]  # fmt: skip
    assert two[1]["avg_latency_ms"] == pytest.approx(100.0)

    days = await ledger.report(T0 - DAY, group_by=["day"])
    assert [(r["day"], r["requests"]) for r in days] == [
        ("2025-06-14", 1),
        ("2025-06-15", 4),
        ("2025-06-16", 1),
    ]
    total = await ledger.report(T0, group_by=())
    assert len(total) == 1
    assert total[0]["requests"] == 5
    assert await ledger.report(T0 + 10 * DAY) == []
    by_all = await ledger.report(T0, group_by=["key", "endpoint", "task_type", "requested_model"])
    assert {r["task_type"] for r in by_all} == {None, "code"}
    assert by_all[0]["key"] == "key_a"


@pytest.mark.parametrize("bad", [["model; DROP TABLE sophia_usage"], ["cost_usd"], ["model", "nope"]])
async def test_report_refuses_unknown_groups(ledger: Ledger, bad: list[str]) -> None:
    with pytest.raises(InvalidRequest) as caught:
        await ledger.report(T0, group_by=bad)
    assert caught.value.param == "group_by"


class FlakyDatabase(Database):
    """A real database whose batch writes fail while ``down`` is set."""

    def __init__(self, inner: Database) -> None:
        self.inner, self.dialect, self.down = inner, inner.dialect, True

    async def execute(self, sql: str, params: Params = ()) -> int:
        return await self.inner.execute(sql, params)

    async def executemany(self, sql: str, rows: Iterable[Params]) -> None:
        if self.down:
            raise StorageError("database is down (test)")
        await self.inner.executemany(sql, rows)

    async def fetchall(self, sql: str, params: Params = ()) -> list[dict[str, Any]]:
        return await self.inner.fetchall(sql, params)

    async def fetchone(self, sql: str, params: Params = ()) -> dict[str, Any] | None:
        return await self.inner.fetchone(sql, params)

    async def migrate(self, statements: Any) -> None:
        await self.inner.migrate(statements)

    async def ensure_columns(self, table: str, columns: dict[str, str]) -> None:
        await self.inner.ensure_columns(table, columns)

    async def transaction(self, steps: Any, *, lock: str | None = None) -> list[int]:
        if self.down:
            raise StorageError("database is down (test)")
        return await self.inner.transaction(steps, lock=lock)

    async def close(self) -> None:
        await self.inner.close()


async def test_database_outage_keeps_50_batches_then_drops_oldest(
    url: str, caplog: pytest.LogCaptureFixture
) -> None:
    inner = await open_database(url)
    flaky = FlakyDatabase(inner)
    led = await Ledger.open(flaky, batch_size=2, flush_interval=3600)
    try:
        with caplog.at_level(logging.WARNING, logger="sophia.accounts.ledger"):
            for n in range(130):
                led.record(usage(n))  # never raises, never blocks
            with pytest.raises(StorageError):
                await led.flush()
        assert led.dropped == 30
        assert len([r for r in caplog.records if "dropping" in r.message]) == 1  # at most once a minute
        flaky.down = False
        assert await led.flush() == 100
        rows = await inner.fetchall("SELECT request_id FROM sophia_usage ORDER BY ts")
        assert [r["request_id"] for r in rows] == [f"req-{n}" for n in range(30, 130)]
    finally:
        await led.close()
        await inner.close()


async def test_background_flusher_retries_after_an_outage(url: str) -> None:
    inner = await open_database(url)
    flaky = FlakyDatabase(inner)
    led = await Ledger.open(flaky, batch_size=2, flush_interval=0.05)
    led.start()
    try:
        for n in range(5):
            led.record(usage(n))
        await asyncio.sleep(0.2)
        flaky.down = False
        await eventually(lambda: _has(inner, 5), "the buffered records are written once the database is back")
        assert await count(inner) == 5
    finally:
        await led.close()
        await inner.close()


async def test_cancelled_flush_neither_loses_nor_duplicates(ledger: Ledger) -> None:
    for n in range(10):
        ledger.record(usage(n))
    flushing = asyncio.ensure_future(ledger.flush())
    await asyncio.sleep(0)
    flushing.cancel()
    with pytest.raises(asyncio.CancelledError):
        await flushing
    await ledger.flush()
    assert await count(ledger.db) == 10


_WRITER = """
import asyncio, sys, time
from sophia.accounts.ledger import Ledger, UsageRecord

async def main(url, batch):
    ledger = await Ledger.open(url, batch_size=batch, flush_interval=3600)
    done = 0
    while True:
        for i in range(batch):
            ledger.record(UsageRecord(time.time(), f"r{done}-{i}", "key_k", "t", "chat", "m", "m", "p",
                                      1, 1, 1_000_000, 1.0, None, "miss", metadata={"i": i}))
        await ledger.flush()
        done += 1
        print(done, flush=True)

asyncio.run(main(sys.argv[1], int(sys.argv[2])))
"""


async def test_writer_killed_mid_run_loses_at_most_its_unflushed_batch(url: str) -> None:
    batch = 50
    setup = await Ledger.open(url)  # create the schema before the writer starts
    await setup.close()

    def run_and_kill() -> tuple[int, str]:
        with subprocess.Popen(
            [sys.executable, "-c", _WRITER, url, str(batch)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        ) as proc:
            assert proc.stdout is not None
            flushed = 0
            while flushed < 20:
                line = proc.stdout.readline()
                if not line:
                    break
                flushed = int(line)
            os.kill(proc.pid, signal.SIGKILL)
            _, stderr = proc.communicate()
            assert proc.returncode == -signal.SIGKILL, stderr
            return flushed, stderr

    flushed, stderr = await asyncio.to_thread(run_and_kill)
    assert flushed >= 20, stderr
    reopened = await Ledger.open(url)
    try:
        rows = await count(reopened.db)
        assert rows >= flushed * batch
        assert rows % batch == 0
        if reopened.db.dialect == "sqlite":
            assert await reopened.db.fetchone("PRAGMA integrity_check") == {"integrity_check": "ok"}
        reopened.record(usage(1))
        await reopened.flush()
        assert await count(reopened.db) == rows + 1
    finally:
        await reopened.close()
