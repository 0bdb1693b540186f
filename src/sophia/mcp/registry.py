"""The registry of MCP tool groups, filled by plugins through the ``register_mcp_tools`` hook.

Built-in groups register exactly as third-party ones do: a plugin module defines
``register_mcp_tools(registry: ToolRegistry) -> None`` and adds groups, either as objects or, to
keep start-up lean, as ``"module:attribute"`` strings that are imported only when that group is
served (``sophia mcp serve data`` never imports the AI group's module).
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from types import ModuleType

from sophia.errors import ConfigError
from sophia.mcp.tools import ToolGroup

HOOK = "register_mcp_tools"
BUILTIN = "sophia.mcp.builtin"


class ToolRegistry:
    def __init__(self) -> None:
        self._groups: dict[str, ToolGroup | str] = {}

    def add(self, group: ToolGroup | str, name: str | None = None) -> None:
        """Add a group, or a lazy ``"module:attribute"`` reference to one (then ``name`` is required)."""
        key = group.name if isinstance(group, ToolGroup) else name
        if not key:
            raise ConfigError("a lazily registered MCP tool group needs a name")
        if key in self._groups:
            raise ConfigError(f"MCP tool group {key!r} is registered twice")
        self._groups[key] = group

    def names(self) -> list[str]:
        return sorted(self._groups)

    def get(self, name: str) -> ToolGroup:
        entry = self._groups.get(name)
        if entry is None:
            known = ", ".join(self.names()) or "none"
            raise ConfigError(f"no MCP server {name!r} (known: {known})")
        if isinstance(entry, str):
            module_name, _, attr = entry.partition(":")
            group = getattr(importlib.import_module(module_name), attr or "group")
            if not isinstance(group, ToolGroup) or group.name != name:
                raise ConfigError(f"{entry} is not the MCP tool group {name!r}")
            self._groups[name] = entry = group
        return entry


def _plugin_modules() -> Iterator[ModuleType]:
    from sophia.plugins import iter_plugins

    yield from iter_plugins()  # the built-in groups (``sophia.mcp.builtin``) are among DEFAULT_PLUGINS


_REGISTRY: ToolRegistry | None = None


def get_registry() -> ToolRegistry:
    """The process-wide registry, filled on first use from every plugin's ``register_mcp_tools``."""
    global _REGISTRY
    if _REGISTRY is None:
        registry = ToolRegistry()
        for module in _plugin_modules():
            hook = getattr(module, HOOK, None)
            if hook is not None:
                hook(registry)
        _REGISTRY = registry
    return _REGISTRY
