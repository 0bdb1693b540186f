"""Rotation under load, end to end: ``sophia --env production run`` serving traffic while a provider key and
the ledger database's password are rotated again and again with ``sophia env rotate``.

What runs: a PostgreSQL that checks passwords (SCRAM; tests/fakes/scram_postgres.py) holding the ledger
and the keys; a fake OpenAI-compatible provider that accepts only the keys it was told are valid (so a
call made with a revoked key fails); the real server in its own process, its settings from a
``production`` environment importing ``base`` in the local store; N clients sending chat calls without
pause. Every ``--every`` seconds one rotation, alternating:

- the provider key: a new key is issued at the provider (both valid), ``sophia env rotate
  sophia.providers.openai.api_key --stdin --env base``, and half a second after the provider sees the new key
  in use the old one is revoked;
- the ledger password: ``sophia env rotate ledgerdb --env production`` (two roles take turns).

Reported: requests, failures (any non-200), rotations, the server's database sessions by role after each
database rotation, latency p50/p99 in the 2 s after each rotation beside the rest.

    .venv/bin/python benchmarks/secrets/rotation.py [--seconds 60] [--every 5] [--clients 8]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import asyncpg
import httpx

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests"))  # the SCRAM server and the fake provider live with the tests

from fakes.process import free_port, wait_healthy  # noqa: E402
from fakes.scram_postgres import ScramServer, scram_postgres, two_login_roles  # noqa: E402
from fakes.upstream import FakeUpstream  # noqa: E402

SOPHIA = [sys.executable, "-m", "sophia"]
#: seconds between the provider seeing the new key and the old one's revocation (the end of the overlap)
GRACE = 0.5


def note(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


async def sophia(env: dict[str, str], *args: str, stdin: str | None = None) -> str:
    note("sophia " + " ".join(a if len(a) < 40 else a[:37] + "..." for a in args))
    proc = await asyncio.create_subprocess_exec(
        *SOPHIA, *args, env=env, stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await proc.communicate(stdin.encode() if stdin is not None else None)
    if proc.returncode != 0:
        raise RuntimeError(f"sophia {' '.join(args[:3])} failed: {err.decode()[-500:]}")
    return out.decode()


async def sessions(server: ScramServer) -> dict[str, int]:
    admin = await asyncpg.connect(server.url())
    try:
        rows = await admin.fetch(
            "SELECT usename, count(*) AS n FROM pg_stat_activity WHERE datname = 'sophia' GROUP BY usename"
        )
    finally:
        await admin.close()
    return {r["usename"]: r["n"] for r in rows}


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


async def main(args: argparse.Namespace) -> dict[str, Any]:
    upstream = FakeUpstream()
    await upstream.start()
    first_key = "fake-provider-key-" + secrets.token_hex(8)
    upstream.valid_keys = {first_key}
    home = Path(tempfile.mkdtemp(prefix="sophia-rotation-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SOPHIA_", "PULUMI_"))}
    env["SOPHIA_HOME"] = str(home)
    with scram_postgres() as pg:
        await two_login_roles(pg)
        await sophia(env, "env", "init")
        await sophia(
            env,
            "env",
            "set",
            "sophia.providers.openai.base_url",
            f"{upstream.url}/openai/v1",
            "--env",
            "base",
        )
        await sophia(
            env,
            "env",
            "set",
            "sophia.providers.openai.api_key",
            "--secret",
            "--stdin",
            "--env",
            "base",
            stdin=first_key,
        )
        await sophia(env, "env", "set", "sophia.providers.local.enabled", "false", "--env", "base")
        rotate = {
            "fn::rotate::postgres": {
                "inputs": {"admin_url": {"fn::secret": pg.url()}, "users": ["sophia_a", "sophia_b"]}
            }
        }
        await sophia(env, "env", "set", "ledgerdb", json.dumps(rotate), "--env", "production")
        url = f"postgresql://${{ledgerdb.current.user}}:${{ledgerdb.current.password}}@127.0.0.1:{pg.port}/sophia"
        await sophia(env, "env", "set", "sophia.storage.database_url", url, "--string", "--env", "production")
        await sophia(env, "env", "rotate", "ledgerdb", "--env", "production")  # the first credentials
        port = free_port()
        server = await asyncio.create_subprocess_exec(
            *SOPHIA, "--env", "production", "run", "--port", str(port), "--no-mcp", env=env,
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        try:
            await wait_healthy(f"http://127.0.0.1:{port}/health")
            key = (await sophia(env, "--env", "production", "keys", "local")).strip().split()[-1]
            results: list[tuple[float, float, int]] = []  # (start, seconds, status)
            rotations: list[dict[str, Any]] = []
            stop = asyncio.Event()
            t0 = time.monotonic()

            async def client_loop() -> None:
                headers = {"Authorization": f"Bearer {key}"}
                async with httpx.AsyncClient(
                    base_url=f"http://127.0.0.1:{port}", headers=headers, timeout=30
                ) as c:
                    while not stop.is_set():
                        # every question new: the response cache (on, as make run starts it) never answers
                        text = f"question {len(results)} {secrets.token_hex(4)}: how many open deals?"
                        body = {
                            "model": "openai/gpt-4.1-mini",
                            "messages": [{"role": "user", "content": text}],
                        }
                        start = time.monotonic()
                        try:
                            status = (await c.post("/v1/chat/completions", json=body)).status_code
                        except httpx.HTTPError:
                            status = 0
                        results.append((start - t0, time.monotonic() - start, status))

            async def rotator() -> None:
                current = first_key
                n = 0
                while time.monotonic() - t0 < args.seconds - args.every:
                    await asyncio.sleep(args.every)
                    n += 1
                    at = time.monotonic() - t0
                    if n % 2:
                        new = "fake-provider-key-" + secrets.token_hex(8)
                        upstream.valid_keys = {current, new}
                        seen = len(upstream.requests)
                        await sophia(
                            env,
                            "env",
                            "rotate",
                            "sophia.providers.openai.api_key",
                            "--stdin",
                            "--env",
                            "base",
                            stdin=new,
                        )
                        while not any(
                            {k.lower(): v for k, v in r.headers.items()}.get("authorization")
                            == f"Bearer {new}"
                            for r in upstream.requests[seen:]
                        ):
                            if time.monotonic() - t0 - at > 30:
                                codes = sorted({st for _, _, st in results[-50:]})
                                raise RuntimeError(
                                    f"the new key was not used within 30 s (recent statuses {codes})"
                                )
                            await asyncio.sleep(0.05)
                        picked = time.monotonic() - t0 - at
                        await asyncio.sleep(GRACE)  # calls that took the old key just before are on their way
                        upstream.valid_keys = {new}  # the old key is revoked at the provider
                        current = new
                        rotations.append(
                            {"at": round(at, 2), "what": "provider key", "picked_up_s": round(picked, 2)}
                        )
                    else:
                        await sophia(env, "env", "rotate", "ledgerdb", "--env", "production")
                        await asyncio.sleep(min(3.0, args.every - 0.5))
                        rotations.append(
                            {
                                "at": round(at, 2),
                                "what": "ledger password",
                                "sessions_after": await sessions(pg),
                            }
                        )

            clients = [asyncio.create_task(client_loop()) for _ in range(args.clients)]
            await rotator()
            stop.set()
            await asyncio.gather(*clients)
        finally:
            server.terminate()
            _, err = await server.communicate()
        await upstream.close()
    starts = [r["at"] for r in rotations]
    near = [s for t, s, _ in results if any(0 <= t - a <= 2 for a in starts)]
    rest = [s for t, s, _ in results if not any(0 <= t - a <= 2 for a in starts)]
    failures = [st for _, _, st in results if st != 200]
    return {
        "date": time.strftime("%Y-%m-%d"),
        "seconds": args.seconds,
        "clients": args.clients,
        "requests": len(results),
        "failed": len(failures),
        "failed_statuses": sorted(set(failures)),
        "provider_calls_refused": upstream.refused,
        "rotations": rotations,
        "p50_ms_after_rotation": round(pct(near, 0.5), 1),
        "p99_ms_after_rotation": round(pct(near, 0.99), 1),
        "p50_ms_otherwise": round(pct(rest, 0.5), 1),
        "p99_ms_otherwise": round(pct(rest, 0.99), 1),
        "requests_per_s": round(len(results) / args.seconds, 1),
        "server_log_tail": err.decode()[-400:] if failures else "",
        "mean_ms": round(statistics.fmean(s for _, s, _ in results) * 1000, 1) if results else None,
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--every", type=float, default=5)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument(
        "--out", type=Path, default=ROOT / "benchmarks" / "secrets" / "results" / "rotation.json"
    )
    report = asyncio.run(main(parser.parse_args()))
    out = parser.parse_args().out
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=1) + "\n")
    print(json.dumps(report, indent=1))
