"""Planted secrets never leave: every output searched for each value and each of its spellings.

Secret values are planted the two ways the environment knows them: as the settings' SecretStr fields
(a provider key, an alert webhook URL with a password, an OTLP header) and as the environment's own
(``KNOWN.add``). They then flow out through every output Sophia has: a provider that echoes its key
in an error body and in an answer, log lines and tracebacks, MCP tool results and errors, spans (ours
and third-party instrumentation's), and the dashboard's page, data and trace view. Each captured
output is searched for the raw value, its base64 (standard and URL-safe, padded or not, and inside a
``Basic`` blob, by decoding every base64 run in it), percent-encodings, JSON escapes, hex and HTML
escapes, computed here apart from ``sophia.secrets.mask``; none may be there, and ``[REDACTED]`` must.
"""

from __future__ import annotations

import base64
import html
import io
import json
import logging
import re
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, quote_plus

import httpx
import mcp_types as types
import orjson
import pytest
from aiohttp import web
from pydantic import Field

from fakes.helpers import chat, gateway_settings
from fakes.otlp import Collector
from mcp import Client
from sophia.accounts import UsageRecord
from sophia.container import Services
from sophia.errors import SophiaError
from sophia.gateway.app import GatewayApp
from sophia.gateway.engine import Gateway
from sophia.gateway.service import GATEWAY
from sophia.mcp.context import ToolContext
from sophia.mcp.registry import get_registry
from sophia.mcp.server import build_server
from sophia.mcp.tools import Input, Output, ToolGroup
from sophia.observe.spans import SpanStore, StoredSpan
from sophia.observe.uptime import ProbeResult, Uptime
from sophia.secrets.mask import KNOWN, MASK, MaskingFilter
from sophia.serve import configure_logging

#: through the settings (SecretStr fields): the provider's key, the alert webhook, an OTLP header
PROVIDER_KEY = "Zq9/v+Rk=3mWx7/Tp+L2=nQ8s-provider"  # pragma: allowlist secret
WEBHOOK = "https://alert-bot:Wp4Rk9Tz2Qm7@hooks.example.test/services/T0/B0/xyz"  # pragma: allowlist secret
OTLP_TOKEN = "3f9a0c7e5b1d2468ace0135790bdf2468ace0135790bdf2468ace0135790bdf2"  # pragma: allowlist secret
#: through KNOWN.add (the environment's own secrets): unicode, and "/+=&" with a quote
UNICODE = "Geheimnis-ÄÖÜ-ß-Ω-密钥-9x7Lq"  # pragma: allowlist secret
ENV_ONLY = "env/Only+Known=In&KNOWN's-42x"  # pragma: allowlist secret
PLANTED = (PROVIDER_KEY, WEBHOOK, OTLP_TOKEN, UNICODE, ENV_ONLY)
TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
_BASE64_RUN = re.compile(r"[A-Za-z0-9+/_\-]{12,}={0,2}")


# -- the search ------------------------------------------------------------------------------------


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def spellings(value: str) -> set[str]:
    """How an output may spell ``value`` (computed here, not by the code under test)."""
    raw = value.encode()
    out = {value, raw.hex(), raw.hex().upper(), html.escape(value), html.escape(value, quote=False)}
    out |= {json.dumps(value)[1:-1], json.dumps(value, ensure_ascii=False)[1:-1]}
    for encoded in (base64.b64encode(raw).decode(), base64.urlsafe_b64encode(raw).decode()):
        out |= {encoded, encoded.rstrip("=")}
    for quoted in (quote(value, safe=""), quote(value), quote_plus(value)):
        out |= {quoted, re.sub(r"%[0-9A-F]{2}", lambda m: m.group(0).lower(), quoted)}
    return out


def decodes_to(text: str, value: str) -> bool:
    """Whether some base64 run in ``text`` (at some alignment) decodes to bytes holding ``value``."""
    wanted = value.encode()
    for run in _BASE64_RUN.findall(text):
        run = run.rstrip("=").replace("-", "+").replace("_", "/")
        for shift in range(4):
            chunk = run[shift:]
            chunk = chunk[: len(chunk) - len(chunk) % 4]
            if chunk and wanted in base64.b64decode(chunk):
                return True
    return False


def assert_clean(output: str, where: str, *, masked: bool = True) -> None:
    for value in PLANTED:
        for spelling in spellings(value):
            assert spelling not in output, f"{where}: {value!r} spelt {spelling!r}"
        assert not decodes_to(output, value), f"{where}: {value!r} inside a base64 blob"
    if masked:
        assert MASK in output, f"{where}: nothing was masked (did the value reach it?)"


