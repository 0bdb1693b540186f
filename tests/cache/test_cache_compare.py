"""The default answer comparator: exact, normalised, numbers, tool calls, then embedding similarity."""

from __future__ import annotations

from typing import Any

import numpy as np
import orjson
import pytest

from sophia.cache.compare import AnswerComparator, answer_of, normalise, numbers, small_edit
from sophia.embedder import get_encoder


def completion(text: str | None, *, tools: list[dict[str, Any]] | None = None, finish: str = "stop") -> bytes:
    message: dict[str, Any] = {"role": "assistant", "content": text}
    if tools:
        message["tool_calls"] = tools
    return orjson.dumps({"choices": [{"index": 0, "message": message, "finish_reason": finish}]})


class Counting:
    def __init__(self) -> None:
        self.calls = 0

    async def __call__(self, texts: list[str]) -> np.ndarray:
        self.calls += 1
        return get_encoder().encode(texts)


@pytest.fixture
def embed() -> Counting:
    return Counting()


async def test_equal_and_normalised_answers_are_the_same_without_embedding(embed: Counting) -> None:
    same = AnswerComparator(embed).same
    assert await same(completion("Go to Settings > Billing."), completion("Go to Settings > Billing."))
    assert await same(completion("Go to settings, then billing"), completion("go to Settings then Billing!"))
    assert embed.calls == 0


async def test_different_numbers_tools_or_finish_are_different(embed: Counting) -> None:
    same = AnswerComparator(embed).same
    assert not await same(completion("Churn was 4.2% in Q3."), completion("Churn was 4.5% in Q3."))
    call = {"type": "function", "function": {"name": "lookup", "arguments": '{"id": 1}'}}
    other = {"type": "function", "function": {"name": "lookup", "arguments": '{"id": 2}'}}
    assert not await same(completion(None, tools=[call]), completion("The deal is won."))
    assert not await same(completion(None, tools=[call]), completion(None, tools=[other]))
    assert await same(completion(None, tools=[call]), completion(None, tools=[call]))
    assert not await same(completion("Partial", finish="length"), completion("Partial answer"))
    assert embed.calls == 0


async def test_reworded_answers_are_the_same_and_other_answers_are_not(embed: Counting) -> None:
    same = AnswerComparator(embed, answer_similarity=0.9).same
    assert await same(
        completion("You can reset your password from the login page by clicking 'Forgot password'."),
        completion("You can reset your password on the login page: click 'Forgot password'."),
    )
    assert not await same(
        completion("You can reset your password from the login page by clicking 'Forgot password'."),
        completion("Invoices are listed under Billing in your account settings."),
    )
    assert embed.calls == 2


async def test_an_answer_with_a_word_or_two_changed_is_different_without_embedding(embed: Counting) -> None:
    same = AnswerComparator(embed, answer_similarity=0.5).same  # a loose bound: the rule decides, not it
    pairs = [
        (
            "The leasing office opens at the front desk on weekdays.",
            "The leasing office closes at the front desk on weekdays.",
        ),
        (
            "Sort the dictionary by value with sorted() and a key function.",
            "Sort the dictionary by key with sorted() and a key function.",
        ),
        ("You can cancel your plan under Billing, Plan.", "You can pause your plan under Billing, Plan."),
        ("Yes.", "No."),
        ("Turn on email notifications in Settings.", "Turn off email notifications in Settings."),
        ("Churn is highest for enterprise customers.", "Churn is highest for small business customers."),
    ]
    for a, b in pairs:
        assert not await same(completion(a), completion(b)), (a, b)
    assert embed.calls == 0
    # filler alone, or a real rewording (more than two words changed), is left to the embedding
    assert await same(
        completion("Go to Settings then Billing."), completion("Go to Settings and then Billing.")
    )
    assert embed.calls == 1


def test_small_edit() -> None:
    assert small_edit("the office opens at 9", "the office closes at 9")
    assert small_edit("sort by value", "sort by key")
    assert not small_edit("go to settings then billing", "go to the settings and then billing")  # filler
    assert not small_edit(
        "reset it from the login page by clicking forgot", "reset it on the login page click forgot"
    )
    assert not small_edit("same words", "same words")


async def test_something_that_is_not_a_completion_cannot_be_told(embed: Counting) -> None:
    same = AnswerComparator(embed).same
    assert await same(b"not json", completion("x")) is None
    assert await same(orjson.dumps({"error": "x"}), completion("x")) is None


def test_helpers() -> None:
    assert normalise("  Hello,   World! ") == "hello world"
    assert numbers("1,200 units at 3.5 each, 7 days") == {"1200", "3.5", "7"}
    parsed = answer_of(completion("hi"))
    assert parsed is not None and parsed.text == "hi" and parsed.finish == "stop"


async def test_a_busy_encoder_gives_no_verdict_rather_than_a_wait() -> None:
    async def busy(texts: list[str]) -> None:
        return None

    same = AnswerComparator(busy).same
    assert (
        await same(completion("Rent is due at the start of the month."), completion("Pay rent early."))
        is None
    )
    assert await same(completion("Same."), completion("same")) is True  # settled without the encoder


def test_list_markers_are_not_figures() -> None:
    assert numbers("1. Open Billing\n2. Pick the invoice\n  3) Download it") == frozenset()
    assert numbers("- 1. first\nThe fee is 1,250.50 on day 5.") == {"1250.50", "5"}
