"""What Sophia's HTTP edges share: raw-ASGI helpers for the hot path (body reading, JSON responses,
disconnect watching) and the uvicorn options every server runs with. Used by the gateway and the
MCP servers; imports nothing of Sophia above ``sophia.errors``."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, MutableMapping
from types import TracebackType
from typing import Any

from sophia.errors import PayloadTooLarge

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

JSON_CT = (b"content-type", b"application/json")

#: uvicorn's options for every server Sophia runs (uvloop + httptools, no access log, no server header).
#: Servers run with ``sophia.edge.uvicorn_options(settings.gateway)``: these on the bounded protocol.
UVICORN_OPTIONS: dict[str, Any] = {
    "loop": "uvloop",
    "http": "httptools",
    "ws": "none",  # no route speaks WebSocket: an Upgrade is never taken
    "access_log": False,
    "lifespan": "on",
    "timeout_graceful_shutdown": 5,
    "timeout_keep_alive": 5,  # seconds an idle keep-alive connection stays open
    # Sophia reads no X-Forwarded-* headers and announces no server name: less work per request.
    "proxy_headers": False,
    "server_header": False,
}


def uvicorn_log_level(log_level: str) -> str:
    """uvicorn's level for Sophia's ``log_level`` (its info level would log every request)."""
    return "warning" if log_level == "info" else log_level


class ClientGone(Exception):
    """The client disconnected; nothing more can be sent."""


def header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return str(value.decode("latin-1"))
    return None


async def read_body(scope: Scope, receive: Receive, limit: int) -> bytes:
    """The request body, at most ``limit`` bytes (``PayloadTooLarge`` beyond); ``ClientGone`` when the
    client left. A body that stalls is cut by the server's edge (``sophia.edge``: 408 after
    ``gateway.body_timeout``), which this sees as the client gone: no timer here."""
    length = header(scope, b"content-length")
    if length is not None and length.isdigit() and int(length) > limit:
        raise PayloadTooLarge(f"the request body is over the {limit}-byte limit")
    msg = await receive()
    if msg["type"] == "http.disconnect":
        raise ClientGone
    body: bytes = msg.get("body", b"")
    if not msg.get("more_body"):
        if len(body) > limit:
            raise PayloadTooLarge(f"the request body is over the {limit}-byte limit")
        return body
    parts = [body]
    size = len(body)
    while True:
        msg = await receive()
        if msg["type"] == "http.disconnect":
            raise ClientGone
        chunk = msg.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"the request body is over the {limit}-byte limit")
        parts.append(chunk)
        if not msg.get("more_body"):
            return b"".join(parts)


async def send_json(
    send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]] | None = None
) -> None:
    out = [JSON_CT, (b"content-length", str(len(body)).encode())]
    if headers:
        out.extend(headers)
    await send({"type": "http.response.start", "status": status, "headers": out})
    await send({"type": "http.response.body", "body": body})


class DisconnectGuard:
    """Cancels the current task when the client disconnects; the block then ends with ``gone`` set.

    Most calls finish in well under ``arm_after`` seconds, so the watcher (a task reading
    ``receive()``) is only started for calls still running by then: fast calls pay for one timer,
    not a task. Use around work done after the request body was read. Nothing may be awaited
    between the last ``send`` and the end of the block (the server reports completion as a
    disconnect).
    """

    __slots__ = ("_receive", "_task", "_timer", "_watcher", "gone")

    #: seconds before a still-running call starts watching for a disconnect
    arm_after = 0.05

    def __init__(self, receive: Receive) -> None:
        self._receive = receive
        self._watcher: asyncio.Task[None] | None = None
        self.gone = False

    async def __aenter__(self) -> DisconnectGuard:
        task = asyncio.current_task()
        assert task is not None
        self._task = task
        self._timer = asyncio.get_running_loop().call_later(self.arm_after, self._arm)
        return self

    def _arm(self) -> None:
        self._watcher = asyncio.get_running_loop().create_task(self._watch())

    async def _watch(self) -> None:
        while True:
            msg = await self._receive()
            if msg["type"] == "http.disconnect":
                self.gone = True
                self._task.cancel()
                return

    async def __aexit__(
        self, et: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> bool:
        self._timer.cancel()
        if self._watcher is not None:
            self._watcher.cancel()
        if self.gone and et is not None and issubclass(et, asyncio.CancelledError):
            self._task.uncancel()
            return True
        return False
