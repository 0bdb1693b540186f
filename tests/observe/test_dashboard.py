"""The dashboard in-process: who may see it, the key-to-cookie sign-in, figures that reconcile exactly with
the ledger's integer nano-dollars, every chart rendered as SVG, and a trace's waterfall."""

from __future__ import annotations

import asyncio
import math
import os
import random
import re
import secrets
import signal
import time
from collections import defaultdict
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from fakes.helpers import chat, gateway_settings
from fakes.upstream import FakeUpstream
from sophia.accounts import UsageRecord
from sophia.accounts.ledger import Ledger
from sophia.errors import SophiaError
from sophia.gateway.app import GatewayApp
from sophia.gateway.engine import Gateway
from sophia.observe.dashboard import COOKIE
from sophia.observe.dashboard_charts import empty
from sophia.observe.dashboard_data import PERCENTILES, WINDOWS, Reference, bucket_seconds, usage
from sophia.observe.dashboard_render import Renderer
from sophia.observe.monitor import Monitor
from sophia.observe.spans import SpanStore, StoredSpan
from sophia.observe.uptime import ProbeResult, Uptime
from sophia.providers.base import CHAT, ModelInfo
from sophia.storage.testing import database_url

DAY = 86400.0
BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
#: every chart the page draws, by its figure id
CHART_IDS = (
    "spend-model",
    "spend-team",
    "spend-task",
    "cache-rate",
    "cache-saved",
    "latency",
    "route-mix",
    "router-savings",
    "breakers",
    "uptime",
    "incidents",
    "drift",
    "expensive",
)
MODELS = ("openai/gpt-4.1-mini", "openai/gpt-4.1", "anthropic/claude-haiku-4-5", "vllm/priced")
TEAMS = ("data", "sales", "support")
TASKS = ("qa", "summarize", None)
#: the trace seeded into the span store, and the dearest request that names it
TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"


