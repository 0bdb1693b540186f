"""A budget is a promise (issue 22): hanging up early books what was consumed, and concurrent calls
overshoot a budget by at most one call's cost."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from fakes.helpers import chat, gateway_settings
from fakes.helpers import served as serve_gateway
from fakes.upstream import USAGE, FakeUpstream
from sophia.gateway.app import GatewayApp
from sophia.gateway.engine import Gateway
from sophia.providers import tokens
from sophia.storage import open_database

#: USD per million tokens: the fake upstream's 10 prompt + 5 completion tokens cost $0.02 a call
PRICE = {"input_price": 1000.0, "output_price": 2000.0, "context_window": 8192}
CALL_USD = (USAGE["prompt_tokens"] * 1000.0 + USAGE["completion_tokens"] * 2000.0) / 1e6
PRICED = {m: PRICE for m in ("vllm/long", "vllm/slow-0.3", "vllm/slow-10", "vllm/ok")}


def priced_settings(upstream: FakeUpstream) -> Any:
    return gateway_settings(
        upstream.url, models=PRICED, reliability={"timeout": 30, "first_byte_timeout": 30}
    )


@pytest.fixture
async def served(upstream: FakeUpstream) -> AsyncIterator[tuple[str, Gateway]]:
    """The gateway on a real loopback port (a client that hangs up must really close its socket)."""
    gw = Gateway(priced_settings(upstream))
    async with serve_gateway(gw) as url:
        yield url, gw


async def _rows(gw: Gateway, where: str = "1 = 1") -> list[dict[str, Any]]:
    await gw.accounts.ledger.flush()
    return await gw.accounts.db.fetchall(
        "SELECT outcome, status, prompt_tokens, completion_tokens, cost_usd, estimated "
        f"FROM sophia_usage WHERE {where} ORDER BY ts"
    )


async def _hang_up_after(http: httpx.AsyncClient, url: str, events: int) -> int:
    """Open a stream, read ``events`` content events, close the connection; the status seen."""
    async with http.stream("POST", f"{url}/v1/chat/completions", json=chat("vllm/long", stream=True)) as resp:
        if resp.status_code != 200:
            await resp.aread()
            return resp.status_code
        seen = 0
        async for line in resp.aiter_lines():
            if line.startswith("data: ") and '"content":"w' in line:
                seen += 1
            if seen == events:
                break
    return 200


async def _settled(gw: Gateway, count: int) -> list[dict[str, Any]]:
    for _ in range(250):
        rows = await _rows(gw)
        if len(rows) >= count:
            return rows
        await asyncio.sleep(0.02)
    raise AssertionError(f"expected {count} ledger rows, have {await _rows(gw)}")


async def test_a_stream_hung_up_before_its_usage_books_the_tokens_it_consumed(
    served: tuple[str, Gateway],
) -> None:
    url, gw = served
    secret, _ = await gw.accounts.keys.create(name="hang-up")
    async with httpx.AsyncClient(headers={"Authorization": f"Bearer {secret}"}, timeout=10) as http:
        assert await _hang_up_after(http, url, 4) == 200
    [row] = await _settled(gw, 1)
    assert row["outcome"] == "cancelled" and row["status"] == 499
    assert row["estimated"] == 1  # the provider's usage chunk never arrived
    assert row["prompt_tokens"] == tokens.prompt_tokens(chat("vllm/long", stream=True))
    assert row["completion_tokens"] >= 4  # at least what the client was sent
    assert row["cost_usd"] == pytest.approx(
        (row["prompt_tokens"] * 1000.0 + row["completion_tokens"] * 2000.0) / 1e6
    )


async def test_hanging_up_early_cannot_dodge_a_budget(served: tuple[str, Gateway]) -> None:
    """The probe's attack: five streams closed before their usage chunk on a $0.05/day key."""
    url, gw = served
    secret, _ = await gw.accounts.keys.create(name="dodger", budget_daily_usd=0.05)
    statuses = []
    async with httpx.AsyncClient(headers={"Authorization": f"Bearer {secret}"}, timeout=10) as http:
        for _ in range(5):
            statuses.append(await _hang_up_after(http, url, 4))
            await _settled(gw, statuses.count(200))  # each booking lands before the next call
    assert statuses[-1] == 429, statuses  # each hang-up books ~$0.016: four used the budget up
    rows = [r for r in await _rows(gw) if r["outcome"] == "cancelled"]
    spent = sum(r["cost_usd"] for r in rows)
    assert spent >= 0.05 and spent < 0.05 + CALL_USD  # booked, and overshot by less than one call


