"""One small demo warehouse, the shipped catalog and the vocabulary read from it, for the ask tests."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import duckdb
import pytest

from sophia.warehouse.ask import Vocabulary, build_vocabulary, vocabulary_queries
from sophia.warehouse.demo import build_duckdb
from sophia.warehouse.metrics import MetricCatalog, load_catalog

BENCHMARK = Path(__file__).parents[3] / "benchmarks" / "ask" / "run.py"


@pytest.fixture(scope="session")
def catalog() -> MetricCatalog:
    return load_catalog()


@pytest.fixture(scope="session")
def warehouse(tmp_path_factory: pytest.TempPathFactory) -> duckdb.DuckDBPyConnection:
    path = tmp_path_factory.mktemp("ask") / "demo.duckdb"
    build_duckdb(path, scale=0.1)
    con = duckdb.connect(str(path), read_only=True)
    yield con
    con.close()


@pytest.fixture(scope="session")
def vocabulary(catalog: MetricCatalog, warehouse: duckdb.DuckDBPyConnection) -> Vocabulary:
    rows: dict[str, Any] = {
        key: warehouse.execute(sql).fetchall() for key, sql in vocabulary_queries(catalog).items()
    }
    return build_vocabulary(rows)


@pytest.fixture(scope="session")
def bench() -> ModuleType:
    """benchmarks/ask/run.py, imported as a module (its scorer)."""
    spec = importlib.util.spec_from_file_location("ask_bench_run", BENCHMARK)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up while being built
    spec.loader.exec_module(module)
    return module
