"""Statements with side effects, per engine: each must be refused by the guard alone AND by the connection alone.

``Case.engine``: what the read-only connection does with the statement when the guard is off:

* ``ERROR``: the engine raises (a write, a file or network access, a privileged function, a
  statement a read-only transaction refuses);
* ``TIMEOUT``: it runs until ``statement_timeout`` cancels it (sleeps);
* ``CONFINED``: the engine runs it, and ``note`` says why that leaves nothing behind (temp objects in
  a per-query DuckDB cursor, session settings undone when the PostgreSQL connection returns to the
  pool, a no-op on a read-only file). The tests assert that nothing is left behind for each one.
  These are the statements the connection layer alone does not *refuse*: the guard does.
* ``GAP``: the engine runs it and it has an effect outside the query that the connection layer
  cannot stop; ``note`` says what. Only the guard stands in the way. The tests assert that the
  engine still runs it, so a change of PostgreSQL that closes the gap shows up here.

Names refer to the tiny TPC-H dataset (tests/warehouse/tpch_data.py): tables region, nation, …,
the sequence ``s``; in PostgreSQL also ``mv``, ``sophia_write()`` and ``sophia_proc()``.
"""

from __future__ import annotations

from dataclasses import dataclass

ERROR, TIMEOUT, CONFINED, GAP = "error", "timeout", "confined", "gap"


@dataclass(frozen=True)
class Case:
    sql: str
    engine: str = ERROR
    note: str = ""

    def __str__(self) -> str:
        return self.sql


def _confined(sql: str, note: str) -> Case:
    return Case(sql, CONFINED, note)


def _gap(sql: str, note: str) -> Case:
    return Case(sql, GAP, note)


_TEMP = "temporary objects live in the query's own DuckDB cursor and are gone when it closes"
_NOOP = "a no-op on a database opened read-only: the file is unchanged"

DUCKDB: list[Case] = [
    Case("INSERT INTO region VALUES (99, 'X', 'x')"),
    Case("INSERT INTO region SELECT * FROM region RETURNING *"),
    Case("UPDATE nation SET n_name = 'X'"),
    Case("DELETE FROM nation"),
    Case("TRUNCATE nation"),
    Case("DROP TABLE nation"),
    Case("DROP VIEW nation_names"),
    Case("ALTER TABLE nation ADD COLUMN x INTEGER"),
    Case("ALTER TABLE nation RENAME TO nations"),
    Case("CREATE TABLE t2 AS SELECT 1 AS a"),
    Case("CREATE OR REPLACE TABLE region AS SELECT 1 AS a"),
    Case("CREATE VIEW v AS SELECT 1 AS a"),
    Case("CREATE MACRO m(x) AS x + 1"),
    Case("CREATE SEQUENCE s2"),
    Case("CREATE SCHEMA sc"),
    Case("CREATE INDEX i ON nation (n_name)"),
    Case("CREATE TYPE mood AS ENUM ('a', 'b')"),
    Case("COMMENT ON TABLE nation IS 'x'"),
    Case(
        "MERGE INTO region USING (SELECT 99 AS k) AS src ON region.r_regionkey = src.k WHEN NOT MATCHED THEN INSERT VALUES (99, 'X', 'x')"
    ),
    Case("WITH x AS (SELECT 1) INSERT INTO region SELECT 98, 'Y', 'y'"),
    Case("SELECT 1 AS a INTO t3"),
    Case("SELECT nextval('s')"),
    Case("SELECT * FROM nation FOR UPDATE"),
    Case("COPY nation TO '/tmp/sophia_h1_copy.csv'"),
    Case("COPY nation FROM '/etc/hostname'"),
    Case("COPY (SELECT 1) TO '/tmp/sophia_h1_copy.parquet' (FORMAT parquet)"),
    Case("EXPORT DATABASE '/tmp/sophia_h1_export'"),
    Case("IMPORT DATABASE '/tmp/sophia_h1_export'"),
    Case("SELECT * FROM read_csv('/etc/passwd')"),
    Case("SELECT * FROM read_csv_auto('/etc/passwd')"),
    Case("SELECT * FROM read_parquet('/tmp/sophia_h1.parquet')"),
    Case("SELECT * FROM parquet_scan('/tmp/sophia_h1.parquet')"),
    Case("SELECT * FROM read_json('/etc/passwd')"),
    Case("SELECT * FROM read_json_auto('/etc/passwd')"),
    Case("SELECT * FROM read_ndjson('/etc/passwd')"),
    Case("SELECT * FROM read_text('/etc/hostname')"),
    Case("SELECT * FROM read_blob('/etc/hostname')"),
    Case("SELECT * FROM glob('/etc/*')"),
    Case("SELECT * FROM sniff_csv('/etc/passwd')"),
    Case("SELECT * FROM '/etc/passwd'"),
    Case("SELECT * FROM 'data.csv'"),
    Case('SELECT * FROM "/etc/hostname"'),
    Case("SELECT * FROM iceberg_scan('/tmp/sophia_h1_iceberg')"),
    Case("SELECT * FROM delta_scan('/tmp/sophia_h1_delta')"),
    Case("SELECT * FROM duckdb_secrets()"),
    Case("SELECT * FROM duckdb_extensions()"),
    Case("ATTACH '/tmp/sophia_h1_other.duckdb' AS other"),
    Case("ATTACH ':memory:' AS mem"),
    Case("DETACH DATABASE tpch"),
    Case("USE memory"),
    Case("INSTALL httpfs"),
    Case("FORCE INSTALL tpch"),
    Case("LOAD httpfs"),
    Case("UPDATE EXTENSIONS"),
    Case("CALL dbgen(sf = 0.01)"),
    Case("SET enable_external_access = true"),
    Case("SET lock_configuration = false"),
    Case("SET threads = 1"),
    Case("SET GLOBAL memory_limit = '1GB'"),
    Case("RESET threads"),
    Case("PRAGMA threads = 1"),
    Case("PRAGMA memory_limit = '1GB'"),
    Case("CREATE SECRET (TYPE s3, KEY_ID 'a', SECRET 'b')"),
    Case("SELECT 1; DROP TABLE nation"),
    Case("SELECT 1; INSERT INTO region VALUES (97, 'Z', 'z')"),
    Case("SELECT 1 -- a comment\n; DELETE FROM nation"),
    Case("/* looks harmless */ DELETE FROM nation"),
    Case("SELECT * FROM query('DELETE FROM nation')"),
    _confined("CREATE TEMP TABLE tmp AS SELECT 1 AS a", _TEMP),
    _confined("CREATE TEMP VIEW tv AS SELECT 1 AS a", _TEMP),
    _confined("CREATE TEMP MACRO tm(x) AS x + 1", _TEMP),
    _confined("SET VARIABLE sophia_v = 1", "variables belong to the query's own cursor"),
    _confined(
        "BEGIN TRANSACTION", "the transaction belongs to the query's own cursor, rolled back when it closes"
    ),
    _confined("CHECKPOINT", _NOOP),
    _confined("FORCE CHECKPOINT", _NOOP),
    _confined("VACUUM", _NOOP),
    _confined("ANALYZE", _NOOP),
    _confined(
        "SELECT * FROM query('SELECT 42')",
        "runs a read on the same read-only connection (the guard refuses opaque SQL)",
    ),
    _confined("SELECT * FROM query_table('nation')", "reads a table of the warehouse"),
    _confined(
        "SELECT current_setting('enable_external_access')", "reveals a setting (false), changes nothing"
    ),
    _confined(
        "SELECT * FROM duckdb_settings()", "reveals the settings, changes nothing; external access is off"
    ),
]

