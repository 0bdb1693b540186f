"""Typed settings: one object, loaded from defaults < ``sophia.yaml`` < the active environment's
``sophia`` values < ``SOPHIA_*`` environment variables < arguments.

The YAML file is the one named by ``--config`` / ``SOPHIA_CONFIG``, else ``./sophia.yaml`` when present.
The active environment (``--env``, ``$SOPHIA_ENV`` or ``secrets.environment``) is a Pulumi ESC
environment from the secrets backend (``sophia.settings.environment``); its ``sophia`` subtree has
the shape of ``sophia.yaml``, so a production environment importing a shared base holds the
services' settings and credentials in one place, and environment variables still override it.
Nested fields use ``__`` in the environment: ``SOPHIA_GATEWAY__PORT=9000``,
``SOPHIA_PROVIDERS__OPENAI__API_KEY=...``. See docs/configuration.md for the complete format.

**The settings rule**: every room's section lives here, in ``sophia.settings`` (``gateway``,
``router``, ``cache``, ``mcp``, ``warehouse``, ``knowledge``, ``collect``, ``observe`` modules, one per room), and a room imports its section from here.
This package imports nothing of Sophia but ``sophia.errors``, so every room may depend on it and
it depends on none (the import contracts in pyproject.toml keep it so).
"""

from __future__ import annotations

import os
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

import yaml
from platformdirs import user_config_dir, user_data_dir
from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from sophia.errors import ConfigError
from sophia.settings.cache import CacheSettings, ModelCacheSettings, Strategy
from sophia.settings.collect import CollectSettings, SaaSService
from sophia.settings.gateway import (
    AliasSettings,
    GatewaySettings,
    LocalSettings,
    ModelSettings,
    ProviderSettings,
    ReliabilitySettings,
    StorageSettings,
    default_aliases,
)
from sophia.settings.knowledge import KnowledgeSettings
from sophia.settings.mcp import McpSettings
from sophia.settings.observe import ObserveSettings
from sophia.settings.router import RouterSettings
from sophia.settings.secrets import SecretsSettings
from sophia.settings.warehouse import WarehouseSettings

__all__ = [
    "CONFIG_ENV",
    "ENVIRONMENT_ENV",
    "HOME_ENV",
    "AliasSettings",
    "CacheSettings",
    "CollectSettings",
    "GatewaySettings",
    "KnowledgeSettings",
    "LocalSettings",
    "McpSettings",
    "ModelCacheSettings",
    "ModelSettings",
    "ObserveSettings",
    "ProviderSettings",
    "ReliabilitySettings",
    "RouterSettings",
    "SaaSService",
    "SecretsSettings",
    "Settings",
    "StorageSettings",
    "Strategy",
    "WarehouseSettings",
    "config_path",
    "load_settings",
    "reload_settings",
]

CONFIG_ENV = "SOPHIA_CONFIG"
ENVIRONMENT_ENV = "SOPHIA_ENV"
HOME_ENV = "SOPHIA_HOME"


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


