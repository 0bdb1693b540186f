"""Virtual API keys: the store (SQLite or PostgreSQL) and the hot-path cache that authenticates requests.

A key's secret (``sk-sophia-…``) is shown once, at creation; the store keeps only its SHA-256 and a
display prefix. ``KeyCache.authenticate`` turns an ``Authorization`` header into a ``KeyRecord`` in a few
microseconds on a cache hit; a revocation made by another process takes effect within the cache's ttl.
"""

from __future__ import annotations

import asyncio
import builtins
import functools
import hashlib
import secrets
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import Any

import orjson

from sophia.errors import AuthenticationError, InvalidRequest
from sophia.storage import Database, open_with_schema

SECRET_PREFIX = "sk-sophia-"

SCHEMA = (
    """CREATE TABLE IF NOT EXISTS sophia_keys (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        owner TEXT NOT NULL,
        team TEXT NOT NULL,
        hash TEXT NOT NULL UNIQUE,
        prefix TEXT NOT NULL,
        admin BIGINT NOT NULL DEFAULT 0,
        allowed_models TEXT,
        allowed_tools TEXT,
        budget_daily_usd DOUBLE PRECISION,
        budget_monthly_usd DOUBLE PRECISION,
        rpm BIGINT,
        tpm BIGINT,
        created_at DOUBLE PRECISION NOT NULL,
        revoked_at DOUBLE PRECISION,
        metadata TEXT NOT NULL DEFAULT '{}'
    )""",
)

_COLUMNS = (
    "id, name, owner, team, hash, prefix, admin, allowed_models, allowed_tools, budget_daily_usd, "
    "budget_monthly_usd, rpm, tpm, created_at, revoked_at, metadata"
)
_SELECT = f"SELECT {_COLUMNS} FROM sophia_keys"
_UPDATABLE = (
    "name", "owner", "team", "admin", "allowed_models", "allowed_tools",
    "budget_daily_usd", "budget_monthly_usd", "rpm", "tpm", "metadata",
)  # fmt: skip


def _has_wildcard(pattern: str) -> bool:
    return any(c in pattern for c in "*?[")


@dataclass(frozen=True, slots=True)
class KeyRecord:
    """One virtual key as stored (never its secret)."""

    id: str
    name: str
    owner: str
    team: str
    hash: str
    prefix: str
    admin: bool = False
    allowed_models: tuple[str, ...] | None = None  # None: every model
    allowed_tools: tuple[str, ...] | None = None  # None: every MCP tool
    budget_daily_usd: float | None = None
    budget_monthly_usd: float | None = None
    rpm: int | None = None
    tpm: int | None = None
    created_at: float = 0.0
    revoked_at: float | None = None
    metadata: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)

    def allows_model(self, name: str) -> bool:
        """True if the key may use ``name``: exact match or a wildcard such as ``openai/*``."""
        return _allows(self.allowed_models, name)

    def allows_tool(self, name: str) -> bool:
        """True if the key may call the MCP tool ``name`` (same matching as models)."""
        return _allows(self.allowed_tools, name)

    @property
    def budgeted(self) -> bool:
        """Whether a daily or monthly budget applies to this key (its calls reserve their worst case)."""
        return self.budget_daily_usd is not None or self.budget_monthly_usd is not None

    @property
    def limited(self) -> bool:
        """Whether any rate limit or budget applies to this key."""
        return not (
            self.rpm is None
            and self.tpm is None
            and self.budget_daily_usd is None
            and self.budget_monthly_usd is None
        )


def _allows(allowed: tuple[str, ...] | None, name: str) -> bool:
    if allowed is None or name in allowed:
        return True
    return any(_has_wildcard(p) and fnmatchcase(name, p) for p in allowed)


def hash_secret(secret: str) -> str:
    # A plain SHA-256 is the right hash here (not a slow password hash): every secret carries 256
    # bits from `secrets`, so there is nothing to brute-force, and the hot path needs a fast lookup.
    return hashlib.sha256(secret.encode()).hexdigest()


