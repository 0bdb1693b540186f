"""IDE MCP configs (for ``sophia ide``): where each client keeps them, what Sophia's entry looks like, merging without clobbering.

| client         | file                                                    | servers key  | key reference            |
|----------------|---------------------------------------------------------|--------------|--------------------------|
| cursor         | .cursor/mcp.json or ~/.cursor/mcp.json                  | mcpServers   | ${env:SOPHIA_API_KEY}    |
| vscode         | .vscode/mcp.json or <user config>/Code/User/mcp.json    | servers      | ${input:sophia-api-key}  |
| claude-desktop | <OS app config>/Claude/claude_desktop_config.json       | mcpServers   | none: a generated key    |

Claude Desktop interpolates nothing, so its entry carries a generated least-privilege key (only
this server's tools) in ``env``; the file is then made readable by its owner only. Over HTTP it
goes through the ``mcp-remote`` bridge, because its own connectors run in the vendor's cloud and
cannot reach 127.0.0.1.

``written_key`` finds a key written into an entry (so a re-install can reuse it) and ``sent_key``
the key an entry passes once its references are resolved (so ``sophia ide check`` can tell a
missing key from a working server).
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import orjson

from sophia.errors import ConfigError
from sophia.mcp.context import KEY_ENV

Client = Literal["cursor", "claude-desktop", "vscode"]
Transport = Literal["stdio", "http"]
CLIENTS: tuple[Client, ...] = ("cursor", "claude-desktop", "vscode")
INPUT_ID = "sophia-api-key"
MCP_REMOTE = "mcp-remote@0.15.1"
#: the variable the mcp-remote bridge reads its Authorization header from
AUTH_ENV = "SOPHIA_AUTH"


@dataclass(frozen=True)
class Target:
    client: Client
    path: Path
    servers_key: str
    #: how the entry refers to the key ("" = the raw key must be written)
    key_ref: str


def _app_config_dir() -> Path:
    home = Path.home()
    if sys.platform == "darwin":
        return home / "Library" / "Application Support"
    if sys.platform == "win32":
        return Path(os.environ.get("APPDATA") or home / "AppData" / "Roaming")
    return Path(os.environ.get("XDG_CONFIG_HOME") or home / ".config")


def target(client: Client, *, project: bool, root: Path | None = None) -> Target:
    """The config file of ``client`` (``project``: in ``root``, the current folder by default)."""
    base = root or Path.cwd()
    if client == "cursor":
        folder = base if project else Path.home()
        return Target(client, folder / ".cursor" / "mcp.json", "mcpServers", f"${{env:{KEY_ENV}}}")
    if client == "vscode":
        path = base / ".vscode" / "mcp.json" if project else _app_config_dir() / "Code" / "User" / "mcp.json"
        return Target(client, path, "servers", f"${{input:{INPUT_ID}}}")
    if project:
        raise ConfigError("Claude Desktop has no project config: use --global")
    return Target(client, _app_config_dir() / "Claude" / "claude_desktop_config.json", "mcpServers", "")


def stdio_command(group: str, config: Path | None = None) -> list[str]:
    """The command an IDE spawns: this interpreter running ``sophia mcp serve GROUP --stdio``, so the IDE
    needs no PATH set up."""
    extra = ["--config", str(config.resolve())] if config else []
    return [sys.executable, "-m", "sophia.cli.mcp", "serve", group, "--stdio", *extra]


def entry(
    t: Target,
    group: str,
    transport: Transport,
    url: str,
    secret: str | None,
    *,
    config: Path | None = None,
    home: str | None = None,
) -> dict[str, Any]:
    """Sophia's server entry for ``t``; ``secret`` only where the client cannot reference a key.

    ``config`` and ``home`` (``$SOPHIA_HOME``) carry this installation's settings to the spawned server.
    """
    key = t.key_ref or secret
    if not key:
        raise ConfigError(f"{t.client} needs a key written into its config; none was created")
    command, *args = stdio_command(group, config)
    if transport == "http" and t.client == "claude-desktop":
        return {
            "command": "npx",
            "args": ["-y", MCP_REMOTE, url, "--header", f"Authorization:${{{AUTH_ENV}}}"],
            "env": {AUTH_ENV: f"Bearer {key}"},
        }
    if transport == "http":
        http: dict[str, Any] = {"url": url, "headers": {"Authorization": f"Bearer {key}"}}
        return {"type": "http", **http} if t.client == "vscode" else http
    env = {KEY_ENV: key, **({"SOPHIA_HOME": home} if home else {})}
    stdio: dict[str, Any] = {"command": command, "args": args, "env": env}
    return {"type": "stdio", **stdio} if t.client == "vscode" else stdio


def read_config(path: Path) -> dict[str, Any]:
    if not path.exists():
        return {}
    text = path.read_text(encoding="utf-8").strip()
    if not text:
        return {}
    try:
        data = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise ConfigError(
            f"{path} is not valid JSON ({exc}); fix it, or move it away, and try again"
        ) from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path} must hold a JSON object")
    return data


def merge(data: dict[str, Any], t: Target, name: str, server: dict[str, Any]) -> dict[str, Any]:
    """``data`` with Sophia's entry set under ``name``; every other server and key is kept."""
    servers = data.get(t.servers_key)
    if servers is None:
        servers = {}
    if not isinstance(servers, dict):
        raise ConfigError(f"'{t.servers_key}' in {t.path} is not an object; refusing to overwrite it")
    result = {**data, t.servers_key: {**servers, name: server}}
    if t.client == "vscode":
        inputs = [
            i for i in data.get("inputs") or [] if not (isinstance(i, dict) and i.get("id") == INPUT_ID)
        ]
        inputs.append(
            {
                "type": "promptString",
                "id": INPUT_ID,
                "description": "Sophia API key (sk-sophia-…)",
                "password": True,
            }
        )
        result["inputs"] = inputs
    return result


