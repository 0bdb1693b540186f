"""The process container: the accounts first, each service started once on first use, closed in reverse."""

from __future__ import annotations

import asyncio

import pytest

from sophia.container import Service, Services
from sophia.settings import load_settings


def tracked(log: list[str], name: str, delay: float = 0.0) -> Service[str]:
    async def start(services: Services) -> str:
        assert services.accounts is not None, "the accounts open before any service"
        log.append(f"start {name}")
        await asyncio.sleep(delay)
        return f"{name}-instance"

    async def stop(value: str) -> None:
        log.append(f"stop {value}")

    return Service(name, start, stop)


async def test_a_service_starts_once_however_many_ask_at_once() -> None:
    log: list[str] = []
    services = Services(load_settings())
    slow = tracked(log, "slow", delay=0.05)
    values = await asyncio.gather(*(services.get(slow) for _ in range(10)))
    assert values == ["slow-instance"] * 10 and log == ["start slow"]
    assert services.running(slow) == "slow-instance"
    await services.close()


async def test_services_close_in_reverse_order_then_the_accounts() -> None:
    log: list[str] = []
    services = Services(load_settings())
    first, second = tracked(log, "first"), tracked(log, "second")
    await services.get(first)
    await services.get(second)
    accounts = services.accounts
    assert accounts is not None
    await services.close()
    assert log == ["start first", "start second", "stop second-instance", "stop first-instance"]
    assert services.accounts is None
    with pytest.raises(RuntimeError, match="closed"):
        await services.get(tracked(log, "late"))
    await services.close()  # idempotent


async def test_keys_are_checked_without_starting_any_service() -> None:
    services = Services(load_settings())
    accounts = await services.open()
    secret, record = await accounts.keys.create(name="ide", team="data")
    key = await services.authenticate(f"Bearer {secret}")
    assert key is not None and key.id == record.id and key.team == "data"
    assert services._running == {}
    await services.close()


async def test_a_failing_stop_does_not_keep_the_others_running(caplog: pytest.LogCaptureFixture) -> None:
    log: list[str] = []

    async def broken_stop(value: str) -> None:
        raise RuntimeError("stop failed (test)")

    services = Services(load_settings())
    await services.get(tracked(log, "kept"))

    async def start(_: Services) -> str:
        return "broken-instance"

    await services.get(Service("broken", start, broken_stop))
    await services.close()
    assert "stop kept-instance" in log and "stopping broken failed" in caplog.text


async def test_a_lent_service_is_used_and_closed_only_when_asked() -> None:
    log: list[str] = []
    services = Services(load_settings())
    lent = tracked(log, "lent")
    services.provide(lent, "made-elsewhere")
    assert await services.get(lent) == "made-elsewhere" and log == []
    with pytest.raises(RuntimeError, match="already running"):
        services.provide(lent, "again")
    await services.close()
    assert log == []  # not ours to stop
