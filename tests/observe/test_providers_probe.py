"""Provider uptime: each configured provider checked without spending tokens, and judged with its breakers.

The stand-in provider is the tests' own ``FakeUpstream`` (tests/fakes/upstream.py), which here also
answers ``GET …/models`` the way a vendor's model listing does; every provider of
``gateway_settings`` points at it (``together`` at a port nothing listens on).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiohttp import web

from fakes.helpers import DOWN_URL, chat, gateway_settings
from fakes.process import Server, free_port, sophia, write_config
from fakes.upstream import FakeUpstream, Seen
from sophia.errors import ProviderUnavailable
from sophia.gateway.engine import Gateway
from sophia.observe.alerts import Notice
from sophia.observe.monitor import Monitor, ProviderProbe, provider_probes
from sophia.providers.adapters.local import LocalAdapter
from sophia.providers.base import CallOptions
from sophia.providers.local import VENDOR as LOCAL
from sophia.settings import ObserveSettings, ProviderSettings, load_settings
from sophia.storage.db import open_database

SECRET = "sk-test-not-a-real-key-0123456789"


@dataclass
class ListingUpstream(FakeUpstream):
    """``FakeUpstream`` that also serves ``GET /<prefix>/models``: 200 with a model list, or the status
    set for the prefix in ``listing_status`` (401 echoes the key it was sent, as some vendors do)."""

    listings: list[Seen] = field(default_factory=list)
    listing_status: dict[str, int] = field(default_factory=dict)

    async def start(self) -> str:
        app = web.Application()
        app.router.add_post("/{prefix:.*}/chat/completions", self._chat)
        app.router.add_post("/{prefix:.*}/embeddings", self._embeddings)
        app.router.add_get("/{prefix:.*}/models", self._models)
        self._runner = web.AppRunner(app, handle_signals=False, handler_cancellation=True)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}"
        return self.url

    async def _models(self, request: web.Request) -> web.Response:
        self.listings.append(Seen(request.path, dict(request.headers), {}))
        prefix = request.path.strip("/").split("/")[0]
        status = self.listing_status.get(prefix, 200)
        if status != 200:
            sent = request.headers.get("Authorization", request.headers.get("x-api-key", ""))
            error = {
                "error": {"message": f"Incorrect API key provided: {sent}", "type": "invalid_request_error"}
            }
            return web.json_response(error, status=status)
        models = [{"id": f"model-{i}", "object": "model", "owned_by": prefix} for i in range(500)]
        return web.json_response({"object": "list", "data": models}, dumps=lambda d: orjson.dumps(d).decode())

    def asked(self, prefix: str) -> int:
        return sum(seen.path.startswith(f"/{prefix}/") for seen in self.listings)


@pytest.fixture
async def listing() -> AsyncIterator[ListingUpstream]:
    fake = ListingUpstream()
    await fake.start()
    yield fake
    await fake.close()


class Recorder:
    def __init__(self) -> None:
        self.sent: list[Notice] = []

    async def send(self, notice: Notice) -> None:
        self.sent.append(notice)


class Clock:
    """A monotonic clock the test moves forward (breakers and probe intervals read it)."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.monotonic() + self.offset


async def started(settings: Any) -> Gateway:
    gateway = Gateway(settings)
    await gateway.start()
    return gateway


async def test_every_provider_is_probed_with_its_own_key_and_a_dead_one_is_down(
    listing: ListingUpstream, tmp_path: Path
) -> None:
    gateway = await started(gateway_settings(listing.url))
    db = await open_database(f"sqlite:///{tmp_path / 'uptime.db'}")
    probes = provider_probes(gateway.catalog, lambda: gateway.breakers.breakers, ObserveSettings())
    assert sorted(probes) == ["provider:ollama", "provider:openai", "provider:together", "provider:vllm"]
    monitor = Monitor(ObserveSettings(), db, probes, notifiers=[Recorder()])
    try:
        results, _ = await monitor.tick()
        assert {name: r.ok for name, r in results.items()} == {
            "provider:ollama": True,
            "provider:openai": True,
            "provider:together": False,
            "provider:vllm": True,
        }
        assert results["provider:openai"].detail == "model listing answered HTTP 200"
        assert results["provider:openai"].latency_ms is not None
        assert "cannot reach together" in results["provider:together"].detail
        assert "test-together-key" not in results["provider:together"].detail
        # the listing was asked with the calls' own key and headers, one GET per provider
        (openai,) = [seen for seen in listing.listings if seen.path == "/openai/v1/models"]
        assert openai.headers["Authorization"] == "Bearer test-openai-key"
        assert (listing.asked("vllm"), listing.asked("ollama")) == (1, 1)
        assert not listing.calls  # no completion was asked: no tokens spent
        report = {row["service"]: row for row in await monitor.uptime.report()}
        assert report["provider:openai"]["availability"]["1h"] == 1.0
        assert report["provider:together"]["open_incident"].startswith("cannot reach together")
    finally:
        await monitor.aclose()
        await db.close()
        await gateway.close()


