"""The demo warehouse: a deterministic B2B company that sells AI software to property managers.

``build_duckdb`` writes it to a DuckDB file, ``load_postgres`` copies that file into PostgreSQL,
``transcript_documents`` turns its recorded sales calls into knowledge documents. Tables, columns and
value sets are the contract of docs/business-intelligence.md (DDL: ``schema.sql``).
"""

from __future__ import annotations

from sophia.warehouse.demo.build import TABLES, build_duckdb
from sophia.warehouse.demo.postgres import load_postgres, load_postgres_async
from sophia.warehouse.demo.transcripts import transcript_documents

__all__ = ["TABLES", "build_duckdb", "load_postgres", "load_postgres_async", "transcript_documents"]
