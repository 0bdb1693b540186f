"""Virtual keys: the store keeps only hashes; the cache authenticates fast and sees revocations within ttl."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from sophia.accounts.keys import KeyCache, KeyRecord, KeyStore, hash_secret
from sophia.errors import AuthenticationError, InvalidRequest, StorageError
from sophia.storage.testing import database_url

BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class CountingStore(KeyStore):
    """A real store that counts hash lookups and can hold them until released."""

    reads = 0
    gate: asyncio.Event | None = None

    async def get_by_hash(self, digest: str) -> KeyRecord | None:
        self.reads += 1
        if self.gate is not None:
            await self.gate.wait()
        return await super().get_by_hash(digest)


@pytest.fixture(params=BACKENDS)
async def url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    async with database_url(request.param, tmp_path) as u:
        yield u


@pytest.fixture
async def store(url: str) -> AsyncIterator[CountingStore]:
    s = await CountingStore.open(url)
    assert isinstance(s, CountingStore)
    yield s
    await s.close()


async def test_create_returns_secret_once_and_stores_only_its_hash(store: KeyStore) -> None:
    secret, record = await store.create(name="ci", owner="ana@example.com", team="data", rpm=60, tpm=10_000)
    assert secret.startswith("sk-sophia-")
    assert len(secret) > 40
    assert record.id.startswith("key_")
    assert len(record.id) == 16
    assert record.hash == hash_secret(secret)
    assert record.prefix == secret[:14] + "…"
    assert (record.name, record.owner, record.team, record.rpm, record.tpm) == (
        "ci",
        "ana@example.com",
        "data",
        60,
        10_000,
    )
    assert record.admin is False
    assert record.allowed_models is None
    assert record.revoked_at is None
    rows = await store.db.fetchall("SELECT * FROM sophia_keys")
    assert all(secret not in str(value) for row in rows for value in row.values())


async def test_lookups(store: KeyStore) -> None:
    secret, record = await store.create(
        name="full",
        admin=True,
        allowed_models=["openai/*", "local"],
        allowed_tools=("bi/sql_query",),
        budget_daily_usd=1.5,
        budget_monthly_usd=20,
        metadata={"purpose": "tests", "n": 1},
    )
    assert await store.get_by_secret(secret) == record
    assert await store.get(record.id) == record
    assert record.allowed_models == ("openai/*", "local")
    assert record.allowed_tools == ("bi/sql_query",)
    assert record.budget_monthly_usd == 20.0
    assert record.metadata == {"purpose": "tests", "n": 1}
    assert record.admin is True
    assert await store.get_by_secret(secret + "x") is None
    assert await store.get("key_000000000000") is None


async def test_revoke_list_and_count(store: KeyStore) -> None:
    s1, k1 = await store.create(name="one")
    _, k2 = await store.create(name="two")
    assert await store.count_active() == 2
    assert await store.revoke(k1.id) is True
    assert await store.revoke(k1.id) is False
    assert await store.revoke("key_nope") is False
    assert await store.get_by_secret(s1) is None
    revoked = await store.get(k1.id)
    assert revoked is not None
    assert revoked.revoked_at is not None
    assert [k.id for k in await store.list()] == [k2.id]
    assert {k.id for k in await store.list(include_revoked=True)} == {k1.id, k2.id}
    assert await store.count_active() == 1


async def test_update_changes_limits_and_validates(store: KeyStore) -> None:
    _, key = await store.create(name="k", rpm=10)
    updated = await store.update(key.id, rpm=None, tpm=500, budget_daily_usd=2.5, allowed_models=("local",))
    assert (updated.rpm, updated.tpm, updated.budget_daily_usd) == (None, 500, 2.5)
    assert updated.allowed_models == ("local",)
    assert updated.name == "k"
    assert await store.update(key.id) == updated
    with pytest.raises(InvalidRequest, match="hash"):
        await store.update(key.id, hash="0" * 64)
    with pytest.raises(InvalidRequest) as missing:
        await store.update("key_nope", rpm=1)
    assert missing.value.code == "not_found"
    with pytest.raises(InvalidRequest):
        await store.update(key.id, rpm=-1)
    with pytest.raises(InvalidRequest):
        await store.update(key.id, allowed_models="openai/*")
    with pytest.raises(InvalidRequest):
        await store.create(name="bad", tpm=1.5)  # type: ignore[arg-type]
    with pytest.raises(InvalidRequest, match="server/tool"):
        await store.create(name="bad", allowed_tools=["generate"])  # no server: would never match


def test_model_and_tool_permissions() -> None:
    base = KeyRecord(id="key_1", name="n", owner="", team="t", hash="h", prefix="p")
    assert base.allows_model("anything/at-all")
    assert base.allows_tool("any.tool")
    narrow = dataclasses.replace(base, allowed_models=("openai/*", "local"), allowed_tools=("sql.*",))
    assert narrow.allows_model("openai/gpt-4.1")
    assert narrow.allows_model("local")
    assert not narrow.allows_model("anthropic/claude")
    assert not narrow.allows_model("local2")
    assert narrow.allows_tool("sql.query")
    assert not narrow.allows_tool("infra.deploy")
    assert not dataclasses.replace(base, allowed_models=()).allows_model("local")
    assert not base.limited
    assert dataclasses.replace(base, budget_monthly_usd=1.0).limited
    assert hash(narrow) == hash(dataclasses.replace(narrow, metadata={"x": 1}))


async def test_authenticate_accepts_bearer_or_bare_token_and_never_echoes_it(store: CountingStore) -> None:
    secret, record = await store.create(name="k")
    cache = KeyCache(store, ttl=5.0)
    assert await cache.authenticate(f"Bearer {secret}") == record
    assert await cache.authenticate(f"bearer   {secret} ") == record
    assert await cache.authenticate(secret) == record
    assert store.reads == 1
    for bad in (
        None,
        "",
        "Bearer ",
        "Bearer sk-other-123",  # pragma: allowlist secret (a fake, on purpose)
        secret[:-2] + "zz",
        "Bearer sk-sophia-ünïcode",
    ):
        with pytest.raises(AuthenticationError) as caught:
            await cache.authenticate(bad)
        if bad:
            assert bad.split()[-1] not in caught.value.message
    assert store.reads == 2  # only the one well-formed unknown token reached the database


async def test_revocation_reaches_another_process_cache_within_ttl(url: str) -> None:
    admin, gateway = await KeyStore.open(url), await KeyStore.open(url)  # two processes' connections
    clock = Clock()
    cache = KeyCache(gateway, ttl=5.0, clock=clock)
    try:
        secret, record = await admin.create(name="soon revoked")
        assert await cache.authenticate(f"Bearer {secret}") == record
        assert await admin.revoke(record.id)
        clock.now += 4.9
        assert await cache.authenticate(f"Bearer {secret}") == record  # still trusted within ttl
        clock.now += 0.2
        with pytest.raises(AuthenticationError):
            await cache.authenticate(f"Bearer {secret}")
    finally:
        await admin.close()
        await gateway.close()


async def test_unknown_keys_are_remembered_for_at_most_a_second(store: CountingStore) -> None:
    clock = Clock()
    cache = KeyCache(store, ttl=30.0, clock=clock)
    ghost = "sk-sophia-" + "x" * 43
    for _ in range(3):
        with pytest.raises(AuthenticationError):
            await cache.authenticate(ghost)
    assert store.reads == 1
    clock.now += 1.01
    with pytest.raises(AuthenticationError):
        await cache.authenticate(ghost)
    assert store.reads == 2


async def test_concurrent_misses_share_one_read(store: CountingStore) -> None:
    secret, record = await store.create(name="busy")
    cache = KeyCache(store, ttl=0)  # no memory at all: still one read per burst
    store.gate = asyncio.Event()
    callers = [asyncio.ensure_future(cache.authenticate(f"Bearer {secret}")) for _ in range(20)]
    await asyncio.sleep(0)
    callers[0].cancel()  # a caller that goes away does not cancel the shared read
    store.gate.set()
    results = await asyncio.gather(*callers[1:])
    assert results == [record] * 19
    assert store.reads == 1
    assert callers[0].cancelled()
    store.gate = None
    await cache.authenticate(secret)
    assert store.reads == 2  # ttl 0: the next request reads again


async def test_storage_failure_is_not_an_authentication_failure(url: str) -> None:
    store = await KeyStore.open(url)
    secret, _ = await store.create(name="k")
    cache = KeyCache(store, ttl=5.0)
    await store.close()
    with pytest.raises(StorageError):
        await cache.authenticate(secret)


async def test_cache_is_bounded(store: CountingStore) -> None:
    cache = KeyCache(store, ttl=60.0, max_entries=8)
    for i in range(20):
        with pytest.raises(AuthenticationError):
            await cache.authenticate(f"sk-sophia-unknown-{i}")
    assert len(cache._entries) <= 8


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("rpm", 9223372036854775808),  # the probe's value: SQLite overflowed into a 500
        ("tpm", 2**70),
        ("rpm", -1),
        ("rpm", 1.5),
        ("rpm", "60"),
        ("budget_daily_usd", float("nan")),
        ("budget_daily_usd", float("inf")),
        ("budget_monthly_usd", 1e308),
        ("budget_monthly_usd", True),
        ("name", "x" * 201),
        ("name", "bad\x00name"),
        ("team", ""),
        ("allowed_models", ["m"] * 257),
        ("allowed_models", [7]),
        ("metadata", {"blob": "x" * 10_000}),
        ("metadata", {"when": object()}),
    ],
)
async def test_absurd_key_fields_are_refused_with_the_range(store: KeyStore, field: str, value: Any) -> None:
    with pytest.raises(InvalidRequest) as caught:
        await store.create(name="k", **{field: value}) if field != "name" else await store.create(name=value)
    assert caught.value.param == field
    assert await store.count_active() == 0  # nothing half-made
    _, key = await store.create(name="fine", rpm=60)
    if field not in ("name", "team"):
        with pytest.raises(InvalidRequest):
            await store.update(key.id, **{field: value})


async def test_limits_at_the_top_of_their_range_are_kept(store: KeyStore) -> None:
    from sophia.accounts.keys import MAX_BUDGET_USD, MAX_RATE

    _, key = await store.create(name="big", rpm=MAX_RATE, tpm=0, budget_daily_usd=MAX_BUDGET_USD)
    assert (key.rpm, key.tpm, key.budget_daily_usd) == (MAX_RATE, 0, MAX_BUDGET_USD)
