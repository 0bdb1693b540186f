"""vLLM (or any self-hosted OpenAI-compatible server): enabled when ``providers.vllm.base_url`` is set.

Any model id is accepted (``vllm/<served model name>``); self-hosted models cost nothing unless
priced under ``models:``.
"""

from sophia.providers.base import Vendor

VENDOR = Vendor(
    name="vllm",
    title="vLLM (self-hosted)",
    adapter="openai",
    base_url=None,
    env_keys=("VLLM_API_KEY",),
    needs_key=False,
    open_catalog=True,
)
