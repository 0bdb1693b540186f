"""Ordinary analytics reads the guard must pass (zero refusals) and the engines must run.

The 22 TPC-H queries live next to this file (``tpch/q01.sql`` … ``q22.sql``, standard SQL with the
standard substitution parameters, as DuckDB's tpch extension ships them). ``BOTH`` runs on either
engine; ``DUCKDB`` and ``POSTGRES`` use one engine's syntax. The metrics layer's compiled SQL joins
this corpus through ``guard.check`` in its own tests.
"""

from __future__ import annotations

from pathlib import Path

TPCH_DIR = Path(__file__).parent / "tpch"


def tpch_queries() -> list[tuple[str, str]]:
    """``(name, sql)`` of the 22 TPC-H queries, in order."""
    return [(p.stem, p.read_text(encoding="utf-8")) for p in sorted(TPCH_DIR.glob("q*.sql"))]


BOTH: list[str] = [
    "SELECT n_name, r_name FROM nation JOIN region ON n_regionkey = r_regionkey ORDER BY n_name",
    "WITH big AS (SELECT o_custkey, sum(o_totalprice) AS total FROM orders GROUP BY o_custkey) "
    "SELECT c_name, total FROM customer JOIN big ON c_custkey = o_custkey ORDER BY total DESC LIMIT 5",
    "SELECT o_orderpriority, count(*) AS n, rank() OVER (ORDER BY count(*) DESC) AS r FROM orders GROUP BY o_orderpriority",
    "SELECT o_orderkey, o_totalprice, sum(o_totalprice) OVER (PARTITION BY o_custkey ORDER BY o_orderdate "
    "ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS running FROM orders ORDER BY o_orderkey LIMIT 20",
    "SELECT o_orderkey, lag(o_totalprice) OVER (ORDER BY o_orderdate) AS prev, "
    "lead(o_totalprice, 2) OVER (ORDER BY o_orderdate) AS next2, row_number() OVER () AS rn FROM orders",
    "SELECT l_returnflag, l_linestatus, sum(l_quantity) AS q FROM lineitem "
    "GROUP BY GROUPING SETS ((l_returnflag, l_linestatus), (l_returnflag), ())",
    "SELECT l_shipmode, l_returnflag, count(*) FROM lineitem GROUP BY ROLLUP (l_shipmode, l_returnflag)",
    "SELECT l_shipmode, l_returnflag, count(*) FROM lineitem GROUP BY CUBE (l_shipmode, l_returnflag)",
    "SELECT date_trunc('month', o_orderdate) AS month, count(*) FROM orders GROUP BY 1 ORDER BY 1",
    "SELECT extract(year FROM o_orderdate) AS y, extract(quarter FROM o_orderdate) AS q, avg(o_totalprice) "
    "FROM orders GROUP BY 1, 2 ORDER BY 1, 2",
    "SELECT o_orderkey FROM orders WHERE o_orderdate >= DATE '1995-01-01' AND o_orderdate < DATE '1995-01-01' "
    "+ INTERVAL '3' MONTH",
    "SELECT count(*) FILTER (WHERE o_orderstatus = 'F') AS done, count(*) AS all_orders FROM orders",
    "SELECT CASE WHEN c_acctbal < 0 THEN 'negative' WHEN c_acctbal < 5000 THEN 'low' ELSE 'high' END AS band, "
    "count(*) FROM customer GROUP BY 1",
    "SELECT c_mktsegment, percentile_cont(0.5) WITHIN GROUP (ORDER BY c_acctbal) AS median_balance "
    "FROM customer GROUP BY c_mktsegment",
    "SELECT n_name FROM nation WHERE n_regionkey IN (SELECT r_regionkey FROM region WHERE r_name LIKE 'A%') "
    "UNION SELECT r_name FROM region EXCEPT SELECT 'ASIA'",
    "SELECT s_name FROM supplier s WHERE EXISTS (SELECT 1 FROM partsupp ps WHERE ps.ps_suppkey = s.s_suppkey "
    "AND ps.ps_availqty > 5000) ORDER BY s_name",
    "SELECT coalesce(NULL, o_comment) AS c, nullif(o_shippriority, 0) AS p, greatest(1, 2), least(3, 4), "
    "upper(o_clerk), lower(o_clerk), length(o_comment), substring(o_comment, 1, 3), trim(o_comment), "
    "replace(o_comment, 'order', 'o'), round(o_totalprice, 1), abs(o_totalprice), floor(o_totalprice), "
    "ceil(o_totalprice) FROM orders LIMIT 3",
    "SELECT cast(o_totalprice AS INTEGER) AS whole, cast(o_orderdate AS VARCHAR) AS day, "
    "o_orderdate - INTERVAL '1' DAY AS before FROM orders LIMIT 3",
    "SELECT string_agg(n_name, ', ') FROM nation",
    "SELECT count(DISTINCT o_custkey), min(o_orderdate), max(o_orderdate), stddev(o_totalprice) FROM orders",
    "WITH RECURSIVE t(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM t WHERE n < 5) SELECT sum(n) FROM t",
    "SELECT * FROM nation_names",
    "SELECT 1",
    "VALUES (1, 'a'), (2, 'b')",
    "EXPLAIN SELECT count(*) FROM lineitem",
    "SELECT n.n_name, x.cnt FROM nation AS n JOIN LATERAL (SELECT count(*) AS cnt FROM supplier AS s "
    "WHERE s.s_nationkey = n.n_nationkey) AS x ON TRUE",
]

