"""The gateway engine: admission, fallback chains, retries, breakers, cost and the ledger.

``Gateway`` is Sophia's Python API to models. The HTTP app is a thin layer over it, and the
MCP servers call it directly, so routing, budgets, limits and cost apply to every caller alike.
"""

from __future__ import annotations

import asyncio
import gc
import itertools
import logging
import random
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from time import perf_counter, time
from typing import TYPE_CHECKING, Any, TypeVar

from sophia.errors import (
    AllProvidersFailed,
    CircuitOpen,
    InvalidRequest,
    PermissionDenied,
    ProviderError,
    ProviderHTTPError,
    ProviderTimeout,
    SophiaError,
)
from sophia.gateway.auto import AutoRouter, Embedded, ordered
from sophia.gateway.breaker import BreakerBoard
from sophia.gateway.caching import Keeper, ReplayStream, cache_context
from sophia.gateway.errors import PASS_THROUGH_STATUSES
from sophia.gateway.keys import KeyCache, KeyRecord, KeyStore
from sophia.gateway.ledger import Ledger, UsageRecord
from sophia.gateway.limits import Limiter, make_limiter
from sophia.gateway.replay import StreamCollector
from sophia.gateway.validate import ChatParams, chat_params, embedding_params, upstream_body
from sophia.providers.base import EMBEDDINGS, Adapter, CallOptions, ChunkStream, ModelInfo, Usage
from sophia.providers.catalog import Catalog, Route
from sophia.providers.h1 import HTTPClient
from sophia.settings import Settings
from sophia.storage import Database, open_database

if TYPE_CHECKING:
    from sophia.cache import CacheContext, CacheHit, ResponseCache

log = logging.getLogger(__name__)
T = TypeVar("T")
#: longest router explanation carried in the x-sophia-route header
MAX_WHY = 400


@dataclass(slots=True)
class Result:
    """A finished call: the client body (OpenAI JSON bytes) and what it cost."""

    body: bytes
    model: ModelInfo
    usage: Usage
    cost: float
    attempts: int
    route: str
    request_id: str
    cache: str = "miss"  # "exact" | "semantic" on a hit (then cost is 0 and saved_usd what it saved)
    saved_usd: float = 0.0


@dataclass(slots=True)
class _Ticket:
    """One admitted call, from admission to its ledger record."""

    request_id: str
    key: KeyRecord | None
    endpoint: str
    requested: str
    task_type: str | None
    metadata: dict[str, str] | None
    ts: float = field(default_factory=time)
    t0: float = field(default_factory=perf_counter)
    trail: list[str] = field(default_factory=list)
    why: str = ""  # the auto router's explanation, when it chose
    cache: CacheContext | None = None  # the request's cache keys, when the cache applies

    def route(self) -> str:
        """``x-sophia-route``: the router's reason (if any), then every attempt as ``model=outcome``."""
        trail = " ".join(self.trail)
        return f"[{self.why[:MAX_WHY]}] {trail}" if self.why else trail


_ID_PREFIX = "req_" + secrets.token_hex(4)
_ID_COUNTER = itertools.count(1)


def new_request_id() -> str:
    """Unique per process start (random prefix) and cheap: no system call per request."""
    return f"{_ID_PREFIX}{next(_ID_COUNTER):x}"


