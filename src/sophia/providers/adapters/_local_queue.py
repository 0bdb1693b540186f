"""The waiting line in front of the one local model: bounded, and fair between callers.

Calls are served by start-time fair queuing, which for calls of one kind is round robin: each
waiting call gets a tag, one more than its caller's previous call, and never less than the tag
of the call being served; the smallest tag is served next (ties: the earlier call). A caller
with many calls queued is served once per round, so a caller who arrives with one call is
served after at most one more call of each caller ahead of it, never after the whole backlog.

Bounds: at most ``max_waiting`` calls wait in all and ``max_per_caller`` per caller (``None``,
a call without a known caller, is bound only by the total: those callers cannot be told apart).
A call holds its place from ``admit`` (before its prompt is measured) until it is served or
leaves; the call being served does not count. A call over a bound is refused at once with
``RateLimited`` (429, which neither trips a circuit breaker nor moves to another model). The
queue is thread-safe: calls join and leave on the event loop, the worker thread takes them.
"""

from __future__ import annotations

import heapq
import threading
from dataclasses import dataclass
from typing import Generic, TypeVar

from sophia.errors import RateLimited

T = TypeVar("T")

#: seconds a refused caller is told to wait (a local generation takes a second or a few)
RETRY_AFTER = 1.0


@dataclass(eq=False, slots=True)
class Place(Generic[T]):
    """A place in the line, held from ``admit`` until the call is served or leaves."""

    caller: str | None
    item: T | None = None
    tag: int = 0
    seq: int = 0
    waiting: bool = True  # counted against the bounds
    queued: bool = False  # in line to be served (``enqueue``)

    def __lt__(self, other: Place[T]) -> bool:
        return (self.tag, self.seq) < (other.tag, other.seq)


class FairQueue(Generic[T]):
    """Round robin between callers, bounded; a call is admitted (bounds) before it is ready to queue."""

    def __init__(self, max_waiting: int, max_per_caller: int, *, what: str = "the local model") -> None:
        self.max_waiting = max_waiting
        self.max_per_caller = max_per_caller
        self.what = what
        self._lock = threading.Lock()
        self._heap: list[Place[T]] = []  # may hold places that left (dropped lazily)
        self._waiting = 0
        self._per_caller: dict[str | None, int] = {}
        self._last_tag: dict[str | None, int] = {}  # each caller's latest tag
        self._now = 0  # tag of the call served last
        self._seq = 0

    def __len__(self) -> int:
        """Calls admitted and not yet served."""
        return self._waiting

    def waiting(self, caller: str | None) -> int:
        return self._per_caller.get(caller, 0)

    def admit(self, caller: str | None) -> Place[T]:
        """A place for one more call of ``caller``; RateLimited (429) at once when a bound is reached."""
        with self._lock:
            if self._waiting >= self.max_waiting:
                raise RateLimited(
                    f"{self.what} is busy: {self._waiting} calls are waiting for it (at most "
                    f"{self.max_waiting}); retry shortly or use another model",
                    retry_after=RETRY_AFTER,
                )
            mine = self._per_caller.get(caller, 0)
            if caller is not None and mine >= self.max_per_caller:
                raise RateLimited(
                    f"{self.what} is busy: this key already has {mine} calls waiting for it (at most "
                    f"{self.max_per_caller}); wait for them to finish or use another model",
                    retry_after=RETRY_AFTER,
                )
            self._waiting += 1
            self._per_caller[caller] = mine + 1
            return Place(caller)

    def enqueue(self, place: Place[T], item: T) -> None:
        """Put an admitted call in line: served after the calls of every other caller that are due first."""
        with self._lock:
            if not place.waiting or place.queued:
                raise ValueError("enqueue() takes an admitted place once")
            tag = max(self._now, self._last_tag.get(place.caller, self._now - 1) + 1)
            self._last_tag[place.caller] = tag
            self._seq += 1
            place.item, place.tag, place.seq, place.queued = item, tag, self._seq, True
            heapq.heappush(self._heap, place)

    def put(self, caller: str | None, item: T) -> Place[T]:
        """``admit`` and ``enqueue`` in one."""
        place = self.admit(caller)
        self.enqueue(place, item)
        return place

    def pop(self) -> T | None:
        """The next call to serve (its caller's turn), or None when nobody waits."""
        with self._lock:
            while self._heap:
                place = heapq.heappop(self._heap)
                if place.waiting:
                    self._leave(place)
                    self._now = place.tag
                    item, place.item = place.item, None  # the place no longer keeps the call alive
                    return item
            return None

    def remove(self, place: Place[T]) -> bool:
        """Give up a place (the call was cancelled or refused); False if it was served or gone already."""
        with self._lock:
            if not place.waiting:
                return False
            self._leave(place)
            if len(self._heap) > 2 * self._waiting + 64:  # mostly places that left: compact
                self._heap = [t for t in self._heap if t.waiting]
                heapq.heapify(self._heap)
            return True

    def _leave(self, place: Place[T]) -> None:
        place.waiting = False
        self._waiting -= 1
        left = self._per_caller[place.caller] - 1
        if left:
            self._per_caller[place.caller] = left
        else:
            del self._per_caller[place.caller]
        if len(self._last_tag) > 4 * (len(self._per_caller) + 64):
            # a caller with nothing waiting whose last tag is behind is served like a new one: forget it
            self._last_tag = {
                c: t for c, t in self._last_tag.items() if t >= self._now or c in self._per_caller
            }
