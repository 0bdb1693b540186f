"""End to end: `sophia mcp serve data` as a real process, driven by the MCP Inspector CLI with a key: every
tool is listed and called, and a crawl of the local test site shows its progress and is cancelled."""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Iterator
from typing import Any

import pytest
from mcp_support import start_http_server
from pytest_httpserver import HTTPServer
from test_mcp_e2e import inspector, make_keys, needs_npx

from collect.site import Site
from fakes.process import free_port, write_config

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def site_server() -> Iterator[HTTPServer]:
    server = HTTPServer(host="127.0.0.1", port=0)
    server.start()
    yield server
    server.clear()
    server.stop()


@pytest.fixture(scope="module")
def data_server(
    tmp_path_factory: pytest.TempPathFactory, site_server: HTTPServer
) -> Iterator[tuple[str, str, Site]]:
    home = tmp_path_factory.mktemp("data-e2e")
    site = Site(site_server, slow=0.8)
    config = write_config(
        home / "sophia.yaml",
        {
            "home": str(home / "home"),
            "providers": {"local": {"enabled": False}},
            "cache": {"enabled": False},
            "collect": {"allow": [f"127.0.0.1:{site_server.port}"], "delay": 1.0},
        },
    )
    key, _ = make_keys(config)
    port = free_port()
    proc = start_http_server("data", config, port)
    yield f"http://127.0.0.1:{port}/mcp", key, site
    os.killpg(proc.pid, signal.SIGTERM)
    proc.communicate(timeout=15)


def call(server: str, key: str, tool: str, **args: Any) -> dict[str, Any]:
    flags = [a for k, v in args.items() for a in ("--tool-arg", f"{k}={v}")]
    done = inspector(
        server, "--method", "tools/call", "--tool-name", tool, *flags,
        "--header", f"Authorization: Bearer {key}", "--format", "json", "-q",
    )  # fmt: skip
    assert done.returncode == 0, (done.stdout + done.stderr)[-2000:]
    result: dict[str, Any] = json.loads(done.stdout)["result"]
    return result


@needs_npx
def test_inspector_crawls_the_local_site_shows_progress_and_cancels(
    data_server: tuple[str, str, Site],
) -> None:
    url, key, site = data_server
    done = inspector(url, "--method", "tools/list", "--header", f"Authorization: Bearer {key}")
    assert done.returncode == 0, done.stderr[-2000:]
    assert {t["name"] for t in json.loads(done.stdout)["tools"]} >= {
        "crawl_site",
        "job_status",
        "cancel_crawl",
    }

    started = call(url, key, "crawl_site", url=site.url("/"), max_pages=30, wait_s=1)
    crawl = started["structuredContent"]
    assert started["isError"] is False and crawl["status"] == "running" and crawl["job_id"]
    seen = []
    for _ in range(20):
        status = call(url, key, "job_status", job_id=crawl["job_id"])["structuredContent"]
        seen.append(status["seen"] - status["pending"])
        if seen[-1] >= 1:
            break
        time.sleep(0.5)
    assert seen[-1] >= 1 and status["status"] == "running"  # it moves while we watch
    cancelled = call(url, key, "cancel_crawl", job_id=crawl["job_id"])["structuredContent"]
    assert cancelled["status"] == "cancelled"
    for _ in range(15):  # jobs already waiting for their politeness slot end without fetching
        after = call(url, key, "job_status", job_id=crawl["job_id"])["structuredContent"]
        if after["pending"] == 0:
            break
        time.sleep(1)
    assert after["status"] == "cancelled" and after["pending"] == 0
    assert sum(site.fetched().values()) < 11  # the rest of the site was never fetched


@needs_npx
@pytest.mark.parametrize(
    ("tool", "args"),
    [
        ("fetch_page", {"path": "/a"}),
        ("search_collected", {"query": "Section A"}),
        ("search_web", {"query": "Section A"}),
        ("news", {}),
        ("find_leads", {"k": 3}),
    ],
)
def test_inspector_calls_the_other_tools(
    data_server: tuple[str, str, Site], tool: str, args: dict[str, Any]
) -> None:
    url, key, site = data_server
    if "path" in args:
        args = {"url": site.url(args.pop("path"))}
    result = call(url, key, tool, **args)
    assert result["isError"] is False, result
    assert result["structuredContent"] is not None