_NOTIFY = (
    "a READ ONLY transaction still sends notifications to the listeners of the channel in the warehouse's "
    "database: keep Sophia's own database (whose cache listens) apart from the warehouse"
)
_RESET = "a session setting, undone by DISCARD ALL when the connection returns to the pool"

POSTGRES: list[Case] = [
    Case("INSERT INTO region VALUES (99, 'X', 'x')"),
    Case("INSERT INTO region VALUES (99, 'X', 'x') ON CONFLICT DO NOTHING"),
    Case("UPDATE nation SET n_name = 'X'"),
    Case("DELETE FROM nation"),
    Case("TRUNCATE nation"),
    Case("DROP TABLE nation"),
    Case("ALTER TABLE nation ADD COLUMN x integer"),
    Case("CREATE TABLE t2 AS SELECT 1 AS a"),
    Case("CREATE TEMP TABLE tmp (a integer)"),
    Case("CREATE VIEW v AS SELECT 1 AS a"),
    Case("CREATE INDEX i ON nation (n_name)"),
    Case("CREATE ROLE sophia_h1_intruder"),
    Case("CREATE EXTENSION dblink"),
    Case("CREATE FUNCTION f() RETURNS int LANGUAGE sql AS 'SELECT 1'"),
    Case("COMMENT ON TABLE nation IS 'x'"),
    Case("GRANT SELECT ON nation TO PUBLIC"),
    Case("REVOKE SELECT ON nation FROM PUBLIC"),
    Case("ALTER SYSTEM SET work_mem = '1MB'"),
    Case(
        "MERGE INTO region USING (SELECT 99 AS k) AS src ON region.r_regionkey = src.k WHEN NOT MATCHED THEN INSERT VALUES (99, 'X', 'x')"
    ),
    Case("SELECT 1 AS a INTO t3"),
    Case("SELECT 1 AS a INTO TEMP t4"),
    Case("WITH x AS (DELETE FROM nation RETURNING *) SELECT * FROM x"),
    Case("WITH x AS (INSERT INTO region VALUES (98, 'Y', 'y') RETURNING *) SELECT * FROM x"),
    Case("WITH x AS (UPDATE nation SET n_name = 'X' RETURNING *) SELECT count(*) FROM x"),
    Case("SELECT * FROM nation FOR UPDATE"),
    Case("SELECT * FROM nation FOR NO KEY UPDATE"),
    Case("SELECT * FROM nation FOR SHARE"),
    Case("SELECT * FROM nation FOR KEY SHARE"),
    Case("SELECT * FROM nation FOR UPDATE SKIP LOCKED"),
    Case("COPY nation TO '/tmp/sophia_h1_copy.csv'"),
    Case("COPY nation FROM '/etc/hostname'"),
    Case("COPY (SELECT 1) TO PROGRAM 'id'"),
    Case("SELECT pg_read_file('/etc/passwd')"),
    Case("SELECT pg_read_binary_file('/etc/passwd')"),
    Case("SELECT * FROM pg_ls_dir('.')"),
    Case("SELECT pg_stat_file('postgresql.conf')"),
    Case("SELECT lo_import('/etc/passwd')"),
    Case("SELECT lo_export(1, '/tmp/sophia_h1_lo')"),
    # A READ ONLY transaction does not stop lo_create / lo_from_bytea (PostgreSQL 15): a large object
    # is created and stays. create_readonly_role(..., revoke_large_objects=True) revokes EXECUTE on
    # the large-object writers from PUBLIC, which the test database does: then the engine refuses.
    Case("SELECT lo_create(0)"),
    Case("SELECT lo_from_bytea(0, 'x')"),
    Case("SELECT lo_unlink(1)"),
    Case("SELECT * FROM dblink('dbname=postgres', 'SELECT 1') AS t(a int)"),
    Case("SELECT dblink_exec('dbname=postgres', 'DROP TABLE nation')"),
    Case("SELECT pg_reload_conf()"),
    Case("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = 'postgres'"),
    Case("SELECT pg_cancel_backend(pid) FROM pg_stat_activity WHERE usename = 'postgres'"),
    Case("SELECT pg_create_restore_point('x')"),
    Case("SELECT nextval('s')"),
    Case("SELECT setval('s', 100)"),
    _confined(
        "SELECT txid_current()",
        "assigns a transaction id (a counter any transaction may advance); no data changes",
    ),
    _confined(
        "SELECT pg_current_xact_id()",
        "assigns a transaction id (a counter any transaction may advance); no data changes",
    ),
    Case("SELECT query_to_xml('DELETE FROM nation RETURNING *', true, false, '')"),
    Case("SELECT sophia_write()"),
    Case("CALL sophia_proc()"),
    Case("DO $$ BEGIN DELETE FROM nation; END $$"),
    Case("LOCK TABLE nation"),
    Case("LOCK TABLE nation IN EXCLUSIVE MODE"),
    Case("VACUUM nation"),
    _confined("ANALYZE nation", "only the owner may analyze a table: PostgreSQL skips it with a warning"),
    Case("CLUSTER nation"),
    Case("REINDEX TABLE nation"),
    Case("REFRESH MATERIALIZED VIEW mv"),
    Case("CHECKPOINT"),
    _gap("NOTIFY sophia_h1", _NOTIFY),
    _gap("SELECT pg_notify('sophia_h1', 'x')", _NOTIFY),
    Case("DISCARD ALL"),
    Case("SET ROLE postgres"),
    Case("SET SESSION AUTHORIZATION postgres"),
    Case("SELECT * FROM pg_authid"),
    Case("SELECT * FROM pg_shadow"),
    Case("SELECT * FROM pg_hba_file_rules"),
    Case("SELECT current_setting('data_directory')"),
    Case("SELECT 1; DROP TABLE nation"),
    Case("SELECT 1 /* a comment */; DELETE FROM nation"),
    Case("/* looks harmless */ DELETE FROM nation"),
    Case("EXPLAIN ANALYZE DELETE FROM nation"),
    Case("SELECT pg_sleep(5)", TIMEOUT),
    Case("SELECT pg_sleep_for('5 seconds')", TIMEOUT),
    _confined("SET statement_timeout = 0", _RESET),
    _confined("SELECT set_config('statement_timeout', '0', false)", _RESET),
    _confined(
        "SET SESSION CHARACTERISTICS AS TRANSACTION READ WRITE",
        _RESET + "; every query opens its own BEGIN READ ONLY anyway",
    ),
    _confined("RESET ALL", "resets this session's settings to the connection's own read-only defaults"),
    _confined(
        "SELECT pg_advisory_lock(1)",
        "DISCARD ALL releases session advisory locks when the connection returns to the pool",
    ),
    _confined("SELECT pg_advisory_xact_lock(1)", "released when the query's read-only transaction ends"),
    _confined(
        "LOCK TABLE nation IN ACCESS SHARE MODE",
        "the weakest lock, the one every SELECT takes; released when the transaction ends",
    ),
    _confined("LISTEN sophia_h1", "DISCARD ALL unlistens when the connection returns to the pool"),
    _confined(
        "PREPARE sophia_p AS DELETE FROM nation",
        "only prepares (EXECUTE would fail in a read-only transaction); DISCARD ALL deallocates it",
    ),
    _confined(
        "SELECT count(*) FROM pg_stat_activity",
        "other sessions' query texts are hidden from a role that is not a member of theirs",
    ),
]
