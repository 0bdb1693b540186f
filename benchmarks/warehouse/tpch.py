#!/usr/bin/env python3
"""The TPC-H database of the warehouse benchmark: `tpchgen-cli` parquet loaded into a DuckDB file, once per scale.

DuckDB's own `tpch` extension would be the usual generator, but extensions are downloaded at run time and
nothing may be (duckdb 2.0.1 ships only parquet, json and icu built in). `tpchgen-cli` is a Rust port of
dbgen on PyPI, installed by `setup.sh` into its own venv (benchmarks/.work/warehouse/tpchgen-venv,
git-ignored): it writes the eight tables as parquet, which this script loads with DuckDB's built-in parquet
reader into `benchmarks/.work/warehouse/tpch-sf<scale>.duckdb` (column types as the generator writes them:
BIGINT keys, DECIMAL(15,2) money, DATE dates; no keys or indexes, as DuckDB's dbgen makes them). The file is
built under a temporary name and renamed when complete, so an interrupted build is never mistaken for one.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import duckdb

HERE = Path(__file__).resolve().parent
WORK = HERE.parent / ".work" / "warehouse"
GENERATOR = WORK / "tpchgen-venv" / "bin" / "tpchgen-cli"
TABLES = ("region", "nation", "supplier", "part", "partsupp", "customer", "orders", "lineitem")
#: rows per table at scale 1 (the spec; region and nation do not scale), to check a build
SF1_ROWS = {"region": 5, "nation": 25, "supplier": 10_000, "part": 200_000, "partsupp": 800_000,
            "customer": 150_000, "orders": 1_500_000, "lineitem": 6_001_215}  # fmt: skip


def scale_name(scale: float) -> str:
    return f"{scale:g}"


def database_path(scale: float) -> Path:
    return WORK / f"tpch-sf{scale_name(scale)}.duckdb"


def ensure_database(scale: float, *, quiet: bool = False) -> Path:
    """The TPC-H DuckDB file at ``scale``, generated and loaded only if it is not there yet."""
    path = database_path(scale)
    if path.is_file():
        return path
    if not GENERATOR.is_file():
        sys.exit(f"{GENERATOR} is missing: run benchmarks/warehouse/setup.sh first (it installs tpchgen-cli)")
    parquet = WORK / f"parquet-sf{scale_name(scale)}"
    shutil.rmtree(parquet, ignore_errors=True)
    started = time.perf_counter()
    log = (lambda msg: None) if quiet else (lambda msg: print(msg, file=sys.stderr))
    log(f"generating TPC-H SF {scale_name(scale)} with tpchgen-cli into {parquet}")
    subprocess.run(
        [str(GENERATOR), "parquet", "-s", scale_name(scale), "-o", str(parquet), "--no-progress", "--quiet"],
        check=True,
    )
    partial = path.with_suffix(".partial")
    partial.unlink(missing_ok=True)
    con = duckdb.connect(str(partial))
    try:
        for table in TABLES:
            source = str(parquet / f"{table}.parquet")
            con.execute(f"CREATE TABLE {table} AS SELECT * FROM read_parquet($source)", {"source": source})
        counts = {t: con.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in TABLES}  # type: ignore[index]
        con.execute("CHECKPOINT")
    finally:
        con.close()
    check_counts(counts, scale)
    os.replace(partial, path)
    shutil.rmtree(parquet, ignore_errors=True)
    log(f"loaded {path} in {time.perf_counter() - started:.0f} s: {counts}")
    return path


def check_counts(counts: dict[str, int], scale: float) -> None:
    """Every table is there with about the rows the spec gives at this scale (lineitem varies ±0.1%)."""
    for table, at_one in SF1_ROWS.items():
        expected = at_one if table in ("region", "nation") else at_one * scale
        if not counts.get(table) or abs(counts[table] - expected) > max(0.01 * expected, 10):
            raise SystemExit(
                f"TPC-H load looks wrong: {table} has {counts.get(table)} rows, expected ~{expected:.0f}"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", type=float, default=1.0, help="TPC-H scale factor (default %(default)s)")
    args = parser.parse_args()
    print(ensure_database(args.scale))


if __name__ == "__main__":
    main()