def every_spelling(value: str) -> str:
    """``value`` in the spellings a leak would take, to plant."""
    return (
        f"raw {value} | b64 {b64(value)} | url {quote(value, safe='')} | plus {quote_plus(value)} | "
        f"json {json.dumps(value)} | hex {value.encode().hex()} | basic Basic {b64('bot:' + value)}"
    )


# -- a provider that echoes its key ------------------------------------------------------------------


class EchoUpstream:
    """An OpenAI-compatible upstream that quotes the key it was sent: in a 400's message (``…/echo-error``:
    the gateway passes a refused request's message on) and in an answer (any other model)."""

    def __init__(self) -> None:
        self.url = ""
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/{prefix:.*}/chat/completions", self._chat)
        self._runner = web.AppRunner(app, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"  # type: ignore[union-attr]

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _chat(self, request: web.Request) -> web.Response:
        body = await request.json()
        key = request.headers.get("Authorization", "").removeprefix("Bearer ")
        if body["model"].endswith("echo-error"):
            message = f"Incorrect API key {key} (b64 {b64(key)}, url {quote(key, safe='')})"
            return web.json_response({"error": {"message": message, "type": "invalid_request"}}, status=400)
        last = body["messages"][-1]["content"]
        answer = f"echo: {last} || your key: {every_spelling(key)}"
        choice = {"index": 0, "message": {"role": "assistant", "content": answer}, "finish_reason": "stop"}
        usage = {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}
        return web.json_response(
            {"id": "x", "object": "chat.completion", "created": 0, "model": body["model"], "choices": [choice],
             "usage": usage}
        )  # fmt: skip


# -- the world: a gateway, its services, logs and spans caught -------------------------------------


@dataclass
class World:
    services: Services
    gateway: Gateway
    app: GatewayApp
    admin: str
    logs: io.StringIO
    spans: Collector
    upstream: EchoUpstream

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            transport=httpx.ASGITransport(app=self.app),
            base_url="http://sophia.test",
            headers={"Authorization": f"Bearer {self.admin}"},
        )


