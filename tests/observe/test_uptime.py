"""Uptime against a real local HTTP server that goes down and comes back, on a fake clock."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from sophia.observe.uptime import HttpProbe, ProbeResult, Uptime
from sophia.storage.db import open_database

T0 = 1_800_000_000.0


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def uptime(tmp_path: Path) -> AsyncIterator[Uptime]:
    db = await open_database(f"sqlite:///{tmp_path / 'sophia.db'}")
    yield Uptime(db, clock=Clock())
    await db.close()


async def test_an_outage_is_an_incident_with_its_cause_and_counts_against_availability(
    uptime: Uptime, httpserver: HTTPServer
) -> None:
    state = {"up": True}

    def health(_: Request) -> Response:
        return Response("ok") if state["up"] else Response("down", status=503)

    httpserver.expect_request("/health").respond_with_handler(health)
    probe = HttpProbe(httpserver.url_for("/health"))
    clock = uptime.clock
    assert isinstance(clock, Clock)
    for minute in range(120):  # probed every minute for two hours; down from minute 60 to 69
        state["up"] = not 60 <= minute < 70
        clock.now = T0 + minute * 60
        await uptime.probe({"gateway": probe})
    await probe.aclose()

    incidents = await uptime.incidents("gateway")
    assert len(incidents) == 1
    incident = incidents[0]
    assert (incident.start, incident.end) == (T0 + 60 * 60, T0 + 70 * 60) and incident.cause == "HTTP 503"
    assert incident.probes_failed == 10
    assert await uptime.availability("gateway", 3600) == pytest.approx(50 / 60)
    assert await uptime.availability("gateway", 86400) == pytest.approx(110 / 120)
    report = (await uptime.report())[0]
    assert report["service"] == "gateway" and report["meets_target"] is False and report["incidents_30d"] == 1
    assert report["open_incident"] is None
    # the probes are the service's SLO events: ten minutes down burned the hour hot enough to page
    assert any(f.severity == "page" for f in uptime.slo("gateway").evaluate(T0 + 69 * 60 + 59))


async def test_an_unreachable_service_is_down_now_and_a_broken_probe_is_a_failure(uptime: Uptime) -> None:
    async def broken() -> ProbeResult:
        raise RuntimeError("bug in a probe")

    unreachable = HttpProbe("http://127.0.0.1:9/health", timeout=1)
    results = await uptime.probe({"provider:ollama": unreachable, "mcp:data": broken})
    await unreachable.aclose()
    assert not results["provider:ollama"].ok and results["provider:ollama"].detail.startswith("unreachable")
    assert results["mcp:data"].detail == "probe failed: RuntimeError"
    report = {r["service"]: r for r in await uptime.report()}
    assert report["provider:ollama"]["open_incident"].startswith("unreachable")
    assert await uptime.availability("never-probed", 3600) is None


async def test_old_probes_are_pruned_after_thirty_days(uptime: Uptime) -> None:
    clock = uptime.clock
    assert isinstance(clock, Clock)
    await uptime.record("gateway", ProbeResult(True, 3.0), at=T0 - 31 * 86400)
    await uptime.record("gateway", ProbeResult(True, 3.0), at=T0 - 86400)
    assert await uptime.prune() == 1
    assert await uptime.availability("gateway", 30 * 86400) == 1.0
