"""The semantic graph: which dimension a MetricFlow name means, seen from a measure's semantic model.

Names follow MetricFlow: ``metric_time__<grain>``; ``<entity>__<dimension>`` for a dimension of the
semantic model whose primary entity is ``entity`` (the measure's own model, named by its primary
entity, or one joined to it); ``<e1>__<e2>__<dimension>`` for a multi-hop join (the measure's model
links to e1's model, which links to e2's model); ``…__<time dimension>__<grain>``; and a bare
``<entity>`` (its key). Joins go from a model's entity (foreign, or primary for 1:1) to the model
where that entity is primary or unique, so they never fan out. Like MetricFlow we stop at
``MAX_HOPS`` joins.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from dbt_semantic_interfaces.protocols import Dimension, Entity, Measure, SemanticManifest, SemanticModel
from dbt_semantic_interfaces.type_enums import DimensionType, EntityType

from sophia.errors import InvalidRequest

GRAINS = ("day", "week", "month", "quarter", "year")
MAX_HOPS = 2
_JOIN_TARGET = (EntityType.PRIMARY, EntityType.UNIQUE, EntityType.NATURAL)


@dataclass(frozen=True)
class Hop:
    """One left join: from ``source`` (alias) on its entity expr to ``model`` on that entity's expr."""

    alias: str
    model: str
    entity: str
    source_alias: str
    source_model: str


@dataclass(frozen=True)
class Resolved:
    """What a name means from one measure model: a column expression of ``model`` seen through ``hops``."""

    name: str
    kind: str  # "dimension" | "time" | "entity"
    model: str
    expr: str
    hops: tuple[Hop, ...]
    grain: str | None = None

    @property
    def alias(self) -> str:
        return self.hops[-1].alias if self.hops else BASE_ALIAS


#: the alias of the measure's own table in every emitted query
BASE_ALIAS = "base"


def grain_rank(grain: str) -> int:
    return GRAINS.index(grain)


