"""``router.bin``: a trained router on disk, in a versioned format that loads without running code.

Layout (all integers little-endian)::

    b"SOPHIA-ROUTER\\n"        14 bytes of magic
    format version            uint32 (this code reads FORMAT_VERSION only)
    header length             uint64
    header                    UTF-8 JSON: models, tasks, reference models, boilerplate, settings,
                              training facts, and for each array its name, dtype, shape and offset,
                              plus the SHA-256 of the payload
    payload                   the raw arrays, back to back

No pickle anywhere: arrays are read with ``numpy.frombuffer`` after their dtype is checked against
a short allow-list, and the checksum catches truncation and corruption. Anything unexpected is a
``ConfigError`` that names the file.
"""

from __future__ import annotations

import hashlib
import json
import struct
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from sophia.errors import ConfigError
from sophia.router.features import CHEAP_NAMES, Boilerplate
from sophia.router.learned import ModelConfig, QualityModel
from sophia.router.policy import Calibration
from sophia.router.router import LearnedRouter

MAGIC = b"SOPHIA-ROUTER\n"
FORMAT_VERSION = 1
_PREFIX = struct.Struct("<IQ")
_DTYPES = frozenset({"<f2", "<f4", "<f8", "<i8"})
#: the QualityModel arrays, in file order
_MODEL_ARRAYS = (
    "centroids",
    "task_prior",
    "bank",
    "bank_outcomes",
    "task_offsets",
    "feature_mean",
    "feature_scale",
    "weights",
    "cost_weights",
    "cost_floor",
)


def save_router(router: LearnedRouter, path: str | Path) -> int:
    """Write ``router`` to ``path`` (atomically); returns the number of bytes written."""
    model = router.model
    arrays: dict[str, np.ndarray] = {name: getattr(model, name) for name in _MODEL_ARRAYS}
    arrays["calibration_targets"] = router.calibration.targets
    arrays["calibration_weights"] = router.calibration.weights
    specs, chunks, offset = [], [], 0
    for name, array in arrays.items():
        data = np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("<"))
        raw = data.tobytes()
        specs.append({"name": name, "dtype": data.dtype.str, "shape": list(data.shape), "offset": offset})
        chunks.append(raw)
        offset += len(raw)
    payload = b"".join(chunks)
    header = {
        "format": FORMAT_VERSION,
        "kind": "sophia.router.learned",
        "models": list(model.models),
        "tasks": list(model.tasks),
        "reference": router.reference,
        "task_reference": list(router.task_reference),
        "quality_target": router.quality_target,
        "scope": router.scope,
        "config": model.config.to_json(),
        "boilerplate": router.boilerplate.to_json(),
        "info": router.info,
        "arrays": specs,
        "sha256": hashlib.sha256(payload).hexdigest(),
    }
    head = json.dumps(header, ensure_ascii=False, allow_nan=False).encode("utf-8")
    blob = MAGIC + _PREFIX.pack(FORMAT_VERSION, len(head)) + head + payload
    target = Path(path)
    tmp = target.with_name(target.name + ".tmp")
    tmp.write_bytes(blob)
    tmp.replace(target)
    return len(blob)


def load_router(path: str | Path, model_map: Mapping[str, str] | None = None) -> LearnedRouter:
    """Read a ``router.bin``; ``model_map`` maps gateway model ids to the trained model names."""
    source = str(path)
    try:
        blob = Path(path).read_bytes()
    except OSError as exc:
        raise ConfigError(f"{source}: cannot read the router ({exc.strerror or exc})") from exc
    try:
        router = _decode(blob)
        return router.with_model_map(model_map) if model_map else router
    except (ValueError, KeyError, TypeError, IndexError) as exc:
        raise ConfigError(f"{source}: not a valid router file ({exc})") from exc


def _decode(blob: bytes) -> LearnedRouter:
    if not blob.startswith(MAGIC):
        raise ValueError("no Sophia router header (train one with `sophia router train`)")
    start = len(MAGIC) + _PREFIX.size
    if len(blob) < start:
        raise ValueError("truncated")
    version, head_len = _PREFIX.unpack_from(blob, len(MAGIC))
    if version != FORMAT_VERSION:
        raise ValueError(f"format version {version}; this Sophia reads version {FORMAT_VERSION}: re-train")
    header = json.loads(blob[start : start + head_len].decode("utf-8"))
    if not isinstance(header, dict) or header.get("format") != FORMAT_VERSION:
        raise ValueError("header does not match the format version")
    payload = blob[start + head_len :]
    if hashlib.sha256(payload).hexdigest() != header["sha256"]:
        raise ValueError("checksum mismatch: the file is truncated or corrupt")
    arrays = {spec["name"]: _array(spec, payload) for spec in header["arrays"]}
    models, tasks = tuple(header["models"]), tuple(header["tasks"])
    config = ModelConfig(**header["config"])
    model = QualityModel(models, tasks, config, *(arrays[name] for name in _MODEL_ARRAYS))
    _check_shapes(model, arrays)
    router = LearnedRouter(
        Boilerplate.from_json(header["boilerplate"]),
        model,
        Calibration(arrays["calibration_targets"], arrays["calibration_weights"]),
        str(header["reference"]),
        tuple(header["task_reference"]),
        float(header["quality_target"]),
        str(header.get("scope", "pooled")),
        info=dict(header.get("info") or {}),
    )
    if router.scope not in ("pooled", "task"):
        raise ValueError(f"unknown calibration scope {router.scope!r}")
    known = set(models)
    if router.reference not in known or not set(router.task_reference) <= known:
        raise ValueError("reference models are not among the trained models")
    return router


def _array(spec: dict[str, Any], payload: bytes) -> np.ndarray:
    dtype, shape, offset = spec["dtype"], tuple(int(s) for s in spec["shape"]), int(spec["offset"])
    if dtype not in _DTYPES:
        raise ValueError(f"array {spec['name']!r}: dtype {dtype!r} is not allowed")
    count = int(np.prod(shape)) if shape else 1
    size = count * np.dtype(dtype).itemsize
    if offset < 0 or offset + size > len(payload):
        raise ValueError(f"array {spec['name']!r} lies outside the payload")
    return np.frombuffer(payload, dtype=dtype, count=count, offset=offset).reshape(shape).astype(dtype[1:])


def _check_shapes(model: QualityModel, arrays: Mapping[str, np.ndarray]) -> None:
    m, t = len(model.models), len(model.tasks)
    dim = model.centroids.shape[1] if model.centroids.ndim == 2 else -1
    features = model.feature_mean.shape[0]
    expected = {
        "centroids": (t, dim),
        "task_prior": (t, m),
        "bank": (model.bank.shape[0], dim),
        "bank_outcomes": (model.bank.shape[0], m),
        "task_offsets": (t + 1,),
        "feature_scale": (features,),
        "weights": (features + 1, m),
        "cost_weights": (t + 1, m),
        "cost_floor": (m,),
    }
    for name, shape in expected.items():
        if arrays[name].shape != shape:
            raise ValueError(f"array {name!r} has shape {arrays[name].shape}, expected {shape}")
    if arrays["calibration_weights"].shape != (t + 1, arrays["calibration_targets"].shape[0]):
        raise ValueError("calibration table does not match the tasks")
    if features != dim + t + len(CHEAP_NAMES):
        raise ValueError("feature layout does not match this Sophia's features")
    offsets = model.task_offsets
    if offsets[0] != 0 or offsets[-1] != model.bank.shape[0] or np.any(np.diff(offsets) < 0):
        raise ValueError("task offsets do not partition the neighbour bank")
