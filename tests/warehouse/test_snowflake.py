"""The Snowflake backend against a faithful fake of the connector's DB-API (recorded responses, no
network): the SQL it sends parses in sqlglot's snowflake dialect, paging, types, errors."""

from __future__ import annotations

import sys
import types
from typing import Any

import pytest
import sqlglot

from sophia.errors import DependencyMissing, InvalidRequest
from sophia.warehouse.backends.registry import open_backend
from sophia.warehouse.backends.snowflake import connect_args
from sophia.warehouse.guard import QueryRefused
from sophia.warehouse.warehouse import Warehouse
from warehouse.warehouse_helpers import SETTINGS

URL = "snowflake://analyst:pa%40ss@acme-xy123/SALES/PUBLIC?warehouse=BI_WH&role=READER"  # pragma: allowlist secret (a fake, on purpose)

#: what a Snowflake account answered, keyed by the statement the backend sent
RECORDED: dict[str, tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]] = {
    "SELECT * FROM (SELECT n_name, n_regionkey FROM nation ORDER BY n_name) AS sophia_page LIMIT 3": (
        [("N_NAME", 2, None, 25, None, None, False), ("N_REGIONKEY", 0, None, None, 38, 0, True)],
        [("ALGERIA", 0), ("ARGENTINA", 1), ("BRAZIL", 1)],
    ),
    "SELECT * FROM (SELECT n_name, n_regionkey FROM nation ORDER BY n_name) AS sophia_page LIMIT 3 OFFSET 2": (
        [("N_NAME", 2, None, 25, None, None, False), ("N_REGIONKEY", 0, None, None, 38, 0, True)],
        [("BRAZIL", 1)],
    ),
}


class FakeError(Exception):
    def __init__(self, msg: str) -> None:
        super().__init__(msg)
        self.msg = msg


class FakeCursor:
    def __init__(self, log: list[str]) -> None:
        self.log = log
        self.description: list[tuple[Any, ...]] | None = None
        self._rows: list[tuple[Any, ...]] = []

    def execute(self, sql: str, timeout: int | None = None) -> FakeCursor:
        sqlglot.parse_one(sql, read="snowflake")  # everything sent is valid Snowflake SQL
        self.log.append(sql)
        if sql not in RECORDED:
            raise FakeError(f"SQL compilation error: Object 'X' does not exist: {sql[:40]}")
        self.description, self._rows = RECORDED[sql]
        return self

    def fetchmany(self, size: int) -> list[tuple[Any, ...]]:
        return self._rows[:size]

    def close(self) -> None:
        pass


@pytest.fixture
def fake_connector(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    seen: dict[str, Any] = {"log": [], "connects": []}

    class FakeConnection:
        def cursor(self) -> FakeCursor:
            return FakeCursor(seen["log"])

        def close(self) -> None:
            seen["closed"] = True

    def connect(**kwargs: Any) -> FakeConnection:
        seen["connects"].append(kwargs)
        return FakeConnection()

    connector = types.ModuleType("snowflake.connector")
    connector.connect = connect  # type: ignore[attr-defined]
    connector.errors = types.SimpleNamespace(Error=FakeError)  # type: ignore[attr-defined]
    connector.constants = types.SimpleNamespace(FIELD_ID_TO_NAME={0: "FIXED", 2: "TEXT"})  # type: ignore[attr-defined]
    package = types.ModuleType("snowflake")
    package.connector = connector  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "snowflake", package)
    monkeypatch.setitem(sys.modules, "snowflake.connector", connector)
    return seen


def test_without_the_extra_the_error_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "snowflake", None)
    monkeypatch.setitem(sys.modules, "snowflake.connector", None)
    with pytest.raises(DependencyMissing, match=r"pip install 'sophia\[snowflake\]'"):
        open_backend(URL, SETTINGS)


def test_the_url_becomes_connect_arguments() -> None:
    args = connect_args(URL, SETTINGS)
    assert args["account"] == "acme-xy123" and args["user"] == "analyst" and args["password"] == "pa@ss"
    assert (args["database"], args["schema"], args["warehouse"], args["role"]) == (
        "SALES",
        "PUBLIC",
        "BI_WH",
        "READER",
    )
    assert args["session_parameters"]["STATEMENT_TIMEOUT_IN_SECONDS"] == 1


async def test_pages_through_the_recorded_answers(fake_connector: dict[str, Any]) -> None:
    warehouse = Warehouse(open_backend(URL, SETTINGS), SETTINGS)
    assert warehouse.dialect == "snowflake"
    first = await warehouse.query("select n_name, n_regionkey from nation order by n_name", limit=2)
    assert first.rows == [["ALGERIA", 0], ["ARGENTINA", 1]] and first.truncated
    assert [(c.name, c.type, c.nullable) for c in first.columns] == [
        ("N_NAME", "TEXT", False),
        ("N_REGIONKEY", "FIXED", True),
    ]
    second = await warehouse.query(
        "SELECT n_name, n_regionkey FROM nation ORDER BY n_name", limit=2, cursor=first.next_cursor
    )
    assert second.rows == [["BRAZIL", 1]] and not second.truncated
    assert fake_connector["log"] == list(RECORDED) and len(fake_connector["connects"]) == 1
    await warehouse.close()
    assert fake_connector["closed"]


async def test_engine_errors_and_refusals(fake_connector: dict[str, Any]) -> None:
    warehouse = Warehouse(open_backend(URL, SETTINGS), SETTINGS)
    with pytest.raises(InvalidRequest) as err:
        await warehouse.query("SELECT * FROM missing")
    assert err.value.code == "query_failed" and "does not exist" in err.value.message
    assert "pa@ss" not in err.value.message
    with pytest.raises(QueryRefused):
        await warehouse.query("PUT file:///etc/passwd @stage")
    assert all(not sql.startswith("PUT") for sql in fake_connector["log"])
    await warehouse.close()
