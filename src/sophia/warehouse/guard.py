"""The SQL guard: the first of the warehouse's two read-only layers (the connection is the second).

``check(sql, dialect)`` is pure: it parses the text with sqlglot in the backend's dialect and
either returns a ``Checked`` statement or raises ``QueryRefused`` saying why. The backend then runs
``Checked.sql``, the statement *regenerated from the checked tree*, never the caller's text, so a
construct sqlglot misread cannot reach the engine in a form the guard did not see.

What passes:

* exactly one statement whose root is a read: SELECT (also DuckDB's ``FROM t`` and ``PIVOT``), a set
  operation, VALUES, DESCRIBE / SUMMARIZE / SHOW, and EXPLAIN [ANALYZE] of a statement that itself passes
  (sqlglot parses EXPLAIN and some SHOWs as an opaque ``Command``: its text is re-parsed and checked);
* anywhere in the tree: no write or DDL node (INSERT/UPDATE/DELETE/MERGE/COPY/CREATE/…, including
  PostgreSQL's writable CTEs), no ``SELECT … INTO``, no locking read (FOR UPDATE/SHARE/…), no
  ``Command`` (anything sqlglot could not parse as a known statement);
* functions: **an allow-list where the list is open-ended, a deny-list where it is closed**. A
  function sqlglot types (``exp.Sum``, ``exp.DateTrunc`` …: ~570 classes of the pinned sqlglot, each
  a known, documented built-in) passes unless it is one of the few typed ones that reach outside
  the query (``ReadCSV``, ``ReadParquet``, ``NextValueFor``, AI/ML calls …). A function sqlglot does
  *not* know (``exp.Anonymous``: ``pg_read_file``, ``lo_export``, ``dblink``, ``getenv``,
  ``query``, a user-defined function with unknown effects) passes only if its name is in
  ``SAFE_FUNCTIONS``: engines add new side-effecting functions every release, so a deny-list of
  names would always be one release behind;
* tables: none named like a file or URL (DuckDB reads ``FROM 'x.csv'`` as a file), none from the
  system catalogs (``pg_*``, ``duckdb_*``, ``sqlite_*``, ``pg_catalog.*``: settings, roles, secrets).

The names of the tables read (CTE names and table functions excluded) come with the result: the
result cache keys on their data versions.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError, TokenError

from sophia.errors import InvalidRequest

__all__ = ["SAFE_FUNCTIONS", "Checked", "QueryRefused", "check"]


class QueryRefused(InvalidRequest):
    """The guard refused a statement; the message says why."""

    code = "query_refused"


@dataclass(frozen=True)
class Checked:
    """A statement that passed the guard."""

    sql: str  #: regenerated from the checked tree in the dialect: what the backend runs, the cache key
    kind: str  #: "select" (pageable as a subquery) or "explain" / "describe" / "show" (run as is)
    tables: tuple[str, ...]  #: tables read, lower-cased, sorted, CTE names excluded (see _tables_read)
    dialect: str


#: roots that read; everything else at the root is refused ("CHECKPOINT" parses as a column!)
_SELECT_ROOTS = (exp.Select, exp.SetOperation, exp.Subquery, exp.Values, exp.Pivot)
_META_ROOTS: dict[type[exp.Expr], str] = {
    exp.Describe: "describe",
    exp.Summarize: "describe",
    exp.Show: "show",
}

#: nodes that write, change the schema, the session or the server, wherever they appear in the tree
# fmt: off
_FORBIDDEN_NODES: tuple[type[exp.Expr], ...] = (
    exp.DML, exp.DDL,  # DML: Update, Delete, Merge, Copy; DDL: Insert, Create
    exp.Insert, exp.Create, exp.Drop, exp.Alter, exp.TruncateTable, exp.Attach, exp.Detach, exp.Install,
    exp.Pragma, exp.Set, exp.Use, exp.Grant, exp.Revoke, exp.Comment, exp.Transaction, exp.Commit,
    exp.Rollback, exp.Analyze, exp.Refresh, exp.Cache, exp.Uncache, exp.LoadData, exp.Export, exp.Put,
    exp.Get, exp.Kill, exp.Execute, exp.Declare, exp.Command, exp.Into, exp.Lock,
)

#: typed sqlglot functions that read files, touch sequences, reveal secrets or call models
_FORBIDDEN_TYPED: frozenset[str] = frozenset({
    "ReadCSV", "ReadParquet", "NextValueFor", "Secret", "ToFile", "DynamicIdentifier", "GenerateText",
    "GenerateEmbedding", "GenerateTable", "Predict", "VectorSearch", "FeaturesAtTime", "MLForecast",
    "MLTranslate",
})
# fmt: on

#: functions sqlglot does not type that are pure computations on their arguments (both engines)
_SAFE = """
    abs acos age approx_count_distinct arg_max arg_min array_agg array_length array_lower
    array_to_string array_upper ascii bit_and bit_count bit_or bool_and bool_or btrim cardinality
    cbrt ceiling char_length character_length chr coalesce concat concat_ws corr cot covar_pop
    covar_samp cume_dist date date_add date_diff date_part date_sub date_trunc datediff datepart
    datetrunc day dayname dayofmonth dayofweek dayofyear decade degrees div epoch epoch_ms even
    every exp extract factorial first flatten floor format gamma gcd generate_series greatest hash
    histogram hour ifnull initcap isfinite isinf isnan isodow isoyear json_extract
    json_extract_string justify_days justify_hours justify_interval last lcm least left length
    lgamma list list_aggregate list_avg list_contains list_count list_distinct list_max list_min
    list_slice list_sort list_sum list_value ln log log10 log2 lower lpad ltrim make_date
    make_interval make_time make_timestamp max_by md5 median microsecond millennium millisecond
    min_by minute mod mode month monthname nanosecond now nullif octet_length percentile_cont
    percentile_disc pi position pow power quantile quantile_cont quantile_disc quarter radians range
    regexp_matches regexp_replace regexp_split_to_array regr_intercept regr_r2 regr_slope repeat
    replace reverse right round row rpad rtrim second sign sin split_part sqrt starts_with stddev
    strftime string_agg string_split strip_accents strpos strptime struct_pack substr substring tan
    timezone to_char to_date to_json to_number to_timestamp today translate trim trunc unnest upper
    variance week weekday weekofyear width_bucket year yearweek
