#!/usr/bin/env python3
"""A real Sophia gateway (uvicorn, as ``sophia run`` serves it) in front of the tests' fake upstream,
for ``run.py --url`` without any provider: the HTTP server's own parsing is then in the loop too.

Prints one JSON line (the URL and the keys of ``make_keys``), then serves until interrupted::

    .venv/bin/python benchmarks/fuzz/serve.py --port 8089 --cache on
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests"))


async def serve(port: int, cache_on: bool) -> None:
    import uvicorn

    from fakes.fuzz import FUZZ_ALIASES, make_keys
    from fakes.helpers import gateway_settings
    from fakes.upstream import FakeUpstream
    from sophia.asgi import UVICORN_OPTIONS
    from sophia.gateway.app import GatewayApp
    from sophia.gateway.engine import Gateway

    upstream = FakeUpstream()
    await upstream.start()
    gw = Gateway(gateway_settings(upstream.url, aliases=FUZZ_ALIASES, cache={"enabled": cache_on}))
    await gw.start()
    keys = await make_keys(gw.accounts)
    print(json.dumps({"url": f"http://127.0.0.1:{port}", **keys}), flush=True)
    config = uvicorn.Config(
        GatewayApp(gw, lifespan=False), host="127.0.0.1", port=port, log_level="warning", **UVICORN_OPTIONS
    )
    try:
        await uvicorn.Server(config).serve()
    finally:
        await gw.close()
        await upstream.close()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--port", type=int, default=8089)
    parser.add_argument("--cache", choices=("on", "off"), default="on")
    args = parser.parse_args()
    for name in list(os.environ):
        if name.startswith("SOPHIA_") or name.endswith("_API_KEY") or name == "HF_TOKEN":
            del os.environ[name]
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    with tempfile.TemporaryDirectory(prefix="sophia-fuzz-serve-") as home:
        os.environ["SOPHIA_HOME"] = home
        asyncio.run(serve(args.port, args.cache == "on"))


if __name__ == "__main__":
    main()
