"""The ONNX graph of all-MiniLM-L6-v2, built from its weights with the ``onnx`` helper API.

Two graphs come out of one builder (``build``), both BERT blocks exactly like
``sophia.embedder.minilm`` computes them (post-LayerNorm blocks, exact-erf GELU, LayerNorm
epsilon 1e-12, mean pooling over the real tokens):

* ``output="unit"``, the sentence encoder: ``input_ids``, ``attention_mask`` (int32, ``(B, T)``,
  right padding) -> ``embeddings`` ``(B, 384)`` float32 unit rows;
* ``output="logit"``, the cache verifier's cross-encoder: the same plus ``token_type_ids``
  (0 for the first question, 1 for the second) -> ``logits`` ``(B,)``, from the weights'
  ``head.weight`` / ``head.bias`` applied to the mean-pooled states.

The blocks use onnxruntime's fused CPU operators (domain ``com.microsoft``): ``Attention`` /
``QAttention`` (Q, K and V in one product, the padding mask given as lengths),
``SkipLayerNormalization`` (residual + bias + LayerNorm) and ``BiasGelu``, so one block is 6 to
8 kernels; the graph therefore runs on onnxruntime only, which is what it is for.

With ``int8=True`` (the default) every weight matrix is stored in int8, symmetric per output unit
(one float32 scale per column of ``x @ W``), and multiplied by ``DynamicQuantizeMatMul`` /
``QAttention``, which quantise the activations to uint8 per tensor on the fly; the word-piece
table (30,522 x 384) is int8 with one scale per row, dequantised after the lookup. Biases,
LayerNorm parameters, the position table and the head stay float32. ``int8=False`` gives the
float32 graph (a reference for the benchmarks).

``BUILDER_VERSION`` changes whenever the graph built from the same weights changes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Literal

import numpy as np

if TYPE_CHECKING:  # onnx is imported only to build a graph, not to load a cached one
    from onnx import ModelProto, NodeProto, TensorProto

BUILDER_VERSION = 1
OPSET = 17  # ai.onnx: Shape(start, end), LayerNormalization
MS = "com.microsoft"
#: prefix of a transformer block's arrays, as in the BERT checkpoint
BLOCK_PREFIX = "encoder.layer."
LN_EPS = 1e-12
IR_VERSION = 8  # onnx >= 1.10 writes it, every onnxruntime since 1.10 reads it
FLOAT, INT32 = 1, 6  # onnx.FLOAT, .INT32

Output = Literal["unit", "logit"]


def quantise_columns(w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric int8 per column of ``w`` (in, out): ``w ~= q * scale`` (scale per output unit)."""
    peak = np.abs(w).max(axis=0)
    scale = np.where(peak > 0, peak / 127.0, 1.0).astype(np.float32)
    q = np.clip(np.rint(w / scale), -127, 127).astype(np.int8)
    return q, scale


class _Graph:
    """Nodes and initialisers under construction, with unique names."""

    def __init__(self) -> None:
        self.nodes: list[NodeProto] = []
        self.initializers: list[TensorProto] = []
        self._count = 0

    def const(self, name: str, value: np.ndarray) -> str:
        from onnx import numpy_helper

        self.initializers.append(numpy_helper.from_array(np.ascontiguousarray(value), name))
        return name

    def op(
        self, op_type: str, inputs: Sequence[str], outputs: int = 1, domain: str = "", **attrs: object
    ) -> list[str]:
        from onnx import helper

        self._count += 1
        names = [f"{op_type.lower()}_{self._count}_{i}" for i in range(outputs)]
        node = helper.make_node(op_type, list(inputs), names, domain=domain or None)
        node.attribute.extend(helper.make_attribute(key, value) for key, value in attrs.items())
        self.nodes.append(node)
        return names

    def one(self, op_type: str, inputs: Sequence[str], domain: str = "", **attrs: object) -> str:
        return self.op(op_type, inputs, 1, domain, **attrs)[0]