#: the largest values a key's limits may take (beyond them a limit is meaningless, and storage overflows)
MAX_RATE = 1_000_000_000  # rpm, tpm
MAX_BUDGET_USD = 1_000_000_000.0
MAX_TEXT = 200  # name, owner, team, one model or tool pattern
MAX_NAMES = 256  # entries in allowed_models / allowed_tools
MAX_METADATA_BYTES = 8192


def _text(value: Any, field_name: str, *, empty: bool = True) -> str:
    if not isinstance(value, str):
        raise InvalidRequest(f"{field_name} must be a string", param=field_name)
    if len(value) > MAX_TEXT:
        raise InvalidRequest(f"{field_name} must be at most {MAX_TEXT} characters", param=field_name)
    if not value.isprintable():
        raise InvalidRequest(f"{field_name} must not contain control characters", param=field_name)
    if not empty and not value.strip():
        raise InvalidRequest(f"{field_name} must not be empty", param=field_name)
    return value


def _names(value: Iterable[str] | None, field_name: str) -> str | None:
    if value is None:
        return None
    if isinstance(value, str) or not isinstance(value, Iterable):
        raise InvalidRequest(
            f"{field_name} must be a list of names, not {type(value).__name__}", param=field_name
        )
    names = [_text(v, field_name, empty=False) for v in value]
    if len(names) > MAX_NAMES:
        raise InvalidRequest(f"{field_name} may hold at most {MAX_NAMES} names", param=field_name)
    return orjson.dumps(names).decode()


def _number(value: Any, field_name: str, kind: type) -> Any:
    """A limit: None, or a number in its range (whole for rates); InvalidRequest names the range."""
    if value is None:
        return None
    top = MAX_RATE if kind is int else MAX_BUDGET_USD
    what = "a whole number" if kind is int else "a number"
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or value != value  # NaN
        or not 0 <= value <= top
        or (kind is int and value != int(value))
    ):
        raise InvalidRequest(
            f"{field_name} must be {what} from 0 to {top:,g}, or null; not {value!r}", param=field_name
        )
    return kind(value)


def _column(name: str, value: Any) -> Any:
    """A field's value as stored, validated."""
    if (
        name in ("allowed_models", "allowed_tools")
        and isinstance(value, Iterable)
        and not isinstance(value, str)
    ):
        value = list(value)  # iterated twice below
    if name == "allowed_tools" and isinstance(value, list):
        for pattern in value:
            if not isinstance(pattern, str) or "/" not in pattern:
                raise InvalidRequest(
                    f"allowed_tools entries are server/tool patterns, e.g. ai/generate or ai/*; not {pattern!r}",
                    param=name,
                )
    if name in ("allowed_models", "allowed_tools"):
        return _names(value, name)
    if name in ("budget_daily_usd", "budget_monthly_usd"):
        return _number(value, name, float)
    if name in ("rpm", "tpm"):
        return _number(value, name, int)
    if name == "admin":
        if not isinstance(value, bool | int):
            raise InvalidRequest("admin must be true or false", param=name)
        return int(bool(value))
    if name == "metadata":
        if not isinstance(value, Mapping):
            raise InvalidRequest("metadata must be an object", param=name)
        try:
            text = orjson.dumps(dict(value)).decode()
        except TypeError:
            raise InvalidRequest("metadata must hold JSON values only", param=name) from None
        if len(text) > MAX_METADATA_BYTES:
            raise InvalidRequest(f"metadata must be at most {MAX_METADATA_BYTES} bytes as JSON", param=name)
        return text
    return _text(value, name, empty=name not in ("name", "team"))


def _record(row: Mapping[str, Any]) -> KeyRecord:
    def names(text: str | None) -> tuple[str, ...] | None:
        return None if text is None else tuple(orjson.loads(text))

    return KeyRecord(
        id=row["id"],
        name=row["name"],
        owner=row["owner"],
        team=row["team"],
        hash=row["hash"],
        prefix=row["prefix"],
        admin=bool(row["admin"]),
        allowed_models=names(row["allowed_models"]),
        allowed_tools=names(row["allowed_tools"]),
        budget_daily_usd=row["budget_daily_usd"],
        budget_monthly_usd=row["budget_monthly_usd"],
        rpm=None if row["rpm"] is None else int(row["rpm"]),
        tpm=None if row["tpm"] is None else int(row["tpm"]),
        created_at=float(row["created_at"]),
        revoked_at=row["revoked_at"],
        metadata=orjson.loads(row["metadata"]),
    )


