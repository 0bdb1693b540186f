"""Prometheus metrics from what the ledger keeps: one figure for cost, counted off the request path.

``LedgerMetrics.observe`` is a ledger observer (``Ledger.observers``): it runs on each batch *after*
it is written, so the request path pays nothing and ``/metrics`` shows exactly the requests, tokens
and dollars the ledger holds (cost is the ledger's own ``cost_usd``, never computed again). Gauges read
at scrape time: the breakers' states. Served at ``GET /metrics`` (and ``/admin/metrics``) on the
gateway for a key allowed to read every team's usage (Prometheus: ``authorization: {credentials: …}``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from sophia.accounts.ledger import UsageRecord

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)
BREAKER_STATES = ("closed", "half_open", "open")


class _Breakers(Collector):
    def __init__(self, snapshot: Callable[[], dict[str, dict[str, Any]]]) -> None:
        self.snapshot = snapshot

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            "sophia_breaker_state",
            "1 for the state each model's circuit breaker is in",
            labels=["model", "state"],
        )
        for model, snap in self.snapshot().items():
            for state in BREAKER_STATES:
                family.add_metric([model, state], 1.0 if str(snap.get("state")) == state else 0.0)
        yield family


class LedgerMetrics:
    """Counters fed by the ledger's written batches, and the breakers' states at scrape time."""

    def __init__(self, breakers: Callable[[], dict[str, dict[str, Any]]] | None = None) -> None:
        r = self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "sophia_requests",
            "Requests recorded in the ledger",
            ["endpoint", "model", "outcome", "cache"],
            registry=r,
        )
        self.latency = Histogram(
            "sophia_request_latency_seconds",
            "Request latency",
            ["endpoint"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.tokens = Counter("sophia_tokens", "Tokens used", ["model", "kind"], registry=r)
        self.cost = Counter(
            "sophia_cost_usd", "Dollars spent, as the ledger records them", ["model", "team"], registry=r
        )
        self.saved = Counter("sophia_cache_saved_usd", "Dollars cache hits saved", ["team"], registry=r)
        self.cache_hits = Counter("sophia_cache_hits", "Answers served from the cache", ["kind"], registry=r)
        self.tool_calls = Counter(
            "sophia_mcp_tool_calls", "MCP tool calls", ["server", "tool", "outcome"], registry=r
        )
        if breakers is not None:
            r.register(_Breakers(breakers))

    def observe(self, records: Sequence[UsageRecord]) -> None:
        for rec in records:
            endpoint = rec.endpoint
            if endpoint.startswith("mcp:"):
                server, _, tool = endpoint[4:].partition("/")
                self.tool_calls.labels(server, tool, rec.outcome).inc()
                endpoint = "mcp"
            model = rec.served_model or rec.requested_model or "-"
            self.requests.labels(endpoint, model, rec.outcome, rec.cache).inc()
            self.latency.labels(endpoint).observe(max(0.0, rec.latency_ms) / 1000)
            if rec.prompt_tokens:
                self.tokens.labels(model, "prompt").inc(rec.prompt_tokens)
            if rec.completion_tokens:
                self.tokens.labels(model, "completion").inc(rec.completion_tokens)
            if rec.cost_usd:
                self.cost.labels(model, rec.team).inc(rec.cost_usd)
            if rec.cache in ("exact", "semantic"):
                self.cache_hits.labels(rec.cache).inc()
                if rec.saved_usd:
                    self.saved.labels(rec.team).inc(rec.saved_usd)

    def render(self) -> bytes:
        return generate_latest(self.registry)
