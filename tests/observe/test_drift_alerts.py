"""Drift alerts from the monitor: a ticket per drifted signal, kept between checks, resolved when it stops.

The ledger holds a steady week and then a day that is slower and misses the cache more; the monitor
runs on a fake clock with ``drift_interval`` of an hour.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from sophia.accounts.ledger import SCHEMA
from sophia.observe.alerts import Notice, WebhookNotifier
from sophia.observe.monitor import Monitor
from sophia.settings import ObserveSettings
from sophia.storage.db import open_database

NOW = 1_800_000_000.0
DAY = 86400.0
COLUMNS = (
    "ts, request_id, team, endpoint, requested_model, served_model, prompt_tokens, completion_tokens, cost_usd, "
    "cost_nanos, latency_ms, cache, saved_usd, outcome, status, attempts"
)
INSERT = f"INSERT INTO sophia_usage ({COLUMNS}) VALUES ({', '.join('?' * 16)})"


def rows(
    rng: np.random.Generator, start: float, end: float, n: int, *, slow: float = 1.0, hits: float = 0.4
) -> list[tuple[Any, ...]]:
    out = []
    for k, ts in enumerate(np.sort(rng.uniform(start, end, n))):
        error = rng.random() < 0.02
        cache = "exact" if rng.random() < hits else "miss"
        model = rng.choice(["openai/gpt-4.1-mini", "anthropic/claude-haiku-4-5", "local"], p=[0.6, 0.3, 0.1])
        out.append(
            (float(ts), f"r{start}-{k}", "sales", "chat", "sophia/auto", str(model), int(rng.integers(50, 400)),
             int(rng.integers(20, 300)), 0.001, 1_000_000, float(rng.lognormal(np.log(400), 0.3)) * slow, cache,
             0.0, "error" if error else "ok", 500 if error else 200, 1)
        )  # fmt: skip
    return out


class Recorder:
    def __init__(self) -> None:
        self.sent: list[Notice] = []

    async def send(self, notice: Notice) -> None:
        self.sent.append(notice)


async def test_a_drifted_day_raises_tickets_that_last_until_it_stops_drifting(tmp_path: Path) -> None:
    db = await open_database(f"sqlite:///{tmp_path / 'sophia.db'}")
    await db.migrate(SCHEMA)
    rng = np.random.default_rng(7)
    await db.executemany(INSERT, rows(rng, NOW - 8 * DAY, NOW - DAY, 6000))
    await db.executemany(INSERT, rows(rng, NOW - DAY, NOW, 1500, slow=1.15, hits=0.3))
    clock = {"now": NOW}
    recorder = Recorder()
    monitor = Monitor(
        ObserveSettings(drift_interval=3600), db, {}, notifiers=[recorder], clock=lambda: clock["now"]
    )
    assert monitor.last_drift is None and monitor.active_alerts() == []

    _, notices = await monitor.tick()
    report = monitor.last_drift
    assert report is not None and report.window == (NOW - DAY, NOW)
    drifted = {r.signal for r in report.drifted}
    assert {"latency_ms", "cache_hit_rate"} <= drifted and "model_mix" not in drifted
    assert sorted(n.alert.title for n in notices) == sorted(f"drift: {s}" for s in drifted)
    assert {(n.state, n.alert.severity) for n in notices} == {("firing", "ticket")}
    latency = next(r for r in report.results if r.signal == "latency_ms")
    assert latency.p_value is not None and latency.extra is not None
    psi = latency.extra["psi"]
    alert = next(a for a in monitor.active_alerts() if a["slo"] == "drift: latency_ms")
    assert alert == {
        "slo": "drift: latency_ms",
        "severity": "ticket",
        "since": NOW,
        "detail": (
            f"ks statistic {latency.statistic:.4g}, p-value {latency.p_value:.3g} (alpha 0.01), "
            f"psi {psi:.4g}; last 24 h (n = {latency.current_n:,}) against the 7 days before "
            f"(n = {latency.reference_n:,})"
        ),
    }
    assert latency.p_value < 0.01 and latency.statistic > 0
    payload = WebhookNotifier.payload(next(n for n in notices if n.alert.title == "drift: latency_ms"))
    assert "ks statistic" in payload["text"] and ":warning:" in payload["text"]

    # Between checks the tickets stay open and nothing is sent again; the ledger is not read again.
    clock["now"] = NOW + 1800
    _, notices = await monitor.tick()
    assert notices == [] and monitor.last_drift is report
    assert {a["slo"] for a in monitor.active_alerts()} == {f"drift: {s}" for s in drifted}

    # An hour on, the last day looks like the week before it: every ticket is resolved.
    await db.execute("DELETE FROM sophia_usage WHERE ts >= ?", (NOW - DAY,))
    await db.executemany(INSERT, rows(np.random.default_rng(8), NOW + 3600 - DAY, NOW + 3600, 1500))
    clock["now"] = NOW + 3600
    _, notices = await monitor.tick()
    assert monitor.last_drift is not report and monitor.last_drift.drifted == []  # type: ignore[union-attr]
    assert sorted((n.state, n.alert.title) for n in notices) == sorted(
        ("resolved", f"drift: {s}") for s in drifted
    )
    assert monitor.active_alerts() == []
    await monitor.aclose()
    await db.close()


async def test_a_failed_drift_check_keeps_the_tickets_it_had(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    db = await open_database(f"sqlite:///{tmp_path / 'sophia.db'}")
    await db.migrate(SCHEMA)
    rng = np.random.default_rng(7)
    await db.executemany(INSERT, rows(rng, NOW - 8 * DAY, NOW - DAY, 6000))
    await db.executemany(INSERT, rows(rng, NOW - DAY, NOW, 1500, slow=1.15, hits=0.3))
    clock = {"now": NOW}
    monitor = Monitor(
        ObserveSettings(drift_interval=3600), db, {}, notifiers=[Recorder()], clock=lambda: clock["now"]
    )
    await monitor.tick()
    before = {a["slo"] for a in monitor.active_alerts()}
    assert "drift: latency_ms" in before
    await db.execute("DROP TABLE sophia_usage")  # the next check cannot read the ledger
    clock["now"] = NOW + 3600
    _, notices = await monitor.tick()
    assert notices == [] and {a["slo"] for a in monitor.active_alerts()} == before
    assert "the drift check failed; its alerts stay as they were" in caplog.text
    await monitor.aclose()
    await db.close()


async def test_the_hourly_check_reads_a_bounded_sample_and_exact_counts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Inside the server the check must not load a week of requests: past ``MAX_SAMPLES`` answered
    requests a window, latency and tokens are a random sample; rates and the model mix stay exact."""
    from sophia.observe import signals

    monkeypatch.setattr(signals, "MAX_SAMPLES", 500)
    db = await open_database(f"sqlite:///{tmp_path / 'sophia.db'}")
    await db.migrate(SCHEMA)
    rng = np.random.default_rng(7)
    week, day = (
        rows(rng, NOW - 8 * DAY, NOW - DAY, 6000),
        rows(rng, NOW - DAY, NOW, 1500, slow=1.15, hits=0.3),
    )
    await db.executemany(INSERT, week + day)
    report = await signals.ledger_drift(db, now=NOW)
    by_signal = {r.signal: r for r in report.results}
    assert (by_signal["latency_ms"].reference_n, by_signal["latency_ms"].current_n) == (500, 500)
    assert by_signal["latency_ms"].drifted  # a 15% slower day still shows in 500 samples
    assert (by_signal["cache_hit_rate"].reference_n, by_signal["cache_hit_rate"].current_n) == (6000, 1500)
    errors = sum(r[13] == "error" for r in day)
    assert by_signal["error_rate"].extra == {"reference": sum(r[13] == "error" for r in week) / 6000,
                                             "current": errors / 1500}  # fmt: skip
    assert by_signal["model_mix"].current_n == 1500 - errors
    await db.close()
