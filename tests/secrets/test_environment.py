"""Settings built from the active environment, and the text edits ``sophia env`` makes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from sophia.errors import ConfigError
from sophia.secrets.backend import EnvironmentError_
from sophia.secrets.edit import (
    ImportRules,
    diff,
    get_node,
    parse_dotenv,
    parse_gh_secret_list,
    rotate_target,
    set_path,
    to_dotenv,
    unset_path,
)
from sophia.secrets.keys import generate, write_key_file
from sophia.secrets.mask import KNOWN
from sophia.secrets.store import LocalStore
from sophia.settings import load_settings, reload_settings

PROVIDER_KEY = "fake-openai-key-from-the-base-77"  # pragma: allowlist secret
VAULT_KEY = "fake-openai-key-kept-in-vault-88"  # pragma: allowlist secret


@pytest.fixture
def store(tmp_path: Path) -> LocalStore:
    key = generate()
    write_key_file(tmp_path / "secrets.key", key)
    return LocalStore(tmp_path / "environments", key)


def conf(tmp_path: Path) -> dict[str, Any]:
    return {"home": tmp_path, "secrets": {"store": tmp_path / "environments", "key_dir": tmp_path}}


BASE = f"""
values:
  region: eu-west-1
  sophia:
    gateway: {{port: 8111, max_body_bytes: 1000000}}
    providers:
      openai:
        api_key: {{fn::secret: {PROVIDER_KEY}}}
    observe:
      project: sophia-${{region}}
"""
PRODUCTION = """
imports: [base]
values:
  sophia:
    gateway: {port: 8222}
    log_level: warning
