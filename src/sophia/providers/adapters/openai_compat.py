"""The OpenAI-compatible wire adapter (OpenAI, OpenRouter, Together, Hugging Face, Portkey, vLLM, Ollama).

Upstream bytes are passed through unchanged where the protocol allows: a non-streamed answer is
returned as the upstream sent it (parsed once, for its usage); a stream is re-framed event by event.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import orjson

from sophia.errors import ProviderError, ProviderUnavailable
from sophia.httpclient import HTTPClient, Response, Target
from sophia.providers.adapters._http import (
    SSEBuffer,
    event_data,
    keyed,
    listing_target,
    open_post,
    probe_listing,
    read_body,
    read_chunk,
    request_headers,
)
from sophia.providers.base import JSON, Adapter, CallOptions, ChunkStream, Completion, ModelInfo, Usage

if TYPE_CHECKING:
    from sophia.providers.base import Vendor
    from sophia.settings import ProviderSettings, Settings

_DONE = b"[DONE]"


def usage_from(data: Any) -> Usage | None:
    """Usage from an OpenAI-format object, or None when it carries none."""
    if not isinstance(data, dict):
        return None
    usage = data.get("usage")
    if not isinstance(usage, dict):
        return None
    prompt = usage.get("prompt_tokens") or 0
    completion = usage.get("completion_tokens") or 0
    return Usage(int(prompt), int(completion))


class OpenAICompatAdapter(Adapter):
    protocol = "openai"

    def __init__(self, vendor: Vendor, config: ProviderSettings, settings: Settings) -> None:
        super().__init__(vendor, config, settings)
        base = (config.base_url or vendor.base_url or "").rstrip("/")
        if not base:
            from sophia.errors import ConfigError

            raise ConfigError(f"provider {vendor.name!r} needs providers.{vendor.name}.base_url")
        self.base = base
        self.chat_url = f"{base}/chat/completions"
        self.embeddings_url = f"{base}/embeddings"
        self._client: HTTPClient | None = None
        self.rekey(config)

    def rekey(self, config: ProviderSettings) -> None:
        super().rekey(config)
        self.headers = request_headers(self.vendor, config)
        self.chat_target = HTTPClient.target(self.chat_url, self.headers)
        self.embeddings_target = HTTPClient.target(self.embeddings_url, self.headers)
        self.listing_target = listing_target(self.base, self.headers)

    async def start(self, client: HTTPClient) -> None:
        self._client = client

    async def probe(self, options: CallOptions) -> str | None:
        """``GET {base}/models`` with the calls' key and headers (no tokens); not asked of a vendor that
        needs a key and has none."""
        if not keyed(self.vendor, self.headers):
            return None
        return await probe_listing(self._client, self.listing_target, options, self.vendor.name)

    async def _complete(
        self, target: Target, body: bytes, model: ModelInfo, options: CallOptions
    ) -> Completion:
        resp = await self._open(target, body, model, options)
        raw = await read_body(resp, options, self.vendor.name, model.id)
        try:
            data = orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise ProviderError(
                f"{self.vendor.name} answered {model.id} with invalid JSON",
                provider=self.vendor.name,
                model=model.id,
            ) from None
        return Completion(raw, usage_from(data) or Usage())

    async def _open(self, target: Target, body: bytes, model: ModelInfo, options: CallOptions) -> Response:
        if self._client is None:
            raise ProviderUnavailable(
                f"{self.vendor.name} is not started", provider=self.vendor.name, model=model.id
            )
        return await open_post(self._client, target, body, options, self.vendor.name, model.id)

    async def chat(self, model: ModelInfo, request: JSON, options: CallOptions) -> Completion:
        body = orjson.dumps({**request, "model": model.upstream, "stream": False})
        return await self._complete(self.chat_target, body, model, options)

    async def embed(self, model: ModelInfo, request: JSON, options: CallOptions) -> Completion:
        body = orjson.dumps({**request, "model": model.upstream})
        return await self._complete(self.embeddings_target, body, model, options)

    async def chat_stream(self, model: ModelInfo, request: JSON, options: CallOptions) -> ChunkStream:
        stream_options = dict(request.get("stream_options") or {})
        stream_options["include_usage"] = True
        body = orjson.dumps(
            {**request, "model": model.upstream, "stream": True, "stream_options": stream_options}
        )
        resp = await self._open(self.chat_target, body, model, options)
        return _OpenAIStream(resp, model, options, self.vendor.name)


class _OpenAIStream(ChunkStream):
    __slots__ = ("_buffer", "_done", "_options", "_pending", "_provider", "_resp", "model", "usage")

    def __init__(self, resp: Response, model: ModelInfo, options: CallOptions, provider: str) -> None:
        self._resp = resp
        self.model = model
        self._options = options
        self._provider = provider
        self._buffer = SSEBuffer()
        self._pending: list[bytes] = []
        self._done = False
        self.usage = Usage()

    async def __anext__(self) -> bytes:
        while True:
            while self._pending:
                event = self._pending.pop(0)
                out = self._accept(event)
                if out is not None:
                    return out
            if self._done:
                raise StopAsyncIteration
            await self._fill()

    def _accept(self, event: bytes) -> bytes | None:
        data = event_data(event)
        if data is None:
            return None
        if data == _DONE:
            self._done = True
            self._pending.clear()
            return None
        if b'"usage"' in data:
            try:
                parsed = orjson.loads(data)
            except orjson.JSONDecodeError:
                parsed = None
            usage = usage_from(parsed)
            if usage is not None:
                self.usage = usage
                if not self._options.include_usage and isinstance(parsed, dict) and not parsed.get("choices"):
                    return None
        return b"data: " + data + b"\n\n"

    async def _fill(self) -> None:
        try:
            chunk = await read_chunk(self._resp, self._options.timeout, self._provider, self.model.id)
        except ProviderError:
            await self.aclose()
            raise
        if not chunk:
            self._pending.extend(self._buffer.flush())
            self._done = True
            self._resp.release()
            return
        self._pending.extend(self._buffer.feed(chunk))

    async def aclose(self) -> None:
        self._done = True
        self._pending.clear()
        self._resp.close()
