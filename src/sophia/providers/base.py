"""What every provider shares: model descriptions, usage, results, and the adapter interface.

A *vendor* (OpenRouter, Together, …) is data: its name, base URL, auth header, the env vars
that carry its key, its models and prices. An *adapter* speaks one wire protocol
(OpenAI-compatible, Anthropic Messages, in-process llama.cpp) for any vendor that uses it.
Requests and responses inside Sophia are always in OpenAI's chat-completions format; an
adapter translates at its edge.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from sophia.httpclient import HTTPClient
    from sophia.settings import ProviderSettings, Settings

JSON = dict[str, Any]

#: Capabilities a model can have; routers filter on them.
CHAT, EMBEDDINGS, TOOLS, VISION, JSON_MODE = "chat", "embeddings", "tools", "vision", "json"


@dataclass(slots=True, frozen=True)
class ModelInfo:
    """One model as the gateway exposes it: ``id`` is ``<vendor>/<upstream id>`` (or an alias of it)."""

    id: str
    provider: str
    upstream: str
    input_price: float  # USD per million input tokens
    output_price: float  # USD per million output tokens
    context_window: int
    capabilities: frozenset[str] = frozenset({CHAT})

    def cost(self, prompt_tokens: int, completion_tokens: int) -> float:
        """USD cost of one call from its token counts (an estimate's figure: holds, routing)."""
        return (prompt_tokens * self.input_price + completion_tokens * self.output_price) / 1_000_000

    def cost_nanos(self, prompt_tokens: int, completion_tokens: int) -> int:
        """What one call cost, in integer nano-dollars: the figure booked once and shown everywhere.
        (Prices are dollars per million tokens, so one token costs ``price * 1000`` nano-dollars.)"""
        return round((prompt_tokens * self.input_price + completion_tokens * self.output_price) * 1000)


def model(
    upstream: str,
    input_price: float,
    output_price: float,
    context_window: int,
    *caps: str,
) -> tuple[str, float, float, int, frozenset[str]]:
    """Shorthand for a vendor's model-table row (capabilities default to chat only)."""
    return (upstream, input_price, output_price, context_window, frozenset(caps or (CHAT,)))


@dataclass(slots=True, frozen=True)
class Vendor:
    """A model vendor: everything about it that is not protocol."""

    name: str
    adapter: str  # key in the adapter registry: "openai", "anthropic", "local"
    base_url: str | None
    models: tuple[tuple[str, float, float, int, frozenset[str]], ...] = ()
    env_keys: tuple[str, ...] = ()  # standard env vars that carry the vendor's key
    auth_header: str = "Authorization"
    auth_scheme: str = "Bearer"  # "" sends the bare key
    needs_key: bool = True  # False: enabled when its base URL is configured (vLLM, Ollama)
    extra_headers: Mapping[str, str] = field(default_factory=dict)
    #: provider option name -> header it is sent in (``providers.<name>.options``), e.g. Portkey's virtual key
    option_headers: Mapping[str, str] = field(default_factory=dict)
    #: any model id under this vendor is accepted (self-hosted servers: vLLM, Ollama); unlisted ones are free
    open_catalog: bool = False
    #: enabled with no key and no base URL configured (the in-process local models)
    default_enabled: bool = False
    #: upstream id of the model that the bare vendor name stands for (``local`` -> SmolLM2)
    default_model: str | None = None
    title: str = ""

    def model_infos(self) -> list[ModelInfo]:
        """The vendor's models, each under ``<vendor>/<upstream>`` (the default one also as ``<vendor>``)."""
        infos = []
        for up, inp, out, ctx, caps in self.models:
            gateway_id = self.name if up == self.default_model else f"{self.name}/{up}"
            infos.append(ModelInfo(gateway_id, self.name, up, inp, out, ctx, caps))
        return infos


@dataclass(slots=True)
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass(slots=True)
class Completion:
    """A finished, non-streamed answer: ``body`` is OpenAI-format JSON bytes for the client."""

    body: bytes
    usage: Usage


class ChunkStream(ABC):
    """A streamed answer: async iterator of OpenAI-format SSE events (``b"data: {...}\\n\\n"``).

    The adapter fills ``usage`` by the time iteration ends (from the upstream's usage chunk or
    its own count) and emits the final usage chunk itself when ``include_usage`` was asked.
    The terminating ``data: [DONE]`` event is not yielded: the gateway writes it.
    ``aclose()`` stops the upstream call (client gone, fallback, cancel).
    """

    usage: Usage

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self

    @abstractmethod
    async def __anext__(self) -> bytes: ...

    @abstractmethod
    async def aclose(self) -> None: ...


@dataclass(slots=True)
class CallOptions:
    """Per-attempt limits the gateway hands to an adapter."""

    timeout: float = 60.0  # total seconds for the attempt (a stream: for each gap between events)
    first_byte_timeout: float = 2.0  # seconds to the response head (a stream: to its first event)
    include_usage: bool = True  # stream: emit a final usage chunk
    caller: str | None = None  # who is calling (the API key's id): adapters that queue calls take turns by it


class Adapter(ABC):
    """Speaks one wire protocol for one configured vendor.

    ``request`` is an OpenAI chat-completions (or embeddings) body whose ``model`` is already the
    upstream id. Adapters raise only ``sophia.errors.ProviderError`` subclasses for upstream
    failures (``ProviderHTTPError`` with the status and any Retry-After, ``ProviderTimeout``,
    ``ProviderUnavailable``).
    """

    #: registry key (``Vendor.adapter``)
    protocol: ClassVar[str]

    def __init__(self, vendor: Vendor, config: ProviderSettings, settings: Settings) -> None:
        self.vendor = vendor
        self.config = config
        self.settings = settings

    async def start(self, client: HTTPClient) -> None:  # noqa: B027 - optional hook
        """Called once on the serving loop with the shared HTTP client."""

    def rekey(self, config: ProviderSettings) -> None:
        """Take ``config``'s credentials and headers from the next call on (a rotated key: calls in
        flight finish with the old one). HTTP adapters rebuild their prepared targets."""
        self.config = config

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Release what ``start`` acquired."""

    def model_infos(self) -> list[ModelInfo]:
        """The vendor's models as this adapter serves them (the catalogue's source); an adapter that
        knows better than the vendor's table overrides it (the local one: the context it loaded)."""
        return self.vendor.model_infos()

    @abstractmethod
    async def chat(self, model: ModelInfo, request: JSON, options: CallOptions) -> Completion: ...

    @abstractmethod
    async def chat_stream(self, model: ModelInfo, request: JSON, options: CallOptions) -> ChunkStream:
        """Open the stream; returns once the upstream accepted the call (response head seen)."""

    async def embed(self, model: ModelInfo, request: JSON, options: CallOptions) -> Completion:
        from sophia.errors import InvalidRequest

        raise InvalidRequest(f"model {model.id} does not serve embeddings", param="model")

    async def probe(self, options: CallOptions) -> str | None:
        """Is the provider up, checked without spending tokens (the uptime monitor calls this each round,
        within ``options``' timeouts)?

        A short note when it is; a ``ProviderError`` (no key in its message) when it is not; None when
        this adapter has no such check or must not make it (a vendor that needs a key has none): the
        monitor then judges the provider by its circuit breakers alone."""
        return None
