"""The wrong-answer budget in the cache: checks, shadow comparisons, learned decisions, shared rows.

Real verifier and encoder; the comparator is a stand-in that answers from a table, so each test
says which answers are "the same".
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from cache.cache_helpers import MODEL, chat, ctx, eventually, remember
from fakes.helpers import FixedRandom
from sophia.cache import CacheSettings, ResponseCache
from sophia.cache.observations import Observation
from sophia.cache.store_local import LocalStore
from sophia.cache.store_redis import RedisStore
from sophia.settings.cache import ModelCacheSettings
from sophia.storage.testing import TEST_REDIS_URL, database_url, forget_redis_prefix

STORED = "How do I reset my password?"
ASKED = "How can I reset my password?"


class Verdicts:
    """A comparator: fresh and cached answers are the same unless the test says otherwise."""

    def __init__(self, same: bool = True) -> None:
        self.default = same
        self.asked: list[tuple[bytes, bytes]] = []

    async def same(self, fresh: bytes, cached: bytes) -> bool | None:
        self.asked.append((fresh, cached))
        return self.default


def settings(budget: float | None = 0.05, **kw: Any) -> CacheSettings:
    models = {MODEL: ModelCacheSettings(max_error_rate=budget, check_rate=kw.pop("check_rate", None))}
    return CacheSettings(models=models, sync_interval=kw.pop("sync_interval", 0.05), **kw)


Opener = Callable[..., Awaitable[ResponseCache]]


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
async def opener(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Opener]:
    opened: list[ResponseCache] = []
    async with database_url(request.param, tmp_path) as url:

        async def open_one(s: CacheSettings, comparator: Any = None) -> ResponseCache:
            cache = ResponseCache(s, LocalStore(url), comparator=comparator or Verdicts())
            await cache.start()
            opened.append(cache)
            return cache

        yield open_one
        for c in opened:
            await c.close()


async def lookup(cache: ResponseCache, question: str, tenant: str = "team-a") -> tuple[Any, Any]:
    c = ctx(tenant)
    return await cache.lookup(chat(question), c), c


async def test_a_cold_alias_asked_to_decides_like_the_threshold(opener: Opener) -> None:
    plain = await opener(CacheSettings())
    budgeted = await opener(settings(0.02, check_rate=0.0, budget_cold="threshold"))
    await remember(plain, STORED, tenant="plain")  # one database: each its own tenant
    await remember(budgeted, STORED, tenant="budgeted")
    questions = [ASKED, "How do I reset my email password?", "What is the capital of France?"]
    for q in questions:
        a, _ = await lookup(plain, q, "plain")
        b, _ = await lookup(budgeted, q, "budgeted")
        assert (a is None) == (b is None), q
        assert a is None or a.score == b.score
    assert (await lookup(budgeted, ASKED, "budgeted"))[0] is not None  # the rewording is served, as before


async def test_a_cold_alias_withholds_all_but_the_same_words_and_labels_them(opener: Opener) -> None:
    verdicts = Verdicts(same=True)
    cache = await opener(settings(0.02, shadow_checks=False), verdicts)  # budget_cold: withhold (default)
    cache.learner._random = FixedRandom(0.0)  # a would-be hit would be checked: none is served to check
    await remember(cache, STORED, "stored answer")
    hit, c = await lookup(cache, ASKED)
    assert hit is None  # the threshold would serve it (see above); nothing vouches for it yet
    # labelled even with shadow comparisons off: this is how a cold alias warms up, on misses it pays anyway
    assert c.pending is not None and c.pending.kind == "shadow"
    await cache.store(chat(ASKED), c, b"the model's answer", 10, 20, "m", 0.003)
    assert verdicts.asked == [(b"the model's answer", b"stored answer")]
    cache.learner._random = FixedRandom(0.99)  # (a served hit may be checked, like any other)
    same_words, _ = await lookup(cache, "  how do I RESET my password?")
    assert same_words is not None and same_words.score == 1.0
    far, c = await lookup(cache, "What is the capital of France?")
    assert far is None and c.pending is None  # below the threshold, and shadows are off: no comparison
    learned = (await cache.stats())["learning"][MODEL]
    assert learned["state"] == "withhold" and learned["shadows"] == 1 and learned["checks"] == 0


async def test_a_check_withholds_the_hit_and_labels_it_from_the_fresh_answer(opener: Opener) -> None:
    verdicts = Verdicts(same=False)
    cache = await opener(settings(0.05, check_rate=0.05, budget_cold="threshold"), verdicts)
    cache.learner._random = FixedRandom(0.0)
    await remember(cache, STORED, "stored answer")
    hit, c = await lookup(cache, ASKED)
    assert hit is None and c.pending is not None and c.pending.kind == "check"
    await cache.store(chat(ASKED), c, b"fresh answer", 10, 20, "m", 0.003)
    assert verdicts.asked == [(b"fresh answer", b"stored answer")]
    learned = (await cache.stats())["learning"][MODEL]
    assert learned["checks"] == 1 and learned["checks_wrong"] == 1
    assert learned["check_cost_usd"] == pytest.approx(0.003)
    assert learned["error_interval"][1] > 0.5  # one wrong check of one: nothing is known yet
    rows, _ = await cache.store_backend.observations()
    assert rows == [] or rows[0].kind == "check"  # written with the next sync
    await cache.learner.sync()
    rows, _ = await cache.store_backend.observations()
    assert [(r.kind, r.y, r.alias) for r in rows] == [("check", 1, MODEL)]
    assert rows[0].z > 2 and 0.8 < rows[0].cos <= 1.0


async def test_without_a_check_the_hit_is_served_and_counted(opener: Opener) -> None:
    cache = await opener(settings(0.05, budget_cold="threshold"))
    cache.learner._random = FixedRandom(0.99)
    await remember(cache, STORED)
    hit, c = await lookup(cache, ASKED)
    assert hit is not None and c.pending is None and hit.features is not None
    assert cache.learner.local[MODEL].served == 1


async def test_a_rejected_candidate_is_shadowed_at_no_model_cost(opener: Opener) -> None:
    verdicts = Verdicts(same=True)
    cache = await opener(settings(0.05, threshold=0.9999), verdicts)  # the rewording falls short of it
    await remember(cache, STORED, "stored answer")
    hit, c = await lookup(cache, ASKED)
    assert hit is None and c.pending is not None and c.pending.kind == "shadow"
    cache.store_soon(chat(ASKED), c, b"the model's answer", 10, 20, "m", 0.003)
    await cache.drain()
    rows = list(cache.learner.risk.model(MODEL)._y[: cache.learner.risk.model(MODEL).n])
    assert rows == [0.0]
    learned = (await cache.stats())["learning"][MODEL]
    assert learned["shadows"] == 1 and learned["checks"] == 0 and learned["check_cost_usd"] == 0


async def test_an_alias_without_a_budget_learns_nothing(opener: Opener) -> None:
    verdicts = Verdicts()
    cache = await opener(CacheSettings(threshold=0.9999), verdicts)
    await remember(cache, STORED)
    hit, c = await lookup(cache, ASKED)
    assert hit is None and c.pending is None
    cache.store_soon(chat(ASKED), c, b"x", 1, 1, "m", 0.0)
    await cache.drain()
    assert verdicts.asked == [] and (await cache.stats())["learning"] == {}


def wrong_rows(n: int, z: float, alias: str = MODEL, every: int = 3, like: Any = None) -> list[Observation]:
    """Shadow rows saying that candidates at logit ``z`` are wrong one time in ``every`` (0: never), and
    low ones always (not checks: they teach the model, they do not audit the rule). ``like``: a candidate's features, for rows about candidates just like it."""
    cos, margin, spread = (0.95, 4.0, 0.1) if like is None else (like.cos, like.margin, like.spread)
    out = []
    for i in range(n):
        y = int(every > 0 and i % every == 0)
        out.append(Observation(alias, "ns", "e", "shadow", 0.0, z, cos, margin, spread, y, origin="other"))
        out.append(Observation(alias, "ns", "e", "shadow", 0.0, -3.0, 0.8, 4.0, 0.1, 1, origin="other"))
    return out


