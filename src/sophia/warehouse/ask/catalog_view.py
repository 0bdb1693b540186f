"""What the question matcher needs from a metric catalog, read once per catalog and kept.

The catalog (``sophia.warehouse.metrics``) gives metrics and their group-by names; this view adds the
words people could use for each (name, label, description, ``meta.synonyms``), the MiniLM vectors of
those words, and where a dimension's values live (table and column), for the vocabulary queries.
"""

from __future__ import annotations

import difflib
import threading
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from sophia.warehouse.ask.text import Question, stem, stems, words

__all__ = ["CatalogView", "DimensionDoc", "MetricDoc", "encode"]


def encode(texts: list[str]) -> np.ndarray:
    """Unit MiniLM vectors of ``texts`` (the process's bundled encoder)."""
    from sophia.embedder import get_encoder

    return np.asarray(get_encoder().encode(texts), dtype=np.float32)


@dataclass
class MetricDoc:
    name: str
    label: str
    description: str
    phrases: list[str]
    dimensions: frozenset[str]

    @property
    def entities(self) -> set[str]:
        return {d.rsplit("__", 1)[0].split("__")[-1] for d in self.dimensions}


@dataclass
class DimensionDoc:
    name: str
    entity: str
    column: str
    phrases: list[str]


@dataclass
class CatalogView:
    catalog: Any
    metrics: list[MetricDoc]
    dimensions: dict[str, DimensionDoc]
    locations: dict[tuple[str, str], tuple[str, str]] = field(default_factory=dict)
    time_columns: list[tuple[str, str]] = field(default_factory=list)
    _vectors: dict[str, tuple[np.ndarray, list[str]]] = field(default_factory=dict)

    @classmethod
    def of(cls, catalog: Any) -> CatalogView:
        """The view of ``catalog``, built on first use and kept (the last few catalogs seen)."""
        if isinstance(catalog, CatalogView):
            return catalog
        with _LOCK:
            hit = _VIEWS.get(id(catalog))
            if hit is not None and hit[0] is catalog:
                return hit[1]
            view = cls._build(catalog)
            if len(_VIEWS) >= 8:
                _VIEWS.pop(next(iter(_VIEWS)))
            _VIEWS[id(catalog)] = (catalog, view)
            return view

    @classmethod
    def _build(cls, catalog: Any) -> CatalogView:
        manifest = _manifest(catalog)
        metric_synonyms, dimension_synonyms, locations, time_columns = _from_manifest(manifest)
        metrics = []
        all_dims: set[str] = set()
        for info in catalog.metrics():
            name = str(info.name)
            label = str(getattr(info, "label", None) or name.replace("_", " "))
            description = str(getattr(info, "description", None) or "")
            synonyms = list(getattr(info, "synonyms", None) or metric_synonyms.get(name, []))
            dims = frozenset(
                str(d) for d in (getattr(info, "dimensions", None) or catalog.dimensions([name]))
            )
            all_dims |= dims
            phrases = _unique([name.replace("_", " "), label, *synonyms])
            metrics.append(MetricDoc(name, label, description, phrases, dims))
        dimensions = {}
        entities = {part for dim in all_dims for part in dim.split("__")[:-1]}
        for dim in sorted(all_dims):
            path, _, column = dim.rpartition("__")
            if not path or path.startswith("metric_time") or column in _GRAINS or column in entities:
                continue  # an entity's key, or a time dimension: read by the time parser instead
            entity = path.split("__")[-1]
            words = [column.replace("_", " ")] if column != "name" else []
            phrases = _unique(
                [
                    *words,
                    f"{entity} {column.replace('_', ' ')}",
                    *dimension_synonyms.get((entity, column), []),
                ]
            )
            dimensions[dim] = DimensionDoc(dim, entity, column, phrases)
        return cls(catalog, metrics, dimensions, locations, time_columns)

    def metric(self, name: str) -> MetricDoc:
        return next(m for m in self.metrics if m.name == name)

    def all_dimensions(self) -> list[str]:
        return sorted(self.dimensions)

    def shared_dimensions(self, metrics: list[str]) -> set[str]:
        """The group-by names every metric of ``metrics`` accepts."""
        try:
            return {str(d) for d in self.catalog.dimensions(metrics)}
        except Exception:  # noqa: BLE001 - a catalog that refuses the combination shares nothing
            return set()

    def column_of(self, dimension: str) -> tuple[str, str] | None:
        """(table, column) holding the values of ``dimension``, when the manifest says."""
        path, _, column = dimension.rpartition("__")
        return self.locations.get((path.split("__")[-1], column))

    def time_span_sql(self) -> str | None:
        """The first and last day of every model's default time column, one row per table."""
        if not self.time_columns:
            return None
        parts = [
            f"SELECT CAST(MIN({c}) AS DATE), CAST(MAX({c}) AS DATE) FROM {t}" for t, c in self.time_columns
        ]
        return " UNION ALL ".join(parts)

    def known_words(self, vocabulary_words: set[str]) -> list[str]:
        """Words a misspelled question word may be corrected to: the catalog's and the lexicon's."""
        if "_words" not in self.__dict__:
            from sophia.warehouse.ask.lexicon import DIMENSION_WORDS, ENTITY_WORDS, METRIC_CUES

            texts = [p for m in self.metrics for p in m.phrases] + [
                p for d in self.dimensions.values() for p in d.phrases
            ]
            texts += [
                *METRIC_CUES,
                *(w for ws in DIMENSION_WORDS.values() for w in ws),
                *(w for ws in ENTITY_WORDS.values() for w in ws),
            ]
            self.__dict__["_words"] = {w for t in texts for w in words(t) if len(w) >= 4}
        return sorted(self.__dict__["_words"] | vocabulary_words)

    def correct_typos(self, q: Question, vocabulary: Any) -> None:
        """Replace words of ``q`` that are one slip away from a catalog word ("bookngs", "segmnt")."""
        known = self.known_words(vocabulary.words())
        lookup = set(known)
        for i, token in enumerate(q.tokens):
            if len(token) < 5 or token in lookup or token.isdigit() or stem(token) in self._stems(known):
                continue
            close = difflib.get_close_matches(token, known, n=1, cutoff=0.85)
            if close:
                q.tokens[i], q.stemmed[i] = close[0], stem(close[0])

    def _stems(self, known: list[str]) -> set[str]:
        if "_known_stems" not in self.__dict__:
            self.__dict__["_known_stems"] = {stem(w) for w in known}
        found: set[str] = self.__dict__["_known_stems"]
        return found

    def metric_phrase_positions(self, q: Question) -> set[int]:
        """Positions of ``q`` that spell a metric's name or synonym of two words or more in full
        ("new deals"), so no value ("new") is read out of them."""
        out: set[int] = set()
        for metric in self.metrics:
            for phrase in metric.phrases:
                ps = stems(phrase)
                if len(ps) >= 2:
                    for start in q.find(ps):
                        out.update(range(start, start + len(ps)))
        return out

    def vectors(self, key: str, texts: list[str]) -> np.ndarray:
        """MiniLM vectors of ``texts``, computed once per ``key``."""
        hit = self._vectors.get(key)
        if hit is None or hit[1] != texts:
            hit = (encode(texts) if texts else np.zeros((0, 384), np.float32), texts)
            self._vectors[key] = hit
        return hit[0]


