"""`sophia ide install` merges IDE configs without clobbering them or leaking keys; `sophia ide check` runs them."""

from __future__ import annotations

import asyncio
import json
import stat
from pathlib import Path

import pytest
from typer.testing import CliRunner

from sophia.accounts.keys import KeyStore
from sophia.cli.ide import app
from sophia.settings import load_settings

runner = CliRunner()


@pytest.fixture(autouse=True)
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    user_home = tmp_path / "user-home"
    user_home.mkdir()
    monkeypatch.setenv("HOME", str(user_home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(user_home / ".config"))
    monkeypatch.delenv("SOPHIA_API_KEY", raising=False)
    return user_home


def install(*args: str) -> str:
    result = runner.invoke(app, ["install", *args])
    assert result.exit_code == 0, result.output
    return result.output


def keys() -> list[tuple[str, tuple[str, ...] | None]]:
    async def go() -> list[tuple[str, tuple[str, ...] | None]]:
        store = await KeyStore.open(load_settings().database_url)
        try:
            return [(k.name, k.allowed_tools) for k in await store.list()]
        finally:
            await store.close()

    return asyncio.run(go())


def test_cursor_project_config_is_merged_and_refers_to_the_key(tmp_path: Path) -> None:
    config = tmp_path / ".cursor" / "mcp.json"
    config.parent.mkdir()
    config.write_text(json.dumps({"mcpServers": {"github": {"command": "gh-mcp"}}, "theme": "dark"}))
    output = install("cursor")
    data = json.loads(config.read_text())
    assert data["theme"] == "dark" and data["mcpServers"]["github"] == {"command": "gh-mcp"}
    entry = data["mcpServers"]["sophia-ai"]
    assert entry["args"][-2:] == ["ai", "--stdio"] and Path(entry["command"]).exists()
    assert entry["env"]["SOPHIA_API_KEY"] == "${env:SOPHIA_API_KEY}"
    assert "sk-sophia-" not in config.read_text()
    assert "kept its 1 other server(s)" in output and "export SOPHIA_API_KEY=sk-sophia-" in output
    assert keys() == [("ide-cursor", ("ai/*",))]  # least privilege: this server's tools only


def test_cursor_http_entry_uses_url_and_header(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOPHIA_API_KEY", "sk-sophia-already-set")
    install("cursor", "--transport", "http")
    entry = json.loads((tmp_path / ".cursor" / "mcp.json").read_text())["mcpServers"]["sophia-ai"]
    assert entry == {
        "url": "http://127.0.0.1:8091/mcp",
        "headers": {"Authorization": "Bearer ${env:SOPHIA_API_KEY}"},
    }
    assert keys() == []  # a key is already set in the environment: none is created


def test_vscode_uses_an_input_and_reinstalling_does_not_duplicate(home: Path) -> None:
    install("vscode", "--global")
    install("vscode", "--global", "--transport", "http", "--no-create-key")
    data = json.loads((home / ".config" / "Code" / "User" / "mcp.json").read_text())
    assert data["servers"]["sophia-ai"] == {
        "type": "http",
        "url": "http://127.0.0.1:8091/mcp",
        "headers": {"Authorization": "Bearer ${input:sophia-api-key}"},
    }
    assert [i["id"] for i in data["inputs"]] == ["sophia-api-key"] and data["inputs"][0]["password"] is True


def test_claude_desktop_gets_a_generated_limited_key_in_a_private_file(home: Path) -> None:
    install("claude-desktop")
    config = home / ".config" / "Claude" / "claude_desktop_config.json"
    entry = json.loads(config.read_text())["mcpServers"]["sophia-ai"]
    assert entry["env"]["SOPHIA_API_KEY"].startswith("sk-sophia-")
    assert stat.S_IMODE(config.stat().st_mode) == 0o600
    assert keys() == [("ide-claude-desktop", ("ai/*",))]
    install("claude-desktop", "--transport", "http")
    bridge = json.loads(config.read_text())["mcpServers"]["sophia-ai"]
    assert bridge["command"] == "npx" and bridge["args"][1].startswith("mcp-remote@")
    assert bridge["env"]["SOPHIA_AUTH"].startswith("Bearer sk-sophia-")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["claude-desktop", "--project"], "no project config"),
        (["claude-desktop", "--no-create-key"], "needs one written into its config"),
        (["emacs"], "unknown client"),
        (["cursor", "--transport", "carrier-pigeon"], "--transport is stdio or http"),
    ],
)
def test_install_refuses_what_cannot_work(args: list[str], message: str) -> None:
    result = runner.invoke(app, ["install", *args])
    assert result.exit_code != 0 and message in result.output


def test_a_broken_config_is_left_untouched(tmp_path: Path) -> None:
    config = tmp_path / ".vscode" / "mcp.json"
    config.parent.mkdir()
    config.write_text("{ not json")
    result = runner.invoke(app, ["install", "vscode"])
    assert result.exit_code == 1 and "is not valid JSON" in result.output
    assert config.read_text() == "{ not json"


@pytest.mark.slow
def test_check_starts_the_configured_server_and_lists_its_tools(monkeypatch: pytest.MonkeyPatch) -> None:
    output = install("cursor")
    secret = next(line.split("=", 1)[1] for line in output.splitlines() if "export SOPHIA_API_KEY=" in line)
    monkeypatch.setenv("SOPHIA_API_KEY", secret)
    result = runner.invoke(app, ["check", "cursor"])
    assert result.exit_code == 0, result.output
    assert (
        "ok: 8 tools (generate, embed, list_models, usage_report, provider_health, cache_stats, cache_purge, route_explain)"
        in result.output
    )


def test_check_reports_a_server_that_does_not_answer(tmp_path: Path) -> None:
    install("cursor", "--transport", "http", "--no-create-key")
    config = tmp_path / ".cursor" / "mcp.json"
    data = json.loads(config.read_text())
    data["mcpServers"]["sophia-ai"]["url"] = "http://127.0.0.1:9/mcp"  # nothing listens there
    config.write_text(json.dumps(data))
    result = runner.invoke(app, ["check", "cursor", "--timeout", "10"])
    assert result.exit_code == 1 and "failed: ConnectError" in result.output
