"""A tiny, deterministic TPC-H dataset (the 8 tables, a few hundred rows) for DuckDB and PostgreSQL.

Values are drawn from the domains the 22 queries filter on (nation and region names, part types,
containers, ship modes, dates 1992-1998), so most queries return rows. Also: the side-effect
fixtures (a sequence, a volatile function, a procedure, a materialized view) the corpus aims at.
"""

from __future__ import annotations

import datetime as dt
import random
from decimal import Decimal
from typing import Any

DDL = [
    "CREATE TABLE region (r_regionkey INTEGER PRIMARY KEY, r_name VARCHAR(25), r_comment VARCHAR(152))",
    "CREATE TABLE nation (n_nationkey INTEGER PRIMARY KEY, n_name VARCHAR(25), n_regionkey INTEGER, n_comment VARCHAR(152))",
    "CREATE TABLE supplier (s_suppkey INTEGER PRIMARY KEY, s_name VARCHAR(25), s_address VARCHAR(40), s_nationkey INTEGER,"
    " s_phone VARCHAR(15), s_acctbal DECIMAL(15,2), s_comment VARCHAR(101))",
    "CREATE TABLE part (p_partkey INTEGER PRIMARY KEY, p_name VARCHAR(55), p_mfgr VARCHAR(25), p_brand VARCHAR(10),"
    " p_type VARCHAR(25), p_size INTEGER, p_container VARCHAR(10), p_retailprice DECIMAL(15,2), p_comment VARCHAR(23))",
    "CREATE TABLE partsupp (ps_partkey INTEGER, ps_suppkey INTEGER, ps_availqty INTEGER, ps_supplycost DECIMAL(15,2),"
    " ps_comment VARCHAR(199), PRIMARY KEY (ps_partkey, ps_suppkey))",
    "CREATE TABLE customer (c_custkey INTEGER PRIMARY KEY, c_name VARCHAR(25), c_address VARCHAR(40), c_nationkey INTEGER,"
    " c_phone VARCHAR(15), c_acctbal DECIMAL(15,2), c_mktsegment VARCHAR(10), c_comment VARCHAR(117))",
    "CREATE TABLE orders (o_orderkey INTEGER PRIMARY KEY, o_custkey INTEGER, o_orderstatus VARCHAR(1), o_totalprice DECIMAL(15,2),"
    " o_orderdate DATE, o_orderpriority VARCHAR(15), o_clerk VARCHAR(15), o_shippriority INTEGER, o_comment VARCHAR(79))",
    "CREATE TABLE lineitem (l_orderkey INTEGER, l_partkey INTEGER, l_suppkey INTEGER, l_linenumber INTEGER,"
    " l_quantity DECIMAL(15,2), l_extendedprice DECIMAL(15,2), l_discount DECIMAL(15,2), l_tax DECIMAL(15,2),"
    " l_returnflag VARCHAR(1), l_linestatus VARCHAR(1), l_shipdate DATE, l_commitdate DATE, l_receiptdate DATE,"
    " l_shipinstruct VARCHAR(25), l_shipmode VARCHAR(10), l_comment VARCHAR(44), PRIMARY KEY (l_orderkey, l_linenumber))",
]
TABLES = ("region", "nation", "supplier", "part", "partsupp", "customer", "orders", "lineitem")

REGIONS = ["AFRICA", "AMERICA", "ASIA", "EUROPE", "MIDDLE EAST"]
NATIONS = [
    ("ALGERIA", 0),
    ("ARGENTINA", 1),
    ("BRAZIL", 1),
    ("CANADA", 1),
    ("EGYPT", 4),
    ("ETHIOPIA", 0),
    ("FRANCE", 3),
    ("GERMANY", 3),
    ("INDIA", 2),
    ("INDONESIA", 2),
    ("IRAN", 4),
    ("IRAQ", 4),
    ("JAPAN", 2),
    ("JORDAN", 4),
    ("KENYA", 0),
    ("MOROCCO", 0),
    ("MOZAMBIQUE", 0),
    ("PERU", 1),
    ("CHINA", 2),
    ("ROMANIA", 3),
    ("SAUDI ARABIA", 4),
    ("VIETNAM", 2),
    ("RUSSIA", 3),
    ("UNITED KINGDOM", 3),
    ("UNITED STATES", 1),
]
TYPES = [
    "STANDARD ANODIZED BRASS",
    "ECONOMY ANODIZED STEEL",
    "MEDIUM POLISHED TIN",
    "PROMO BRUSHED COPPER",
    "LARGE PLATED NICKEL",
    "SMALL BURNISHED BRASS",
    "PROMO POLISHED BRASS",
    "MEDIUM POLISHED STEEL",
]
CONTAINERS = [
    "SM CASE",
    "SM BOX",
    "SM PACK",
    "SM PKG",
    "MED BAG",
    "MED BOX",
    "MED PKG",
    "MED PACK",
    "LG CASE",
    "LG BOX",
    "LG PACK",
    "LG PKG",
    "WRAP BOX",
    "JUMBO PKG",
]
BRANDS = ["Brand#12", "Brand#23", "Brand#34", "Brand#45", "Brand#11"]
COLORS = ["forest", "green", "almond", "azure", "beige", "chartreuse"]
SEGMENTS = ["BUILDING", "AUTOMOBILE", "MACHINERY", "HOUSEHOLD", "FURNITURE"]
PRIORITIES = ["1-URGENT", "2-HIGH", "3-MEDIUM", "4-NOT SPECIFIED", "5-LOW"]
MODES = ["MAIL", "SHIP", "AIR", "AIR REG", "TRUCK", "RAIL", "FOB"]
INSTRUCT = ["DELIVER IN PERSON", "COLLECT COD", "NONE", "TAKE BACK RETURN"]
PHONE_CODES = ["13", "31", "23", "29", "30", "18", "17", "11"]