def seed_rows(now: float, n: int = 600, seed: int = 7) -> list[UsageRecord]:
    """A week and more of varied traffic: models, teams, tasks, cache hits, routed calls, errors, MCP
    calls, odd nano-dollar amounts; some rows before the 7-day window (and before 30 days)."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        if i < 30:
            ts = now - rng.uniform(8 * DAY, 29 * DAY)  # in the 30-day window only
        elif i < 36:
            ts = now - rng.uniform(31 * DAY, 40 * DAY)  # in no window
        else:
            ts = now - rng.uniform(1, 7 * DAY - 60)
        endpoint = rng.choices(["chat", "embeddings", "mcp:data/query"], [0.85, 0.1, 0.05])[0]
        model = rng.choice(MODELS)
        cache = "bypass"
        if endpoint == "chat":
            cache = rng.choices(["miss", "exact", "semantic", "bypass"], [0.6, 0.2, 0.1, 0.1])[0]
        hit = cache in ("exact", "semantic")
        routed = endpoint == "chat" and not hit and rng.random() < 0.35
        error = rng.random() < 0.05
        prompt, completion = rng.randint(10, 4000), rng.randint(0, 1500)
        rows.append(
            UsageRecord(
                ts=ts,
                request_id=f"req_seed{i:04d}",
                key_id=None,
                team=rng.choice(TEAMS),
                endpoint=endpoint,
                requested_model="sophia/auto" if routed else model,
                served_model=None if error and rng.random() < 0.5 else model,
                provider=model.split("/")[0],
                prompt_tokens=prompt,
                completion_tokens=0 if hit else completion,
                # dollars per million tokens between 0.05 and 3 (in) and 0.2 and 9 (out), plus odd nanos
                cost_nanos=0
                if hit
                else prompt * rng.randint(50, 3000) + completion * rng.randint(200, 9000) + 7,
                latency_ms=rng.lognormvariate(5.5, 0.8) if not hit else rng.uniform(1, 20),
                ttft_ms=None,
                cache=cache,
                saved_nanos=rng.randint(1, 40_000_000) if hit else 0,
                outcome="error" if error else "ok",
                route="[learned pick] x=ok" if routed else None,
                task_type=rng.choice(TASKS),
                trace_id=secrets.token_hex(16) if rng.random() < 0.8 else None,
            )
        )
    # the dearest request of all, whose trace is in the span store
    rows.append(
        UsageRecord(
            ts=now - 3600,
            request_id="req_dearest",
            key_id=None,
            team="data",
            endpoint="chat",
            requested_model="openai/gpt-4.1",
            served_model="openai/gpt-4.1",
            provider="openai",
            prompt_tokens=100_000,
            completion_tokens=20_000,
            cost_nanos=123_456_789,
            latency_ms=8123.0,
            ttft_ms=900.0,
            cache="miss",
            task_type="summarize",
            trace_id=TRACE,
        )
    )
    return rows


async def seed(gateway: Gateway, now: float) -> None:
    """Ledger rows, the spans of one trace, and probe results with an incident."""
    for row in seed_rows(now):
        gateway.accounts.ledger.record(row)
    await gateway.accounts.ledger.flush()
    store = await SpanStore.open(gateway.accounts.db)
    t0 = int((now - 3600) * 1e9)
    ms = 1_000_000
    await store.add(
        [
            StoredSpan(TRACE, "a" * 16, None, "POST /v1/chat/completions", "server", t0, t0 + 8123 * ms, "ok",
                       {"http.route": "/v1/chat/completions", "sophia.cost_nanos": 123_456_789}),
            StoredSpan(TRACE, "b" * 16, "a" * 16, "admission", "internal", t0 + 1 * ms, t0 + 3 * ms, "ok", {}),
            StoredSpan(TRACE, "c" * 16, "a" * 16, "chat openai/gpt-4.1", "client", t0 + 5 * ms, t0 + 8100 * ms,
                       "ok", {"gen_ai.request.model": "gpt-4.1", "gen_ai.usage.input_tokens": 100_000}),
            StoredSpan(TRACE, "d" * 16, "c" * 16, "retry", "internal", t0 + 6 * ms, t0 + 40 * ms, "error",
                       {"error.type": "<b>timeout</b>"}),
        ]
    )  # fmt: skip
    uptime = Uptime(gateway.accounts.db, clock=lambda: now)
    for minute in range(180):
        at = now - (180 - minute) * 60
        await uptime.record("gateway", ProbeResult(True, 3.0), at)
        down = 100 <= minute < 110
        await uptime.record("mcp:data", ProbeResult(not down, 5.0, "HTTP 503" if down else ""), at)


@pytest.fixture
async def gateway(upstream: FakeUpstream) -> AsyncIterator[Gateway]:
    gw = Gateway(gateway_settings(upstream.url))
    await gw.start()
    yield gw
    await gw.close()


@pytest.fixture
async def admin_key(gateway: Gateway) -> str:
    secret, _ = await gateway.accounts.keys.create(name="ops", team="ops", admin=True)
    return secret


@pytest.fixture
async def app(gateway: Gateway) -> AsyncIterator[GatewayApp]:
    app = GatewayApp(gateway, lifespan=False)
    yield app
    await app.dashboard.state.dashboard.close()


def client(app: GatewayApp, key: str | None = None) -> httpx.AsyncClient:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1:8090", headers=headers
    )


async def test_no_key_is_401_with_the_sign_in_form_and_a_non_admin_key_is_403(
    app: GatewayApp, gateway: Gateway, admin_key: str
) -> None:
    user, _ = await gateway.accounts.keys.create(name="dev", team="data")
    async with client(app) as anon:
        page = await anon.get("/dashboard")
        assert page.status_code == 401 and 'action="/dashboard/login"' in page.text
        assert (await anon.get("/dashboard/data")).json()["error"]["type"] == "authentication_error"
        assert (await anon.get("/dashboard/traces/" + TRACE)).status_code == 401
        bad = await anon.get("/dashboard/data", headers={"Authorization": "Bearer sk-sophia-not-a-real-key"})
        assert bad.status_code == 401
    async with client(app, user) as dev:
        assert (await dev.get("/dashboard/data")).status_code == 403
        page = await dev.get("/dashboard")
        assert page.status_code == 403 and "every team" in page.text and user not in page.text
    async with client(app, admin_key) as admin:
        assert (await admin.get("/dashboard/data")).status_code == 200
        assert (await admin.get("/dashboard/data?window=2y")).status_code == 400
        assert (await admin.delete("/dashboard")).status_code == 405
        assert (await admin.get("/dashboard/nothing")).status_code == 404


async def test_a_posted_key_becomes_a_strict_http_only_cookie_and_never_reaches_a_page(
    app: GatewayApp, gateway: Gateway, admin_key: str
) -> None:
    user, _ = await gateway.accounts.keys.create(name="dev", team="data")
    async with client(app) as browser:
        refused = await browser.post("/dashboard/login", data={"key": user})
        assert refused.status_code == 403 and COOKIE not in browser.cookies and user not in refused.text
        wrong = await browser.post("/dashboard/login", data={"key": "sk-sophia-not-a-real-key"})
        assert wrong.status_code == 401 and "sk-sophia-not-a-real-key" not in wrong.text
        signed = await browser.post("/dashboard/login", data={"key": admin_key})
        assert signed.status_code == 303 and signed.headers["location"] == "/dashboard"
        cookie = signed.headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/dashboard" in cookie
        assert "Max-Age=43200" in cookie
        page = await browser.get("/dashboard")  # the cookie, no header
        assert page.status_code == 200 and admin_key not in page.text
        assert "default-src 'none'" in page.headers["content-security-policy"]
        assert (await browser.get("/dashboard/data")).status_code == 200

        out = await browser.post("/dashboard/logout")
        assert out.status_code == 303 and COOKIE not in browser.cookies
        assert (await browser.get("/dashboard")).status_code == 401

        await browser.post("/dashboard/login", data={"key": admin_key})
        [record] = [k for k in await gateway.accounts.keys.list() if k.name == "ops"]
        await gateway.accounts.keys.revoke(record.id)
        gateway.accounts.forget_keys()
        gone = await browser.get("/dashboard")  # a revoked key's cookie stops working at once
        assert gone.status_code == 401 and COOKIE not in browser.cookies


def _expected(rows: list[dict[str, Any]], now: float, window: float, alias: str, ref: Any) -> dict[str, Any]:
    """The figures computed straight from the ledger's rows, in Python (integers throughout)."""
    size = bucket_seconds(int(window))
    inside = [r for r in rows if now - window <= r["ts"] < now]
    chat_rows = [r for r in inside if r["endpoint"] == "chat"]
    day_start = now - now % DAY
    by: dict[str, dict[str, int]] = {
        "model": defaultdict(int),
        "team": defaultdict(int),
        "task": defaultdict(int),
    }
    for r in inside:
        by["model"][r["served_model"] or r["requested_model"]] += r["cost_nanos"]
        by["team"][r["team"]] += r["cost_nanos"]
        by["task"][r["task_type"] or "(none)"] += r["cost_nanos"]
    latency: dict[int, list[float]] = defaultdict(list)
    for r in inside:
        if r["outcome"] == "ok" and not r["endpoint"].startswith("mcp:"):
            latency[int(r["ts"] // size * size)].append(r["latency_ms"])
    percentiles = {}
    for at, values in latency.items():
        values.sort()
        percentiles[at] = {f"p{p}_ms": values[math.ceil(p * len(values) / 100) - 1] for p in PERCENTILES}
    routed = [
        r
        for r in inside
        if r["requested_model"] == alias and r["outcome"] == "ok" and r["cache"] not in ("exact", "semantic")
    ]
    reference = 0
    per_bucket: dict[tuple[int, str], list[int]] = defaultdict(lambda: [0, 0])
    for r in routed:
        cell = per_bucket[(int(r["ts"] // size * size), r["served_model"])]
        cell[0] += r["prompt_tokens"]
        cell[1] += r["completion_tokens"]
    for prompt, completion in per_bucket.values():
        reference += ref.cost_nanos(prompt, completion)
    return {
        "cost": sum(r["cost_nanos"] for r in inside),
        "saved": sum(r["saved_nanos"] for r in inside),
        "today": sum(r["cost_nanos"] for r in rows if day_start <= r["ts"] < now),
        "requests": len(inside),
        "errors": sum(r["outcome"] == "error" for r in inside),
        "hits": sum(r["cache"] in ("exact", "semantic") for r in chat_rows),
        "chat": len(chat_rows),
        "by": {k: dict(v) for k, v in by.items()},
        "percentiles": percentiles,
        "routed": len(routed),
        "paid": sum(r["cost_nanos"] for r in routed),
        "reference": reference,
        "dearest": sorted(
            (r for r in inside if r["cost_nanos"] > 0), key=lambda r: (-r["cost_nanos"], -r["ts"])
        )[:10],
    }


def assert_ledger_figures(data: dict[str, Any], want: dict[str, Any]) -> None:
    """Every ledger figure of ``data`` equals its straight-from-the-rows value (money to the nano-dollar)."""
    totals = data["totals"]
    assert totals["cost_nanos"] == want["cost"] and isinstance(totals["cost_nanos"], int)
    assert totals["saved_nanos"] == want["saved"]
    assert totals["spend_today_nanos"] == want["today"]
    assert (totals["requests"], totals["errors"]) == (want["requests"], want["errors"])
    assert (totals["cache_hits"], totals["chat_requests"]) == (want["hits"], want["chat"])
    assert totals["cache_hit_rate"] == want["hits"] / want["chat"]
    for kind in ("model", "team", "task"):
        got: dict[str, int] = defaultdict(int)
        for r in data["spend"][f"by_{kind}"]:
            got[r[kind]] += r["cost_nanos"]
        assert dict(got) == want["by"][kind], kind
    assert sum(r["saved_nanos"] for r in data["cache"]) == want["saved"]
    assert {r["bucket"]: {k: r[k] for k in ("p50_ms", "p95_ms", "p99_ms")} for r in data["latency"]} == want[
        "percentiles"
    ]
    router = data["router"]
    assert (router["requests"], router["paid_nanos"]) == (want["routed"], want["paid"])
    assert router["reference_nanos"] == want["reference"]
    assert router["saved_nanos"] == want["reference"] - want["paid"] > 0
    assert [r["request_id"] for r in data["expensive"]] == [r["request_id"] for r in want["dearest"]]


@pytest.mark.parametrize("backend", BACKENDS)
async def test_the_ledger_figures_are_exact_on_sqlite_and_postgresql(backend: str, tmp_path: Path) -> None:
    now = time.time()
    reference = ModelInfo("openai/gpt-4.1", "openai", "gpt-4.1", 2.0, 8.0, 1_047_576)
    async with database_url(backend, tmp_path) as url:
        ledger = await Ledger.open(url)
        try:
            for row in seed_rows(now, seed=11):
                ledger.record(row)
            await ledger.flush()
            for window in ("24h", "30d"):
                data = await usage(
                    ledger.db,
                    now=now,
                    window=WINDOWS[window],
                    router_alias="sophia/auto",
                    reference=Reference(reference, "test"),
                )
                rows = await ledger.db.fetchall("SELECT * FROM sophia_usage")
                assert_ledger_figures(data, _expected(rows, now, WINDOWS[window], "sophia/auto", reference))
        finally:
            await ledger.close()


@pytest.mark.parametrize("window", ["24h", "7d", "30d"])
async def test_the_data_reconciles_to_the_nano_dollar_with_the_ledger(
    app: GatewayApp, gateway: Gateway, admin_key: str, window: str
) -> None:
    now = time.time()
    await seed(gateway, now)
    async with client(app, admin_key) as admin:
        for _ in range(3):  # real calls through the gateway: priced by the engine, booked by the ledger
            assert (
                await admin.post("/v1/chat/completions", json=chat("vllm/priced", "hello"))
            ).status_code == 200
        data = (await admin.get("/dashboard/data", params={"window": window})).json()
    rows = await gateway.accounts.db.fetchall("SELECT * FROM sophia_usage")
    assert len(rows) == 601 + 3  # the seeded rows and the real calls
    alias = gateway.settings.router.alias
    mapped = [
        m
        for m in gateway.catalog.models.values()
        if CHAT in m.capabilities and m.id in gateway.settings.router.model_map
    ]
    ref = max(mapped, key=lambda m: m.input_price + m.output_price)
    want = _expected(rows, data["until"], WINDOWS[window], alias, ref)

    assert_ledger_figures(data, want)
    assert data["router"]["reference"]["model"] == ref.id
    assert data["expensive"][0]["trace_id"] == TRACE
    # the rest of the page's figures: breakers of the real calls, uptime, drift (no monitor in this process)
    assert any(b["model"] == "vllm/priced" and b["calls"] == 3 for b in data["providers"]["breakers"])
    services = {s["service"]: s for s in data["uptime"]["services"]}
    assert services["gateway"]["availability"]["1h"] == 1.0 and services["mcp:data"]["incidents_30d"] == 1
    assert data["uptime"]["incidents"][0]["cause"] == "HTTP 503"
    assert data["alerts"] == {"monitor_running": False, "active": []}
    assert {r["signal"] for r in data["drift"]["results"]} >= {"latency_ms", "cache_hit_rate"}


async def test_the_page_draws_every_chart_as_svg_and_escapes_what_callers_wrote(
    app: GatewayApp, gateway: Gateway, admin_key: str
) -> None:
    now = time.time()
    await seed(gateway, now)
    hostile = seed_rows(now, n=1, seed=1)[0]
    hostile.task_type, hostile.team = "<script>alert(1)</script>", '"><img src=x onerror=alert(2)>'
    hostile.ts, hostile.endpoint, hostile.cache, hostile.cost_nanos = now - 60, "chat", "miss", 1_000
    gateway.accounts.ledger.record(hostile)
    async with client(app, admin_key) as admin:
        page = await admin.get("/dashboard")
        assert page.status_code == 200
        html = page.text
        for chart in CHART_IDS:
            figure = re.search(rf'<figure class="card chart" id="{chart}"[^>]*>(.*?)</figure>', html, re.S)
            assert figure is not None, chart
            svg = figure.group(1)
            assert (
                svg.startswith("<svg") and "</svg>" in svg and svg.count("<path") + svg.count("<line") > 3
            ), chart
        # what callers wrote (a task type, a team name) reaches the page as text, never as markup
        assert "<script" not in html and "&lt;script&gt;" in html
        assert "<img" not in html and "&lt;img" in html
        # the bars of the dearest requests open their traces; inline SVGs share no element id
        assert (
            f'xlink:href="/dashboard/traces/{TRACE}"' in html and f'href="/dashboard/traces/{TRACE}"' in html
        )
        ids = re.findall(r'\bid="([^"]+)"', html)
        assert len(ids) == len(set(ids))
        assert "$0.1235" in html  # the dearest request, from its integer nano-dollars
        assert admin_key not in html
        timing = dict(
            (name, float(dur))
            for name, dur in re.findall(r"([\w-]+);dur=([\d.]+)", page.headers["server-timing"])
        )
        assert set(CHART_IDS) <= set(timing) and timing["total"] >= timing["render"] > 0
        again = await admin.get("/dashboard")  # within page_ttl: the same render
        assert again.headers["server-timing"] == page.headers["server-timing"]


async def test_a_trace_renders_as_a_waterfall_with_its_attributes_and_ledger_row(
    app: GatewayApp, gateway: Gateway, admin_key: str
) -> None:
    await seed(gateway, time.time())
    async with client(app, admin_key) as admin:
        page = await admin.get(f"/dashboard/traces/{TRACE}")
        assert page.status_code == 200
        html = page.text
        waterfall = re.search(r'<figure class="card chart" id="waterfall"[^>]*>(<svg.*?</svg>)', html, re.S)
        assert waterfall is not None
        for name in ("POST /v1/chat/completions", "admission", "chat openai/gpt-4.1", "retry"):
            assert name in waterfall.group(1)  # one bar label per span
        assert "gen_ai.usage.input_tokens" in html and "&lt;b&gt;timeout&lt;/b&gt;" in html
        assert "req_dearest" in html and "$0.1235" in html
        # depth-first from the root: the retry sits under the model call
        assert html.index("chat openai/gpt-4.1") < html.index(">retry<")
        assert (await admin.get("/dashboard/traces/" + "0" * 32)).status_code == 404
        assert (await admin.get("/dashboard/traces/not-a-trace")).status_code == 404
        assert (await admin.get("/dashboard/traces/" + TRACE.upper())).status_code == 404


async def test_an_empty_ledger_still_draws_every_chart(app: GatewayApp, admin_key: str) -> None:
    async with client(app, admin_key) as admin:
        page = await admin.get("/dashboard?window=24h")
        data = (await admin.get("/dashboard/data?window=24h")).json()
    assert (
        page.status_code == 200
        and data["totals"]["cost_nanos"] == 0
        and data["totals"]["cache_hit_rate"] is None
    )
    for chart in CHART_IDS:
        assert re.search(rf'id="{chart}"[^>]*><svg', page.text), chart
    assert "Monitor not running" in page.text


async def test_with_a_monitor_running_the_page_shows_its_alerts_uptime_and_drift(
    app: GatewayApp, gateway: Gateway, admin_key: str
) -> None:
    await seed(gateway, time.time())

    async def down() -> ProbeResult:
        return ProbeResult(False, None, "HTTP 502")

    monitor = Monitor(gateway.settings.observe, gateway.accounts.db, {"provider:vllm": down}, notifiers=[])
    for _ in range(3):
        await monitor.tick()
    assert monitor.active_alerts(), "a service failing every probe pages"
    gateway.monitor = monitor
    try:
        async with client(app, admin_key) as admin:
            data = (await admin.get("/dashboard/data")).json()
            page = (await admin.get("/dashboard")).text
    finally:
        gateway.monitor = None
        await monitor.aclose()
    alerts = data["alerts"]
    assert alerts["monitor_running"] is True
    assert [a["slo"] for a in alerts["active"]] == [a["slo"] for a in monitor.active_alerts()]
    assert data["totals"]["active_alerts"] == len(monitor.active_alerts()) > 0
    assert data["uptime"]["source"] == "monitor" and data["drift"]["source"] == "monitor"
    assert {s["service"] for s in data["uptime"]["services"]} >= {"provider:vllm", "gateway", "mcp:data"}
    assert "Monitor not running" not in page
    first = monitor.active_alerts()[0]
    assert f"<b>{first['severity'].upper()}</b> {first['slo']}" in page


async def test_the_renderer_draws_in_a_worker_that_comes_back_and_leaves_when_idle() -> None:
    renderer = Renderer(idle=0.5)
    spec = empty("A chart", "nothing yet")
    try:
        [(svg, ms)] = await renderer.render([spec])
        assert svg.startswith("<svg") and "nothing yet" in svg and ms > 0
        pid = renderer.pid
        assert pid is not None and pid != os.getpid()  # not this process: conversion holds the GIL
        with pytest.raises(SophiaError, match="could not be drawn"):
            await renderer.render([{"mark": "no-such-mark", "data": {"values": []}}])
        assert renderer.pid == pid  # a bad spec is an answer, not a crash
        os.kill(pid, signal.SIGKILL)
        [(again, _)] = await renderer.render([spec])  # a new worker takes over
        assert again == svg and renderer.pid not in (None, pid)
        await asyncio.sleep(1.0)
        assert renderer.pid is None  # stopped after half a second unused
        [(third, _)] = await renderer.render([spec])
        assert third == svg
    finally:
        await renderer.aclose()
