"""Warehouse backends: one interface (``base.Backend``) over DuckDB, PostgreSQL and Snowflake.

Found through ``registry`` by URL scheme; the built-ins register in ``builtin`` through the same
plugin hook (``register_warehouse_backends``) a third-party backend uses.
"""
