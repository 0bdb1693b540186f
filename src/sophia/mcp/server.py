"""One MCP server built on the SDK's low-level ``Server`` from a ``ToolGroup``.

Every transport (stdio, streamable HTTP, in-memory in tests) serves the same ``Server``. The
handlers here apply the rules every tool shares: the caller's key decides which tools exist for
it, arguments are validated before the tool runs, failures become tool errors with a next step,
long work sends progress at least every second, and each call leaves one ledger row
(``endpoint = "mcp:<server>/<tool>"``).
"""

from __future__ import annotations

import asyncio
import base64
import logging
from time import perf_counter, time
from typing import TYPE_CHECKING, Any

import mcp_types as types
from mcp.server.lowlevel import Server
from mcp.shared.exceptions import MCPError
from pydantic import ValidationError

from sophia import __version__
from sophia.accounts import UsageRecord, new_request_id
from sophia.errors import AuthenticationError, SophiaError
from sophia.mcp.context import NeedsInput, ToolContext, missing_key
from sophia.mcp.errors import describe, invalid_arguments, redact
from sophia.observe.context import CallTrace
from sophia.secrets.mask import mask_credentials, mask_tree

if TYPE_CHECKING:
    from mcp.server.context import ServerRequestContext

    from sophia.accounts import KeyRecord
    from sophia.container import Services
    from sophia.mcp.tools import ResourceDef, Tool, ToolGroup

log = logging.getLogger(__name__)

#: the HTTP layer puts the authenticated KeyRecord (or None when keys are not required) here
SCOPE_KEY = "sophia.mcp.key"
#: seconds between progress notifications while a tool works (the rule is at least every 2 s)
HEARTBEAT = 1.0


def _wire_tool(tool: Tool) -> types.Tool:
    return types.Tool(
        name=tool.name,
        title=tool.title,
        description=tool.description,
        input_schema=tool.input_schema,
        output_schema=tool.output_schema,
        annotations=types.ToolAnnotations(
            read_only_hint=tool.read_only,
            destructive_hint=tool.destructive,
            idempotent_hint=tool.idempotent,
            open_world_hint=tool.open_world,
        ),
    )


def _error(message: str) -> types.CallToolResult:
    return types.CallToolResult(content=[types.TextContent(text=mask_credentials(message))], is_error=True)