def build(
    weights: Mapping[str, np.ndarray],
    *,
    layers: int,
    heads: int,
    output: Output = "unit",
    int8: bool = True,
) -> ModelProto:
    """The ONNX model of the embeddings and the first ``layers`` blocks of ``weights``.

    ``weights`` are named like the BERT checkpoint (``embeddings.*``, ``encoder.layer.N.*``; for
    ``output="logit"`` also ``head.weight`` (384,) and ``head.bias`` (1,)), as float32 arrays.
    A missing array raises ``KeyError``, a matrix of the wrong shape ``ValueError``.
    """
    from onnx import helper

    g = _Graph()
    hidden = int(weights["embeddings.word_embeddings.weight"].shape[1])
    pair = output == "logit"
    inputs = ["input_ids", "attention_mask", *(["token_type_ids"] if pair else [])]
    x = _embeddings(g, weights, pair=pair, int8=int8)
    lengths = g.one("ReduceSum", ["attention_mask", g.const("axis_1", np.array([1], np.int64))], keepdims=0)
    for i in range(layers):
        x = _block(g, weights, f"{BLOCK_PREFIX}{i}", x, lengths, heads=heads, hidden=hidden, int8=int8)
    pooled = _mean_pool(g, x, hidden)
    if pair:
        head_w = np.asarray(weights["head.weight"], np.float32).reshape(hidden, 1)
        head_b = np.asarray(weights["head.bias"], np.float32).reshape(1)
        z = g.one("MatMul", [pooled, g.const("head.weight", head_w)])
        z = g.one("Add", [z, g.const("head.bias", head_b)])
        g.nodes.append(
            helper.make_node("Reshape", [z, g.const("flat", np.array([-1], np.int64))], ["logits"])
        )
        result = helper.make_tensor_value_info("logits", FLOAT, ["batch"])
    else:
        g.nodes.append(helper.make_node("LpNormalization", [pooled], ["embeddings"], axis=-1, p=2))
        result = helper.make_tensor_value_info("embeddings", FLOAT, ["batch", hidden])
    graph = helper.make_graph(
        g.nodes,
        "minilm_pairs" if pair else "minilm",
        [helper.make_tensor_value_info(n, INT32, ["batch", "tokens"]) for n in inputs],
        [result],
        g.initializers,
    )
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", OPSET), helper.make_opsetid(MS, 1)],
        producer_name="sophia.embedder.graph",
        producer_version=str(BUILDER_VERSION),
    )
    model.ir_version = IR_VERSION
    return model


def _embeddings(g: _Graph, w: Mapping[str, np.ndarray], *, pair: bool, int8: bool) -> str:
    """Word piece + position (+ token type) embeddings and their LayerNorm: ``(B, T, hidden)``."""
    table = np.asarray(w["embeddings.word_embeddings.weight"], np.float32)
    if int8:
        # one scale per row: a lookup reads one row, so it is dequantised with its own scale
        peak = np.abs(table).max(axis=1, keepdims=True)
        scale = np.where(peak > 0, peak / 127.0, 1.0).astype(np.float32)
        q = np.clip(np.rint(table / scale), -127, 127).astype(np.int8)
        rows = g.one("Gather", [g.const("word.int8", q), "input_ids"])
        rows = g.one("Cast", [rows], to=FLOAT)
        words = g.one("Mul", [rows, g.one("Gather", [g.const("word.scale", scale), "input_ids"])])
    else:
        words = g.one("Gather", [g.const("word", table), "input_ids"])
    types = np.asarray(w["embeddings.token_type_embeddings.weight"], np.float32)
    # token type 0 is folded into the position table; a pair's second segment adds the difference
    positions = np.asarray(w["embeddings.position_embeddings.weight"], np.float32) + types[0]
    if pair:
        delta = types - types[0]
        words = g.one("Add", [words, g.one("Gather", [g.const("type.delta", delta), "token_type_ids"])])
    width = g.one("Shape", ["input_ids"], start=1, end=2)
    pos = g.one("Slice", [g.const("position", positions), g.const("zero", np.array([0], np.int64)), width])
    return g.one(
        "SkipLayerNormalization",
        [
            words,
            pos,
            g.const("emb.ln.g", _f32(w["embeddings.LayerNorm.weight"])),
            g.const("emb.ln.b", _f32(w["embeddings.LayerNorm.bias"])),
        ],
        MS,
        epsilon=LN_EPS,
    )


