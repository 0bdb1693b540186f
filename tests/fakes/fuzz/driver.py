"""The in-process driver: sends cases to an ASGI app verbatim and judges the answers; ``shrink``
reduces a failing case to a small reproduction."""

from __future__ import annotations

import json
import logging
import random
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

from .case import CHUNKS, Case, fill
from .checks import Outcome, signature
from .encoding import encode
from .mutate import DROP, get_at, node_paths, put_at
from .values import SEED, maybe

RAW_TARGET = "x-fuzz-raw-target"


def pieces(body: bytes, count: int) -> list[bytes]:
    """``body`` cut into ``count`` pieces (the first one empty, as a client's first frame may be)."""
    size = max(1, -(-len(body) // max(count - 1, 1)))
    return [b"", *(body[i : i + size] for i in range(0, len(body), size))] if body else [b""]


class RawTarget:
    """An ASGI wrapper: takes the request target verbatim from a header (httpx would normalise dot
    segments away), as uvicorn gives it to the app, and records any exception the app lets out."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.errors: list[str] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            ours = {RAW_TARGET.encode(), CHUNKS.encode()}
            found = {k: v for k, v in scope["headers"] if k in ours}
            headers = [(k, v) for k, v in scope["headers"] if k not in ours]
            if CHUNKS.encode() in found:  # as a chunked upload arrives: several messages, no length
                headers = [(k, v) for k, v in headers if k != b"content-length"]
                headers.append((b"transfer-encoding", b"chunked"))
                receive = _Pieces(receive, int(found[CHUNKS.encode()]))
            scope = dict(scope, headers=headers)
            target = found.get(RAW_TARGET.encode())
            if target is not None:
                raw = bytes.fromhex(target.decode())
                raw_path, _, query = raw.partition(b"?")
                scope.update(raw_path=raw_path, path=unquote(raw_path.decode("latin-1")), query_string=query)
        try:
            await self.app(scope, receive, send)
        except Exception as exc:
            self.errors.append(signature(exc))
            raise


class _Pieces:
    """An ASGI ``receive`` that hands the request body over in pieces."""

    def __init__(self, receive: Any, count: int) -> None:
        self.receive, self.count = receive, count
        self.queue: list[dict[str, Any]] | None = None

    async def __call__(self) -> Any:
        if self.queue is None:
            first = await self.receive()
            if first["type"] != "http.request" or first.get("more_body"):
                return first
            parts = pieces(first.get("body", b""), self.count)
            self.queue = [{"type": "http.request", "body": p, "more_body": True} for p in parts]
            self.queue[-1]["more_body"] = False
        if self.queue:
            return self.queue.pop(0)
        return await self.receive()


class LoggedErrors(logging.Handler):
    """Collects the signatures of exceptions logged with a traceback (the gateway logs its 500s)."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.errors: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.exc_info and record.exc_info[1] is not None:
            self.errors.append(signature(record.exc_info[1]))


@dataclass
class Driver:
    """Sends cases to an app through ``httpx.ASGITransport`` and judges the answers."""

    app: Any
    values: dict[str, str]
    timeout: float = 15.0
    shim: RawTarget = field(init=False)
    logged: LoggedErrors = field(init=False)
    last_request_id: str = "req_none"
    rng: random.Random = field(default_factory=lambda: random.Random(SEED))

    def __post_init__(self) -> None:
        self.shim = RawTarget(self.app)
        self.logged = LoggedErrors()

    @property
    def secrets(self) -> tuple[str, ...]:
        return tuple(v for k, v in self.values.items() if k in ("ADMIN", "USER", "BUDGET", "VICTIM_SECRET"))

    def __enter__(self) -> Driver:
        logging.getLogger().addHandler(self.logged)
        return self

    def __exit__(self, *exc: object) -> None:
        logging.getLogger().removeHandler(self.logged)

    def client(self) -> Any:
        import httpx

        transport = httpx.ASGITransport(app=self.shim, raise_app_exceptions=False)
        return httpx.AsyncClient(transport=transport, base_url="http://sophia.test", timeout=self.timeout)

    async def send(self, http: Any, case: Case) -> Outcome:
        import asyncio
        import time

        real = fill(case, {**self.values, "REQUEST_ID": self.last_request_id})
        headers = [(k.encode("latin-1"), v.encode("latin-1", "replace")) for k, v in real.headers]
        headers.append((RAW_TARGET.encode(), real.path.encode("latin-1", "replace").hex().encode()))
        self.shim.errors.clear()
        self.logged.errors.clear()
        started = time.perf_counter()
        try:
            async with asyncio.timeout(self.timeout):
                resp = await http.request(real.method, "/fuzz", headers=headers, content=real.body)
        except TimeoutError:
            return Outcome(
                599, [], b"", [f"no answer within {self.timeout:g}s"], time.perf_counter() - started
            )
        seconds = time.perf_counter() - started
        rid = resp.headers.get("x-request-id")
        if (
            rid
            and resp.status_code == 200
            and (resp.headers.get("x-sophia-cache") != "miss" or maybe(self.rng))
        ):
            self.last_request_id = rid  # mostly cache hits: what a false-hit report is about
        errors = [*self.shim.errors, *self.logged.errors]
        return Outcome(resp.status_code, list(resp.headers.items()), resp.content, errors, seconds)


# -- shrinking -----------------------------------------------------------------------------------------


def _smaller(value: Any) -> Iterator[Any]:
    """Candidate simplifications of a JSON value, boldest first."""
    for path in list(node_paths(value)):
        node = get_at(value, path)
        if isinstance(node, dict | list) and len(node) == 1:
            chain, inner = 0, node
            while isinstance(inner, dict | list) and len(inner) == 1:
                inner = next(iter(inner.values())) if isinstance(inner, dict) else inner[0]
                chain += 1
            if chain > 2:
                half = node
                for _ in range(chain // 2):
                    half = next(iter(half.values())) if isinstance(half, dict) else half[0]
                yield put_at(value, path, half)
        if path and isinstance(get_at(value, path[:-1]), dict | list):
            yield put_at(value, path, DROP)
        if isinstance(node, list) and len(node) > 1:
            yield put_at(value, path, node[: len(node) // 2])
        if isinstance(node, str) and len(node) > 16:
            yield put_at(value, path, node[:16])


async def shrink(case: Case, still_fails: Callable[[Case], Awaitable[bool]], budget: int = 200) -> Case:
    """A smaller case that still fails the same way (greedy: drop headers, then simplify the body)."""
    tries = 0
    for header in list(case.headers):
        if tries >= budget:
            break
        candidate = case._replace(headers=tuple(h for h in case.headers if h != header))
        tries += 1
        if await still_fails(candidate):
            case = candidate
    try:
        value = json.loads(case.body)
    except ValueError:
        return case
    if encode(value) != case.body:  # duplicate keys or raw tokens would be lost: keep the bytes
        return case
    progress = True
    while progress and tries < budget:
        progress = False
        for candidate_value in _smaller(value):
            tries += 1
            candidate = case._replace(body=encode(candidate_value))
            if await still_fails(candidate):
                value, case, progress = candidate_value, candidate, True
                break
            if tries >= budget:
                break
    return case