def rows(seed: int = 7) -> dict[str, list[tuple[Any, ...]]]:
    """Every table's rows, the same for the same seed."""
    rnd = random.Random(seed)

    def money(lo: float, hi: float) -> Decimal:
        return Decimal(str(round(rnd.uniform(lo, hi), 2)))

    start = dt.date(1992, 1, 1)
    data: dict[str, list[tuple[Any, ...]]] = {
        "region": [(i, name, f"region {name.lower()}") for i, name in enumerate(REGIONS)],
        "nation": [(i, name, r, f"nation {i}") for i, (name, r) in enumerate(NATIONS)],
        "supplier": [
            (
                s,
                f"Supplier#{s:09d}",
                f"addr {s}",
                rnd.randrange(25),
                f"{rnd.choice(PHONE_CODES)}-555-{s:04d}",
                money(-500, 9000),
                "Customer Complaints" if s == 3 else f"supplier {s}",
            )
            for s in range(1, 13)
        ],
        "part": [
            (
                p,
                f"{rnd.choice(COLORS)} {rnd.choice(COLORS)} part",
                "Manufacturer#1",
                rnd.choice(BRANDS),
                rnd.choice(TYPES),
                rnd.choice([1, 3, 9, 14, 15, 19, 23, 36, 45, 49]),
                rnd.choice(CONTAINERS),
                money(900, 2000),
                f"part {p}",
            )
            for p in range(1, 31)
        ],
    }
    data["partsupp"] = [
        (p, s, rnd.randrange(1, 9999), money(1, 1000), f"ps {p} {s}")
        for p in range(1, 31)
        for s in (p % 12 + 1, (p + 5) % 12 + 1)
    ]
    data["customer"] = [
        (
            c,
            f"Customer#{c:09d}",
            f"caddr {c}",
            rnd.randrange(25),
            f"{rnd.choice(PHONE_CODES)}-444-{c:04d}",
            money(-900, 9999),
            rnd.choice(SEGMENTS),
            f"customer {c}",
        )
        for c in range(1, 41)
    ]
    data["orders"], data["lineitem"] = [], []
    for o in range(1, 151):
        cust = rnd.randrange(1, 36)  # customers 36-40 never order (query 22)
        date = start + dt.timedelta(days=rnd.randrange(0, 2400))
        lines = []
        for n in range(1, rnd.randrange(2, 6)):
            part = rnd.randrange(1, 31)
            supp = rnd.choice((part % 12 + 1, (part + 5) % 12 + 1))
            ship = date + dt.timedelta(days=rnd.randrange(1, 120))
            commit = date + dt.timedelta(days=rnd.randrange(30, 90))
            receipt = ship + dt.timedelta(days=rnd.randrange(1, 30))
            qty = Decimal(rnd.randrange(1, 51))
            lines.append(
                (
                    o,
                    part,
                    supp,
                    n,
                    qty,
                    money(900, 90000),
                    Decimal(rnd.randrange(0, 11)) / 100,
                    Decimal(rnd.randrange(0, 9)) / 100,
                    "R" if receipt <= dt.date(1995, 6, 17) else "N",
                    "F" if ship <= dt.date(1995, 6, 17) else "O",
                    ship,
                    commit,
                    receipt,
                    rnd.choice(INSTRUCT),
                    rnd.choice(MODES),
                    f"line {o} {n}",
                )
            )
        total = sum((line[5] for line in lines), Decimal(0))
        data["orders"].append(
            (
                o,
                cust,
                rnd.choice("OFP"),
                total,
                date,
                rnd.choice(PRIORITIES),
                f"Clerk#{rnd.randrange(1000):09d}",
                0,
                "special requests" if o % 17 == 0 else f"order {o}",
            )
        )
        data["lineitem"].extend(lines)
    return data


def build_duckdb(path: str) -> None:
    """The dataset in a new DuckDB file, with a sequence and a view for the side-effect corpus."""
    import duckdb

    con = duckdb.connect(path)
    try:
        for statement in DDL:
            con.execute(statement)
        for table, table_rows in rows().items():  # one statement per table: executemany is slow in DuckDB
            values = ", ".join("(" + ", ".join("?" * len(table_rows[0])) + ")" for _ in table_rows)
            con.execute(f"INSERT INTO {table} VALUES {values}", [v for row in table_rows for v in row])
        con.execute("CREATE SEQUENCE s")
        con.execute("CREATE VIEW nation_names AS SELECT n_name FROM nation")
    finally:
        con.close()


POSTGRES_EXTRAS = [
    "CREATE SEQUENCE s",
    "CREATE VIEW nation_names AS SELECT n_name FROM nation",
    "CREATE MATERIALIZED VIEW mv AS SELECT count(*) AS n FROM nation",
    "CREATE FUNCTION sophia_write() RETURNS integer LANGUAGE sql VOLATILE AS "
    "$$ INSERT INTO region VALUES (99, 'X', 'x') RETURNING 1 $$",
    "CREATE PROCEDURE sophia_proc() LANGUAGE sql AS $$ DELETE FROM region $$",
]


async def build_postgres(conn: Any) -> None:
    """The dataset in the database ``conn`` (asyncpg, a role that may create tables) is connected to."""
    for statement in DDL:
        await conn.execute(statement)
    for table, table_rows in rows().items():
        placeholders = ", ".join(f"${i + 1}" for i in range(len(table_rows[0])))
        await conn.executemany(f"INSERT INTO {table} VALUES ({placeholders})", table_rows)
    for statement in POSTGRES_EXTRAS:
        await conn.execute(statement)
