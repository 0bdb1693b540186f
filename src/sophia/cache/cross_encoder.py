"""A small cross-encoder on numpy: both questions read together by the bottom of all-MiniLM-L6-v2.

The pair is one input, ``[CLS] query [SEP] candidate [SEP]`` with token types 0 and 1, run through
the first ``layers`` transformer blocks of the bundled MiniLM, of which the top ones are replaced
by fine-tuned blocks; the last hidden states are mean-pooled and one linear unit gives the logit.
The forward pass is ``sophia.embedder.minilm`` itself (``MiniLM.pair_states``), so nothing here
duplicates the network and nothing needs torch.

Only what differs from the installed MiniLM ships: the replaced blocks and the head, in the
verifier's weight file (``sophia.cache.verifier``). Built by ``python -m sophia.cache.training.train`` (``make cache-verifier``).

Storage (``pack``/``unpack``): each weight matrix of a block is kept in **int8**, quantised per
output row (symmetric: ``row = int8 * scale``, one float32 scale per row, stored as
``NAME.int8`` and ``NAME.int8_scale``); biases and LayerNorm parameters are float16. Plain float
arrays (the older float16 files) load too. Everything is dequantised to float32 once, at load, so
the forward pass is the float32 one (six blocks: about 10.6 MB of int8 instead of 21 MB of float16).

Runtime: the cross-encoder runs where its encoder runs. Given the numpy ``MiniLM`` it is the
float32 forward pass above; given ``sophia.embedder.ort.OnnxMiniLM`` (what ``get_encoder()``
returns when onnxruntime is installed) the same blocks and head are built into an onnxruntime
graph with int8 matrices (``OnnxMiniLM.pair_model``); how far its scores move is measured in
benchmarks/embeddings/README.md.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import numpy as np

from sophia.embedder.minilm import MiniLM
from sophia.errors import ConfigError

if TYPE_CHECKING:
    from sophia.embedder import Encoder

#: prefix of the arrays that hold replaced blocks, named like the MiniLM checkpoint's
BLOCK_PREFIX = "encoder.layer."
#: suffixes of a weight matrix stored as int8 rows and their float32 scales
INT8, SCALE = ".int8", ".int8_scale"


def quantise(matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric int8 quantisation per row (a torch ``Linear``'s output unit): ``(int8, scale)``."""
    w = np.asarray(matrix, dtype=np.float32)
    if w.ndim != 2:
        raise ValueError(f"int8 storage is for matrices, got shape {w.shape}")
    peak = np.abs(w).max(axis=1)
    scale = np.where(peak > 0, peak / 127.0, 1.0).astype(np.float32)
    q = np.clip(np.rint(w / scale[:, None]), -127, 127).astype(np.int8)
    return q, scale


