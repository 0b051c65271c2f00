"""The gateway's Prometheus metrics (``hadis_gateway_<thing>_<unit>``), one registry per app."""

from __future__ import annotations

import asyncio

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, ProcessCollector

LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2, 3, 5, 7.5, 10, 15, 20, 30, 60, 120)


class GatewayMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        r = self.registry = registry or CollectorRegistry()
        # process_resident_memory_bytes, process_open_fds, CPU seconds: leaks show in a pod too
        ProcessCollector(registry=r)
        self.tasks = Gauge(
            "hadis_gateway_asyncio_tasks", "asyncio tasks alive in the gateway's loop", registry=r
        )
        self.tasks.set_function(_asyncio_tasks)
        self.arrivals = Counter(
            "hadis_gateway_arrivals_total",
            "Images asked for by valid requests, counted on arrival (the demand the control loop sees)",
            registry=r,
        )
        self.requests = Counter(
            "hadis_gateway_requests_total",
            "Images answered, by outcome and variant",
            ["outcome", "variant"],
            registry=r,
        )
        self.latency = Histogram(
            "hadis_gateway_request_latency_seconds",
            "Arrival to answer, per image",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.router_hard = Counter(
            "hadis_gateway_router_hard_total", "Prompts the router sent to heavy", registry=r
        )
        self.escalations = Counter(
            "hadis_gateway_escalations_total", "Light images the discriminator escalated", registry=r
        )
        self.in_flight = Gauge("hadis_gateway_in_flight_requests", "Requests being served", registry=r)
        self.queue = Gauge(
            "hadis_gateway_queue_length_requests",
            "Requests outstanding at each variant",
            ["variant"],
            registry=r,
        )
        self.dispatched = Counter(
            "hadis_gateway_dispatched_total",
            "Generations asked of each variant (a cascade stage each), counted when they join its queue",
            ["variant"],
            registry=r,
        )
        self.waiting = Gauge(
            "hadis_gateway_waiting_requests",
            "Requests waiting at the gateway for an idle replica of each variant (not yet at a worker)",
            ["variant"],
            registry=r,
        )
        self.rerouted = Counter(
            "hadis_gateway_rerouted_total",
            "Stages moved to the new configuration's variant because theirs lost every replica",
            registry=r,
        )
        self.slo_violations = Counter(
            "hadis_gateway_slo_violations_total", "Images answered after the SLO (or not at all)", registry=r
        )
        self.rejected = Counter(
            "hadis_gateway_rejected_total", "Requests refused before dispatch", ["reason"], registry=r
        )
        self.retries = Counter(
            "hadis_gateway_worker_retries_total", "Retries after a worker connection failed", registry=r
        )
        self.config_reloads = Counter(
            "hadis_gateway_config_reloads_total", "Cascade config reads, by result", ["result"], registry=r
        )
        self.config_generation = Gauge(
            "hadis_gateway_config_generation_info", "Generation of the cascade config in force", registry=r
        )


def _asyncio_tasks() -> float:
    """Tasks of the running loop (the scrape runs on it); 0 when read outside a loop."""
    try:
        return float(len(asyncio.all_tasks()))
    except RuntimeError:
        return 0.0
