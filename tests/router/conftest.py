"""Fixtures of the router tests (the data generator lives in ``routing_data.py``)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from router.routing_data import write_routing_csv


@pytest.fixture
def routing_csv(tmp_path: Path) -> Callable[..., tuple[Path, list[str]]]:
    """Factory: ``routing_csv(n_models, rows, name=..., **kw)`` -> (path, models)."""

    def make(n_models: int = 3, rows: int = 90, name: str = "data.csv", **kw: Any) -> tuple[Path, list[str]]:
        path = tmp_path / name
        return path, write_routing_csv(path, n_models, rows, **kw)

    return make