def dequantise(q: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """float32 matrix from int8 rows and their scales (shapes checked: ``ValueError``)."""
    q, scale = np.asarray(q), np.asarray(scale, dtype=np.float32).reshape(-1)
    if q.dtype != np.int8 or q.ndim != 2 or scale.shape != (q.shape[0],):
        raise ValueError(f"int8 matrix {q.dtype}{q.shape} does not match its scales {scale.shape}")
    return q.astype(np.float32) * scale[:, None]


def pack(arrays: dict[str, np.ndarray], storage: str = "int8") -> dict[str, np.ndarray]:
    """Block weights for the file: matrices in int8 (or all in float16), the rest (head) float32."""
    if storage not in ("int8", "float16"):
        raise ValueError(f"unknown storage {storage!r} (int8 or float16)")
    out: dict[str, np.ndarray] = {}
    for name, value in arrays.items():
        value = np.asarray(value)
        if not name.startswith(BLOCK_PREFIX):
            out[name] = value.astype(np.float32)
        elif storage == "int8" and value.ndim == 2:
            out[name + INT8], out[name + SCALE] = quantise(value)
        else:
            out[name] = value.astype(np.float16)
    return out


def unpack(arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The block weights of a file as float32, int8 matrices dequantised (``ConfigError`` if malformed)."""
    weights: dict[str, np.ndarray] = {}
    for name, value in arrays.items():
        if not name.startswith(BLOCK_PREFIX) or name.endswith(SCALE):
            continue
        try:
            if name.endswith(INT8):
                base = name[: -len(INT8)]
                weights[base] = dequantise(value, arrays[base + SCALE])
            else:
                weights[name] = np.asarray(value, dtype=np.float32)
        except KeyError as exc:
            raise ConfigError(f"cross-encoder weights lack {exc}") from exc
        except ValueError as exc:
            raise ConfigError(f"cross-encoder weights: {name}: {exc}") from exc
    return weights


class CrossEncoder:
    """``logits(pairs)``: one float per (query, candidate) pair, higher means the same question."""

    def __init__(
        self,
        encoder: Encoder,
        arrays: dict[str, np.ndarray],
        layers: int,
        frozen: int,
        symmetric: bool = False,
    ) -> None:
        if not 0 <= frozen < layers <= encoder.layer_count:
            raise ConfigError(f"cross-encoder: {layers} layers with {frozen} frozen does not fit the encoder")
        weights = unpack(arrays)
        try:
            self.head_w = np.asarray(arrays["head.weight"], dtype=np.float32).reshape(-1)
            self.head_b = np.float32(np.asarray(arrays["head.bias"]).reshape(-1)[0])
        except KeyError as exc:
            raise ConfigError(f"cross-encoder weights lack {exc}") from exc
        if self.head_w.shape != (encoder.dim,):
            raise ConfigError(f"cross-encoder head has shape {self.head_w.shape}, expected ({encoder.dim},)")
        blocks = _replaced_blocks(weights, frozen, layers, encoder.dim, encoder.inner)
        self.encoder = encoder
        self.symmetric = symmetric
        self._pair_logits: Callable[[Sequence[tuple[str, str]]], np.ndarray]
        if isinstance(encoder, MiniLM):
            replaced = [encoder.make_layer(blocks, f"{BLOCK_PREFIX}{i}") for i in range(frozen, layers)]
            self.layers = (*encoder.layers[:frozen], *replaced)
            self._pair_logits = self._numpy_logits
        else:
            self.layers = ()
            head = {"head.weight": self.head_w, "head.bias": np.array([self.head_b], np.float32)}
            self._pair_logits = encoder.pair_model(blocks, head, layers, frozen).logits

    @property
    def runtime(self) -> str:
        """``numpy`` or ``onnxruntime``: where the pairs are read."""
        return "numpy" if isinstance(self.encoder, MiniLM) else "onnxruntime"

    def _numpy_logits(self, pairs: Sequence[tuple[str, str]]) -> np.ndarray:
        assert isinstance(self.encoder, MiniLM)
        z: np.ndarray = self.encoder.pair_states(pairs, self.layers) @ self.head_w + self.head_b
        return z

    def logits(self, pairs: Sequence[tuple[str, str]]) -> np.ndarray:
        """One logit per pair; ``symmetric``: the mean of both orders (one batch), so that which
        question came first never changes the verdict."""
        if not pairs:
            return np.empty(0, dtype=np.float32)
        both = [*pairs, *((b, a) for a, b in pairs)] if self.symmetric else pairs
        z = self._pair_logits(both)
        if self.symmetric:
            z = 0.5 * (z[: len(pairs)] + z[len(pairs) :])
        return z.astype(np.float32)

    def probabilities(self, pairs: Sequence[tuple[str, str]]) -> np.ndarray:
        """``sigmoid(logits)``, in [0, 1]."""
        return _sigmoid(self.logits(pairs))

    def judge(self, pairs: Sequence[tuple[str, str]]) -> tuple[np.ndarray, np.ndarray]:
        """``probabilities`` and, per pair, how far the two reading orders disagree (|z(a,b) - z(b,a)|;
        0 for a model that reads one order): what the cache's risk model learns from beside the score."""
        if not pairs:
            empty = np.empty(0, dtype=np.float32)
            return empty, empty
        if not self.symmetric:
            return self.probabilities(pairs), np.zeros(len(pairs), dtype=np.float32)
        z = self._pair_logits([*pairs, *((b, a) for a, b in pairs)])
        first, second = z[: len(pairs)], z[len(pairs) :]
        return _sigmoid((0.5 * (first + second)).astype(np.float32)), np.abs(first - second).astype(
            np.float32
        )


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return (0.5 * (1.0 + np.tanh(0.5 * z))).astype(np.float32)


#: the arrays of one block and their shapes, for hidden size H and inner (feed-forward) size I
_BLOCK_SHAPES = {
    "attention.self.query.weight": ("H", "H"),
    "attention.self.query.bias": ("H",),
    "attention.self.key.weight": ("H", "H"),
    "attention.self.key.bias": ("H",),
    "attention.self.value.weight": ("H", "H"),
    "attention.self.value.bias": ("H",),
    "attention.output.dense.weight": ("H", "H"),
    "attention.output.dense.bias": ("H",),
    "attention.output.LayerNorm.weight": ("H",),
    "attention.output.LayerNorm.bias": ("H",),
    "intermediate.dense.weight": ("I", "H"),
    "intermediate.dense.bias": ("I",),
    "output.dense.weight": ("H", "I"),
    "output.dense.bias": ("H",),
    "output.LayerNorm.weight": ("H",),
    "output.LayerNorm.bias": ("H",),
}


def _replaced_blocks(
    weights: dict[str, np.ndarray], frozen: int, layers: int, hidden: int, inner: int
) -> dict[str, np.ndarray]:
    """The float32 arrays of blocks ``frozen..layers-1``, every one present and of the encoder's shape."""
    sizes = {"H": hidden, "I": inner}
    blocks: dict[str, np.ndarray] = {}
    for i in range(frozen, layers):
        for suffix, dims in _BLOCK_SHAPES.items():
            name = f"{BLOCK_PREFIX}{i}.{suffix}"
            if name not in weights:
                raise ConfigError(f"cross-encoder weights lack {name!r}")
            expected = tuple(sizes[d] for d in dims)
            if weights[name].shape != expected:
                raise ConfigError(
                    f"cross-encoder weights do not fit the encoder: {name} has shape "
                    f"{weights[name].shape}, expected {expected}"
                )
            blocks[name] = weights[name]
    return blocks
