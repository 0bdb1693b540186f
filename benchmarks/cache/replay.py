#!/usr/bin/env python3
"""Replay a stream of questions through a running gateway and check the wrong-answer budget's promise.

    .venv/bin/python benchmarks/cache/replay.py STREAM.jsonl [--budget 0.02] [--check-rate 0.02]
    .venv/bin/python benchmarks/cache/replay.py --example > /tmp/stream.jsonl   # the chat pairs as a stream
    .venv/bin/python benchmarks/cache/replay.py --qqp 4000 > /tmp/qqp.jsonl      # QQP test pairs as a stream

STREAM.jsonl: one ``{"text": "...", "group": "..."}`` per line, in the order a gateway sees them; texts of
one group ask the same thing (one answer fits them all), texts of different groups do not.

What runs: an OpenAI-compatible upstream on loopback that answers every question with ``group:<its
group>`` (an unknown text gets its own group), so a fresh model call tells exactly whether a cached answer
was right; the real server (``sophia run``, its own process, defaults on) with the cache budget set on
the model the stream asks (``cache.models.<model>.max_error_rate``); the stream sent in order, one request
at a time. A semantic hit is wrong when the answer it served names another group than the question's.

Printed: lookups, exact / semantic hits, wrong semantic hits and the realised error with its 95% Wilson
interval, checks (ledger ``cache = check``) and their share of would-be hits, and what ``sophia cache
stats`` estimates for the alias beside the truth. ``--url``/``--key``: use a gateway that is already running
(its upstream must answer the same way; the texts' groups are then read from its answers).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import yaml

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1] / "tests"))  # the fake OpenAI-compatible upstream lives with the tests

from oracle import norm, wilson  # noqa: E402

from fakes.process import free_port, wait_healthy  # noqa: E402
from fakes.upstream import FakeUpstream  # noqa: E402

SOPHIA = [sys.executable, "-m", "sophia"]
MODEL = "vllm/grouped"


def example_stream() -> list[dict[str, str]]:
    """The 60 chat pairs (benchmarks/cache/chat_pairs.jsonl) as a stream: each stored question, then
    each asked one, groups from the labels (a rewording shares its stored question's group)."""
    rows = [json.loads(line) for line in (HERE / "chat_pairs.jsonl").read_text().splitlines() if line.strip()]
    out, seen = [], set()
    for r in rows:
        if r["stored"] not in seen:
            seen.add(r["stored"])
            out.append({"text": r["stored"], "group": r["stored"]})
    for r in rows:
        out.append({"text": r["asked"], "group": r["stored"] if r["same"] else r["asked"]})
    return out


def qqp_stream(pairs: int, split: str = "test") -> list[dict[str, str]]:
    """The first ``pairs`` QQP pairs of ``split`` as a gateway sees them (every ``a``, then every ``b``).
    Groups: texts equal once punctuation and case go, joined through the labelled duplicate pairs (a union:
    more lenient than ``oracle.py``, which joins only the two texts of a labelled pair)."""
    from dataclasses import replace

    from sophia.cache.training.dataset import load_pairs
    from sophia.cache.training.pairs import components

    data = HERE.parents[1].parent / "shared" / "data" / "cache" / "qqp_pairs.jsonl.gz"
    chosen = load_pairs(data, split=split)[:pairs]
    ids = components([replace(p, a=norm(p.a), b=norm(p.b)) for p in chosen], duplicates_only=True)
    texts = [p.a for p in chosen] + [p.b for p in chosen]
    return [{"text": t, "group": f"q{ids[norm(t)]}"} for t in texts]


def grouped(groups: dict[str, str]) -> Callable[[str], str]:
    """The upstream's answer to a question: ``group:<g>`` for a known text, ``group:<hash>`` for any other."""

    def answer(text: str) -> str:
        return f"group:{groups.get(text) or hashlib.sha256(text.encode()).hexdigest()[:12]}"

    return answer


async def run_cli(env: dict[str, str], *args: str) -> str:
    proc = await asyncio.create_subprocess_exec(
        *SOPHIA, *args, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await proc.communicate()
    if proc.returncode:
        raise RuntimeError(f"sophia {' '.join(args)} failed: {err.decode()[-2000:]}")
    return out.decode()


async def replay(url: str, key: str, stream: list[dict[str, str]], model: str) -> dict[str, Any]:
    kinds: dict[str, int] = {}
    served = wrong = 0
    curve = []
    async with httpx.AsyncClient(
        base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=60
    ) as http:
        # the encoder loads at the first semantic lookup; requests skip the semantic layer while it does
        warm = {"model": model, "messages": [{"role": "user", "content": "replay warm-up, not a question"}]}
        (await http.post("/v1/chat/completions", json=warm)).raise_for_status()
        await asyncio.sleep(5)
        for i, row in enumerate(stream, 1):
            body = {"model": model, "messages": [{"role": "user", "content": row["text"]}]}
            resp = await http.post("/v1/chat/completions", json=body)
            resp.raise_for_status()
            kind = resp.headers.get("x-sophia-cache", "?")
            kinds[kind] = kinds.get(kind, 0) + 1
            if kind == "semantic":
                served += 1
                answer = resp.json()["choices"][0]["message"]["content"]
                wrong += answer != f"group:{row['group']}"
            if i % 500 == 0 or i == len(stream):
                curve.append({"lookups": i, "semantic": served, "wrong": wrong})
        stats = (await http.get("/admin/cache", params={"since": "30d"})).json()
    low, high = wilson(wrong, served)
    alias = (stats.get("aliases") or {}).get(model, {})
    checks = int(alias.get("checks_in_period", stats.get("checks", 0)))
    return {
        "lookups": len(stream),
        "by_kind": kinds,
        "semantic_hits": served,
        "wrong_semantic_hits": wrong,
        "realised_error": wrong / served if served else None,
        "realised_error_interval": [round(low, 4), round(high, 4)],
        "checks": checks,
        "check_share_of_would_be_hits": round(checks / (served + checks), 4) if served + checks else 0.0,
        "cache_stats_alias": alias,
        "curve": curve,
    }


def read_stream(path: str) -> list[dict[str, str]]:
    return [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]


async def main(args: argparse.Namespace) -> dict[str, Any]:
    stream = read_stream(args.stream)
    if args.url:
        return await replay(args.url, args.key, stream, args.model)
    upstream = FakeUpstream(answer=grouped({r["text"]: str(r["group"]) for r in stream}))
    await upstream.start()
    home = Path(tempfile.mkdtemp(prefix="sophia-replay-"))
    config = {
        "providers": {"vllm": {"base_url": f"{upstream.url}/vllm/v1"}, "local": {"enabled": False}},
        "models": {MODEL: {"input_price": 1.0, "output_price": 2.0, "context_window": 8192}},
        "cache": {
            "semantic_sample": 1,  # every request is looked up semantically (the gate would sample a fast fake)
            "models": {MODEL: {"max_error_rate": args.budget, "check_rate": args.check_rate}},
            "budget_cold": args.cold,
        },
    }
    (home / "sophia.yaml").write_text(yaml.safe_dump(config))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SOPHIA_", "PULUMI_"))}
    env["SOPHIA_HOME"] = str(home)
    port = free_port()
    with (home / "server.log").open("wb") as log:
        server = await asyncio.create_subprocess_exec(
            *SOPHIA, "run", "--config", str(home / "sophia.yaml"), "--port", str(port), "--no-mcp",
            env=env, stdout=asyncio.subprocess.DEVNULL, stderr=log,
        )  # fmt: skip
    try:
        await wait_healthy(f"http://127.0.0.1:{port}/health", within=120)
        key = (await run_cli(env, "keys", "local", "--config", str(home / "sophia.yaml"))).strip().split()[-1]
        result = await replay(f"http://127.0.0.1:{port}", key, stream, MODEL)
        result["upstream_calls"] = sum(upstream.calls.values())
        result["server_log"] = str(home / "server.log")
        result["budget"] = args.budget
        result["check_rate"] = args.check_rate
        result["budget_cold"] = args.cold
        return result
    finally:
        server.terminate()
        await server.wait()
        await upstream.close()


def cli() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("stream", nargs="?", help="JSONL of {text, group}")
    parser.add_argument("--budget", type=float, default=0.02, help="max_error_rate of the replayed model")
    parser.add_argument("--check-rate", type=float, default=0.02)
    parser.add_argument("--example", action="store_true", help="print the chat pairs as a stream and exit")
    parser.add_argument(
        "--qqp", type=int, default=0, help="print the first N QQP test pairs as a stream and exit"
    )
    parser.add_argument(
        "--cold",
        default="withhold",
        choices=("withhold", "threshold"),
        help="cache.budget_cold of the server",
    )
    parser.add_argument("--url", help="a running gateway (default: start one)")
    parser.add_argument("--key", default="", help="its API key (with --url)")
    parser.add_argument("--model", default=MODEL, help="the model the stream asks (with --url)")
    parser.add_argument("--out", type=Path, help="write the result JSON here too")
    args = parser.parse_args()
    if args.example or args.qqp:
        for row in example_stream() if args.example else qqp_stream(args.qqp):
            print(json.dumps(row))
        return 0
    if not args.stream:
        parser.error("give a stream (or --example)")
    result = asyncio.run(main(args))
    text = json.dumps(result, indent=1)
    if args.out:
        args.out.write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(cli())
