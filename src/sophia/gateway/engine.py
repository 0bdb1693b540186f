"""The gateway engine: admission, the cache, routing, fallback chains, retries, breakers and cost.

``Gateway`` is Sophia's Python API to models. The HTTP app is a thin layer over it, and the
MCP servers call it directly, so routing, budgets, limits, caching and cost apply to every caller
alike. ``chat``/``embed`` take and give OpenAI wire bodies (the HTTP edge passes bytes through);
``complete``/``embed_texts`` (``sophia.gateway.api``) are the typed calls for code in the process.

It stands on the process's ``Accounts`` (keys, ledger, limits) and, when the cache is on, its
``ResponseCache``; both are lent by the container (``sophia.gateway.service``) or, for a gateway
made alone (tests, scripts), opened and closed here.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import replace
from time import perf_counter
from typing import TYPE_CHECKING, Any, TypeVar

from sophia.accounts import Accounts, KeyRecord, new_request_id
from sophia.accounts.limits import NANOS, nanos
from sophia.errors import (
    AllProvidersFailed,
    CircuitOpen,
    InvalidRequest,
    ProviderError,
    ProviderHTTPError,
    ProviderTimeout,
    RateLimited,
)
from sophia.gateway.api import ChatAnswer, Embeddings, Message, Result
from sophia.gateway.auto import AutoRouter, Embedded, ordered
from sophia.gateway.booking import Booking, Ticket
from sophia.gateway.breaker import BreakerBoard
from sophia.gateway.caching import ReplayStream, cache_context
from sophia.gateway.errors import PASS_THROUGH_STATUSES
from sophia.gateway.stream import StreamCall
from sophia.gateway.validate import ChatParams, chat_params, embedding_params, upstream_body
from sophia.httpclient import HTTPClient
from sophia.providers import tokens
from sophia.providers.base import EMBEDDINGS, Adapter, CallOptions, ChunkStream, ModelInfo, Usage
from sophia.providers.catalog import Catalog, Route
from sophia.settings import Settings

if TYPE_CHECKING:
    from sophia.cache import CacheHit, ResponseCache
    from sophia.observe.metrics import LedgerMetrics
    from sophia.observe.monitor import Monitor
    from sophia.observe.tracing import Tracer

__all__ = ["Gateway", "Result", "StreamCall", "new_request_id"]

log = logging.getLogger(__name__)
T = TypeVar("T")


class Gateway:
    def __init__(
        self,
        settings: Settings,
        accounts: Accounts | None = None,
        cache: ResponseCache | None = None,
        *,
        catalog: Catalog | None = None,
        tracer: Tracer | None = None,
    ) -> None:
        """``accounts``, ``cache`` and ``tracer`` are lent (the caller closes them); without them,
        ``start`` opens the gateway's own (and ``close`` closes them; the tracer when
        ``observe.tracing`` is on)."""
        self.settings = settings
        self.catalog = catalog or Catalog(settings)
        rel = settings.reliability
        self.breakers = BreakerBoard(rel.breaker_failures, rel.breaker_cooldown)
        self.auto = AutoRouter(settings, self.catalog, self.breakers)
        self._accounts = accounts
        self._owns_accounts = accounts is None
        self.cache = cache
        self._owns_cache = cache is None
        self.http: HTTPClient | None = None
        self._booking: Booking | None = None
        self.metrics: LedgerMetrics | None = None
        self.tracer = tracer
        self._owns_tracer = tracer is None
        #: the running uptime/SLO monitor (``sophia run`` sets it), for the dashboard; None without one
        self.monitor: Monitor | None = None

    @property
    def accounts(self) -> Accounts:
        """Keys, ledger and limits (AssertionError before ``start``)."""
        assert self._accounts is not None, "Gateway.start() was not awaited"
        return self._accounts

    @property
    def booking(self) -> Booking:
        assert self._booking is not None, "Gateway.start() was not awaited"
        return self._booking

    # -- lifecycle ------------------------------------------------------------------------------

    async def start(self) -> None:
        if self._accounts is None:
            from sophia.container import open_accounts

            self._accounts = await open_accounts(self.settings)  # the gateway's own; closed in close()
        self.http = HTTPClient()
        await self.catalog.start(self.http)
        if self.cache is None and self._owns_cache and self.settings.cache.enabled:
            from sophia.cache import ResponseCache

            self.cache = await ResponseCache.open(
                self.settings.cache, self.settings.database_url, self.settings.storage.redis_url
            )
        observe = self.settings.observe
        if self.tracer is None and self._owns_tracer and observe.tracing:
            from sophia.observe.tracing import Tracer

            self.tracer = await Tracer.open(self.settings, self._accounts.ledger.db, service="sophia-gateway")
            self.tracer.attach(self._accounts.ledger)
        tracing = self.tracer is not None
        self._booking = Booking(
            self._accounts, self.cache, tracing=tracing, capture_content=tracing and observe.capture_content
        )
        from sophia.observe.metrics import LedgerMetrics

        self.metrics = LedgerMetrics(self.breakers.snapshot, accounts=self._accounts)  # fed by the ledger
        self._accounts.ledger.observers.append(self.metrics.observe)
        # Everything loaded so far lives as long as the process: keep it out of the GC's scans,
        # which otherwise walk every imported object on each full collection (a tail-latency spike).
        gc.collect()
        gc.freeze()

    async def close(self) -> None:
        if self.metrics is not None and self._accounts is not None:
            observers = self._accounts.ledger.observers
            if self.metrics.observe in observers:
                observers.remove(self.metrics.observe)
        if self._booking is not None:
            await self._booking.drain()  # failed calls' bookings still on their way
        if self.cache is not None:
            await self.cache.drain()  # the answers kept just before closing reach the store
        if self.cache is not None and self._owns_cache:
            await self.cache.close()
        if self.tracer is not None and self._owns_tracer:
            await self.tracer.close()
            self.tracer = None
        await self.catalog.close()
        if self.http is not None:
            await self.http.close()
        if self._accounts is not None and self._owns_accounts:
            await self._accounts.close()
            self._accounts = None

    # -- admission ------------------------------------------------------------------------------

    async def authenticate(self, authorization: str | None) -> KeyRecord | None:
        """The key behind an Authorization header; None only when keys are not required and none was sent."""
        return await self.accounts.authenticate(authorization)

    async def _resolve(self, ticket: Ticket, body: dict[str, Any], key: KeyRecord | None) -> Route:
        """The chain for the requested model: an alias's, a model's, or the auto router's pick."""
        if ticket.requested != self.auto.config.alias:
            return ordered(self.catalog.resolve(ticket.requested), self.breakers, body)
        ctx = ticket.cache
        shared = Embedded(ctx.keys.text.text, ctx.embedding) if ctx and ctx.keys else None
        route, ticket.why = await self.auto.route(body, key, ticket.metadata, shared)
        if ctx is not None and shared is not None and ctx.embedding is None:
            ctx.embedding = shared.vector  # the router's vector serves the cache's store
        return route

    async def _hold(self, ticket: Ticket, route: Route, body: dict[str, Any], memo: dict[Any, Any]) -> Route:
        """The route without the models whose context cannot hold the prompt (``InvalidRequest`` with
        code ``context_length_exceeded`` when none can: refused before any model sees it), after the
        call's worst-case cost (the prompt, plus ``max_tokens`` or the model's cap, on the dearest model
        of the chain) is held against the key's budgets."""
        floor = memo.get("floor")
        if floor is None:
            floor = memo["floor"] = tokens.tokens_at_least(body)
        chain = route.chain
        if any(floor > m.context_window > 0 for m in chain):
            fits = tuple(m for m in chain if not floor > m.context_window > 0)
            if not fits:
                largest = max(m.context_window for m in chain)
                raise InvalidRequest(
                    f"This request's messages hold at least {floor:,} tokens, more than the "
                    f"{largest:,}-token context of any model that {route.requested!r} can use. "
                    "Please reduce the length of the messages.",
                    param="messages",
                    code="context_length_exceeded",
                )
            route = replace(route, chain=fits)
        key = ticket.key
        if key is not None and key.budgeted:
            prompt = memo.get("prompt")
            if prompt is None:
                prompt = memo["prompt"] = tokens.prompt_tokens(body)
            worst = max(
                m.cost(prompt, tokens.output_cap(body, m.context_window, prompt)) for m in route.chain
            )
            ticket.hold = await self.accounts.reserve(key, worst)
        return route

    # -- cache ----------------------------------------------------------------------------------

    def require_cache(self) -> ResponseCache:
        """The response cache, for the tools that manage it; InvalidRequest when it is turned off."""
        if self.cache is None:
            from sophia.cache.service import cache_off

            raise cache_off()
        return self.cache

    async def _lookup(
        self, ticket: Ticket, body: dict[str, Any], params: ChatParams
    ) -> tuple[CacheHit, ModelInfo] | None:
        """The cached answer for an admitted chat request and the model that gave it (None: call a model;
        the request's cache keys stay on the ticket for storing the answer, unless the cache is off
        for it: then nothing is looked up, collected from a stream or stored).

        What depends only on the body and the caller's team (its cache context's tags and keys) is
        remembered on ``params``, which the HTTP edge reuses while the same body comes back."""
        if self.cache is None:
            return None
        team = ticket.key.team if ticket.key is not None else None
        memo = params.memo
        ctx = cache_context(ticket.requested, ticket.key, ticket.metadata, memo)
        if self.cache.strategy(ctx) == "off":
            return None
        ticket.cache = ctx
        ctx.keys = memo.get(("keys", team))
        hit = await self.cache.lookup(body, ctx)
        if ctx.keys is not None:
            memo[("keys", team)] = ctx.keys
        if hit is None:
            return None
        info = self.catalog.model(hit.model_id)
        if info is None:
            return None  # answered by a model this gateway no longer has: ask again
        similarity = "" if hit.similarity is None else f" cos={hit.similarity:.3f} score={hit.score:.3f}"
        if hit.features is not None:  # what the wrong-answer budget read: a report learns from it
            similarity += f" margin={hit.features.margin:.3f} spread={hit.features.spread:.3f}"
        ticket.trail.append(f"cache={hit.kind} entry={hit.entry_id}{similarity} age={hit.age_s:.0f}s")
        ticket.cache_entry = hit.entry_id
        return hit, info

    def _hit(self, ticket: Ticket, hit: CacheHit, info: ModelInfo) -> Result:
        saved = nanos(hit.cost_usd)
        self.booking.record(ticket, info, Usage(), 0, "ok", None, 200, None, hit.kind, saved)
        route = ticket.route()
        return Result(
            hit.body,
            info,
            Usage(),
            0.0,
            0,
            route,
            ticket.request_id,
            hit.kind,
            saved / NANOS,
            ticket.trace_id,
        )

    async def _admit_and_look(
        self, ticket: Ticket, body: dict[str, Any], params: ChatParams, key: KeyRecord | None
    ) -> tuple[CacheHit, ModelInfo] | None:
        """Admission (limits, model access), then the cache: each a stage of the call's trace."""
        started = perf_counter()
        await self.accounts.admit(key, params.model)
        ticket.mark("admission", started)
        if self.cache is None:
            return None
        started = perf_counter()
        cached = await self._lookup(ticket, body, params)
        kind: str = cached[0].kind if cached is not None else "miss" if ticket.cache is not None else "bypass"
        pending = ticket.cache.pending if ticket.cache is not None else None
        if kind == "miss" and pending is not None and pending.kind == "check":
            kind = "check"  # a would-be hit withheld: the model answers, and the answers are compared
        ticket.mark("cache", started, kind)
        return cached

    async def _route(
        self, ticket: Ticket, body: dict[str, Any], key: KeyRecord | None, params: ChatParams
    ) -> Route:
        started = perf_counter()
        route = await self._hold(ticket, await self._resolve(ticket, body, key), body, params.memo)
        ticket.mark("route", started, ticket.why or None)
        return route

    # -- the Python API -------------------------------------------------------------------------

    async def chat(
        self,
        body: dict[str, Any],
        key: KeyRecord | None,
        *,
        params: ChatParams | None = None,
        request_id: str = "",
        traceparent: str | None = None,
    ) -> Result:
        """A non-streamed chat completion through routing, fallbacks, limits and the ledger.
        ``traceparent``: the caller's W3C trace context, which the call's spans join."""
        params = params or chat_params(body)
        ticket = Ticket(
            request_id or new_request_id(), key, "chat", params.model, params.task_type, params.metadata
        )
        ticket.body = body
        if traceparent:
            ticket.follow(traceparent)
        upstream = upstream_body(body)
        try:
            cached = await self._admit_and_look(ticket, body, params, key)
            if cached is not None:
                return self._hit(ticket, *cached)
            route = await self._route(ticket, body, key, params)
            completion, info = await self._run(
                route, ticket, lambda adapter, model, opts: adapter.chat(model, upstream, opts)
            )
        except BaseException as exc:
            self.booking.failure(ticket, exc)
            raise
        result = await self._settle(ticket, completion.body, info, completion.usage)
        self.booking.keep(body, ticket, completion.body, completion.usage, info, nanos(result.cost))
        return result

    async def embed(
        self,
        body: dict[str, Any],
        key: KeyRecord | None,
        *,
        request_id: str = "",
        traceparent: str | None = None,
    ) -> Result:
        model, metadata, task_type = embedding_params(body)
        ticket = Ticket(request_id or new_request_id(), key, "embeddings", model, task_type, metadata)
        if traceparent:
            ticket.follow(traceparent)
        upstream = upstream_body(body)
        try:
            started = perf_counter()
            await self.accounts.admit(key, model)
            ticket.mark("admission", started)
            started = perf_counter()
            route = self.catalog.resolve(model, EMBEDDINGS)
            if key is not None and key.budgeted:
                used = tokens.input_tokens(body.get("input"))
                ticket.hold = await self.accounts.reserve(key, max(m.cost(used, 0) for m in route.chain))
            ticket.mark("route", started)
            completion, info = await self._run(
                route, ticket, lambda adapter, m, opts: adapter.embed(m, upstream, opts)
            )
        except BaseException as exc:
            self.booking.failure(ticket, exc)
            raise
        return await self._settle(ticket, completion.body, info, completion.usage)

    async def chat_stream(
        self,
        body: dict[str, Any],
        key: KeyRecord | None,
        *,
        params: ChatParams | None = None,
        request_id: str = "",
        traceparent: str | None = None,
    ) -> StreamCall:
        """Open a streamed chat completion; returns once the first event is in hand (fallback is over)."""
        params = params or chat_params(body)
        ticket = Ticket(
            request_id or new_request_id(), key, "chat", params.model, params.task_type, params.metadata
        )
        ticket.body = body
        if traceparent:
            ticket.follow(traceparent)
        upstream = upstream_body(body)
        include_usage = params.include_usage

        async def open_one(
            adapter: Adapter, model: ModelInfo, opts: CallOptions
        ) -> tuple[ChunkStream, bytes]:
            opts.include_usage = include_usage
            started = perf_counter()
            stream = await adapter.chat_stream(model, upstream, opts)
            remaining = max(opts.first_byte_timeout - (perf_counter() - started), 0.001)
            try:
                async with asyncio.timeout(remaining):
                    first = await anext(stream, b"")
            except TimeoutError:
                await stream.aclose()
                raise ProviderTimeout(
                    f"{model.id} sent no first token within {opts.first_byte_timeout:g}s",
                    provider=model.provider,
                    model=model.id,
                ) from None
            except BaseException:
                await stream.aclose()
                raise
            return stream, first

        try:
            cached = await self._admit_and_look(ticket, body, params, key)
            if cached is not None:
                hit, info = cached
                replay = ReplayStream(hit.body, include_usage)
                call = StreamCall(self.booking, ticket, info, replay, await anext(replay))
                call.cache, call.saved_nanos = hit.kind, nanos(hit.cost_usd)
                return call
            route = await self._route(ticket, body, key, params)
            (stream, first), info = await self._run(route, ticket, open_one)
        except BaseException as exc:
            self.booking.failure(ticket, exc)
            raise
        call = StreamCall(self.booking, ticket, info, stream, first)
        if ticket.cache is not None:
            call.collect(body)
        return call

    # -- the typed Python API -------------------------------------------------------------------

    async def complete(
        self,
        messages: list[Message],
        *,
        key: KeyRecord | None,
        model: str,
        max_tokens: int | None = None,
        temperature: float | None = None,
        metadata: dict[str, str] | None = None,
        request_id: str = "",
        traceparent: str | None = None,
    ) -> ChatAnswer:
        """A chat completion for code in this process: the answer as an object, not wire bytes."""
        body: dict[str, Any] = {"model": model, "messages": messages}
        if max_tokens is not None:
            body["max_tokens"] = max_tokens
        if temperature is not None:
            body["temperature"] = temperature
        if metadata:
            body["metadata"] = metadata
        return ChatAnswer.of(
            await self.chat(body, key, request_id=request_id, traceparent=traceparent), model
        )

    async def embed_texts(
        self,
        texts: str | list[str],
        *,
        key: KeyRecord | None,
        model: str,
        metadata: dict[str, str] | None = None,
        request_id: str = "",
        traceparent: str | None = None,
    ) -> Embeddings:
        """Embedding vectors for code in this process, one per text, in order."""
        body: dict[str, Any] = {"model": model, "input": texts}
        if metadata:
            body["metadata"] = metadata
        return Embeddings.of(
            await self.embed(body, key, request_id=request_id, traceparent=traceparent), model
        )

    # -- fallback chain -------------------------------------------------------------------------

    async def _run(
        self,
        route: Route,
        ticket: Ticket,
        call: Callable[[Adapter, ModelInfo, CallOptions], Awaitable[T]],
    ) -> tuple[T, ModelInfo]:
        rel = self.settings.reliability
        alias = route.alias
        budget = (alias.first_byte_timeout if alias else None) or rel.first_byte_timeout
        timeout = (alias.timeout if alias else None) or rel.timeout
        failures: list[ProviderError] = []
        declined: RateLimited | InvalidRequest | None = None
        last = len(route.chain) - 1
        for position, info in enumerate(route.chain):
            breaker = self.breakers.get(info.id)
            if not breaker.allow():
                failures.append(
                    CircuitOpen(f"the circuit for {info.id} is open", provider=info.provider, model=info.id)
                )
                ticket.trail.append(f"{info.id}=circuit_open")
                continue
            # The latency budget only makes sense when there is a next model to fall back to.
            options = CallOptions(
                timeout=timeout,
                first_byte_timeout=budget if position < last else timeout,
                caller=ticket.key.id if ticket.key is not None else None,
            )
            adapter = self.catalog.adapter(info)
            for attempt in range(rel.retries + 1):
                started = perf_counter()
                ticket.calling = info
                try:
                    result = await call(adapter, info, options)
                except ProviderError as exc:
                    ticket.calling = None
                    if isinstance(exc, ProviderHTTPError) and exc.status in PASS_THROUGH_STATUSES:
                        breaker.release()  # the provider is up; the request itself was refused
                        ticket.trail.append(f"{info.id}={exc.status}")
                        ticket.mark("attempt", started, (info.id, info.provider, str(exc.status)))
                        raise
                    breaker.failure(exc.code)
                    failures.append(exc)
                    ticket.trail.append(f"{info.id}={exc.code}")
                    ticket.mark("attempt", started, (info.id, info.provider, exc.code))
                    delay = self._retry_delay(exc, attempt)
                    if delay is None:
                        break
                    await asyncio.sleep(delay)
                    if not breaker.allow():
                        break
                except (RateLimited, InvalidRequest) as exc:
                    # A model that declines this call (a busy local queue, a prompt longer than its
                    # context) is up: its breaker is untouched, and the next model may take the call.
                    ticket.calling = None
                    breaker.release()
                    declines = isinstance(exc, RateLimited) or exc.code == "context_length_exceeded"
                    ticket.mark("attempt", started, (info.id, info.provider, exc.code))
                    if not declines or position == last:
                        raise
                    declined = exc
                    ticket.trail.append(f"{info.id}={exc.code}")
                    break
                except BaseException as exc:
                    breaker.release()
                    ticket.mark("attempt", started, (info.id, info.provider, type(exc).__name__))
                    raise
                else:
                    ticket.calling = None
                    breaker.success((perf_counter() - started) * 1000)
                    ticket.trail.append(f"{info.id}=ok")
                    ticket.mark("attempt", started, (info.id, info.provider, "ok"))
                    return result, info
        if declined is not None and not failures:
            raise declined  # every other model was out of reach: the decline is the answer
        tried = ", ".join(ticket.trail)
        raise AllProvidersFailed(f"no model could serve {route.requested!r} ({tried})", failures)

    def _retry_delay(self, exc: ProviderError, attempt: int) -> float | None:
        """Seconds to wait before retrying the same model, or None to move on to the next one."""
        rel = self.settings.reliability
        if not exc.retryable or isinstance(exc, ProviderTimeout) or attempt >= rel.retries:
            return None
        retry_after = getattr(exc, "retry_after", None)
        if retry_after is not None:
            return retry_after if retry_after <= rel.retry_after_max else None
        return min(rel.backoff_max, rel.backoff_base * (2**attempt)) * random.uniform(0.5, 1.5)

    # -- accounting -----------------------------------------------------------------------------

    async def _settle(self, ticket: Ticket, body: bytes, info: ModelInfo, usage: Usage) -> Result:
        if self.booking.capture_content:
            ticket.answer = body  # for the trace (observe.capture_content)
        cost = await self.booking.settle(ticket, info, usage)
        route = ticket.route()
        return Result(
            body,
            info,
            usage,
            cost / NANOS,
            len(ticket.trail),
            route,
            ticket.request_id,
            trace_id=ticket.trace_id,
        )

    def health(self) -> dict[str, Any]:
        return {"providers": sorted(self.catalog.adapters), "models": self.breakers.snapshot()}
