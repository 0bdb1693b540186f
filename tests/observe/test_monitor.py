"""The monitor's rounds: probes recorded, the uptime SLO judged, a page sent once and a recovery after."""

from __future__ import annotations

from pathlib import Path

from sophia.observe.alerts import Notice
from sophia.observe.monitor import Monitor
from sophia.observe.uptime import ProbeResult
from sophia.settings import ObserveSettings
from sophia.storage.db import open_database


async def test_a_service_down_for_ten_minutes_pages_once_and_recovers(tmp_path: Path) -> None:
    clock = {"now": 1_800_000_000.0}
    up = {"ok": True}
    sent: list[Notice] = []

    class Recorder:
        async def send(self, notice: Notice) -> None:
            sent.append(notice)

    async def probe() -> ProbeResult:
        return ProbeResult(up["ok"], 2.0, "" if up["ok"] else "HTTP 502")

    db = await open_database(f"sqlite:///{tmp_path / 'sophia.db'}")
    monitor = Monitor(
        ObserveSettings(), db, {"gateway": probe}, notifiers=[Recorder()], clock=lambda: clock["now"]
    )
    for minute in range(90):
        up["ok"] = not 30 <= minute < 40
        clock["now"] = 1_800_000_000.0 + minute * 60
        await monitor.tick()
    pages = [(n.state, n.alert.severity) for n in sent if n.alert.severity == "page"]
    assert pages == [("firing", "page"), ("resolved", "page")]
    assert "gateway uptime" in sent[0].text()
    incidents = await monitor.uptime.incidents("gateway")
    assert [(i.cause, i.probes_failed) for i in incidents] == [("HTTP 502", 10)]
    await monitor.aclose()
    await db.close()
