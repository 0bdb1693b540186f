"""Exact + semantic response cache with context-carrying keys and tag (data-version) invalidation.

Public API: ``ResponseCache``, ``CacheContext``, ``CacheHit``, ``CacheSettings``. Modules:

* ``keys`` - namespace (model, system prompt, parameters, sampling band, tenant, tags) and exact key
* ``text`` - the user text compared by the semantic layer
* ``features``, ``cross_encoder``, ``verifier`` - the pair classifier that accepts or rejects a neighbour
* ``index``, ``entries`` - in-memory vector indexes and entry table
* ``store``, ``store_local``, ``store_redis``, ``builtin`` - stores and their registry
* ``dataset``, ``pairs``, ``train`` - the verifier's training (dev split of QQP)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sophia.settings.cache import CacheSettings

if TYPE_CHECKING:
    from sophia.cache.cache import CacheContext, CacheHit, ResponseCache

__all__ = ["CacheContext", "CacheHit", "CacheSettings", "ResponseCache"]


def __getattr__(name: str) -> Any:
    # The cache module pulls in numpy and the verifier: load it only when used.
    if name in ("CacheContext", "CacheHit", "ResponseCache"):
        from sophia.cache import cache

        return getattr(cache, name)
    raise AttributeError(name)
