"""End to end: `sophia demo-data` then `sophia mcp serve bi` as real processes, driven by the MCP Inspector CLI
with a key: every tool is listed and called."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from mcp_support import sophia_cli, start_http_server
from test_mcp_e2e import inspector, make_keys, needs_npx

from fakes.process import free_port, write_config

pytestmark = pytest.mark.slow

#: one call per tool, with arguments an agent would send
CALLS = {
    "list_datasets": [],
    "describe_table": ["table=deals", "sample_rows=2"],
    "run_sql": ["sql=SELECT region, count(*) AS accounts FROM accounts GROUP BY region ORDER BY region"],
    "list_metrics": ["search=win"],
    "query_metrics": ['metrics=["bookings"]', "grain=quarter"],
    "kpi_report": ["period=quarter", "end=2026-08-15"],
    "search_documents": ["query=integration with Yardi", "k=3"],
    "ask_data": ["question=What was the win rate by region last year?"],
    "chart": ['metrics=["win_rate"]', 'group_by=["account__region"]', "png=false"],
}


@pytest.fixture(scope="module")
def bi_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    home = tmp_path_factory.mktemp("bi-e2e")
    config = write_config(
        home / "sophia.yaml",
        {"home": str(home / "home"), "providers": {"local": {"enabled": False}}, "cache": {"enabled": False}},
    )
    built = subprocess.run(
        sophia_cli("demo-data", "--scale", "0.02", "--config", str(config)),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert built.returncode == 0, built.stderr[-2000:]
    assert "indexed" in built.stdout
    key, _ = make_keys(config)
    port = free_port()
    proc = start_http_server("bi", config, port)
    yield f"http://127.0.0.1:{port}/mcp", key
    os.killpg(proc.pid, signal.SIGTERM)
    proc.communicate(timeout=15)


@needs_npx
def test_inspector_lists_every_bi_tool(bi_server: tuple[str, str]) -> None:
    url, key = bi_server
    done = inspector(url, "--method", "tools/list", "--header", f"Authorization: Bearer {key}")
    assert done.returncode == 0, done.stderr[-2000:]
    assert {t["name"] for t in json.loads(done.stdout)["tools"]} == set(CALLS)


@needs_npx
@pytest.mark.parametrize("tool", sorted(CALLS))
def test_inspector_calls_every_bi_tool(bi_server: tuple[str, str], tool: str) -> None:
    url, key = bi_server
    args = [a for arg in CALLS[tool] for a in ("--tool-arg", arg)]
    done = inspector(
        url, "--method", "tools/call", "--tool-name", tool, *args,
        "--header", f"Authorization: Bearer {key}", "--format", "json", "-q",
    )  # fmt: skip
    assert done.returncode == 0, (done.stdout + done.stderr)[-2000:]
    result = json.loads(done.stdout)["result"]
    assert result["isError"] is False, result
    assert result["structuredContent"]


def test_demo_data_if_missing_does_nothing_twice(tmp_path: Path) -> None:
    config = write_config(tmp_path / "sophia.yaml", {"home": str(tmp_path / "home")})
    path = tmp_path / "w.duckdb"
    path.write_bytes(b"")
    done = subprocess.run(
        sophia_cli("demo-data", "--if-missing", "--path", str(path), "--config", str(config)),
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0 and "nothing to do" in done.stdout
    assert path.read_bytes() == b""
