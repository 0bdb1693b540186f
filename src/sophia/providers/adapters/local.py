"""The in-process adapter: chat on llama.cpp (SmolLM2-135M-Instruct), embeddings on MiniLM (``sophia.embedder``:
onnxruntime int8, or numpy where onnxruntime is missing; the same encoder the cache and the router use).

Chat runs on one ``llama_cpp.Llama`` owned by one worker thread: a llama.cpp context is not
thread-safe, so calls take turns on that thread. Before a call may wait for it, it is measured with
the model's own tokenizer (on a thread of its own): a prompt that cannot fit the context window, with
``max_tokens`` when the request sets it, is refused at once (400 ``context_length_exceeded``; one
far too long is refused from its size alone, before tokenizing), and message text is never read as
a control token (``_local_prompt``). Calls that fit wait in a bounded queue that serves callers in
turn (``CallOptions.caller``, the API key; ``_local_queue``): a caller with
``local.max_waiting_per_key`` calls waiting, or anyone when ``local.max_waiting`` wait, is refused
at once (429). The model is
loaded on first use, never at import, with ``local.context_window`` tokens of context, which is what
the catalogue reports (``LocalAdapter.model_infos``). Tokens cross to the event loop through an
asyncio queue (``loop.call_soon_threadsafe``); a cancel flag is read between tokens, so ``aclose()``,
a cancelled request or a timeout stops generation within one token and frees the thread for the
next request; a cancelled call that still waits leaves the queue; ``close()`` stops every queued or
running call. Token counts are the model's own (prompt after the chat template, generated tokens
without the end-of-turn token). llama.cpp gets ``local.threads`` threads, by default half the cores.
Measuring, waiting in the queue (and the first load) count against ``first_byte_timeout``: a call
has started when the worker has accepted it.

OpenAI parameters honoured: ``max_tokens`` / ``max_completion_tokens`` (without them
``local.default_max_tokens``, cut to what fits in the context window), ``temperature`` (default
0.2, SmolLM2's recommendation; 0 is greedy), ``top_p`` (default 0.9), ``stop``, ``seed``,
``frequency_penalty``, ``presence_penalty`` and ``response_format`` (``json_object``,
``json_schema``: a llama.cpp grammar). Parameters that cannot be honoured (tools, ``n`` > 1,
logprobs, logit_bias, non-text content) are refused.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import time
import uuid
from collections import deque
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import orjson

from sophia.errors import (
    InvalidRequest,
    ProviderTimeout,
)
from sophia.providers.adapters._llama import END, TEXT, _Engine, _Job, chat_model_path
from sophia.providers.adapters._local_params import parse_chat
from sophia.providers.base import (
    CHAT,
    EMBEDDINGS,
    JSON,
    Adapter,
    CallOptions,
    ChunkStream,
    Completion,
    ModelInfo,
    Usage,
)

if TYPE_CHECKING:
    from sophia.providers.base import Vendor
    from sophia.settings import ProviderSettings, Settings

log = logging.getLogger(__name__)

MAX_EMBEDDING_INPUTS = 2048
EMBEDDING_DIM = 384
__all__ = ["LocalAdapter", "LocalChunkStream", "chat_model_path"]

# -- the adapter --------------------------------------------------------------------------------


class LocalAdapter(Adapter):
    protocol = "local"

    def __init__(self, vendor: Vendor, config: ProviderSettings, settings: Settings) -> None:
        super().__init__(vendor, config, settings)
        self._engine = _Engine(settings.local)

    async def close(self) -> None:
        await self._engine.close()

    async def probe(self, options: CallOptions) -> str | None:
        """Whether the local model can serve, found without loading it or generating anything."""
        return self._engine.readiness()

    def model_infos(self) -> list[ModelInfo]:
        """The vendor's models as served here: the chat model with the context it is loaded with."""
        return [
            replace(info, context_window=self._engine.context_window) if CHAT in info.capabilities else info
            for info in self.vendor.model_infos()
        ]

    async def _start(self, model: ModelInfo, request: JSON, options: CallOptions) -> _Job:
        """Measure and queue the call, and wait for the worker to accept it (model loaded)."""
        if CHAT not in model.capabilities:
            raise InvalidRequest(f"model {model.id} does not serve chat completions", param="model")
        params = parse_chat(request, self.settings.local.default_max_tokens)
        budget = min(options.first_byte_timeout, options.timeout)
        started = time.monotonic()
        try:
            async with asyncio.timeout(budget):
                job = await self._engine.submit(params, model, options.caller)
        except TimeoutError:
            raise ProviderTimeout(
                f"the local model could not take the call within {budget:g}s",
                provider="local",
                model=model.id,
            ) from None
        try:
            await job.get(max(budget - (time.monotonic() - started), 0.0))
        except BaseException:
            job.cancel()
            raise
        return job

    async def chat(self, model: ModelInfo, request: JSON, options: CallOptions) -> Completion:
        started = time.monotonic()
        job = await self._start(model, request, options)
        parts: list[str] = []
        try:
            while True:
                left = options.timeout - (time.monotonic() - started)
                kind, value = await job.get(max(left, 0.0))
                if kind == END:
                    break
                parts.append(value)
        except BaseException:
            job.cancel()
            raise
        usage = Usage(job.prompt_tokens, job.completion_tokens)
        body = {
            "id": f"chatcmpl-{uuid.uuid4().hex}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model.id,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": "".join(parts), "refusal": None},
                    "logprobs": None,
                    "finish_reason": value,
                }
            ],
            "usage": _usage_json(usage),
        }
        return Completion(orjson.dumps(body), usage)

    async def chat_stream(self, model: ModelInfo, request: JSON, options: CallOptions) -> ChunkStream:
        return LocalChunkStream(await self._start(model, request, options), options)

    async def embed(self, model: ModelInfo, request: JSON, options: CallOptions) -> Completion:
        if EMBEDDINGS not in model.capabilities:
            raise InvalidRequest(f"model {model.id} does not serve embeddings", param="model")
        texts = _embedding_inputs(request.get("input"))
        encoding = request.get("encoding_format") or "float"
        if encoding not in ("float", "base64"):
            raise InvalidRequest("encoding_format must be float or base64", param="encoding_format")
        if request.get("dimensions") not in (None, EMBEDDING_DIM):
            raise InvalidRequest(
                f"{model.id} has {EMBEDDING_DIM} dimensions and cannot shorten them", param="dimensions"
            )
        path = self.settings.local.embedding_model_path

        def run() -> tuple[Any, int]:
            from sophia.embedder import get_encoder

            return get_encoder(path).encode_counted(texts)

        try:
            from sophia.embedder import run_model

            async with asyncio.timeout(options.timeout):
                (vectors, tokens), _ = await run_model(run)
        except TimeoutError:
            raise ProviderTimeout(
                f"local embeddings took over {options.timeout:g}s", provider="local", model=model.id
            ) from None
        if encoding == "base64":
            data: list[JSON] = [
                {
                    "object": "embedding",
                    "index": i,
                    "embedding": base64.b64encode(v.astype("<f4").tobytes()).decode(),
                }
                for i, v in enumerate(vectors)
            ]
        else:
            data = [{"object": "embedding", "index": i, "embedding": v} for i, v in enumerate(vectors)]
        body = {
            "object": "list",
            "data": data,
            "model": model.id,
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        }
        return Completion(orjson.dumps(body, option=orjson.OPT_SERIALIZE_NUMPY), Usage(tokens, 0))


