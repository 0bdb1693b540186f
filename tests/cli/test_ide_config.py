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


def make_key(name: str) -> str:
    async def go() -> str:
        store = await KeyStore.open(load_settings().database_url)
        try:
            return (await store.create(name=name))[0]
        finally:
            await store.close()

    return asyncio.run(go())


def every_key() -> dict[str, bool]:
    """Every key's id -> whether it is still active."""

    async def go() -> dict[str, bool]:
        store = await KeyStore.open(load_settings().database_url)
        try:
            return {k.id: k.revoked_at is None for k in await store.list(include_revoked=True)}
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
    monkeypatch.setenv("SOPHIA_API_KEY", make_key("mine"))
    output = install("cursor", "--transport", "http")
    entry = json.loads((tmp_path / ".cursor" / "mcp.json").read_text())["mcpServers"]["sophia-ai"]
    assert entry == {
        "url": "http://127.0.0.1:8091/mcp",
        "headers": {"Authorization": "Bearer ${env:SOPHIA_API_KEY}"},
    }
    assert keys() == [("mine", None)]  # the key in the environment authenticates: none is created
    assert "Kept the key in $SOPHIA_API_KEY" in output


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


def test_check_reports_a_server_that_does_not_answer(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    install("cursor", "--transport", "http", "--no-create-key")
    monkeypatch.setenv("SOPHIA_API_KEY", "sk-sophia-some-key")
    config = tmp_path / ".cursor" / "mcp.json"
    data = json.loads(config.read_text())
    data["mcpServers"]["sophia-ai"]["url"] = "http://127.0.0.1:9/mcp"  # nothing listens there
    config.write_text(json.dumps(data))
    result = runner.invoke(app, ["check", "cursor", "--timeout", "10"])
    assert result.exit_code == 1 and "failed: ConnectError" in result.output


# -- re-installing: one live key per config ------------------------------------------------------------


def claude_key(home: Path) -> str:
    entry = json.loads((home / ".config" / "Claude" / "claude_desktop_config.json").read_text())["mcpServers"]
    env = entry["sophia-ai"]["env"]
    return env.get("SOPHIA_API_KEY") or env["SOPHIA_AUTH"].removeprefix("Bearer ")


def test_reinstalling_reuses_the_key_in_the_entry_while_it_authenticates(home: Path) -> None:
    # The probe: every re-install made a new key and left the previous one active.
    install("claude-desktop")
    first = claude_key(home)
    output = install("claude-desktop", "--transport", "http")
    assert claude_key(home) == first
    assert "Kept the key in its entry" in output
    assert keys() == [("ide-claude-desktop", ("ai/*",))]  # one key, still the first


def test_a_new_key_revokes_the_one_it_replaces_when_ide_install_made_it(home: Path) -> None:
    install("claude-desktop")
    before = every_key()
    output = install("claude-desktop", "--create-key")
    after = every_key()
    (old,) = before
    (new,) = set(after) - set(before)
    assert after == {old: False, new: True} and claude_key(home) != ""
    assert f"Revoked the key(s) it replaces, made by an earlier `sophia ide install`: {old}" in output


def test_cursor_reinstalled_without_its_key_revokes_the_key_made_for_that_config(tmp_path: Path) -> None:
    install("cursor")
    (first,) = every_key()
    output = install("cursor")  # $SOPHIA_API_KEY is not set: a new key is made and shown
    (second,) = set(every_key()) - {first}
    assert every_key() == {first: False, second: True}
    assert "export SOPHIA_API_KEY=sk-sophia-" in output and first in output


def test_a_key_not_made_by_ide_install_is_never_revoked(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = home / ".config" / "Claude" / "claude_desktop_config.json"
    install("claude-desktop")
    data = json.loads(config.read_text())
    mine = make_key("mine")
    data["mcpServers"]["sophia-ai"]["env"]["SOPHIA_API_KEY"] = mine  # pasted by hand
    config.write_text(json.dumps(data))
    install("claude-desktop", "--create-key")
    names = sorted(name for name, _ in keys())
    assert names == ["ide-claude-desktop", "mine"] and claude_key(home) != mine
    # Cursor: a key in $SOPHIA_API_KEY that does not authenticate is replaced, not kept
    monkeypatch.setenv("SOPHIA_API_KEY", "sk-sophia-revoked-or-unknown")
    output = install("cursor")
    assert "does not authenticate here (unknown or revoked), so a new one was created" in output
    assert sorted(name for name, _ in keys()) == ["ide-claude-desktop", "ide-cursor", "mine"]


def test_a_key_made_for_another_config_is_not_revoked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    output = install("cursor")  # project A
    first = output.split("export SOPHIA_API_KEY=")[1].strip()
    other = tmp_path / "project-b"
    other.mkdir()
    monkeypatch.chdir(other)
    monkeypatch.setenv("SOPHIA_API_KEY", first)  # A's key in this shell
    install("cursor", "--create-key")  # project B gets its own key; A's stays live
    assert list(every_key().values()) == [True, True]


@pytest.mark.parametrize("transport", ["stdio", "http"])
@pytest.mark.parametrize("client", ["cursor", "vscode"])
def test_check_fails_when_the_entry_passes_no_key(client: str, transport: str) -> None:
    # The probe: `ide check` said "ok: 8 tools" for a stdio server started without a key.
    install(client, "--no-create-key", "--transport", transport)
    result = runner.invoke(app, ["check", client, "--timeout", "30"])
    assert result.exit_code == 1, result.output
    assert "failed: no key" in result.output and "ok:" not in result.output