class Handlers:
    """The request handlers of one server; ``secret`` is the stdio caller's key (from the environment)."""

    def __init__(self, group: ToolGroup, services: Services, secret: str | None = None) -> None:
        self.group = group
        self.services = services
        self.secret = secret
        self.wire = {name: _wire_tool(tool) for name, tool in group.tools.items()}
        self.everything = types.ListToolsResult(tools=list(self.wire.values()))

    # -- who is calling ---------------------------------------------------------------------------

    async def key(self, rctx: ServerRequestContext[Any, Any]) -> KeyRecord | None:
        """The caller's key; AuthenticationError if it is missing or invalid where keys are required."""
        request = rctx.request
        if request is not None:
            scope = request.scope
            if SCOPE_KEY not in scope:  # served without Sophia's HTTP layer in front: refuse
                raise AuthenticationError("this MCP endpoint was mounted without authentication")
            record: KeyRecord | None = scope[SCOPE_KEY]
            return record
        if self.secret:
            key = await self.services.authenticate(f"Bearer {self.secret}")
            if key is None:  # only a request without a token gets None
                raise AuthenticationError("the key was not accepted")
            return key
        if self.services.settings.gateway.require_keys:
            raise missing_key()
        return None

    def visible(self, key: KeyRecord | None, name: str) -> bool:
        return key is None or key.allowed_tools is None or key.allows_tool(f"{self.group.name}/{name}")

    def readable(self, key: KeyRecord | None, resource: ResourceDef) -> bool:
        """A resource is there for a key that may call one of the tools it belongs to."""
        return any(self.visible(key, tool) for tool in resource.tools)

    async def lister_key(self, rctx: ServerRequestContext[Any, Any]) -> tuple[bool, KeyRecord | None]:
        """(list everything, key) for a ``*/list`` request; an MCPError when the key is refused.

        Over stdio without a key everything is listed (calls and reads then say how to set one).
        """
        try:
            return False, await self.key(rctx)
        except AuthenticationError as exc:
            if self.secret is None and rctx.request is None:
                return True, None
            raise MCPError(code=types.INVALID_REQUEST, message=describe(exc)[1]) from None

    # -- tools --------------------------------------------------------------------------------------

    async def list_tools(
        self, rctx: ServerRequestContext[Any, Any], params: types.PaginatedRequestParams | None
    ) -> types.ListToolsResult:
        everything, key = await self.lister_key(rctx)
        if everything or key is None or key.allowed_tools is None:
            return self.everything
        return types.ListToolsResult(tools=[t for n, t in self.wire.items() if self.visible(key, n)])

    def input_schema(self, name: str) -> dict[str, Any] | None:
        tool = self.group.tools.get(name)
        return None if tool is None else tool.input_schema

    async def call_tool(
        self, rctx: ServerRequestContext[Any, Any], params: types.CallToolRequestParams
    ) -> types.CallToolResult | types.InputRequiredResult:
        ts, t0 = time(), perf_counter()
        name = params.name[:64]
        ctx = ToolContext(self.services, None, self.group.name, name, new_request_id(), rctx, params)
        try:
            ctx.key = await self.key(rctx)
        except SophiaError as exc:
            return await self._failed(ctx, exc, ts, t0)
        tool = self.group.tools.get(params.name)
        if tool is None or not self.visible(ctx.key, params.name):
            status = 404 if tool is None else 403
            await self._record(ctx, ts, t0, "error", "UnknownTool", status)
            return _error(f"Unknown tool {name!r}. tools/list shows the tools this key may call.")
        try:
            args = tool.input_model.model_validate(params.arguments or {})
        except ValidationError as exc:
            await self._record(ctx, ts, t0, "error", "InvalidArguments", 400)
            return _error(invalid_arguments(tool.name, exc))
        ctx.confirmed = getattr(args, "confirm", False) is True
        try:
            output = await self._run(tool, ctx, args)
        except NeedsInput as pending:
            return pending.result
        except asyncio.CancelledError:
            await self._record(ctx, ts, t0, "cancelled", "CancelledError", 499)
            raise
        except SophiaError as exc:
            return await self._failed(ctx, exc, ts, t0)
        except Exception as exc:
            log.exception("MCP tool %s/%s failed (request %s)", self.group.name, tool.name, ctx.request_id)
            await self._record(ctx, ts, t0, "error", type(exc).__name__, 500)
            return _error(
                f"{tool.name} failed with an internal error (request {ctx.request_id}); "
                "the Sophia server log has the details. Try again or report it."
            )
        await self._record(ctx, ts, t0, "ok", None, 200)
        # What a tool returns may quote a secret (a model's answer, a fetched page, a row): masked here,
        # where every result leaves. Images are left whole (masking would only break them).
        text = mask_credentials(output.render())
        content: list[types.TextContent | types.ImageContent] = [types.TextContent(text=text)]
        content += [
            types.ImageContent(data=base64.b64encode(data).decode(), mime_type=mime)
            for mime, data in output.images()
        ]
        return types.CallToolResult(content=content, structured_content=mask_tree(output.structured()))

    async def _run(self, tool: Tool, ctx: ToolContext, args: Any) -> Any:
        # A quick call costs one timer; only a call still running after HEARTBEAT gets a heartbeat task.
        loop = asyncio.get_running_loop()
        beats: list[asyncio.Task[None]] = []
        timer = loop.call_later(HEARTBEAT, lambda: beats.append(loop.create_task(self._heartbeat(ctx))))
        try:
            return await tool.fn(ctx, args)
        finally:
            timer.cancel()
            for beat in beats:
                beat.cancel()

    async def _heartbeat(self, ctx: ToolContext) -> None:
        started = perf_counter() - HEARTBEAT
        while True:
            try:
                await ctx.progress(f"{ctx.tool} is working ({perf_counter() - started:.0f} s)")
            except Exception as exc:  # noqa: BLE001 - progress must never fail the tool; a gone client ends the call anyway
                log.debug("progress notification not sent: %s", exc)
                return
            await asyncio.sleep(HEARTBEAT)

    async def _failed(self, ctx: ToolContext, exc: SophiaError, ts: float, t0: float) -> types.CallToolResult:
        status, message = describe(exc)
        await self._record(ctx, ts, t0, "error", type(exc).__name__, status)
        return _error(message)

    async def _record(
        self, ctx: ToolContext, ts: float, t0: float, outcome: str, error: str | None, status: int
    ) -> None:
        try:
            accounts = await self.services.open()
        except SophiaError as exc:  # the call's own answer already says what failed; the row is lost
            log.warning("no ledger row for %s/%s: %s", self.group.name, ctx.tool, exc.message)
            return
        key = ctx.key
        accounts.record(
            UsageRecord(
                ts=ts,
                request_id=ctx.request_id,
                key_id=key.id if key else None,
                team=key.team if key else "default",
                endpoint=f"mcp:{self.group.name}/{ctx.tool}",
                requested_model=ctx.requested_model,
                served_model=None,
                provider=None,
                prompt_tokens=0,
                completion_tokens=0,
                # The model calls' cost is booked on their own rows (same request_id); booking it
                # here too would double every budget and report. It is kept in metadata instead.
                cost_nanos=0,
                latency_ms=(perf_counter() - t0) * 1000,
                ttft_ms=None,
                cache=ctx.cache or "bypass",
                outcome=outcome,
                error_class=error,
                status=status,
                attempts=1,
                task_type=ctx.task_type,
                metadata={
                    "server": self.group.name,
                    "tool": ctx.tool,
                    "model_cost_usd": round(ctx.model_cost, 10),
                    "model_calls": ctx.model_calls,
                    "models": ",".join(ctx.served_models),
                },
                trace_id=ctx.trace_id,
                trace=CallTrace(t0, ts, None, [], span_id=ctx.span_id),
            )
        )

    # -- resources --------------------------------------------------------------------------------

    async def list_resources(
        self, rctx: ServerRequestContext[Any, Any], params: types.PaginatedRequestParams | None
    ) -> types.ListResourcesResult:
        everything, key = await self.lister_key(rctx)
        return types.ListResourcesResult(
            resources=[
                types.Resource(
                    uri=r.uri, name=r.name, title=r.title, description=r.description, mime_type=r.mime_type
                )
                for r in self.group.resources.values()
                if everything or self.readable(key, r)
            ]
        )

    async def read_resource(
        self, rctx: ServerRequestContext[Any, Any], params: types.ReadResourceRequestParams
    ) -> types.ReadResourceResult:
        resource = self.group.resources.get(params.uri)
        name = resource.name if resource is not None else "resource"
        ctx = ToolContext(self.services, None, self.group.name, name, new_request_id(), rctx)
        try:
            ctx.key = await self.key(rctx)
        except SophiaError as exc:
            code = types.INVALID_REQUEST if isinstance(exc, AuthenticationError) else types.INTERNAL_ERROR
            raise MCPError(code=code, message=describe(exc)[1]) from None
        if resource is None or not self.readable(ctx.key, resource):
            # A resource this key may not read is unknown to it, exactly like one that does not exist.
            readable = [r.uri for r in self.group.resources.values() if self.readable(ctx.key, r)]
            raise MCPError(
                code=types.INVALID_PARAMS,
                message=f"Unknown resource {params.uri[:200]!r}; known: {', '.join(readable) or 'none'}",
            )
        try:
            text = await resource.read(ctx)
        except SophiaError as exc:
            raise MCPError(code=types.INTERNAL_ERROR, message=describe(exc)[1]) from None
        except Exception:
            log.exception("MCP resource %s failed", resource.uri)
            raise MCPError(code=types.INTERNAL_ERROR, message=redact("reading the resource failed")) from None
        text = mask_credentials(text)
        return types.ReadResourceResult(
            contents=[types.TextResourceContents(uri=resource.uri, text=text, mime_type=resource.mime_type)]
        )


def build_server(group: ToolGroup, services: Services, *, secret: str | None = None) -> Server[Any]:
    """The SDK server for ``group``; serve it over stdio, HTTP or in memory."""
    handlers = Handlers(group, services, secret)
    resources = bool(group.resources)
    return Server(
        f"sophia-{group.name}",
        version=__version__,
        title=group.title,
        instructions=group.instructions or None,
        get_tool_input_schema=handlers.input_schema,
        on_list_tools=handlers.list_tools,
        on_call_tool=handlers.call_tool,
        on_list_resources=handlers.list_resources if resources else None,
        on_read_resource=handlers.read_resource if resources else None,
    )
