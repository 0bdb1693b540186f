"""The active environment: the secrets backend the settings name, opened into the settings' layer.

``open_backend(settings)`` gives the local store (default) or Pulumi ESC; ``open_active`` evaluates
one environment with its imports and returns what ``load_settings`` layers in: the environment's
``sophia`` subtree (shaped like ``sophia.yaml``) and every secret leaf's plaintext (for masking).
An environment that evaluates with errors is refused with ESC's diagnostics (file, path, reason):
a service never starts on half an environment.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sophia.errors import ConfigError
from sophia.secrets.backend import Backend, EnvironmentError_, Opened

if TYPE_CHECKING:
    from sophia.settings import Settings

#: the subtree of an environment's values that becomes Sophia's settings
SETTINGS_KEY = "sophia"


@dataclass
class Active:
    """An evaluated environment, as the settings take it."""

    opened: Opened
    values_for_settings: dict[str, Any]

    @property
    def revision(self) -> int:
        return self.opened.revision

    @property
    def secrets(self) -> list[str]:
        return self.opened.secrets


def store_dir(settings: Settings) -> Path:
    return (settings.secrets.store or settings.config_dir / "environments").expanduser()


def key_dir(settings: Settings) -> Path:
    return (settings.secrets.key_dir or settings.config_dir).expanduser()


def open_backend(settings: Settings, *, create_key: bool = False) -> Backend:
    """The backend the ``secrets`` section names; ConfigError when it cannot be used as configured.

    With ``create_key`` (``sophia env init``) a local store's missing master key is created."""
    conf = settings.secrets
    if conf.backend == "pulumi":
        from sophia.secrets.pulumi import PulumiBackend

        token = conf.pulumi_access_token.get_secret_value() if conf.pulumi_access_token else None
        token = token or os.environ.get("PULUMI_ACCESS_TOKEN")
        if not conf.pulumi_org or not token:
            raise ConfigError(
                "secrets.backend is pulumi: set secrets.pulumi_org and secrets.pulumi_access_token "
                "(or $PULUMI_ACCESS_TOKEN)"
            )
        return PulumiBackend(
            conf.pulumi_org, conf.pulumi_project, access_token=token, api_url=conf.pulumi_api_url
        )
    from sophia.secrets import keys
    from sophia.secrets.providers import builtin_providers
    from sophia.secrets.rotators import builtin_rotators
    from sophia.secrets.store import LocalStore

    folder, store = key_dir(settings), store_dir(settings)
    try:
        key = keys.load_key(folder, source=conf.key_source, store_id=str(store), identity=conf.age_identity)
    except keys.KeyPermissionError:
        raise
    except keys.KeyUnavailable:
        if not create_key:
            raise
        # init_key never replaces an existing key: a key that exists but cannot be read stays an error
        key = keys.init_key(
            folder, source=conf.key_source, store_id=str(store), recipients=conf.age_recipients
        )
    return LocalStore(store, key, rotators=builtin_rotators(), providers=builtin_providers())


def open_active(settings: Settings, name: str) -> Active:
    """Evaluate ``name`` for ``load_settings``; ConfigError naming what is wrong."""
    try:
        opened = open_backend(settings).open(name)
    except EnvironmentError_ as exc:
        raise ConfigError(f"environment {name!r}: {exc.message}") from None
    errors = opened.diags
    if errors:
        listed = "; ".join(_diag(d) for d in errors[:10])
        raise ConfigError(f"environment {name!r} does not evaluate: {listed}")
    values = opened.values if isinstance(opened.values, dict) else {}
    layer = values.get(SETTINGS_KEY, {})
    if not isinstance(layer, dict):
        raise ConfigError(f"environment {name!r}: values.{SETTINGS_KEY} must be a mapping of settings")
    if "secrets" in layer:
        raise ConfigError(
            f"environment {name!r}: values.{SETTINGS_KEY}.secrets cannot be set by an environment "
            "(it says where environments are): set it in sophia.yaml or SOPHIA_SECRETS__*"
        )
    return Active(opened, layer)


def _diag(d: Any) -> str:
    where = getattr(d, "environment", "") or ""
    path = getattr(d, "path", "") or ""
    summary = getattr(d, "summary", str(d))
    return ":".join(p for p in (where, path) if p) + (": " if where or path else "") + summary
