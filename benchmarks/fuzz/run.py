#!/usr/bin/env python3
"""Fuzz benchmark (issue 22, "No input gets a 5xx"): many grammar-fuzzed requests, one report.

The cases are those of ``tests/fakes/fuzz.py`` (the grammar, mutations and oracle the tests use);
``tests/gateway/test_fuzz.py`` runs a few hundred of them in CI, this runs thousands.

* **in-process** (default): ``GatewayApp`` through ``httpx.ASGITransport`` against the fake loopback
  upstream of the tests, the response cache off for one half of the run and on for the other. Server
  exceptions are seen (raised out of the app or logged with a traceback) and each distinct finding is
  shrunk to a small reproduction.
* **a real server** (``--url``): the same cases over raw HTTP/1.1 (one connection per case, the
  request target sent verbatim: no client normalises ``/../`` away). Only what comes back is judged;
  the server's log has any traceback.

After every ``--check-every`` cases and at the end, ``/health`` must answer 200 and a normal chat
call must succeed (in-process; with ``--url`` only if ``--chat-model`` is given). See README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import platform
import statistics
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # the fuzzer and the fake upstream live with the tests

from fakes.fuzz import (  # noqa: E402
    CHUNKS,
    FUZZ_ALIASES,
    SEED,
    Case,
    Driver,
    Outcome,
    fill,
    finding_key,
    pieces,
    problems,
    shrink,
    suite,
)

#: findings shrunk to a reproduction per half (the rest are counted)
SHRUNK = 20


class Tally:
    """Counts and findings of one half of a run."""

    def __init__(self, label: str, seed: int, count: int) -> None:
        self.label, self.seed, self.count = label, seed, count
        self.by_status: Counter[int] = Counter()
        self.by_production: Counter[str] = Counter()
        self.seconds: list[float] = []
        self.findings: dict[str, list[tuple[Case, Outcome]]] = {}
        self.health: list[dict[str, Any]] = []
        self.elapsed = 0.0

    def add(self, case: Case, outcome: Outcome, secrets: tuple[str, ...]) -> None:
        self.by_status[outcome.status] += 1
        self.by_production[case.label.split(";")[0]] += 1
        self.seconds.append(outcome.seconds)
        found = problems(case, outcome, secrets)
        if found:
            self.findings.setdefault(finding_key(case, outcome, found), []).append((case, outcome))

    def report(self, reproductions: dict[str, str]) -> dict[str, Any]:
        ms = sorted(s * 1000 for s in self.seconds) or [0.0]
        return {
            "half": self.label,
            "seed": self.seed,
            "cases": len(self.seconds),
            "elapsed_s": round(self.elapsed, 2),
            "cases_per_s": round(len(self.seconds) / self.elapsed, 1) if self.elapsed else None,
            "latency_ms": {
                "p50": round(statistics.median(ms), 2),
                "p99": round(ms[min(len(ms) - 1, int(len(ms) * 0.99))], 2),
                "max": round(ms[-1], 2),
            },
            "by_status": {str(k): v for k, v in sorted(self.by_status.items())},
            "by_production": dict(sorted(self.by_production.items())),
            "five_xx": sum(v for k, v in self.by_status.items() if k >= 500),
            "findings": [
                {
                    "key": key,
                    "cases": len(seen),
                    "first_made_by": seen[0][0].label,
                    "first_status": seen[0][1].status,
                    "reproduction": reproductions.get(key, seen[0][0].describe()),
                    "answer": seen[0][1].body[:300].decode("utf-8", "replace"),
                }
                for key, seen in self.findings.items()
            ],
            "health_checks": self.health,
        }


def rss_mb() -> float | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        return None
    return None


# -- in-process -----------------------------------------------------------------------------------------


async def _in_process_half(
    upstream_url: str, cache_on: bool, seed: int, count: int, check_every: int
) -> dict[str, Any]:
    from fakes.fuzz import make_keys
    from fakes.helpers import chat, gateway_settings
    from sophia.gateway.app import GatewayApp
    from sophia.gateway.engine import Gateway

    gw = Gateway(gateway_settings(upstream_url, aliases=FUZZ_ALIASES, cache={"enabled": cache_on}))
    await gw.start()
    tally = Tally(f"in-process, cache {'on' if cache_on else 'off'}", seed, count)
    rss_before = rss_mb()
    try:
        with Driver(GatewayApp(gw), await make_keys(gw.accounts)) as driver:
            async with driver.client() as http:

                async def check(after: int) -> None:
                    health = await http.get("/health")
                    answer = await http.post(
                        "/v1/chat/completions",
                        json=chat("vllm/ok", "still there?"),
                        headers={"Authorization": f"Bearer {driver.values['USER']}"},
                    )
                    tally.health.append(
                        {
                            "after": after,
                            "health": health.status_code,
                            "chat": answer.status_code,
                            "rss_mb": rss_mb(),
                        }
                    )

                started, sent = time.perf_counter(), 0
                for sent, case in enumerate(suite(count, seed), 1):
                    tally.add(case, await driver.send(http, case), driver.secrets)
                    if sent % check_every == 0:
                        await check(sent)
                tally.elapsed = time.perf_counter() - started
                if sent % check_every:
                    await check(sent)
                reproductions = {}
                for key, seen in list(tally.findings.items())[:SHRUNK]:

                    async def still_fails(candidate: Case, key: str = key) -> bool:
                        again = await driver.send(http, candidate)
                        found = problems(candidate, again, driver.secrets)
                        return bool(found) and finding_key(candidate, again, found) == key

                    reproductions[key] = (await shrink(seen[0][0], still_fails)).describe()
    finally:
        await gw.close()
    out = tally.report(reproductions)
    out["rss_mb"] = {"before": rss_before, "after": rss_mb()}
    out["catalog_models_after"] = len(gw.catalog.models)
    return out


async def in_process(args: argparse.Namespace) -> list[dict[str, Any]]:
    from fakes.upstream import FakeUpstream

    upstream = FakeUpstream()
    await upstream.start()
    halves = {"off": [False], "on": [True], "both": [False, True]}[args.cache]
    per_half = args.count // len(halves)
    try:
        return [
            await _in_process_half(upstream.url, on, args.seed + int(on), per_half, args.check_every)
            for on in halves
        ]
    finally:
        await upstream.close()


# -- a real server over raw HTTP/1.1 ---------------------------------------------------------------------

#: headers the raw client sets itself (a fuzzed Content-Length would make a real server wait for bytes)
_OWN = {"host", "content-length", "connection", "transfer-encoding", "expect"}


async def send_raw(host: str, port: int, case: Case, wait_s: float) -> Outcome:
    head = [f"{case.method} {case.path or '/'} HTTP/1.1", f"Host: {host}:{port}", "Connection: close"]
    head += [f"{k}: {v}" for k, v in case.headers if k.lower() not in _OWN and k != CHUNKS]
    chunks = dict(case.headers).get(CHUNKS)
    if chunks is None:
        head.append(f"Content-Length: {len(case.body)}")
        payload = case.body
    else:  # the body as a chunked upload, in the pieces the case asks for
        head.append("Transfer-Encoding: chunked")
        parts = [p for p in pieces(case.body, int(chunks)) if p]
        payload = b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in parts) + b"0\r\n\r\n"
    started = time.perf_counter()
    try:
        async with asyncio.timeout(wait_s):
            data = await _exchange(
                host, port, "\r\n".join(head).encode("latin-1", "replace") + b"\r\n\r\n" + payload
            )
    except TimeoutError:
        return Outcome(599, [], b"", [f"no answer within {wait_s:g}s"], time.perf_counter() - started)
    except OSError as exc:
        return Outcome(598, [], b"", [f"connection failed: {exc}"], time.perf_counter() - started)
    seconds = time.perf_counter() - started
    raw_head, _, body = data.partition(b"\r\n\r\n")
    lines = raw_head.decode("latin-1").split("\r\n")
    try:
        status = int(lines[0].split()[1])
    except (IndexError, ValueError):
        return Outcome(597, [], data[:300], [f"no HTTP status line: {data[:80]!r}"], seconds)
    headers = [(k.strip().lower(), v.strip()) for k, _, v in (line.partition(":") for line in lines[1:])]
    if dict(headers).get("transfer-encoding", "").lower() == "chunked":
        body = _dechunk(body)
    return Outcome(status, headers, body, [], seconds)


async def _exchange(host: str, port: int, request: bytes) -> bytes:
    """Send ``request`` while reading the answer: a server may answer (413, 404) before it has read a
    large body and close the connection; the answer read so far is kept even if the socket is reset."""
    reader, writer = await asyncio.open_connection(host, port)

    async def upload() -> None:
        writer.write(request)
        await writer.drain()

    sending = asyncio.create_task(upload())
    received: list[bytes] = []
    try:
        while chunk := await reader.read(65536):
            received.append(chunk)
    except OSError:
        if not received:
            raise
    finally:
        sending.cancel()
        with contextlib.suppress(asyncio.CancelledError, OSError):
            await sending
        writer.close()
    return b"".join(received)


def _dechunk(data: bytes) -> bytes:
    out, rest = [], data
    while rest:
        size_line, _, rest = rest.partition(b"\r\n")
        size = int(size_line.split(b";")[0] or b"0", 16)
        if size == 0:
            break
        out.append(rest[:size])
        rest = rest[size + 2 :]
    return b"".join(out)


async def against_url(args: argparse.Namespace) -> list[dict[str, Any]]:
    url = urlsplit(args.url)
    host, port = url.hostname or "127.0.0.1", url.port or 80
    admin = args.admin_key or args.key
    values = {"ADMIN": admin, "USER": args.key, "BUDGET": args.budget_key or args.key, "VICTIM": "key_none"}
    values["REQUEST_ID"] = "req_none"
    created = await send_raw(
        host,
        port,
        Case(
            "POST",
            "/admin/keys",
            (("authorization", f"Bearer {admin}"), ("content-type", "application/json")),
            b'{"name": "fuzz-victim"}',
        ),
        args.timeout,
    )
    if created.status == 201:  # a throwaway key for the admin cases to update and revoke
        victim = json.loads(created.body)
        values["VICTIM"], values["VICTIM_SECRET"] = victim["id"], victim["key"]
    secrets = tuple(v for k, v in values.items() if k in ("ADMIN", "USER", "BUDGET", "VICTIM_SECRET"))
    tally = Tally(f"{args.url}", args.seed, args.count)

    async def check(after: int) -> None:
        auth = (("authorization", f"Bearer {args.key}"),)
        health = await send_raw(host, port, Case("GET", "/health", auth, b""), args.timeout)
        row: dict[str, Any] = {"after": after, "health": health.status}
        if args.chat_model:
            body = json.dumps({"model": args.chat_model, "messages": [{"role": "user", "content": "hi"}]})
            heads = (*auth, ("content-type", "application/json"))
            answer = await send_raw(
                host, port, Case("POST", "/v1/chat/completions", heads, body.encode()), 60
            )
            row["chat"] = answer.status
        tally.health.append(row)

    started, sent = time.perf_counter(), 0
    for sent, case in enumerate(suite(args.count, args.seed), 1):
        outcome = await send_raw(host, port, fill(case, values), args.timeout)
        tally.add(case, outcome, secrets)  # the case with its placeholders: no secret in the report
        rid = dict(outcome.headers).get("x-request-id")
        if rid and outcome.status == 200:
            values["REQUEST_ID"] = rid
        if sent % args.check_every == 0:
            await check(sent)
    tally.elapsed = time.perf_counter() - started
    if sent % args.check_every:
        await check(sent)
    return [tally.report({})]


# -- main --------------------------------------------------------------------------------------------------


def machine() -> str:
    return f"{os.cpu_count()} cores, Python {platform.python_version()}, {platform.machine()}"


def summary(halves: list[dict[str, Any]]) -> dict[str, Any]:
    by_status: Counter[str] = Counter()
    keys: Counter[str] = Counter()
    for half in halves:
        by_status.update(half["by_status"])
        keys.update({f["key"]: f["cases"] for f in half["findings"]})
    healthy = all(
        h["health"] == 200 and h.get("chat", 200) == 200 for half in halves for h in half["health_checks"]
    )
    return {
        "cases": sum(h["cases"] for h in halves),
        "elapsed_s": round(sum(h["elapsed_s"] for h in halves), 2),
        "by_status": dict(sorted(by_status.items())),
        "five_xx": sum(h["five_xx"] for h in halves),
        "distinct_findings": len(keys),
        "findings": dict(keys.most_common()),
        "healthy_after_every_check": healthy,
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--count", type=int, default=20_000, help="cases in all (split between the halves)")
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--cache", choices=("off", "on", "both"), default="both", help="in-process halves")
    parser.add_argument("--check-every", type=int, default=1000, help="cases between health checks")
    parser.add_argument("--url", help="fuzz a running server instead (e.g. http://127.0.0.1:8080)")
    parser.add_argument("--key", help="with --url: a normal key (sk-sophia-…)")
    parser.add_argument("--admin-key", help="with --url: an admin key (default: --key)")
    parser.add_argument("--budget-key", help="with --url: a key with budgets (default: --key)")
    parser.add_argument("--chat-model", help="with --url: a model for the health check's chat call")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds per case")
    parser.add_argument("--output", type=Path, help="write the report (JSON) here")
    args = parser.parse_args()
    if args.url and not args.key:
        parser.error("--url needs --key")

    # Logged tracebacks reach the driver's collector (findings); none is printed.
    logging.getLogger().addHandler(logging.NullHandler())
    logging.getLogger().setLevel(logging.ERROR)
    if not args.url:
        # as the tests do: no developer settings or vendor keys
        for name in list(os.environ):
            if name.startswith("SOPHIA_") or name.endswith("_API_KEY") or name == "HF_TOKEN":
                del os.environ[name]
        os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    with tempfile.TemporaryDirectory(prefix="sophia-fuzz-") as home:
        os.environ["SOPHIA_HOME"] = home  # as the tests do: a fresh Sophia home (unused with --url)
        halves = asyncio.run(against_url(args) if args.url else in_process(args))
    report = {
        "date": datetime.now(UTC).date().isoformat(),
        "machine": machine(),
        "mode": "url" if args.url else "in-process",
        "seed": args.seed,
        "count": args.count,
        "note": "count = random cases (split between the halves); each half first sends the edge sweep",
        "summary": summary(halves),
        "halves": halves,
    }
    text = json.dumps(report, indent=2, ensure_ascii=False)
    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(text + "\n")
    print(json.dumps(report["summary"], indent=2, ensure_ascii=False))
    return (
        1
        if report["summary"]["distinct_findings"] or not report["summary"]["healthy_after_every_check"]
        else 0
    )


if __name__ == "__main__":
    sys.exit(main())
