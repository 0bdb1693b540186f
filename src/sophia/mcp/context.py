"""What a tool sees while it runs: the caller's key, the shared gateway, progress and confirmation.

``Services`` holds the one ``Gateway`` of the process: shared with the HTTP gateway when the MCP
server runs next to it, otherwise started on first use (so ``tools/list`` over stdio never waits
for it unless a key must be checked). ``ToolContext`` is made per call.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from time import monotonic
from typing import TYPE_CHECKING, Any

from sophia.errors import AuthenticationError, PermissionDenied, StorageError

if TYPE_CHECKING:
    from mcp.server.context import ServerRequestContext
    from mcp_types import CallToolRequestParams, InputRequiredResult

    from sophia.gateway.engine import Gateway, Result
    from sophia.gateway.keys import KeyRecord
    from sophia.settings import Settings

log = logging.getLogger(__name__)

#: where the stdio server finds the caller's key (IDE configs pass it through ${env:…} or ${input:…})
KEY_ENV = "SOPHIA_API_KEY"
_CONFIRM_SCHEMA = {
    "type": "object",
    "properties": {"confirm": {"type": "boolean", "title": "Go ahead?"}},
    "required": ["confirm"],
}


class Services:
    """The gateway shared by every tool call of one server (owned, or lent by the process that runs it)."""

    def __init__(
        self, settings: Settings, gateway: Gateway | None = None, *, start_timeout: float = 60
    ) -> None:
        self.settings = settings
        self._gateway = gateway
        self._owned = gateway is None
        self._started = False
        self._lock = asyncio.Lock()
        self._start_timeout = start_timeout

    @property
    def started(self) -> Gateway | None:
        """The gateway if it is running now, else None (never starts it)."""
        gw = self._gateway
        return gw if gw is not None and gw.ledger is not None and gw.key_cache is not None else None

    async def gateway(self) -> Gateway:
        """The running gateway: started here on first use if this server owns it."""
        gw = self.started
        if gw is not None:
            return gw
        if not self._owned:
            return await self._wait_for_owner()
        async with self._lock:
            if self._gateway is None:
                from sophia.gateway.engine import Gateway

                self._gateway = Gateway(self.settings)
            if not self._started:
                await self._gateway.start()
                self._started = True
        return self._gateway

    async def authenticate(self, secret: str) -> KeyRecord:
        """The key for ``secret``: through the running gateway, or with one read of the key store before it
        runs (so an IDE's first ``tools/list`` does not wait for the gateway to start)."""
        gw = self.started
        if gw is not None:
            record = await gw.authenticate(f"Bearer {secret}")
            if record is None:  # only a request without a token gets None
                raise AuthenticationError("the key was not accepted")
            return record
        from sophia.gateway.keys import KeyCache, KeyStore

        store = await KeyStore.open(self.settings.database_url)
        try:
            return await KeyCache(store, 0).authenticate(f"Bearer {secret}")
        finally:
            await store.close()

    async def _wait_for_owner(self) -> Gateway:
        deadline = monotonic() + self._start_timeout
        while monotonic() < deadline:
            await asyncio.sleep(0.02)
            gw = self.started
            if gw is not None:
                return gw
        raise StorageError("the gateway this MCP server shares has not started; check the gateway's log")

    async def close(self) -> None:
        if self._owned and self._started and self._gateway is not None:
            self._started = False
            await self._gateway.close()


class NeedsInput(Exception):
    """Control flow, not an error: the call must return this ``InputRequiredResult`` (2026-07-28)."""

    def __init__(self, result: InputRequiredResult) -> None:
        super().__init__("input required")
        self.result = result


@dataclass(slots=True)
class ToolContext:
    """One tool call: who calls, the services, progress, confirmation and the cost of model calls."""

    services: Services
    key: KeyRecord | None
    group: str
    tool: str
    request_id: str
    request: ServerRequestContext[Any, Any] | None = None
    params: CallToolRequestParams | None = None
    confirmed: bool = False
    model_cost: float = 0.0
    model_calls: int = 0
    served_models: list[str] = field(default_factory=list)
    cache: str | None = None
    requested_model: str = ""
    task_type: str | None = None
    _progress: int = 0
    _progress_lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    async def gateway(self) -> Gateway:
        return await self.services.gateway()

    def charge(self, result: Result) -> None:
        """Note a model call this tool made (its cost is already booked on its own ledger row)."""
        self.model_cost += result.cost
        self.model_calls += 1
        self.served_models.append(result.model.id)
        self.cache = result.cache

    async def progress(self, message: str, total: float | None = None) -> None:
        """Send a progress notification (the SDK drops it when the client asked for none)."""
        if self.request is None:
            return
        async with self._progress_lock:
            self._progress += 1
            await self.request.session.report_progress(self._progress, total, message)

    async def confirm(self, message: str) -> None:
        """Return only if the user agreed to a destructive action; otherwise raise PermissionDenied.

        Agreement is the ``confirm`` argument, or an elicitation: a server-to-client request on
        the 2025-11-25 protocol, an ``InputRequiredResult`` round trip on 2026-07-28.
        """
        if self.confirmed:
            return
        answer = await self._elicit(message)
        if answer is None:
            raise PermissionDenied(
                f"{message} This client cannot ask the user, so call {self.tool} again with "
                "confirm=true once the user has agreed",
                code="confirmation_required",
            )
        if not answer:
            raise PermissionDenied("The user did not confirm; nothing was changed", code="not_confirmed")

    async def _elicit(self, message: str) -> bool | None:
        """True/False if the user answered, None if this client cannot be asked."""
        import mcp_types as types
        from mcp_types.version import MODERN_PROTOCOL_VERSIONS

        rctx = self.request
        if rctx is None:
            return None
        caps = rctx.session.client_capabilities
        if caps is None or caps.elicitation is None:
            return None
        if rctx.protocol_version in MODERN_PROTOCOL_VERSIONS:
            responses = (self.params.input_responses if self.params is not None else None) or {}
            reply = responses.get("confirm")
            if isinstance(reply, types.ElicitResult):
                return _accepted(reply)
            request = types.ElicitRequest(
                params=types.ElicitRequestFormParams(message=message, requested_schema=_CONFIRM_SCHEMA)
            )
            raise NeedsInput(types.InputRequiredResult(input_requests={"confirm": request}))
        if not rctx.session.can_send_request:
            return None
        reply = await rctx.session.elicit_form(message, _CONFIRM_SCHEMA, related_request_id=rctx.request_id)
        return _accepted(reply)


def _accepted(reply: Any) -> bool:
    return bool(reply.action == "accept" and (reply.content or {}).get("confirm") is True)


def missing_key() -> AuthenticationError:
    return AuthenticationError(
        f"No Sophia API key: set {KEY_ENV} in this server's environment (the IDE config can pass "
        "it with ${env:…} or ${input:…}); `sophia ide install` sets this up"
    )
