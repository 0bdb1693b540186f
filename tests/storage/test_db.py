"""The database layer behaves the same on SQLite and PostgreSQL, and fails with clear StorageErrors."""

from __future__ import annotations

import asyncio
import secrets
import subprocess
import sys
import threading
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from sophia.errors import ConfigError, StorageError
from sophia.storage import Database, open_database, redact_url
from sophia.storage.db import to_dollar_params
from sophia.storage.testing import database_url

BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
SCHEMA = ("CREATE TABLE IF NOT EXISTS things (name TEXT NOT NULL, n BIGINT, x DOUBLE PRECISION)",)


@pytest.fixture(params=BACKENDS)
async def url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    async with database_url(request.param, tmp_path) as u:
        yield u


@pytest.fixture
async def db(url: str) -> AsyncIterator[Database]:
    database = await open_database(url)
    await database.migrate(SCHEMA)
    yield database
    await database.close()


async def test_round_trip_keeps_types(db: Database) -> None:
    assert await db.execute("INSERT INTO things (name, n, x) VALUES (?, ?, ?)", ["a", 2**40, 0.25]) == 1
    await db.execute("INSERT INTO things (name, n, x) VALUES (?, ?, ?)", ["b", None, None])
    rows = await db.fetchall("SELECT name, n, x FROM things ORDER BY name")
    assert rows == [{"name": "a", "n": 2**40, "x": 0.25}, {"name": "b", "n": None, "x": None}]
    assert await db.fetchone("SELECT name FROM things WHERE n = ?", [2**40]) == {"name": "a"}
    assert await db.fetchone("SELECT name FROM things WHERE name = ?", ["zzz"]) is None


async def test_execute_returns_rows_changed(db: Database) -> None:
    await db.executemany("INSERT INTO things (name, n) VALUES (?, ?)", [("a", 1), ("b", 1), ("c", 2)])
    assert await db.execute("UPDATE things SET x = ? WHERE n = ?", [1.5, 1]) == 2
    assert await db.execute("DELETE FROM things WHERE name = ?", ["nobody"]) == 0


async def test_question_marks_in_literals_are_not_placeholders(db: Database) -> None:
    await db.execute("INSERT INTO things (name, n) VALUES ('why?', ?)", [7])
    assert await db.fetchone("SELECT n FROM things WHERE name = 'why?' AND n = ?", [7]) == {"n": 7}


def test_placeholder_translation() -> None:
    sql = "SELECT '?', \"odd?col\", 'it''s ?' FROM t WHERE a = ? AND b IN (?, ?)"
    assert to_dollar_params(sql) == "SELECT '?', \"odd?col\", 'it''s ?' FROM t WHERE a = $1 AND b IN ($2, $3)"


async def test_executemany_is_one_transaction(db: Database) -> None:
    rows = [("ok1", 1), ("ok2", 2), (None, 3)]  # the third row breaks NOT NULL
    with pytest.raises(StorageError):
        await db.executemany("INSERT INTO things (name, n) VALUES (?, ?)", rows)
    assert await db.fetchall("SELECT name FROM things") == []


async def test_bad_sql_is_a_storage_error(db: Database) -> None:
    with pytest.raises(StorageError, match="no_such_table"):
        await db.fetchall("SELECT * FROM no_such_table")


async def test_migrations_are_idempotent_and_may_race(url: str) -> None:
    databases = await asyncio.gather(*(open_database(url) for _ in range(3)))
    try:
        await asyncio.gather(*(d.migrate(SCHEMA) for d in databases))
        await databases[0].migrate(SCHEMA)
        await databases[1].execute("INSERT INTO things (name) VALUES (?)", ["shared"])
        assert await databases[2].fetchone("SELECT name FROM things") == {"name": "shared"}
    finally:
        for d in databases:
            await d.close()


async def test_closed_database_refuses_work_and_close_is_idempotent(url: str) -> None:
    database = await open_database(url)
    await database.close()
    await database.close()
    with pytest.raises(StorageError, match="closed"):
        await database.fetchall("SELECT 1")


async def test_sqlite_pragmas_and_one_worker_thread(tmp_path: Path) -> None:
    before = {t.name for t in threading.enumerate()}
    database = await open_database(f"sqlite:///{tmp_path / 'p.db'}")
    assert database.dialect == "sqlite"
    assert await database.fetchone("PRAGMA journal_mode") == {"journal_mode": "wal"}
    assert await database.fetchone("PRAGMA synchronous") == {"synchronous": 1}  # NORMAL
    assert (await database.fetchone("PRAGMA busy_timeout") or {}).get("timeout", 0) >= 1000
    workers = [t for t in threading.enumerate() if t.name.startswith("sophia-sqlite")]
    assert len(workers) == 1
    await database.close()
    assert not workers[0].is_alive()
    assert {t.name for t in threading.enumerate()} <= before


@pytest.mark.parametrize(
    ("url", "path"), [("sqlite:///rel/x.db", "rel/x.db"), ("sqlite:///:memory:", ":memory:")]
)
async def test_sqlite_url_forms(url: str, path: str) -> None:
    database = await open_database(url)
    try:
        assert getattr(database, "path", None) == path
        assert await database.fetchone("SELECT 1 AS one") == {"one": 1}
    finally:
        await database.close()


