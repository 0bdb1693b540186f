"""Small builders shared by the gateway tests."""

from __future__ import annotations

import contextlib
import random
from collections.abc import AsyncIterator
from typing import Any

from sophia.settings import Settings, load_settings

#: a port nothing listens on: connections are refused at once (a provider that is down)
DOWN_URL = "http://127.0.0.1:9/v1"


def gateway_settings(upstream_url: str, **overrides: Any) -> Settings:
    """Providers pointed at the fake upstream (vllm, ollama, openai) and one that is down (together).

    The response cache is off (tests repeat the same request and count upstream calls); the cache
    tests turn it on with ``cache={"enabled": True}``.
    """
    base: dict[str, Any] = {
        "providers": {
            "vllm": {"base_url": f"{upstream_url}/vllm/v1"},
            "ollama": {"base_url": f"{upstream_url}/ollama/v1"},
            "openai": {"api_key": "test-openai-key", "base_url": f"{upstream_url}/openai/v1"},
            "together": {"api_key": "test-together-key", "base_url": DOWN_URL},
            "local": {"enabled": False},
        },
        "models": {"vllm/priced": {"input_price": 1.0, "output_price": 2.0, "context_window": 8192}},
        "aliases": {
            "test/fallback-500": ["vllm/status-500", "ollama/ok"],
            "test/fallback-down": ["together/meta-llama/Llama-3.3-70B-Instruct-Turbo", "vllm/ok"],
            "test/fallback-slow": ["vllm/slow-5", "ollama/ok"],
            "test/fallback-stall": ["vllm/stall-5", "ollama/ok"],
            "test/all-bad": ["vllm/status-503", "ollama/status-502"],
        },
        "reliability": {"backoff_base": 0.01, "backoff_max": 0.05, "first_byte_timeout": 0.5, "timeout": 5},
        "cache": {"enabled": False},
    }
    for section, value in overrides.items():
        if isinstance(value, dict) and isinstance(base.get(section), dict):
            base[section] = {**base[section], **value}
        else:
            base[section] = value
    return load_settings(**base)


def chat(model: str, text: str = "hi", **extra: Any) -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": text}], **extra}


@contextlib.asynccontextmanager
async def served(gateway: Any) -> AsyncIterator[str]:
    """The gateway's HTTP app on a real loopback port, in this event loop (a client that hangs up
    must really close a socket); yields its base URL."""
    import asyncio
    import socket

    import uvicorn

    from sophia.gateway.app import GatewayApp

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(GatewayApp(gateway), log_level="warning", lifespan="on", loop="asyncio")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        await asyncio.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task
        sock.close()


class FixedRandom(random.Random):
    """A sampler whose ``random()`` always returns ``value``: 0.0 always takes a sampled path (a cache
    check), 0.99 never does."""

    def __init__(self, value: float) -> None:
        super().__init__(0)
        self.value = value

    def random(self) -> float:
        return self.value
