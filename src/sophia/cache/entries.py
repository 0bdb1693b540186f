"""Cache entries in memory: what every instance keeps to answer a lookup without a round trip.

An ``Entry`` is the searchable part of a cached answer (namespace, exact key, the compared text,
its vector, tags, expiry); the answer itself (a ``Payload``) stays in the store and is fetched on
a hit, which also confirms that the entry still exists there. ``EntryTable`` indexes entries by
id, exact key, namespace (vectors, semantic entries only) and tag, so that lookups and tag bumps
touch only what they concern; a purge by model or tenant (rare, an operator's act) scans.

An instance may hold hundreds of thousands of entries, so an entry is kept small: slots, its
repeated strings (namespace, model, tenant) interned, one shared empty tag map, and no label or
vector for an exact-only entry.
"""

from __future__ import annotations

import itertools
import sys
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np

from sophia.cache.index import ANN_FROM, Namespaces


@dataclass(slots=True)
class Entry:
    id: str
    namespace: str
    exact: str
    text: str  # the compared user text ("" for exact-only entries)
    model: str  # the model or alias the request named
    tenant: str
    tags: dict[str, int]  # tag -> data version the answer was computed at
    created: float
    expires: float | None
    semantic: bool
    label: int = field(default=-1)  # set by EntryTable


#: the tags of every entry that has none (never mutated: entries are replaced, not edited)
NO_TAGS: dict[str, int] = {}


def compact(entry: Entry) -> Entry:
    """``entry`` with its repeated strings shared with every other entry's (``sys.intern``)."""
    entry.namespace = sys.intern(entry.namespace)
    entry.model = sys.intern(entry.model)
    entry.tenant = sys.intern(entry.tenant)
    if not entry.tags:
        entry.tags = NO_TAGS
    return entry


@dataclass(frozen=True, slots=True)
class Payload:
    body: bytes
    model_id: str
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float


class EntryTable:
    def __init__(self, ann_from: int | None = ANN_FROM) -> None:
        self.by_id: dict[str, Entry] = {}
        self.by_exact: dict[str, str] = {}
        self.by_label: dict[int, Entry] = {}
        self._by_tag: defaultdict[str, set[str]] = defaultdict(set)
        self.vectors = Namespaces(ann_from)
        self._ann_from = ann_from
        self._labels = itertools.count(1)
        #: tag -> (data version, perf_counter() when read from the store): trusted for confirm_interval
        self.versions: dict[str, tuple[int, float]] = {}

    def __len__(self) -> int:
        return len(self.by_id)

    def add(self, entry: Entry, vector: np.ndarray | None) -> Entry | None:
        """Add (or replace) an entry; returns the entry it replaced under the same exact key, if any."""
        replaced = None
        old_id = self.by_exact.get(entry.exact)
        if old_id is not None and old_id != entry.id:
            replaced = self.remove(old_id)
        if entry.id in self.by_id:
            self.remove(entry.id)
        compact(entry)
        self.by_id[entry.id] = entry
        self.by_exact[entry.exact] = entry.id
        for tag in entry.tags:
            self._by_tag[tag].add(entry.id)
        if entry.semantic and vector is not None:
            entry.label = next(self._labels)
            self.by_label[entry.label] = entry
            self.vectors.add(entry.namespace, entry.label, vector)
        else:
            entry.semantic, entry.label = False, -1
        return replaced

    def remove(self, entry_id: str) -> Entry | None:
        entry = self.by_id.pop(entry_id, None)
        if entry is None:
            return None
        if self.by_exact.get(entry.exact) == entry_id:
            del self.by_exact[entry.exact]
        if entry.label >= 0:
            self.by_label.pop(entry.label, None)
        for tag in entry.tags:
            _discard(self._by_tag, tag, entry_id)
        if entry.semantic:
            self.vectors.remove(entry.namespace, entry.label)
        return entry

    def remove_many(self, ids: Iterable[str]) -> int:
        return sum(1 for i in list(ids) if self.remove(i) is not None)

    def exact(self, key: str) -> Entry | None:
        entry_id = self.by_exact.get(key)
        return None if entry_id is None else self.by_id.get(entry_id)

    def nearest(self, namespace: str, vector: np.ndarray, k: int) -> list[tuple[Entry, float]]:
        labels, sims = self.vectors.search(namespace, vector, k)
        found = []
        for label, sim in zip(labels.tolist(), sims.tolist(), strict=True):
            entry = self.by_label.get(label)
            if entry is not None:
                found.append((entry, sim))
        return found

    def vector(self, entry: Entry) -> np.ndarray | None:
        return self.vectors.vector(entry.namespace, entry.label) if entry.semantic else None

    def select(self, *, tag: str | None, model: str | None, tenant: str | None) -> set[str]:
        """Ids of the entries matching every given criterion (all entries when none is given)."""
        found: Iterable[Entry] = self.by_id.values()
        if tag is not None:
            found = [self.by_id[i] for i in self._by_tag.get(tag, ()) if i in self.by_id]
        return {
            e.id
            for e in found
            if (model is None or e.model == model) and (tenant is None or e.tenant == tenant)
        }

    def bumped(self, tag: str) -> None:
        """Another instance bumped ``tag``: its entries are invalid, its version must be read again."""
        self.versions.pop(tag, None)
        self.remove_many(self.select(tag=tag, model=None, tenant=None))

    def expired(self, now: float) -> list[str]:
        return [e.id for e in self.by_id.values() if e.expires is not None and e.expires <= now]

    def oldest(self, count: int) -> list[str]:
        """Ids of the ``count`` oldest entries (insertion order is creation order)."""
        return list(itertools.islice(self.by_id, count))

    def clear(self) -> None:
        self.__init__(self._ann_from)  # type: ignore[misc]


def _discard(index: defaultdict[str, set[str]], key: str, entry_id: str) -> None:
    ids = index.get(key)
    if ids is not None:
        ids.discard(entry_id)
        if not ids:
            del index[key]
