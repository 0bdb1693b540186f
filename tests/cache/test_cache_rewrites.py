"""The rewordings that extend the verifier's training data (``sophia.cache.training.rewrites``)."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pytest

from sophia.cache.training.rewrites import other_meaning, rewrite_pairs, same_meaning, substitutions, surface
from sophia.cache.training.train import main as train_main


@pytest.mark.parametrize(
    ("text", "allowed"),
    [
        ("How do I reset my password?", {"How can I reset my password?", "How could I reset my password?"}),
        ("What's the capital of Peru?", {"What is the capital of Peru?"}),
        ("Can I pay by card?", {"Is it possible to pay by card?", "Am I able to pay by card?"}),
        (
            "What is the best way to learn Go?",
            {"What's the best way to learn Go?", "What is a good way to learn Go?"},
        ),
    ],
)
def test_a_known_opening_is_swapped_for_one_of_the_same_meaning(text: str, allowed: set[str]) -> None:
    assert same_meaning(text) in allowed
    assert same_meaning(text) == same_meaning(text)  # the choice is stable


def test_a_definition_question_can_be_asked_as_a_request_to_explain() -> None:
    assert same_meaning("What is spandrel beam?") in {
        "What's spandrel beam?",
        "Can you explain what spandrel beam is?",
    }


def test_other_meaning_changes_a_word_to_its_opposite_or_the_question_word() -> None:
    assert other_meaning("How do I add a user?") in {
        "How do I remove a user?",
        "Why do I add a user?",
        "When do I add a user?",
        "Where do I add a user?",
    }
    assert other_meaning("Which is the best phone?") == "Which is the worst phone?"
    assert other_meaning("Was Jar Jar Binks a hero?") is None  # no rule applies


def test_pairs_are_capped_stable_and_labelled() -> None:
    texts = [f"How do I add item {i}?" for i in range(50)] + [f"What is thing {i}?" for i in range(50)]
    pairs = rewrite_pairs(texts, 10)
    assert pairs == rewrite_pairs(list(reversed(texts)), 10)  # order of the input does not matter
    labels = [label for _, _, label in pairs]
    assert labels.count(1.0) == 10 and labels.count(0.0) == 10
    assert all(x in texts and y not in texts for x, y, _ in pairs)


def test_surface_ignores_only_case_punctuation_and_articles() -> None:
    assert surface("What is the craziest thing?") == surface("what is craziest thing ?")
    assert surface("Is C++ hard?") != surface("Is C hard?")
    assert surface("How do I add a user?") != surface("How can I add a user?")


def test_rewrites_enter_the_training_pairs_when_asked(tmp_path: Path) -> None:
    rows = [
        {
            "id": i,
            "split": "dev",
            "a": f"How do I add account {i}?",
            "b": f"Where is account {i} added?",
            "duplicate": True,
        }
        for i in range(20)
    ]
    data = tmp_path / "pairs.jsonl.gz"
    with gzip.open(data, "wt") as fh:
        fh.writelines(json.dumps(r) + "\n" for r in rows)
    sources = {}
    for n in (0, 5):
        work = tmp_path / str(n)
        args = ["--data", str(data), "--work", str(work), "--steps", "prepare", "--holdout", "0"]
        assert train_main([*args, "--rewrites", str(n)]) == 0
        with np.load(work / "cross-train.npz") as arrays:
            sources[n] = arrays["source"], arrays["label"]
    assert not (sources[0][0] == 3).any()
    source, label = sources[5]
    assert (source == 3).sum() == 10 and label[source == 3].sum() == 5


def test_substitutions_keep_swaps_only_non_duplicates_make() -> None:
    pairs = [
        ("How do I learn Python quickly?", "How do I learn Java quickly?", False),
        ("What is a good laptop for coding?", "What is a good notebook for coding?", True),
        (
            "What is a good laptop for gaming?",
            "What is a good notebook for gaming?",
            False,
        ),  # also a dup: out
        ("Is this phone good?", "Is that phone good?", False),  # function words: out
        ("How do I cook rice?", "How can I cook rice fast?", False),  # not one word: out
    ]
    table = substitutions(pairs)
    assert table == {"python": ("java",), "java": ("python",)}
    assert other_meaning("Which Python book do you like?", table) == "Which Java book do you like?"
    assert other_meaning("Which Python book do you like?") is None  # no table, no other rule applies
