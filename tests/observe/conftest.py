"""Fixtures shared by the observability tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from observe.phoenix import PhoenixServer


@pytest.fixture(scope="session")
def phoenix(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PhoenixServer]:
    """One real Phoenix server for the whole session (`make phoenix` builds its venv); each test
    keeps its spans apart by sending them to a project of its own (``openinference.project.name``)."""
    with PhoenixServer(tmp_path_factory.mktemp("phoenix")) as server:
        yield server
