"""The embedded chunk store: one SQLite file, with the vectors searched as a numpy matrix in memory.

The file is the truth (it survives restarts; SQLite's write lock serialises writers, so one writer
process at a time is safe and readers in other processes reload when the version moves). The
matrix is rebuilt from the vectors kept per chunk whenever the index is, in the index's order, so
a vector search is one matrix-vector product over the rows the filters keep.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import numpy as np

from sophia.knowledge.filters import Filters
from sophia.knowledge.index import ChunkIndex, top
from sophia.knowledge.store import Store
from sophia.storage import open_with_schema

DIM = 384


class EmbeddedStore(Store):
    name = "embedded"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._vectors: dict[str, np.ndarray] = {}

    @classmethod
    async def open(cls, path: Path | str) -> EmbeddedStore:
        """The store in the SQLite file ``path`` (created with its folder if missing)."""
        name = str(path)
        url = name if name.startswith("sqlite:") else f"sqlite:///{name}"
        if url != "sqlite:///:memory:":
            folder = Path(url[len("sqlite:///") :]).parent
            await asyncio.to_thread(folder.mkdir, parents=True, exist_ok=True)
        db, _ = await open_with_schema(url, cls.schema())
        return cls(db, owned=True)

    def vector_value(self, vector: np.ndarray) -> Any:
        return np.asarray(vector, dtype=np.float32).tobytes()

    def _load_columns(self) -> str:
        return ", c.embedding"

    def _row_loaded(self, row: dict[str, Any]) -> None:
        self._vectors[row["chunk_id"]] = np.frombuffer(row["embedding"], dtype=np.float32)

    def _chunk_written(self, chunk_id: str, vector: np.ndarray | None) -> None:
        if vector is None:
            self._vectors.pop(chunk_id, None)
        else:
            self._vectors[chunk_id] = np.asarray(vector, dtype=np.float32)

    def _load(self, rows: list[dict[str, Any]]) -> None:
        self._vectors = {}
        super()._load(rows)

    def _rebuilt(self, index: ChunkIndex) -> None:
        matrix = np.empty((len(index.ids), DIM), dtype=np.float32)
        for n, chunk_id in enumerate(index.ids):
            matrix[n] = self._vectors[chunk_id]
        index.vectors = matrix

    async def vector_search(self, vector: np.ndarray, filters: Filters, n: int) -> list[tuple[str, float]]:
        index = await self.current()
        matrix = index.vectors
        assert matrix is not None

        def search() -> list[tuple[str, float]]:
            mask = index.mask(filters)
            query = np.asarray(vector, dtype=np.float32)
            if mask is None:
                scores = matrix @ query
            else:
                rows = np.flatnonzero(mask)
                scores = np.full(len(index.ids), -np.inf, dtype=np.float32)
                scores[rows] = matrix[rows] @ query
            return top(scores, n, index.ids, floor=-np.inf)

        return await asyncio.to_thread(search)
