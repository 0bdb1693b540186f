"""The semantic layer on chat questions written for these tests (not benchmark data).

These run the real MiniLM encoder and the shipped verifier. Hard negatives must miss at the
default threshold (precision first, chosen on the dev split) and at the benchmark's "balanced"
operating point 0.5; paraphrases are checked at 0.5, because at the default the QQP-trained
verifier (a cross-encoder) serves only rewordings it is very sure of: of these twelve, four
(cancel, capital, list vs tuple, PayPal) score above its default. The cases it gets wrong are
marked ``xfail`` (strict) with the reason, so that a better verifier shows up as an XPASS.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from cache.cache_helpers import answer, chat, ctx, remember
from sophia.cache import ResponseCache

BALANCED = 0.5
UNSURE = "the QQP-trained verifier treats an added clause or a swapped verb as a new question"
#: served by the earlier feature MLP at 0.5, not by the cross-encoder (scores 0.08 and 0.38)
CONSERVATIVE = (
    "the cross-encoder, trained with unlabelled QQP neighbours as negatives, scores this rewording below 0.5"
)

PARAPHRASES = [
    ("How do I reset my password?", "I forgot my password, how can I reset it?"),
    ("How can I cancel my subscription?", "How do I cancel my subscription?"),
    ("What is the capital of France?", "What's the capital city of France?"),
    ("How do I change my email address?", "How can I update my email address?"),
    ("How do I export my data to CSV?", "How can I export my data as a CSV file?"),
    pytest.param(
        "What is a neural network?",
        "Can you explain what a neural network is?",
        marks=pytest.mark.xfail(reason=UNSURE, strict=True),
    ),
    ("What are the side effects of ibuprofen?", "What side effects does ibuprofen have?"),
    pytest.param(
        "How do I delete my account?",
        "How can I delete my account permanently?",
        marks=pytest.mark.xfail(reason=UNSURE, strict=True),
    ),
    (
        "What's the difference between a list and a tuple in Python?",
        "What is the difference between lists and tuples in Python?",
    ),
    pytest.param(
        "How long does shipping to Canada take?",
        "How many days does shipping to Canada take?",
        marks=pytest.mark.xfail(reason=CONSERVATIVE, strict=True),
    ),
    ("Can I pay with PayPal?", "Is it possible to pay with PayPal?"),
    pytest.param(
        "How do I enable two-factor authentication?",
        "How can I turn on two-factor authentication?",
        marks=pytest.mark.xfail(reason=CONSERVATIVE, strict=True),
    ),
]

HARD_NEGATIVES = [
    ("How do I cancel my subscription?", "How do I pause my subscription?"),
    ("What was our revenue in Q3 2024?", "What was our revenue in Q3 2025?"),
    ("What is the best way to learn Python?", "What is the best way to learn Java?"),
    ("How do I reset my password?", "How do I reset my username?"),
    ("What is the capital of France?", "What is the capital of Spain?"),
    ("How do I add a user to my team?", "How do I remove a user from my team?"),
    ("How long does shipping to Canada take?", "How long does shipping to Mexico take?"),
    ("What are the side effects of ibuprofen?", "What are the side effects of paracetamol?"),
    ("How do I upgrade to the Pro plan?", "How do I downgrade to the Free plan?"),
    ("Is the store open on Sunday?", "Is the store open on Monday?"),
    ("How many employees joined in 2023?", "How many employees left in 2023?"),
    ("Convert 10 miles to kilometers", "Convert 10 kilometers to miles"),
]


@pytest.fixture
async def balanced(cache_factory: Callable[..., Any]) -> ResponseCache:
    return await cache_factory(threshold=BALANCED)


@pytest.mark.parametrize(("stored", "asked"), PARAPHRASES)
async def test_paraphrase_is_served_from_the_cache(balanced: ResponseCache, stored: str, asked: str) -> None:
    await remember(balanced, stored)
    hit = await balanced.lookup(chat(asked), ctx())
    assert hit is not None, f"{asked!r} should reuse the answer to {stored!r}"
    assert hit.kind == "semantic"
    assert hit.body.decode() == f"answer to: {stored}"
    assert hit.similarity is not None and hit.score is not None and hit.score >= BALANCED


@pytest.mark.parametrize(("stored", "asked"), HARD_NEGATIVES)
async def test_near_miss_is_not_served_at_the_default_threshold(
    cache: ResponseCache, stored: str, asked: str
) -> None:
    await remember(cache, stored)
    assert await answer(cache, asked) is None, f"{asked!r} must not reuse the answer to {stored!r}"


@pytest.mark.parametrize(("stored", "asked"), HARD_NEGATIVES)
async def test_near_miss_is_not_served_at_the_balanced_point(
    balanced: ResponseCache, stored: str, asked: str
) -> None:
    await remember(balanced, stored)
    assert await answer(balanced, asked) is None, f"{asked!r} must not reuse the answer to {stored!r}"


async def test_best_candidate_wins_among_several_neighbours(balanced: ResponseCache) -> None:
    stored = [
        "How can I cancel my subscription?",
        "How can I pause my subscription?",
        "How do I renew my plan?",
    ]
    for question in stored:
        await remember(balanced, question)
    assert await answer(balanced, "How do I cancel my subscription?") == f"answer to: {stored[0]}"
    assert await answer(balanced, "How do I pause my subscription?") == f"answer to: {stored[1]}"


async def test_a_different_namespace_never_answers(balanced: ResponseCache) -> None:
    await remember(balanced, "How can I cancel my subscription?", tenant="team-a")
    assert await answer(balanced, "How do I cancel my subscription?", tenant="team-b") is None