DUCKDB: list[str] = [
    "DESCRIBE lineitem",
    "DESCRIBE SELECT * FROM orders",
    "SHOW TABLES",
    "SHOW nation",
    "SUMMARIZE region",
    "EXPLAIN ANALYZE SELECT count(*) FROM orders",
    "FROM nation SELECT n_name LIMIT 3",
    "SELECT o_custkey, count(*) FROM orders GROUP BY ALL ORDER BY ALL",
    "SELECT o_orderkey, o_totalprice FROM orders QUALIFY row_number() OVER (PARTITION BY o_custkey ORDER BY o_totalprice DESC) = 1",
    "SELECT strftime(o_orderdate, '%Y-%m') AS ym, date_diff('day', o_orderdate, DATE '1999-01-01') AS age_days "
    "FROM orders LIMIT 5",
    "SELECT list(n_name ORDER BY n_name)[1] AS first_nation FROM nation",
    "SELECT median(o_totalprice), quantile_cont(o_totalprice, 0.9), arg_max(o_orderkey, o_totalprice) FROM orders",
    "SELECT * EXCLUDE (n_comment) FROM nation LIMIT 2",
    "SELECT dayname(o_orderdate), monthname(o_orderdate), year(o_orderdate), make_date(1995, 1, 1) FROM orders LIMIT 2",
    "SELECT regexp_matches(o_comment, 'special'), starts_with(o_clerk, 'Clerk'), o_comment ILIKE '%REQUEST%' FROM orders LIMIT 2",
    "SELECT * FROM range(3)",
    "SELECT * FROM generate_series(1, 3)",
    "PIVOT (SELECT l_shipmode, l_returnflag FROM lineitem) ON l_returnflag USING count(*)",
]

POSTGRES: list[str] = [
    "SHOW search_path",
    "SHOW statement_timeout",
    "EXPLAIN ANALYZE SELECT count(*) FROM orders",
    "SELECT DISTINCT ON (o_custkey) o_custkey, o_orderkey, o_totalprice FROM orders ORDER BY o_custkey, o_totalprice DESC",
    "SELECT to_char(o_orderdate, 'YYYY-MM') AS ym, age(DATE '1999-01-01', o_orderdate) FROM orders LIMIT 5",
    "SELECT generate_series(1, 3)",
    "SELECT d::date FROM generate_series(DATE '1995-01-01', DATE '1995-03-01', INTERVAL '1 month') AS d",
    "SELECT date_part('dow', o_orderdate), now() > o_orderdate, current_date FROM orders LIMIT 2",
    "SELECT n_name || ' (' || n_regionkey::text || ')' FROM nation LIMIT 3",
    "SELECT array_agg(n_name ORDER BY n_name) FROM nation",
    "SELECT o_comment ~ 'special', o_comment ILIKE '%REQUEST%', split_part(o_clerk, '#', 2) FROM orders LIMIT 2",
    "SELECT mode() WITHIN GROUP (ORDER BY o_orderpriority) FROM orders",
]
