"""Talking to Sophia's response cache between loads: priming an exact hit, waiting for stores.

Sophia answers first and stores the answer just after, in the background; so an answer is
cached some milliseconds after the response, and a miss load leaves stores behind it. Before
an exact-hit load, the fixed body is sent until it comes back as `x-sophia-cache: exact`;
after every load of a cache-on target, `GET /admin/cache` is polled until its count of stores
stops moving, so no store of one load runs during the next (whatever target that is), and the
number of entries is recorded beside the RSS it explains.
"""

from __future__ import annotations

import contextlib
import json
import time
import urllib.request
from dataclasses import dataclass
from typing import Any

from load import CACHE_HEADER, PROMPT, chat_request_body
from processes import StartError
from targets import Target

REQUEST_TIMEOUT_SECONDS = 30.0
PRIME_TIMEOUT_SECONDS = 30.0
SETTLE_TIMEOUT_SECONDS = 120.0
POLL_SECONDS = 0.25
STABLE_POLLS = 2  # this many polls in a row with no new store: the cache has caught up
STATS_SINCE = "1m"  # the ledger part of /admin/cache: a short window keeps the query cheap
# A question outside the generated ones: the first lookup that embeds loads the embedding
# model and the verifier, which must not happen inside a measured load.
WARM_UP_QUESTION = "Is anyone there to help me with my account?"


@dataclass(frozen=True)
class CacheState:
    """The cache of one Sophia process after a load."""

    entries: int  # entries in this process's index
    stores: int  # answers stored since the process started
    settle_seconds: float  # how long stores went on after the load ended

    def as_dict(self) -> dict[str, Any]:
        return {
            "entries": self.entries,
            "stores": self.stores,
            "settle_seconds": round(self.settle_seconds, 2),
        }


def warm_up(target: Target) -> None:
    """Cache the fixed body (exact hits from then on) and run one lookup that embeds and verifies."""
    if not prime_exact_hit(target):
        raise StartError(f"{target.key}: the fixed body never came back as an exact hit")
    _chat(target, WARM_UP_QUESTION)
    settle(target)


def prime_exact_hit(target: Target) -> bool:
    """Send the fixed body until it comes back as an exact hit (False: not within the time allowed)."""
    deadline = time.monotonic() + PRIME_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError):  # a refused or failed request: try again until the deadline
            if _chat(target) == "exact":
                return True
        time.sleep(POLL_SECONDS)
    return False


def settle(target: Target) -> CacheState:
    """Wait until the process stores no more answers; its entries and stores then."""
    started = time.monotonic()
    last, stable = _process_stats(target), 0
    while stable < STABLE_POLLS and time.monotonic() - started < SETTLE_TIMEOUT_SECONDS:
        time.sleep(POLL_SECONDS)
        current = _process_stats(target)
        stable = stable + 1 if current.get("stores") == last.get("stores") else 0
        last = current
    settled = time.monotonic() - started - STABLE_POLLS * POLL_SECONDS
    return CacheState(int(last.get("indexed", -1)), int(last.get("stores", -1)), max(settled, 0.0))


def _process_stats(target: Target) -> dict[str, Any]:
    """The `this_process` part of `GET /admin/cache`: entries indexed, stores, hits and misses
    (-1 in the figures for a field it no longer has)."""
    request = urllib.request.Request(
        f"{target.base_url}/admin/cache?since={STATS_SINCE}", headers=target.admin_headers
    )
    with urllib.request.urlopen(request, timeout=REQUEST_TIMEOUT_SECONDS) as response:
        return dict(json.loads(response.read()).get("this_process") or {})


def _chat(target: Target, content: str = PROMPT) -> str:
    """One chat request (the fixed body by default); the response's x-sophia-cache value."""
    request = urllib.request.Request(
        target.url,
        data=chat_request_body(target.model, content).encode(),
        headers={"Content-Type": "application/json", **target.headers},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=REQUEST_TIMEOUT_SECONDS) as response:
        response.read()
        return str(response.headers.get(CACHE_HEADER, ""))
