"""The first-run local admin key: created when the store has no active key, kept in a private file."""

from __future__ import annotations

import getpass
import os
from pathlib import Path

from sophia.accounts.keys import KeyStore

#: the file, in the config folder, that holds the local admin key
LOCAL_KEY_FILE = "admin-key"


def read_local_key(path: Path) -> str | None:
    """The key kept in ``path``, or None when there is none."""
    try:
        return path.read_text(encoding="utf-8").strip() or None
    except FileNotFoundError:
        return None


async def ensure_local_key(database: str | KeyStore, path: Path) -> str | None:
    """With no active key at all, create a local admin key, keep it in ``path`` (owner-only) and return
    it; None when the store already has a key."""
    store = await KeyStore.open(database) if isinstance(database, str) else database
    try:
        if await store.count_active() > 0:
            return None
        secret, _ = await store.create(name="local-admin", owner=user_name(), team="admin", admin=True)
    finally:
        if store is not database:
            await store.close()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(secret + "\n")
    return secret


def user_name() -> str:
    """The login name, for a key's owner ("local" where there is none)."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "local"
