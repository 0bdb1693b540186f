"""Turning the rounds' measurements into medians, same-run ratios and a markdown table.

Every figure is the median over the rounds, with the range (lowest-highest) in brackets.
Ratios are taken within one round, where the targets ran alternately under the same
machine conditions, and their median is reported: absolute figures drift between runs on
a shared machine, same-run ratios hold.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from load import WrkResult

BASELINE = "portkey"  # The ratios' denominator: the fastest peer.
FLOOR = "nginx"  # The upstream called directly; "added latency" is over this.
MICROSECONDS_PER_MILLISECOND = 1000
RANGE = "\N{EN DASH}"  # between the lowest and the highest round
MISSING = "-"
LONG_MS = 100  # from here on, one decimal of a millisecond is enough

# Sophia's goals, from the issue that asked for this benchmark.
GOAL_RATIO_VS_BASELINE = 4.0
GOAL_ADDED_P50_MS = 0.4
GOAL_RSS_MIB = 150.0


@dataclass(frozen=True)
class Measurement:
    target: str
    connections: int
    round: int
    wrk: WrkResult
    rss_mib: float

    def as_dict(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "connections": self.connections,
            "round": self.round,
            "rss_mib": round(self.rss_mib, 1),
            **self.wrk.as_dict(),
        }


@dataclass(frozen=True)
class Spread:
    """Median and range of one figure over the rounds."""

    median: float
    low: float
    high: float

    @classmethod
    def of(cls, values: Iterable[float]) -> Spread | None:
        values = list(values)
        if not values:
            return None
        return cls(statistics.median(values), min(values), max(values))

    def as_dict(self) -> dict[str, float]:
        return {"median": self.median, "min": self.low, "max": self.high}


def _values(measurements: list[Measurement], target: str, connections: int, figure: str) -> dict[int, float]:
    """One figure per round, for one target at one connection level."""
    found: dict[int, float] = {}
    for m in measurements:
        if m.target == target and m.connections == connections:
            found[m.round] = m.rss_mib if figure == "rss_mib" else float(getattr(m.wrk, figure))
    return found


def _paired(
    measurements: list[Measurement], target: str, other: str, connections: int, figure: str
) -> tuple[dict[int, float], dict[int, float]]:
    mine = _values(measurements, target, connections, figure)
    theirs = _values(measurements, other, connections, figure)
    rounds = mine.keys() & theirs.keys()
    return {r: mine[r] for r in rounds}, {r: theirs[r] for r in rounds}


def ratio_to_baseline(measurements: list[Measurement], target: str, connections: int) -> Spread | None:
    """requests/s of `target` over the baseline's, round by round."""
    mine, theirs = _paired(measurements, target, BASELINE, connections, "requests_per_second")
    return Spread.of(mine[r] / theirs[r] for r in mine if theirs[r] > 0)


def added_p50_us(measurements: list[Measurement], target: str, connections: int) -> Spread | None:
    """p50 of `target` minus nginx direct's, round by round."""
    mine, floor = _paired(measurements, target, FLOOR, connections, "p50_us")
    return Spread.of(mine[r] - floor[r] for r in mine)


def summarise(measurements: list[Measurement], targets: list[str], levels: list[int]) -> dict[str, Any]:
    """Per target: per level spreads of req/s, p50, p99 and RSS; ratio and added p50."""
    summary: dict[str, Any] = {}
    for target in targets:
        per_level: dict[str, Any] = {}
        for level in levels:
            figures = {
                name: Spread.of(_values(measurements, target, level, name).values())
                for name in ("requests_per_second", "p50_us", "p99_us", "rss_mib", "errors")
            }
            figures["ratio_vs_" + BASELINE] = ratio_to_baseline(measurements, target, level)
            figures["added_p50_us_vs_" + FLOOR] = added_p50_us(measurements, target, level)
            per_level[str(level)] = {name: s.as_dict() for name, s in figures.items() if s is not None}
        rss = Spread.of(m.rss_mib for m in measurements if m.target == target)
        summary[target] = {"levels": per_level, "rss_mib": rss.as_dict() if rss else None}
    return summary


# --- formatting ------------------------------------------------------------------------------


