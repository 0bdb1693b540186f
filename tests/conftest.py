"""Test isolation: every test gets its own Sophia home and sees no developer settings or vendor keys."""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # as the CLI does; before numpy is imported

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from fakes.upstream import FakeUpstream

#: environment variables that could leak a developer's settings or real keys into a test
_VENDOR_KEYS = (
    "OPENAI_API_KEY",
    "ANTHROPIC_API_KEY",
    "OPENROUTER_API_KEY",
    "TOGETHER_API_KEY",
    "HF_TOKEN",
    "HUGGINGFACE_API_KEY",
    "PORTKEY_API_KEY",
    "VLLM_API_KEY",
)


@pytest.fixture(autouse=True)
def isolated_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point SOPHIA_HOME at a fresh folder and drop every SOPHIA_* and vendor-key variable."""
    for name in list(os.environ):
        if name.startswith("SOPHIA_") or name in _VENDOR_KEYS:
            monkeypatch.delenv(name, raising=False)
    home = tmp_path / "sophia-home"
    monkeypatch.setenv("SOPHIA_HOME", str(home))
    monkeypatch.chdir(tmp_path)
    return home


@pytest.fixture
async def upstream() -> AsyncIterator[FakeUpstream]:
    """An OpenAI-compatible provider on loopback whose behaviour is set by the model name."""
    fake = FakeUpstream()
    await fake.start()
    yield fake
    await fake.close()
