"""Uptime: every service probed on a schedule, availability over 1 h / 24 h / 30 d, and incidents.

A probe is one check of one service (``HttpProbe``: a GET that must answer 2xx within a timeout; any
async callable returning ``ProbeResult`` will do, e.g. a provider's health call). ``Uptime`` keeps every
result in Sophia's database (``sophia_uptime``, SQLite or PostgreSQL; 30 days kept) and derives:

* **availability** of a service over a window: the share of its probes that passed (None when it was
  not probed), against its target (99.5% by default);
* **incidents**: a run of failed probes, from the first failure to the first success after it, with the
  cause the first failed probe gave (an open incident has no end yet).

Each result is also an event of the service's SLO (``sophia.observe.slo``), so a service that keeps
failing its probes burns its error budget and pages like any other objective.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sophia.observe.slo import SLO
from sophia.storage.db import Database

SCHEMA = [
    """CREATE TABLE IF NOT EXISTS sophia_uptime (
        service TEXT NOT NULL,
        at DOUBLE PRECISION NOT NULL,
        ok INTEGER NOT NULL,
        latency_ms DOUBLE PRECISION,
        detail TEXT
    )""",
    "CREATE INDEX IF NOT EXISTS sophia_uptime_service_at ON sophia_uptime (service, at)",
]
WINDOWS = {"1h": 3600.0, "24h": 86400.0, "30d": 30 * 86400.0}
KEEP = 30 * 86400.0


@dataclass(frozen=True)
class ProbeResult:
    ok: bool
    latency_ms: float | None = None
    detail: str = ""


@dataclass(frozen=True)
class Incident:
    service: str
    start: float
    end: float | None  # None while it lasts
    cause: str
    probes_failed: int

    @property
    def open(self) -> bool:
        return self.end is None


Probe = Callable[[], Awaitable[ProbeResult]]


class HttpProbe:
    """GET ``url``: up when it answers 2xx within ``timeout``; the cause otherwise (status or error)."""

    def __init__(self, url: str, *, timeout: float = 5.0, headers: dict[str, str] | None = None) -> None:
        import httpx

        self.url = url
        self._client = httpx.AsyncClient(timeout=timeout, trust_env=False, headers=headers or {})

    async def __call__(self) -> ProbeResult:
        import httpx

        started = time.perf_counter()
        try:
            response = await self._client.get(self.url)
        except httpx.TimeoutException:
            return ProbeResult(False, None, "timed out")
        except httpx.HTTPError as exc:
            return ProbeResult(False, None, f"unreachable: {type(exc).__name__}")
        latency = (time.perf_counter() - started) * 1000
        if 200 <= response.status_code < 300:
            return ProbeResult(True, latency)
        return ProbeResult(False, latency, f"HTTP {response.status_code}")

    async def aclose(self) -> None:
        await self._client.aclose()


class Uptime:
    """Probe results kept and read back as availability and incidents."""

    def __init__(
        self, db: Database, *, target: float = 0.995, clock: Callable[[], float] = time.time
    ) -> None:
        self.db = db
        self.target = target
        self.clock = clock
        self.slos: dict[str, SLO] = {}
        self._ready = False

    async def _ensure(self) -> None:
        if not self._ready:
            await self.db.migrate(SCHEMA)
            self._ready = True

    def slo(self, service: str) -> SLO:
        return self.slos.setdefault(service, SLO(f"{service} uptime", target=self.target))

    async def record(self, service: str, result: ProbeResult, at: float | None = None) -> None:
        await self._ensure()
        at = self.clock() if at is None else at
        await self.db.execute(
            "INSERT INTO sophia_uptime (service, at, ok, latency_ms, detail) VALUES (?, ?, ?, ?, ?)",
            (service, at, int(result.ok), result.latency_ms, result.detail[:500]),
        )
        self.slo(service).record(at, good=int(result.ok), bad=int(not result.ok))

    async def probe(self, probes: dict[str, Probe]) -> dict[str, ProbeResult]:
        """Run every probe once, at the same time; a probe that raises counts as a failure."""

        async def one(probe: Probe) -> ProbeResult:
            try:
                return await probe()
            except Exception as exc:  # noqa: BLE001 - a broken probe is a failed check, not a crash
                return ProbeResult(False, None, f"probe failed: {type(exc).__name__}")

        results = dict(zip(probes, await asyncio.gather(*(one(p) for p in probes.values())), strict=True))
        now = self.clock()
        for service, result in results.items():
            await self.record(service, result, now)
        return results

    async def prune(self) -> int:
        await self._ensure()
        return await self.db.execute("DELETE FROM sophia_uptime WHERE at < ?", (self.clock() - KEEP,))

    async def services(self) -> list[str]:
        await self._ensure()
        rows = await self.db.fetchall("SELECT DISTINCT service FROM sophia_uptime ORDER BY service")
        return [str(r["service"]) for r in rows]

    async def availability(self, service: str, window: float) -> float | None:
        await self._ensure()
        row = await self.db.fetchone(
            "SELECT COUNT(*) AS n, SUM(ok) AS up FROM sophia_uptime WHERE service = ? AND at > ?",
            (service, self.clock() - window),
        )
        n = int(row["n"]) if row else 0
        return None if n == 0 else int(row["up"] or 0) / n  # type: ignore[index]

    async def report(self) -> list[dict[str, Any]]:
        """Per service: availability over each window, whether it meets the target, open incident."""
        out = []
        for service in await self.services():
            figures = {name: await self.availability(service, seconds) for name, seconds in WINDOWS.items()}
            incidents = await self.incidents(service, since=self.clock() - WINDOWS["30d"])
            out.append(
                {
                    "service": service,
                    "availability": figures,
                    "target": self.target,
                    "meets_target": all(v is None or v >= self.target for v in figures.values()),
                    "incidents_30d": len(incidents),
                    "open_incident": next((i.cause for i in incidents if i.open), None),
                }
            )
        return out

    async def incidents(self, service: str, *, since: float = 0.0) -> list[Incident]:
        """Runs of failed probes of ``service`` since ``since``, oldest first."""
        await self._ensure()
        rows = await self.db.fetchall(
            "SELECT at, ok, detail FROM sophia_uptime WHERE service = ? AND at >= ? ORDER BY at",
            (service, since),
        )
        return list(_runs(service, [(float(r["at"]), bool(r["ok"]), str(r["detail"] or "")) for r in rows]))


def _runs(service: str, probes: Sequence[tuple[float, bool, str]]) -> list[Incident]:
    out, start, cause, failed = [], None, "", 0
    for at, ok, detail in probes:
        if not ok:
            if start is None:
                start, cause, failed = at, detail or "failed", 0
            failed += 1
        elif start is not None:
            out.append(Incident(service, start, at, cause, failed))
            start = None
    if start is not None:
        out.append(Incident(service, start, None, cause, failed))
    return out
