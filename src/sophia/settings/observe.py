"""The observe section (``observe:``, ``SOPHIA_OBSERVE__…``): uptime probes, SLO targets and where alerts go."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr


class ObserveSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    monitor: bool = Field(
        True, description="`sophia run` probes its servers and checks the SLOs on a schedule."
    )
    tracing: bool = Field(
        True,
        description="Spans for every gateway call and MCP tool call, built off the request path and kept in "
        "the local span store (the dashboard's traces); also sent over OTLP when otlp_endpoint is set.",
    )
    capture_content: bool = Field(
        False,
        description="Put prompts and answers on spans (redacted of secrets). Off: spans carry no content.",
    )
    otlp_endpoint: str | None = Field(
        None,
        description="OTLP collector for spans, e.g. http://127.0.0.1:6006/v1/traces (Phoenix, HTTP) or "
        "http://127.0.0.1:4317 (gRPC). Unset: the standard OTEL_EXPORTER_OTLP_* variables apply, if set.",
    )
    otlp_protocol: Literal["http/protobuf", "grpc"] = Field(
        "http/protobuf", description="How spans travel to otlp_endpoint."
    )
    otlp_headers: dict[str, SecretStr] = Field(
        default_factory=dict,
        description="Headers sent with every OTLP export (Arize: space_id and api_key); secrets, never logged.",
    )
    project: str = Field(
        "sophia",
        min_length=1,
        description="Project the spans belong to in Phoenix/Arize (openinference.project.name).",
    )
    span_retention_days: float = Field(7.0, gt=0, description="Days the local span store keeps spans.")
    redact_patterns: list[str] = Field(
        default_factory=list,
        description="More regular expressions whose matches are masked in span attributes (secrets are by default).",
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
    probe_providers: bool = Field(
        True,
        description="Check every configured provider without spending tokens (its model listing; the local "
        "model's state) as uptime service provider:<name>. Off: providers are judged by their circuit "
        "breakers alone. A provider that needs a key and has none is never asked.",
    )
    provider_probe_interval: float = Field(
        60.0,
        ge=30,
        le=86_400,
        description="Least seconds between two checks of a provider that answered (rounds in between judge it "
        "by that check and its circuit breakers), so a short probe_interval never hammers a paid API.",
    )
    provider_probe_timeout: float = Field(
        10.0, gt=0, le=60, description="Seconds a provider's check may take before it counts as down."
    )
    drift_interval: float = Field(
        3600.0,
        ge=60,
        le=7 * 86_400,
        description="Seconds between two drift checks of the gateway's traffic (last 24 h against the 7 days "
        "before); each drifted signal raises a ticket until it stops drifting.",
    )
