"""The observe section (``observe:``, ``SOPHIA_OBSERVE__…``): uptime probes, SLO targets and where alerts go."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, SecretStr


class ObserveSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    monitor: bool = Field(
        True, description="`sophia run` probes its servers and checks the SLOs on a schedule."
    )
    probe_interval: float = Field(60.0, ge=1, le=3600, description="Seconds between two rounds of probes.")
    target: float = Field(0.995, gt=0, lt=1, description="Availability every probed service aims for.")
    probes: dict[str, str] = Field(
        default_factory=dict, description="More services to probe: name -> URL that must answer 2xx."
    )
    latency_ms: float = Field(
        10_000.0, gt=0, description="A gateway request slower than this counts against the latency SLO."
    )
    latency_target: float = Field(0.99, gt=0, lt=1, description="Share of requests faster than latency_ms.")
    error_target: float = Field(0.995, gt=0, lt=1, description="Share of gateway requests that must succeed.")
    daily_budget_usd: float | None = Field(
        None, gt=0, description="Alert when a day's spend passes this, or is forecast to (ticket, then page)."
    )
    webhook_url: SecretStr | None = Field(
        None, description="Alerts also go here as Slack-compatible JSON (a Slack webhook URL is a secret)."
    )