async def test_once_warm_the_learned_rule_replaces_the_threshold(opener: Opener) -> None:
    cache = await opener(settings(0.05, check_rate=0.0, budget_cold="threshold"))
    await remember(cache, STORED)
    hit, _ = await lookup(cache, ASKED)
    assert hit is not None  # cold: the threshold serves it
    for r in wrong_rows(150, z=hit.features.z):
        cache.learner.keep(r)
    assert cache.learner.risk.warm(MODEL)
    hit, c = await lookup(cache, ASKED)
    assert hit is None and c.pending is not None and c.pending.kind == "shadow"
    assert (await cache.stats())["learning"][MODEL]["state"] == "learned"


async def test_a_withholding_alias_serves_once_its_rows_vouch_for_the_hit(opener: Opener) -> None:
    cache = await opener(settings(0.05, check_rate=0.0))
    await remember(cache, STORED)
    hit, c = await lookup(cache, ASKED)
    assert hit is None and c.pending is not None  # cold: withheld
    for r in wrong_rows(150, z=c.pending.features.z, every=0, like=c.pending.features):
        cache.learner.keep(r)
    hit, _ = await lookup(cache, ASKED)
    assert hit is not None and (await cache.stats())["learning"][MODEL]["state"] == "learned"


async def test_one_instance_learns_from_the_others_rows(opener: Opener) -> None:
    a = await opener(settings(0.05, check_rate=0.0, budget_cold="threshold"))
    b = await opener(settings(0.05, check_rate=0.0, budget_cold="threshold"))
    await remember(b, STORED, tenant="b")  # rows are per alias: b learns from a's about its own entries
    assert (await lookup(b, ASKED, "b"))[0] is not None
    for r in wrong_rows(150, z=7.0):
        a.learner.keep(r)
    await a.learner.sync()

    async def b_refuses() -> bool:
        return (await lookup(b, ASKED, "b"))[0] is None

    assert await eventually(b_refuses, within=5.0)
    assert b.learner.risk.warm(MODEL)
    # a restart reads every kept row
    c = await opener(settings(0.05, check_rate=0.0))
    assert c.learner.risk.model(MODEL).n == 300