class Gateway:
    def __init__(self, settings: Settings, catalog: Catalog | None = None) -> None:
        self.settings = settings
        self.catalog = catalog or Catalog(settings)
        rel = settings.reliability
        self.breakers = BreakerBoard(rel.breaker_failures, rel.breaker_cooldown)
        self.auto = AutoRouter(settings, self.catalog, self.breakers)
        self.db: Database | None = None
        self.keys: KeyStore | None = None
        self.key_cache: KeyCache | None = None
        self.ledger: Ledger | None = None
        self.limiter: Limiter | None = None
        self.http: HTTPClient | None = None
        self.cache: ResponseCache | None = None
        self._keeper: Keeper | None = None

    # -- lifecycle ------------------------------------------------------------------------------

    async def start(self) -> None:
        storage = self.settings.storage
        self.db = await open_database(self.settings.database_url)
        self.keys = await KeyStore.open(self.db)
        self.key_cache = KeyCache(self.keys, storage.key_cache_ttl)
        self.ledger = await Ledger.open(self.db, storage.ledger_batch_size, storage.ledger_flush_interval)
        self.ledger.start()
        self.limiter = await make_limiter(self.settings, self.ledger.spend)
        self.http = HTTPClient()
        await self.catalog.start(self.http)
        if self.settings.cache.enabled:
            from sophia.cache import ResponseCache

            self.cache = await ResponseCache.open(
                self.settings.cache, self.settings.database_url, storage.redis_url
            )
            self._keeper = Keeper(self.cache)
        # Everything loaded so far lives as long as the process: keep it out of the GC's scans,
        # which otherwise walk every imported object on each full collection (a tail-latency spike).
        gc.collect()
        gc.freeze()

    async def close(self) -> None:
        if self._keeper is not None:
            await self._keeper.drain()
        if self.cache is not None:
            await self.cache.close()
        await self.catalog.close()
        if self.http is not None:
            await self.http.close()
        for closer in (self.limiter, self.ledger, self.keys, self.db):
            if closer is not None:
                await closer.close()

    # -- admission ------------------------------------------------------------------------------

    async def authenticate(self, authorization: str | None) -> KeyRecord | None:
        """The key behind an Authorization header; None only when keys are not required and none was sent."""
        assert self.key_cache is not None, "Gateway.start() was not awaited"
        if not authorization and not self.settings.gateway.require_keys:
            return None
        return await self.key_cache.authenticate(authorization)

    async def _admit(self, key: KeyRecord | None, model: str) -> None:
        if key is None:
            return
        if not key.allows_model(model):
            raise PermissionDenied(f"this API key may not use the model {model!r}", code="model_not_allowed")
        assert self.limiter is not None
        await self.limiter.check(key, time())

    async def _resolve(self, ticket: _Ticket, body: dict[str, Any], key: KeyRecord | None) -> Route:
        """The chain for the requested model: an alias's, a model's, or the auto router's pick."""
        if ticket.requested != self.auto.config.alias:
            return ordered(self.catalog.resolve(ticket.requested), self.breakers, body)
        ctx = ticket.cache
        shared = Embedded(ctx.keys.text.text, ctx.embedding) if ctx and ctx.keys else None
        route, ticket.why = await self.auto.route(body, key, ticket.metadata, shared)
        if ctx is not None and shared is not None and ctx.embedding is None:
            ctx.embedding = shared.vector  # the router's vector serves the cache's store
        return route

    # -- cache ----------------------------------------------------------------------------------

    def require_cache(self) -> ResponseCache:
        """The response cache, for the tools that manage it; InvalidRequest when it is turned off."""
        if self.cache is None:
            raise InvalidRequest(
                "the response cache is off on this gateway (cache.enabled: false)", code="cache_off"
            )
        return self.cache

    async def _lookup(self, ticket: _Ticket, body: dict[str, Any]) -> tuple[CacheHit, ModelInfo] | None:
        """The cached answer for an admitted chat request and the model that gave it (None: call a model;
        the request's cache keys stay on the ticket for storing the answer, unless the cache is off
        for it: then nothing is looked up, collected from a stream or stored)."""
        if self.cache is None:
            return None
        ctx = cache_context(ticket.requested, ticket.key, ticket.metadata)
        if self.cache.strategy(ctx) == "off":
            return None
        ticket.cache = ctx
        hit = await self.cache.lookup(body, ctx)
        if hit is None:
            return None
        info = self.catalog.model(hit.model_id)
        if info is None:
            return None  # answered by a model this gateway no longer has: ask again
        similarity = "" if hit.similarity is None else f" cos={hit.similarity:.3f} score={hit.score:.3f}"
        ticket.trail.append(f"cache={hit.kind} entry={hit.entry_id}{similarity} age={hit.age_s:.0f}s")
        return hit, info

    def _hit(self, ticket: _Ticket, hit: CacheHit, info: ModelInfo) -> Result:
        self._record(ticket, info, Usage(), 0.0, "ok", None, 200, None, hit.kind, hit.cost_usd)
        route = ticket.route()
        return Result(hit.body, info, Usage(), 0.0, 0, route, ticket.request_id, hit.kind, hit.cost_usd)

    def _keep(
        self, body: dict[str, Any], ticket: _Ticket, answer: bytes, usage: Usage, info: ModelInfo, cost: float
    ) -> None:
        if self._keeper is not None and ticket.cache is not None:
            self._keeper.keep(body, ticket.cache, answer, usage, info.id, cost)

    # -- the Python API -------------------------------------------------------------------------

    async def chat(
        self,
        body: dict[str, Any],
        key: KeyRecord | None,
        *,
        params: ChatParams | None = None,
        request_id: str = "",
    ) -> Result:
        """A non-streamed chat completion through routing, fallbacks, limits and the ledger."""
        params = params or chat_params(body)
        ticket = _Ticket(
            request_id or new_request_id(), key, "chat", params.model, params.task_type, params.metadata
        )
        upstream = upstream_body(body)
        try:
            await self._admit(key, params.model)
            cached = await self._lookup(ticket, body)
            if cached is not None:
                return self._hit(ticket, *cached)
            route = await self._resolve(ticket, body, key)
            completion, info = await self._run(
                route, ticket, lambda adapter, model, opts: adapter.chat(model, upstream, opts)
            )
        except BaseException as exc:
            self._record_failure(ticket, exc)
            raise
        result = await self._settle(ticket, completion.body, info, completion.usage)
        self._keep(body, ticket, completion.body, completion.usage, info, result.cost)
        return result

    async def embed(self, body: dict[str, Any], key: KeyRecord | None, *, request_id: str = "") -> Result:
        model, metadata, task_type = embedding_params(body)
        ticket = _Ticket(request_id or new_request_id(), key, "embeddings", model, task_type, metadata)
        upstream = upstream_body(body)
        try:
            await self._admit(key, model)
            route = self.catalog.resolve(model, EMBEDDINGS)
            completion, info = await self._run(
                route, ticket, lambda adapter, m, opts: adapter.embed(m, upstream, opts)
            )
        except BaseException as exc:
            self._record_failure(ticket, exc)
            raise
        return await self._settle(ticket, completion.body, info, completion.usage)

    async def chat_stream(
        self,
        body: dict[str, Any],
        key: KeyRecord | None,
        *,
        params: ChatParams | None = None,
        request_id: str = "",
    ) -> StreamCall:
        """Open a streamed chat completion; returns once the first event is in hand (fallback is over)."""
        params = params or chat_params(body)
        ticket = _Ticket(
            request_id or new_request_id(), key, "chat", params.model, params.task_type, params.metadata
        )
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
            await self._admit(key, params.model)
            cached = await self._lookup(ticket, body)
            if cached is not None:
                hit, info = cached
                replay = ReplayStream(hit.body, include_usage)
                call = StreamCall(self, ticket, info, replay, await anext(replay))
                call.cache, call.saved_usd = hit.kind, hit.cost_usd
                return call
            route = await self._resolve(ticket, body, key)
            (stream, first), info = await self._run(route, ticket, open_one)
        except BaseException as exc:
            self._record_failure(ticket, exc)
            raise
        call = StreamCall(self, ticket, info, stream, first)
        if ticket.cache is not None:
            call.collect(body)
        return call

    # -- fallback chain -------------------------------------------------------------------------

    async def _run(
        self,
        route: Route,
        ticket: _Ticket,
        call: Callable[[Adapter, ModelInfo, CallOptions], Awaitable[T]],
    ) -> tuple[T, ModelInfo]:
        rel = self.settings.reliability
        alias = route.alias
        budget = (alias.first_byte_timeout if alias else None) or rel.first_byte_timeout
        timeout = (alias.timeout if alias else None) or rel.timeout
        failures: list[ProviderError] = []
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
            options = CallOptions(timeout=timeout, first_byte_timeout=budget if position < last else timeout)
            adapter = self.catalog.adapter(info)
            for attempt in range(rel.retries + 1):
                started = perf_counter()
                try:
                    result = await call(adapter, info, options)
                except ProviderError as exc:
                    if isinstance(exc, ProviderHTTPError) and exc.status in PASS_THROUGH_STATUSES:
                        breaker.release()  # the provider is up; the request itself was refused
                        ticket.trail.append(f"{info.id}={exc.status}")
                        raise
                    breaker.failure(exc.code)
                    failures.append(exc)
                    ticket.trail.append(f"{info.id}={exc.code}")
                    delay = self._retry_delay(exc, attempt)
                    if delay is None:
                        break
                    await asyncio.sleep(delay)
                    if not breaker.allow():
                        break
                except BaseException:
                    breaker.release()
                    raise
                else:
                    breaker.success((perf_counter() - started) * 1000)
                    ticket.trail.append(f"{info.id}=ok")
                    return result, info
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

    async def _settle(self, ticket: _Ticket, body: bytes, info: ModelInfo, usage: Usage) -> Result:
        cost = info.cost(usage.prompt_tokens, usage.completion_tokens)
        if ticket.key is not None and self.limiter is not None:
            await self.limiter.commit(ticket.key, usage.total_tokens, cost, time())
        route = ticket.route()
        self._record(ticket, info, usage, cost, "ok", None, 200, None)
        attempts = len(ticket.trail)
        return Result(body, info, usage, cost, attempts, route, ticket.request_id)

    def _record(
        self,
        ticket: _Ticket,
        info: ModelInfo | None,
        usage: Usage,
        cost: float,
        outcome: str,
        error: str | None,
        status: int,
        ttft_ms: float | None,
        cache: str = "miss",
        saved_usd: float = 0.0,
    ) -> None:
        if self.ledger is None:
            return
        key = ticket.key
        self.ledger.record(
            UsageRecord(
                ts=ticket.ts,
                request_id=ticket.request_id,
                key_id=key.id if key else None,
                team=key.team if key else "default",
                endpoint=ticket.endpoint,
                requested_model=ticket.requested,
                served_model=info.id if info else None,
                provider=info.provider if info else None,
                prompt_tokens=usage.prompt_tokens,
                completion_tokens=usage.completion_tokens,
                cost_usd=cost,
                latency_ms=(perf_counter() - ticket.t0) * 1000,
                ttft_ms=ttft_ms,
                cache=cache,
                saved_usd=saved_usd,
                outcome=outcome,
                error_class=error,
                status=status,
                attempts=len(ticket.trail),
                route=ticket.route() or None,
                task_type=ticket.task_type,
                metadata=ticket.metadata,
            )
        )

    def _record_failure(self, ticket: _Ticket, exc: BaseException) -> None:
        if isinstance(exc, asyncio.CancelledError):
            self._record(ticket, None, Usage(), 0.0, "cancelled", "CancelledError", 499, None)
        elif isinstance(exc, SophiaError):
            from sophia.gateway.errors import status_and_type

            self._record(
                ticket, None, Usage(), 0.0, "error", type(exc).__name__, status_and_type(exc)[0], None
            )
        else:
            log.error("unexpected %s in %s call %s", type(exc).__name__, ticket.endpoint, ticket.request_id)
            self._record(ticket, None, Usage(), 0.0, "error", type(exc).__name__, 500, None)

    def health(self) -> dict[str, Any]:
        return {"providers": sorted(self.catalog.adapters), "models": self.breakers.snapshot()}


