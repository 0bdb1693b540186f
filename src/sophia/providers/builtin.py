"""The built-in providers, registered through the same plugin hook a third-party package uses."""

from __future__ import annotations

from sophia.providers import (
    anthropic,
    huggingface,
    local,
    ollama,
    openai,
    openrouter,
    portkey,
    together,
    vllm,
)
from sophia.providers.registry import ProviderRegistry

VENDORS = (openai, anthropic, openrouter, together, huggingface, portkey, vllm, ollama, local)


def register_providers(registry: ProviderRegistry) -> None:
    from sophia.providers.adapters.anthropic import AnthropicAdapter
    from sophia.providers.adapters.local import LocalAdapter
    from sophia.providers.adapters.openai_compat import OpenAICompatAdapter

    for adapter in (OpenAICompatAdapter, AnthropicAdapter, LocalAdapter):
        registry.add_adapter(adapter)
    for module in VENDORS:
        registry.add_vendor(module.VENDOR)