@pytest.fixture
async def world(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[World]:
    upstream = EchoUpstream()
    await upstream.start()
    collector = Collector()
    monkeypatch.setattr("sophia.observe.tracing.otlp_sender", lambda *args: collector)
    monkeypatch.setattr("sophia.observe.tracing.otlp_exporter", lambda *args: collector.sdk)
    settings = gateway_settings(
        upstream.url,
        providers={"vllm": {"base_url": f"{upstream.url}/vllm/v1", "api_key": PROVIDER_KEY}},
        observe={"capture_content": True, "webhook_url": WEBHOOK, "otlp_headers": {"x-token": OTLP_TOKEN}},
    )
    root = logging.getLogger()
    logs = io.StringIO()
    handler = logging.StreamHandler(logs)
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    root.addHandler(handler)
    level, before = root.level, KNOWN.values
    root.setLevel(logging.INFO)
    KNOWN.replace(())
    configure_logging(settings)  # as `sophia serve` starts: the settings' secrets join KNOWN, logs masked
    KNOWN.add([UNICODE, ENV_ONLY])  # as the environment's secrets would
    services = Services(settings)
    try:
        gateway = await services.get(GATEWAY)
        admin, _ = await gateway.accounts.keys.create(name="ops", team="ops", admin=True)
        app = GatewayApp(gateway, lifespan=False)
        yield World(services, gateway, app, admin, logs, collector, upstream)
        await app.dashboard.state.dashboard.close()
    finally:
        await services.close()
        await upstream.close()
        KNOWN.replace(before)
        root.setLevel(level)
        root.removeHandler(handler)
        for logger in (root, *map(logging.getLogger, ("uvicorn", "uvicorn.error", "uvicorn.access"))):
            for each in (logger, *logger.handlers):
                for masking in [f for f in each.filters if isinstance(f, MaskingFilter)]:
                    each.removeFilter(masking)


def test_the_planted_values_have_many_distinct_spellings() -> None:
    """The search is only as good as its spellings: a value with "/+=", quotes or unicode has eight or more."""
    assert len(spellings(OTLP_TOKEN)) >= 4 and len(OTLP_TOKEN) == 64  # hex: raw, hex, base64 x2
    for value in (PROVIDER_KEY, WEBHOOK, UNICODE, ENV_ONLY):
        assert len(spellings(value)) >= 8, value
    assert any(c in PROVIDER_KEY for c in "/+=") and not UNICODE.isascii()


# -- errors ----------------------------------------------------------------------------------------


async def test_gateway_error_bodies_mask_the_key_a_provider_echoes(world: World) -> None:
    async with world.client() as client:
        plain = await client.post("/v1/chat/completions", json=chat("vllm/echo-error"))
        streamed = await client.post("/v1/chat/completions", json=chat("vllm/echo-error", stream=True))
    assert plain.status_code == 400 and "vllm answered 400" in plain.json()["error"]["message"]
    assert_clean(plain.text, "error body")
    assert_clean(streamed.text, "streamed error event")
    assert_clean(world.logs.getvalue(), "logs", masked=False)


# -- logs ------------------------------------------------------------------------------------------


async def test_log_lines_tracebacks_and_uvicorn_lines_are_masked(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    import uvicorn

    log = logging.getLogger("sophia.test.planted")
    log.warning("provider key %s, environment secret %r", PROVIDER_KEY, {"secret": UNICODE})
    log.info("webhook %s; token %s", quote(WEBHOOK, safe=""), OTLP_TOKEN.upper().lower())
    log.info("every spelling: %s", every_spelling(ENV_ONLY))
    try:
        raise RuntimeError(f"could not reach {WEBHOOK} with {PROVIDER_KEY!r} and {b64(UNICODE)}")
    except RuntimeError:
        log.exception("alert delivery failed")
    uvicorn.Config(world.app, log_level="info")  # uvicorn sets its loggers up again, after us
    logging.getLogger("uvicorn.error").error("refused %s", ENV_ONLY)
    logging.getLogger("uvicorn.access").info(
        '%s - "%s %s HTTP/%s" %d', "127.0.0.1:5000", "GET", f"/v1/models?key={quote(UNICODE)}", "1.1", 200
    )
    out = world.logs.getvalue()
    assert "Traceback (most recent call last)" in out and "RuntimeError: could not reach" in out
    assert out.count(MASK) >= 8
    assert_clean(out, "log lines")
    uvicorn_out = capsys.readouterr()
    assert "GET /v1/models?key=" in uvicorn_out.out
    assert_clean(uvicorn_out.out + uvicorn_out.err, "uvicorn's own lines")


# -- MCP -------------------------------------------------------------------------------------------

leaky = ToolGroup("leaky", port=0, title="A test server whose tools quote secrets")


class LeakIn(Input):
    how: str = Field(description="return, fail or crash")


class LeakOut(Output):
    text: str
    nested: dict[str, Any]


@leaky.tool(title="Leak", read_only=True, destructive=False, idempotent=True, open_world=False)
async def leak(ctx: ToolContext, args: LeakIn) -> LeakOut:
    """Return, or fail with, the planted values in every spelling."""
    everything = " ## ".join(every_spelling(value) for value in PLANTED)
    if args.how == "fail":
        raise SophiaError(f"the vault said: {everything}")
    if args.how == "crash":
        raise ValueError(f"internal state: {everything}")
    return LeakOut(
        text=everything,
        nested={"rows": [{"value": value, "b64": b64(value)} for value in PLANTED], "webhook": WEBHOOK},
    )


def result_text(result: types.CallToolResult) -> str:
    parts = [getattr(block, "text", "") for block in result.content]
    if result.structured_content is not None:
        parts += [
            json.dumps(result.structured_content),
            json.dumps(result.structured_content, ensure_ascii=False),
        ]
    return "\n".join(parts)


async def test_mcp_tool_results_and_errors_are_masked(world: World) -> None:
    user, _ = await world.gateway.accounts.keys.create(name="dev", team="alpha")
    results = {}
    async with Client(build_server(leaky, world.services, secret=user), mode="legacy") as client:
        for how in ("return", "fail", "crash"):
            results[how] = await client.call_tool("leak", {"how": how})
    ai = get_registry().get("ai")
    async with Client(build_server(ai, world.services, secret=user), mode="legacy") as client:
        prompt = f"repeat {UNICODE} and {every_spelling(ENV_ONLY)}"
        results["generate"] = await client.call_tool(
            "generate", {"prompt": prompt, "model": "vllm/echo-answer"}
        )
        results["generate-error"] = await client.call_tool(
            "generate", {"prompt": "x", "model": "vllm/echo-error"}
        )
    assert not results["return"].is_error and results["return"].structured_content is not None
    assert not results["generate"].is_error and "echo: repeat" in result_text(results["generate"])
    for how in ("fail", "crash", "generate-error"):
        assert results[how].is_error, how
    for how, result in results.items():
        assert_clean(result_text(result), f"MCP {how}", masked=how not in ("crash", "generate-error"))
    assert "internal error" in result_text(results["crash"])  # the details went to the log ...
    out = world.logs.getvalue()
    assert "ValueError: internal state" in out
    assert_clean(out, "logs")  # ... masked


# -- spans -----------------------------------------------------------------------------------------


async def test_spans_are_masked_ours_and_third_party_and_values_known_after_the_tracer_opened(
    world: World,
) -> None:
    late = "added/after+the=tracer-opened"  # pragma: allowlist secret
    KNOWN.add(late)
    prompt = f"my secrets: {UNICODE} {every_spelling(late)} {every_spelling(WEBHOOK)}"
    async with world.client() as client:
        answer = await client.post("/v1/chat/completions", json=chat("vllm/echo-answer", prompt))
    assert answer.status_code == 200
    tracer = world.gateway.tracer
    assert tracer is not None
    with tracer.provider.get_tracer("third.party").start_as_current_span("POST upstream") as span:
        span.set_attribute("http.request.header.authorization", f"Basic {b64('bot:' + PROVIDER_KEY)}")
        span.set_attribute("url.full", f"https://api.test/v1?token={quote(OTLP_TOKEN)}&k={quote(ENV_ONLY)}")
        span.add_event("retry", {"detail": f"refused {every_spelling(late)}"})
    await world.gateway.accounts.ledger.flush()
    assert await tracer.flush()
    sent = world.spans.text()
    assert "echo: my secrets" in sent  # the content was captured (and masked)
    assert_clean(sent, "exported spans")
    assert late not in sent and b64(late) not in sent
    store = tracer.store
    assert store is not None
    rows = await store.db.fetchall("SELECT trace_id FROM sophia_spans")
    local = repr([await store.trace(row["trace_id"]) for row in rows])
    assert "POST upstream" in local
    assert_clean(local, "local span store")


# -- the dashboard ---------------------------------------------------------------------------------


async def test_the_dashboard_page_data_and_trace_are_masked(world: World) -> None:
    gateway = world.gateway
    now = time.time()
    for i, (team, task) in enumerate([(ENV_ONLY, UNICODE), (quote(WEBHOOK, safe=""), b64(PROVIDER_KEY))]):
        gateway.accounts.ledger.record(
            UsageRecord(
                ts=now - 600 - i, request_id=f"req_planted{i}", key_id=None, team=team, endpoint="chat",
                requested_model="vllm/ok", served_model="vllm/ok", provider="vllm", prompt_tokens=10,
                completion_tokens=5, cost_nanos=5_000_000 + i, latency_ms=120.0, ttft_ms=None, cache="miss",
                task_type=task, trace_id=TRACE,
            )
        )  # fmt: skip
    await gateway.accounts.ledger.flush()
    store = await SpanStore.open(gateway.accounts.db)
    t0 = int((now - 600) * 1e9)
    await store.add(
        [
            StoredSpan(TRACE, "a" * 16, None, "POST /v1/chat/completions", "server", t0, t0 + 10**8, "ok",
                       {"http.route": "/v1/chat/completions", "note": every_spelling(OTLP_TOKEN)}),
            StoredSpan(TRACE, "b" * 16, "a" * 16, f"call {ENV_ONLY}", "client", t0, t0 + 10**7, "error",
                       {"error.message": f"refused {PROVIDER_KEY} at {WEBHOOK}"}),
        ]
    )  # fmt: skip
    uptime = Uptime(gateway.accounts.db, clock=lambda: now)
    for minute in range(30):
        down = 10 <= minute < 15
        detail = f"HTTP 401 for key {PROVIDER_KEY} / {quote(UNICODE)}" if down else ""
        await uptime.record("provider:vllm", ProbeResult(not down, 5.0, detail), now - (30 - minute) * 60)
    async with world.client() as client:
        page = await client.get("/dashboard")
        data = await client.get("/dashboard/data")
        trace = await client.get(f"/dashboard/traces/{TRACE}")
    assert page.status_code == data.status_code == trace.status_code == 200
    figures = data.json()
    assert {row["team"] for row in figures["spend"]["by_team"]} >= {MASK}
    assert_clean(page.text, "dashboard page")
    assert_clean(data.text, "dashboard data")
    assert_clean(orjson.dumps(figures).decode(), "dashboard data, parsed", masked=False)
    assert_clean(trace.text, "trace page")
    assert_clean(world.logs.getvalue(), "logs", masked=False)