def _fmt_rps(spread: Spread) -> str:
    return f"{spread.median:,.0f} ({spread.low:,.0f}{RANGE}{spread.high:,.0f})"


def _fmt_ms(spread: Spread, signed: bool = False) -> str:
    median, low, high = (
        value / MICROSECONDS_PER_MILLISECOND for value in (spread.median, spread.low, spread.high)
    )
    # Sub-millisecond figures need the third decimal: the added-latency goal is 0.4 ms.
    decimals = 3 if abs(median) < 1 else 2 if abs(median) < LONG_MS else 1
    style = f"{'+' if signed else ''}.{decimals}f"
    return f"{median:{style}} ms ({low:{style}}{RANGE}{high:{style}})"


def _fmt_ratio(spread: Spread) -> str:
    return f"{spread.median:.2f}x ({spread.low:.2f}{RANGE}{spread.high:.2f})"


def _fmt_mib(spread: Spread) -> str:
    return f"{spread.median:.0f} MiB ({spread.low:.0f}{RANGE}{spread.high:.0f})"


def _cell(spread: Spread | None, fmt: Any, **kwargs: Any) -> str:
    return fmt(spread, **kwargs) if spread is not None else MISSING


def markdown_table(measurements: list[Measurement], labels: dict[str, str], levels: list[int]) -> str:
    """The headline table: throughput at the highest level, latency at each, the floor at the lowest."""
    high, low = max(levels), min(levels)
    header = ["target (1 worker)", f"req/s @{high}", f"vs Portkey @{high}"]
    for level in sorted(levels, reverse=True):
        header += [f"p50 @{level}", f"p99 @{level}"]
    header += [f"added p50 @{low}", "RSS after load", "errors"]
    rows = [header, ["---"] * len(header)]
    for target, label in labels.items():
        rps = _values(measurements, target, high, "requests_per_second").values()
        row = [label, _cell(Spread.of(rps), _fmt_rps)]
        row.append(_cell(ratio_to_baseline(measurements, target, high), _fmt_ratio))
        for level in sorted(levels, reverse=True):
            row.append(_cell(Spread.of(_values(measurements, target, level, "p50_us").values()), _fmt_ms))
            row.append(_cell(Spread.of(_values(measurements, target, level, "p99_us").values()), _fmt_ms))
        row.append(_cell(added_p50_us(measurements, target, low), _fmt_ms, signed=True))
        row.append(_cell(Spread.of(m.rss_mib for m in measurements if m.target == target), _fmt_mib))
        row.append(str(sum(m.wrk.errors for m in measurements if m.target == target)))
        rows.append(row)
    return "\n".join("| " + " | ".join(row) + " |" for row in rows)


def goals_table(measurements: list[Measurement], levels: list[int], target: str = "sophia") -> str | None:
    """Sophia's figures against the goals of the issue, when Sophia and both references ran."""
    ratio = ratio_to_baseline(measurements, target, max(levels))
    added = added_p50_us(measurements, target, min(levels))
    rss = Spread.of(m.rss_mib for m in measurements if m.target == target)
    if ratio is None or added is None or rss is None:
        return None
    added_ms = added.median / MICROSECONDS_PER_MILLISECOND
    ratio_goal, added_goal, rss_goal = GOAL_RATIO_VS_BASELINE, GOAL_ADDED_P50_MS, GOAL_RSS_MIB
    goals = [
        (
            f"req/s vs Portkey @{max(levels)}",
            f">= {ratio_goal:g}x",
            f"{ratio.median:.2f}x",
            ratio.median >= ratio_goal,
        ),
        (
            f"added p50 over nginx @{min(levels)}",
            f"< {added_goal:g} ms",
            f"{added_ms:+.3f} ms",
            added_ms < added_goal,
        ),
        ("RSS, no local model (highest)", f"< {rss_goal:g} MiB", f"{rss.high:.0f} MiB", rss.high < rss_goal),
    ]
    rows = ["| Sophia goal | target | measured | met |", "| --- | --- | --- | --- |"]
    rows += [f"| {name} | {goal} | {value} | {'yes' if met else 'NO'} |" for name, goal, value, met in goals]
    return "\n".join(rows)
