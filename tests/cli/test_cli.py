"""The `sophia` command line, run as a user runs it (a real subprocess)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from fakes.process import sophia, write_config

COMMANDS = [
    [],
    ["run"],
    ["keys"],
    ["keys", "create"],
    ["keys", "list"],
    ["keys", "revoke"],
    ["keys", "local"],
    ["usage"],
    ["models"],
    ["router"],
    ["router", "train"],
    ["router", "eval"],
    ["router", "info"],
]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c) or "sophia")
def test_every_command_has_help(command: list[str]) -> None:
    result = sophia(*command, "--help")
    assert result.returncode == 0, result.stderr
    assert "Usage:" in result.stdout
    assert "--help" in result.stdout


def test_version() -> None:
    from sophia import __version__

    result = sophia("--version")
    assert result.returncode == 0
    assert result.stdout.strip() == f"sophia {__version__}"


def test_keys_create_list_revoke(tmp_path: Path) -> None:
    config = write_config(tmp_path / "c.yaml", {"home": str(tmp_path / "home")})
    made = sophia(
        "keys",
        "create",
        "--config",
        str(config),
        "--name",
        "ci",
        "--team",
        "data",
        "--rpm",
        "60",
        "--budget-daily",
        "5",
        "--model",
        "openai/*",
        "--tool",
        "ai/generate",
        "--tool",
        "ai/list_*",
    )
    assert made.returncode == 0, made.stderr
    secret = re.search(r"sk-sophia-\S+", made.stdout)
    assert secret is not None
    listed = sophia("keys", "list", "--config", str(config), "--json")
    rows = json.loads(listed.stdout)
    assert [
        (r["name"], r["team"], r["rpm"], r["budget_daily_usd"], r["allowed_models"], r["allowed_tools"])
        for r in rows
    ] == [("ci", "data", 60, 5.0, ["openai/*"], ["ai/generate", "ai/list_*"])]
    assert secret.group(0) not in listed.stdout  # secrets are never listed
    assert sophia("keys", "revoke", "--config", str(config), rows[0]["id"]).returncode == 0
    again = sophia("keys", "revoke", "--config", str(config), rows[0]["id"])
    assert again.returncode == 1
    assert "no active key" in again.stderr
    assert json.loads(sophia("keys", "list", "--config", str(config), "--json").stdout) == []


def test_print_secret_only_is_script_friendly(tmp_path: Path) -> None:
    config = write_config(tmp_path / "c.yaml", {"home": str(tmp_path / "home")})
    made = sophia("--config", str(config), "keys", "create", "--name", "bench", "--print-secret-only")
    assert re.fullmatch(r"sk-sophia-[A-Za-z0-9_-]+\n", made.stdout)


def test_bad_config_is_a_clear_error(tmp_path: Path) -> None:
    config = write_config(tmp_path / "bad.yaml", {"gateway": {"port": "eighty"}})
    result = sophia("models", "--config", str(config))
    assert result.returncode == 2
    assert "gateway.port" in result.stderr
    assert "Traceback" not in result.stderr
    missing = sophia("models", "--config", str(tmp_path / "nope.yaml"))
    assert missing.returncode == 2
    assert "does not exist" in missing.stderr


def test_config_from_environment(tmp_path: Path) -> None:
    result = sophia(
        "models",
        "--json",
        env={
            "SOPHIA_HOME": str(tmp_path),
            "SOPHIA_PROVIDERS__VLLM__BASE_URL": "http://127.0.0.1:9/v1",
            "SOPHIA_PROVIDERS__LOCAL__ENABLED": "false",
        },
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == []  # vLLM lists no models of its own; local is off


def test_models_lists_local_and_aliases(tmp_path: Path) -> None:
    result = sophia("models", "--json", env={"SOPHIA_HOME": str(tmp_path)})
    rows = {r["id"]: r for r in json.loads(result.stdout)}
    assert rows["local"]["input_usd_mtok"] == 0.0
    assert "local/all-minilm-l6-v2" in rows
    assert rows["sophia/smart"]["chain"].endswith("local")


def test_usage_rejects_unknown_grouping(tmp_path: Path) -> None:
    result = sophia("usage", "--by", "colour", env={"SOPHIA_HOME": str(tmp_path)})
    assert result.returncode == 2
    assert "--by takes" in result.stderr


def test_usage_recommend_reads_the_ledger(tmp_path: Path) -> None:
    import asyncio
    import time

    from sophia.accounts.ledger import Ledger, UsageRecord

    async def fill() -> None:
        ledger = await Ledger.open(f"sqlite:///{tmp_path / 'data' / 'sophia.db'}")
        now = time.time()
        for i in range(800):
            model, cost = ("openai/gpt-4.1", 10_000_000) if i % 2 else ("openai/gpt-4.1-mini", 1_000_000)
            ledger.record(
                UsageRecord(
                    ts=now - i, request_id=f"r{i}", key_id="k", team="t", endpoint="chat",
                    requested_model="sophia/auto", served_model=model, provider="openai",
                    prompt_tokens=10, completion_tokens=5, cost_nanos=cost, latency_ms=5.0, ttft_ms=None,
                    cache="miss", task_type="summarise",
                )
            )  # fmt: skip
        await ledger.close()

    (tmp_path / "data").mkdir()
    asyncio.run(fill())
    result = sophia("usage", "--since", "1h", "--recommend", "--json", env={"SOPHIA_HOME": str(tmp_path)})
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["recommendations"]
    assert (
        "route task summarise to openai/gpt-4.1-mini instead of openai/gpt-4.1"
        in report["recommendations"][0]
    )


def test_cache_commands_work_on_the_store_without_a_gateway(tmp_path: Path) -> None:
    env = {"SOPHIA_HOME": str(tmp_path)}
    stats = sophia("cache", "stats", "--json", env=env)
    assert stats.returncode == 0, stats.stderr
    data = json.loads(stats.stdout)
    assert (data["entries"], data["lookups"], data["store"]) == (0, 0, "local")
    assert data["since"].endswith("+00:00")  # a readable UTC time, not an epoch
    vague = sophia("cache", "purge", env=env)
    assert vague.returncode == 2 and "--all" in vague.stderr
    purged = sophia("cache", "purge", "--all", "--yes", env=env)
    assert purged.returncode == 0 and "Deleted 0 cached answers (every entry)." in purged.stdout
    bumped = sophia("cache", "bump", "crm.deals", env=env)
    assert bumped.returncode == 0 and "Bumped crm.deals: 0 cached answers invalidated." in bumped.stdout
    unknown = sophia("cache", "report", "req_nope", env=env)
    assert unknown.returncode == 1 and "no request 'req_nope'" in unknown.stderr


def test_cache_stats_show_each_budgeted_alias_estimate(tmp_path: Path) -> None:
    import asyncio

    from sophia.cache.entries import EntryTable
    from sophia.cache.observations import Observation
    from sophia.cache.store_local import LocalStore

    config = write_config(
        tmp_path / "sophia.yaml", {"cache": {"models": {"team/fast": {"max_error_rate": 0.02}}}}
    )
    env = {"SOPHIA_HOME": str(tmp_path)}
    (tmp_path / "data").mkdir()
    rows = [
        Observation(
            "team/fast", "ns", f"e{i}", "check", 1.0, 5.0, 0.95, 4.0, 0.1, int(i == 0), cost_usd=0.001
        )
        for i in range(40)
    ]
    rows += [
        Observation("team/fast", "ns", f"h{i}", "held", 1.0, 5.0, 0.95, 4.0, 0.1, int(i == 0))
        for i in range(2)
    ]
    rows += [
        Observation("team/fast", "ns", f"r{i}", "replace", 1.0, 8.0, 1.0, 4.0, 0.0, int(i == 0))
        for i in range(3)
    ]

    async def seed() -> None:
        store = LocalStore(f"sqlite:///{tmp_path / 'data' / 'sophia.db'}")
        await store.start(EntryTable(), follow=False)
        await store.add_observations(rows)
        await store.close()

    asyncio.run(seed())
    shown = sophia("cache", "stats", "--config", str(config), env=env)
    assert shown.returncode == 0, shown.stderr
    line = next(x for x in shown.stdout.splitlines() if x.startswith("alias team/fast"))
    assert "budget 2.0% (learning: the same words only, 42 labelled)" in line  # not yet 5 wrong: cold
    assert "estimated error 2.5% [0.4%, 12.9%] from 40 checks" in line
    assert "2 held by the backstop (1 would have been wrong)" in line
    assert "one question answered twice: 1 of 3 judged different" in line
    data = json.loads(sophia("cache", "stats", "--json", "--config", str(config), env=env).stdout)
    assert data["aliases"]["team/fast"]["check_cost_usd"] == pytest.approx(0.04)


@pytest.mark.parametrize(
    "args",
    [
        ["--rpm", "9223372036854775808"],
        ["--tpm", "-5"],
        ["--budget-daily", "nan"],
        ["--budget-monthly", "1e400"],
    ],
)
def test_keys_create_refuses_absurd_limits_without_a_traceback(tmp_path: Path, args: list[str]) -> None:
    config = write_config(tmp_path / "c.yaml", {"home": str(tmp_path / "home")})
    made = sophia("keys", "create", "--config", str(config), "--name", "absurd", *args)
    assert made.returncode != 0
    assert "Traceback" not in made.stderr + made.stdout
    assert len((made.stderr + made.stdout).strip().splitlines()) <= 8  # a message, not a dump
    listed = sophia("keys", "list", "--config", str(config), "--json")
    assert json.loads(listed.stdout) == []  # nothing was created


def test_keys_create_can_grant_unattended_destructive_mcp_calls(tmp_path: Path) -> None:
    config = write_config(tmp_path / "c.yaml", {"home": str(tmp_path / "home")})
    made = sophia("keys", "create", "--config", str(config), "--name", "nightly-cleanup", "--mcp-unattended")
    assert made.returncode == 0, made.stderr
    sophia("keys", "create", "--config", str(config), "--name", "person")
    listed = json.loads(sophia("keys", "list", "--config", str(config), "--json").stdout)
    flags = {row["name"]: row["metadata"].get("mcp_unattended") for row in listed}
    assert flags == {"nightly-cleanup": True, "person": None}
