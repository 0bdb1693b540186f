"""No input gets a 5xx (issue 22): grammar-fuzzed requests against the gateway, in-process.

The cases come from ``fakes.fuzz``: valid request shapes for every route (chat, embeddings, the
admin API), most of them then mutated (types, numbers, sizes, nesting, unicode, bytes, headers,
methods, paths). Every answer must be below 500 (or an upstream failure the fake upstream was told
to produce), an OpenAI error object when it is an error, with no traceback and no key's secret;
after the run the gateway still answers ``/health`` and serves a normal chat call. The response
cache is off for one half of the run and on for the other (nesting bugs once showed only with it).

A failure lists each distinct finding once, shrunk to a small reproduction, with the exception
and where in ``src/`` it was raised. ``benchmarks/fuzz/run.py`` runs the same cases, many more.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from fakes.fuzz import (
    FUZZ_ALIASES,
    SEED,
    Case,
    Driver,
    Outcome,
    finding_key,
    make_keys,
    problems,
    shrink,
    suite,
)
from fakes.helpers import chat, gateway_settings
from fakes.upstream import FakeUpstream
from sophia.gateway.app import GatewayApp
from sophia.gateway.engine import Gateway

#: random cases per half, after the edge sweep (about 4 s a half on a 2-core machine; the benchmark
#: runs thousands)
COUNT = 1000
#: findings shrunk and shown in full (the rest are counted)
SHOWN = 10


@pytest.fixture(params=[False, True], ids=["cache-off", "cache-on"])
async def fuzzed(request: pytest.FixtureRequest, upstream: FakeUpstream) -> AsyncIterator[tuple[Driver, int]]:
    """A started gateway (cache off or on), its keys as the cases' placeholders, and the half's seed."""
    cache_on: bool = request.param
    gw = Gateway(gateway_settings(upstream.url, aliases=FUZZ_ALIASES, cache={"enabled": cache_on}))
    await gw.start()
    with Driver(GatewayApp(gw), await make_keys(gw.accounts)) as driver:
        yield driver, SEED + int(cache_on)
    await gw.close()


async def _run(driver: Driver, http: httpx.AsyncClient, seed: int) -> dict[str, list[tuple[Case, Outcome]]]:
    findings: dict[str, list[tuple[Case, Outcome]]] = {}
    for case in suite(COUNT, seed):
        outcome = await driver.send(http, case)
        found = problems(case, outcome, driver.secrets)
        if found:
            findings.setdefault(finding_key(case, outcome, found), []).append((case, outcome))
    return findings


async def _reproduction(
    driver: Driver, http: httpx.AsyncClient, key: str, seen: list[tuple[Case, Outcome]]
) -> str:
    """The finding, with its first case shrunk to what still fails the same way."""
    first, outcome = seen[0]

    async def still_fails(candidate: Case) -> bool:
        again = await driver.send(http, candidate)
        found = problems(candidate, again, driver.secrets)
        return bool(found) and finding_key(candidate, again, found) == key

    small = await shrink(first, still_fails, budget=120)
    again = await driver.send(http, small)
    return (
        f"* {key}  ({len(seen)} case(s); first made by: {first.label})\n"
        f"    {small.describe()}\n"
        f"    -> {again.status} {again.body[:300]!r}\n"
        f"    problems: {problems(small, again, driver.secrets) or problems(first, outcome, driver.secrets)}"
    )


async def _still_serves(http: httpx.AsyncClient, user: str) -> list[str]:
    broken = []
    health = await http.get("/health")
    if health.status_code != 200:
        broken.append(f"/health answered {health.status_code} after the run: {health.text[:200]}")
    resp = await http.post(
        "/v1/chat/completions",
        json=chat("vllm/ok", "still there?"),
        headers={"Authorization": f"Bearer {user}"},
    )
    if resp.status_code != 200 or "echo: still there?" not in resp.text:
        broken.append(f"a normal chat call answered {resp.status_code} after the run: {resp.text[:200]}")
    return broken


async def test_no_fuzzed_request_gets_a_5xx_a_malformed_error_or_a_leak(fuzzed: tuple[Driver, int]) -> None:
    driver, seed = fuzzed
    async with driver.client() as http:
        findings = await _run(driver, http, seed)
        shown = list(findings.items())[:SHOWN]
        report = [await _reproduction(driver, http, key, seen) for key, seen in shown]
        report += [f"* {key}  ({len(seen)} case(s))" for key, seen in list(findings.items())[SHOWN:]]
        report += await _still_serves(http, driver.values["USER"])
    assert not report, f"{len(findings)} distinct finding(s) (seed {seed}):\n" + "\n".join(report)


async def test_the_grammars_valid_chat_and_embeddings_bodies_are_served(upstream: FakeUpstream) -> None:
    """The grammar starts from valid shapes: unmutated, the gateway serves every one (else the
    fuzzer would mostly test the first check that refuses them)."""
    import random

    from fakes.fuzz import chat_body, embeddings_body, encode

    gw = Gateway(gateway_settings(upstream.url, aliases=FUZZ_ALIASES))
    await gw.start()
    try:
        user, _ = await gw.accounts.keys.create(name="fuzz-user", team="qa")
        rng = random.Random(SEED)
        refused: list[str] = []
        transport = httpx.ASGITransport(app=GatewayApp(gw))
        headers = {"Authorization": f"Bearer {user}", "Content-Type": "application/json"}
        async with httpx.AsyncClient(
            transport=transport, base_url="http://sophia.test", headers=headers
        ) as http:
            for path, make in [("/v1/chat/completions", chat_body)] * 60 + [
                ("/v1/embeddings", embeddings_body)
            ] * 20:
                body: Any = make(rng)
                resp = await http.post(path, content=encode(body))
                if resp.status_code != 200:
                    refused.append(f"{path} {body!r:.300} -> {resp.status_code} {resp.text[:200]}")
    finally:
        await gw.close()
    assert not refused, "\n".join(refused)
