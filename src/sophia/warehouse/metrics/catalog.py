"""The metrics catalog: what the BI tools ask (which metrics, which group-bys, what SQL).

``load_catalog(paths)`` reads dbt semantic-layer YAML (the shipped demo definitions when ``paths``
is None); ``catalog.compile(MetricQuery(...), dialect)`` returns one SELECT in DuckDB, PostgreSQL
or Snowflake SQL. Unknown names raise ``InvalidRequest`` listing the closest known ones.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dbt_semantic_interfaces.protocols import Metric, SemanticManifest
from dbt_semantic_interfaces.type_enums import MetricType

from sophia.errors import InvalidRequest
from sophia.warehouse.metrics.compiler import MetricCompiler, assemble
from sophia.warehouse.metrics.filters import parse_filter
from sophia.warehouse.metrics.graph import SemanticGraph
from sophia.warehouse.metrics.loader import DEFINITIONS, load_manifest
from sophia.warehouse.metrics.measures import Context

DIALECTS = ("duckdb", "postgres", "snowflake")


@dataclass(frozen=True)
class MetricQuery:
    """A metric request in MetricFlow's vocabulary. ``start`` is inclusive, ``end`` exclusive (dates)."""

    metrics: Sequence[str]
    group_by: Sequence[str] = ()
    where: Sequence[str] = ()
    start: str | None = None
    end: str | None = None
    order_by: Sequence[str] = ()
    limit: int | None = None


@dataclass(frozen=True)
class MetricInfo:
    name: str
    label: str
    description: str
    type: str
    dimensions: list[str] = field(default_factory=list)
    time_dimension: str = "metric_time"
    synonyms: list[str] = field(default_factory=list)
    #: the metric compares periods (an input with offset_window): group by a metric_time grain
    requires_metric_time: bool = False


def _meta(obj: Any) -> dict[str, Any]:
    config = getattr(obj, "config", None)
    meta = dict(getattr(config, "meta", None) or {})
    return {key: value for key, value in meta.items() if not key.startswith("__")}


def close_names(name: str, known: Sequence[str]) -> str:
    """`` (did you mean: a, b?)`` from difflib, or nothing."""
    close = difflib.get_close_matches(name, list(known), n=5, cutoff=0.5)
    return f" (did you mean: {', '.join(close)}?)" if close else ""