async def test_one_instance_warms_the_other_up(opener: Opener) -> None:
    """With the default cold rule: b withholds the rewording until a's rows (about candidates like it,
    all right) reach it through the store; then b serves it."""
    a = await opener(settings(0.05, check_rate=0.0))
    b = await opener(settings(0.05, check_rate=0.0))
    await remember(b, STORED, tenant="b")
    withheld, c = await lookup(b, ASKED, "b")
    assert withheld is None and c.pending is not None
    for r in wrong_rows(150, z=c.pending.features.z, every=0, like=c.pending.features):
        a.learner.keep(r)
    await a.learner.sync()

    async def b_serves() -> bool:
        return (await lookup(b, ASKED, "b"))[0] is not None

    assert await eventually(b_serves, within=5.0)


@pytest.mark.redis
async def test_instances_on_redis_share_their_rows() -> None:
    prefix = f"sophia-test:{secrets.token_hex(6)}:"
    s = settings(0.05, check_rate=0.0, store="redis", redis_prefix=prefix, budget_cold="threshold")
    a = ResponseCache(s, RedisStore(TEST_REDIS_URL, prefix), comparator=Verdicts())
    b = ResponseCache(s, RedisStore(TEST_REDIS_URL, prefix), comparator=Verdicts())
    try:
        for cache in (a, b):
            await cache.start()
        await remember(a, STORED)

        async def b_serves() -> bool:
            return (await lookup(b, ASKED))[0] is not None

        assert await eventually(b_serves)
        for r in wrong_rows(150, z=7.0):
            a.learner.keep(r)

        async def b_refuses() -> bool:
            return (await lookup(b, ASKED))[0] is None

        assert await eventually(b_refuses, within=5.0)  # a's follower writes them, b's reads them

        async def b_has_all() -> bool:  # b may have read a part of a's batch first: it reads on
            return b.learner.risk.model(MODEL).n == 300

        assert await eventually(b_has_all, within=5.0)
    finally:
        for cache in (a, b):
            await cache.close()
        await forget_redis_prefix(prefix)


