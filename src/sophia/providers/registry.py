"""The provider registry: vendors (data) and adapters (protocols), filled by plugins."""

from __future__ import annotations

from dataclasses import dataclass, field

from sophia.errors import ConfigError
from sophia.providers.base import Adapter, Vendor


@dataclass
class ProviderRegistry:
    vendors: dict[str, Vendor] = field(default_factory=dict)
    adapters: dict[str, type[Adapter]] = field(default_factory=dict)

    def add_vendor(self, vendor: Vendor) -> None:
        if vendor.name in self.vendors:
            raise ConfigError(f"provider {vendor.name!r} is registered twice")
        self.vendors[vendor.name] = vendor

    def add_adapter(self, adapter: type[Adapter]) -> None:
        self.adapters[adapter.protocol] = adapter

    def adapter_for(self, vendor: Vendor) -> type[Adapter]:
        try:
            return self.adapters[vendor.adapter]
        except KeyError:
            raise ConfigError(
                f"provider {vendor.name!r} needs the unknown adapter {vendor.adapter!r}"
            ) from None


_REGISTRY: ProviderRegistry | None = None


def get_registry() -> ProviderRegistry:
    """The process-wide registry, filled once from every plugin's ``register_providers`` hook."""
    global _REGISTRY
    if _REGISTRY is None:
        from sophia.plugins import call_hook

        registry = ProviderRegistry()
        call_hook("register_providers", registry)
        _REGISTRY = registry
    return _REGISTRY
