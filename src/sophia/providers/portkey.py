"""Portkey AI gateway (api.portkey.ai), OpenAI-compatible.

Portkey routes on headers: set ``providers.portkey.options.virtual_key`` (or ``provider`` plus
``custom_host``, or a saved ``config`` id). Model ids are the target vendor's own.
"""

from sophia.providers.base import CHAT, JSON_MODE, TOOLS, VISION, Vendor, model

_ALL = (CHAT, TOOLS, VISION, JSON_MODE)

VENDOR = Vendor(
    name="portkey",
    title="Portkey",
    adapter="openai",
    base_url="https://api.portkey.ai/v1",
    env_keys=("PORTKEY_API_KEY",),
    auth_header="x-portkey-api-key",
    auth_scheme="",
    option_headers={
        "virtual_key": "x-portkey-virtual-key",
        "provider": "x-portkey-provider",
        "config": "x-portkey-config",
        "custom_host": "x-portkey-custom-host",
        "trace_id": "x-portkey-trace-id",
    },
    models=(
        model("gpt-4.1", 2.00, 8.00, 1_047_576, *_ALL),
        model("gpt-4.1-mini", 0.40, 1.60, 1_047_576, *_ALL),
        model("gpt-4o-mini", 0.15, 0.60, 128_000, *_ALL),
    ),
)
