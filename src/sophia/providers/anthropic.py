"""Anthropic (api.anthropic.com), through the Messages adapter."""

from sophia.providers.base import CHAT, JSON_MODE, TOOLS, VISION, Vendor, model

_ALL = (CHAT, TOOLS, VISION, JSON_MODE)

VENDOR = Vendor(
    name="anthropic",
    title="Anthropic",
    adapter="anthropic",
    base_url="https://api.anthropic.com/v1",
    env_keys=("ANTHROPIC_API_KEY",),
    auth_header="x-api-key",
    auth_scheme="",
    extra_headers={"anthropic-version": "2023-06-01"},
    models=(
        model("claude-opus-4-1", 15.00, 75.00, 200_000, *_ALL),
        model("claude-sonnet-4-5", 3.00, 15.00, 200_000, *_ALL),
        model("claude-haiku-4-5", 1.00, 5.00, 200_000, *_ALL),
        model("claude-3-5-haiku-latest", 0.80, 4.00, 200_000, *_ALL),
    ),
)