class MetricCatalog:
    """Metrics and semantic models of one validated manifest, compiled on request."""

    def __init__(self, manifest: SemanticManifest) -> None:
        self.manifest = manifest
        self.graph = SemanticGraph(manifest)
        self._metrics: dict[str, Metric] = {metric.name: metric for metric in manifest.metrics}
        self._names: dict[str, list[str]] = {name: self.graph.names(name) for name in self.graph.measures}
        known = {name for names in self._names.values() for name in names}
        known |= {name.rsplit("__", 1)[0] for name in known if name.rsplit("__", 1)[-1] in ("day",)}
        self._known = known
        self._compiler = MetricCompiler(self._metrics, known)

    def metric(self, name: str) -> Metric:
        if name not in self._metrics:
            raise InvalidRequest(
                f"unknown metric {name!r}{close_names(name, list(self._metrics))}", param="metrics"
            )
        return self._metrics[name]

    def measures_of(self, name: str) -> list[str]:
        """The measures a metric reads, through its inputs."""
        metric = self.metric(name)
        found = [measure.name for measure in metric.type_params.input_measures]
        params = metric.type_params.conversion_type_params
        if params is not None and params.base_measure is not None:
            found = [params.base_measure.name]  # a conversion metric is grouped by its base events
        return list(dict.fromkeys(found))

    def requires_metric_time(self, name: str) -> bool:
        params = self.metric(name).type_params
        inputs = [*(params.metrics or ()), *(x for x in (params.numerator, params.denominator) if x)]
        return any(item.offset_window is not None or self.requires_metric_time(item.name) for item in inputs)

    def dimensions(self, metric_names: Sequence[str]) -> list[str]:
        """The group-by names every one of the metrics accepts (time grains included), in a stable order."""
        shared: list[str] | None = None
        for name in metric_names:
            for measure in self.measures_of(name):
                names = self._names[measure]
                shared = names if shared is None else [n for n in shared if n in set(names)]
        return shared or []

    def metrics(self) -> list[MetricInfo]:
        return [self.info(name) for name in sorted(self._metrics)]

    def info(self, name: str) -> MetricInfo:
        metric = self.metric(name)
        meta = _meta(metric)
        return MetricInfo(
            name=metric.name,
            label=metric.label or metric.name.replace("_", " "),
            description=metric.description or "",
            type=metric.type.value,
            dimensions=self.dimensions([name]),
            synonyms=[str(s) for s in meta.get("synonyms", [])],
            requires_metric_time=self.requires_metric_time(name),
        )

    def describe(self, name: str) -> dict[str, Any]:
        """What a metric means: description, type, formula, its inputs and the tables it reads."""
        metric = self.metric(name)
        params = metric.type_params
        formula = {
            MetricType.SIMPLE: lambda: f"{params.measure.name if params.measure else ''}",
            MetricType.RATIO: lambda: (
                f"{params.numerator.name if params.numerator else ''} / "
                f"{params.denominator.name if params.denominator else ''}"
            ),
            MetricType.DERIVED: lambda: params.expr or "",
            MetricType.CUMULATIVE: lambda: f"cumulative {params.measure.name if params.measure else ''}",
            MetricType.CONVERSION: lambda: "conversion",
        }[metric.type]()
        measures = [m.name for m in params.input_measures] or self.measures_of(name)
        if params.conversion_type_params and params.conversion_type_params.conversion_measure:
            measures.append(params.conversion_type_params.conversion_measure.name)
        tables = sorted(
            {self.graph.measures[m][0].node_relation.alias for m in measures if m in self.graph.measures}
        )
        info = self.info(name)
        return {
            "name": name,
            "label": info.label,
            "description": info.description,
            "type": info.type,
            "formula": formula,
            "filter": [f.where_sql_template for f in metric.filter.where_filters] if metric.filter else [],
            "inputs": [item.name for item in params.metrics or ()] or sorted(set(measures)),
            "tables": tables,
            "synonyms": info.synonyms,
            "dimensions": info.dimensions,
        }

    def compile(self, query: MetricQuery, dialect: str = "duckdb", *, schema: str | None = None) -> str:
        """One SELECT computing ``query`` in ``dialect``; raise ``InvalidRequest`` naming what is wrong."""
        if dialect not in DIALECTS:
            raise InvalidRequest(f"unknown dialect {dialect!r} (one of {', '.join(DIALECTS)})")
        if not query.metrics:
            raise InvalidRequest("ask for at least one metric", param="metrics")
        for name in query.metrics:
            self.metric(name)
        valid = self.dimensions(list(query.metrics))
        for name in query.group_by:
            if name not in valid:
                raise InvalidRequest(
                    f"unknown dimension {name!r} for {', '.join(query.metrics)}{close_names(name, valid)}",
                    param="group_by",
                )
        if len(set(query.group_by)) != len(query.group_by):
            raise InvalidRequest("a group-by is repeated", param="group_by")
        where = tuple(parse_filter(text, self._known.__contains__) for text in query.where)
        ctx = Context(
            graph=self.graph,
            schema=schema or "",
            dialect=dialect,
            source_dialect=None,
            group_by=tuple(query.group_by),
            where=where,
            start=query.start,
            end=query.end,
        )
        outputs = {name: self._compiler.metric(ctx, name) for name in dict.fromkeys(query.metrics)}
        return assemble(ctx, outputs, list(query.order_by), query.limit).sql(dialect=dialect)


def load_catalog(paths: Sequence[Path] | None = None, *, schema: str | None = None) -> MetricCatalog:
    """The catalog of dbt YAML at ``paths`` (files or folders); None: the shipped demo definitions.

    ``schema`` is where ``ref('x')`` tables live; None leaves table names unqualified, so the same
    SQL runs in DuckDB's ``main`` and PostgreSQL's ``public`` (a compile may still name a schema).
    """
    return MetricCatalog(
        load_manifest(list(paths) if paths is not None else [DEFINITIONS], schema=schema or "")
    )
