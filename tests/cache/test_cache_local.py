"""ResponseCache on the embedded store: exact hits, context, invalidation, TTL, purge and restarts."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import pytest

from cache.cache_helpers import answer, chat, ctx, remember
from sophia.cache import CacheSettings, ResponseCache
from sophia.cache.store_local import LocalStore


async def test_exact_hit_returns_the_stored_answer_and_usage(cache: ResponseCache) -> None:
    await remember(cache, "How do I reset my password?", "Click 'Forgot password'.")
    hit = await cache.lookup(chat("How do I reset my password?"), ctx())
    assert hit is not None
    assert (hit.kind, hit.body, hit.model_id) == ("exact", b"Click 'Forgot password'.", "openai/gpt-4.1-mini")
    assert (hit.prompt_tokens, hit.completion_tokens, hit.cost_usd) == (12, 34, 0.0002)
    assert hit.similarity is None
    assert 0 <= hit.age_s < 60
    stats = await cache.stats()
    assert (stats["entries"], stats["hits_exact"], stats["tokens_saved"]) == (1, 1, 46)
    assert stats["usd_saved"] == pytest.approx(0.0002)


async def test_a_miss_embeds_only_when_there_is_something_to_compare(cache: ResponseCache) -> None:
    empty = ctx()
    assert await cache.lookup(chat("What is our refund policy?"), empty) is None
    assert empty.embedding is None  # nothing stored in its namespace: the store will embed, off the path
    await cache.store(chat("What is our refund policy?"), empty, b"{}", 1, 1, "m", 0.0)
    assert empty.embedding is not None and empty.embedding.shape == (384,)
    other = ctx()
    assert await cache.lookup(chat("Which plans include SSO?"), other) is None
    assert other.embedding is not None  # filled for the store and the router
    assert (await cache.stats())["misses"] == 2


async def test_tenants_do_not_share_answers_unless_configured(cache_factory: Callable[..., Any]) -> None:
    private = await cache_factory()
    await remember(private, "How do I reset my password?", tenant="team-a")
    assert await answer(private, "How do I reset my password?", tenant="team-b") is None
    await private.close()
    shared = await cache_factory(share_across_tenants=True)
    await remember(shared, "What is the VAT rate in Germany?", tenant="team-a")
    assert await answer(shared, "What is the VAT rate in Germany?", tenant="team-b") is not None


async def test_system_prompt_and_temperature_band_keep_answers_apart(cache: ResponseCache) -> None:
    await remember(cache, "Tell me a joke about cats.", body={"temperature": 0})
    assert await answer(cache, "Tell me a joke about cats.", body={"temperature": 0}) is not None
    assert await answer(cache, "Tell me a joke about cats.", body={"temperature": 0.6}) is None
    assert (
        await answer(cache, "Tell me a joke about cats.", body={"temperature": 0, "system": "Be terse."})
        is None
    )


async def test_high_temperature_requests_get_exact_reuse_only(cache: ResponseCache) -> None:
    await remember(cache, "Write a poem about the sea.", body={"temperature": 1.0})
    assert await answer(cache, "Write a poem about the sea.", body={"temperature": 1.0}) is not None
    hit = await cache.lookup(chat("Write a short poem about the sea.", temperature=1.0), ctx())
    assert hit is None


async def test_strategies_per_model(cache_factory: Callable[..., Any]) -> None:
    cache = await cache_factory(models={"sophia/*": {"strategy": "exact"}, "local": {"strategy": "off"}})
    await remember(cache, "How do I reset my password?")
    assert await answer(cache, "How do I reset my password?") is not None
    assert await answer(cache, "I forgot my password, how can I reset it?") is None  # exact only
    await remember(cache, "How do I reset my password?", model="local")
    assert await answer(cache, "How do I reset my password?", model="local") is None  # off


async def test_tag_bump_invalidates_every_dependent_entry(cache: ResponseCache) -> None:
    await remember(cache, "What were our Q3 deals?", tags=("crm.deals",))
    await remember(cache, "Who closed the largest deal?", tags=("crm.deals", "crm.people"))
    await remember(cache, "How many people work in sales?", tags=("crm.people",))
    assert await answer(cache, "What were our Q3 deals?", tags=("crm.deals",)) is not None
    assert await cache.bump("crm.deals") == 2
    assert await answer(cache, "What were our Q3 deals?", tags=("crm.deals",)) is None
    assert await answer(cache, "Who closed the largest deal?", tags=("crm.deals", "crm.people")) is None
    assert await answer(cache, "How many people work in sales?", tags=("crm.people",)) is not None


async def test_answer_computed_before_a_bump_is_not_stored(cache: ResponseCache) -> None:
    context = ctx(tags=("crm.deals",))
    request = chat("What were our Q3 deals?")
    assert await cache.lookup(request, context) is None
    await cache.bump("crm.deals")  # the data changed while the provider was answering
    await cache.store(request, context, b"stale", 1, 1, "m", 0.0)
    assert await answer(cache, "What were our Q3 deals?", tags=("crm.deals",)) is None


async def test_ttl_per_model(cache_factory: Callable[..., Any], monkeypatch: pytest.MonkeyPatch) -> None:
    cache = await cache_factory(ttl=3600, models={"sophia/fast": {"ttl": 60}})
    await remember(cache, "How do I reset my password?")
    await remember(cache, "How do I reset my password?", model="sophia/smart")
    later = time.time() + 120
    monkeypatch.setattr("sophia.cache.cache.time", lambda: later)
    assert await answer(cache, "How do I reset my password?") is None
    assert await answer(cache, "How do I reset my password?", model="sophia/smart") is not None


async def test_purge_by_model_tenant_and_tag(cache: ResponseCache) -> None:
    await remember(cache, "Question one?", tenant="team-a")
    await remember(cache, "Question two?", tenant="team-b")
    await remember(cache, "Question three?", tenant="team-a", model="sophia/smart", tags=("docs",))
    assert await cache.purge(tag="docs") == 1
    assert await cache.purge(tenant="team-b") == 1
    assert await answer(cache, "Question one?", tenant="team-a") is not None
    assert await cache.purge(model="sophia/fast") == 1
    assert (await cache.stats())["entries"] == 0


async def test_restart_keeps_the_cache(cache_factory: Callable[..., Any]) -> None:
    first = await cache_factory(threshold=0.5)
    await remember(first, "How can I cancel my subscription?", "Settings > Billing > Cancel.")
    await first.close()
    second = await cache_factory(threshold=0.5)
    assert await answer(second, "How can I cancel my subscription?") == "Settings > Billing > Cancel."
    hit = await second.lookup(chat("How do I cancel my subscription?"), ctx())
    assert hit is not None and hit.kind == "semantic"


async def test_oldest_entries_go_first_beyond_max_entries(cache_factory: Callable[..., Any]) -> None:
    cache = await cache_factory(max_entries=2)
    for q in ("First question?", "Second question?", "Third question?"):
        await remember(cache, q)
    assert await answer(cache, "First question?") is None
    assert await answer(cache, "Third question?") is not None
    assert (await cache.stats())["entries"] == 2


async def test_large_answers_are_not_cached(cache_factory: Callable[..., Any]) -> None:
    cache = await cache_factory(max_body_bytes=10)
    await remember(cache, "How do I reset my password?", "x" * 11)
    assert await answer(cache, "How do I reset my password?") is None


async def test_a_store_only_cache_purges_what_the_serving_one_then_misses(
    cache_factory: Callable[..., Any],
) -> None:
    """A purge made by another process (the CLI) is honoured once the hit's confirmation is due
    (``confirm_interval``: until then the serving process answers from memory)."""
    cache = await cache_factory(confirm_interval=0.2)
    await remember(cache, "Which deals closed this week?", tags=("crm.deals",))
    await remember(cache, "Who is on call tonight?")
    store = cache.store_backend
    assert isinstance(store, LocalStore)
    admin = ResponseCache(CacheSettings(), LocalStore(store.database_url))
    await admin.start(serve=False)  # what `sophia cache purge` opens: no index, no background work
    try:
        assert len(admin.table) == 0 and await admin.store_backend.count() == 2
        assert await admin.purge(tag="crm.deals") == 1
    finally:
        await admin.close()
    await asyncio.sleep(0.25)
    assert await answer(cache, "Which deals closed this week?", tags=("crm.deals",)) is None
    assert await answer(cache, "Who is on call tonight?") is not None
