"""OpenAI (api.openai.com). Prices: USD per million tokens, from openai.com/api/pricing."""

from sophia.providers.base import CHAT, EMBEDDINGS, JSON_MODE, TOOLS, VISION, Vendor, model

_ALL = (CHAT, TOOLS, VISION, JSON_MODE)

VENDOR = Vendor(
    name="openai",
    title="OpenAI",
    adapter="openai",
    base_url="https://api.openai.com/v1",
    env_keys=("OPENAI_API_KEY",),
    models=(
        model("gpt-4.1", 2.00, 8.00, 1_047_576, *_ALL),
        model("gpt-4.1-mini", 0.40, 1.60, 1_047_576, *_ALL),
        model("gpt-4.1-nano", 0.10, 0.40, 1_047_576, *_ALL),
        model("gpt-4o", 2.50, 10.00, 128_000, *_ALL),
        model("gpt-4o-mini", 0.15, 0.60, 128_000, *_ALL),
        model("gpt-5", 1.25, 10.00, 400_000, *_ALL),
        model("gpt-5-mini", 0.25, 2.00, 400_000, *_ALL),
        model("gpt-5-nano", 0.05, 0.40, 400_000, *_ALL),
        model("o4-mini", 1.10, 4.40, 200_000, *_ALL),
        model("text-embedding-3-small", 0.02, 0.0, 8_191, EMBEDDINGS),
        model("text-embedding-3-large", 0.13, 0.0, 8_191, EMBEDDINGS),
    ),
)
