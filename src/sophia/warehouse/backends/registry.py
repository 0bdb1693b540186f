"""The registry of warehouse backends, keyed by URL scheme and filled through the plugin hook.

A plugin module defines ``register_warehouse_backends(registry: BackendRegistry) -> None`` and
calls ``registry.register("scheme", factory)``; the built-in backends (``duckdb``,
``postgresql``/``postgres``, ``snowflake``) register from ``sophia.warehouse.backends.builtin``
through the same hook. Factories import their driver only when called, so an optional SDK
(snowflake-connector-python) is needed only by the URL that names it.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator
from types import ModuleType

from sophia.errors import ConfigError
from sophia.settings.warehouse import WarehouseSettings
from sophia.warehouse.backends.base import Backend

HOOK = "register_warehouse_backends"
BUILTIN = "sophia.warehouse.backends.builtin"

#: builds a backend from the URL and the settings; ``guard=False`` only in the connection-layer tests
BackendFactory = Callable[..., Backend]


class BackendRegistry:
    def __init__(self) -> None:
        self._factories: dict[str, BackendFactory] = {}

    def register(self, scheme: str, factory: BackendFactory) -> None:
        scheme = scheme.lower()
        known = self._factories.get(scheme)
        if known is not None and known is not factory:
            raise ConfigError(f"two warehouse backends are registered for {scheme}://")
        self._factories[scheme] = factory

    def schemes(self) -> list[str]:
        return sorted(self._factories)

    def create(self, url: str, settings: WarehouseSettings, *, guard: bool = True) -> Backend:
        scheme = url.split(":", 1)[0].lower() if ":" in url else ""
        factory = self._factories.get(scheme)
        if factory is None:
            raise ConfigError(
                f"unknown warehouse URL scheme {scheme or url[:10]!r}; known: {', '.join(self.schemes())}"
            )
        return factory(url, settings, guard=guard)


def _plugins() -> Iterator[ModuleType]:
    from sophia.plugins import DEFAULT_PLUGINS, iter_plugins

    # The built-in module goes through the same hook as a third-party plugin; it is loaded here
    # too until sophia.plugins.DEFAULT_PLUGINS lists it.
    if BUILTIN not in DEFAULT_PLUGINS:
        yield importlib.import_module(BUILTIN)
    yield from iter_plugins()


def default_registry() -> BackendRegistry:
    """The built-in backends and those of installed plugins."""
    registry = BackendRegistry()
    for module in _plugins():
        hook = getattr(module, HOOK, None)
        if hook is not None:
            hook(registry)
    return registry


def open_backend(url: str, settings: WarehouseSettings, *, guard: bool = True) -> Backend:
    """The backend for ``url`` (ConfigError for an unknown scheme, DependencyMissing for a missing SDK)."""
    return default_registry().create(url, settings, guard=guard)
