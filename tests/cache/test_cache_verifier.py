"""The verifier: shipped cross-encoder weights, the first stage and guards, symmetry, and the rebuild's data step."""

from __future__ import annotations

import gzip
import json
from importlib import resources
from pathlib import Path

import numpy as np
import pytest

from sophia.cache.cross_encoder import CrossEncoder
from sophia.cache.features import analyse, guard
from sophia.cache.training.train import main as train_main
from sophia.cache.verifier import WEIGHTS_FILE, Verifier, default_verifier
from sophia.embedder.minilm import get_minilm
from sophia.errors import ConfigError

PARAPHRASES = [
    ("How can I cancel my subscription?", "How do I cancel my subscription?"),
    ("How do I export my data to CSV?", "How can I export my data as a CSV file?"),
    ("What are the side effects of ibuprofen?", "What side effects does ibuprofen have?"),
    (
        "What's the difference between a list and a tuple in Python?",
        "What is the difference between lists and tuples in Python?",
    ),
]
#: the first two reach the model (cosine 0.80 and 0.99, no guard), the last two stop at the floor
NEAR_MISSES = [
    ("How do I cancel my subscription?", "How do I pause my subscription?"),
    ("Convert 10 miles to kilometers", "Convert 10 kilometers to miles"),
    ("How do I reset my password?", "How do I reset my username?"),
    ("How do I add a user to my team?", "How do I remove a user from my team?"),
]


def shipped() -> Path:
    return Path(str(resources.files("sophia.cache") / WEIGHTS_FILE))


def shipped_arrays() -> dict[str, np.ndarray]:
    with np.load(shipped()) as data:
        return {k: data[k] for k in data.files if k != "info"}


def score(verifier: Verifier, a: str, b: str) -> float:
    emb = get_minilm().encode([a, b])
    return float(verifier.scores(a, emb[0], [b], emb[1:])[0])


def test_shipped_weights_are_small_and_carry_their_threshold() -> None:
    assert shipped().stat().st_size < 20_000_000
    verifier = default_verifier()
    assert 0 < verifier.threshold < 1
    assert verifier.info["dev_holdout_standard"], "the held-out dev operating points are recorded in the file"
    assert verifier.info["dev_holdout_gateway"]
    assert 0 < verifier.floor < 1 and verifier.judged >= 1


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


def test_paraphrases_outscore_near_misses_which_stay_below_the_threshold() -> None:
    """Chat questions written for this test, not QQP: the model ranks them right.

    A paraphrase is not necessarily above the precision-first default (the verifier is trained
    with unlabelled QQP neighbours as negatives); see test_cache_semantic.py.
    """
    verifier = default_verifier()
    paraphrases = [score(verifier, a, b) for a, b in PARAPHRASES]
    near_misses = [score(verifier, a, b) for a, b in NEAR_MISSES]
    assert min(paraphrases) > max(near_misses), (paraphrases, near_misses)
    assert max(near_misses) < verifier.threshold


@pytest.mark.parametrize(("a", "b"), PARAPHRASES + NEAR_MISSES)
def test_which_question_came_first_never_changes_the_score(a: str, b: str) -> None:
    verifier = default_verifier()
    assert verifier.model.symmetric
    assert score(verifier, a, b) == pytest.approx(score(verifier, b, a), abs=1e-5)


def test_a_symmetric_model_averages_the_logits_of_both_orders() -> None:
    verifier = default_verifier()
    model = verifier.model
    one_way = CrossEncoder(
        model.encoder, shipped_arrays(), int(verifier.info["layers"]), int(verifier.info["frozen"])
    )
    pairs = [PARAPHRASES[1], NEAR_MISSES[1]]
    forward, backward = one_way.logits(pairs), one_way.logits([(b, a) for a, b in pairs])
    assert np.abs(forward - backward).max() > 1e-3  # the network itself is not symmetric
    np.testing.assert_allclose(model.logits(pairs), (forward + backward) / 2, atol=1e-4)


def test_first_stage_settles_guarded_far_and_identical_candidates() -> None:
    verifier = default_verifier()
    query = "Is the store open on Sunday?"
    candidates = [
        "is the store  open on sunday?",  # the same question: 1 without the model
        "Is the store open on Monday?",  # a name differs: 0 whatever the model says
        "What is the capital of France?",  # below the cosine floor: never judged
        "Is the shop open on Sunday?",
    ]
    emb = get_minilm().encode([query, *candidates])
    out = verifier.scores(query, emb[0], candidates, emb[1:])
    assert out.dtype == np.float32 and out.shape == (4,)
    assert out[0] == 1.0 and out[1] == 0.0 and out[2] == 0.0
    assert 0.0 < out[3] < 1.0
    pairs = verifier.score_pairs([query] * 4, np.repeat(emb[:1], 4, axis=0), candidates, emb[1:])
    np.testing.assert_allclose(pairs, out, atol=1e-5)
    assert verifier.scores(query, emb[0], [], emb[:0]).shape == (0,)


