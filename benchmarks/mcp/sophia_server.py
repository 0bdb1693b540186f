"""Sophia's side of the benchmark: the AI server's tools plus the same trivial `echo` tool as the baseline.

Served by Sophia's own MCP base with everything on: bearer keys (a key limited to some tools, so
the filter does real work), the per-call ledger row, validation and error mapping.

    sophia_server.py --config CONFIG --port N        streamable HTTP
    sophia_server.py --config CONFIG --stdio         stdio ($SOPHIA_API_KEY)
"""

from __future__ import annotations

import argparse

from pydantic import Field

from sophia.mcp.ai import group as ai_group
from sophia.mcp.context import ToolContext
from sophia.mcp.tools import Input, Output, ToolGroup, ToolSet

bench = ToolSet()


class EchoIn(Input):
    text: str = Field(description="Any text.")


class EchoOut(Output):
    text: str

    def render(self) -> str:
        return self.text


@bench.tool(title="Echo", read_only=True, destructive=False, idempotent=True, open_world=False)
async def echo(ctx: ToolContext, args: EchoIn) -> EchoOut:
    """Return the text unchanged."""
    return EchoOut(text=args.text)


group = ToolGroup(
    "bench", port=0, title="Benchmark", instructions=ai_group.instructions, sets=[ai_group, bench]
)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--config", required=True)
    parser.add_argument("--port", type=int)
    parser.add_argument("--stdio", action="store_true")
    args = parser.parse_args()

    from sophia.cli.mcp import run_async
    from sophia.settings import load_settings

    settings = load_settings(args.config)
    if args.stdio:
        from sophia.mcp.stdio import serve_stdio

        run_async(serve_stdio(settings, group))
    else:
        from sophia.mcp.http import http_server

        http_server(settings, group, port=args.port).run()


if __name__ == "__main__":
    main()
