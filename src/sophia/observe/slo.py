"""Service-level objectives judged by multi-window, multi-burn-rate rules (Google's SRE workbook, ch. 5).

An SLO is a target share of good events (``0.995``: 99.5% of requests succeed) over a period (30
days). Its **error budget** is the rest (0.5%); the **burn rate** over a window is the window's error
share divided by the budget: burning at 1x spends exactly the budget in the period, at 14.4x it spends
2% of a 30-day budget in one hour. A rule fires only when the burn rate is over its threshold in a long
window *and* in a short one: the long window says the budget really is going, the short one says it is
still going now (so an alert also clears soon after the problem does). The workbook's three rules are
the defaults:

=========  ===========  ============  ============
severity   burn rate    long window   short window
=========  ===========  ============  ============
page       14.4x        1 h           5 min
page       6x           6 h           30 min
ticket     1x           3 d           6 h
=========  ===========  ============  ============

Events are counted in one-minute buckets (good, total) kept for the longest window, so a check costs
a sum over at most a few thousand buckets whatever the traffic, and a process restart can reload the
buckets from the store. Windows with no events have no burn rate: silence is not an outage (the uptime
prober makes its own events).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from sophia.errors import InvalidRequest

Severity = Literal["page", "ticket"]
BUCKET = 60.0  # seconds per bucket


@dataclass(frozen=True)
class BurnRule:
    """Fire when the burn rate is at least ``burn`` over both ``long`` and ``short`` (seconds)."""

    severity: Severity
    burn: float
    long: float
    short: float

    @property
    def name(self) -> str:
        return f"{self.burn:g}x over {_span(self.long)} and {_span(self.short)}"


#: the SRE workbook's rules for a 30-day period
WORKBOOK_RULES: tuple[BurnRule, ...] = (
    BurnRule("page", 14.4, 3600, 300),
    BurnRule("page", 6.0, 6 * 3600, 1800),
    BurnRule("ticket", 1.0, 3 * 86400, 6 * 3600),
)


def _span(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)} {unit}"
    return f"{seconds:g} s"


@dataclass
class Firing:
    """A rule whose both windows burn at least its threshold at ``at``."""

    slo: str
    severity: Severity
    rule: str
    burn_long: float
    burn_short: float
    error_ratio: float
    at: float
    #: what to say instead of the burn rates (rules that are not burn rates: spend against a budget)
    detail: str | None = None

    @property
    def key(self) -> tuple[str, str]:
        """What de-duplicates alerts: one per SLO and severity while it lasts."""
        return (self.slo, self.severity)


@dataclass
class SLO:
    """One objective over a stream of good/bad events, counted per minute."""

    name: str
    target: float = 0.995
    rules: Sequence[BurnRule] = WORKBOOK_RULES
    description: str = ""
    _buckets: dict[int, list[int]] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        if not 0.0 < self.target < 1.0:
            raise InvalidRequest(f"SLO {self.name}: the target must be between 0 and 1, not {self.target}")
        if not self.rules:
            raise InvalidRequest(f"SLO {self.name}: at least one burn-rate rule is needed")
        self.keep = max(r.long for r in self.rules)

    @property
    def budget(self) -> float:
        return 1.0 - self.target

    def record(self, at: float, *, good: int = 0, bad: int = 0) -> None:
        """Count ``good`` and ``bad`` events at time ``at`` (epoch seconds)."""
        if good < 0 or bad < 0:
            raise InvalidRequest("event counts cannot be negative")
        slot = self._buckets.setdefault(int(at // BUCKET), [0, 0])
        slot[0] += good
        slot[1] += good + bad

    def load(self, buckets: Iterable[tuple[int, int, int]]) -> None:
        """Buckets kept elsewhere: (minute index, good, total)."""
        for minute, good, total in buckets:
            self._buckets[int(minute)] = [int(good), int(total)]

    def buckets(self) -> Mapping[int, list[int]]:
        return self._buckets

    def prune(self, now: float) -> None:
        """Forget buckets older than the longest window."""
        oldest = int((now - self.keep) // BUCKET)
        for minute in [m for m in self._buckets if m < oldest]:
            del self._buckets[minute]

    def error_ratio(self, now: float, window: float) -> float | None:
        """Share of bad events in the ``window`` seconds up to ``now``; None when there were none."""
        first = int((now - window) // BUCKET) + 1
        last = int(now // BUCKET)
        good = total = 0
        if last - first < len(self._buckets):
            for minute in range(first, last + 1):
                slot = self._buckets.get(minute)
                if slot is not None:
                    good, total = good + slot[0], total + slot[1]
        else:
            for minute, slot in self._buckets.items():
                if first <= minute <= last:
                    good, total = good + slot[0], total + slot[1]
        return None if total == 0 else (total - good) / total

    def burn_rate(self, now: float, window: float) -> float | None:
        ratio = self.error_ratio(now, window)
        return None if ratio is None else ratio / self.budget

    def evaluate(self, now: float) -> list[Firing]:
        """The rules firing at ``now`` (a page rule and a ticket rule may fire together)."""
        out = []
        for rule in self.rules:
            long, short = self.burn_rate(now, rule.long), self.burn_rate(now, rule.short)
            if long is not None and short is not None and long >= rule.burn and short >= rule.burn:
                ratio = self.error_ratio(now, rule.short) or 0.0
                out.append(Firing(self.name, rule.severity, rule.name, long, short, ratio, now))
        return out
