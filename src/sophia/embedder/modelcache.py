"""Built ONNX models kept on disk, so that a process starts without rebuilding them, and light in memory.

Building the int8 graph of MiniLM from its safetensors weights takes about 0.4 s of one core
(quantising 23 M numbers and serialising 23 MB) and needs the whole float32 checkpoint in memory;
loading the built model takes a few hundredths of a second (benchmarks/embeddings/README.md has the
figures). So the built model is kept on disk:

* **where**: the folder passed in, else ``$SOPHIA_HOME/cache/onnx`` when ``SOPHIA_HOME`` is set (as
  the settings do for data and config), else ``<platformdirs user cache dir>/sophia/onnx``;
* **as**: a folder per model, ``NAME/model.onnx`` (the graph) beside ``NAME/weights.bin`` (its
  initializers, as ONNX external data) and ``NAME/sha256`` (the digest of both). onnxruntime is given
  the path, not the bytes: it maps the weights file instead of copying a parsed protobuf, which
  halves the resident memory of a session (and rows of the word-embedding table that no request
  uses are never read in at all);
* **keyed** by a SHA-256 of everything the graph is built from (the source weight files' bytes,
  the fine-tuned arrays, the build options) and ``graph.BUILDER_VERSION``: a changed input is a
  new name, never a stale model;
* **checked**: the digest is verified (streamed, no copy) before the model is used, so a truncated
  or damaged folder is detected, rebuilt and replaced instead of being half-loaded;
* **written atomically**: into a temporary folder beside it, then renamed into place. Two processes
  that miss at the same time both build the same model and the first rename wins; a reader never
  sees a partial model. A folder that cannot be written is logged and the model is used from
  memory (bytes: heavier, but it works).
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import onnx

log = logging.getLogger("sophia.embedder")

GRAPH, WEIGHTS, DIGEST_FILE = "model.onnx", "weights.bin", "sha256"


def default_cache_dir() -> Path:
    """``$SOPHIA_HOME/cache/onnx`` if ``SOPHIA_HOME`` is set, else the user cache dir's ``sophia/onnx``."""
    home = os.environ.get("SOPHIA_HOME")
    if home:
        return Path(home).expanduser() / "cache" / "onnx"
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("sophia", appauthor=False)) / "onnx"


def file_digest(path: Path) -> str:
    """SHA-256 of a file's bytes, hex (about 0.1 s for MiniLM's 90 MB)."""
    with path.open("rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def _folder_digest(folder: Path) -> str:
    digest = hashlib.sha256()
    for name in (GRAPH, WEIGHTS):
        with (folder / name).open("rb") as fh:
            digest.update(hashlib.file_digest(fh, "sha256").digest())
    return digest.hexdigest()


def cached_model(folder: Path | None, name: str, build: Callable[[], onnx.ModelProto]) -> Path | bytes:
    """The path of the model kept as ``folder/name`` (checked), or ``build()`` kept there for next time.

    ``folder=None``, or a folder that cannot be written: the built model's bytes (nothing is stored).
    """
    if folder is None:
        return build().SerializeToString()
    path = folder / name
    if _valid(path):
        return path / GRAPH
    model = build()
    if _write(path, model):
        return path / GRAPH
    return model.SerializeToString()


def _valid(path: Path) -> bool:
    try:
        expected = (path / DIGEST_FILE).read_text(encoding="ascii").strip()
        if _folder_digest(path) == expected:
            return True
    except FileNotFoundError:
        return False
    except (OSError, UnicodeDecodeError) as exc:
        log.warning("cannot read the cached model %s (%s): rebuilding it", path, exc)
        return False
    log.warning("the cached model %s is damaged: rebuilding it", path)
    return False


def _write(path: Path, model: onnx.ModelProto) -> bool:
    import onnx

    tmp: Path | None = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}."))
        onnx.save_model(
            model,
            str(tmp / GRAPH),
            save_as_external_data=True,
            all_tensors_to_one_file=True,
            location=WEIGHTS,
            size_threshold=1024,
        )
        (tmp / DIGEST_FILE).write_text(_folder_digest(tmp) + "\n", encoding="ascii")
        for name in (GRAPH, WEIGHTS, DIGEST_FILE):
            with (tmp / name).open("rb") as fh:
                os.fsync(fh.fileno())
        if path.exists():
            if _valid(path):  # another process finished the same model meanwhile
                return True
            shutil.rmtree(path, ignore_errors=True)  # damaged
        try:
            os.rename(tmp, path)
        except OSError:
            if not _valid(path):  # not another process's finished model: a real failure
                raise
        return True
    except OSError as exc:
        log.warning("cannot store the built model in %s (%s): it is rebuilt at each start", path.parent, exc)
        return False
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
