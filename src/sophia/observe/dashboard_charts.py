"""The dashboard's charts: Vega-Lite v5 specs built from ``/dashboard/data``'s figures.

``sophia.observe.dashboard_render`` turns them into SVG (vl-convert, in a worker process), and the
page is cached for a few seconds (``sophia.observe.dashboard``).

Money arrives in integer nano-dollars and becomes dollars here, for display only.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

log = logging.getLogger(__name__)

NANOS = 1_000_000_000
#: the largest answer read from the renderer's worker (a page's SVGs are about 1 MB)
WIDTH, HEIGHT = 520, 220
#: where Vega's loader roots a relative link; an ``href`` of "traces/<id>" is rooted at /dashboard/
_STATE_WORDS = {"closed": "breaker closed", "half_open": "HALF OPEN", "open": "OPEN"}
_CACHE_COLORS = {
    "exact": "#1565c0",
    "semantic": "#64b5f6",
    "check": "#ffb74d",
    "miss": "#bdbdbd",
    "bypass": "#eeeeee",
}
_CONFIG = {
    # Liberation Sans has Arial's and Helvetica's metrics: labels measured here fit in any browser
    "font": "Liberation Sans, Arial, Helvetica, sans-serif",
    "view": {"stroke": None},
    "axis": {"labelColor": "#444", "titleColor": "#444", "gridColor": "#eee", "domainColor": "#bbb"},
    "legend": {"labelColor": "#444", "titleColor": "#444", "labelLimit": 180},
    "title": {"anchor": "start", "fontSize": 14, "color": "#222"},
}


@dataclass(frozen=True)
class Chart:
    """One chart of the page: where it goes, what it says, and its spec."""

    id: str
    section: str
    title: str
    caption: str
    spec: dict[str, Any]


def usd(nanos: int) -> float:
    return nanos / NANOS


def _time_axis(data: dict[str, Any]) -> dict[str, Any]:
    """The x axis of a chart over the window's time buckets."""
    return {
        "field": "time",
        "type": "temporal",
        "timeUnit": _time_unit(data["bucket_seconds"]),
        "title": None,
    }


def _time_unit(bucket_seconds: int) -> str:
    return "utcyearmonthdatehours" if bucket_seconds < 86400 else "utcyearmonthdate"


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _spec(title: str, values: list[dict[str, Any]], **rest: Any) -> dict[str, Any]:
    return {
        "$schema": "https://vega.github.io/schema/vega-lite/v5.20.1.json",
        "title": title,
        "width": WIDTH,
        "height": HEIGHT,
        "data": {"values": values},
        "config": _CONFIG,
        **rest,
    }


def empty(title: str, message: str) -> dict[str, Any]:
    """A chart with nothing to plot yet: its title and why, still a rendered chart."""
    return _spec(
        title,
        [{"text": message}],
        height=60,
        mark={"type": "text", "fontSize": 13, "color": "#777", "align": "left", "dx": -WIDTH / 2 + 4},
        encoding={"text": {"field": "text", "type": "nominal"}},
    )


def _over_time(
    title: str, rows: list[dict[str, Any]], series: str, bucket_seconds: int, y_title: str
) -> dict[str, Any]:
    """Stacked bars per time bucket, one colour per value of ``series`` (rows carry ``time`` and ``value``)."""
    unit = _time_unit(bucket_seconds)
    return _spec(
        title,
        rows,
        mark={"type": "bar"},
        encoding={
            "x": {"field": "time", "type": "temporal", "timeUnit": unit, "title": None},
            "y": {"aggregate": "sum", "field": "value", "type": "quantitative", "title": y_title},
            "color": {"field": series, "type": "nominal", "title": None, "scale": {"scheme": "tableau20"}},
        },
    )


