"""OpenRouter (openrouter.ai): one key, many vendors' models. Model ids are OpenRouter's own slugs."""

from sophia.providers.base import CHAT, JSON_MODE, TOOLS, VISION, Vendor, model

_ALL = (CHAT, TOOLS, VISION, JSON_MODE)

VENDOR = Vendor(
    name="openrouter",
    title="OpenRouter",
    adapter="openai",
    base_url="https://openrouter.ai/api/v1",
    env_keys=("OPENROUTER_API_KEY",),
    # OpenRouter's app attribution headers (optional, documented at openrouter.ai/docs/api-reference).
    extra_headers={"X-Title": "Sophia"},
    models=(
        model("openai/gpt-4.1", 2.00, 8.00, 1_047_576, *_ALL),
        model("openai/gpt-4.1-mini", 0.40, 1.60, 1_047_576, *_ALL),
        model("anthropic/claude-sonnet-4.5", 3.00, 15.00, 1_000_000, *_ALL),
        model("anthropic/claude-haiku-4.5", 1.00, 5.00, 200_000, *_ALL),
        model("google/gemini-2.5-flash", 0.30, 2.50, 1_048_576, *_ALL),
        model("meta-llama/llama-3.3-70b-instruct", 0.13, 0.40, 131_072, CHAT, TOOLS, JSON_MODE),
        model("deepseek/deepseek-chat-v3.1", 0.27, 1.00, 163_840, CHAT, TOOLS, JSON_MODE),
        model("mistralai/mistral-small-3.2-24b-instruct", 0.05, 0.10, 131_072, CHAT, TOOLS, JSON_MODE),
        model("qwen/qwen-2.5-72b-instruct", 0.12, 0.39, 32_768, CHAT, TOOLS, JSON_MODE),
    ),
)