"""


def test_a_production_environment_importing_a_base_becomes_the_settings(
    tmp_path: Path, store: LocalStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    store.put("base", BASE)
    store.put("production", PRODUCTION)
    (tmp_path / "sophia.yaml").write_text("gateway: {port: 9000, host: 0.0.0.0}\nlog_level: debug\n")
    monkeypatch.chdir(tmp_path)
    s = load_settings(environment="production", **conf(tmp_path))
    assert s.environment == ("production", 1)
    assert s.gateway.port == 8222  # production over base over sophia.yaml
    assert s.gateway.host == "0.0.0.0"  # sophia.yaml where the environment is silent
    assert s.gateway.max_body_bytes == 1_000_000  # from the base
    assert s.log_level == "warning"
    assert s.observe.project == "sophia-eu-west-1"  # interpolated
    api_key = s.providers["openai"].api_key
    assert api_key is not None and api_key.get_secret_value() == PROVIDER_KEY
    assert KNOWN.leaks(f"key={PROVIDER_KEY}")  # a known secret: masked in every output from now on
    # environment variables still override, for containers
    monkeypatch.setenv("SOPHIA_GATEWAY__PORT", "8333")
    assert load_settings(environment="production", **conf(tmp_path)).gateway.port == 8333


def test_sophia_env_names_the_active_environment_and_reload_follows_changes(
    tmp_path: Path, store: LocalStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    store.put("base", BASE)
    store.put("production", PRODUCTION)
    monkeypatch.setenv("SOPHIA_ENV", "production")
    s = load_settings(**conf(tmp_path))
    assert s.gateway.port == 8222
    store.put("base", set_path(store.definition("base"), "sophia.gateway.max_body_bytes", 4096))
    again = reload_settings(s)
    assert again.gateway.max_body_bytes == 4096 and again.environment == ("production", 1)
    assert load_settings(use_environment=False, **conf(tmp_path)).gateway.port == 8090


def test_an_environment_that_does_not_evaluate_is_refused_with_where_and_why(
    tmp_path: Path, store: LocalStore
) -> None:
    store.put("broken", "values:\n  sophia:\n    log_level: ${nowhere.at.all}\n")
    with pytest.raises(ConfigError) as err:
        load_settings(environment="broken", **conf(tmp_path))
    text = str(err.value)
    assert "broken" in text and "sophia.log_level" in text and "nowhere" in text
    store.put("cycle-a", "imports: [cycle-b]\nvalues: {a: 1}\n")
    store.put("cycle-b", "imports: [cycle-a]\nvalues: {b: 1}\n")
    with pytest.raises(ConfigError, match="cycle"):
        load_settings(environment="cycle-a", **conf(tmp_path))
    with pytest.raises(ConfigError, match="missing"):
        load_settings(environment="missing", **conf(tmp_path))


def test_an_environment_cannot_move_the_secrets_section_or_set_bad_settings(
    tmp_path: Path, store: LocalStore
) -> None:
    store.put("sneaky", "values:\n  sophia:\n    secrets: {backend: pulumi}\n")
    with pytest.raises(ConfigError, match="secrets"):
        load_settings(environment="sneaky", **conf(tmp_path))
    store.put("typo", "values:\n  sophia:\n    gateway: {prot: 1}\n")
    with pytest.raises(ConfigError, match=r"environment 'typo'.*gateway\.prot"):
        load_settings(environment="typo", **conf(tmp_path))


# -- edits ------------------------------------------------------------------------------------


def test_set_and_unset_paths() -> None:
    value = "x-value-1234"
    text = set_path("", "sophia.providers.openai.api_key", value, secret=True)
    assert get_node(text, "sophia.providers.openai.api_key") == {"fn::secret": value}
    text = set_path(text, 'labels["team.name"]', "bi")
    text = set_path(text, "list", [1, 2, 3])
    text = set_path(text, "list[1]", 20)
    assert get_node(text, "list") == [1, 20, 3]
    assert get_node(text, 'labels["team.name"]') == "bi"
    text = unset_path(text, "list[0]")
    assert get_node(text, "list") == [20, 3]
    with pytest.raises(EnvironmentError_, match="does not exist"):
        unset_path(text, "nothing.here")
    with pytest.raises(EnvironmentError_, match="no such list item"):
        set_path(text, "list[7]", 1)
    with pytest.raises(EnvironmentError_, match="not a property path"):
        set_path(text, "a..b", 1)
    with pytest.raises(EnvironmentError_, match="a secret value is a string"):
        set_path(text, "n", 5, secret=True)


def test_rotate_target_finds_the_rotator_above_a_path() -> None:
    text = "values:\n  db:\n    fn::rotate::postgres:\n      inputs: {users: [a, b]}\n      state: {current: {user: a}}\n"
    assert rotate_target(text, "db") == "db"
    assert rotate_target(text, "db.current.user") == "db"
    assert rotate_target(text, "other") is None


def test_dotenv_round_trip_keeps_any_value() -> None:
    values = {"A": "plain", "B": 'quo"te $HOME \\ back', "C": "multi\nline", "D": ""}
    assert parse_dotenv(to_dotenv(values)) == values
    parsed = parse_dotenv("# comment\nexport X=1\nY='lit $eral'\nZ=bare # trailing\n\n")
    assert parsed == {"X": "1", "Y": "lit $eral", "Z": "bare"}
    with pytest.raises(EnvironmentError_, match="line 1"):
        parse_dotenv("not a pair")


def test_import_rules_map_flat_names_to_paths(tmp_path: Path) -> None:
    rules_file = tmp_path / "rules.yaml"
    rules_file.write_text(
        "- match: '(?P<vendor>OPENAI|ANTHROPIC|OPENROUTER)_API_KEY'\n"
        "  path: 'sophia.providers.{vendor|lower}.api_key'\n"
        "- match: 'SNOWFLAKE_(?P<field>[A-Z]+)'\n"
        "  path: 'sophia.warehouse.snowflake.{field|lower}'\n"
        "  secret: false\n"
    )
    rules = ImportRules.load(rules_file)
    assert rules.target("OPENAI_API_KEY") == ("sophia.providers.openai.api_key", True)
    assert rules.target("SNOWFLAKE_ACCOUNT") == ("sophia.warehouse.snowflake.account", False)
    assert rules.target("SLACK_BOT_TOKEN") == ("environmentVariables.SLACK_BOT_TOKEN", True)
    assert rules.target("REGION") == ("environmentVariables.REGION", False)
    listing = "NAME\tUPDATED\tVISIBILITY\nOPENAI_API_KEY\t2026-11-02\tALL\nSLACK_BOT_TOKEN\tabout 2 days ago\tPRIVATE\n"
    assert parse_gh_secret_list(listing) == ["OPENAI_API_KEY", "SLACK_BOT_TOKEN"]
    assert parse_gh_secret_list('[{"name": "A_TOKEN", "updatedAt": "x"}]') == ["A_TOKEN"]


def test_diff_shows_changed_secrets_without_their_values() -> None:
    a = {"x": 1, "k": "old-secret-value", "only_a": True}
    b = {"x": 2, "k": "new-secret-value", "only_b": [1]}
    changes = diff(a, b, shown_first={**a, "k": "[secret]"}, shown_second={**b, "k": "[secret]"})
    by_path = {c.path: c for c in changes}
    assert set(by_path) == {"x", "k", "only_a", "only_b[0]"}
    assert by_path["k"].before == by_path["k"].after == "[secret]"
    assert by_path["only_a"].kind == "removed" and by_path["only_b[0]"].kind == "added"


def test_a_provider_key_read_from_vault_becomes_the_settings_and_is_masked(tmp_path: Path) -> None:
    """fn::open::vault-login + vault-secrets through the configured store (open_backend wires the
    providers), into the settings; the value read is a known secret."""
    from fakes.vault import FakeVault
    from sophia.settings.environment import open_backend

    with FakeVault() as vault:
        vault.enable_kv("secret", version=2)
        vault.write("secret/openai", {"api_key": VAULT_KEY})
        vault.set_policy("creator", {"auth/token/create": ["update"]})
        vault.set_policy("kv-read", {"secret/data/*": ["read"]})
        parent = vault.create_token(["creator", "kv-read"])
        bootstrap = load_settings(use_environment=False, **conf(tmp_path))
        key = generate()
        write_key_file(tmp_path / "secrets.key", key)
        backend = open_backend(bootstrap)
        backend.put(
            "vaulted",
            f"""
values:
  vault:
    login:
      fn::open::vault-login:
        address: {vault.url}
        token: {{token: {{fn::secret: {parent}}}, policies: [kv-read]}}
    secrets:
      fn::open::vault-secrets:
        login: ${{vault.login}}
        read:
          openai: {{path: secret/data/openai, field: data}}
  sophia:
    providers:
      openai: {{api_key: "${{vault.secrets.openai.api_key}}"}}
""",
        )
        s = load_settings(environment="vaulted", **conf(tmp_path))
    api_key = s.providers["openai"].api_key
    assert api_key is not None and api_key.get_secret_value() == VAULT_KEY
    assert KNOWN.leaks(f"echo {VAULT_KEY}") and KNOWN.mask(f"k={VAULT_KEY}") == "k=[REDACTED]"
