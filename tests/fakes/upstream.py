"""An OpenAI-compatible upstream on 127.0.0.1 whose behaviour is chosen by the model name.

Model names (after the provider prefix):
  anything       answers at once ("echo: <last user message>"), usage 10 in / 5 out
  slow-<s>       waits <s> seconds before the response head
  status-<code>  answers <code> with an OpenAI error body (429 carries Retry-After: 0)
  flaky-<n>      answers 500 to its first <n> calls, then succeeds
  stall-<s>      (stream) sends the head at once but the first event after <s> seconds
  long           (stream) streams 200 events, 20 ms apart (for disconnect tests)
``answer`` replaces the echo of a plain (not streamed) answer. Every request is recorded (path, headers,
JSON body) in ``requests``. With ``valid_keys`` set, a chat
call whose bearer key is not one of them is answered 401 (a provider that revoked a key).
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web

USAGE = {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}


@dataclass
class Seen:
    path: str
    headers: dict[str, str]
    body: dict[str, Any]


@dataclass
class FakeUpstream:
    requests: list[Seen] = field(default_factory=list)
    calls: Counter[str] = field(default_factory=Counter)
    cancelled: int = 0
    streamed_events: int = 0
    url: str = ""
    valid_keys: set[str] | None = None
    refused: int = 0
    answer: Callable[[str], str] | None = None  # the answer to a user message (default "echo: <it>")
    _runner: web.AppRunner | None = None

    async def start(self) -> str:
        app = web.Application()
        app.router.add_post("/{prefix:.*}/chat/completions", self._chat)
        app.router.add_post("/{prefix:.*}/embeddings", self._embeddings)
        self._runner = web.AppRunner(app, handle_signals=False, handler_cancellation=True)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}"
        return self.url

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        body = await request.json(loads=orjson.loads)
        self.requests.append(Seen(request.path, dict(request.headers), body))
        model = body["model"]
        self.calls[model] += 1
        if self.valid_keys is not None:
            key = request.headers.get("Authorization", "").removeprefix("Bearer ")
            if key not in self.valid_keys:
                self.refused += 1
                return web.json_response(
                    {"error": {"message": "Incorrect API key provided.", "type": "invalid_request_error"}},
                    status=401,
                )
        early = await self._behave(model)
        if early is not None:
            return early
        if body.get("stream"):
            return await self._stream(request, body)
        last = next((m.get("content") for m in reversed(body["messages"]) if m.get("role") == "user"), "")
        return web.json_response(
            {
                "id": "chatcmpl-fake",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": model,
                "choices": [
                    {
                        "index": 0,
                        "message": {
                            "role": "assistant",
                            "content": self.answer(last) if self.answer is not None else f"echo: {last}",
                        },
                        "finish_reason": "stop",
                    }
                ],
                "usage": USAGE,
            },
            dumps=lambda d: orjson.dumps(d).decode(),
        )

    async def _behave(self, model: str) -> web.Response | None:
        if model.startswith("slow-"):
            try:
                await asyncio.sleep(float(model[5:]))
            except asyncio.CancelledError:
                self.cancelled += 1
                raise
        elif model.startswith("status-"):
            status = int(model[7:])
            headers = {"Retry-After": "0"} if status == 429 else {}
            return web.json_response(
                {"error": {"message": f"fake failure {status}", "type": "server_error", "code": None}},
                status=status,
                headers=headers,
            )
        elif model.startswith("flaky-") and self.calls[model] <= int(model[6:]):
            return web.json_response({"error": {"message": "flaky", "type": "server_error"}}, status=500)
        return None

    async def _stream(self, request: web.Request, body: dict[str, Any]) -> web.StreamResponse:
        model = body["model"]
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        if model.startswith("stall-"):
            await asyncio.sleep(float(model[6:]))
        words = ["one", "two", "three"] if model != "long" else [f"w{i}" for i in range(200)]

        def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
            data = {
                "id": "chatcmpl-fake",
                "object": "chat.completion.chunk",
                "created": 0,
                "model": model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
            }
            return b"data: " + orjson.dumps(data) + b"\n\n"

        try:
            await resp.write(chunk({"role": "assistant", "content": ""}))
            for word in words:
                if model == "long":
                    await asyncio.sleep(0.02)
                await resp.write(chunk({"content": word + " "}))
                self.streamed_events += 1
            await resp.write(chunk({}, "stop"))
            if (body.get("stream_options") or {}).get("include_usage"):
                tail = {
                    "id": "chatcmpl-fake",
                    "object": "chat.completion.chunk",
                    "created": 0,
                    "model": model,
                    "choices": [],
                    "usage": USAGE,
                }
                await resp.write(b"data: " + orjson.dumps(tail) + b"\n\n")
            await resp.write(b"data: [DONE]\n\n")
        except (ConnectionResetError, asyncio.CancelledError):
            self.cancelled += 1
            raise
        return resp

    async def _embeddings(self, request: web.Request) -> web.Response:
        body = await request.json(loads=orjson.loads)
        self.requests.append(Seen(request.path, dict(request.headers), body))
        inputs = body["input"] if isinstance(body["input"], list) else [body["input"]]
        data = [{"object": "embedding", "index": i, "embedding": [0.1, 0.2, 0.3]} for i in range(len(inputs))]
        return web.json_response(
            {
                "object": "list",
                "data": data,
                "model": body["model"],
                "usage": {"prompt_tokens": 4, "total_tokens": 4},
            }
        )