async def test_a_call_cancelled_while_the_model_works_books_its_prompt(served: tuple[str, Gateway]) -> None:
    url, gw = served
    secret, _ = await gw.accounts.keys.create(name="impatient")
    async with httpx.AsyncClient(headers={"Authorization": f"Bearer {secret}"}) as http:
        with pytest.raises(httpx.ReadTimeout):
            await http.post(f"{url}/v1/chat/completions", json=chat("vllm/slow-10"), timeout=0.5)
    [row] = await _settled(gw, 1)
    assert row["outcome"] == "cancelled" and row["estimated"] == 1
    assert (
        row["prompt_tokens"] == tokens.prompt_tokens(chat("vllm/slow-10")) and row["completion_tokens"] == 0
    )
    assert row["cost_usd"] == pytest.approx(row["prompt_tokens"] * 1000.0 / 1e6)


@pytest.mark.parametrize("max_tokens", [5, None])
async def test_concurrent_calls_overshoot_a_budget_by_at_most_one_call(
    upstream: FakeUpstream, max_tokens: int | None
) -> None:
    """Ten concurrent $0.02 calls on a $0.05 key: each holds its worst case while in flight."""
    gw = Gateway(priced_settings(upstream))
    await gw.start()
    try:
        secret, _ = await gw.accounts.keys.create(name="burst", budget_daily_usd=0.05)
        body = chat("vllm/slow-0.3") | ({"max_tokens": max_tokens} if max_tokens else {})
        transport = httpx.ASGITransport(app=GatewayApp(gw, lifespan=False))
        async with httpx.AsyncClient(
            transport=transport, base_url="http://sophia.test", headers={"Authorization": f"Bearer {secret}"}
        ) as http:
            answers = await asyncio.gather(*(http.post("/v1/chat/completions", json=body) for _ in range(10)))
            statuses = sorted(r.status_code for r in answers)
            refused = [r.json()["error"] for r in answers if r.status_code == 429]
            # Once the calls settled, the budget is spent: the next call is refused outright.
            after = await http.post("/v1/chat/completions", json=body)
        served_calls = statuses.count(200)
        assert set(statuses) <= {200, 429} and served_calls >= 1
        assert served_calls * CALL_USD < 0.05 + CALL_USD  # overshoot below one call's cost
        if max_tokens is None:  # no max_tokens: the worst case is the model's cap, one call at a time
            assert served_calls == 1
        assert all(e["type"] == "insufficient_quota" and "budget" in e["message"] for e in refused)
        assert after.status_code == (429 if served_calls * CALL_USD >= 0.05 else 200)
        assert upstream.calls["slow-0.3"] == served_calls + (after.status_code == 200)
    finally:
        await gw.close()


async def test_failed_calls_release_their_holds(upstream: FakeUpstream) -> None:
    """A call that fails upstream costs nothing and keeps nothing held: the budget is whole again."""
    settings = priced_settings(upstream)
    gw = Gateway(settings)
    await gw.start()
    try:
        secret, key = await gw.accounts.keys.create(name="fails", budget_daily_usd=0.05)
        transport = httpx.ASGITransport(app=GatewayApp(gw, lifespan=False))
        async with httpx.AsyncClient(
            transport=transport, base_url="http://sophia.test", headers={"Authorization": f"Bearer {secret}"}
        ) as http:
            for _ in range(5):
                failed = await http.post("/v1/chat/completions", json=chat("vllm/status-503"))
                assert failed.status_code in (502, 503)  # the provider's failure, then its open circuit
    finally:
        await gw.close()  # gives back what its lease held beyond calls in flight
    db = await open_database(settings.database_url)
    try:
        held = await db.fetchone(
            "SELECT COALESCE(SUM(nanos), 0) AS n FROM sophia_holds WHERE key_id = ?", [key.id]
        )
        spent = await db.fetchone(
            "SELECT COALESCE(SUM(nanos), 0) AS n FROM sophia_spend WHERE key_id = ?", [key.id]
        )
    finally:
        await db.close()
    assert held is not None and held["n"] == 0
    assert spent is not None and spent["n"] == 0
