"""The semantic layer runs where it pays: every request while hits save more than lookups cost, a sample otherwise."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from cache.cache_helpers import answer, chat, ctx
from sophia.cache.gate import SemanticGate

NS = "namespace"


def run(
    gate: SemanticGate, lookups: int, hit_every: int | None, miss_cost: float, lookup_cost: float
) -> None:
    """``lookups`` requests that each get a semantic lookup (as when the gate says yes), a hit every
    ``hit_every``, each miss costing ``miss_cost`` seconds."""
    for i in range(lookups):
        gate.plan(NS)
        hit = hit_every is not None and i % hit_every == 0
        gate.looked(NS, hit, lookup_cost)
        if not hit:
            gate.stored(NS, miss_cost, with_vector=True)


def embedded(gate: SemanticGate, requests: int) -> int:
    return sum(gate.plan(NS) for _ in range(requests))


def test_every_request_is_embedded_during_the_warm_up() -> None:
    gate = SemanticGate(sample=16, warmup=64)
    assert embedded(gate, 64) == 64  # nothing measured yet
    gate.looked(NS, False, 0.003)
    gate.stored(NS, 0.001, with_vector=True)
    assert embedded(gate, 160) == 10  # no hit, instant misses: from now on a sample


def test_no_hits_against_a_fast_upstream_embeds_one_request_in_sample() -> None:
    gate = SemanticGate(sample=16, warmup=64)
    run(gate, 200, None, miss_cost=0.001, lookup_cost=0.003)
    assert not gate.pays(NS)
    assert embedded(gate, 1600) == 100
    assert gate.snapshot()["sampling"] == 1


def test_rare_hits_pay_when_a_miss_costs_a_real_model_call() -> None:
    gate = SemanticGate(sample=16, warmup=64)
    run(gate, 1000, hit_every=100, miss_cost=0.8, lookup_cost=0.003)  # 1% hits, 800 ms per model call
    assert gate.pays(NS) and embedded(gate, 50) == 50


def test_the_same_hit_rate_does_not_pay_against_an_instant_upstream() -> None:
    gate = SemanticGate(sample=16, warmup=64)
    run(gate, 1000, hit_every=100, miss_cost=0.001, lookup_cost=0.003)
    assert not gate.pays(NS)


def test_hits_seen_in_the_sample_bring_full_lookups_back() -> None:
    gate = SemanticGate(sample=16, warmup=64)
    run(gate, 300, None, miss_cost=0.05, lookup_cost=0.003)
    assert not gate.pays(NS)
    for _ in range(400):  # only a sixteenth of the entries get vectors while sampling
        gate.stored(NS, 0.05, with_vector=False)
    # Paraphrases come back: a sampled lookup finds one 1 time in 8, which means about every
    # second request would hit if all were embedded (the sample sees only 1/16 of the vectors).
    for i in range(200):
        gate.looked(NS, i % 8 == 0, 0.003)
    assert gate.hit_rate(NS) > 0.5
    assert gate.pays(NS) and embedded(gate, 20) == 20


def test_namespaces_are_judged_apart_and_bounded() -> None:
    gate = SemanticGate(sample=4, warmup=4, max_namespaces=2)
    for ns in ("a", "b", "c"):
        for _ in range(10):
            gate.plan(ns)
            gate.looked(ns, ns == "a", 0.003)
            gate.stored(ns, 0.001, with_vector=True)
    assert gate.snapshot()["namespaces"] == 2  # "a", the oldest, was forgotten
    assert gate.pays("a")  # forgotten: warm-up again
    assert not gate.pays("c")


async def test_the_cache_embeds_only_a_sample_where_semantic_lookups_do_not_pay(
    cache_factory: Callable[..., Any],
) -> None:
    texts: list[str] = []

    def embed(text: str) -> Any:
        import numpy as np

        texts.append(text)
        vector = np.zeros(384, dtype=np.float32)
        vector[len(texts) % 384] = 1.0  # every question is far from the others: no neighbour, no hit
        return vector

    cache = await cache_factory()
    cache.compute.stand_in = embed
    cache.gate = SemanticGate(sample=8, warmup=16)
    for i in range(200):
        request, context = chat(f"Unique question number {i} about rent?"), ctx()
        assert await cache.lookup(request, context) is None
        cache.store_soon(request, context, b"answer", 5, 5, "m", 0.0)
        await cache.drain()
    # The warm-up embeds (lookup or store) every request; after it only one in eight.
    assert 16 + (200 - 16) // 8 - 2 <= len(texts) <= 16 + (200 - 16) // 8 + 8
    assert (
        await answer(cache, "Unique question number 7 about rent?") == "answer"
    )  # the exact layer still answers
    stats = await cache.stats()
    assert stats["semantic_gate"]["sampling"] == 1 and stats["entries"] == 200
