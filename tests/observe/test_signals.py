"""Drift of the gateway's ledger: a week of steady traffic, then a day that is slower and misses the cache."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from fakes.process import sophia, write_config
from sophia.accounts.ledger import SCHEMA
from sophia.observe.signals import ledger_drift
from sophia.storage.db import open_database

NOW = 1_800_000_000.0
COLUMNS = (
    "ts, request_id, team, endpoint, requested_model, served_model, prompt_tokens, completion_tokens, cost_usd, "
    "latency_ms, cache, saved_usd, outcome, status, attempts"
)


def rows(
    rng: np.random.Generator, start: float, end: float, n: int, *, slow: float = 1.0, hits: float = 0.4
) -> list:
    out = []
    for k, ts in enumerate(np.sort(rng.uniform(start, end, n))):
        error = rng.random() < 0.02
        cache = "exact" if rng.random() < hits else "miss"
        model = rng.choice(["openai/gpt-4.1-mini", "anthropic/claude-haiku-4-5", "local"], p=[0.6, 0.3, 0.1])
        out.append(
            (float(ts), f"r{start}-{k}", "sales", "chat", "sophia/auto", str(model), int(rng.integers(50, 400)),
             int(rng.integers(20, 300)), 0.001, float(rng.lognormal(np.log(400), 0.3)) * slow, cache, 0.0,
             "error" if error else "ok", 500 if error else 200, 1)
        )  # fmt: skip
    return out


INSERT = f"INSERT INTO sophia_usage ({COLUMNS}) VALUES ({', '.join('?' * 15)})"


async def test_steady_traffic_rarely_raises_a_false_alarm(tmp_path: Path) -> None:
    """Five checks at alpha 0.01 each: about one steady day in twenty raises one; never most of them."""
    db = await open_database(f"sqlite:///{tmp_path / 'sophia.db'}")
    await db.migrate(SCHEMA)
    alarms = 0
    for seed in range(20):
        await db.execute("DELETE FROM sophia_usage")
        rng = np.random.default_rng(seed)
        await db.executemany(
            INSERT, rows(rng, NOW - 8 * 86400, NOW - 86400, 3000) + rows(rng, NOW - 86400, NOW, 800)
        )
        report = await ledger_drift(db, now=NOW)
        assert report.skipped == {} and len(report.results) == 5
        alarms += bool(report.drifted)
    assert alarms <= 3, alarms
    await db.close()


async def test_a_slower_day_with_fewer_cache_hits_is_flagged(tmp_path: Path) -> None:
    db = await open_database(f"sqlite:///{tmp_path / 'sophia.db'}")
    await db.migrate(SCHEMA)
    rng = np.random.default_rng(7)
    week = rows(rng, NOW - 8 * 86400, NOW - 86400, 6000)
    await db.executemany(INSERT, week + rows(rng, NOW - 86400, NOW, 1500, slow=1.15, hits=0.3))
    shifted = await ledger_drift(db, now=NOW)
    assert {"latency_ms", "cache_hit_rate"} <= {r.signal for r in shifted.drifted}
    assert "model_mix" not in {r.signal for r in shifted.drifted}
    latency = next(r for r in shifted.results if r.signal == "latency_ms")
    assert latency.test == "ks" and latency.p_value is not None and latency.p_value < 0.01
    await db.close()


async def test_a_quiet_ledger_is_skipped_not_stable(tmp_path: Path) -> None:
    db = await open_database(f"sqlite:///{tmp_path / 'sophia.db'}")
    await db.migrate(SCHEMA)
    report = await ledger_drift(db, now=NOW)
    assert report.results == [] and "latency_ms" in report.skipped and "all" in report.skipped
    await db.close()


def test_sophia_observe_drift_runs_on_an_empty_home(tmp_path: Path) -> None:
    config = write_config(tmp_path / "sophia.yaml", {"home": str(tmp_path / "home")})
    result = sophia("observe", "drift", "--config", str(config))
    assert result.returncode == 0, result.stderr
    assert "skipped" in result.stdout
