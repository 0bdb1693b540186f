"""The verifier: shipped weights, guards, symmetry, and a reproducible rebuild from a pairs file."""

from __future__ import annotations

import gzip
import json
from importlib import resources
from pathlib import Path

import numpy as np
import pytest

from sophia.cache.features import analyse, guard
from sophia.cache.train import main as train_main
from sophia.cache.verifier import WEIGHTS_FILE, Verifier, default_verifier
from sophia.errors import ConfigError
from sophia.providers.minilm import get_minilm


def test_shipped_weights_are_small_and_carry_their_threshold() -> None:
    size = (resources.files("sophia.cache") / WEIGHTS_FILE).stat().st_size  # type: ignore[attr-defined]
    assert size < 5_000_000
    verifier = default_verifier()
    assert 0 < verifier.threshold < 1
    assert verifier.info["dev_out_of_fold"], "the dev operating points are recorded in the file"


@pytest.mark.parametrize(
    ("a", "b", "reason"),
    [
        ("What was our revenue in Q3 2024?", "What was our revenue in Q3 2025?", "numbers differ"),
        ("Is the store open on Sunday?", "Is the store open on Monday?", "names differ"),
        ("Should I learn Python or Go first?", "should I learn python or go first", None),
        ("How do I reset my password?", "I forgot my password, how can I reset it?", None),
    ],
)
def test_guards(a: str, b: str, reason: str | None) -> None:
    assert guard(analyse(a), analyse(b)) == reason
    assert guard(analyse(b), analyse(a)) == reason


def test_scores_are_symmetric_probabilities_and_guarded() -> None:
    verifier = default_verifier()
    texts = [
        "How do I reset my password?",
        "I forgot my password, how can I reset it?",
        "Is it open on Sunday?",
    ]
    emb = get_minilm().encode(texts)
    forward = verifier.scores(texts[0], emb[0], texts[1:], emb[1:])
    backward = verifier.scores(texts[1], emb[1], [texts[0]], emb[:1])
    assert forward.shape == (2,) and np.all((forward >= 0) & (forward <= 1))
    assert forward[0] == pytest.approx(backward[0], abs=1e-5)
    assert verifier.scores("Is it open on Monday?", emb[2], [texts[2]], emb[2:])[0] == 0.0


def test_a_file_built_for_other_features_is_refused(tmp_path: Path) -> None:
    data = dict(np.load(resources.files("sophia.cache") / WEIGHTS_FILE))  # type: ignore[arg-type]
    info = json.loads(bytes(data["info"]).decode())
    info["scalars"] = ["something", "else"]
    data["info"] = np.frombuffer(json.dumps(info).encode(), dtype=np.uint8)
    path = tmp_path / "old.npz"
    np.savez(path, **data)
    with pytest.raises(ConfigError, match="rebuild it"):
        Verifier.load(path)


def test_training_command_builds_a_loadable_verifier_deterministically(tmp_path: Path) -> None:
    questions = [
        ("How do I reset my password?", "How can I reset my password?", True),
        ("How do I cancel my plan?", "How do I pause my plan?", False),
        ("What is the capital of France?", "Which city is the capital of France?", True),
        ("How do I learn Python?", "How do I learn Java?", False),
        ("How do I delete my account?", "How can I remove my account?", True),
        ("What is a good laptop for coding?", "What is a good phone for photos?", False),
    ]
    rows = [
        {"id": i * 10 + j, "split": "dev", "a": f"{a} ({j})", "b": f"{b} ({j})", "duplicate": d}
        for j in range(8)
        for i, (a, b, d) in enumerate(questions)
    ]
    rows.append({"id": 999, "split": "test", "a": "never read", "b": "never read either", "duplicate": False})
    data = tmp_path / "pairs.jsonl.gz"
    with gzip.open(data, "wt") as fh:
        fh.writelines(json.dumps(r) + "\n" for r in rows)
    outs = [tmp_path / "one.npz", tmp_path / "two.npz"]
    for out in outs:
        args = ["--data", str(data), "--out", str(out), "--folds", "2", "--epochs", "2", "--k", "2"]
        assert train_main(args) == 0
    first, second = (Verifier.load(o) for o in outs)
    np.testing.assert_array_equal(first.model.weights[0], second.model.weights[0])
    assert first.threshold == second.threshold
    assert "never" not in first.lexicon.index  # the test split is never read
