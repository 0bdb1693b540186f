"""Query results and the in-process result cache, keyed by statement and the data versions it read.

An entry is found by the normalised statement (the guard's regenerated SQL in the dialect) and the
page (limit, offset); it is served only if the data version of every table it read is still the
one recorded when it was computed (``DataVersions``: a load anywhere bumps them). The cache is an
LRU bounded by entries and by an estimate of the bytes its rows hold.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field

import orjson

from sophia.warehouse.backends.base import Column, JSONValue

Versions = tuple[tuple[str, int], ...]


@dataclass(frozen=True)
class QueryResult:
    columns: list[Column]
    rows: list[list[JSONValue]]
    row_count: int
    truncated: bool
    next_cursor: str | None
    sql: str  #: the statement the engine ran
    elapsed_ms: float
    cache: str  #: "hit" | "miss"
    tables: list[str] = field(default_factory=list)


CacheKey = tuple[str, int, int]  #: (normalised SQL, limit, offset)


class ResultCache:
    """An LRU of results; ``get`` returns one only for the same versions of the same tables."""

    def __init__(self, *, max_entries: int, max_bytes: int) -> None:
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self._entries: OrderedDict[CacheKey, tuple[Versions, QueryResult, int]] = OrderedDict()
        self.bytes = 0
        self.hits = self.misses = 0

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: CacheKey, versions: Versions) -> QueryResult | None:
        found = self._entries.get(key)
        if found is None or found[0] != versions:
            if found is not None:  # computed on older data: never useful again
                self._drop(key)
            self.misses += 1
            return None
        self._entries.move_to_end(key)
        self.hits += 1
        return found[1]

    def put(self, key: CacheKey, versions: Versions, result: QueryResult) -> None:
        if self.max_entries <= 0:
            return
        size = len(orjson.dumps(result.rows)) + len(key[0]) + 256
        if size > self.max_bytes:
            return
        if key in self._entries:
            self._drop(key)
        self._entries[key] = (versions, result, size)
        self.bytes += size
        while len(self._entries) > self.max_entries or self.bytes > self.max_bytes:
            oldest = next(iter(self._entries))
            self._drop(oldest)

    def _drop(self, key: CacheKey) -> None:
        _, _, size = self._entries.pop(key)
        self.bytes -= size

    def clear(self) -> None:
        self._entries.clear()
        self.bytes = 0