def _block(
    g: _Graph,
    w: Mapping[str, np.ndarray],
    prefix: str,
    x: str,
    lengths: str,
    *,
    heads: int,
    hidden: int,
    int8: bool,
) -> str:
    """One post-LayerNorm BERT block."""
    att = f"{prefix}.attention"
    qkv = np.concatenate(
        [_t(w[f"{att}.self.{p}.weight"], hidden, hidden) for p in ("query", "key", "value")], 1
    )
    qkv_b = np.concatenate([_f32(w[f"{att}.self.{p}.bias"]) for p in ("query", "key", "value")])
    if int8:
        q, scale = quantise_columns(qkv)
        xq, xs, xz = g.op("DynamicQuantizeLinear", [x], 3)
        a = g.one(
            "QAttention",
            [xq, g.const(f"{att}.qkv.int8", q), g.const(f"{att}.qkv.b", qkv_b), xs,
             g.const(f"{att}.qkv.scale", scale), lengths, xz],
            MS,
            num_heads=heads,
        )  # fmt: skip
    else:
        a = g.one(
            "Attention",
            [x, g.const(f"{att}.qkv", qkv), g.const(f"{att}.qkv.b", qkv_b), lengths],
            MS,
            num_heads=heads,
        )
    a = _matmul(g, a, _t(w[f"{att}.output.dense.weight"], hidden, hidden), f"{att}.out", int8)
    h = _skip_norm(g, a, x, w, f"{att}.output")
    inner = int(w[f"{prefix}.intermediate.dense.weight"].shape[0])
    f = _matmul(g, h, _t(w[f"{prefix}.intermediate.dense.weight"], inner, hidden), f"{prefix}.ff1", int8)
    f = g.one("BiasGelu", [f, g.const(f"{prefix}.ff1.b", _f32(w[f"{prefix}.intermediate.dense.bias"]))], MS)
    f = _matmul(g, f, _t(w[f"{prefix}.output.dense.weight"], hidden, inner), f"{prefix}.ff2", int8)
    return _skip_norm(g, f, h, w, f"{prefix}.output")


def _matmul(g: _Graph, x: str, matrix: np.ndarray, name: str, int8: bool) -> str:
    if not int8:
        return g.one("MatMul", [x, g.const(name, matrix)])
    q, scale = quantise_columns(matrix)
    return g.one(
        "DynamicQuantizeMatMul", [x, g.const(f"{name}.int8", q), g.const(f"{name}.scale", scale)], MS
    )


def _skip_norm(g: _Graph, y: str, residual: str, w: Mapping[str, np.ndarray], prefix: str) -> str:
    """LayerNorm(y + bias + residual), the dense layer's bias ``{prefix}.dense.bias`` added inside."""
    return g.one(
        "SkipLayerNormalization",
        [
            y,
            residual,
            g.const(f"{prefix}.ln.g", _f32(w[f"{prefix}.LayerNorm.weight"])),
            g.const(f"{prefix}.ln.b", _f32(w[f"{prefix}.LayerNorm.bias"])),
            g.const(f"{prefix}.b", _f32(w[f"{prefix}.dense.bias"])),
        ],
        MS,
        epsilon=LN_EPS,
    )


def _mean_pool(g: _Graph, x: str, hidden: int) -> str:
    """Mean of the real tokens' states, ``(B, hidden)``: one batched product with the mask / length."""
    mask = g.one("Cast", ["attention_mask"], to=FLOAT)
    count = g.one("ReduceSum", [mask, "axis_1"], keepdims=1)
    weights = g.one("Unsqueeze", [g.one("Div", [mask, count]), "axis_1"])  # (B, 1, T)
    pooled = g.one("MatMul", [weights, x])  # (B, 1, hidden)
    return g.one("Reshape", [pooled, g.const("rows", np.array([-1, hidden], np.int64))])


def _t(matrix: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """A torch ``Linear`` weight (out, in) as the float32 ``(in, out)`` of ``x @ W``, shape checked."""
    m = np.asarray(matrix, np.float32)
    if m.shape != (rows, cols):
        raise ValueError(f"weight matrix of shape {m.shape}, expected {(rows, cols)}")
    return np.ascontiguousarray(m.T)


def _f32(a: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(a, dtype=np.float32)
