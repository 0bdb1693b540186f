"""MiniLM on onnxruntime (int8): the same vectors and neighbours as the numpy reference, within measured bounds.

The bounds come from benchmarks/embeddings/onnx_check.py (README there): over 11,000 QQP questions
the int8 vectors' cosine to numpy's is 0.994 on average and never below 0.96; the float32 graph
is the numpy model to 1e-6. A graph with a wrong mask, token type or pooling falls far below.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")

import sophia.embedder as embedder
from sophia.embedder import graph, load_encoder, modelcache
from sophia.embedder.minilm import MiniLM, get_minilm
from sophia.embedder.ort import OnnxMiniLM
from sophia.errors import ConfigError, DependencyMissing

REFERENCE = json.loads((Path(__file__).parent / "data" / "minilm_reference.json").read_text(encoding="utf-8"))
STORED = [
    "How do I reset my password?",
    "What is the refund policy for annual plans?",
    "Can I export the dashboard as a PDF file?",
    "Which regions does the service run in?",
    "How do I invite a new member to my workspace?",
    "What time does the leasing office open?",
    "How can I set up automatic rent payments?",
    "What is the difference between a list and a tuple in Python?",
    "How many vacation days do new employees get?",
    "Why is my invoice total different from my order?",
    "What are the side effects of ibuprofen?",
    "How do I convert miles to kilometers?",
]
QUERIES = [
    ("I forgot my password, how can I change it?", 0),
    ("Do you refund annual subscriptions?", 1),
    ("How can I add someone to my workspace?", 4),
    ("When does the leasing office open?", 5),
    ("Lists vs tuples in Python: what's the difference?", 7),
    ("Which side effects does ibuprofen have?", 10),
]


@pytest.fixture(scope="module")
def onnx_model(tmp_path_factory: pytest.TempPathFactory) -> OnnxMiniLM:
    return OnnxMiniLM.load(cache_dir=tmp_path_factory.mktemp("onnx-cache"))


@pytest.fixture(scope="module")
def reference() -> MiniLM:
    return get_minilm()


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def test_int8_vectors_follow_the_numpy_ones(onnx_model: OnnxMiniLM, reference: MiniLM) -> None:
    texts = [*REFERENCE["texts"], *STORED, *(q for q, _ in QUERIES)]
    got, exact = onnx_model.encode(texts), reference.encode(texts)
    assert got.dtype == np.float32 and got.shape == (len(texts), 384)
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
    agreement = cosines(got, exact)
    assert agreement.min() > 0.96, agreement
    assert agreement.mean() > 0.985, agreement


def test_the_float32_graph_is_the_numpy_model(reference: MiniLM) -> None:
    """The graph itself (attention, mask, GELU, pooling) is exact: only int8 moves the vectors."""
    model = OnnxMiniLM.load(cache_dir=False, int8=False)
    texts = REFERENCE["texts"]
    np.testing.assert_allclose(model.encode(texts), reference.encode(texts), atol=2e-5)


def test_the_nearest_stored_question_is_the_same(onnx_model: OnnxMiniLM, reference: MiniLM) -> None:
    for model in (onnx_model, reference):
        index = model.encode(STORED)
        queries = model.encode([q for q, _ in QUERIES])
        order = np.argsort(-(queries @ index.T), axis=1)
        assert [int(row[0]) for row in order] == [i for _, i in QUERIES]


def test_a_text_gets_the_same_vector_alone_or_in_a_batch(onnx_model: OnnxMiniLM) -> None:
    texts = ["short", "a medium length sentence about invoices", "x " * 300, "", "Ünïcödé café 東京"]
    together = onnx_model.encode(texts)
    alone = np.vstack([onnx_model.encode([t]) for t in texts])
    np.testing.assert_array_equal(together, alone)


def test_tokens_are_counted_like_numpy(onnx_model: OnnxMiniLM, reference: MiniLM) -> None:
    texts = ["hello world", "", "word " * 1000]
    assert onnx_model.count_tokens(texts) == reference.count_tokens(texts) == 4 + 2 + 256
    vectors, tokens = onnx_model.encode_counted(texts)
    assert vectors.shape == (3, 384) and tokens == 262
    assert onnx_model.encode([]).shape == (0, 384) and onnx_model.count_tokens([]) == 0
    with pytest.raises(TypeError):
        onnx_model.encode("not a list")  # type: ignore[arg-type]


# -- the cache file ---------------------------------------------------------------------------------------


def cache_files(folder: Path) -> list[Path]:
    """The kept encoder models (one folder each: graph, weights, digest)."""
    return sorted(p for p in folder.glob("minilm-*") if p.is_dir())


def test_the_built_graph_is_stored_then_reused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first = OnnxMiniLM.load(cache_dir=tmp_path)
    [stored] = cache_files(tmp_path)

    def no_build(*args: object, **kwargs: object) -> None:
        raise AssertionError("the cached graph should have been used")

    monkeypatch.setattr(graph, "build", no_build)
    again = OnnxMiniLM.load(cache_dir=tmp_path)
    assert cache_files(tmp_path) == [stored]
    np.testing.assert_array_equal(again.encode(STORED[:2]), first.encode(STORED[:2]))


@pytest.mark.parametrize("damage", ["truncate", "flip a byte", "empty"])
def test_a_damaged_cache_file_is_rebuilt(
    tmp_path: Path, damage: str, caplog: pytest.LogCaptureFixture
) -> None:
    expected = OnnxMiniLM.load(cache_dir=tmp_path).encode(STORED[:1])
    [folder] = cache_files(tmp_path)
    stored = folder / modelcache.WEIGHTS
    data = bytearray(stored.read_bytes())
    if damage == "truncate":
        data = data[: len(data) // 2]
    elif damage == "flip a byte":
        data[len(data) // 3] ^= 0xFF
    else:
        data = bytearray()
    stored.write_bytes(bytes(data))
    with caplog.at_level(logging.WARNING, logger="sophia.embedder"):
        rebuilt = OnnxMiniLM.load(cache_dir=tmp_path)
    assert "damaged" in caplog.text
    np.testing.assert_array_equal(rebuilt.encode(STORED[:1]), expected)
    assert modelcache._valid(folder)  # replaced by a good model


def test_another_builder_version_is_another_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    OnnxMiniLM.load(cache_dir=tmp_path)
    monkeypatch.setattr(graph, "BUILDER_VERSION", graph.BUILDER_VERSION + 1)
    OnnxMiniLM.load(cache_dir=tmp_path)
    assert len(cache_files(tmp_path)) == 2


def test_the_cache_folder_follows_sophia_home(isolated_settings: Path) -> None:
    assert modelcache.default_cache_dir() == isolated_settings / "cache" / "onnx"


def test_cached_model_keeps_a_checked_folder_and_survives_a_read_only_one(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    calls: list[int] = []

    def build() -> onnx.ModelProto:
        calls.append(1)
        weight = numpy_helper.from_array(np.arange(4096, dtype=np.float32).reshape(64, 64), "w")
        node = helper.make_node("MatMul", ["x", "w"], ["y"])
        inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 64])]
        outputs = [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 64])]
        return helper.make_model(helper.make_graph([node], "g", inputs, outputs, [weight]))

    path = modelcache.cached_model(tmp_path, "m", build)
    assert path == tmp_path / "m" / modelcache.GRAPH
    assert (tmp_path / "m" / modelcache.WEIGHTS).stat().st_size >= 4096 * 4  # the weights are external
    assert modelcache.cached_model(tmp_path, "m", build) == path
    assert len(calls) == 1
    assert not list(tmp_path.glob(".*"))  # no temporary folder left behind
    blocked = tmp_path / "a-file"
    blocked.write_text("not a folder")
    with caplog.at_level(logging.WARNING, logger="sophia.embedder"):
        model = modelcache.cached_model(blocked / "sub", "m", build)
    assert isinstance(model, bytes) and "cannot store" in caplog.text
    assert isinstance(modelcache.cached_model(None, "m", build), bytes)
    assert len(calls) == 3


# -- choosing the runtime ------------------------------------------------------------------------------


def hide_onnxruntime(monkeypatch: pytest.MonkeyPatch) -> None:
    """As if onnxruntime were not installed: importing it (or the modules that need it) fails."""
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # type: ignore[arg-type]
    monkeypatch.delitem(sys.modules, "sophia.embedder.ort", raising=False)
    monkeypatch.setattr(embedder, "_LOADED", {})


def test_without_onnxruntime_the_encoder_is_numpy(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    hide_onnxruntime(monkeypatch)
    with caplog.at_level(logging.INFO, logger="sophia.embedder"):
        encoder = embedder.get_encoder()
    assert encoder is get_minilm()
    assert "numpy" in caplog.text and "onnxruntime" in caplog.text
    assert isinstance(load_encoder(), MiniLM)
    with pytest.raises(DependencyMissing, match="onnxruntime"):
        load_encoder(runtime="onnx")


def test_with_onnxruntime_the_default_encoder_is_onnx(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(embedder, "_LOADED", {})
    encoder = embedder.get_encoder()
    assert isinstance(encoder, OnnxMiniLM) and encoder.int8 and encoder.threads == 1
    assert embedder.get_encoder() is encoder
    assert isinstance(embedder.get_encoder(runtime="numpy"), MiniLM)
    assert "onnxruntime" in embedder.describe(encoder) and "int8" in embedder.describe(encoder)


def test_a_graph_onnxruntime_refuses_falls_back_to_numpy(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from sophia.embedder import ort

    def refuse(model: bytes, threads: int = 1) -> None:
        raise ConfigError("onnxruntime 0.0 cannot load the MiniLM graph (test)")

    monkeypatch.setattr(ort, "session", refuse)
    with caplog.at_level(logging.WARNING, logger="sophia.embedder"):
        assert isinstance(load_encoder(cache_dir=False), MiniLM)
    assert "cannot load the MiniLM graph" in caplog.text
    with pytest.raises(ConfigError, match="cannot load"):
        load_encoder(runtime="onnx", cache_dir=False)


def test_bad_options_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="runtime"):
        load_encoder(runtime="tpu")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="threads"):
        load_encoder(runtime="onnx", threads=0, cache_dir=False)


def test_importing_the_package_imports_neither_numpy_nor_onnxruntime() -> None:
    code = "import sys, sophia.embedder; print('numpy' in sys.modules, 'onnxruntime' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]