def test_only_the_closest_candidates_run_through_the_model() -> None:
    verifier = default_verifier()
    query = "How can I cancel my subscription?"
    candidates = [
        "How do I cancel my subscription?",
        "How can I cancel my subscription plan?",
        "How do I cancel a subscription?",
        "How can I cancel the subscription?",
    ]
    emb = get_minilm().encode([query, *candidates])
    out = verifier.scores(query, emb[0], candidates, emb[1:])
    assert int((out > 0).sum()) <= verifier.judged
    closest = np.argsort(-(emb[1:] @ emb[0]), kind="stable")[: verifier.judged]
    assert set(np.flatnonzero(out > 0)) <= set(closest.tolist())


def test_pair_states_batch_like_single_pairs_and_see_token_types() -> None:
    encoder = get_minilm()
    pairs = [("How do I learn Python?", "How can I learn Python fast?"), ("What is love?", "Define love")]
    batch = encoder.pair_states(pairs)
    singles = np.concatenate([encoder.pair_states([p]) for p in pairs])
    np.testing.assert_allclose(batch, singles, atol=1e-4)
    joined = encoder.pair_states([("How do I learn Python? How can I learn Python fast?", "")])
    assert not np.allclose(joined[0], batch[0], atol=1e-2)
    assert encoder.pair_states([]).shape == (0, encoder.dim)


@pytest.mark.parametrize("content", [b"not a zip file", b""])
def test_a_broken_file_is_a_config_error(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "broken.npz"
    path.write_bytes(content)
    with pytest.raises(ConfigError, match="cannot load"):
        Verifier.load(path)


def test_a_file_of_another_format_or_missing_weights_is_refused(tmp_path: Path) -> None:
    with np.load(shipped()) as data:
        arrays = {k: data[k] for k in data.files}
    info = json.loads(bytes(arrays["info"]).decode())
    old = {**arrays, "info": np.frombuffer(json.dumps({**info, "format": 1}).encode(), dtype=np.uint8)}
    np.savez(tmp_path / "old.npz", **old)
    with pytest.raises(ConfigError, match="rebuild it"):
        Verifier.load(tmp_path / "old.npz")
    headless = {k: v for k, v in arrays.items() if not k.startswith("head.")}
    np.savez(tmp_path / "headless.npz", **headless)
    with pytest.raises(ConfigError, match="head"):
        Verifier.load(tmp_path / "headless.npz")


def test_the_rebuild_prepares_the_same_pairs_from_dev_only(tmp_path: Path) -> None:
    questions = [
        ("How do I reset my password?", "How can I reset my password?", True),
        ("How do I cancel my plan?", "How do I pause my plan?", False),
        ("What is the capital of France?", "Which city is the capital of France?", True),
        ("How do I learn Python?", "How do I learn Java?", False),
    ]
    rows = [
        {"id": i * 10 + j, "split": "dev", "a": f"{a} ({j})", "b": f"{b} ({j})", "duplicate": d}
        for j in range(6)
        for i, (a, b, d) in enumerate(questions)
    ]
    rows.append({"id": 999, "split": "test", "a": "never read", "b": "never read either", "duplicate": False})
    data = tmp_path / "pairs.jsonl.gz"
    with gzip.open(data, "wt") as fh:
        fh.writelines(json.dumps(r) + "\n" for r in rows)
    built = []
    for name in ("one", "two"):
        work = tmp_path / name
        assert (
            train_main(["--data", str(data), "--work", str(work), "--steps", "prepare", "--holdout", "25"])
            == 0
        )
        with np.load(work / "cross-train.npz") as arrays:
            built.append({k: arrays[k] for k in arrays.files})
    for key in ("ids", "types", "offsets", "label"):
        np.testing.assert_array_equal(built[0][key], built[1][key])
    vocab = json.loads((Path(str(get_minilm_dir())) / "tokenizer.json").read_text())["model"]["vocab"]
    assert vocab["never"] not in set(built[0]["ids"].tolist())  # the test split is never read
    assert set(built[0]["types"].tolist()) == {0, 1}


def get_minilm_dir() -> Path:
    from sophia.embedder.minilm import default_model_dir

    return default_model_dir()
