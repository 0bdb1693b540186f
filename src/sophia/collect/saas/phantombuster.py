"""PhantomBuster: launch an agent (a saved automation, a "Phantom") and read the result it leaves.

Written against the PhantomBuster API v2 (https://hub.phantombuster.com/docs/api and the reference at
https://hub.phantombuster.com/reference, whose OpenAPI source is
github.com/phantombuster/public-gists/blob/master/swagger-api-v2.json); base
``https://api.phantombuster.com/api/v2``, the key in the ``X-Phantombuster-Key`` header:

* ``POST /agents/launch`` with ``{"id": <agent id>, "argument": {…}}`` adds the agent to the launch
  queue and answers ``{"containerId": "…"}`` (https://hub.phantombuster.com/reference/post_agents-launch);
* ``GET /containers/fetch?id=<container id>`` gives the container (one run) with its ``status``:
  ``starting``, ``running``, ``finished``, ``unknown``, ``launch error`` or ``never launched``, and once
  finished its ``exitCode`` and ``endType``;
* ``GET /containers/fetch-result-object?id=…`` gives ``{"resultObject": "<JSON text>"}`` (a string the
  agent wrote with ``setResultObject``; null when it wrote none);
* ``GET /containers/fetch-output?id=…`` gives the console ``output``, used here to explain a failure.

Dates in v2 are Unix milliseconds. Errors carry ``{"error": "…"}`` (or ``message``): 401 for a wrong
key, 400 for a duplicated parameter or a launch argument that is too big, 404 for an unknown agent.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import httpx
import orjson

from sophia.collect.saas.base import RetryPolicy, SaaSClient, Sleep, json_error_detail
from sophia.errors import InvalidRequest, ProviderError, ProviderTimeout
from sophia.settings.collect import SaaSService

RUNNING = frozenset({"starting", "running", "unknown"})
FAILED_TO_START = frozenset({"launch error", "never launched"})
#: console output quoted when a run fails
OUTPUT_TAIL = 400


class PhantomBusterClient(SaaSClient):
    service = "phantombuster"
    label = "PhantomBuster"
    default_base_url = "https://api.phantombuster.com"

    def __init__(
        self,
        setting: SaaSService,
        *,
        poll_interval: float = 5.0,
        retry: RetryPolicy | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: Sleep | None = None,
    ) -> None:
        options: dict[str, Any] = {"retry": retry, "transport": transport}
        if sleep is not None:
            options["sleep"] = sleep
        super().__init__(setting, **options)
        self.poll_interval = poll_interval

    def _credentials(self, key: str) -> tuple[dict[str, str], dict[str, str]]:
        return {"X-Phantombuster-Key": key}, {}

    def _error_detail(self, response: httpx.Response) -> str:
        return json_error_detail(response, "error", "message")

    async def launch(self, agent_id: str, argument: Mapping[str, Any] | None = None) -> str:
        """Queue the agent with ``argument`` (this launch only; the saved one is left as it is)."""
        if not agent_id.strip():
            raise InvalidRequest("a PhantomBuster agent id is required", param="agent_id")
        body: dict[str, Any] = {"id": agent_id.strip()}
        if argument is not None:
            body["argument"] = dict(argument)
        data = self._json(await self._send("POST", "/api/v2/agents/launch", json=body, idempotent=False))
        container = data.get("containerId") if isinstance(data, Mapping) else None
        if not isinstance(container, str | int) or not str(container):
            raise self.invalid("answered a launch without a containerId")
        return str(container)

    async def container(self, container_id: str) -> dict[str, Any]:
        data = self._json(await self._send("GET", "/api/v2/containers/fetch", params={"id": container_id}))
        if not isinstance(data, dict) or not isinstance(data.get("status"), str):
            raise self.invalid(f"answered container {container_id} without a status")
        return data

    async def result(self, container_id: str, *, wait_s: float = 300) -> list[dict[str, Any]]:
        """Wait (polling every ``poll_interval`` s, at most ``wait_s`` s) for the run to finish, then its
        result object as a list of records (a single object becomes a one-item list)."""
        deadline = time.monotonic() + wait_s
        while True:
            state = await self.container(container_id)
            status = state["status"]
            if status == "finished":
                break
            if status in FAILED_TO_START:
                raise await self._failed(container_id, f"did not start ({status})")
            if status not in RUNNING:
                raise self.invalid(f"reported container {container_id} in an unknown status {status!r}")
            left = deadline - time.monotonic()
            if left <= 0:
                raise ProviderTimeout(
                    f"the PhantomBuster container {container_id} was still {status} after {wait_s:g} s",
                    provider=self.service,
                )
            await self._sleep(min(self.poll_interval, left))
        exit_code = state.get("exitCode")
        if (exit_code not in (None, 0)) or state.get("endType") not in (None, "finished"):
            why = f"ended {state.get('endType') or 'badly'} (exit code {exit_code})"
            raise await self._failed(container_id, why)
        return await self.result_object(container_id)

    async def result_object(self, container_id: str) -> list[dict[str, Any]]:
        response = await self._send(
            "GET", "/api/v2/containers/fetch-result-object", params={"id": container_id}
        )
        data = self._json(response)
        if not isinstance(data, Mapping):
            raise self.invalid(f"answered the result of container {container_id} without an object")
        raw = data.get("resultObject")
        if raw is None or raw == "":
            return []
        if isinstance(raw, str):
            try:
                raw = orjson.loads(raw)
            except orjson.JSONDecodeError:
                raise self.invalid(
                    f"holds a result object for container {container_id} that is not JSON"
                ) from None
        if isinstance(raw, dict):
            return [raw]
        if isinstance(raw, list):
            return [item for item in raw if isinstance(item, dict)]
        raise self.invalid(f"holds a result object for container {container_id} that is not a record")

    async def launch_and_collect(
        self, agent_id: str, argument: Mapping[str, Any] | None = None, *, wait_s: float = 300
    ) -> list[dict[str, Any]]:
        return await self.result(await self.launch(agent_id, argument), wait_s=wait_s)

    async def _failed(self, container_id: str, why: str) -> ProviderError:
        """A job failure quoting the end of the container's console output (best effort)."""
        tail = ""
        try:
            data = self._json(
                await self._send("GET", "/api/v2/containers/fetch-output", params={"id": container_id})
            )
            output = data.get("output") if isinstance(data, Mapping) else None
            if isinstance(output, str) and output.strip():
                tail = ": " + " ".join(output.split())[-OUTPUT_TAIL:]
        except ProviderError as exc:  # the failure itself is what the caller needs; say why no output
            tail = f" (its output could not be read: {exc.code})"
        error = ProviderError(
            self.redact(f"the PhantomBuster container {container_id} {why}{tail}"),
            provider=self.service,
            code="job_failed",
        )
        error.retryable = False
        return error
