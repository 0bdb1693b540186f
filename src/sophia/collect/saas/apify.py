"""Apify: run an Actor (a hosted scraper) and read the dataset it fills.

Written against the Apify API v2 reference (https://docs.apify.com/api/v2, OpenAPI source in
github.com/apify/apify-docs, ``apify-api/openapi``):

* ``POST /v2/acts/{actorId}/runs`` (https://docs.apify.com/api/v2/act-runs-post): the JSON body is the
  Actor's input; ``actorId`` is an ID or ``username~actor-name``; query ``memory`` (MB, a power of 2,
  at least 128), ``timeout``, ``waitForFinish`` (seconds the server holds the answer, at most 60).
  Answers 201 with ``{"data": <run>}``.
* ``GET /v2/actor-runs/{runId}?waitForFinish=`` (https://docs.apify.com/api/v2/actor-run-get):
  ``{"data": <run>}``; a run's ``status`` is READY, RUNNING, TIMING-OUT or ABORTING while it lasts and
  SUCCEEDED, FAILED, TIMED-OUT or ABORTED at the end; ``defaultDatasetId`` names its dataset.
* ``GET /v2/datasets/{datasetId}/items`` (https://docs.apify.com/api/v2/dataset-items-get): a JSON
  array, paged by ``offset`` and ``limit``, with ``X-Apify-Pagination-Offset``, ``-Limit``, ``-Count``
  and ``-Total`` headers. With ``clean=1`` empty items and ``#hidden`` fields are skipped, so a page can
  hold fewer items than ``limit`` while paging still counts raw items: the offset advances by ``limit``.

Authentication: ``Authorization: Bearer <token>``. The ``token`` query parameter works too, but
https://docs.apify.com/platform/integrations/api#authentication recommends the header as more secure
(a URL ends up in logs). Errors are ``{"error": {"type": "…", "message": "…"}}``: 401
``token-not-valid``, 429 ``rate-limit-exceeded``.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import quote

import httpx

from sophia.collect.saas.base import SaaSClient, json_error_detail, parse_time
from sophia.errors import InvalidRequest, ProviderError, ProviderTimeout

TERMINAL = frozenset({"SUCCEEDED", "FAILED", "TIMED-OUT", "ABORTED"})
#: the longest ``waitForFinish`` the API honours in one call
SERVER_WAIT = 60
#: items asked for per dataset page
PAGE_SIZE = 1000


@dataclass(frozen=True, slots=True)
class ActorRun:
    id: str
    actor_id: str
    status: str
    dataset_id: str | None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    status_message: str | None = None

    @property
    def finished(self) -> bool:
        return self.status in TERMINAL

    @property
    def succeeded(self) -> bool:
        return self.status == "SUCCEEDED"


class ApifyClient(SaaSClient):
    service = "apify"
    label = "Apify"
    default_base_url = "https://api.apify.com"

    def _credentials(self, key: str) -> tuple[dict[str, str], dict[str, str]]:
        return {"Authorization": f"Bearer {key}"}, {}

    def _error_detail(self, response: httpx.Response) -> str:
        return json_error_detail(response, "error", "message")

    async def run_actor(
        self,
        actor_id: str,
        input: Mapping[str, Any] | None = None,
        *,
        wait_s: float = 0,
        memory_mb: int | None = None,
    ) -> ActorRun:
        """Start the Actor and wait up to ``wait_s`` seconds for it to finish; the run as it then is
        (``finished`` False if it still runs)."""
        if memory_mb is not None and (memory_mb < 128 or memory_mb & (memory_mb - 1)):
            raise InvalidRequest(
                f"Apify memory must be a power of 2 of at least 128 MB, not {memory_mb}", param="memory_mb"
            )
        deadline = time.monotonic() + max(0.0, wait_s)
        hold = _server_wait(deadline)
        response = await self._send(
            "POST",
            f"/v2/acts/{_actor_path(actor_id)}/runs",
            params={"memory": memory_mb, "waitForFinish": hold},
            json=dict(input or {}),
            idempotent=False,  # a retried POST after a 5xx could start a second run
            seconds=self.timeout + (hold or 0),  # the server holds the answer that long
        )
        run = self._run(response)
        while not run.finished and time.monotonic() < deadline:
            run = await self.get_run(run.id, wait_s=deadline - time.monotonic())
        return run

    async def get_run(self, run_id: str, *, wait_s: float = 0) -> ActorRun:
        """The run's state; the server holds the answer up to ``wait_s`` (at most 60) s while it runs."""
        wait = min(SERVER_WAIT, round(max(0.0, wait_s)))
        response = await self._send(
            "GET",
            f"/v2/actor-runs/{quote(run_id, safe='')}",
            params={"waitForFinish": wait or None},
            seconds=self.timeout + wait,
        )
        run = self._run(response)
        if not run.finished and wait == 0 and wait_s > 0:
            await self._sleep(min(wait_s, 1.0))  # under a second left: poll, do not spin
        return run

    async def dataset_items(
        self, dataset_id: str, *, limit: int | None = None, clean: bool = True, page_size: int = PAGE_SIZE
    ) -> AsyncIterator[dict[str, Any]]:
        """The dataset's items in stored order, page by page, at most ``limit`` of them."""
        if limit is not None and limit <= 0:
            return
        offset, given = 0, 0
        while True:
            ask = page_size if limit is None else min(page_size, limit - given)
            response = await self._send(
                "GET",
                f"/v2/datasets/{quote(dataset_id, safe='~')}/items",
                params={"format": "json", "clean": clean, "offset": offset, "limit": ask},
            )
            items = self._json(response)
            if not isinstance(items, list):
                raise self.invalid(f"answered the items of dataset {dataset_id} without a JSON array")
            for item in items:
                if isinstance(item, dict):
                    yield item
                    given += 1
                    if limit is not None and given >= limit:
                        return
            total = _int_header(response, "X-Apify-Pagination-Total")
            offset += ask
            if not items and total is None:
                return
            if total is not None and offset >= total:
                return
            if total is None and len(items) < ask and not clean:
                return

    async def run_and_collect(
        self,
        actor_id: str,
        input: Mapping[str, Any] | None = None,
        *,
        max_items: int | None = None,
        wait_s: float = 300,
        memory_mb: int | None = None,
    ) -> list[dict[str, Any]]:
        """Run the Actor to completion (within ``wait_s``) and return its default dataset's items."""
        run = await self.run_actor(actor_id, input, wait_s=wait_s, memory_mb=memory_mb)
        if not run.finished:
            raise ProviderTimeout(
                f"the Apify run {run.id} of {actor_id} was still {run.status} after {wait_s:g} s",
                provider=self.service,
            )
        if not run.succeeded:
            why = f": {run.status_message}" if run.status_message else ""
            error = ProviderError(
                self.redact(f"the Apify run {run.id} of {actor_id} ended {run.status}{why}"),
                provider=self.service,
                code="job_failed",
            )
            error.retryable = False
            raise error
        if run.dataset_id is None:
            raise self.invalid(f"reported run {run.id} as SUCCEEDED without a defaultDatasetId")
        return [item async for item in self.dataset_items(run.dataset_id, limit=max_items)]

    def _run(self, response: httpx.Response) -> ActorRun:
        data = self._json(response)
        run = data.get("data") if isinstance(data, Mapping) else None
        if not isinstance(run, Mapping) or not run.get("id") or not run.get("status"):
            raise self.invalid("answered without a run object (data.id, data.status)")
        return ActorRun(
            id=str(run["id"]),
            actor_id=str(run.get("actId") or ""),
            status=str(run["status"]),
            dataset_id=str(run["defaultDatasetId"]) if run.get("defaultDatasetId") else None,
            started_at=parse_time(run.get("startedAt")),
            finished_at=parse_time(run.get("finishedAt")),
            status_message=str(run["statusMessage"]) if run.get("statusMessage") else None,
        )


def _actor_path(actor_id: str) -> str:
    """``username/actor`` as the API spells it (``username~actor``), percent-encoded for the path."""
    if not actor_id.strip():
        raise InvalidRequest("an Apify actor id is required", param="actor_id")
    return quote(actor_id.strip().replace("/", "~"), safe="~")


def _server_wait(deadline: float) -> int | None:
    wait = min(SERVER_WAIT, round(max(0.0, deadline - time.monotonic())))
    return wait or None


def _int_header(response: httpx.Response, name: str) -> int | None:
    try:
        return int(response.headers[name])
    except (KeyError, ValueError):
        return None
