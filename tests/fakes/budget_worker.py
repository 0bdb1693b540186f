"""One gateway process of the two-process budget test: ``python -m fakes.budget_worker ARGS``.

Prints ``ready`` once its gateway has started, waits for ``go`` on stdin (so both processes fire at
once), makes ``callers`` concurrent chat calls with the key, prints ``{"ok": n, "refused": m}``.
"""

from __future__ import annotations

import asyncio
import sys

import orjson

from fakes.helpers import chat, gateway_settings
from sophia.errors import BudgetExceeded
from sophia.gateway.engine import Gateway

PRICE = {"input_price": 1000.0, "output_price": 2000.0, "context_window": 8192}


async def main(upstream: str, database_url: str, redis_url: str, secret: str, callers: int) -> None:
    settings = gateway_settings(
        upstream,
        models={"vllm/slow-0.3": PRICE},
        storage={"database_url": database_url, "redis_url": redis_url or None, "ledger_flush_interval": 0.05},
    )
    gw = Gateway(settings)
    await gw.start()
    try:
        key = await gw.authenticate(f"Bearer {secret}")
        print("ready", flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)

        async def call() -> bool:
            try:
                await gw.chat(chat("vllm/slow-0.3", max_tokens=5), key)
            except BudgetExceeded:
                return False
            return True

        results = await asyncio.gather(*(call() for _ in range(callers)))
        print(orjson.dumps({"ok": sum(results), "refused": len(results) - sum(results)}).decode(), flush=True)
    finally:
        await gw.close()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])))
