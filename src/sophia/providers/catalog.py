"""The catalogue: enabled providers, their models and prices, and the aliases (fallback chains).

Built once from the settings; resolving a model name is a dict lookup.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from sophia.errors import ConfigError, ModelNotFound
from sophia.providers.adapters._http import resolve_key
from sophia.providers.base import CHAT, EMBEDDINGS, Adapter, ModelInfo, Vendor
from sophia.providers.registry import ProviderRegistry, get_registry
from sophia.settings import AliasSettings, ModelSettings, ProviderSettings, Settings

if TYPE_CHECKING:
    from sophia.httpclient import HTTPClient

log = logging.getLogger(__name__)

#: context window assumed for a model of an open catalogue (vLLM, Ollama) that config does not price
OPEN_CATALOG_CONTEXT = 32_768


@dataclass(frozen=True, slots=True)
class Route:
    """What a requested name resolves to: the chain of models to try, in order."""

    requested: str
    chain: tuple[ModelInfo, ...]
    alias: AliasSettings | None = None


def _pick(value: float | None, default: float) -> float:
    return default if value is None else value


#: open-catalogue model names (any ``vllm/<x>``) remembered at once; older ones are forgotten
MAX_OPEN_MODELS = 1024


class Catalog:
    def __init__(self, settings: Settings, registry: ProviderRegistry | None = None) -> None:
        self.settings = settings
        self.registry = registry or get_registry()
        self.adapters: dict[str, Adapter] = {}
        self.models: dict[str, ModelInfo] = {}
        self._by_upstream: dict[str, ModelInfo] = {}
        self._routes: dict[str, Route] = {}
        self._open: dict[str, ModelInfo] = {}  # open-catalogue models named by callers, oldest first
        unknown = set(settings.providers) - set(self.registry.vendors)
        if unknown:
            raise ConfigError(f"unknown provider(s) in settings: {', '.join(sorted(unknown))}")
        for vendor in self.registry.vendors.values():
            config = settings.providers.get(vendor.name, ProviderSettings())
            if self._enabled(vendor, config):
                adapter = self.registry.adapter_for(vendor)(vendor, config, settings)
                self.adapters[vendor.name] = adapter
                for info in adapter.model_infos():
                    self._add(info)
        for model_id, override in settings.models.items():
            self._apply_override(model_id, override)
        self.aliases = dict(settings.aliases)
        clash = set(self.aliases) & set(self.models)
        if clash:
            raise ConfigError(f"alias(es) shadow model ids: {', '.join(sorted(clash))}")

    # -- building -------------------------------------------------------------------------------

    @staticmethod
    def _enabled(vendor: Vendor, config: ProviderSettings) -> bool:
        if config.enabled is not None:
            return config.enabled
        if vendor.needs_key:
            return resolve_key(vendor, config) is not None
        return vendor.default_enabled or config.base_url is not None

    def _add(self, info: ModelInfo) -> None:
        self.models[info.id] = info
        # A bare upstream id ("gpt-4.1") resolves to the first enabled vendor that lists it.
        self._by_upstream.setdefault(info.upstream, info)

    def _apply_override(self, model_id: str, override: ModelSettings) -> None:
        current = self.models.get(model_id)
        if current is None:
            provider = override.provider or model_id.split("/", 1)[0]
            if provider not in self.registry.vendors:
                raise ConfigError(f"models.{model_id}: unknown provider {provider!r}")
            if provider not in self.adapters:
                log.info("model %s is configured but provider %s is not enabled", model_id, provider)
                return
            upstream = override.upstream or model_id.split("/", 1)[-1]
            if override.input_price is None or override.output_price is None:
                raise ConfigError(f"models.{model_id}: a new model needs input_price and output_price")
            current = ModelInfo(
                model_id, provider, upstream, 0.0, 0.0, override.context_window or OPEN_CATALOG_CONTEXT
            )
        self._add(
            replace(
                current,
                upstream=override.upstream or current.upstream,
                input_price=_pick(override.input_price, current.input_price),
                output_price=_pick(override.output_price, current.output_price),
                context_window=override.context_window or current.context_window,
            )
        )

    # -- lookups --------------------------------------------------------------------------------

    def model(self, name: str) -> ModelInfo | None:
        """A single model by gateway id, bare upstream id, or open-catalogue id; None if unknown."""
        info = self.models.get(name) or self._by_upstream.get(name) or self._open.get(name)
        if info is not None:
            return info
        vendor_name, _, upstream = name.partition("/")
        vendor = self.registry.vendors.get(vendor_name)
        if upstream and vendor is not None and vendor.open_catalog and vendor_name in self.adapters:
            # Any name a caller types: remembered, bounded, and never listed as one of the models.
            info = ModelInfo(name, vendor_name, upstream, 0.0, 0.0, OPEN_CATALOG_CONTEXT)
            if len(self._open) >= MAX_OPEN_MODELS:
                del self._open[next(iter(self._open))]
            self._open[name] = info
            return info
        return None

    def resolve(self, name: str, capability: str = CHAT) -> Route:
        """The chain of enabled models for ``name`` (an alias or a model); ModelNotFound otherwise."""
        route = self._routes.get(name)
        if route is not None and route.chain[0].capabilities.issuperset((capability,)):
            return route
        alias = self.aliases.get(name)
        if alias is not None:
            chain = tuple(m for m in (self.model(n) for n in alias.chain) if m is not None)
            if not chain:
                raise ModelNotFound(
                    f"no model of alias {name!r} is enabled (chain: {', '.join(alias.chain)}); "
                    "configure a provider key or include 'local'",
                    param="model",
                )
        else:
            info = self.model(name)
            if info is None:
                raise ModelNotFound(
                    f"the model {name!r} does not exist or its provider is not enabled; "
                    "GET /v1/models lists them",
                    param="model",
                )
            chain = (info,)
        usable = tuple(m for m in chain if capability in m.capabilities)
        if not usable:
            kind = "embeddings" if capability == EMBEDDINGS else capability
            raise ModelNotFound(f"the model {name!r} does not serve {kind}", param="model")
        route = Route(name, usable, alias)
        if len(self._routes) >= MAX_OPEN_MODELS + len(self.models) + len(self.aliases):
            self._routes.clear()  # names callers made up: start again rather than grow
        self._routes[name] = route
        return route

    def adapter(self, info: ModelInfo) -> Adapter:
        return self.adapters[info.provider]

    def listing(self) -> list[tuple[str, str, ModelInfo | None, AliasSettings | None]]:
        """Rows for /v1/models: (id, owner, model, alias), enabled models first, then usable aliases."""
        rows: list[tuple[str, str, ModelInfo | None, AliasSettings | None]] = [
            (m.id, m.provider, m, None) for m in self.models.values()
        ]
        for name, alias in self.aliases.items():
            if any(self.model(n) is not None for n in alias.chain):
                rows.append((name, "sophia", None, alias))
        return rows

    # -- lifecycle ------------------------------------------------------------------------------

    async def start(self, client: HTTPClient) -> None:
        for adapter in self.adapters.values():
            await adapter.start(client)

    async def close(self) -> None:
        for adapter in self.adapters.values():
            await adapter.close()
