"""Search filters: one parsed form, applied the same way in memory and in PostgreSQL.

``{"account_id": 12, "role": "prospect", "kind": ["transcript", "note"], "date_from": "2025-01-01"}``:
each key must match (AND), a list matches any of its values (OR). ``source``, ``kind`` and
``document_id`` are the document's own fields; ``date_from`` / ``date_to`` bound the metadata
``date`` (ISO dates, both inclusive); every other key is metadata equality, where a list in the
metadata (a chunk's ``speakers``, ``roles``) matches when it contains the value. ``speaker`` and
``role`` (or ``speaker_role``) name those lists. Values compare as text (``norm``), so
``account_id: 12`` matches metadata ``12`` and ``"12"`` alike.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sophia.errors import InvalidRequest

#: the document's own fields, kept beside the metadata
FIELDS = ("source", "kind", "document_id")
ALIASES = {"speaker": "speakers", "role": "roles", "speaker_role": "roles"}
_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]{0,63}$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


@dataclass(frozen=True)
class Filters:
    """Parsed filters: ``equals`` holds (key, accepted values) pairs, values normalised by ``norm``."""

    equals: tuple[tuple[str, tuple[str, ...]], ...] = ()
    date_from: str | None = None
    date_to: str | None = None

    def __bool__(self) -> bool:
        return bool(self.equals) or self.date_from is not None or self.date_to is not None


NO_FILTERS = Filters()


def norm(value: Any) -> str:
    """A metadata or filter value as the text filters compare (``True`` -> ``true``, ``12`` -> ``12``)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def date_key(value: Any) -> str:
    """The day a metadata ``date`` names (``YYYY-MM-DD``), or "" when it names none."""
    text = value.isoformat() if isinstance(value, dt.date) else str(value or "")
    return text[:10] if _DATE.match(text[:10]) else ""


def parse_filters(raw: Mapping[str, Any] | None) -> Filters:
    """Validate and normalise the caller's filters (``InvalidRequest`` says what is wrong)."""
    if not raw:
        return NO_FILTERS
    if not isinstance(raw, Mapping):
        raise InvalidRequest("filters must be an object of metadata keys to values", param="filters")
    equals: dict[str, tuple[str, ...]] = {}
    bounds: dict[str, str | None] = {"date_from": None, "date_to": None}
    for key, value in raw.items():
        if key in bounds:
            if value is None:
                continue
            day = date_key(value)
            if not day:
                raise InvalidRequest(f"filter {key}: {value!r} is not a date (YYYY-MM-DD)", param="filters")
            bounds[key] = day
            continue
        if not isinstance(key, str) or not _KEY.match(key):
            raise InvalidRequest(f"filter key {key!r} is not a metadata name", param="filters")
        values = value if isinstance(value, list | tuple) else [value]
        if not values or any(v is None or isinstance(v, dict | list | tuple) for v in values):
            raise InvalidRequest(f"filter {key}: give a value or a list of values", param="filters")
        equals[ALIASES.get(key, key)] = tuple(sorted({norm(v) for v in values}))
    return Filters(tuple(sorted(equals.items())), bounds["date_from"], bounds["date_to"])


def chunk_fields(
    source: str, kind: str, document_id: str, metadata: Mapping[str, Any]
) -> dict[str, list[str]]:
    """Every (key, value) a chunk can be filtered on, values normalised: what ``Filters`` match."""
    fields: dict[str, list[str]] = {"source": [source], "kind": [kind], "document_id": [document_id]}
    for key, value in metadata.items():
        if key in fields or value is None or isinstance(value, dict):
            continue
        items = value if isinstance(value, list) else [value]
        fields[key] = [norm(v) for v in items if v is not None and not isinstance(v, dict | list)]
    return fields


def sql_where(filters: Filters, *, alias: str = "c") -> tuple[str, list[Any]]:
    """The filters as a PostgreSQL condition on ``knowledge_chunks`` (metadata in JSONB), ``?`` params.

    Same semantics as ``chunk_fields`` + ``ChunkIndex.mask``: text comparison, lists by containment.
    """
    parts: list[str] = []
    params: list[Any] = []
    for key, values in filters.equals:
        if key in FIELDS:
            parts.append(f"{alias}.{key} = ANY(?::text[])")
            params.append(list(values))
            continue
        parts.append(
            f"(CASE jsonb_typeof({alias}.metadata -> ?) "
            f"WHEN 'array' THEN EXISTS (SELECT 1 FROM jsonb_array_elements_text({alias}.metadata -> ?) AS e(v) "
            f"WHERE e.v = ANY(?::text[])) "
            f"ELSE ({alias}.metadata ->> ?) = ANY(?::text[]) END)"
        )
        params.extend([key, key, list(values), key, list(values)])
    day = f"left(coalesce({alias}.metadata ->> 'date', ''), 10)"
    if filters.date_from is not None:
        parts.append(f"{day} ~ '^[0-9]{{4}}-[0-9]{{2}}-[0-9]{{2}}$' AND {day} >= ?")
        params.append(filters.date_from)
    if filters.date_to is not None:
        parts.append(f"{day} ~ '^[0-9]{{4}}-[0-9]{{2}}-[0-9]{{2}}$' AND {day} <= ?")
        params.append(filters.date_to)
    return (" AND ".join(parts) or "TRUE"), params
