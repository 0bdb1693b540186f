"""The response cache inside the gateway: which requests it sees, how hits are served, what is kept.

* ``cache_context`` reads a request's cache settings: the tenant is the key's team, the tags are
  ``metadata.sources`` (the data an answer depends on: ``"crm.deals,crm.calls"`` or a list), and
  ``metadata.cache`` (``off`` | ``exact`` | ``semantic``) can lower the configured strategy for
  one request, never raise it.
* ``ReplayStream`` serves a cached answer to a streaming client as the events a model would send.

The cache is keyed on the model *asked for* (an alias or ``sophia/auto``), so a hit skips routing
as well as the provider call.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sophia.accounts.keys import KeyRecord
from sophia.errors import InvalidRequest
from sophia.gateway.replay import completion_events
from sophia.providers.base import ChunkStream, Usage

if TYPE_CHECKING:
    from sophia.cache import CacheContext


STRATEGIES = ("off", "exact", "semantic")
#: tags one request may carry
MAX_TAGS = 16


def sources(metadata: dict[str, str] | None) -> tuple[str, ...]:
    """The data-source tags of a request (``metadata.sources``, comma-separated), sorted, deduplicated."""
    raw = (metadata or {}).get("sources") or ""
    tags = sorted({t.strip() for t in raw.split(",") if t.strip()})
    if len(tags) > MAX_TAGS:
        raise InvalidRequest(
            f"metadata.sources may name at most {MAX_TAGS} sources", param="metadata.sources"
        )
    return tuple(tags)


def cache_context(
    requested: str,
    key: KeyRecord | None,
    metadata: dict[str, str] | None,
    memo: dict[Any, Any] | None = None,
) -> CacheContext:
    """A request's cache context; ``memo`` keeps what its body decides (tags, strategy) for a repeat."""
    # from the module itself: sophia.cache's lazy __getattr__ would run on every request
    from sophia.cache.cache import CacheContext

    decided = memo.get("context") if memo is not None else None
    if decided is None:
        strategy = (metadata or {}).get("cache", "semantic")
        if strategy not in STRATEGIES:
            raise InvalidRequest(
                f"metadata.cache must be one of {', '.join(STRATEGIES)}, not {strategy!r}",
                param="metadata.cache",
            )
        decided = (sources(metadata), strategy)
        if memo is not None:
            memo["context"] = decided
    tenant = key.team if key is not None else "default"
    return CacheContext(model=requested, tenant=tenant, tags=decided[0], strategy=decided[1])


class ReplayStream(ChunkStream):
    """A cached ``chat.completion`` replayed as SSE events (nothing billed: usage stays zero)."""

    def __init__(self, body: bytes, include_usage: bool) -> None:
        self.usage = Usage()
        self._events = iter(completion_events(body, include_usage))

    async def __anext__(self) -> bytes:
        try:
            return next(self._events)
        except StopIteration:
            raise StopAsyncIteration from None

    async def aclose(self) -> None:
        self._events = iter(())
