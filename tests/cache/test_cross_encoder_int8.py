"""int8 storage of the cross-encoder's blocks: quantisation, the file written by the rebuild, loading."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import load_file

from sophia.cache.cross_encoder import INT8, SCALE, CrossEncoder, dequantise, pack, quantise, unpack
from sophia.cache.training.train import write
from sophia.cache.verifier import FORMAT, Verifier
from sophia.embedder.minilm import default_model_dir, get_minilm
from sophia.errors import ConfigError

PAIRS = [
    ("How do I reset my password?", "I forgot my password, how can I reset it?"),
    ("What is the capital of France?", "What is the capital of Spain?"),
    ("How can I cancel my subscription?", "How do I cancel my subscription?"),
    ("Convert 10 miles to kilometers", "Convert 10 kilometers to miles"),
]


def blocks(layers: int) -> dict[str, np.ndarray]:
    """MiniLM's own first ``layers`` blocks (float32) and a fixed random head: a cross-encoder to store."""
    weights = load_file(str(default_model_dir() / "model.safetensors"))
    out = {
        k: v.astype(np.float32)
        for k, v in weights.items()
        if any(k.startswith(f"encoder.layer.{i}.") for i in range(layers))
    }
    rng = np.random.default_rng(0)
    out["head.weight"] = rng.normal(0, 0.5, 384).astype(np.float32)
    out["head.bias"] = np.array([0.1], dtype=np.float32)
    return out


def test_quantise_per_row_is_within_half_a_step() -> None:
    rng = np.random.default_rng(1)
    w = rng.normal(0, 1, (8, 16)).astype(np.float32) * np.arange(1, 9, dtype=np.float32)[:, None]
    w[3] = 0.0  # a row of zeros keeps a usable scale
    q, scale = quantise(w)
    assert q.dtype == np.int8 and scale.dtype == np.float32 and scale.shape == (8,)
    assert np.abs(q).max() <= 127
    back = dequantise(q, scale)
    assert np.all(np.abs(back - w) <= scale[:, None] / 2 + 1e-7)
    assert np.all(back[3] == 0.0)
    with pytest.raises(ValueError, match="does not match"):
        dequantise(q, scale[:4])
    with pytest.raises(ValueError, match="for matrices"):
        quantise(w[0])


def test_pack_stores_matrices_in_int8_and_the_rest_small() -> None:
    trained = blocks(1)
    packed = pack(trained)
    name = "encoder.layer.0.intermediate.dense.weight"
    assert packed[name + INT8].dtype == np.int8 and packed[name + INT8].shape == (1536, 384)
    assert packed[name + SCALE].shape == (1536,)
    assert name not in packed
    assert packed["encoder.layer.0.intermediate.dense.bias"].dtype == np.float16
    assert packed["encoder.layer.0.output.LayerNorm.weight"].dtype == np.float16
    assert packed["head.weight"].dtype == np.float32
    restored = unpack(packed)
    assert set(restored) == {k for k in trained if k.startswith("encoder.")}
    assert np.abs(restored[name] - trained[name]).max() < 0.01
    halves = pack(trained, "float16")
    assert halves[name].dtype == np.float16
    with pytest.raises(ValueError, match="unknown storage"):
        pack(trained, "int4")


def test_int8_states_follow_the_float32_ones() -> None:
    """Six int8 blocks move the pooled states by about 3% (float16: 0.1%); the direction barely moves."""
    encoder = get_minilm()
    trained = blocks(6)
    exact_model = CrossEncoder(encoder, trained, 6, 0)
    exact = encoder.pair_states(PAIRS, exact_model.layers)
    # the replaced blocks are MiniLM's own, so float32 blocks give the untouched encoder's states
    np.testing.assert_allclose(exact, encoder.pair_states(PAIRS), atol=1e-4)
    for storage, bound in (("int8", 0.06), ("float16", 0.005)):
        model = CrossEncoder(encoder, pack(trained, storage), 6, 0)
        states = encoder.pair_states(PAIRS, model.layers)
        error = np.linalg.norm(states - exact, axis=1) / np.linalg.norm(exact, axis=1)
        assert error.max() < bound, (storage, error)
        cosine = (states * exact).sum(1) / np.linalg.norm(states, axis=1) / np.linalg.norm(exact, axis=1)
        assert cosine.min() > 0.998
        np.testing.assert_allclose(model.logits(PAIRS), states @ model.head_w + model.head_b, atol=1e-4)


def test_the_rebuilt_file_loads_in_both_layouts(tmp_path: Path) -> None:
    trained = blocks(2)
    info = {"format": FORMAT, "layers": 2, "frozen": 0, "threshold": 0.8, "floor": 0.75, "judged": 2}
    write(tmp_path / "int8.npz", trained, info, "int8")
    write(tmp_path / "half.npz", trained, {**info, "format": 2}, "float16")  # the previous layout
    with np.load(tmp_path / "int8.npz") as data:
        assert any(k.endswith(INT8) for k in data.files)
    # the storage layouts compared on the float32 (numpy) forward pass; the default runtime loads both too
    int8 = Verifier.load(tmp_path / "int8.npz", get_minilm())
    half = Verifier.load(tmp_path / "half.npz", get_minilm())
    assert int8.threshold == half.threshold == 0.8
    assert Verifier.load(tmp_path / "int8.npz").model.probabilities(PAIRS).shape == (4,)
    np.testing.assert_allclose(int8.model.probabilities(PAIRS), half.model.probabilities(PAIRS), atol=0.02)


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        ("drop scale", "lack"),
        ("short scale", "does not match"),
        ("float matrix", "does not match"),
        ("wrong shape", "do not fit"),
    ],
)
def test_a_damaged_int8_file_is_a_config_error(tmp_path: Path, damage: str, message: str) -> None:
    trained = blocks(1)
    arrays = pack(trained)
    name = "encoder.layer.0.attention.self.key.weight"
    if damage == "drop scale":
        del arrays[name + SCALE]
    elif damage == "short scale":
        arrays[name + SCALE] = arrays[name + SCALE][:10]
    elif damage == "float matrix":
        arrays[name + INT8] = arrays[name + INT8].astype(np.float32)
    else:
        q, scale = quantise(np.zeros((384, 100), dtype=np.float32))
        arrays[name + INT8], arrays[name + SCALE] = q, scale
    info = {"format": FORMAT, "layers": 1, "frozen": 0, "threshold": 0.8}
    arrays["info"] = np.frombuffer(json.dumps(info).encode(), dtype=np.uint8)
    np.savez(tmp_path / "damaged.npz", **arrays)
    with pytest.raises(ConfigError, match=message):
        Verifier.load(tmp_path / "damaged.npz")
