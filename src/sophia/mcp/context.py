"""What a tool sees while it runs: the caller's key, the process's services, progress and confirmation.

``ToolContext`` is made per call. Its ``services`` is the process container (``sophia.container``):
the accounts are open (the key was checked there); anything else a tool needs it asks for by its
service key, started on first use (``await ctx.service(GATEWAY)``), so a server whose tools never
call a model never starts the model gateway.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from sophia.accounts.permissions import UNATTENDED_FLAG, allows
from sophia.errors import AuthenticationError, PermissionDenied
from sophia.observe.context import new_span_id, new_trace_id

if TYPE_CHECKING:
    from mcp.server.context import ServerRequestContext
    from mcp_types import CallToolRequestParams, InputRequiredResult

    from sophia.accounts import KeyRecord
    from sophia.container import Service, Services

log = logging.getLogger(__name__)
T = TypeVar("T")
#: the permission (``sophia.accounts.permissions``) that lets ``confirm=true`` stand for the user
UNATTENDED = "mcp.unattended_destructive"

#: where the stdio server finds the caller's key (IDE configs pass it through ${env:…} or ${input:…})
KEY_ENV = "SOPHIA_API_KEY"
_CONFIRM_SCHEMA = {
    "type": "object",
    "properties": {"confirm": {"type": "boolean", "title": "Go ahead?"}},
    "required": ["confirm"],
}


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
    #: the agent passed ``confirm=true`` (not the user's consent: see ``confirm``)
    confirmed: bool = False
    model_cost: float = 0.0
    model_calls: int = 0
    served_models: list[str] = field(default_factory=list)
    cache: str | None = None
    requested_model: str = ""
    task_type: str | None = None
    #: the call's trace and its root span: the gateway calls it makes are children of it
    trace_id: str = field(default_factory=new_trace_id)
    span_id: str = field(default_factory=new_span_id)
    _progress: int = 0
    _progress_lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    @property
    def traceparent(self) -> str:
        """W3C trace context naming this call's span (what its model calls pass to the gateway)."""
        return f"00-{self.trace_id}-{self.span_id}-01"

    async def service(self, service: Service[T]) -> T:
        """A service of the process (the gateway, the cache…), started on first use."""
        return await self.services.get(service)

    def charge(self, cost_usd: float, model: str, cache: str | None = None) -> None:
        """Note a model call this tool made (its cost is already booked on its own ledger row)."""
        self.model_cost += cost_usd
        self.model_calls += 1
        self.served_models.append(model)
        if cache is not None:
            self.cache = cache

    async def ask_model(self, prompt: str, *, model: str, max_tokens: int) -> tuple[str, float]:
        """One user-turn completion through the gateway, under the caller's key (budgets, ledger),
        booked on this call; returns the text and its cost in USD."""
        from sophia.gateway.service import GATEWAY

        gateway = await self.service(GATEWAY)
        answer = await gateway.complete(
            [{"role": "user", "content": prompt}],
            key=self.key,
            model=model,
            max_tokens=max_tokens,
            temperature=0,
            metadata={"mcp_tool": f"{self.group}/{self.tool}"},
            request_id=self.request_id,
            traceparent=self.traceparent,
        )
        self.charge(answer.cost_usd, answer.model, answer.cache)
        return answer.text, answer.cost_usd

    async def progress(self, message: str, total: float | None = None) -> None:
        """Send a progress notification (the SDK drops it when the client asked for none)."""
        if self.request is None:
            return
        async with self._progress_lock:
            self._progress += 1
            await self.request.session.report_progress(self._progress, total, message)

    async def confirm(self, message: str, *, instead: str | None = None) -> None:
        """Return only if a destructive action may go ahead; otherwise raise ``PermissionDenied``.

        The person is asked whenever the client can ask (elicitation: a server-to-client request on
        the 2025-11-25 protocol, an ``InputRequiredResult`` round trip on 2026-07-28), and then only
        their answer counts. The ``confirm`` argument is written by the agent, so it never stands
        for the person: it is enough only where the client cannot ask *and* the key was made for
        unattended work (``mcp.unattended_destructive`` in ``sophia.accounts.permissions``).
        ``instead`` is the command a person can run to do the same themselves (named in the refusal).
        """
        answer = await self._elicit(message)
        if answer is True:
            return
        if answer is False:
            raise PermissionDenied("The user did not confirm; nothing was changed", code="not_confirmed")
        unattended = allows(self.key, UNATTENDED)
        if unattended and self.confirmed:
            return
        if unattended:
            raise PermissionDenied(
                f"{message} This client cannot ask the user; this key may make destructive calls "
                f"unattended, so call {self.tool} again with confirm=true to go ahead",
                code="confirmation_required",
            )
        ways = [f"run `{instead}` themselves"] if instead else []
        ways += [
            "use a client that can ask them (MCP elicitation)",
            f"or have an admin grant this key unattended destructive calls (key metadata {UNATTENDED_FLAG}: true)",
        ]
        raise PermissionDenied(
            f"{message} Not done: this client cannot ask the user, and confirm=true from an agent is not "
            f"the user's consent. To go ahead, the user can {', '.join(ways)}",
            code="confirmation_required",
        )

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
