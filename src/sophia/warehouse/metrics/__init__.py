"""Metrics in dbt's semantic-model format, compiled with sqlglot (docs/business-intelligence.md).

``load_catalog`` reads and validates the YAML (dbt-semantic-interfaces), ``MetricCatalog.compile``
turns a ``MetricQuery`` into one SELECT for DuckDB, PostgreSQL or Snowflake. README.md says why
this is our own compiler and not MetricFlow's.
"""

from __future__ import annotations

from sophia.warehouse.metrics.catalog import DIALECTS, MetricCatalog, MetricInfo, MetricQuery, load_catalog
from sophia.warehouse.metrics.corpus import emitted_sql_corpus

__all__ = ["DIALECTS", "MetricCatalog", "MetricInfo", "MetricQuery", "emitted_sql_corpus", "load_catalog"]