def write_config(path: Path, data: dict[str, Any], *, private: bool) -> None:
    """Write atomically (a crash leaves the old file), owner-only when it holds a key."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".sophia-tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600 if private else 0o644)
    with os.fdopen(fd, "wb") as fh:
        fh.write(orjson.dumps(data, option=orjson.OPT_INDENT_2) + b"\n")
    if private:
        os.chmod(tmp, 0o600)
    os.replace(tmp, path)


def servers_in(path: Path, servers_key: str) -> dict[str, dict[str, Any]]:
    """The MCP server entries of a config file (for ``sophia ide check``)."""
    servers = read_config(path).get(servers_key) or {}
    return {k: v for k, v in servers.items() if isinstance(v, dict)} if isinstance(servers, dict) else {}


def resolve_refs(value: str, env: dict[str, str]) -> str:
    """Expand ``${env:NAME}``, ``${input:…}`` (from $SOPHIA_API_KEY) and ``${NAME}`` as the IDEs do."""
    out = value
    for ref, name in ((f"${{input:{INPUT_ID}}}", KEY_ENV),):
        out = out.replace(ref, env.get(name, ""))
    while "${" in out:
        start = out.index("${")
        end = out.find("}", start)
        if end < 0:
            break
        token = out[start + 2 : end]
        out = out[:start] + env.get(token.removeprefix("env:"), "") + out[end + 1 :]
    return out


def _bearer(value: str) -> str:
    """The token of ``Bearer <token>`` (or a bare token); "" for a header whose token resolved to nothing."""
    value = value.strip()
    if value.lower() == "bearer":
        return ""
    return value[7:].strip() if value[:7].lower() == "bearer " else value


def _key_fields(server: dict[str, Any]) -> list[str]:
    """The raw values through which an entry passes its key, most specific first."""
    env = server.get("env")
    env = env if isinstance(env, dict) else {}
    headers = server.get("headers")
    headers = headers if isinstance(headers, dict) else {}
    if "url" in server:
        return [str(headers.get("Authorization", ""))]
    if AUTH_ENV in env:  # the mcp-remote bridge
        return [str(env[AUTH_ENV])]
    return [str(env[KEY_ENV])] if KEY_ENV in env else []


def written_key(server: dict[str, Any]) -> str | None:
    """The key written literally into an entry (Claude Desktop's), or None where it refers to one."""
    for value in _key_fields(server):
        key = _bearer(value)
        if key and "${" not in key:
            return key
    return None


def sent_key(server: dict[str, Any], env: dict[str, str]) -> str:
    """The key the entry passes once its references are resolved in ``env`` ("" when none)."""
    fields = _key_fields(server)
    if not fields and "url" not in server:
        return env.get(KEY_ENV, "").strip()  # a stdio server inherits the environment
    return _bearer(resolve_refs(fields[0], env)) if fields else ""