async def test_unknown_scheme_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="mysql"):
        await open_database("mysql://root@localhost/x")


@pytest.mark.postgres
async def test_postgres_errors_never_show_the_password() -> None:
    password = secrets.token_hex(8)
    with pytest.raises(StorageError) as caught:
        await open_database(f"postgresql://sophia:{password}@127.0.0.1:1/nowhere")
    assert password not in str(caught.value)
    assert "127.0.0.1:1" in str(caught.value)
    assert caught.value.__cause__ is None


async def test_postgres_dialect(url: str, db: Database) -> None:
    assert db.dialect == ("postgresql" if url.startswith("postgresql") else "sqlite")


def test_redact_url() -> None:
    password = secrets.token_hex(8)
    assert (
        redact_url(f"postgresql://u:{password}@db:5433/app?sslmode=require") == "postgresql://u@db:5433/app"
    )
    assert redact_url(f"redis://:{password}@cache:6379/0") == "redis://cache:6379/0"


_WRITER = """
import asyncio, sys
from sophia.storage import open_database

async def main(url, tag):
    db = await open_database(url)
    await db.migrate(["CREATE TABLE IF NOT EXISTS things (name TEXT NOT NULL, n BIGINT, x DOUBLE PRECISION)"])
    for batch in range(40):
        await db.executemany("INSERT INTO things (name, n) VALUES (?, ?)", [(tag, i) for i in range(25)])
    await db.close()

asyncio.run(main(sys.argv[1], sys.argv[2]))
"""


async def test_sqlite_file_shared_by_two_processes(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'shared.db'}"

    def run_two_writers() -> list[tuple[int, str]]:
        procs = [
            subprocess.Popen([sys.executable, "-c", _WRITER, url, tag], stderr=subprocess.PIPE, text=True)
            for tag in ("one", "two")
        ]
        results = []
        for proc in procs:
            with proc:
                _, stderr = proc.communicate()
                results.append((proc.returncode, stderr))
        return results

    for returncode, stderr in await asyncio.to_thread(run_two_writers):
        assert returncode == 0, stderr
    database = await open_database(url)
    try:
        rows = await database.fetchall("SELECT name, COUNT(*) AS n FROM things GROUP BY name ORDER BY name")
        assert rows == [{"name": "one", "n": 1000}, {"name": "two", "n": 1000}]
        assert await database.fetchone("PRAGMA integrity_check") == {"integrity_check": "ok"}
    finally:
        await database.close()


async def test_sqlite_files_are_private_to_their_owner(tmp_path: Path) -> None:
    """Cached prompts, answers and the ledger: 0600, with the WAL files SQLite makes beside them."""
    path = tmp_path / "data" / "sophia.db"
    db = await open_database(f"sqlite:///{path}")
    try:
        await db.migrate(SCHEMA)
        await db.execute("INSERT INTO things (name) VALUES (?)", ["secret prompt"])
        made = [p for p in path.parent.iterdir() if p.name.startswith("sophia.db")]
        assert {p.name for p in made} >= {"sophia.db", "sophia.db-wal", "sophia.db-shm"}
        assert {p.name: oct(p.stat().st_mode & 0o777) for p in made} == {p.name: "0o600" for p in made}
    finally:
        await db.close()
    path.chmod(0o644)  # made by an older release
    db = await open_database(f"sqlite:///{path}")
    await db.close()
    assert path.stat().st_mode & 0o777 == 0o600


async def test_a_transaction_is_all_or_nothing(url: str) -> None:
    db = await open_database(url)
    try:
        await db.migrate(SCHEMA)
        counts = await db.transaction(
            [("INSERT INTO things (name, n) VALUES (?, ?)", ["a", 1]), ("UPDATE things SET n = n + 1", [])],
            lock="things",
        )
        assert counts == [1, 1]
        with pytest.raises(StorageError):
            await db.transaction([("UPDATE things SET n = 5", []), ("INSERT INTO nowhere VALUES (1)", [])])
        assert await db.fetchall("SELECT name, n FROM things") == [{"name": "a", "n": 2}]
    finally:
        await db.close()


async def test_transactions_under_one_lock_are_serialised_across_connections(url: str) -> None:
    """Read-then-write under a lock: concurrent increments from two databases never lose one."""
    one, two = await open_database(url), await open_database(url)
    try:
        await one.migrate(SCHEMA)
        await one.execute("INSERT INTO things (name, n) VALUES ('c', 0)")
        step = (
            "INSERT INTO things (name, n) SELECT 'seen', (SELECT n FROM things WHERE name = 'c') "
            "WHERE (SELECT n FROM things WHERE name = 'c') < 10",
            [],
        )
        bump = ("UPDATE things SET n = n + 1 WHERE name = 'c' AND n < 10", [])
        await asyncio.gather(
            *(db.transaction([step, bump], lock="c") for db in (one, two) for _ in range(15))
        )
        assert await one.fetchone("SELECT n FROM things WHERE name = 'c'") == {"n": 10}
        seen = await one.fetchall("SELECT n FROM things WHERE name = 'seen' ORDER BY n")
        assert [r["n"] for r in seen] == list(range(10))  # each transaction saw the previous one's write
    finally:
        await one.close()
        await two.close()
