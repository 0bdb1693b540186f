"""Together AI (api.together.xyz): open-weight models, OpenAI-compatible API."""

from sophia.providers.base import CHAT, EMBEDDINGS, JSON_MODE, TOOLS, Vendor, model

VENDOR = Vendor(
    name="together",
    title="Together AI",
    adapter="openai",
    base_url="https://api.together.xyz/v1",
    env_keys=("TOGETHER_API_KEY",),
    models=(
        model("meta-llama/Llama-3.3-70B-Instruct-Turbo", 0.88, 0.88, 131_072, CHAT, TOOLS, JSON_MODE),
        model("meta-llama/Meta-Llama-3.1-8B-Instruct-Turbo", 0.18, 0.18, 131_072, CHAT, TOOLS, JSON_MODE),
        model("Qwen/Qwen2.5-72B-Instruct-Turbo", 1.20, 1.20, 32_768, CHAT, TOOLS, JSON_MODE),
        model("deepseek-ai/DeepSeek-V3", 1.25, 1.25, 131_072, CHAT, TOOLS, JSON_MODE),
        model("mistralai/Mixtral-8x7B-Instruct-v0.1", 0.60, 0.60, 32_768, CHAT, JSON_MODE),
        model("BAAI/bge-base-en-v1.5", 0.008, 0.0, 512, EMBEDDINGS),
    ),
)
