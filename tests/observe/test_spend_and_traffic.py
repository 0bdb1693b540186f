"""Spend against a daily budget, and the gateway's error and latency SLOs fed by ledger batches."""

from __future__ import annotations

from pathlib import Path

import pytest

from sophia.accounts.ledger import SCHEMA, UsageRecord
from sophia.observe.monitor import Monitor
from sophia.observe.spend import spend_firings
from sophia.settings import ObserveSettings
from sophia.storage.db import open_database

DAY0 = 1_800_057_600.0  # a UTC midnight


@pytest.fixture
async def db(tmp_path: Path):  # type: ignore[no-untyped-def]
    database = await open_database(f"sqlite:///{tmp_path / 'sophia.db'}")
    await database.migrate(SCHEMA)
    yield database
    await database.close()


async def spend(db, at: float, usd: float) -> None:  # type: ignore[no-untyped-def]
    await db.execute(
        "INSERT INTO sophia_usage (ts, request_id, team, endpoint, requested_model, prompt_tokens, completion_tokens, "
        "cost_usd, cost_nanos, latency_ms, cache, saved_usd, outcome, status, attempts) "
        "VALUES (?, ?, 'sales', 'chat', 'm', 1, 1, ?, ?, 1, 'miss', 0, 'ok', 200, 1)",
        (at, f"r{at}", usd, round(usd * 1e9)),
    )


async def test_spend_over_budget_pages_and_a_forecast_over_it_tickets(db) -> None:  # type: ignore[no-untyped-def]
    for minute in range(0, 120):  # $0.10 a minute for two hours: $12 so far, $144 a day at that rate
        await spend(db, DAY0 + minute * 60, 0.10)
    ticket = await spend_firings(db, 100.0, DAY0 + 120 * 60)
    assert [(f.severity, f.rule) for f in ticket] == [("ticket", "forecast over budget")]
    assert "$12.00 spent so far" in (ticket[0].detail or "")
    assert await spend_firings(db, 200.0, DAY0 + 120 * 60) == []  # $144 forecast, under $200
    assert await spend_firings(db, 100.0, DAY0 + 10 * 60) == []  # too early in the day to forecast
    page = await spend_firings(db, 10.0, DAY0 + 120 * 60)
    assert [(f.severity, f.rule) for f in page] == [("page", "over budget")]
    quiet = await spend_firings(db, 100.0, DAY0 + 86400 + 7200)  # the next day: nothing spent yet
    assert quiet == []


def record(at: float, outcome: str = "ok", latency_ms: float = 300.0, endpoint: str = "chat") -> UsageRecord:
    return UsageRecord(
        ts=at, request_id=f"r{at}", key_id=None, team="sales", endpoint=endpoint, requested_model="m",
        served_model="m", provider="p", prompt_tokens=1, completion_tokens=1, cost_nanos=0, latency_ms=latency_ms,
        ttft_ms=None, cache="miss", outcome=outcome,
    )  # fmt: skip


async def test_failing_gateway_traffic_pages_through_the_ledger_hook(db) -> None:  # type: ignore[no-untyped-def]
    clock = {"now": DAY0}
    sent: list = []

    class Recorder:
        async def send(self, notice) -> None:  # type: ignore[no-untyped-def]
            sent.append(notice)

    monitor = Monitor(
        ObserveSettings(latency_ms=1000), db, {}, notifiers=[Recorder()], clock=lambda: clock["now"]
    )
    for minute in range(130):  # errors in minutes 60-69; every request slow from minute 110
        at = DAY0 + minute * 60
        failing = 60 <= minute < 70
        monitor.observe_usage(
            [
                record(at + k, "error" if failing else "ok", latency_ms=3000 if minute >= 110 else 300)
                for k in range(20)
            ]
            + [record(at, "error", endpoint="mcp:bi/run_sql")]  # tool calls are not gateway traffic
        )
        clock["now"] = at + 59
        await monitor.tick()
    titles = [(n.state, n.alert.title, n.alert.severity) for n in sent]
    assert ("firing", "gateway errors is burning its error budget", "page") in titles
    assert ("resolved", "gateway errors is burning its error budget", "page") in titles
    assert (
        "firing",
        "gateway latency is burning its error budget",
        "page",
    ) in titles  # 100% slow from minute 110