async def test_a_refused_key_is_down_and_never_appears_in_the_cause(listing: ListingUpstream) -> None:
    listing.listing_status["openai"] = 401
    settings = gateway_settings(
        listing.url, providers={"openai": {"api_key": SECRET, "base_url": f"{listing.url}/openai/v1"}}
    )
    gateway = await started(settings)
    try:
        probe = provider_probes(gateway.catalog, lambda: gateway.breakers.breakers, ObserveSettings())
        result = await probe["provider:openai"]()
        assert not result.ok
        assert result.detail.startswith("openai answered 401 for the model listing")
        assert SECRET in listing.listings[-1].headers["Authorization"]  # it was sent, and echoed back...
        assert SECRET not in result.detail and "[redacted]" in result.detail  # ...but never kept
    finally:
        await gateway.close()


async def test_a_passing_check_is_repeated_only_after_the_interval_a_failing_one_every_round(
    listing: ListingUpstream,
) -> None:
    listing.listing_status["ollama"] = 503
    gateway = await started(gateway_settings(listing.url))
    clock = Clock()
    settings = ObserveSettings(provider_probe_interval=60)
    probes = provider_probes(gateway.catalog, lambda: gateway.breakers.breakers, settings, clock=clock)
    try:
        for _ in range(3):  # three rounds, 20 s apart
            vllm, ollama = await probes["provider:vllm"](), await probes["provider:ollama"]()
            clock.offset += 20
        assert vllm.ok and vllm.detail.startswith("model listing answered HTTP 200 (")  # the 40 s old check
        assert vllm.latency_ms is None  # not measured again
        assert not ollama.ok and "503" in ollama.detail
        assert (listing.asked("vllm"), listing.asked("ollama")) == (1, 3)
        clock.offset += 10  # 70 s after the first check
        assert (await probes["provider:vllm"]()).detail == "model listing answered HTTP 200"
        assert listing.asked("vllm") == 2
    finally:
        await gateway.close()


async def test_an_open_breaker_is_down_until_its_cooldown_ends_then_the_check_decides(
    listing: ListingUpstream,
) -> None:
    gateway = await started(gateway_settings(listing.url))
    clock = Clock()
    probes = provider_probes(
        gateway.catalog, lambda: gateway.breakers.breakers, ObserveSettings(), clock=clock
    )
    try:
        for _ in range(2):  # 3 attempts each (2 retries): 5 failures open vllm/status-503's circuit
            with pytest.raises(Exception, match="503"):
                await gateway.chat(chat("vllm/status-503"), None)
        assert gateway.breakers.breakers["vllm/status-503"].state == "open"
        down = await probes["provider:vllm"]()
        assert not down.ok and down.detail.startswith("circuit open: vllm/status-503 (")
        assert (await probes["provider:ollama"]()).ok  # another provider's breakers do not count
        clock.offset += gateway.settings.reliability.breaker_cooldown + 61
        back = await probes["provider:vllm"]()  # cooled down: the model listing answers, so it is up
        assert back.ok and back.detail == "model listing answered HTTP 200"
    finally:
        await gateway.close()


