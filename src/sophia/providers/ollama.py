"""Ollama's OpenAI-compatible API: enabled by ``providers.ollama.enabled: true`` (or a base URL).

Any pulled model is accepted as ``ollama/<name>``, free unless priced under ``models:``.
"""

from sophia.providers.base import Vendor

VENDOR = Vendor(
    name="ollama",
    title="Ollama (self-hosted)",
    adapter="openai",
    base_url="http://127.0.0.1:11434/v1",
    needs_key=False,
    open_catalog=True,
)
