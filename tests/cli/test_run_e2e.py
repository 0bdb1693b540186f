"""End to end: `sophia run` with the real local model, driven by the official openai SDK."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest

from fakes.process import Server, free_port, sophia, write_config

pytestmark = [pytest.mark.slow, pytest.mark.local_model]
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, dict[str, str], str]]:
    tmp = tmp_path_factory.mktemp("e2e")
    config = write_config(tmp / "sophia.yaml", {"log_level": "warning", "observe": {"probe_interval": 1}})
    # SOPHIA_HOME (set per test by the isolation fixture) outranks the file: pin it for the module
    env = {"SOPHIA_HOME": str(tmp / "home")}
    mcp_port, data_port = free_port(), free_port()
    server = Server(
        config, free_port(), "--mcp-port", f"ai={mcp_port}", "--mcp-port", f"data={data_port}", env=env
    )
    server.mcp_url = f"http://127.0.0.1:{mcp_port}/mcp"  # type: ignore[attr-defined]
    server.data_url = f"http://127.0.0.1:{data_port}/mcp"  # type: ignore[attr-defined]
    server.config_path = config  # type: ignore[attr-defined]
    try:
        server.wait_ready()
        key = sophia("keys", "local", "--config", str(config), env=env).stdout.strip()
        yield server, env, key
    finally:
        output = server.stop()
        assert "Created a local admin key" in output


def test_first_run_created_a_local_admin_key(running: tuple[Server, dict[str, str], str]) -> None:
    _, env, key = running
    assert key.startswith("sk-sophia-")
    listed = json.loads(sophia("keys", "list", "--json", env=env).stdout)
    assert [(k["name"], k["admin"]) for k in listed] == [("local-admin", True)]


def test_openai_sdk_chat_stream_embeddings_models(running: tuple[Server, dict[str, str], str]) -> None:
    server, _, key = running
    client = openai.OpenAI(base_url=f"{server.url}/v1", api_key=key, max_retries=0)
    reply = client.chat.completions.create(
        model="local", messages=[{"role": "user", "content": "Say hello."}], max_tokens=16
    )
    assert reply.choices[0].message.content
    assert reply.usage is not None and reply.usage.completion_tokens > 0

    stream = client.chat.completions.create(
        model="local",
        messages=[{"role": "user", "content": "Count to three."}],
        max_tokens=12,
        stream=True,
        stream_options={"include_usage": True},
    )
    text, usage = "", None
    for chunk in stream:
        if chunk.choices:
            text += chunk.choices[0].delta.content or ""
        usage = chunk.usage or usage
    assert text
    assert usage is not None and usage.prompt_tokens > 0

    emb = client.embeddings.create(model="local/all-minilm-l6-v2", input=["hello", "world"])
    assert [len(d.embedding) for d in emb.data] == [384, 384]

    ids = {m.id for m in client.models.list()}
    assert {"local", "local/all-minilm-l6-v2", "sophia/smart", "sophia/fast"} <= ids
    # with no provider key, the alias falls back to the local model
    smart = client.chat.completions.with_raw_response.create(
        model="sophia/smart", messages=[{"role": "user", "content": "Hi"}], max_tokens=8
    )
    assert smart.headers["x-sophia-model"] == "local"


def test_readme_quick_start_snippet_runs(running: tuple[Server, dict[str, str], str]) -> None:
    server, _, key = running
    (snippet,) = re.findall(
        r"```python\n(.*?)```", (ROOT / "README.md").read_text(encoding="utf-8"), flags=re.S
    )
    assert "http://127.0.0.1:8090/v1" in snippet
    assert "<the local key>" in snippet
    code = snippet.replace("http://127.0.0.1:8090/v1", f"{server.url}/v1").replace("<the local key>", key)
    exec(compile(code, "README.md", "exec"), {})


def test_usage_report_reads_the_ledger(running: tuple[Server, dict[str, str], str]) -> None:
    server, env, key = running
    client = openai.OpenAI(base_url=f"{server.url}/v1", api_key=key, max_retries=0)
    client.chat.completions.create(
        model="local",
        messages=[{"role": "user", "content": "Hi"}],
        max_tokens=4,
        metadata={"task_type": "greeting"},
    )
    report = httpx.get(
        f"{server.url}/admin/usage",
        params={"group_by": "model,task_type"},
        headers={"Authorization": f"Bearer {key}"},
    )
    rows = report.json()["data"]
    assert any(r["model"] == "local" and r["task_type"] == "greeting" for r in rows)
    cli = sophia("usage", "--by", "model", "--json", env=env)
    assert cli.returncode == 0, cli.stderr
    assert any(r["model"] == "local" and r["requests"] >= 1 for r in json.loads(cli.stdout))


def test_the_ai_mcp_server_runs_beside_the_gateway(running: tuple[Server, dict[str, str], str]) -> None:
    server, _, key = running
    url = server.mcp_url  # type: ignore[attr-defined]
    refused = httpx.post(url, json={})
    assert refused.status_code == 401
    assert "resource_metadata" in refused.headers["www-authenticate"]
    init = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {
            "protocolVersion": "2025-11-25",
            "capabilities": {},
            "clientInfo": {"name": "t", "version": "1"},
        },
    }
    headers = {"Authorization": f"Bearer {key}", "Accept": "application/json, text/event-stream"}
    resp = httpx.post(url, json=init, headers=headers)
    assert resp.status_code == 200, resp.text
    assert "sophia" in resp.text.lower()


def test_the_data_mcp_server_runs_beside_the_gateway(running: tuple[Server, dict[str, str], str]) -> None:
    server, _, key = running
    url = server.data_url  # type: ignore[attr-defined]
    headers = {"Authorization": f"Bearer {key}", "Accept": "application/json, text/event-stream"}
    init = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {
            "protocolVersion": "2025-11-25",
            "capabilities": {},
            "clientInfo": {"name": "t", "version": "1"},
        },
    }
    resp = httpx.post(url, json=init, headers=headers)
    assert resp.status_code == 200, resp.text
    assert "Data Intelligence" in resp.text


def test_the_monitor_probes_every_served_server(running: tuple[Server, dict[str, str], str]) -> None:
    import time

    server, env, _ = running
    deadline = time.monotonic() + 30
    while True:
        config = server.config_path  # type: ignore[attr-defined]
        result = sophia("observe", "uptime", "--config", str(config), "--json", env=env)
        assert result.returncode == 0, result.stderr
        report = {r["service"]: r for r in json.loads(result.stdout)}
        if {"gateway", "mcp:ai", "mcp:data"} <= set(report) or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert {"gateway", "mcp:ai", "mcp:data"} <= set(report), report
    assert report["gateway"]["availability"]["1h"] == 1.0 and report["gateway"]["open_incident"] is None
