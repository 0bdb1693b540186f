"""Cache keys carry context: what changes the answer changes the namespace; what does not, does not."""

from __future__ import annotations

from typing import Any

import pytest

from sophia.cache.keys import request_keys, sampling_band
from sophia.cache.text import EARLIER_CHARS, user_text


def body(question: str = "How do I reset my password?", **extra: Any) -> dict[str, Any]:
    messages = [{"role": "system", "content": "You are a helpful support agent."}]
    messages.append({"role": "user", "content": question})
    return {"model": "sophia/fast", "messages": messages, **extra}


def keys(b: dict[str, Any], **kw: Any):
    args = {"model": "sophia/fast", "tenant": "team-a", "tags": (), "max_temperature": 0.7} | kw
    return request_keys(b, **args)


def test_same_request_same_keys() -> None:
    assert keys(body()) == keys(body())


def test_exact_key_ignores_surrounding_whitespace_and_transport_fields() -> None:
    plain = keys(body())
    padded = keys(body("  How do I reset my password?\n", stream=True, user="u1", metadata={"x": "1"}))
    assert padded.exact == plain.exact
    assert padded.namespace == plain.namespace


def test_different_question_same_namespace_different_exact_key() -> None:
    a, b = keys(body()), keys(body("I forgot my password, how can I reset it?"))
    assert a.namespace == b.namespace
    assert a.exact != b.exact


@pytest.mark.parametrize(
    "change",
    [
        {"tenant": "team-b"},
        {"model": "sophia/smart"},
        {"tags": ("crm.deals",)},
    ],
)
def test_context_arguments_separate_namespaces(change: dict[str, Any]) -> None:
    assert keys(body(), **change).namespace != keys(body()).namespace


def test_shared_entries_live_apart_from_every_tenants_own() -> None:
    shared = keys(body(), tenant=None).namespace
    assert shared == keys(body(), tenant=None).namespace
    assert shared != keys(body(), tenant="team-a").namespace


def test_system_prompt_separates_namespaces() -> None:
    other = body()
    other["messages"][0]["content"] = "You are a pirate. Answer in pirate speak."
    assert keys(other).namespace != keys(body()).namespace


@pytest.mark.parametrize(
    "extra",
    [
        {"tools": [{"type": "function", "function": {"name": "lookup_user", "parameters": {}}}]},
        {"response_format": {"type": "json_object"}},
        {"max_tokens": 5},
        {"seed": 7},
        {"some_future_parameter": True},
    ],
)
def test_answer_shaping_parameters_separate_namespaces(extra: dict[str, Any]) -> None:
    assert keys(body(**extra)).namespace != keys(body()).namespace


def test_temperature_goes_in_by_band() -> None:
    assert keys(body(temperature=0.2)).namespace == keys(body(temperature=0.25)).namespace
    assert keys(body(temperature=0)).namespace != keys(body(temperature=0.2)).namespace
    assert keys(body(temperature=0.2)).namespace != keys(body(temperature=1.0)).namespace
    assert sampling_band({}) == "default"
    assert sampling_band({"temperature": 0.5, "top_p": 0.5}) == "t0.7/p0.5"


def test_high_temperature_allows_exact_reuse_only() -> None:
    assert keys(body(temperature=0.2)).semantic_ok
    assert not keys(body(temperature=1.2)).semantic_ok
    assert keys(body(temperature=1.2), max_temperature=1.5).semantic_ok
    assert not keys(body(n=3)).semantic_ok


def test_follow_up_turns_never_share_a_namespace_with_first_questions() -> None:
    follow_up = body("And in Python?")
    follow_up["messages"][1:1] = [
        {"role": "user", "content": "How do I sort a list in Java?"},
        {"role": "assistant", "content": "Use Collections.sort(list)."},
    ]
    k = keys(follow_up)
    assert k.namespace != keys(body("And in Python?")).namespace
    assert k.text.text == "How do I sort a list in Java?\nAnd in Python?"
    assert k.text.turns == 2


def test_user_text_clips_earlier_turns_and_skips_assistant_turns() -> None:
    long_turn = "word " * 200
    messages = [
        {"role": "user", "content": long_turn},
        {"role": "assistant", "content": "An answer that must not be embedded."},
        {"role": "user", "content": [{"type": "text", "text": "Summarise   that."}]},
    ]
    text = user_text(messages)
    earlier, last = text.text.split("\n")
    assert len(earlier) == EARLIER_CHARS
    assert last == "Summarise that."
    assert "answer" not in text.text


@pytest.mark.parametrize(
    ("messages", "reason"),
    [
        (
            [
                {"role": "user", "content": "What is the weather?"},
                {"role": "assistant", "content": None, "tool_calls": [{"id": "1"}]},
                {"role": "tool", "tool_call_id": "1", "content": "sunny"},
            ],
            "tool results",
        ),
        (
            [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}],
            "non-text content",
        ),
        ([{"role": "system", "content": "only a system prompt"}], "no user text"),
    ],
)
def test_ineligible_conversations_use_the_exact_cache_only(messages: list, reason: str) -> None:
    text = user_text(messages)
    assert not text.eligible
    assert text.reason == reason
    assert not keys({"model": "m", "messages": messages}).semantic_ok
