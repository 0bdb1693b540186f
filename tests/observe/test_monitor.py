"""The monitor's rounds: probes recorded, the uptime SLO judged, a page sent once and a recovery after."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

from fakes.helpers import gateway_settings
from fakes.upstream import FakeUpstream
from sophia.container import Services
from sophia.gateway.service import GATEWAY
from sophia.observe.alerts import Notice
from sophia.observe.monitor import Monitor
from sophia.observe.uptime import ProbeResult
from sophia.serve import _monitor, _stop_monitor
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


async def test_sophia_run_hands_its_monitor_to_the_gateway_with_every_provider(
    upstream: FakeUpstream,
) -> None:
    """``serve._monitor`` as ``sophia run`` calls it: the served servers and each enabled provider are
    probed, the gateway holds the monitor for the dashboard, and stopping lets go of both."""
    settings = gateway_settings(upstream.url)
    services = Services(settings)
    try:
        gateway = await services.get(GATEWAY)
        nothing_listens = SimpleNamespace(config=SimpleNamespace(host="0.0.0.0", port=9))
        monitor = await _monitor(settings, services, gateway, [nothing_listens], ["gateway"])
        assert monitor is not None and gateway.monitor is monitor
        accounts = services.accounts
        assert accounts is not None and monitor.observe_usage in accounts.ledger.observers
        assert monitor.db is not accounts.db  # its own connection: a long read never holds up the servers'
        results, _ = await monitor.tick()
        assert sorted(results) == [
            "gateway", "provider:ollama", "provider:openai", "provider:together", "provider:vllm"
        ]  # fmt: skip
        assert not results["gateway"].ok
        # this stand-in serves no model listing: the server answers, so the provider is up
        vllm = results["provider:vllm"]
        assert vllm.ok and vllm.detail == "answers (no model listing: HTTP 404)"
        assert not results["provider:together"].ok  # nothing listens where it points
        # the first round's failures are all these services have seen: each pages and tickets, pages first
        assert [(a["slo"], a["severity"]) for a in monitor.active_alerts()] == [
            ("gateway uptime", "page"),
            ("provider:together uptime", "page"),
            ("gateway uptime", "ticket"),
            ("provider:together uptime", "ticket"),
        ]
        assert all(
            a["since"] > 0 and "100.0% of events failing" in a["detail"] for a in monitor.active_alerts()
        )
        await _stop_monitor(monitor, services, gateway)
        assert gateway.monitor is None and monitor.observe_usage not in accounts.ledger.observers
        assert await accounts.db.fetchone("SELECT 1 AS one") == {"one": 1}  # the servers' connection stays
    finally:
        await services.close()
