"""The cache's hot path in memory: recent answers, and answers on their way to the store.

* ``HotAnswers`` keeps the most recently used answers (a byte budget, least recently used out) and
  when the store last confirmed each one, so a repeated question is answered without a store
  round trip; the store is asked again at most every ``confirm_interval`` seconds per entry, so a
  purge made by another process is honoured within that interval (in this process: at once).
* ``BatchWriter`` writes new entries to the store in batches, one transaction each, off the
  response path; entries waiting to be written are served from memory meanwhile.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from time import monotonic
from typing import Any

from sophia.cache.entries import Entry, Payload
from sophia.errors import StorageError

log = logging.getLogger(__name__)

#: one write: the entry, its vector (or None) and its answer
Write = tuple[Entry, Any, Payload]


class HotAnswers:
    """Answers by entry id, most recently used last, within ``budget`` bytes of bodies."""

    def __init__(self, budget: int, confirm_interval: float) -> None:
        self.budget = budget
        self.confirm_interval = confirm_interval
        self.size = 0
        self._items: OrderedDict[str, tuple[Payload, float]] = OrderedDict()  # id -> (answer, confirmed)

    def __len__(self) -> int:
        return len(self._items)

    def get(self, entry_id: str, now: float | None = None) -> Payload | None:
        """The answer, if it is here and was confirmed within the interval (None: ask the store)."""
        item = self._items.get(entry_id)
        if item is None:
            return None
        payload, confirmed = item
        if (monotonic() if now is None else now) - confirmed > self.confirm_interval:
            return None
        self._items.move_to_end(entry_id)
        return payload

    def peek(self, entry_id: str) -> Payload | None:
        """The answer if it is here, confirmed or not (an entry's answer never changes in place)."""
        item = self._items.get(entry_id)
        return None if item is None else item[0]

    def put(self, entry_id: str, payload: Payload, now: float | None = None) -> None:
        """Keep an answer the store just confirmed (or is about to write)."""
        size = len(payload.body)
        if size > self.budget:
            return
        old = self._items.pop(entry_id, None)
        if old is not None:
            self.size -= len(old[0].body)
        self._items[entry_id] = (payload, monotonic() if now is None else now)
        self.size += size
        while self.size > self.budget:
            _, (dropped, _) = self._items.popitem(last=False)
            self.size -= len(dropped.body)

    def drop(self, entry_id: str) -> None:
        item = self._items.pop(entry_id, None)
        if item is not None:
            self.size -= len(item[0].body)

    def clear(self) -> None:
        self._items.clear()
        self.size = 0


class BatchWriter:
    """Writes entries through ``write_many`` in batches; ``pending`` holds the ids not yet written."""

    def __init__(
        self,
        write_many: Callable[[list[Write]], Awaitable[None]],
        *,
        batch_size: int = 256,
        max_pending: int = 20_000,
        linger: float = 0.05,
    ) -> None:
        """``linger``: seconds a write waits for others to share its batch (and transaction), unless the
        batch fills or somebody waits for it first."""
        self.write_many = write_many
        self.batch_size = batch_size
        self.max_pending = max_pending
        self.linger = linger
        self._hurry = asyncio.Event()  # a full batch, a waiter or close: write now
        self.pending: dict[str, Write] = {}
        self.dropped = 0
        self._waiters: dict[str, asyncio.Future[None]] = {}
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closed = False

    def submit(self, write: Write) -> None:
        """Queue one entry (O(1), never blocks); the oldest are dropped past ``max_pending``."""
        entry = write[0]
        self.pending[entry.id] = write
        if len(self.pending) > self.max_pending:
            oldest = next(iter(self.pending))
            del self.pending[oldest]
            self.dropped += 1
            self._settle(oldest, StorageError("the cache's write queue overflowed"))
        if self._task is None and not self._closed:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="sophia-cache-writer")
        self._wake.set()
        if len(self.pending) >= self.batch_size:
            self._hurry.set()

    async def written(self, entry_id: str) -> None:
        """Wait until ``entry_id`` (submitted) is in the store; StorageError if it could not be written."""
        if entry_id not in self.pending:
            return
        future = self._waiters.get(entry_id)
        if future is None:
            future = self._waiters[entry_id] = asyncio.get_running_loop().create_future()
        self._hurry.set()
        await asyncio.shield(future)

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            if not self._hurry.is_set():
                try:  # let the answers of the next few milliseconds share this transaction
                    async with asyncio.timeout(self.linger):
                        await self._hurry.wait()
                except TimeoutError:
                    pass
            self._hurry.clear()
            while self.pending:
                batch = [self.pending[i] for i in list(self.pending)[: self.batch_size]]
                error: StorageError | None = None
                try:
                    await self.write_many(batch)
                except StorageError as exc:
                    error = exc
                    log.warning("cache: %d answers not stored: %s", len(batch), exc)
                for entry, _, _ in batch:
                    self.pending.pop(entry.id, None)
                    self._settle(entry.id, error)
            if self._closed:
                return

    def _settle(self, entry_id: str, error: StorageError | None) -> None:
        future = self._waiters.pop(entry_id, None)
        if future is not None and not future.done():
            if error is None:
                future.set_result(None)
            else:
                future.set_exception(error)

    async def flush(self) -> None:
        """Wait until everything submitted so far is written (or failed)."""
        ids = list(self.pending)
        for entry_id in ids:
            try:
                await self.written(entry_id)
            except StorageError:
                continue  # logged by the writer; the entry stays out of the store

    async def close(self) -> None:
        self._hurry.set()
        await self.flush()
        self._closed = True
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