class KeyStore:
    """Keys in the database. ``await KeyStore.open(url)`` creates the schema if needed."""

    def __init__(self, db: Database, *, owns_db: bool = False) -> None:
        self.db = db
        self._owns_db = owns_db

    @classmethod
    async def open(cls, database: str | Database) -> KeyStore:
        """Open by URL (the store owns the connection) or on a shared ``Database`` (it does not)."""
        db, owned = await open_with_schema(database, SCHEMA)
        return cls(db, owns_db=owned)

    async def create(
        self,
        *,
        name: str,
        owner: str = "",
        team: str = "default",
        admin: bool = False,
        allowed_models: Iterable[str] | None = None,
        allowed_tools: Iterable[str] | None = None,
        budget_daily_usd: float | None = None,
        budget_monthly_usd: float | None = None,
        rpm: int | None = None,
        tpm: int | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> tuple[str, KeyRecord]:
        """A new key: its secret (show it once, it is not stored) and its record."""
        secret = SECRET_PREFIX + secrets.token_urlsafe(32)
        fields = {
            "name": name, "owner": owner, "team": team, "admin": admin,
            "allowed_models": allowed_models, "allowed_tools": allowed_tools,
            "budget_daily_usd": budget_daily_usd, "budget_monthly_usd": budget_monthly_usd,
            "rpm": rpm, "tpm": tpm, "metadata": metadata or {},
        }  # fmt: skip
        values = {k: _column(k, v) for k, v in fields.items()}
        values |= {
            "id": "key_" + secrets.token_hex(6),
            "hash": hash_secret(secret),
            "prefix": secret[:14] + "…",
            "created_at": time.time(),
            "revoked_at": None,
        }
        columns = [c.strip() for c in _COLUMNS.split(",")]
        placeholders = ", ".join("?" * len(columns))
        await self.db.execute(
            f"INSERT INTO sophia_keys ({_COLUMNS}) VALUES ({placeholders})", [values[c] for c in columns]
        )
        record = await self.get(values["id"])
        assert record is not None, "a key just inserted must be readable"
        return secret, record

    async def get_by_hash(self, digest: str) -> KeyRecord | None:
        """The active key whose secret hashes to ``digest``."""
        row = await self.db.fetchone(f"{_SELECT} WHERE hash = ? AND revoked_at IS NULL", [digest])
        return None if row is None else _record(row)

    async def get_by_secret(self, secret: str) -> KeyRecord | None:
        """The active key with this secret, or None."""
        return await self.get_by_hash(hash_secret(secret))

    async def get(self, key_id: str) -> KeyRecord | None:
        """A key by id, revoked or not."""
        row = await self.db.fetchone(f"{_SELECT} WHERE id = ?", [key_id])
        return None if row is None else _record(row)

    async def list(self, include_revoked: bool = False) -> builtins.list[KeyRecord]:
        """Keys, oldest first."""
        where = "" if include_revoked else " WHERE revoked_at IS NULL"
        rows = await self.db.fetchall(f"{_SELECT}{where} ORDER BY created_at, id")
        return [_record(r) for r in rows]

    async def revoke(self, key_id: str) -> bool:
        """Revoke an active key; False if there is no such active key."""
        changed = await self.db.execute(
            "UPDATE sophia_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL", [time.time(), key_id]
        )
        return changed > 0

    async def update(self, key_id: str, **fields: Any) -> KeyRecord:
        """Change limits, budgets, allowed models/tools, name, owner, team, admin or metadata."""
        unknown = sorted(set(fields) - set(_UPDATABLE))
        if unknown:
            raise InvalidRequest(f"cannot update key field(s): {', '.join(unknown)}", param=unknown[0])
        if fields:
            # Column names come from the _UPDATABLE whitelist only; values are parameters.
            names = [n for n in _UPDATABLE if n in fields]
            assignments = ", ".join(f"{n} = ?" for n in names)
            params = [_column(n, fields[n]) for n in names]
            await self.db.execute(f"UPDATE sophia_keys SET {assignments} WHERE id = ?", [*params, key_id])
        record = await self.get(key_id)
        if record is None:
            raise InvalidRequest(f"no key {key_id!r}", code="not_found", param="key_id")
        return record

    async def count_active(self) -> int:
        row = await self.db.fetchone("SELECT COUNT(*) AS n FROM sophia_keys WHERE revoked_at IS NULL")
        return int(row["n"]) if row else 0

    async def close(self) -> None:
        if self._owns_db:
            await self.db.close()


_MISSING = "Missing API key: send it in the Authorization header as 'Bearer sk-sophia-…'."
_INVALID = "Incorrect API key provided: the key is unknown or has been revoked."


class KeyCache:
    """Authenticates requests, remembering each looked-up key for ``ttl`` seconds (unknown ones for ≤ 1 s)."""

    def __init__(
        self,
        store: KeyStore,
        ttl: float,
        *,
        max_entries: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self.ttl = max(0.0, ttl)
        self.negative_ttl = min(self.ttl, 1.0)
        self.max_entries = max_entries
        self._clock = clock
        self._entries: dict[str, tuple[float, KeyRecord | None]] = {}  # sha256 -> (expires, record)
        self._loading: dict[str, asyncio.Task[KeyRecord | None]] = {}

    async def authenticate(self, credentials: str | None) -> KeyRecord:
        """The active key for ``Bearer sk-…`` (or the bare token); AuthenticationError otherwise."""
        if not credentials:
            raise AuthenticationError(_MISSING)
        token = credentials.strip()
        if token[:7].lower() == "bearer ":
            token = token[7:].lstrip()
        if not token:
            raise AuthenticationError(_MISSING)
        if not token.startswith(SECRET_PREFIX) or not token.isascii():
            raise AuthenticationError(_INVALID)  # not one of ours: no lookup, no cache entry
        digest = hashlib.sha256(token.encode()).hexdigest()
        entry = self._entries.get(digest)
        if entry is not None and entry[0] > self._clock():
            record = entry[1]
        else:
            record = await self._load(digest)
        if record is None:
            raise AuthenticationError(_INVALID)
        return record

    def clear(self) -> None:
        """Forget every remembered key (after a revocation or update made in this process)."""
        self._entries.clear()

    async def _load(self, digest: str) -> KeyRecord | None:
        task = self._loading.get(digest)
        if task is None:
            # One read per hash however many requests miss at once; the task outlives a cancelled caller.
            task = asyncio.ensure_future(self._fetch(digest))
            self._loading[digest] = task
            task.add_done_callback(functools.partial(self._loaded, digest))
        return await asyncio.shield(task)

    async def _fetch(self, digest: str) -> KeyRecord | None:
        record = await self.store.get_by_hash(digest)
        ttl = self.ttl if record is not None else self.negative_ttl
        if ttl > 0:
            self._remember(digest, record, self._clock() + ttl)
        return record

    def _loaded(self, digest: str, task: asyncio.Task[KeyRecord | None]) -> None:
        if self._loading.get(digest) is task:
            del self._loading[digest]
        if not task.cancelled():
            task.exception()  # retrieved here: every waiter that is still there gets it too

    def _remember(self, digest: str, record: KeyRecord | None, expires: float) -> None:
        entries = self._entries
        entries.pop(digest, None)
        if len(entries) >= self.max_entries:
            now = self._clock()
            for stale in [d for d, (exp, _) in entries.items() if exp <= now]:
                del entries[stale]
            while len(entries) >= self.max_entries:
                del entries[next(iter(entries))]  # the oldest insertion
        entries[digest] = (expires, record)