def spend_chart(data: dict[str, Any], kind: str, label: str) -> Chart:
    rows = [
        {"time": _iso(r["bucket"]), kind: r[kind], "value": usd(r["cost_nanos"])}
        for r in data["spend"][f"by_{kind}"]
        if r["cost_nanos"]
    ]
    title = f"Spend by {label}"
    spec = (
        _over_time(title, rows, kind, data["bucket_seconds"], "USD")
        if rows
        else empty(title, "No spend in this window.")
    )
    caption = f"Ledger cost_nanos summed per {label} and {'hour' if data['bucket_seconds'] < 86400 else 'day'} (UTC)."
    return Chart(f"spend-{kind}", "Spend", title, caption, spec)


def cache_mix_chart(data: dict[str, Any]) -> Chart:
    rows = [{"time": _iso(r["bucket"]), "cache": r["cache"], "value": r["requests"]} for r in data["cache"]]
    title = "Cache hit rate"
    if not rows:
        return Chart("cache-rate", "Cache", title, "", empty(title, "No chat requests in this window."))
    spec = _over_time(title, rows, "cache", data["bucket_seconds"], "share of chat requests")
    spec["encoding"]["y"]["stack"] = "normalize"
    spec["encoding"]["y"]["axis"] = {"format": "%"}
    kinds = [k for k in _CACHE_COLORS if any(r["cache"] == k for r in rows)]
    kinds += sorted({r["cache"] for r in rows} - set(kinds))
    spec["encoding"]["color"]["scale"] = {
        "domain": kinds,
        "range": [_CACHE_COLORS.get(k, "#9e9e9e") for k in kinds],
    }
    rate = data["totals"]["cache_hit_rate"]
    caption = (
        f"Share of chat requests answered from the cache (exact or semantic): {rate:.1%} over the window."
    )
    return Chart("cache-rate", "Cache", title, caption, spec)


def cache_saved_chart(data: dict[str, Any]) -> Chart:
    rows = [
        {"time": _iso(r["bucket"]), "cache": r["cache"], "value": usd(r["saved_nanos"])}
        for r in data["cache"]
        if r["saved_nanos"]
    ]
    title = "Dollars the cache saved"
    if not rows:
        return Chart("cache-saved", "Cache", title, "", empty(title, "No cache savings in this window."))
    spec = _over_time(title, rows, "cache", data["bucket_seconds"], "USD saved")
    spec["encoding"]["color"]["scale"] = {"domain": ["exact", "semantic"], "range": ["#1565c0", "#64b5f6"]}
    caption = (
        f"What the cached answers would have cost: ${usd(data['totals']['saved_nanos']):,.4f} in the window."
    )
    return Chart("cache-saved", "Cache", title, caption, spec)


def latency_chart(data: dict[str, Any]) -> Chart:
    title = "Latency percentiles"
    rows = [
        {"time": _iso(r["bucket"]), "percentile": p, "ms": max(r[f"{p}_ms"], 0.01)}
        for r in data["latency"]
        for p in ("p50", "p95", "p99")
    ]
    if not rows:
        return Chart("latency", "Latency", title, "", empty(title, "No answered requests in this window."))
    spec = _spec(
        title,
        rows,
        mark={"type": "line", "point": True},
        encoding={
            "x": _time_axis(data),
            "y": {"field": "ms", "type": "quantitative", "scale": {"type": "log"}, "title": "ms (log scale)"},
            "color": {
                "field": "percentile",
                "type": "nominal",
                "title": None,
                "scale": {"domain": ["p50", "p95", "p99"], "range": ["#2e7d32", "#f9a825", "#c62828"]},
            },
        },
    )
    caption = "Nearest-rank percentiles of answered gateway requests (cache hits included), per bucket."
    return Chart("latency", "Latency", title, caption, spec)