def _embedding_inputs(value: Any) -> list[str]:
    texts = [value] if isinstance(value, str) else value
    if not isinstance(texts, list) or not texts:
        raise InvalidRequest("input must be a non-empty string or a non-empty list of strings", param="input")
    if len(texts) > MAX_EMBEDDING_INPUTS:
        raise InvalidRequest(
            f"input holds {len(texts)} items; at most {MAX_EMBEDDING_INPUTS} are allowed", param="input"
        )
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise InvalidRequest(
                f"input[{i}] must be a string (token arrays are not supported by the local model)",
                param="input",
            )
        if not text:
            raise InvalidRequest(f"input[{i}] is empty", param="input")
    return texts


def _usage_json(usage: Usage) -> JSON:
    return {
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "total_tokens": usage.total_tokens,
    }


class LocalChunkStream(ChunkStream):
    """OpenAI ``chat.completion.chunk`` events for one local generation."""

    def __init__(self, job: _Job, options: CallOptions) -> None:
        self._job = job
        self._options = options
        self._id = f"chatcmpl-{uuid.uuid4().hex}"
        self._created = int(time.time())
        self._pending: deque[bytes] = deque([self._chunk({"role": "assistant", "content": ""}, None)])
        self._done = False
        self.usage = Usage(job.prompt_tokens, 0)

    def _event(self, choices: list[JSON], usage: JSON | None) -> bytes:
        body: JSON = {
            "id": self._id,
            "object": "chat.completion.chunk",
            "created": self._created,
            "model": self._job.model.id,
            "choices": choices,
        }
        if self._options.include_usage:
            body["usage"] = usage
        return b"data: " + orjson.dumps(body) + b"\n\n"

    def _chunk(self, delta: JSON, finish: str | None) -> bytes:
        return self._event([{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}], None)

    async def __anext__(self) -> bytes:
        if self._pending:
            return self._pending.popleft()
        if self._done:
            raise StopAsyncIteration
        try:
            kind, value = await self._job.get(self._options.timeout)
        except BaseException:
            self._finish()
            raise
        if kind == TEXT:
            return self._chunk({"content": value}, None)
        self._finish()
        if self._options.include_usage:
            self._pending.append(self._event([], _usage_json(self.usage)))
        return self._chunk({}, value)

    def _finish(self) -> None:
        self._done = True
        self.usage = Usage(self._job.prompt_tokens, self._job.completion_tokens)

    async def aclose(self) -> None:
        """Stop generation (within one token) and wait until the worker thread has let go."""
        self._pending.clear()
        if not self._done:
            self._job.cancel()
        await self._job.stopped()
        self._finish()

    def __del__(self) -> None:  # dropped without aclose(): still stop the worker
        job = getattr(self, "_job", None)
        if job is not None:
            job.cancelled.set()
