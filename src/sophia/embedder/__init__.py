"""The bundled sentence encoder (all-MiniLM-L6-v2): used by the cache, the router and the local provider.

Two runtimes with one surface (``encode``, ``encode_counted``, ``count_tokens``, ``dim``):

* ``sophia.embedder.ort.OnnxMiniLM``: onnxruntime with int8 weights, several times faster on
  one question and lighter in memory; chosen when ``onnxruntime`` and ``onnx`` can be imported;
* ``sophia.embedder.minilm.MiniLM``: plain numpy in float32, the reference (training, tests)
  and the fallback.

``get_encoder()`` gives the process-wide encoder and logs once which runtime it runs on; the
cache verifier's cross-encoder follows the encoder it is given (``sophia.cache.verifier``).
benchmarks/embeddings/README.md has the agreement and speed figures. Importing this package
imports neither numpy nor onnxruntime.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeAlias, TypeVar

if TYPE_CHECKING:
    from sophia.embedder.minilm import MiniLM
    from sophia.embedder.ort import CacheDir, OnnxMiniLM

    Encoder: TypeAlias = MiniLM | OnnxMiniLM

__all__ = ["RUNTIMES", "Runtime", "get_encoder", "load_encoder", "model_backlog", "run_model", "trim_heap"]

log = logging.getLogger("sophia.embedder")
T = TypeVar("T")

Runtime = Literal["auto", "onnx", "numpy"]
RUNTIMES: tuple[Runtime, ...] = ("auto", "onnx", "numpy")
DEFAULT_THREADS = 1


def load_encoder(
    path: Path | None = None,
    *,
    runtime: Runtime = "auto",
    threads: int = DEFAULT_THREADS,
    cache_dir: CacheDir = None,
) -> Encoder:
    """A new MiniLM encoder for the model folder ``path`` (default: the installed package).

    ``runtime="auto"`` takes onnxruntime when it can be imported and load the graph, numpy
    otherwise (saying why in the log); ``"onnx"`` requires it (``DependencyMissing`` /
    ``ConfigError``); ``"numpy"`` never uses it. ``threads`` are onnxruntime's intra-op threads;
    ``cache_dir`` is where the built graph is kept (None: the default folder, False: nowhere, see
    ``sophia.embedder.modelcache``).
    """
    encoder = _onnx_encoder(path, runtime, threads, cache_dir)
    if encoder is not None:
        return encoder
    from sophia.embedder.minilm import MiniLM

    return MiniLM.load(path)


_WORKER: ThreadPoolExecutor | None = None
_BACKLOG = 0  # model calls submitted and not finished


def model_backlog() -> int:
    """Model calls waiting for, or running on, the model thread: callers with optional work (the
    cache's semantic layer) skip it when this grows, rather than queue behind it."""
    return _BACKLOG


async def run_model(fn: Callable[..., T], *args: Any) -> tuple[T, float]:
    """Run ``fn(*args)`` (an encoding, a verifier's pairs) on the process's one model thread; returns
    its result and the seconds it computed (without the wait in the queue).

    One thread for every model call of the process, not asyncio's pool: on a small server the event
    loop keeps a core, the models queue on the other instead of fighting for it (onnxruntime and
    numpy release the GIL while they compute).
    """
    global _WORKER, _BACKLOG
    if _WORKER is None:
        with _LOAD_LOCK:
            if _WORKER is None:
                _WORKER = ThreadPoolExecutor(1, thread_name_prefix="sophia-models")

    def timed() -> tuple[T, float]:
        started = time.perf_counter()
        result = fn(*args)
        return result, time.perf_counter() - started

    _BACKLOG += 1
    try:
        return await asyncio.get_running_loop().run_in_executor(_WORKER, timed)
    finally:
        _BACKLOG -= 1


def trim_heap() -> None:
    """Give the memory freed after loading a model back to the system (glibc's ``malloc_trim``).

    Loading reads and converts weights through short-lived buffers; glibc keeps the freed pages for
    later, so without this a server's resident memory stays tens of MiB above what it uses. A no-op
    where the C library has no ``malloc_trim`` (macOS, musl, Windows).
    """
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
        trim = getattr(libc, "malloc_trim", None)
    except OSError:
        trim = None
    if trim is not None:
        trim(0)


_LOADED: dict[tuple[Path | None, str, int], Encoder] = {}
_LOAD_LOCK = threading.Lock()


def get_encoder(
    path: Path | None = None, *, runtime: Runtime = "auto", threads: int = DEFAULT_THREADS
) -> Encoder:
    """The process-wide encoder for ``path``, loaded once (see ``load_encoder``; default cache folder).

    When it runs on numpy it is ``minilm.get_minilm(path)`` itself, so a process holds one copy.
    """
    key = (path, runtime, threads)
    encoder = _LOADED.get(key)
    if encoder is None:
        with _LOAD_LOCK:
            encoder = _LOADED.get(key)
            if encoder is None:
                started = time.perf_counter()
                encoder = _onnx_encoder(path, runtime, threads, None)
                if encoder is None:
                    from sophia.embedder.minilm import get_minilm

                    encoder = get_minilm(path)
                log.info(
                    "MiniLM encoder: %s (ready in %.2f s)", describe(encoder), time.perf_counter() - started
                )
                trim_heap()
                _LOADED[key] = encoder
    return encoder


def _onnx_encoder(
    path: Path | None, runtime: Runtime, threads: int, cache_dir: CacheDir
) -> OnnxMiniLM | None:
    """The onnxruntime encoder, or None where numpy is to be used (why is logged)."""
    from sophia.errors import ConfigError, DependencyMissing

    if runtime not in RUNTIMES:
        raise ConfigError(f"unknown MiniLM runtime {runtime!r}: one of {', '.join(RUNTIMES)}")
    if runtime == "numpy":
        return None
    from sophia.embedder.minilm import model_files

    model_files(path)  # a missing model is the same error on either runtime: raise it here
    try:
        from sophia.embedder.ort import OnnxMiniLM
    except ImportError as exc:
        if runtime == "onnx":
            raise DependencyMissing(exc.name or "onnxruntime", purpose="the onnxruntime encoder") from exc
        log.info("MiniLM runs on numpy: %s cannot be imported (%s)", exc.name or "onnxruntime", exc)
        return None
    try:
        return OnnxMiniLM.load(path, threads=threads, cache_dir=cache_dir)
    except ConfigError as exc:
        if runtime == "onnx":
            raise
        log.warning("MiniLM runs on numpy: %s", exc)
        return None


def describe(encoder: Encoder) -> str:
    """Which runtime an encoder runs on, for logs: ``onnxruntime 1.32.0, int8, 1 thread`` or ``numpy, float32``."""
    from sophia.embedder.minilm import MiniLM

    if isinstance(encoder, MiniLM):
        return "numpy, float32"
    import onnxruntime

    threads = f"{encoder.threads} thread{'s' if encoder.threads > 1 else ''}"
    return f"onnxruntime {onnxruntime.__version__}, {'int8' if encoder.int8 else 'float32'}, {threads}"