def route_mix_chart(data: dict[str, Any]) -> Chart:
    router = data["router"]
    title = f"Route mix ({router['alias']})"
    rows = [
        {"model": m["model"], "requests": m["requests"], "usd": usd(m["cost_nanos"])} for m in router["mix"]
    ]
    if not rows:
        return Chart("route-mix", "Routing", title, "", empty(title, "No routed requests in this window."))
    spec = _spec(
        title,
        rows,
        height=max(60, 26 * len(rows)),
        mark={"type": "bar", "color": "#5e35b1"},
        encoding={
            "y": {"field": "model", "type": "nominal", "sort": "-x", "title": None},
            "x": {"field": "requests", "type": "quantitative", "title": "requests the router sent"},
        },
    )
    caption = "Which model the router chose for the requests it decided (cache hits and failures excluded)."
    return Chart("route-mix", "Routing", title, caption, spec)


def router_savings_chart(data: dict[str, Any]) -> Chart:
    router = data["router"]
    title = "What the router saved"
    ref = router["reference"]
    series = ["paid", f"on {ref['model']}" if ref else "reference"]
    rows = [
        {"time": _iso(b["bucket"]), "cost": name, "value": usd(b[field])}
        for b in router["by_bucket"]
        for name, field in zip(series, ("paid_nanos", "reference_nanos"), strict=True)
    ]
    if not rows or ref is None:
        why = "No routed requests in this window." if ref is not None else "No chat model to compare with."
        return Chart("router-savings", "Routing", title, "", empty(title, why))
    spec = _spec(
        title,
        rows,
        mark={"type": "bar"},
        encoding={
            "x": _time_axis(data),
            "xOffset": {"field": "cost", "type": "nominal", "sort": series},
            "y": {"field": "value", "type": "quantitative", "title": "USD"},
            "color": {
                "field": "cost",
                "type": "nominal",
                "title": None,
                "scale": {"domain": series, "range": ["#5e35b1", "#bdbdbd"]},
            },
        },
    )
    caption = (
        f"Paid for the routed requests against the same tokens on the reference model {ref['model']} "
        f"({ref['why']}): ${usd(router['saved_nanos']):,.4f} saved over the window."
    )
    return Chart("router-savings", "Routing", title, caption, spec)


def breakers_chart(data: dict[str, Any]) -> Chart:
    title = "Provider health and breakers"
    rows = data["providers"]["breakers"]
    if not rows:
        return Chart(
            "breakers",
            "Providers",
            title,
            "",
            empty(title, "No model has been called since the gateway started."),
        )
    values = [
        {"model": b["model"], "part": part, "calls": n}
        for b in rows
        for part, n in (("answered", b["calls"] - b["errors"]), ("failed", b["errors"]))
    ]
    labels = [
        {
            "model": b["model"],
            "calls": b["calls"],
            "label": f"{_STATE_WORDS.get(b['state'], b['state'])} · {b['error_rate']:.0%} failed",
            "state": b["state"],
        }
        for b in rows
    ]
    y = {"field": "model", "type": "nominal", "title": None}
    layers = [
        {
            "mark": {"type": "bar"},
            "encoding": {
                "y": y,
                "x": {"field": "calls", "type": "quantitative", "title": "calls since start", "stack": True},
                "color": {
                    "field": "part",
                    "type": "nominal",
                    "title": None,
                    "scale": {"domain": ["answered", "failed"], "range": ["#2e7d32", "#c62828"]},
                },
            },
        },
        {
            "data": {"values": labels},
            "mark": {"type": "text", "align": "left", "dx": 5, "fontSize": 11},
            "encoding": {
                "y": y,
                "x": {"field": "calls", "type": "quantitative"},
                "text": {"field": "label", "type": "nominal"},
                "color": {
                    "condition": {"test": "datum.state !== 'closed'", "value": "#c62828"},
                    "value": "#444",
                },
            },
        },
    ]
    spec = _spec(title, values, height=max(60, 26 * len(rows)), layer=layers)
    caption = (
        "Calls per model since this gateway started, answered and failed; beside each, its circuit "
        "breaker's state (closed: in use; open: skipped until its cool-down ends; half open: on trial)."
    )
    return Chart("breakers", "Providers", title, caption, spec)


