"""``sophia env`` end to end through the real CLI (a subprocess per command, a private SOPHIA_HOME)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

SECRET = "fake-anthropic-key-cli-0123456789"  # pragma: allowlist secret
ROTATED = "fake-anthropic-key-cli-rotated-42"  # pragma: allowlist secret


@pytest.fixture
def sophia(tmp_path: Path):  # type: ignore[no-untyped-def]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SOPHIA_", "PULUMI_"))}
    env["SOPHIA_HOME"] = str(tmp_path / "home")

    def run(*args: str, stdin: str | None = None, code: int = 0, extra: dict[str, str] | None = None) -> str:
        proc = subprocess.run(
            [sys.executable, "-m", "sophia", *args], input=stdin, capture_output=True, text=True,
            env={**env, **(extra or {})}, cwd=tmp_path, timeout=60,
        )  # fmt: skip
        assert proc.returncode == code, (proc.returncode, proc.stdout, proc.stderr)
        return proc.stdout + proc.stderr

    return run


def test_init_set_get_diff_export_and_run(sophia, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    assert "production: created" in sophia("env", "init")
    assert "production" not in sophia("env", "init", "--if-missing")  # idempotent, quiet
    sophia(
        "env",
        "set",
        "sophia.providers.anthropic.api_key",
        "--secret",
        "--stdin",
        "--env",
        "production",
        stdin=SECRET,
    )
    sophia(
        "env",
        "set",
        "environmentVariables.ANTHROPIC_API_KEY",
        "${sophia.providers.anthropic.api_key}",
        "--env",
        "production",
    )
    sophia("env", "set", "files.CA_BUNDLE", "--env", "production", "--", "-----certificate text-----")
    shown = sophia("env", "get", "--env", "production")
    assert SECRET not in shown and "[secret]" in shown
    assert '"project": "sophia-production"' in shown  # interpolated from the base it imports
    assert SECRET in sophia(
        "env", "get", "sophia.providers.anthropic.api_key", "--show-secrets", "--env", "production"
    )
    assert SECRET not in sophia("env", "get", "--definition", "--env", "production")  # ciphertext only
    changed = sophia("env", "diff", "base", "production", code=1)
    assert "+ sophia.providers.anthropic.api_key: [secret]" in changed and SECRET not in changed
    assert f'ANTHROPIC_API_KEY="{SECRET}"' in sophia(
        "env", "export", "--format", "dotenv", "--env", "production"
    )
    script = f"import os; print(os.environ['ANTHROPIC_API_KEY'] == {SECRET!r}, open(os.environ['CA_BUNDLE']).read())"
    out = sophia("env", "run", "production", "--", sys.executable, "-c", script)
    assert "True -----certificate text-----" in out
    sophia("env", "run", "production", "--", sys.executable, "-c", "raise SystemExit(7)", code=7)
    listed = json.loads(sophia("env", "ls", "--json"))
    assert {r["environment"] for r in listed} == {"base", "production"}
    # the settings follow the environment
    models = sophia("--env", "production", "models", "--json")
    assert "anthropic/" in models


def test_import_rotate_and_backup_restore(sophia, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    sophia("env", "init")
    (tmp_path / ".env").write_text(f"OPENROUTER_API_KEY={SECRET}\nREGION=eu-west-1\n")
    (tmp_path / "rules.yaml").write_text(
        "- match: '(?P<vendor>OPENROUTER|OPENAI)_API_KEY'\n  path: 'sophia.providers.{vendor|lower}.api_key'\n"
    )
    out = sophia("env", "import", ".env", "--rules", "rules.yaml", "--env", "staging")
    assert "OPENROUTER_API_KEY -> sophia.providers.openrouter.api_key (secret)" in out
    assert "REGION -> environmentVariables.REGION" in out
    (tmp_path / "gh.txt").write_text("OPENAI_API_KEY\t2026-11-30\nMISSING_TOKEN\t2026-11-30\n")
    out = sophia("env", "import", "gh.txt", "--from", "gh", "--rules", "rules.yaml", "--env", "staging",
                 extra={"OPENAI_API_KEY": ROTATED})  # fmt: skip
    assert "MISSING_TOKEN: listed, but no variable" in out
    values = json.loads(sophia("env", "get", "--show-secrets", "--env", "staging"))
    assert values["sophia"]["providers"]["openrouter"]["api_key"] == SECRET
    assert values["sophia"]["providers"]["openai"]["api_key"] == ROTATED
    assert values["environmentVariables"]["REGION"] == "eu-west-1"
    # a plain secret is rotated from stdin (never from the command line)
    sophia("env", "rotate", "sophia.providers.openrouter.api_key", "--env", "staging", code=2)
    sophia(
        "env", "rotate", "sophia.providers.openrouter.api_key", "--stdin", "--env", "staging", stdin=ROTATED
    )
    assert ROTATED in sophia(
        "env", "get", "sophia.providers.openrouter.api_key", "--show-secrets", "--env", "staging"
    )
    # backup, damage, restore
    sophia("env", "backup", "envs.bak")
    store = tmp_path / "home" / "config" / "environments"
    (store / "staging.yaml").write_text("values: {broken: true}\n")
    assert "integrity check failed" in sophia(
        "env", "get", "--env", "staging", code=1
    )  # refused, never misread
    sophia("env", "restore", "envs.bak")
    assert ROTATED in sophia(
        "env", "get", "sophia.providers.openrouter.api_key", "--show-secrets", "--env", "staging"
    )
    # a corrupted archive restores nothing
    data = bytearray((tmp_path / "envs.bak").read_bytes())
    data[len(data) // 2] ^= 1
    (tmp_path / "bad.bak").write_bytes(bytes(data))
    sophia("env", "restore", "bad.bak", code=1)


def test_errors_are_one_clear_line(sophia, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    out = sophia("env", "get", "--env", "production", code=2)
    assert "sophia env init" in out and "Traceback" not in out  # no key yet: says how to make one
    sophia("env", "init")
    out = sophia("env", "get", "--env", "nowhere", code=2)
    assert "nowhere" in out and "Traceback" not in out
    out = sophia("env", "set", "a..b", "1", "--env", "production", code=1)
    assert "not a property path" in out and "Traceback" not in out
    out = sophia("env", "set", "x", "1", code=2)
    assert "--env" in out