"""
SAFE_FUNCTIONS: frozenset[str] = frozenset(_SAFE.split())

_SYSTEM_PREFIXES = ("pg_", "duckdb_", "sqlite_")
_SYSTEM_SCHEMAS = frozenset({"pg_catalog", "pg_toast", "system"})
_FILE_LIKE = re.compile(r"[/\\:~]|\.[A-Za-z0-9]{1,8}$|^\s|\*|\?")
_EXPLAIN = re.compile(r"^\s*EXPLAIN\s+(?:(ANALYZE|ANALYSE)\s+)?(?:(VERBOSE)\s+)?", re.I)
_SHOW_ARG = re.compile(r"^[A-Za-z_][A-Za-z0-9_.]*(?:\s+[A-Za-z_][A-Za-z0-9_.]*)?$")


def check(sql: str, dialect: str) -> Checked:
    """``sql`` as a checked read in ``dialect`` (a sqlglot dialect name), or ``QueryRefused``."""
    tree = _parse_one(sql, dialect)
    if isinstance(tree, exp.Command):
        return _check_command(tree, dialect)
    if isinstance(tree, _SELECT_ROOTS):
        kind = "select"
    elif type(tree) in _META_ROOTS:
        kind = _META_ROOTS[type(tree)]
    else:
        raise QueryRefused(f"only reads are allowed, not {_statement_name(tree)}")
    _walk(tree)
    return Checked(tree.sql(dialect=dialect, comments=False), kind, _tables_read(tree), dialect)


def _parse_one(sql: str, dialect: str) -> exp.Expr:
    try:
        trees = [t for t in sqlglot.parse(sql, read=dialect) if t is not None]
    except (ParseError, TokenError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise QueryRefused(f"the statement cannot be parsed as {dialect} SQL: {first}") from None
    if not trees:
        raise QueryRefused("the statement is empty")
    if len(trees) > 1:
        raise QueryRefused(f"exactly one statement is allowed, got {len(trees)}")
    return trees[0]


def _check_command(tree: exp.Command, dialect: str) -> Checked:
    """EXPLAIN and SHOW, which sqlglot leaves unparsed; every other command is refused."""
    name = str(tree.this).upper()
    text = tree.sql(dialect=dialect, comments=False)
    if name == "EXPLAIN":
        match = _EXPLAIN.match(text)
        assert match is not None  # the command's text starts with its name
        inner = check(text[match.end() :], dialect)
        if inner.kind == "explain":
            raise QueryRefused("EXPLAIN of EXPLAIN is not allowed")
        prefix = " ".join(p.upper() for p in ("EXPLAIN", match.group(1), match.group(2)) if p)
        return Checked(f"{prefix} {inner.sql}", "explain", inner.tables, dialect)
    if name == "SHOW":
        arg = text[4:].strip()
        if not _SHOW_ARG.match(arg):
            raise QueryRefused(f"SHOW takes one name here, not {arg!r}")
        for part in arg.split():
            _check_table_name(part.split(".")[-1], part.split(".")[0] if "." in part else "")
        return Checked(f"SHOW {arg}", "show", (), dialect)
    raise QueryRefused(f"only reads are allowed, not {name or 'this command'}")


def _walk(tree: exp.Expr) -> None:
    for node in tree.walk():
        if isinstance(node, _FORBIDDEN_NODES):
            raise QueryRefused(_forbidden_reason(node))
        if isinstance(node, exp.Func):
            _check_function(node)
        elif isinstance(node, exp.Table):
            _check_table(node)


def _forbidden_reason(node: exp.Expr) -> str:
    if isinstance(node, exp.Into):
        return "SELECT … INTO writes a table: not allowed"
    if isinstance(node, exp.Lock):
        return "locking reads (FOR UPDATE / FOR SHARE) are not allowed"
    where = " (inside the statement)" if node.parent is not None else ""
    return f"writes and schema or session changes are not allowed: {_statement_name(node)}{where}"


def _check_function(node: exp.Func) -> None:
    if isinstance(node.parent, exp.Dot) and node.arg_key == "expression":
        # myschema.upper(x) is not the built-in upper: it is whatever that schema defines
        raise QueryRefused(f"schema-qualified function calls are not allowed: {node.parent.sql()}")
    if isinstance(node, exp.Anonymous | exp.AnonymousAggFunc | exp.CombinedAggFunc | exp.ParameterizedAgg):
        name = node.name.lower()
        if name not in SAFE_FUNCTIONS:
            raise QueryRefused(f"function {name} is not on the allow-list of side-effect-free functions")
        return
    cls = type(node).__name__
    if cls in _FORBIDDEN_TYPED or cls.startswith("AI"):
        what = "reads files" if cls.startswith("Read") else "has side effects or reaches outside the query"
        raise QueryRefused(f"function {node.sql_name().lower()} {what}")


def _check_table(node: exp.Table) -> None:
    if isinstance(node.this, exp.Func):
        return  # a table function: checked as a function by the walk
    if isinstance(node.this, exp.Literal) or (
        node.this is not None and not isinstance(node.this, exp.Identifier)
    ):
        raise QueryRefused("tables must be named, not read from a string or an expression")
    _check_table_name(node.name, node.db)
    if node.catalog:
        _check_table_name(node.db or node.name, node.catalog)


def _check_table_name(name: str, schema: str) -> None:
    low, low_schema = name.lower(), schema.lower()
    if _FILE_LIKE.search(name):
        raise QueryRefused(f"table {name!r} looks like a file or URL: reading files is not allowed")
    if low.startswith(_SYSTEM_PREFIXES) or low_schema in _SYSTEM_SCHEMAS or low_schema.startswith("pg_"):
        raise QueryRefused(f"system catalog {name!r} is not readable here")


def _tables_read(tree: exp.Expr) -> tuple[str, ...]:
    """Lower-cased names of the tables read; the catalog's views keep their schema
    (``information_schema.tables``): they change with any load."""
    ctes = {cte.alias_or_name.lower() for cte in tree.find_all(exp.CTE)}
    names = set()
    for table in tree.find_all(exp.Table):
        if isinstance(table.this, exp.Identifier):
            name, schema = table.name.lower(), table.db.lower()
            if schema == "information_schema":
                names.add(f"{schema}.{name}")
            elif schema or name not in ctes:
                names.add(name)
    return tuple(sorted(names))


def _statement_name(node: exp.Expr) -> str:
    if isinstance(node, exp.Command):
        return str(node.this).upper()
    key = node.key.upper()
    if isinstance(node, exp.Create | exp.Drop):
        kind = node.args.get("kind")
        return f"{key} {kind}" if kind else key
    return {"TRUNCATETABLE": "TRUNCATE", "COLUMN": "a bare name (an unknown command?)"}.get(key, key)
