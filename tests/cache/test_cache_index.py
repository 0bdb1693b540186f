"""Vector indexes: exact search, removal, and the move to an inverted file when a namespace grows."""

from __future__ import annotations

import numpy as np

from sophia.cache.index import FlatIndex, IvfIndex, Namespaces, groups_for, kmeans


def unit_rows(n: int, seed: int = 0) -> np.ndarray:
    rows = np.random.default_rng(seed).standard_normal((n, 384)).astype(np.float32)
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def test_flat_index_finds_nearest_first_and_forgets_removed_rows() -> None:
    rows = unit_rows(200)
    index = FlatIndex(capacity=8)  # grows as needed
    for label, row in enumerate(rows):
        index.add(label, row)
    labels, sims = index.search(rows[17], 3)
    assert labels[0] == 17 and abs(sims[0] - 1.0) < 1e-5
    assert list(sims) == sorted(sims, reverse=True)
    index.remove(17)
    assert 17 not in index.search(rows[17], 5)[0]
    assert len(index) == 199
    np.testing.assert_array_equal(index.vector(199), rows[199])  # the moved row is still found by label


def clustered_rows(n: int, seed: int = 0) -> np.ndarray:
    """Unit rows around 50 topics, like questions: what an inverted file is built for."""
    rng = np.random.default_rng(seed)
    topics = unit_rows(50, seed=seed + 100)
    rows = topics[rng.integers(0, 50, n)] + 0.35 * rng.standard_normal((n, 384)).astype(np.float32) / 384**0.5
    return (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32)


def test_inverted_file_finds_near_duplicates_like_the_exact_scan() -> None:
    rows = clustered_rows(3000, seed=1)
    flat = FlatIndex()
    for label, row in enumerate(rows):
        flat.add(label, row)
    ivf = IvfIndex.build(np.arange(len(rows)), rows)
    assert len(ivf) == 3000 and len(ivf.centroids) == groups_for(3000)
    queries = rows[:200] + 0.02 * unit_rows(200, seed=2)  # near duplicates of stored rows
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    agree = sum(int(flat.search(q, 1)[0][0] == ivf.search(q, 1)[0][0]) for q in queries)
    assert agree >= 196
    labels, sims = ivf.search(rows[5], 4)
    assert labels[0] == 5 and list(sims) == sorted(sims, reverse=True)
    ivf.remove(5)
    assert 5 not in ivf.search(rows[5], 4)[0] and ivf.vector(5) is None
    ivf.add(5, rows[5])
    np.testing.assert_array_equal(ivf.vector(5), rows[5])
    assert len(ivf) == 3000


def test_kmeans_is_deterministic_and_returns_unit_centroids() -> None:
    rows = clustered_rows(500, seed=4)
    a, b = kmeans(rows, 20, seed=7), kmeans(rows, 20, seed=7)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(np.linalg.norm(a, axis=1), 1.0, rtol=1e-5)


def test_namespaces_are_searched_apart_and_upgrade_past_the_limit() -> None:
    rows = clustered_rows(200, seed=3)
    spaces = Namespaces(ann_from=30)
    for label, row in enumerate(rows[:40]):
        spaces.add("big" if label < 35 else "small", label, row)
    assert isinstance(spaces._indexes["big"], IvfIndex)
    assert isinstance(spaces._indexes["small"], FlatIndex)
    assert spaces.size("big") == 35 and spaces.size("missing") == 0
    assert set(spaces.search("small", rows[0], 10)[0].tolist()) <= {35, 36, 37, 38, 39}
    assert spaces.search("big", rows[3], 1)[0][0] == 3
    assert spaces.search("missing", rows[0], 1)[0].size == 0
    built = spaces._indexes["big"]
    for label in range(40, 200):  # grows past four times its built size: rebuilt with more groups
        spaces.add("big", label, rows[label])
    rebuilt = spaces._indexes["big"]
    assert isinstance(rebuilt, IvfIndex) and rebuilt is not built and rebuilt.built_size > 35
    assert spaces.search("big", rows[150], 1)[0][0] == 150
    for label in range(35, 40):
        spaces.remove("small", label)
    assert "small" not in spaces._indexes
