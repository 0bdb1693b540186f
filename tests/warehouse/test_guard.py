"""The guard as a pure function: what it passes, what it refuses and the reasons it gives."""

from __future__ import annotations

import pytest

from sophia.warehouse.guard import SAFE_FUNCTIONS, QueryRefused, check


@pytest.mark.parametrize(
    ("sql", "dialect", "reason"),
    [
        ("INSERT INTO t VALUES (1)", "duckdb", "only reads are allowed, not INSERT"),
        ("DROP TABLE t", "postgres", "only reads are allowed, not DROP TABLE"),
        (
            "WITH x AS (DELETE FROM t RETURNING *) SELECT * FROM x",
            "postgres",
            "DELETE (inside the statement)",
        ),
        ("SELECT 1 AS a INTO t", "postgres", "SELECT … INTO writes a table"),
        ("SELECT * FROM t FOR SHARE", "postgres", "locking reads"),
        ("SELECT 1; SELECT 2", "duckdb", "exactly one statement is allowed, got 2"),
        ("", "duckdb", "the statement is empty"),
        (";;", "duckdb", "the statement is empty"),
        ("SELEC 1 FROM", "duckdb", "cannot be parsed as duckdb SQL"),
        ("SELECT * FROM read_parquet('x')", "duckdb", "read_parquet reads files"),
        ("SELECT pg_sleep(1)", "postgres", "function pg_sleep is not on the allow-list"),
        ("SELECT myschema.upper(x) FROM t", "postgres", "schema-qualified function calls"),
        ("SELECT * FROM 's3://bucket/x.parquet'", "duckdb", "looks like a file or URL"),
        ("SELECT * FROM pg_catalog.pg_class", "postgres", "system catalog"),
        ("SELECT * FROM duckdb_tables", "duckdb", "system catalog"),
        ("CHECKPOINT", "duckdb", "only reads are allowed"),
        ("EXPLAIN DELETE FROM t", "postgres", "only reads are allowed, not DELETE"),
        ("EXPLAIN EXPLAIN SELECT 1", "duckdb", "EXPLAIN of EXPLAIN"),
        ("SHOW t; DROP TABLE t", "duckdb", "exactly one statement"),
        ("SHOW duckdb_secrets", "duckdb", "system catalog"),
        ("VACUUM", "postgres", "only reads are allowed, not VACUUM"),
        ("SELECT SYSTEM$WAIT(5)", "snowflake", "not on the allow-list"),
        ("COPY INTO @stage FROM t", "snowflake", "only reads are allowed, not COPY"),
        ("SELECT $1 FROM @stage", "snowflake", "tables must be named"),
    ],
)
def test_refusals_say_why(sql: str, dialect: str, reason: str) -> None:
    with pytest.raises(QueryRefused) as refused:
        check(sql, dialect)
    assert reason in refused.value.message


def test_the_checked_statement_is_regenerated_without_comments() -> None:
    checked = check("select a from t -- */ ; drop table t", "duckdb")
    assert checked.sql == "SELECT a FROM t" and checked.kind == "select" and checked.tables == ("t",)
    explain = check("explain analyze select * from t /* x */", "postgres")
    assert explain.sql == "EXPLAIN ANALYZE SELECT * FROM t" and explain.kind == "explain"
    assert check("DESCRIBE t", "duckdb").kind == "describe"
    assert check("SHOW TABLES", "duckdb").kind == "show"


def test_tables_read_skip_ctes_and_table_functions() -> None:
    checked = check(
        "WITH recent AS (SELECT * FROM Deals) SELECT * FROM recent JOIN main.accounts a USING (account_id), range(3) r",
        "duckdb",
    )
    assert checked.tables == ("accounts", "deals")


def test_typed_functions_pass_and_unknown_ones_need_the_allow_list() -> None:
    check("SELECT date_trunc('month', d), sum(x), avg(y), coalesce(a, b) FROM t", "postgres")
    check("SELECT strftime(d, '%Y'), list_sort(l) FROM t", "duckdb")
    assert "pg_read_file" not in SAFE_FUNCTIONS and "getenv" not in SAFE_FUNCTIONS
    with pytest.raises(QueryRefused, match="my_udf"):
        check("SELECT my_udf(1)", "postgres")


def test_check_is_pure_and_repeatable() -> None:
    sql = "SELECT a, count(*) FROM t GROUP BY a"
    assert check(sql, "duckdb") == check(sql, "duckdb")
