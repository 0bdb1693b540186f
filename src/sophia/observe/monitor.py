"""The monitor ``sophia run`` starts: probe every served server on a schedule, keep the results, judge
each service's uptime SLO and send the alerts that open or close.

``Monitor.tick()`` is one round (probe all, record, evaluate, alert); ``run()`` repeats it every
``observe.probe_interval`` seconds. The probes are the gateway's ``/health``, each MCP server's
metadata document and ``observe.probes``. Beside the uptime SLOs it judges the gateway's own error and
latency SLOs (fed by the ledger's written batches through ``observe_usage``: nothing on the request
path) and, with ``observe.daily_budget_usd``, the day's spend. Alerts go to the log and, with
``observe.webhook_url``, to a Slack-compatible webhook.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

from sophia.accounts.ledger import UsageRecord
from sophia.observe.alerts import Alerts, LogNotifier, Notice, Notifier, WebhookNotifier
from sophia.observe.slo import SLO
from sophia.observe.spend import spend_firings
from sophia.observe.uptime import HttpProbe, Probe, ProbeResult, Uptime
from sophia.settings import ObserveSettings
from sophia.storage.db import Database

log = logging.getLogger("sophia.observe.monitor")


class Monitor:
    def __init__(
        self,
        settings: ObserveSettings,
        db: Database,
        probes: dict[str, Probe],
        *,
        notifiers: list[Notifier] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.uptime = Uptime(db, target=settings.target, clock=clock)
        self.probes = dict(probes)
        for name, url in settings.probes.items():
            self.probes.setdefault(name, HttpProbe(url))
        if notifiers is None:
            notifiers = [LogNotifier()]
            if settings.webhook_url is not None:
                notifiers.append(WebhookNotifier(settings.webhook_url.get_secret_value()))
        self.alerts = Alerts(notifiers)
        self.clock = clock
        self.rounds = 0
        self.db = db
        #: SLOs of the gateway's own traffic, fed by the ledger's written batches (``observe_usage``)
        self.errors = SLO("gateway errors", target=settings.error_target)
        self.latency = SLO("gateway latency", target=settings.latency_target)

    def observe_usage(self, records: Sequence[UsageRecord]) -> None:
        """A ``Ledger.observers`` hook: each gateway request is an event of the error and latency SLOs."""
        for rec in records:
            if rec.endpoint.startswith("mcp:") or rec.outcome == "cancelled":
                continue
            at = rec.ts if rec.ts else self.clock()
            ok = rec.outcome == "ok"
            self.errors.record(at, good=int(ok), bad=int(not ok))
            if ok:
                fast = rec.latency_ms <= self.settings.latency_ms
                self.latency.record(at, good=int(fast), bad=int(not fast))

    async def tick(self) -> tuple[dict[str, ProbeResult], list[Notice]]:
        """One round: probe, record, judge every service's SLO, send what opened or closed."""
        results = await self.uptime.probe(self.probes)
        now = self.clock()
        firings = [f for service in self.probes for f in self.uptime.slo(service).evaluate(now)]
        firings += self.errors.evaluate(now) + self.latency.evaluate(now)
        if self.settings.daily_budget_usd is not None:
            firings += await spend_firings(self.db, self.settings.daily_budget_usd, now)
        notices = await self.alerts.check(firings, now)
        for slo in [*self.uptime.slos.values(), self.errors, self.latency]:
            slo.prune(now)
        self.rounds += 1
        return results, notices

    async def run(self) -> None:
        await asyncio.sleep(min(self.settings.probe_interval, 5.0))  # the servers bind first
        while True:
            try:
                await self.tick()
                if self.rounds % 60 == 0:
                    await self.uptime.prune()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("a monitoring round failed")
            await asyncio.sleep(self.settings.probe_interval)

    async def aclose(self) -> None:
        for probe in self.probes.values():
            close: Any = getattr(probe, "aclose", None)
            if close is not None:
                await close()
        for notifier in self.alerts.notifiers:
            close = getattr(notifier, "aclose", None)
            if close is not None:
                await close()