async def test_without_a_key_or_with_checks_off_only_the_breakers_judge(listing: ListingUpstream) -> None:
    settings = gateway_settings(
        listing.url,
        providers={"together": {"enabled": True, "base_url": f"{listing.url}/together/v1"}},  # no key
        models={"together/status-503": {"input_price": 1.0, "output_price": 1.0}},
    )
    gateway = await started(settings)
    clock = Clock()
    probes = provider_probes(
        gateway.catalog, lambda: gateway.breakers.breakers, ObserveSettings(), clock=clock
    )
    quiet = provider_probes(
        gateway.catalog, lambda: gateway.breakers.breakers, ObserveSettings(probe_providers=False)
    )
    try:
        result = await probes["provider:together"]()
        assert result.ok and result.detail == "no check of its own; no circuit open"
        assert (await quiet["provider:vllm"]()).detail == "no check of its own; no circuit open"
        assert listing.asked("together") == 0 and listing.asked("vllm") == 0  # neither was asked
        for _ in range(2):
            with pytest.raises(Exception, match="503"):
                await gateway.chat(chat("together/status-503"), None)
        clock.offset += 3600  # long after the cooldown: with no check of its own, still down
        result = await probes["provider:together"]()
        assert not result.ok and result.detail.startswith("circuit open, no call since: together/status-503")
        assert listing.asked("together") == 0
    finally:
        await gateway.close()


async def test_anthropic_is_probed_on_its_own_models_endpoint(listing: ListingUpstream) -> None:
    settings = gateway_settings(
        listing.url,
        providers={"anthropic": {"api_key": "test-anthropic-key", "base_url": f"{listing.url}/anthropic/v1"}},
    )
    gateway = await started(settings)
    try:
        probe = provider_probes(gateway.catalog, lambda: gateway.breakers.breakers, ObserveSettings())
        assert (await probe["provider:anthropic"]()).ok
        (seen,) = [s for s in listing.listings if s.path == "/anthropic/v1/models"]
        assert seen.headers["x-api-key"] == "test-anthropic-key"
        assert seen.headers["anthropic-version"] == "2023-06-01"
    finally:
        await gateway.close()


async def test_the_local_model_is_checked_without_loading_it(tmp_path: Path) -> None:
    adapter = LocalAdapter(LOCAL, ProviderSettings(), load_settings())
    options = CallOptions(timeout=1.0, first_byte_timeout=1.0)
    assert await adapter.probe(options) == "ready, SmolLM2-135M-Instruct.Q4_1.gguf loads on the first call"
    assert adapter._engine._llama is None  # nothing was loaded
    await adapter.close()
    with pytest.raises(ProviderUnavailable, match="shut down"):
        await adapter.probe(options)

    missing = load_settings(local={"chat_model_path": str(tmp_path / "missing.gguf")})
    broken = LocalAdapter(LOCAL, ProviderSettings(), missing)
    with pytest.raises(ProviderUnavailable, match=r"cannot load: local\.chat_model_path .* is not a file"):
        await broken.probe(options)
    down = await ProviderProbe("local", broken, dict, lambda model: "local")()
    assert not down.ok and "is not a file" in down.detail
    await broken.close()


@pytest.mark.slow
async def test_sophia_run_probes_its_providers_and_observe_uptime_shows_them(
    listing: ListingUpstream, tmp_path: Path
) -> None:
    """The installed CLI end to end: `sophia run` probes each provider every round; `sophia observe
    uptime` reads the results back from the database."""
    config = write_config(
        tmp_path / "sophia.yaml",
        {
            "home": str(tmp_path / "home"),
            "providers": {
                "vllm": {"base_url": f"{listing.url}/vllm/v1"},
                "together": {"api_key": "test-together-key", "base_url": DOWN_URL},
                "local": {"enabled": False},
            },
            "observe": {"probe_interval": 1},
        },
    )
    server = Server(config, free_port(), "--no-mcp")
    try:
        await asyncio.to_thread(server.wait_ready)
        deadline = time.monotonic() + 30
        while True:
            shown = await asyncio.to_thread(sophia, "observe", "uptime", "--json", "--config", str(config))
            assert shown.returncode == 0, shown.stderr
            report = {row["service"]: row for row in orjson.loads(shown.stdout or "[]")}
            if {"gateway", "provider:vllm", "provider:together"} <= set(
                report
            ) or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.5)
    finally:
        output = server.stop()
    assert set(report) == {"gateway", "provider:vllm", "provider:together"}, output
    assert (
        report["provider:vllm"]["availability"]["1h"] == 1.0
        and report["provider:vllm"]["open_incident"] is None
    )
    assert report["provider:together"]["open_incident"].startswith("cannot reach together")
    assert listing.asked("vllm") >= 1 and not listing.calls
    assert "test-together-key" not in output
