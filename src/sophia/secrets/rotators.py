"""Sophia's ``fn::rotate`` rotators: two-secret rotation, so no client is ever left holding a dead credential.

A rotated credential has two generations alive at once: ``current`` (what services use from now
on) and ``previous`` (what services that have not reloaded yet still hold). Each rotation writes a
new credential over the *older* one and promotes it, so the credential in use before the rotation
stays valid for a whole rotation period (the overlap) and is retired only by the next one.

- ``postgres``: two login roles take turns (PostgreSQL keeps one password per role, so "both valid"
  means two roles with the same grants). Inputs: ``admin_url`` (a connection that may ``ALTER
  ROLE``) and ``users`` (the two role names). State: ``{current: {user, password}, previous: …}``.
  An environment builds its database URL from ``${<path>.current.user}`` and
  ``${<path>.current.password}``.
"""

from __future__ import annotations

import asyncio
import secrets
import threading
from collections.abc import Callable
from typing import Any

from sophia.secrets.esc import Rotator, Value

__all__ = ["POSTGRES_INPUTS", "builtin_rotators", "postgres_rotator"]

POSTGRES_INPUTS: dict[str, Any] = {
    "type": "object",
    "properties": {
        "admin_url": {"type": "string"},
        "users": {"type": "array", "items": {"type": "string"}, "minItems": 2, "maxItems": 2},
    },
    "required": ["admin_url", "users"],
}
_CREDENTIAL = {
    "type": "object",
    "properties": {"user": {"type": "string"}, "password": {"type": "string"}},
    "required": ["user", "password"],
}
POSTGRES_STATE: dict[str, Any] = {
    "type": "object",
    "properties": {"current": _CREDENTIAL, "previous": {"oneOf": [_CREDENTIAL, {"type": "null"}]}},
}


def _field(v: Value, *path: str) -> Value | None:
    for key in path:
        if not v.is_object() or key not in v.v:
            return None
        v = v.v[key]
    return v


def _run(work: Callable[[], Any]) -> Any:
    """Run a coroutine factory to completion on a private loop in a thread (a rotator is called from
    synchronous code that may itself sit inside a running loop)."""
    box: dict[str, Any] = {}

    def go() -> None:
        try:
            box["value"] = asyncio.run(work())
        except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread, re-raised there
            box["error"] = exc

    thread = threading.Thread(target=go, name="sophia-rotate")
    thread.start()
    thread.join()
    if "error" in box:
        raise box["error"]
    return box.get("value")


def set_role_password(admin_url: str, user: str, password: str) -> None:
    """``ALTER ROLE user LOGIN PASSWORD …`` through ``admin_url``; ValueError naming the role if it fails
    (never the password or the admin URL's own password)."""
    import asyncpg

    async def work() -> None:
        conn = await asyncpg.connect(admin_url, timeout=10)
        try:
            statement = await conn.fetchval(
                "SELECT format('ALTER ROLE %I WITH LOGIN PASSWORD %L', $1::text, $2::text)", user, password
            )
            await conn.execute(statement)
        finally:
            await conn.close()

    try:
        _run(work)
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        reason = type(exc).__name__ if isinstance(exc, OSError) else str(exc).replace(password, "[secret]")
        raise ValueError(f"could not set the password of role {user!r}: {reason}") from None


def postgres_rotator(generate: Callable[[], str] | None = None) -> Rotator:
    """The two-role PostgreSQL rotator (see the module's docstring)."""
    make = generate or (lambda: secrets.token_urlsafe(32))

    def rotate(inputs: Value, state: Value) -> Value:
        plain = inputs.reveal()
        first, second = plain["users"]
        if first == second:
            raise ValueError("the two users must differ (one keeps working while the other changes)")
        current = _field(state, "current")
        in_use = _field(state, "current", "user")
        target = second if in_use is not None and in_use.v == first else first
        password = make()
        set_role_password(plain["admin_url"], target, password)
        fresh = Value({"user": Value(target), "password": Value(password, secret=True)})
        return Value({"current": fresh, "previous": current if current is not None else Value(None)})

    return Rotator(rotate, state=POSTGRES_STATE, inputs=POSTGRES_INPUTS)


def builtin_rotators() -> dict[str, Rotator]:
    """The rotators every store knows, by the name after ``fn::rotate::``."""
    return {"postgres": postgres_rotator()}
