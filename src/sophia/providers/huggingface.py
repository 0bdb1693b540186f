"""Hugging Face Inference Providers (router.huggingface.co), OpenAI-compatible.

A self-hosted Text Generation Inference server speaks the same protocol: point
``providers.huggingface.base_url`` at it (``http://host:8080/v1``).
"""

from sophia.providers.base import CHAT, JSON_MODE, TOOLS, Vendor, model

VENDOR = Vendor(
    name="huggingface",
    title="Hugging Face Inference",
    adapter="openai",
    base_url="https://router.huggingface.co/v1",
    env_keys=("HF_TOKEN", "HUGGINGFACE_API_KEY"),
    models=(
        model("meta-llama/Llama-3.1-8B-Instruct", 0.10, 0.10, 131_072, CHAT, TOOLS, JSON_MODE),
        model("meta-llama/Llama-3.3-70B-Instruct", 0.60, 0.60, 131_072, CHAT, TOOLS, JSON_MODE),
        model("Qwen/Qwen2.5-72B-Instruct", 0.60, 0.60, 32_768, CHAT, TOOLS, JSON_MODE),
        model("mistralai/Mistral-7B-Instruct-v0.3", 0.10, 0.10, 32_768, CHAT),
    ),
)
