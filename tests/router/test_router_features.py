"""The question the router reads: last user turn, minus the few-shot boilerplate learnt from data."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from sophia.router.features import CHEAP_NAMES, Boilerplate, cheap_features, last_user_turn, turns

PREFIX = "Answer the question.\n\nQ: 1+1?\nA: 2\n\nQ: capital of France?\nA: Paris\n\n"


def prompts(n: int = 10) -> list[str]:
    return [f"{PREFIX}Q: what is the colour of object {i}?\nA:" for i in range(n)]


def test_routerbench_prompts_are_python_list_literals() -> None:
    assert turns("['first', 'second\\nline']") == ["first", "second\nline"]
    assert turns("[not a literal") == ["[not a literal"]
    assert turns("[1, 2]") == ["[1, 2]"]
    assert turns("plain text") == ["plain text"]


def test_last_user_turn_of_chat_messages() -> None:
    messages: list[dict[str, Any]] = [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "first"},
        {"role": "assistant", "content": "ok"},
        {"role": "user", "content": [{"type": "text", "text": "second"}, {"type": "image_url"}]},
    ]
    assert last_user_turn(messages) == "second"
    assert last_user_turn("['a', 'b']") == "b"


def test_the_shared_prefix_and_suffix_are_learnt_and_stripped() -> None:
    texts = prompts()
    bp = Boilerplate.fit(texts, ["t"] * len(texts))
    assert bp.prefixes == ((PREFIX, "t"),)
    assert "A:" in bp.lines  # the answer cue every prompt ends with
    assert [bp.strip(t) for t in texts[:2]] == [
        "Q: what is the colour of object 0?",
        "Q: what is the colour of object 1?",
    ]


def test_questions_differ_after_stripping_though_the_prompts_share_most_characters() -> None:
    texts = prompts()
    bp = Boilerplate.fit(texts, ["t"] * len(texts))
    assert len({bp.strip(t) for t in texts}) == len(texts)
    assert all(len(bp.strip(t)) < 40 for t in texts)


def test_the_template_tells_the_task() -> None:
    a = prompts(6)
    b = [f"Translate carefully.\nRules: be literal and short please.\n\nText: word {i}" for i in range(6)]
    bp = Boilerplate.fit(a + b, ["math"] * 6 + ["translate"] * 6)
    assert bp.match(a[0])[1] == "math"
    assert bp.match(b[0]) == ("Text: word 0", "translate")
    assert bp.match("something else entirely") == ("something else entirely", None)


def test_repeated_blocks_are_removed_even_without_a_common_prefix() -> None:
    shots = ["Example one.\nAnswer: x", "Example two.\nAnswer: y"]
    texts = [f"Intro {i} differs.\n\n{shots[0]}\n\n{shots[1]}\n\nReal question {i}?" for i in range(8)]
    bp = Boilerplate.fit(texts)
    assert bp.strip(texts[3]) == "Intro 3 differs.\n\nReal question 3?"


def test_a_text_that_is_all_boilerplate_is_kept_whole() -> None:
    texts = prompts()
    bp = Boilerplate.fit(texts + [PREFIX.strip()] * 3, ["t"] * 13)
    assert bp.strip(PREFIX.strip()) == PREFIX.strip()


def test_small_groups_learn_nothing() -> None:
    assert Boilerplate.fit(prompts(2)) == Boilerplate()


def test_json_round_trip_and_shape_checks() -> None:
    texts = prompts()
    bp = Boilerplate.fit(texts, ["t"] * len(texts))
    assert Boilerplate.from_json(bp.to_json()) == bp
    with pytest.raises(ValueError, match="prefixes"):
        Boilerplate.from_json({"prefixes": ["not a pair"]})


def test_cheap_features_shape() -> None:
    f = cheap_features("def f(x):\n    return 1")
    assert f.shape == (len(CHEAP_NAMES),)
    assert f.dtype == np.float32
    assert f[CHEAP_NAMES.index("code_marks")] > 0
