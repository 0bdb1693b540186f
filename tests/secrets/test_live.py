"""The environment watcher: what it applies live, what it leaves for a restart, and a bad change."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from fakes.upstream import FakeUpstream
from sophia.container import Services
from sophia.gateway.service import GATEWAY
from sophia.live import EnvironmentWatcher, changed_paths
from sophia.secrets.edit import set_path
from sophia.secrets.keys import generate, write_key_file
from sophia.secrets.store import LocalStore
from sophia.settings import load_settings

KEY_ONE = "fake-vllm-key-one-000111"  # pragma: allowlist secret
KEY_TWO = "fake-vllm-key-two-000222"  # pragma: allowlist secret


def test_changed_paths_names_leaves_never_values() -> None:
    a = load_settings(use_environment=False, gateway={"port": 9001}, log_level="info")
    b = load_settings(use_environment=False, gateway={"port": 9002}, log_level="debug")
    assert changed_paths(a, b) == ["gateway.port", "log_level"]
    assert changed_paths(a, a) == []


async def test_a_key_is_applied_live_a_port_waits_for_a_restart_and_a_broken_change_changes_nothing(
    tmp_path: Path, upstream: FakeUpstream, caplog: pytest.LogCaptureFixture
) -> None:
    key = generate()
    write_key_file(tmp_path / "secrets.key", key)
    store = LocalStore(tmp_path / "environments", key)
    store.put(
        "dev",
        f"values:\n  sophia:\n    providers:\n      vllm:\n        base_url: {upstream.url}/vllm/v1\n"
        f"        api_key: {{fn::secret: {KEY_ONE}}}\n      local: {{enabled: false}}\n"
        "    observe: {monitor: false, tracing: false}\n",
    )
    settings = load_settings(
        environment="dev", home=tmp_path, secrets={"store": tmp_path / "environments", "key_dir": tmp_path}
    )
    services = Services(settings)
    try:
        gateway = await services.get(GATEWAY)
        adapter = gateway.catalog.adapters["vllm"]
        watcher = EnvironmentWatcher(services)
        assert not await watcher.check()  # nothing changed yet

        text = set_path(store.definition("dev"), "sophia.providers.vllm.api_key", KEY_TWO, secret=True)
        store.put("dev", set_path(text, "sophia.gateway.port", 9555))
        with caplog.at_level(logging.INFO, logger="sophia.live"):
            assert await watcher.check()
        assert adapter.headers["Authorization"] == f"Bearer {KEY_TWO}"  # the same adapter, rekeyed
        assert "next restart: gateway.port" in caplog.text
        assert KEY_TWO not in caplog.text and "providers.vllm" not in caplog.text.split("restart:")[-1]
        assert services.settings.gateway.port == 9555  # for what starts from now on

        store.put("dev", "values:\n  sophia:\n    log_level: ${missing.value}\n")
        before = services.settings
        with caplog.at_level(logging.ERROR, logger="sophia.live"):
            assert not await watcher.check()
        assert "does not load; nothing was applied" in caplog.text
        assert services.settings is before
        assert adapter.headers["Authorization"] == f"Bearer {KEY_TWO}"
    finally:
        await services.close()
