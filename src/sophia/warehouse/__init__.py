"""The warehouse room: one governed, read-only interface over DuckDB, PostgreSQL and Snowflake.

* ``guard``     the SQL guard: one statement, reads only, allow-listed functions (pure, importable)
* ``backends``  the engines behind one interface, found by URL scheme through a plugin hook
* ``results``   query results and the result cache, keyed by statement and data versions
* ``versions``  data versions of tables in Sophia's database, bumped by every load
* ``warehouse`` the facade: datasets, describe, query (paged), loaded
* ``service``   ``WAREHOUSE``, the facade as a service of the process container
* ``demo``      the demo warehouse (``sophia demo-data``); ``metrics`` the semantic layer

See docs/business-intelligence.md for the contract other rooms build on.
"""