def uptime_chart(data: dict[str, Any]) -> Chart:
    title = "Uptime per service"
    services = data["uptime"]["services"]
    rows = [
        {"service": s["service"], "window": window, "availability": value}
        for s in services
        for window, value in s["availability"].items()
        if value is not None
    ]
    if not rows:
        return Chart(
            "uptime",
            "Uptime",
            title,
            "",
            empty(title, "No probe results yet (the monitor runs with sophia run)."),
        )
    target = services[0]["target"]
    low = min([target, *(r["availability"] for r in rows)])
    floor = max(0.0, min(0.99, low) - 0.01)
    layers = [
        {
            "mark": {"type": "point", "filled": True, "size": 90},
            "encoding": {
                "y": {"field": "service", "type": "nominal", "title": None, "scale": {"type": "band"}},
                "yOffset": {"field": "window", "type": "nominal", "sort": ["1h", "24h", "30d"]},
                "x": {
                    "field": "availability",
                    "type": "quantitative",
                    "scale": {"domain": [floor, 1]},
                    "axis": {"format": ".2%"},
                    "title": "availability",
                },
                "color": {"field": "window", "type": "nominal", "sort": ["1h", "24h", "30d"], "title": None},
            },
        },
        {
            "data": {"values": [{"target": target}]},
            "mark": {"type": "rule", "color": "#c62828", "strokeDash": [4, 3]},
            "encoding": {"x": {"field": "target", "type": "quantitative"}},
        },
    ]
    spec = _spec(title, rows, height=max(60, 28 * len(services)), layer=layers)
    caption = (
        f"Share of probes that passed over 1 h, 24 h and 30 d; the dashed line is the target ({target:.2%})."
    )
    return Chart("uptime", "Uptime", title, caption, spec)


def incidents_chart(data: dict[str, Any]) -> Chart:
    title = "Incidents (30 days)"
    now = data["until"]
    rows = [
        {
            "service": i["service"],
            "start": _iso(i["start"]),
            "end": _iso(i["end"] if i["end"] is not None else now),
            "cause": i["cause"][:60],
        }
        for i in data["uptime"]["incidents"]
    ]
    if not rows:
        return Chart("incidents", "Uptime", title, "", empty(title, "No incidents in 30 days."))
    encoding = {
        "y": {"field": "service", "type": "nominal", "title": None},
        "x": {
            "field": "start",
            "type": "temporal",
            "scale": {"type": "utc", "domain": [_iso(now - 30 * 86400), _iso(now)]},
            "title": None,
        },
        "color": {"field": "cause", "type": "nominal", "title": "cause"},
    }
    layers = [  # the bar spans the incident; the dot keeps a short one visible on a 30-day axis
        {"mark": {"type": "bar"}, "encoding": {**encoding, "x2": {"field": "end"}}},
        {"mark": {"type": "point", "filled": True, "size": 70}, "encoding": encoding},
    ]
    spec = _spec(title, rows, height=max(60, 28 * len({r["service"] for r in rows})), layer=layers)
    caption = (
        "Runs of failed probes, from the first failure to the first success after it (open ones to now)."
    )
    return Chart("incidents", "Uptime", title, caption, spec)


def drift_chart(data: dict[str, Any]) -> Chart:
    title = "Drift (last 24 h against the 7 days before)"
    drift = data["drift"]
    results = drift["results"] if drift else []
    if not results:
        why = (
            "; ".join(f"{k}: {v}" for k, v in (drift or {}).get("skipped", {}).items())
            or "No drift report yet."
        )
        return Chart("drift", "Drift", title, "", empty(title, why[:110]))
    alpha = results[0]["threshold"]
    rows = [
        {
            "signal": r["signal"],
            "evidence": min(16.0, -_log10(r["p_value"])) if r["p_value"] is not None else 0.0,
            "verdict": "drifted" if r["drifted"] else "stable",
        }
        for r in results
    ]
    layers = [
        {
            "mark": {"type": "bar"},
            "encoding": {
                "y": {"field": "signal", "type": "nominal", "title": None},
                "x": {"field": "evidence", "type": "quantitative", "title": "-log10(p-value)"},
                "color": {
                    "field": "verdict",
                    "type": "nominal",
                    "title": None,
                    "scale": {"domain": ["stable", "drifted"], "range": ["#90a4ae", "#c62828"]},
                },
            },
        },
        {
            "data": {"values": [{"cut": -_log10(alpha)}]},
            "mark": {"type": "rule", "color": "#c62828", "strokeDash": [4, 3]},
            "encoding": {"x": {"field": "cut", "type": "quantitative"}},
        },
    ]
    spec = _spec(title, rows, height=max(60, 26 * len(rows)), layer=layers)
    caption = f"Each signal's test (KS, two-proportion z, Jensen-Shannon); past the dashed line (p < {alpha:g}) it drifted."
    return Chart("drift", "Drift", title, caption, spec)