class _EnvironmentSource(PydanticBaseSettingsSource):
    """The active environment's ``sophia`` values (evaluated before the settings are built)."""

    def __init__(self, settings_cls: type[BaseSettings], values: dict[str, Any] | None) -> None:
        super().__init__(settings_cls)
        self.values = values or {}

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:  # pragma: no cover
        raise NotImplementedError("values come from __call__")

    def __call__(self) -> dict[str, Any]:
        return self.values


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
    warehouse: WarehouseSettings = Field(default_factory=WarehouseSettings)
    knowledge: KnowledgeSettings = Field(default_factory=KnowledgeSettings)
    collect: CollectSettings = Field(default_factory=CollectSettings)
    observe: ObserveSettings = Field(default_factory=ObserveSettings)
    secrets: SecretsSettings = Field(default_factory=SecretsSettings)
    providers: dict[str, ProviderSettings] = Field(default_factory=dict)
    models: dict[str, ModelSettings] = Field(default_factory=dict)
    aliases: dict[str, AliasSettings] = Field(default_factory=default_aliases)

    @field_validator("aliases", mode="before")
    @classmethod
    def _chains_as_lists(cls, value: Any) -> Any:
        # `sophia/smart: [a, b, c]` is shorthand for `sophia/smart: {chain: [a, b, c]}`.
        if isinstance(value, dict):
            return {k: ({"chain": v} if isinstance(v, list) else v) for k, v in value.items()}
        return value

    _config_file: Path | None = None
    #: the active environment this was built from: (name, revision), else None
    _environment: tuple[str, int] | None = None
    #: load_settings' arguments, so the settings can be built again when the environment changes
    _load_args: tuple[Path | None, str | None, dict[str, Any]] | None = None

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (
            init_settings,
            env_settings,
            _EnvironmentSource(settings_cls, _CURRENT_ENVIRONMENT.get("values")),
            _YamlSource(settings_cls, _CURRENT_CONFIG.get("path")),
        )

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

    @property
    def environment(self) -> tuple[str, int] | None:
        """(name, revision) of the active environment these settings came from; None without one."""
        return self._environment


_CURRENT_CONFIG: dict[str, Path | None] = {}
_CURRENT_ENVIRONMENT: dict[str, dict[str, Any] | None] = {}


def load_settings(
    config: str | os.PathLike[str] | None = None,
    *,
    environment: str | None = None,
    use_environment: bool = True,
    **overrides: Any,
) -> Settings:
    """Build the settings from the config file, the active environment, the process environment and
    ``overrides``; raise ConfigError (an environment that fails to evaluate names file, path, reason).

    ``environment`` names the active environment; else ``$SOPHIA_ENV``, else ``secrets.environment``.
    ``use_environment=False`` reads none (what ``sophia env`` needs to repair a broken one).
    """
    path = config_path(config)
    settings = _build(path, None, overrides)
    name = environment or os.environ.get(ENVIRONMENT_ENV) or settings.secrets.environment
    if name and use_environment:
        from sophia.settings.environment import open_active

        opened = open_active(settings, name)
        try:
            settings = _build(path, opened.values_for_settings, overrides)
        except ConfigError as exc:
            raise ConfigError(
                f"environment {name!r} (or sophia.yaml, or SOPHIA_* variables): {exc.message}"
            ) from None
        settings._environment = (name, opened.revision)
        known = opened.secrets
    else:
        known = []
    settings._load_args = (path, name if use_environment else None, dict(overrides))
    from sophia.secrets.mask import KNOWN, known_from_settings

    KNOWN.replace([*known, *known_from_settings(settings)])
    return settings


def reload_settings(settings: Settings) -> Settings:
    """The settings built again as ``settings`` were (same file, environment, overrides): what a
    watcher calls when the active environment changed."""
    if settings._load_args is None:
        return load_settings()
    path, environment, overrides = settings._load_args
    return load_settings(path, environment=environment, use_environment=environment is not None, **overrides)


def _build(path: Path | None, values: dict[str, Any] | None, overrides: dict[str, Any]) -> Settings:
    _CURRENT_CONFIG["path"] = path
    _CURRENT_ENVIRONMENT["values"] = values
    try:
        settings = Settings(**overrides)
    except ValidationError as exc:
        raise ConfigError(_describe(exc)) from None
    finally:
        _CURRENT_CONFIG.pop("path", None)
        _CURRENT_ENVIRONMENT.pop("values", None)
    settings._config_file = path
    return settings


def _describe(exc: ValidationError) -> str:
    lines = []
    for err in exc.errors(include_url=False, include_input=False):
        where = ".".join(str(p) for p in err["loc"]) or "settings"
        lines.append(f"{where}: {err['msg']}")
    return "invalid settings: " + "; ".join(lines)
