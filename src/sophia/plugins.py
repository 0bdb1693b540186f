"""Plugin loading: built-ins and third-party plugins go through the same path.

A plugin is a module with any of these functions (the hooks):

* ``register_providers(registry: sophia.providers.registry.ProviderRegistry) -> None``
* ``register_mcp_tools(registry: sophia.mcp.registry.ToolRegistry) -> None`` (MCP tool groups)
* ``register_cache_stores(registry: sophia.cache.store.CacheStoreRegistry) -> None`` (response-cache stores)
* ``register_warehouse_backends(registry: sophia.warehouse.backends.registry.BackendRegistry) -> None``
  (warehouse engines, by URL scheme)

Third-party packages expose their module in the ``sophia.plugins`` entry-point group; the
built-in modules listed in ``DEFAULT_PLUGINS`` are loaded by the same function.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Iterator
from importlib.metadata import entry_points
from types import ModuleType

from sophia.errors import ConfigError

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "sophia.plugins"
DEFAULT_PLUGINS: tuple[str, ...] = (
    "sophia.providers.builtin",
    "sophia.mcp.builtin",
    "sophia.cache.builtin",
    "sophia.warehouse.backends.builtin",
)


def iter_plugins() -> Iterator[ModuleType]:
    """Every plugin module: the built-ins first, then installed third-party ones."""
    for name in DEFAULT_PLUGINS:
        yield importlib.import_module(name)
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        try:
            module = ep.load()
        except ImportError as exc:
            raise ConfigError(f"plugin {ep.name!r} ({ep.value}) cannot be imported: {exc}") from exc
        if not isinstance(module, ModuleType):
            raise ConfigError(f"plugin {ep.name!r} must point to a module, not {type(module).__name__}")
        log.debug("loaded plugin %s from %s", ep.name, ep.value)
        yield module


def call_hook(hook: str, *args: object) -> None:
    """Call ``hook(*args)`` on every plugin that defines it."""
    for module in iter_plugins():
        fn = getattr(module, hook, None)
        if fn is not None:
            fn(*args)