class SemanticGraph:
    """Semantic models indexed by name, entity and measure."""

    def __init__(self, manifest: SemanticManifest) -> None:
        self.models: dict[str, SemanticModel] = {model.name: model for model in manifest.semantic_models}
        self.measures: dict[str, tuple[SemanticModel, Measure]] = {
            measure.name: (model, measure) for model in manifest.semantic_models for measure in model.measures
        }
        self.owners: dict[str, list[SemanticModel]] = {}
        for model in manifest.semantic_models:
            for entity in model.entities:
                if entity.type in _JOIN_TARGET:
                    self.owners.setdefault(entity.name, []).append(model)

    def primary_entity(self, model: SemanticModel) -> str | None:
        for entity in model.entities:
            if entity.type in _JOIN_TARGET:
                return entity.name
        return model.primary_entity

    def entity(self, model: SemanticModel, name: str) -> Entity | None:
        return next((entity for entity in model.entities if entity.name == name), None)

    def dimension(self, model: SemanticModel, name: str) -> Dimension | None:
        return next((dim for dim in model.dimensions if dim.name == name), None)

    def agg_time(self, measure: str) -> tuple[SemanticModel, Dimension]:
        """The measure's model and its aggregation time dimension (metric_time)."""
        model, spec = self.measures[measure]
        name = spec.agg_time_dimension or (model.defaults.agg_time_dimension if model.defaults else None)
        dim = self.dimension(model, name) if name else None
        if dim is None:
            raise InvalidRequest(f"measure {measure} has no aggregation time dimension")
        return model, dim

    def _targets(self, model: SemanticModel, entity: str) -> list[SemanticModel]:
        """Models that ``model`` reaches through ``entity``: itself when it owns it, else the owners."""
        own = self.entity(model, entity)
        if own is None and model.primary_entity != entity:
            return []
        if (own is not None and own.type in _JOIN_TARGET) or model.primary_entity == entity:
            return [model]
        return [owner for owner in self.owners.get(entity, []) if owner.name != model.name]

    def _walk(
        self, start: SemanticModel, path: Sequence[str]
    ) -> Iterator[tuple[SemanticModel, tuple[Hop, ...]]]:
        """Every (model, hops) that the entity path leads to from ``start``."""

        def step(
            model: SemanticModel, alias: str, rest: Sequence[str], hops: tuple[Hop, ...], done: list[str]
        ) -> Iterator[tuple[SemanticModel, tuple[Hop, ...]]]:
            if not rest:
                yield model, hops
                return
            entity, *tail = rest
            for target in self._targets(model, entity):
                if target is model:
                    yield from step(model, alias, tail, hops, [*done, entity])
                    continue
                if len(hops) >= MAX_HOPS:
                    continue
                hop_alias = "__".join([*done, entity]) if done else entity
                hop = Hop(f"j_{hop_alias}", target.name, entity, alias, model.name)
                yield from step(target, hop.alias, tail, (*hops, hop), [*done, entity])

        yield from step(start, BASE_ALIAS, list(path), (), [])

    def resolve(self, name: str, measure_model: SemanticModel, time_dim: Dimension) -> Resolved:
        """Resolve a group-by or filter name seen from a measure's model; raise when it means nothing."""
        parts = name.split("__")
        if parts[0] == "metric_time":
            grain = parts[1] if len(parts) == 2 else (None if len(parts) == 1 else "?")
            return self._time(name, measure_model, time_dim, (), grain)
        grain = parts[-1] if len(parts) > 2 and parts[-1] in GRAINS else None
        if grain:
            parts = parts[:-1]
        candidates: list[Resolved] = []
        path, element = parts[:-1], parts[-1]
        for model, hops in self._walk(measure_model, path):  # <path>__<element>: the element's model
            dim = self.dimension(model, element) if path else None
            if dim is not None and dim.type is DimensionType.TIME:
                candidates.append(self._time(name, model, dim, hops, grain))
            elif dim is not None and grain is None:
                candidates.append(Resolved(name, "dimension", model.name, dim.expr or dim.name, hops))
            entity = self.entity(model, element) if grain is None else None
            if entity is not None:  # an entity's key, read where the path ends: no extra join
                candidates.append(Resolved(name, "entity", model.name, entity.expr or entity.name, hops))
        if not candidates:
            raise InvalidRequest(f"unknown dimension {name!r} for {measure_model.name}")
        return min(candidates, key=lambda resolved: len(resolved.hops))

    def _time(
        self, name: str, model: SemanticModel, dim: Dimension, hops: tuple[Hop, ...], grain: str | None
    ) -> Resolved:
        base = dim.type_params.time_granularity.value if dim.type_params else "day"
        grain = grain or base
        if grain not in GRAINS or grain_rank(grain) < grain_rank(str(base)):
            raise InvalidRequest(f"{name!r}: time grain {grain!r} is not available (finest: {base})")
        return Resolved(name, "time", model.name, dim.expr or dim.name, hops, grain)

    def names(self, measure: str) -> list[str]:
        """Every group-by name that a measure offers (time grains included), for the catalog."""
        model, time_dim = self.agg_time(measure)
        base = time_dim.type_params.time_granularity.value if time_dim.type_params else "day"
        found = [f"metric_time__{g}" for g in GRAINS if grain_rank(g) >= grain_rank(str(base))]
        seen: set[str] = set()
        for entity_path, target in self._reachable(model):
            prefix = "__".join(entity_path)
            if prefix not in seen and self.entity(target, entity_path[-1]) is not None:
                seen.add(prefix)
                found.append(prefix)
            for dim in target.dimensions:
                if dim.type is DimensionType.TIME:
                    dim_base = dim.type_params.time_granularity.value if dim.type_params else "day"
                    found += [
                        f"{prefix}__{dim.name}__{g}"
                        for g in GRAINS
                        if grain_rank(g) >= grain_rank(str(dim_base))
                    ]
                else:
                    found.append(f"{prefix}__{dim.name}")
        return list(dict.fromkeys(found))

    def _reachable(self, model: SemanticModel) -> Iterator[tuple[list[str], SemanticModel]]:
        own = self.primary_entity(model)
        if own:
            yield [own], model
        frontier: list[tuple[list[str], SemanticModel]] = [([], model)]
        for _hop in range(MAX_HOPS):
            nxt: list[tuple[list[str], SemanticModel]] = []
            for path, current in frontier:
                for entity in current.entities:
                    for target in self._targets(current, entity.name):
                        if target is current:
                            continue
                        nxt.append(([*path, entity.name], target))
                        yield [*path, entity.name], target
            frontier = nxt
