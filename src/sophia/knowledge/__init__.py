"""The knowledge room: documents cut into cited chunks, hybrid search, embedded and pgvector stores.

``sophia.knowledge.service.KNOWLEDGE`` gives the process's ``Knowledge`` (``ingest``, ``sync``,
``search``, ``resolve``, ``stats``); docs/business-intelligence.md has the contract. Importing this
package imports nothing heavy.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sophia.knowledge.documents import Document, Turn
    from sophia.knowledge.hits import Citation, Hit, IngestResult
    from sophia.knowledge.knowledge import Knowledge

__all__ = ["Citation", "Document", "Hit", "IngestResult", "Knowledge", "Turn"]


def __getattr__(name: str) -> object:
    import importlib

    where = {
        "Document": "documents",
        "Turn": "documents",
        "Citation": "hits",
        "Hit": "hits",
        "IngestResult": "hits",
        "Knowledge": "knowledge",
    }.get(name)
    if where is None:
        raise AttributeError(name)
    return getattr(importlib.import_module(f"sophia.knowledge.{where}"), name)