def expensive_chart(data: dict[str, Any]) -> Chart:
    title = "Most expensive requests"
    rows = [
        {
            "request": f"{r['request_id']} · {r['model']}",
            "usd": usd(r["cost_nanos"]),
            "href": f"traces/{r['trace_id']}" if r["trace_id"] else None,
        }
        for r in data["expensive"]
    ]
    if not rows:
        return Chart("expensive", "Requests", title, "", empty(title, "No paid requests in this window."))
    spec = _spec(
        title,
        rows,
        height=max(60, 24 * len(rows)),
        mark={"type": "bar", "color": "#ef6c00", "cursor": "pointer"},
        encoding={
            "y": {
                "field": "request",
                "type": "nominal",
                "sort": "-x",
                "title": None,
                "axis": {"labelLimit": 260},
            },
            "x": {"field": "usd", "type": "quantitative", "title": "USD"},
            "href": {"field": "href", "type": "nominal"},
        },
    )
    caption = "The window's dearest requests; a bar opens the request's trace (listed below too)."
    return Chart("expensive", "Requests", title, caption, spec)


def _log10(p: float) -> float:
    return math.log10(max(p, 1e-16))  # a p-value of 0 (underflow) shows as 16


def page_charts(data: dict[str, Any]) -> list[Chart]:
    """Every chart of the page, in page order."""
    builders: list[Callable[[dict[str, Any]], Chart]] = [
        lambda d: spend_chart(d, "model", "model"),
        lambda d: spend_chart(d, "team", "team"),
        lambda d: spend_chart(d, "task", "task"),
        cache_mix_chart,
        cache_saved_chart,
        latency_chart,
        route_mix_chart,
        router_savings_chart,
        breakers_chart,
        uptime_chart,
        incidents_chart,
        drift_chart,
        expensive_chart,
    ]
    return [build(data) for build in builders]


def trace_chart(spans: list[dict[str, Any]]) -> dict[str, Any]:
    """A waterfall: one bar per span from its start to its end, in ms from the trace's first start."""
    t0 = min(s["start_ns"] for s in spans)
    rows = [
        {
            "span": f"{'  ' * s['depth']}{s['name']} · {s['span_id'][:6]}",
            "order": i,
            "start": (s["start_ns"] - t0) / 1e6,
            "end": max((s["end_ns"] - t0) / 1e6, (s["start_ns"] - t0) / 1e6 + 0.01),
            "status": s["status"],
        }
        for i, s in enumerate(spans)
    ]
    return _spec(
        "Spans",
        rows,
        width=760,
        height=max(60, 24 * len(rows)),
        mark={"type": "bar"},
        encoding={
            "y": {
                "field": "span",
                "type": "nominal",
                "sort": {"field": "order"},
                "title": None,
                "axis": {"labelLimit": 320},
            },
            "x": {"field": "start", "type": "quantitative", "title": "ms since the trace began"},
            "x2": {"field": "end"},
            "color": {
                "field": "status",
                "type": "nominal",
                "title": None,
                "scale": {"domain": ["ok", "unset", "error"], "range": ["#2e7d32", "#90a4ae", "#c62828"]},
            },
        },
    )