async def test_the_sweep_trims_rows_to_the_setting(opener: Opener) -> None:
    cache = await opener(settings(0.05, observations_kept=100))
    for r in wrong_rows(100, z=5.0):
        cache.learner.keep(r)
    await cache.learner.sync()
    assert await cache.store_backend.trim_observations(cache.settings.observations_kept) == 100


async def test_exact_hits_on_data_tagged_answers_are_checked_and_learned(opener: Opener) -> None:
    verdicts = Verdicts(same=False)
    cache = await opener(settings(0.05, check_rate=0.05), verdicts)  # exact hits: no cold rule
    tagged = {"tags": ("crm.deals",)}
    await cache.store(chat("Top deals?"), ctx(**tagged), b"old answer", 1, 1, "m", 0.0)
    await cache.store(chat("What is ARR?"), ctx(), b"arr answer", 1, 1, "m", 0.0)
    cache.learner._random = FixedRandom(0.0)
    assert await cache.lookup(chat("What is ARR?"), ctx()) is not None  # untagged: served as always
    c = ctx(**tagged)
    assert await cache.lookup(chat("Top deals?"), c) is None
    assert c.pending is not None and (c.pending.kind, c.pending.alias) == ("check", f"{MODEL}@exact")
    await cache.store(chat("Top deals?"), c, b"new answer", 1, 1, "m", 0.001)
    assert verdicts.asked == [(b"new answer", b"old answer")]
    hit = await cache.lookup(chat("Top deals?"), ctx(**tagged))
    assert hit is None  # checked again (the sampler always checks here) ...
    cache.learner._random = FixedRandom(0.99)
    hit = await cache.lookup(chat("Top deals?"), ctx(**tagged))
    assert hit is not None and hit.body == b"new answer"  # ... and the changed answer replaced the old
    # an alias whose tagged answers go out of date within minutes: old ones stop being served
    key = f"{MODEL}@exact"
    for i in range(100):
        young = Observation(key, "ns", "e", "check", 0.0, 8.0, 1.0, 4.0, 0.0, 0, origin="other")
        old = Observation(
            key, "ns", "e", "check", 0.0, 8.0 - 1.5 * 4.1, 1.0, 4.0, 0.0, int(i % 2 == 0), origin="other"
        )
        cache.learner.keep(young)
        cache.learner.keep(old)
    entry = cache.table.exact(cache._keys(chat("Top deals?"), ctx(**tagged)).exact)
    assert entry is not None
    entry.created -= 3600  # an hour old now
    c = ctx(**tagged)
    assert await cache.lookup(chat("Top deals?"), c) is None and c.pending.kind == "shadow"
    assert (await cache.stats())["learning"][key]["checks"] == 201


def audited(n: int, wrong: int, kind: str = "check") -> list[Observation]:
    """``n`` audited would-be hits (checks, or held ones), the first ``wrong`` of them wrong."""
    return [
        Observation(MODEL, "ns", "e", kind, 0.0, 5.0, 0.95, 4.0, 0.1, int(i < wrong), origin="other")
        for i in range(n)
    ]


