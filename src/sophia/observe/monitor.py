"""The monitor ``sophia run`` starts: probe every served server and configured provider on a schedule,
keep the results, judge each service's uptime SLO and send the alerts that open or close.

``Monitor.tick()`` is one round (probe all, record, evaluate, alert); ``run()`` repeats it every
``observe.probe_interval`` seconds. The probes are the gateway's ``/health``, each MCP server's
metadata document, ``observe.probes`` and, as ``provider:<name>``, every provider the catalogue enabled
(``provider_probes``: the adapter's own check, which spends no tokens, together with the circuit
breakers of the provider's models). Beside the uptime SLOs it judges the gateway's own error and
latency SLOs (fed by the ledger's written batches through ``observe_usage``: nothing on the request
path), with ``observe.daily_budget_usd`` the day's spend, and every ``observe.drift_interval`` the
drift of the gateway's traffic (``last_drift``; a ticket per drifted signal until it stops drifting).
Alerts go to the log and, with ``observe.webhook_url``, to a Slack-compatible webhook;
``active_alerts()`` lists what is open now (the dashboard reads it).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

from sophia.accounts.ledger import UsageRecord
from sophia.errors import SophiaError
from sophia.observe.alerts import Alerts, LogNotifier, Notice, Notifier, WebhookNotifier
from sophia.observe.signals import DriftReport, drift_firings, ledger_drift
from sophia.observe.slo import SLO, Firing
from sophia.observe.spend import spend_firings
from sophia.observe.uptime import HttpProbe, Probe, ProbeResult, Uptime
from sophia.providers.base import Adapter, CallOptions
from sophia.providers.catalog import Catalog
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
        #: the latest drift check of the gateway's traffic (None before the first)
        self.last_drift: DriftReport | None = None
        self._drift_at: float | None = None
        self._drift_firings: list[Firing] = []

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
        firings += await self._drift(now)
        notices = await self.alerts.check(firings, now)
        for slo in [*self.uptime.slos.values(), self.errors, self.latency]:
            slo.prune(now)
        self.rounds += 1
        return results, notices

    async def _drift(self, now: float) -> list[Firing]:
        """The drift tickets: checked every ``drift_interval`` (the first round checks at once) and
        repeated in between, so each stays open until a check finds its signal no longer drifting."""
        if self._drift_at is None or now - self._drift_at >= self.settings.drift_interval:
            self._drift_at = now
            try:
                report = await ledger_drift(self.db, now=now)
            except SophiaError as exc:
                log.warning("the drift check failed; its alerts stay as they were: %s", exc)
            else:
                self.last_drift = report
                self._drift_firings = drift_firings(report, now)
        return self._drift_firings

    def active_alerts(self) -> list[dict[str, Any]]:
        """What fires now, pages first, oldest first: ``slo`` (what it is about), ``severity`` ("page" or
        "ticket"), ``since`` (epoch seconds) and ``detail``."""
        alerts = sorted(self.alerts.active.values(), key=lambda a: (a.severity != "page", a.started_at))
        return [
            {"slo": a.key[0], "severity": a.severity, "since": a.started_at, "detail": a.detail}
            for a in alerts
        ]

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


# -- providers ------------------------------------------------------------------------------------


class BreakerView(Protocol):
    """What the uptime check reads of a model's circuit breaker (``sophia.gateway.breaker.Breaker``)."""

    @property
    def state(self) -> str: ...  # "closed", "half_open" or "open"

    @property
    def opened_at(self) -> float: ...  # time.monotonic() when it last opened

    @property
    def cooldown(self) -> float: ...

    @property
    def last_error(self) -> str | None: ...


Breakers = Callable[[], Mapping[str, BreakerView]]


class ProviderProbe:
    """One provider's uptime check: its adapter's own check (``Adapter.probe``, no tokens) together with
    the circuit breakers of its models, which real traffic moves.

    Down when a breaker of its models is open and still cooling down (the gateway refuses those calls
    now), or when the adapter's check fails. The check runs at most every ``interval`` seconds while it
    passes (rounds in between repeat its verdict, marked as such, and read the breakers afresh) and
    every round while it fails, so that recovery shows at once. An adapter with no check of its own, or
    one that must not make it (a vendor that needs a key and has none), or ``active=False``: judged by
    the breakers alone, where an open breaker is down even after its cooldown (the last calls failed
    and none has succeeded since)."""

    def __init__(
        self,
        name: str,
        adapter: Adapter,
        breakers: Breakers,
        owner: Callable[[str], str],
        *,
        active: bool = True,
        interval: float = 60.0,
        timeout: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.name = name
        self.adapter = adapter
        self.breakers = breakers
        self.owner = owner
        self.active = active
        self.interval = interval
        self.timeout = timeout
        self.clock = clock
        self._last: tuple[float, ProbeResult] | None = None

    async def __call__(self) -> ProbeResult:
        checked = await self._check()
        now = self.clock()
        cooling: list[str] = []
        tripped: list[str] = []
        for model, breaker in self.breakers().items():
            if breaker.state == "open" and self.owner(model) == self.name:
                why = f"{model} ({breaker.last_error or 'failing'})"
                (cooling if now - breaker.opened_at < breaker.cooldown else tripped).append(why)
        if cooling:
            latency = checked.latency_ms if checked is not None else None
            return ProbeResult(False, latency, "circuit open: " + ", ".join(cooling))
        if checked is not None:
            return checked
        if tripped:
            return ProbeResult(False, None, "circuit open, no call since: " + ", ".join(tripped))
        return ProbeResult(True, None, "no check of its own; no circuit open")

    async def _check(self) -> ProbeResult | None:
        """The adapter's verdict (fresh, or the last one that passed within ``interval``); None without one."""
        if not self.active:
            return None
        now = self.clock()
        if self._last is not None and now - self._last[0] < self.interval and self._last[1].ok:
            at, last = self._last
            return ProbeResult(True, None, f"{last.detail} ({now - at:.0f} s ago)")
        started = time.perf_counter()
        options = CallOptions(timeout=self.timeout, first_byte_timeout=self.timeout)
        try:
            async with asyncio.timeout(self.timeout + 1.0):
                note = await self.adapter.probe(options)
        except TimeoutError:
            result = ProbeResult(False, None, f"no answer within {self.timeout:g}s")
        except SophiaError as exc:
            result = ProbeResult(False, (time.perf_counter() - started) * 1000, exc.message)
        else:
            if note is None:
                self.active = False  # this adapter offers no check, or may not make it: it never will
                return None
            result = ProbeResult(True, (time.perf_counter() - started) * 1000, note)
        self._last = (now, result)
        return result


def provider_probes(
    catalog: Catalog,
    breakers: Breakers,
    settings: ObserveSettings,
    *,
    clock: Callable[[], float] = time.monotonic,
) -> dict[str, Probe]:
    """An uptime service ``provider:<name>`` for every provider the catalogue enabled."""

    def owner(model_id: str) -> str:
        info = catalog.models.get(model_id)
        return info.provider if info is not None else model_id.partition("/")[0]

    return {
        f"provider:{name}": ProviderProbe(
            name,
            adapter,
            breakers,
            owner,
            active=settings.probe_providers,
            interval=settings.provider_probe_interval,
            timeout=settings.provider_probe_timeout,
            clock=clock,
        )
        for name, adapter in sorted(catalog.adapters.items())
    }
