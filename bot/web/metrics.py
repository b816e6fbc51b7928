"""Prometheus metrics of the web process, kept in a registry of its own per app."""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Histogram, ProcessCollector


@dataclass
class WebMetrics:
    """Counters and timings that GET /metrics exposes in the Prometheus text format."""

    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        ProcessCollector(registry=self.registry)
        self.stripe_events = Counter(
            "chartbot_stripe_webhook_requests", "Stripe webhook requests by result", ["result"],
            registry=self.registry)
        self.stripe_seconds = Histogram(
            "chartbot_stripe_webhook_seconds", "Time to answer a Stripe webhook request, in seconds",
            buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5), registry=self.registry)
        self.telegram_updates = Counter(
            "chartbot_telegram_webhook_updates", "Telegram webhook requests by result", ["result"],
            registry=self.registry)
        self.billing_notices = Counter(
            "chartbot_billing_notices", "Billing messages to users by kind and result", ["kind", "result"],
            registry=self.registry)