_GRAINS = frozenset({"day", "week", "month", "quarter", "year"})
_LOCK = threading.Lock()
_VIEWS: dict[int, tuple[Any, CatalogView]] = {}


def _unique(items: list[str]) -> list[str]:
    seen: dict[tuple[str, ...], str] = {}
    for item in items:
        key = tuple(stems(item))
        if key and key not in seen:
            seen[key] = item
    return list(seen.values())


def _manifest(catalog: Any) -> Any:
    for attribute in ("manifest", "semantic_manifest", "_manifest"):
        manifest = getattr(catalog, attribute, None)
        if manifest is not None:
            return manifest
    return None


def _meta_synonyms(obj: Any) -> list[str]:
    config = getattr(obj, "config", None)
    meta = getattr(config, "meta", None) or getattr(obj, "meta", None) or {}
    found = meta.get("synonyms") if isinstance(meta, dict) else None
    return [str(s) for s in found] if isinstance(found, list) else []


def _from_manifest(
    manifest: Any,
) -> tuple[
    dict[str, list[str]],
    dict[tuple[str, str], list[str]],
    dict[tuple[str, str], tuple[str, str]],
    list[tuple[str, str]],
]:
    metric_synonyms: dict[str, list[str]] = {}
    dimension_synonyms: dict[tuple[str, str], list[str]] = {}
    locations: dict[tuple[str, str], tuple[str, str]] = {}
    time_columns: list[tuple[str, str]] = []
    if manifest is None:
        return metric_synonyms, dimension_synonyms, locations, time_columns
    for metric in getattr(manifest, "metrics", []):
        metric_synonyms[str(metric.name)] = _meta_synonyms(metric)
    for model in getattr(manifest, "semantic_models", []):
        table = str(model.node_relation.alias)
        primary = next(
            (e for e in model.entities if str(getattr(e.type, "value", e.type)) == "primary"), None
        )
        entity = (
            str(primary.name) if primary is not None else str(getattr(model, "primary_entity", None) or "")
        )
        if not entity:
            continue
        defaults = getattr(model, "defaults", None)
        agg_time = getattr(defaults, "agg_time_dimension", None)
        for dim in model.dimensions:
            column = str(dim.expr or dim.name)
            locations.setdefault((entity, str(dim.name)), (table, column))
            dimension_synonyms.setdefault((entity, str(dim.name)), _meta_synonyms(dim))
            if agg_time and str(dim.name) == str(agg_time):
                time_columns.append((table, column))
    return metric_synonyms, dimension_synonyms, locations, time_columns