async def test_the_backstop_withholds_hits_while_checks_say_the_rule_is_over_budget(opener: Opener) -> None:
    verdicts = Verdicts(same=True)
    # the model never warms up here (its rows are the audit's), so the threshold would decide
    s = settings(0.05, check_rate=0.05, budget_cold="threshold", warm_after=10**6)
    cache = await opener(s, verdicts)
    cache.learner._random = FixedRandom(0.99)  # no checks of our own: the rows below are the audit
    await remember(cache, STORED, "stored answer")
    await remember(cache, STORED, "stored answer", tenant="team-b")
    assert (await lookup(cache, ASKED))[0] is not None
    for row in audited(9, 3):
        cache.learner.keep(row)
    assert (await lookup(cache, ASKED))[0] is not None  # 9 audited: too few to judge
    cache.learner.keep(audited(1, 0)[0])  # 3 wrong of 10 at a 5% budget: the lower end is over it
    hit, c = await lookup(cache, ASKED, "team-b")  # (team-b: its answer is stored, team-a asks on)
    assert hit is None and c.pending is not None and c.pending.kind == "held"
    await cache.store(chat(ASKED), c, b"fresh answer", 10, 20, "m", 0.003)
    learned = (await cache.stats())["learning"][MODEL]
    assert learned["state"] == "backstop" and learned["held"] == 1 and learned["checks"] == 10
    assert learned["check_cost_usd"] == 0  # a held hit is a miss the model answers anyway: no check cost
    assert learned["audit"] == {"wrong": 0, "of": 1}  # the window starts afresh when the backstop trips
    same_words, _ = await lookup(cache, "how do i reset my password?")
    assert same_words is not None  # the same words are still served
    for row in audited(48, 3, kind="held"):  # 3 wrong of 49 held: over 5%, still held
        cache.learner.keep(row)
    assert (await lookup(cache, ASKED))[0] is None
    cache.learner.keep(audited(1, 0, kind="held")[0])  # 3 of 50: 6%, still over the budget's rate
    assert (await lookup(cache, ASKED))[0] is None
    for row in audited(20, 0, kind="held"):
        cache.learner.keep(row)  # 3 of 70: 4.3%, within it: let go
    assert (await lookup(cache, ASKED))[0] is not None
    assert (await cache.stats())["learning"][MODEL]["state"] == "threshold"


async def test_an_alias_within_its_budget_is_never_backstopped(opener: Opener) -> None:
    cache = await opener(settings(0.05, check_rate=0.05, budget_cold="threshold", warm_after=10**6))
    cache.learner._random = FixedRandom(0.99)
    await remember(cache, STORED)
    for row in audited(500, 10):  # 2% wrong: its lower end stays under 5%
        cache.learner.keep(row)
    assert (await lookup(cache, ASKED))[0] is not None
    assert not cache.learner.backstopped(MODEL)


async def test_an_answer_replaced_under_its_exact_key_measures_the_comparator(opener: Opener) -> None:
    verdicts = Verdicts(same=False)
    cache = await opener(settings(0.05), verdicts)
    await remember(cache, STORED, "first answer")
    await remember(cache, STORED, "second answer")  # the same question answered again (say, after a TTL)
    await cache.drain()
    assert verdicts.asked == [(b"second answer", b"first answer")]
    learned = (await cache.stats())["learning"][MODEL]
    assert learned["replaced"] == 1 and learned["replaced_different"] == 1
    assert learned["labelled"] == 0  # the same question twice says nothing about a paraphrase's risk
    await cache.learner.sync()
    rows, _ = await cache.store_backend.observations()
    assert [(r.kind, r.alias, r.y) for r in rows] == [("replace", MODEL, 1)]


async def test_a_replaced_data_tagged_answer_teaches_the_exact_hit_model(opener: Opener) -> None:
    verdicts = Verdicts(same=True)
    cache = await opener(settings(0.05, check_rate=0.0), verdicts)
    await remember(cache, "Top deals?", "the deals", tags=("crm.deals",))
    await remember(cache, "Top deals?", "the deals", tags=("crm.deals",))
    await cache.drain()
    key = f"{MODEL}@exact"
    assert cache.learner.risk.model(key).n == 1 and cache.learner.tallies[key].replaced == 1
    await remember(cache, "What is ARR?")
    await cache.drain()
    assert len(verdicts.asked) == 1  # a new question replaces nothing: nothing to compare
