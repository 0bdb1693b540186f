"""The secrets section (``secrets:``, ``SOPHIA_SECRETS__…``): where environments live and which one is active.

This section is read *before* the active environment is evaluated (it says where to find it), so
it comes from ``sophia.yaml``, ``SOPHIA_*`` variables and arguments only, never from an environment.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr


class SecretsSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    environment: str | None = Field(
        None,
        description="The active environment (also `--env`, $SOPHIA_ENV): its `sophia` values become settings "
        "(above sophia.yaml, below SOPHIA_* variables). Unset: no environment is read.",
    )
    backend: Literal["local", "pulumi"] = Field(
        "local", description="Where environments live: the local encrypted store, or Pulumi ESC."
    )
    store: Path | None = Field(
        None, description="The local store's folder (default: <config dir>/environments)."
    )
    key_source: Literal["file", "keyring", "age"] = Field(
        "file",
        description="Where the local store's master key lives: a key file (mode 0600) in key_dir, the OS "
        "keyring, or a key file encrypted to age recipients. $SOPHIA_SECRETS_KEY (base64) overrides all, "
        "for containers.",
    )
    key_dir: Path | None = Field(
        None, description="Folder of the key file (secrets.key, or secrets.key.age; default: the config dir)."
    )
    age_identity: Path | None = Field(None, description="The age identity file that opens secrets.key.age.")
    age_recipients: list[str] = Field(
        default_factory=list, description="age1… public keys the new key is encrypted to (`sophia env init`)."
    )
    pulumi_org: str | None = Field(None, description="Pulumi ESC organisation (backend: pulumi).")
    pulumi_project: str = Field("default", description="Pulumi ESC project of the environments.")
    pulumi_api_url: str = Field("https://api.pulumi.com", description="Pulumi Cloud's (or your ESC's) API.")
    pulumi_access_token: SecretStr | None = Field(
        None, description="Pulumi access token (default: $PULUMI_ACCESS_TOKEN)."
    )
    watch_interval: float = Field(
        2.0,
        gt=0,
        description="Seconds between checks that the active environment changed (local store; rotated "
        "values are applied without a restart). With PostgreSQL storage a change is also announced at once.",
    )
