"""The dashboard as a person sees it: the gateway served by uvicorn on a loopback port, seeded data, and
Debian's Chromium (headless, driven by Playwright) signing in, loading the page, finding every chart
drawn, following the dearest request to its trace, with no console error or page error on the way.

With ``SOPHIA_SCREENSHOT`` set, the page's screenshot is kept in ``benchmarks/observe/results/``."""

from __future__ import annotations

import asyncio
import os
import socket
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from fakes.helpers import chat, gateway_settings
from fakes.upstream import FakeUpstream
from observe.test_dashboard import CHART_IDS, TRACE, seed
from sophia.gateway.app import GatewayApp
from sophia.gateway.engine import Gateway

pytestmark = pytest.mark.slow

CHROMIUM = "/usr/bin/chromium"
HAVE_CHROMIUM = Path(CHROMIUM).exists()
#: read at import: the test isolation fixture drops every SOPHIA_* variable before a test runs
KEEP_SCREENSHOT = bool(os.environ.get("SOPHIA_SCREENSHOT"))
RESULTS = Path(__file__).resolve().parents[2] / "benchmarks" / "observe" / "results"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture
async def served(upstream: FakeUpstream) -> AsyncIterator[tuple[Gateway, str, GatewayApp]]:
    """A started gateway with seeded data, its app served by uvicorn on a free loopback port."""
    gateway = Gateway(gateway_settings(upstream.url))
    await gateway.start()
    await seed(gateway, time.time())
    app = GatewayApp(gateway, lifespan=False)
    secret, _ = await gateway.accounts.keys.create(name="caller", team="data")
    calls = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://sophia.test",
        headers={"Authorization": f"Bearer {secret}"},
    )
    async with calls:  # real traffic, so the breakers have something to show (one model failing)
        for model in ("vllm/priced", "vllm/priced", "ollama/ok", "test/fallback-500"):
            assert (await calls.post("/v1/chat/completions", json=chat(model))).status_code == 200
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off", loop="asyncio"))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        await asyncio.sleep(0.01)
    try:
        yield gateway, f"http://127.0.0.1:{port}", app
    finally:
        server.should_exit = True
        await task
        sock.close()
        await app.dashboard.state.dashboard.close()
        await gateway.close()


async def test_chromium_signs_in_sees_every_chart_and_opens_a_trace(
    served: tuple[Gateway, str, GatewayApp], tmp_path: Path
) -> None:
    if not HAVE_CHROMIUM:
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} is missing: .ci/run installs Debian's chromium")
        pytest.skip(f"{CHROMIUM} is not installed (apt-get install chromium)")
    from playwright.async_api import async_playwright

    gateway, base, _ = served
    secret, _ = await gateway.accounts.keys.create(name="browser", team="ops", admin=True)
    problems: list[str] = []
    async with async_playwright() as pw:
        context = await pw.chromium.launch_persistent_context(
            str(tmp_path / "profile"),  # a fresh user-data-dir
            executable_path=CHROMIUM,
            headless=True,
            args=ARGS,
            viewport={"width": 1440, "height": 900},
        )
        try:
            page = context.pages[0] if context.pages else await context.new_page()

            def console(message: Any) -> None:
                if message.type == "error":
                    problems.append(f"console: {message.text} @ {page.url}")

            page.on("console", console)
            page.on("pageerror", lambda error: problems.append(f"page error: {error}"))

            sign_in = await page.goto(f"{base}/dashboard")
            assert sign_in is not None and sign_in.status == 401
            problems.clear()  # Chromium reports the 401 document itself as a console error
            await page.fill("#key", secret)
            async with page.expect_navigation():
                await page.click("button")
            assert page.url == f"{base}/dashboard"
            cookies = await context.cookies(f"{base}/dashboard")
            [cookie] = [c for c in cookies if c["name"] == "sophia_dashboard"]
            assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and cookie["path"] == "/dashboard"
            assert secret not in await page.content()

            drawn = await page.eval_on_selector_all(
                "figure.chart",
                """figures => figures.map(f => {
                    const svg = f.querySelector('svg');
                    const box = svg ? svg.getBoundingClientRect() : {width: 0, height: 0};
                    return {id: f.id, width: box.width, height: box.height,
                            marks: svg ? svg.querySelectorAll('path, rect, line, text').length : 0};
                })""",
            )
            assert [d["id"] for d in drawn] == list(CHART_IDS)
            for chart in drawn:
                assert chart["width"] > 200 and chart["height"] > 40 and chart["marks"] > 5, chart
            kpis = await page.inner_text(".kpis")
            assert "requests, last 7d" in kpis.lower() and "cache hit rate" in kpis.lower()
            shot = (RESULTS if KEEP_SCREENSHOT else tmp_path) / "dashboard.png"
            shot.parent.mkdir(parents=True, exist_ok=True)
            await page.screenshot(path=str(shot), full_page=True)
            assert shot.stat().st_size > 50_000
            assert problems == [], problems

            async with page.expect_navigation():
                await page.click(f'a[href="/dashboard/traces/{TRACE}"]')
            assert await page.locator("#waterfall svg").count() == 1
            assert "chat openai/gpt-4.1" in await page.inner_text("body")
            assert problems == [], problems
        finally:
            await context.close()