class StreamCall:
    """A streamed answer in progress: iterate for SSE events (the first is in hand), then ``finish``."""

    def __init__(
        self, gateway: Gateway, ticket: _Ticket, model: ModelInfo, stream: ChunkStream, first: bytes
    ) -> None:
        self.gateway = gateway
        self.ticket = ticket
        self.model = model
        self._stream = stream
        self._first: bytes | None = first or None
        self.ttft_ms = (perf_counter() - ticket.t0) * 1000
        self.route = ticket.route()
        self.request_id = ticket.request_id
        self.cache = "miss"
        self.saved_usd = 0.0
        self._finished = False
        self._collector: StreamCollector | None = None
        self._request: dict[str, Any] | None = None

    def collect(self, request: dict[str, Any]) -> None:
        """Rebuild the answer from the events as they pass, to cache it when the stream completes."""
        self._collector = StreamCollector()
        self._request = request
        if self._first is not None:
            self._collector.feed(self._first)

    def __aiter__(self) -> StreamCall:
        return self

    async def __anext__(self) -> bytes:
        if self._first is not None:
            first, self._first = self._first, None
            return first
        event = await self._stream.__anext__()
        if self._collector is not None:
            self._collector.feed(event)
        return event

    async def finish(self, error: BaseException | None = None) -> None:
        """Close the upstream and record the call once (outcome from ``error``)."""
        if self._finished:
            return
        self._finished = True
        await self._stream.aclose()
        usage = self._stream.usage
        cost = self.model.cost(usage.prompt_tokens, usage.completion_tokens)
        gw, ticket = self.gateway, self.ticket
        if ticket.key is not None and gw.limiter is not None:
            await gw.limiter.commit(ticket.key, usage.total_tokens, cost, time())
        if error is None:
            gw._record(
                ticket, self.model, usage, cost, "ok", None, 200, self.ttft_ms, self.cache, self.saved_usd
            )
            answer = self._collector.completion() if self._collector is not None else None
            if answer is not None and self._request is not None:
                gw._keep(self._request, ticket, answer, usage, self.model, cost)
        elif isinstance(error, asyncio.CancelledError | ConnectionError):
            gw._record(ticket, self.model, usage, cost, "cancelled", type(error).__name__, 499, self.ttft_ms)
        else:
            gw._record(ticket, self.model, usage, cost, "error", type(error).__name__, 200, self.ttft_ms)
