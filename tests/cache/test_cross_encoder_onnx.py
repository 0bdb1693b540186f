"""The verifier's cross-encoder on onnxruntime (int8): the numpy scores within measured bounds, same API.

benchmarks/embeddings/onnx_check.py measures the bound: on the 60 chat pairs the int8
probabilities differ from numpy's by 0.013 on average and 0.107 at most (one pair near the
threshold), so the tests allow 0.15 on a pair and 0.02 on average; a wrong token type, mask or
block order moves them by far more (and the float32 graph must match numpy to 1e-4).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("onnxruntime")

import sophia.embedder as embedder
from sophia.cache.cross_encoder import CrossEncoder
from sophia.cache.verifier import Verifier
from sophia.embedder.minilm import get_minilm
from sophia.embedder.ort import OnnxMiniLM

CHAT = Path(__file__).resolve().parents[2] / "benchmarks" / "cache" / "chat_pairs.jsonl"
PAIRS = [
    ("How can I cancel my subscription?", "How do I cancel my subscription?"),
    ("How do I export my data to CSV?", "How can I export my data as a CSV file?"),
    ("How do I cancel my subscription?", "How do I pause my subscription?"),
    ("Convert 10 miles to kilometers", "Convert 10 kilometers to miles"),
    ("What is the capital of France?", "What is the capital of Spain?"),
]


@pytest.fixture(scope="module")
def onnx_encoder(tmp_path_factory: pytest.TempPathFactory) -> OnnxMiniLM:
    return OnnxMiniLM.load(cache_dir=tmp_path_factory.mktemp("onnx-cache"))


@pytest.fixture(scope="module")
def verifiers(onnx_encoder: OnnxMiniLM) -> tuple[Verifier, Verifier]:
    return Verifier.load(encoder=get_minilm()), Verifier.load(encoder=onnx_encoder)


def chat_pairs() -> list[tuple[str, str]]:
    rows = [json.loads(line) for line in CHAT.read_text().splitlines() if line.strip()]
    return [(str(r["asked"]), str(r["stored"])) for r in rows]


def test_int8_probabilities_follow_numpy(verifiers: tuple[Verifier, Verifier]) -> None:
    exact, fast = verifiers
    assert exact.model.runtime == "numpy" and fast.model.runtime == "onnxruntime"
    pairs = PAIRS + chat_pairs()
    want, got = exact.model.probabilities(pairs), fast.model.probabilities(pairs)
    assert got.dtype == np.float32 and got.shape == (len(pairs),)
    diff = np.abs(got - want)
    assert diff.max() < 0.15, diff
    assert diff.mean() < 0.02, diff
    # and the ranking of paraphrases over near misses is kept
    assert np.corrcoef(got, want)[0, 1] > 0.99


def test_the_order_of_the_questions_never_changes_the_score(verifiers: tuple[Verifier, Verifier]) -> None:
    fast = verifiers[1].model
    forward = fast.probabilities(PAIRS)
    backward = fast.probabilities([(b, a) for a, b in PAIRS])
    np.testing.assert_allclose(forward, backward, atol=1e-6)


def test_a_pair_gets_the_same_score_alone_or_in_a_batch(verifiers: tuple[Verifier, Verifier]) -> None:
    fast = verifiers[1].model
    together = fast.logits(PAIRS)
    alone = np.concatenate([fast.logits([p]) for p in PAIRS])
    np.testing.assert_array_equal(together, alone)
    assert fast.logits([]).shape == (0,)


def test_the_float32_graph_gives_numpy_logits(verifiers: tuple[Verifier, Verifier]) -> None:
    exact = verifiers[0]
    fp32 = OnnxMiniLM.load(cache_dir=False, int8=False)
    model = Verifier.load(encoder=fp32).model
    np.testing.assert_allclose(model.logits(PAIRS), exact.model.logits(PAIRS), atol=1e-4)


def test_the_default_verifier_runs_where_the_default_encoder_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(embedder, "_LOADED", {})
    assert Verifier.load().model.runtime == "onnxruntime"
    monkeypatch.setattr("sophia.cache.verifier.get_encoder", lambda: get_minilm())
    assert Verifier.load().model.runtime == "numpy"


def test_the_pair_graph_is_cached_per_weights(tmp_path: Path, onnx_encoder: OnnxMiniLM) -> None:
    encoder = OnnxMiniLM.load(cache_dir=tmp_path)
    Verifier.load(encoder=encoder)
    Verifier.load(encoder=encoder)
    assert len(list(tmp_path.glob("pairs-*"))) == 1
    shipped = Verifier.load(encoder=encoder)
    with _shipped() as data:
        arrays = {k: data[k] for k in data.files if k != "info"}
    arrays["head.bias"] = arrays["head.bias"] + 1.0  # another head: another graph
    other = CrossEncoder(encoder, arrays, int(shipped.info["layers"]), int(shipped.info["frozen"]), True)
    assert len(list(tmp_path.glob("pairs-*"))) == 2
    np.testing.assert_allclose(other.logits(PAIRS[:2]), shipped.model.logits(PAIRS[:2]) + 1.0, atol=1e-5)


def _shipped() -> np.lib.npyio.NpzFile:
    from importlib import resources

    from sophia.cache.verifier import WEIGHTS_FILE

    return np.load(Path(str(resources.files("sophia.cache") / WEIGHTS_FILE)))
