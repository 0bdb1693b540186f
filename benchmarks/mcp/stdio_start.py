"""How fast an IDE's stdio MCP server answers, and what it loads: initialize, tools/list, a first tool call.

Starts ``sophia mcp serve ai --stdio`` as an IDE does (a new process, the key in $SOPHIA_API_KEY), five
times, and reports the medians of the time to the initialize answer, to tools/list and to a first
``usage_report`` call (a tool that needs no model), with the heavy modules the server had imported when
it exited. ``--src`` runs another checkout's ``src`` (e.g. a ``git worktree`` of an older commit) to
compare before and after; the key is created in a fresh ``SOPHIA_HOME`` by that checkout's CLI.

    .venv/bin/python benchmarks/mcp/stdio_start.py [--src path/to/src] [--runs 5]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import TextIO

from mcp.client.stdio import StdioServerParameters, stdio_client

from mcp import Client

ROOT = Path(__file__).resolve().parents[2]
HEAVY = (
    "numpy",
    "onnxruntime",
    "tokenizers",
    "sophia.gateway.engine",
    "sophia.cache.cache",
    "sophia.providers.catalog",
    "sophia.router.router",
)
#: the server, with a hook that writes the heavy modules it imported to $PROBE_OUT when it exits
SERVER = f"""
import atexit, os, sys
atexit.register(lambda: open(os.environ["PROBE_OUT"], "w").write(
    " ".join(sorted(m for m in sys.modules if m in {HEAVY!r}))))
sys.argv = ["sophia-mcp", "serve", "ai", "--stdio"]
from sophia.cli.mcp import app
try:
    app()
except SystemExit:
    pass
"""


async def one_run(env: dict[str, str], quiet: TextIO) -> tuple[float, float, float]:
    params = StdioServerParameters(command=sys.executable, args=["-c", SERVER], env=env)
    started = time.perf_counter()
    async with Client(stdio_client(params, errlog=quiet), mode="legacy") as client:
        ready = time.perf_counter() - started
        await client.list_tools()
        listed = time.perf_counter() - started
        done = await client.call_tool("usage_report", {"since": "1h"})
        if done.is_error:
            raise RuntimeError(f"usage_report failed: {done.content}")
        called = time.perf_counter() - started
    await asyncio.sleep(0.2)  # the server writes its module list on exit
    return ready, listed, called


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--src", type=Path, default=ROOT / "src", help="the checkout's src folder")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as home:
        env = {**os.environ, "PYTHONPATH": str(args.src), "SOPHIA_HOME": home}
        key = subprocess.run(
            [sys.executable, "-m", "sophia", "keys", "create", "--name", "ide", "--print-secret-only"],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        probe = Path(home) / "modules.txt"
        env |= {"SOPHIA_API_KEY": key, "PROBE_OUT": str(probe)}
        with open(os.devnull, "w") as quiet:
            runs = [asyncio.run(one_run(env, quiet)) for _ in range(args.runs)]
        heavy = probe.read_text().split()
    names = ("initialize_s", "tools_list_s", "first_usage_report_s")
    medians = {n: round(statistics.median(r[i] for r in runs), 3) for i, n in enumerate(names)}
    print(json.dumps({"src": str(args.src), **medians, "heavy_modules_imported": heavy}))


if __name__ == "__main__":
    main()
