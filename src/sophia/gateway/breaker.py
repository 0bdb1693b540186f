"""Circuit breakers and health figures, one per provider+model.

closed --(``failures`` consecutive failures)--> open --(``cooldown`` s)--> half-open
half-open lets one probe through: success closes the circuit, failure opens it again.
The same object keeps the figures that ``provider_health`` and the router read: calls, errors,
an exponentially weighted latency, the last error.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from time import monotonic

CLOSED, OPEN, HALF_OPEN = "closed", "open", "half_open"
_EWMA = 0.2  # weight of the newest latency sample


@dataclass(slots=True)
class Breaker:
    threshold: int
    cooldown: float
    state: str = CLOSED
    consecutive_failures: int = 0
    opened_at: float = 0.0
    probing: bool = False
    calls: int = 0
    errors: int = 0
    latency_ms: float | None = None
    last_error: str | None = None
    last_error_at: float | None = None

    def allow(self, now: float | None = None) -> bool:
        """May a call go through now? In half-open state only one probe at a time may."""
        if self.state == CLOSED:
            return True
        now = monotonic() if now is None else now
        if self.state == OPEN:
            if now - self.opened_at < self.cooldown:
                return False
            self.state = HALF_OPEN
            self.probing = False
        if self.probing:
            return False
        self.probing = True
        return True

    def success(self, latency_ms: float) -> None:
        self.calls += 1
        self.latency_ms = (
            latency_ms if self.latency_ms is None else (1 - _EWMA) * self.latency_ms + _EWMA * latency_ms
        )
        self.state = CLOSED
        self.consecutive_failures = 0
        self.probing = False

    def failure(self, error: str, now: float | None = None) -> None:
        now = monotonic() if now is None else now
        self.calls += 1
        self.errors += 1
        self.last_error = error
        self.last_error_at = now
        self.consecutive_failures += 1
        self.probing = False
        if self.state == HALF_OPEN or self.consecutive_failures >= self.threshold:
            self.state = OPEN
            self.opened_at = now

    def release(self) -> None:
        """A call ended without a verdict on the provider (cancelled, or the request itself was wrong)."""
        self.probing = False

    def snapshot(self) -> dict[str, object]:
        return {
            "state": self.state,
            "calls": self.calls,
            "errors": self.errors,
            "error_rate": round(self.errors / self.calls, 4) if self.calls else 0.0,
            "latency_ms": None if self.latency_ms is None else round(self.latency_ms, 2),
            "consecutive_failures": self.consecutive_failures,
            "last_error": self.last_error,
        }


#: breakers kept before the healthy ones are forgotten (a healthy breaker holds nothing worth keeping)
MAX_BREAKERS = 4096


@dataclass
class BreakerBoard:
    threshold: int
    cooldown: float
    breakers: dict[str, Breaker] = field(default_factory=dict)

    def get(self, model_id: str) -> Breaker:
        breaker = self.breakers.get(model_id)
        if breaker is None:
            if len(self.breakers) >= MAX_BREAKERS:  # model names callers made up: forget healthy ones
                for name in [
                    n for n, b in self.breakers.items() if b.state == CLOSED and not b.consecutive_failures
                ]:
                    del self.breakers[name]
            breaker = self.breakers[model_id] = Breaker(self.threshold, self.cooldown)
        return breaker

    def snapshot(self) -> dict[str, dict[str, object]]:
        return {model_id: b.snapshot() for model_id, b in sorted(self.breakers.items())}
