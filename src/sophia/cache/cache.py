"""``ResponseCache``: the exact and semantic cache in front of every provider call.

    cache = await ResponseCache.open(settings.cache, settings.database_url, settings.storage.redis_url)
    ctx = CacheContext(model="sophia/fast", tenant=key.team, tags=("crm.deals",))
    hit = await cache.lookup(body, ctx)           # exact first, then nearest neighbours + verifier
    if hit is None:
        ... call the provider (ctx.embedding is set: the router may reuse it) ...
        await cache.store(body, ctx, body_bytes, prompt_tokens, completion_tokens, model_id, cost)

A lookup computes the request's keys (``keys.py``), tries the exact key, then - when the strategy
is ``semantic``, the request is eligible (``text.py``, temperature) and the semantic layer pays in
its namespace (``gate.py``) - embeds the user text, takes the nearest entries of the same namespace
and serves the best one the verifier accepts. Entries whose tags were bumped since are never
served. A hit is answered from memory (``hot.py``) when its entry was confirmed by the store
within ``confirm_interval``; otherwise the store confirms it (and a purged entry is a miss).

New answers go into the in-memory table at once and reach the store in batches, off the
response path. Blocking work (the embedding, the verifier's cross-encoder) runs in a worker
thread; the index search (< 2 ms) runs inline, because it reads the table the event loop mutates.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from dataclasses import dataclass, field
from time import perf_counter, time
from typing import Any, Literal

import numpy as np

from sophia.cache.compare import AnswerComparator, Comparator
from sophia.cache.compute import CacheCompute
from sophia.cache.entries import Entry, EntryTable, Payload
from sophia.cache.gate import SemanticGate
from sophia.cache.hot import BatchWriter, HotAnswers, Write
from sophia.cache.keys import RequestKeys, request_keys
from sophia.cache.learning import Learner, Pending
from sophia.cache.risk import Features
from sophia.cache.store import CacheStore, default_registry
from sophia.cache.verifier import Verifier
from sophia.errors import ConfigError, SophiaError, StorageError
from sophia.settings.cache import CacheSettings

log = logging.getLogger(__name__)

_RANK = {"off": 0, "exact": 1, "semantic": 2}
SWEEP_INTERVAL = 60.0


@dataclass(slots=True)
class CacheContext:
    model: str
    tenant: str
    tags: tuple[str, ...] = ()
    strategy: str = "semantic"
    ttl: float | None = None
    embedding: np.ndarray | None = None  # filled by lookup (or by the router before it)
    keys: RequestKeys | None = field(default=None, repr=False)
    versions: dict[str, int] | None = field(default=None, repr=False)
    semantic: bool | None = None  # the gate's decision for this request (None: not asked yet)
    missed_at: float | None = None  # perf_counter() of the miss, to measure what the miss cost
    pending: Pending | None = field(default=None, repr=False)  # a check or shadow comparison owed


@dataclass(slots=True)
class CacheHit:
    kind: Literal["exact", "semantic"]
    body: bytes
    model_id: str
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float
    similarity: float | None
    entry_id: str
    age_s: float
    score: float | None = None
    features: Features | None = None  # what the risk model read (aliases that learn), for reports


@dataclass(slots=True)
class _Counters:
    hits_exact: int = 0
    hits_semantic: int = 0
    misses: int = 0
    stores: int = 0
    tokens_saved: int = 0
    usd_saved: float = 0.0


class ResponseCache:
    def __init__(
        self,
        settings: CacheSettings,
        store: CacheStore,
        verifier: Verifier | None = None,
        embed: Any = None,
        comparator: Comparator | None = None,
    ) -> None:
        self.settings = settings
        self.store_backend = store
        self.compute = CacheCompute(embed, verifier)
        self._exact_only = False  # set when the verifier cannot be loaded
        self.table = EntryTable()
        self._counters = _Counters()
        self._sweeper: asyncio.Task[None] | None = None
        self.gate = SemanticGate(settings.semantic_sample)
        self.hot = HotAnswers(settings.memory_bytes, settings.confirm_interval)
        self.writer = BatchWriter(self._write_many)
        self._tasks: set[asyncio.Task[Any]] = set()
        self.learner = Learner(
            settings,
            store,
            comparator or AnswerComparator(self.compute.embed_answers, settings.answer_similarity),
        )

    @property
    def verifier(self) -> Verifier:
        """The verifier, loaded at the first semantic lookup (not at start-up: it is the heavy part)."""
        return self.compute.verifier

    @property
    def threshold(self) -> float:
        """The verifier score a neighbour needs (``cache.threshold``, else the verifier's trained default)."""
        configured = self.settings.threshold
        return configured if configured is not None else self.verifier.threshold

    @classmethod
    async def open(
        cls, settings: CacheSettings, database_url: str, redis_url: str | None, *, serve: bool = True
    ) -> ResponseCache:
        """The configured cache, ready to serve; ``serve=False`` opens the store alone (no index in
        memory, no background work) for one-off purges, bumps, reports and stats."""
        store = default_registry().create(settings.store, settings, database_url, redis_url)
        cache = cls(settings, store)
        await cache.start(serve=serve)
        if serve:
            cache._sweeper = asyncio.create_task(cache._sweep_forever(), name="sophia-cache-sweep")
        return cache

    async def start(self, *, serve: bool = True) -> None:
        """Start the store for a cache built by hand (``open`` does this itself)."""
        await self.store_backend.start(self.table, follow=serve)
        if serve:
            await self.learner.load()
            self.learner.follow()

    # -- lookup ---------------------------------------------------------------------------------

    def strategy(self, ctx: CacheContext) -> str:
        """What the cache does for this request: ``semantic``, ``exact`` or ``off`` (nothing at all)."""
        configured = self.settings.strategy_for(ctx.model)
        if self._exact_only and configured == "semantic":
            configured = "exact"
        return min(configured, ctx.strategy if ctx.strategy in _RANK else "off", key=_RANK.__getitem__)

    def _keys(self, request: dict[str, Any], ctx: CacheContext) -> RequestKeys:
        if ctx.keys is None:
            ctx.keys = request_keys(
                request,
                model=ctx.model,
                tenant=None if self.settings.share_across_tenants else ctx.tenant,
                tags=ctx.tags,
                max_temperature=self.settings.max_temperature,
            )
        return ctx.keys

    async def embed(self, text: str) -> np.ndarray:
        """The unit MiniLM vector of ``text``, computed on the process's model thread."""
        return await self.compute.embed(text)

    def _live(self, entry: Entry, now: float, versions: dict[str, int]) -> bool:
        if entry.expires is not None and entry.expires <= now:
            return False
        return all(versions.get(tag, 0) == v for tag, v in entry.tags.items())

    async def _tag_versions(self, tags: tuple[str, ...]) -> dict[str, int]:
        """Current data versions of ``tags``: remembered for ``confirm_interval``, else read from the store."""
        if not tags:
            return {}
        now = perf_counter()
        known = {}
        for tag in tags:
            version, read_at = self.table.versions.get(tag, (0, -1.0))
            if read_at < 0 or now - read_at > self.hot.confirm_interval:
                break
            known[tag] = version
        else:
            return known
        fresh = await self.store_backend.versions(tags)
        if len(self.table.versions) > 10_000:
            self.table.versions.clear()
        for tag, version in fresh.items():
            self.table.versions[tag] = (version, now)
        return fresh

    async def lookup(self, request: dict[str, Any], ctx: CacheContext) -> CacheHit | None:
        """The cached answer for ``request``, or None. A failing store counts as a miss (logged)."""
        try:
            return await self._lookup(request, ctx)
        except ConfigError as exc:  # the verifier's weights: serve exact hits only, say so once
            if not self._exact_only:
                log.error("semantic cache disabled, exact hits only: %s", exc.message)
                self._exact_only = True
            self._counters.misses += 1
            return None
        except StorageError as exc:
            log.warning("cache lookup failed, treated as a miss: %s", exc)
            self._counters.misses += 1
            return None

    async def _lookup(self, request: dict[str, Any], ctx: CacheContext) -> CacheHit | None:
        strategy = self.strategy(ctx)
        if strategy == "off":
            return None
        keys = self._keys(request, ctx)
        ctx.versions = await self._tag_versions(ctx.tags)
        now = time()
        entry = self.table.exact(keys.exact)
        if entry is not None and self._live(entry, now, ctx.versions):
            if ctx.tags and self.learner.learns(ctx.model):
                pending = self.learner.exact(ctx.model, entry, now)
                if pending is not None:  # checked, or learned to be too likely out of date
                    ctx.pending = pending
                    self._counters.misses += 1
                    ctx.missed_at = perf_counter()
                    return None
            hit = await self._serve(entry, "exact", None, None, now)
            if hit is not None:
                return hit
        if strategy == "semantic" and keys.semantic_ok:
            ctx.semantic = self.gate.plan(keys.namespace) and not self.compute.busy()
            # Nothing to compare with: leave the embedding to ``store``, off the response path.
            if ctx.semantic and self.table.vectors.size(keys.namespace):
                spent = 0.0
                if ctx.embedding is None:
                    ctx.embedding, spent = await self.compute.embed_timed(keys.text.text)
                threshold = self._threshold(ctx.model)
                hit, judged = await self._semantic(keys, ctx, ctx.embedding, ctx.versions, threshold)
                self.gate.looked(keys.namespace, hit is not None, spent + judged)
                if hit is not None:
                    return hit
        self._counters.misses += 1
        ctx.missed_at = perf_counter()
        return None

    def _threshold(self, model: str) -> float:
        override = self.settings.for_model(model).threshold
        return self.threshold if override is None else override

    async def _semantic(
        self,
        keys: RequestKeys,
        ctx: CacheContext,
        vector: np.ndarray,
        versions: dict[str, int],
        threshold: float,
    ) -> tuple[CacheHit | None, float]:
        """The best neighbour the verifier accepts (or None), and the seconds the verifier computed."""
        now = time()
        found = [
            (e, s)
            for e, s in self.table.nearest(keys.namespace, vector, self.settings.candidates)
            if s >= self.settings.min_cosine and e.text and self._live(e, now, versions)
        ]
        if not found:
            return None, 0.0
        texts = [e.text for e, _ in found]
        c_emb = np.stack([self._vector_of(e, vector) for e, _ in found])
        scores, spreads, judged, spent = await self.compute.scores(keys.text.text, vector, texts, c_emb)
        if self.learner.learns(ctx.model):
            return await self._learned(ctx, found, scores, spreads, judged, threshold, now), spent
        for i in np.argsort(-scores, kind="stable"):
            if scores[i] < threshold:
                break
            entry, sim = found[int(i)]
            hit = await self._serve(entry, "semantic", sim, float(scores[i]), now)
            if hit is not None:
                return hit, spent
        return None, spent

    async def _learned(
        self,
        ctx: CacheContext,
        found: list[tuple[Entry, float]],
        scores: np.ndarray,
        spreads: np.ndarray,
        judged: list[int],
        threshold: float,
        now: float,
    ) -> CacheHit | None:
        """An alias that learns: the learner decides (``Learner.decide``); the chosen entry is served."""
        cosines = [sim for _, sim in found]
        chosen, features, ctx.pending = self.learner.decide(
            ctx.model,
            [e for e, _ in found],
            scores,
            cosines,
            spreads,
            judged,
            threshold,
            self.settings.shadow_checks,
        )
        if chosen is None:
            return None
        hit = await self._serve(found[chosen][0], "semantic", cosines[chosen], float(scores[chosen]), now)
        if hit is not None:
            hit.features = features
            self.learner.local[ctx.model].served += 1
        return hit

    def _vector_of(self, entry: Entry, fallback: np.ndarray) -> np.ndarray:
        vector = self.table.vector(entry)
        return fallback if vector is None else vector

    async def _serve(
        self,
        entry: Entry,
        kind: Literal["exact", "semantic"],
        sim: float | None,
        score: float | None,
        now: float,
    ) -> CacheHit | None:
        payload = self.hot.get(entry.id)
        if payload is None:
            payload = await self._fetch(entry)
            if payload is None:  # purged, expired or replaced elsewhere
                self.table.remove(entry.id)
                return None
            self.hot.put(entry.id, payload)
        counters = self._counters
        if kind == "exact":
            counters.hits_exact += 1
        else:
            counters.hits_semantic += 1
        counters.tokens_saved += payload.prompt_tokens + payload.completion_tokens
        counters.usd_saved += payload.cost_usd
        return CacheHit(
            kind,
            payload.body,
            payload.model_id,
            payload.prompt_tokens,
            payload.completion_tokens,
            payload.cost_usd,
            sim,
            entry.id,
            max(now - entry.created, 0.0),
            score,
        )

    # -- store ----------------------------------------------------------------------------------

    async def store(
        self,
        request: dict[str, Any],
        ctx: CacheContext,
        body: bytes,
        usage_prompt: int,
        usage_completion: int,
        model_id: str,
        cost_usd: float,
    ) -> None:
        """Keep an answer (after a successful, non-cached provider call) and wait until the store has it;
        never raises StorageError (a failed write is logged, the answer stays uncached)."""
        await self._learn(ctx, body, cost_usd)
        entry = await self._keep(
            request, ctx, Payload(body, model_id, usage_prompt, usage_completion, cost_usd)
        )
        if entry is not None:
            try:
                await self.writer.written(entry.id)
            except StorageError as exc:
                log.warning("cache store failed, answer not cached: %s", exc)

    def store_soon(
        self,
        request: dict[str, Any],
        ctx: CacheContext,
        body: bytes,
        usage_prompt: int,
        usage_completion: int,
        model_id: str,
        cost_usd: float,
    ) -> None:
        """Keep an answer without waiting: the gateway's way, right after answering. It is served from
        memory at once and written with the next batch; only an embedding or a tag lookup takes a task."""
        payload = Payload(body, model_id, usage_prompt, usage_completion, cost_usd)
        if ctx.pending is not None and not ctx.pending.settled:
            self._spawn(self._learn(ctx, body, cost_usd))
        if ctx.tags or self._needs_vector(request, ctx):
            self._spawn(self._keep(request, ctx, payload))
        else:
            self._add(request, ctx, payload, self._vector(ctx), {})

    async def _learn(self, ctx: CacheContext, body: bytes, cost_usd: float) -> None:
        """Label the check or shadowed miss this answer settles (once), comparing it with the candidate's."""
        pending = ctx.pending
        if pending is None or pending.settled:
            return
        pending.settled = True
        try:
            cached = self.hot.get(pending.entry.id) or await self._fetch(pending.entry)
        except StorageError as exc:
            log.warning("cache learning: the compared entry could not be read: %s", exc)
            return
        await self.learner.learn(pending, body, cached, cost_usd)

    async def _fetch(self, entry: Entry) -> Payload | None:
        """An answer not in memory: from the batch on its way to the store, else from the store."""
        pending = self.writer.pending.get(entry.id)
        return pending[2] if pending is not None else await self.store_backend.fetch(entry)

    def _stored(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("storing an answer in the cache failed: %r", task.exception())

    def _needs_vector(self, request: dict[str, Any], ctx: CacheContext) -> bool:
        if self.strategy(ctx) != "semantic" or ctx.embedding is not None:
            return False
        keys = self._keys(request, ctx)
        if not keys.semantic_ok:
            return False
        if ctx.semantic is None:
            ctx.semantic = self.gate.plan(keys.namespace) and not self.compute.busy()
        return ctx.semantic

    async def _keep(self, request: dict[str, Any], ctx: CacheContext, payload: Payload) -> Entry | None:
        try:
            current = await self._tag_versions(ctx.tags)
            if self._needs_vector(request, ctx):
                ctx.embedding = await self.embed(self._keys(request, ctx).text.text)
        except StorageError as exc:
            log.warning("cache store failed, answer not cached: %s", exc)
            return None
        return self._add(request, ctx, payload, self._vector(ctx), current)

    def _vector(self, ctx: CacheContext) -> np.ndarray | None:
        """The request's vector for its entry: when it has one and the gate let it into the semantic layer."""
        if ctx.embedding is None or ctx.semantic is False or self.strategy(ctx) != "semantic":
            return None
        return np.asarray(ctx.embedding, dtype=np.float32)

    def _add(
        self,
        request: dict[str, Any],
        ctx: CacheContext,
        payload: Payload,
        vector: np.ndarray | None,
        current: dict[str, int],
    ) -> Entry | None:
        """Put an answer in the table and in memory, and queue it for the store (no await)."""
        strategy = self.strategy(ctx)
        if strategy == "off" or len(payload.body) > self.settings.max_body_bytes:
            return None
        keys = self._keys(request, ctx)
        seen = ctx.versions if ctx.versions is not None else current
        if any(seen.get(t, v) != v for t, v in current.items()):
            log.debug("cache: not storing an answer computed before a data-version bump of %s", ctx.tags)
            return None
        semantic = strategy == "semantic" and keys.semantic_ok and vector is not None
        now = time()
        ttl = ctx.ttl if ctx.ttl is not None else self.settings.ttl_for(ctx.model)
        entry = Entry(
            id=secrets.token_hex(12),
            namespace=keys.namespace,
            exact=keys.exact,
            text=keys.text.text if semantic else "",
            model=ctx.model,
            tenant=ctx.tenant,
            tags=current,
            created=now,
            expires=None if ttl is None else now + ttl,
            semantic=semantic,
        )
        replaced = self.table.add(entry, vector if semantic else None)
        if replaced is not None:
            self._replaced(ctx, replaced, payload.body, now)
            self.hot.drop(replaced.id)
        self.hot.put(entry.id, payload)
        self.writer.submit((entry, vector if semantic else None, payload))
        self._counters.stores += 1
        if keys.semantic_ok and strategy == "semantic":
            spent = None if ctx.missed_at is None else perf_counter() - ctx.missed_at
            self.gate.stored(keys.namespace, spent, semantic)
        excess = len(self.table) - self.settings.max_entries
        if excess > 0:
            oldest = self.table.oldest(excess)
            for entry_id in oldest:  # out of the index at once; out of the store in the background
                self.table.remove(entry_id)
                self.hot.drop(entry_id)
            self._spawn(self.drop(oldest))
        return entry

    def _replaced(self, ctx: CacheContext, old: Entry, fresh: bytes, now: float) -> None:
        """An alias that learns compares the answer an entry is replaced with to the old one (when still
        in memory, or in the store until the new one's batch replaces it: a label is optional work),
        unless a check or shadow of that entry labels it already."""
        if not self.learner.learns(ctx.model):
            return
        if ctx.pending is not None and ctx.pending.entry.id == old.id:
            return
        self._spawn(self.learner.learn_replaced(ctx.model, old, self.hot.peek(old.id), fresh, now))

    async def _write_many(self, writes: list[Write]) -> None:
        await self.store_backend.put_many(writes)

    def _spawn(self, work: Any) -> None:
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._stored)

    async def drain(self) -> None:
        """Wait for the answers being kept to reach the store."""
        while self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.writer.flush()

    # -- invalidation ---------------------------------------------------------------------------

    async def bump(self, tag: str) -> int:
        """Data-version bump: every entry tagged ``tag`` is invalid from now on. Returns their count."""
        await self.writer.flush()
        self.table.versions[tag] = (await self.store_backend.bump(tag), perf_counter())
        ids = await self.store_backend.select(tag=tag, model=None, tenant=None)
        ids |= self.table.select(tag=tag, model=None, tenant=None)
        return await self.drop(ids)

    async def purge(
        self, *, tag: str | None = None, model: str | None = None, tenant: str | None = None
    ) -> int:
        """Delete the entries matching every given criterion (all entries when none is given)."""
        await self.writer.flush()
        ids = await self.store_backend.select(tag=tag, model=model, tenant=tenant)
        ids |= self.table.select(tag=tag, model=model, tenant=tenant)
        return await self.drop(ids)

    async def drop(self, ids: Any) -> int:
        """Delete entries by id (a reported false hit, say); returns how many the store held."""
        ids = list(ids)
        if any(i in self.writer.pending for i in ids):
            await self.writer.flush()  # delete what is written, not what is on its way
        deleted = await self.store_backend.delete(ids)
        self.table.remove_many(ids)
        for entry_id in ids:
            self.hot.drop(entry_id)
        return deleted

    async def _sweep_forever(self) -> None:
        while True:
            await asyncio.sleep(SWEEP_INTERVAL)
            now = time()
            for entry_id in self.table.expired(now):
                self.table.remove(entry_id)
                self.hot.drop(entry_id)
            try:
                await self.store_backend.sweep(now)
                await self.store_backend.trim_observations(self.settings.observations_kept)
            except SophiaError as exc:  # a failed sweep must not stop the next one
                log.warning("cache sweep failed: %s", exc)

    # -- reporting and lifecycle ----------------------------------------------------------------

    async def stats(self) -> dict[str, Any]:
        """Entries in the store; hits, misses and savings of this instance since it opened.

        The store is counted once this instance's own writes and evictions have landed (``drain``),
        so the count is never a moment before an eviction that has already happened here."""
        await self.drain()
        c = self._counters
        lookups = c.hits_exact + c.hits_semantic + c.misses
        return {
            "entries": await self.store_backend.count(),
            "indexed": len(self.table),
            "hits_exact": c.hits_exact,
            "hits_semantic": c.hits_semantic,
            "misses": c.misses,
            "hit_rate": (c.hits_exact + c.hits_semantic) / lookups if lookups else 0.0,
            "stores": c.stores,
            "tokens_saved": c.tokens_saved,
            "usd_saved": round(c.usd_saved, 6),
            "store": self.settings.store,
            "in_memory_answers": len(self.hot),
            "semantic_gate": self.gate.snapshot(),
            "learning": self.learner.summary(),
        }

    async def close(self) -> None:
        await self.drain()
        await self.learner.close()
        await self.writer.close()
        if self._sweeper is not None:
            self._sweeper.cancel()
            await asyncio.gather(self._sweeper, return_exceptions=True)
            self._sweeper = None
        await self.store_backend.close()
