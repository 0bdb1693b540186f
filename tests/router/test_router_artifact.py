"""router.bin: what is saved loads back identical; a corrupt or foreign file is refused clearly."""

from __future__ import annotations

import json
import struct
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from router.routing_data import fake_embed
from sophia.errors import ConfigError
from sophia.router.artifact import FORMAT_VERSION, MAGIC, load_router, save_router
from sophia.router.dataset import load_csv
from sophia.router.router import LearnedRouter
from sophia.router.train import TrainOptions, train_router


@pytest.fixture
def trained(routing_csv: Callable[..., tuple[Path, list[str]]], tmp_path: Path) -> tuple[LearnedRouter, Path]:
    path, _ = routing_csv(4, 60)
    router = train_router(
        load_csv(path), fake_embed, TrainOptions(folds=3, quality_target=0.95, scope="task")
    )
    out = tmp_path / "router.bin"
    save_router(router, out)
    return router, out


def test_round_trip_gives_the_same_decisions(trained: tuple[LearnedRouter, Path]) -> None:
    router, path = trained
    loaded = load_router(path)
    assert loaded.models == router.models
    assert loaded.tasks == router.tasks
    assert loaded.boilerplate == router.boilerplate
    assert (loaded.reference, loaded.quality_target, loaded.scope) == (router.reference, 0.95, "task")
    np.testing.assert_array_equal(loaded.calibration.weights, router.calibration.weights)
    texts = ["Q: Describe the planet Mars.", "Q: Describe the fruit plum."]
    questions = [router.question(t) for t in texts]
    emb = fake_embed([q.text for q in questions])
    for a, b in zip(router.predict(questions, emb), loaded.predict(questions, emb), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-6)
    assert loaded.decide(questions[0], emb[0]) == router.decide(questions[0], emb[0])


def test_the_model_map_is_applied_at_load(trained: tuple[LearnedRouter, Path]) -> None:
    router, path = trained
    loaded = load_router(path, {"gw/strong": router.reference})
    assert loaded.model_map == {"gw/strong": router.reference}


def test_a_flipped_byte_is_caught_by_the_checksum(trained: tuple[LearnedRouter, Path]) -> None:
    _, path = trained
    blob = bytearray(path.read_bytes())
    blob[-10] ^= 0xFF
    path.write_bytes(bytes(blob))
    with pytest.raises(ConfigError, match="checksum mismatch"):
        load_router(path)


def test_a_truncated_file_is_refused(trained: tuple[LearnedRouter, Path]) -> None:
    _, path = trained
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(ConfigError, match="not a valid router file"):
        load_router(path)
    path.write_bytes(MAGIC[:5])
    with pytest.raises(ConfigError, match="no Sophia router header"):
        load_router(path)


def test_an_unknown_format_version_is_refused(trained: tuple[LearnedRouter, Path]) -> None:
    _, path = trained
    blob = bytearray(path.read_bytes())
    struct.pack_into("<I", blob, len(MAGIC), FORMAT_VERSION + 1)
    path.write_bytes(bytes(blob))
    with pytest.raises(ConfigError, match=f"format version {FORMAT_VERSION + 1}"):
        load_router(path)


def test_a_pickle_or_other_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "evil.bin"
    path.write_bytes(b"\x80\x04\x95cos\nsystem\n")
    with pytest.raises(ConfigError, match="no Sophia router header"):
        load_router(path)
    with pytest.raises(ConfigError, match="cannot read"):
        load_router(tmp_path / "missing.bin")


def test_a_disallowed_dtype_in_the_header_is_refused(trained: tuple[LearnedRouter, Path]) -> None:
    _, path = trained
    blob = path.read_bytes()
    start = len(MAGIC) + 12
    (head_len,) = struct.unpack_from("<Q", blob, len(MAGIC) + 4)
    header = json.loads(blob[start : start + head_len])
    header["arrays"][0]["dtype"] = "|O"  # object arrays would need pickle
    head = json.dumps(header).encode()
    path.write_bytes(MAGIC + struct.pack("<IQ", FORMAT_VERSION, len(head)) + head + blob[start + head_len :])
    with pytest.raises(ConfigError, match="dtype '\\|O' is not allowed"):
        load_router(path)
