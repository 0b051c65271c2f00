"""Reading the gateway's Prometheus text metrics (the local control loop's observe step)."""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client.parser import text_string_to_metric_families


@dataclass(frozen=True)
class GatewaySample:
    """Counters and gauges of one scrape: requests seen so far and the queue per variant."""

    arrivals_total: float
    queue: dict[str, float]
    config_generation: int | None = None  # the cascade config generation the gateway has applied
    dispatched: dict[str, float] = field(default_factory=dict)  # generations asked of each variant
    waiting: dict[str, float] | None = None  # waiting for an idle replica (None: an older gateway)


def parse_gateway_metrics(text: str) -> GatewaySample:
    """Arrivals = images asked for, counted on arrival (``hadis_gateway_arrivals_total``); from a
    gateway without that counter, answered (any outcome) + refused; queue = outstanding per variant;
    dispatched = generations asked of each variant so far; waiting = requests each variant's
    replicas have not taken yet (the queue whose Little's-law delay the allocator adds)."""
    arrivals: float | None = None
    answered = 0.0
    queue: dict[str, float] = {}
    dispatched: dict[str, float] = {}
    waiting: dict[str, float] | None = None
    generation: int | None = None
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == "hadis_gateway_arrivals_total":
                arrivals = s.value
            elif s.name in ("hadis_gateway_requests_total", "hadis_gateway_rejected_total"):
                answered += s.value
            elif s.name == "hadis_gateway_config_generation_info":
                generation = int(s.value)
            elif s.name == "hadis_gateway_queue_length_requests" and "variant" in s.labels:
                queue[s.labels["variant"]] = s.value
            elif s.name == "hadis_gateway_dispatched_total" and "variant" in s.labels:
                dispatched[s.labels["variant"]] = s.value
            elif s.name == "hadis_gateway_waiting_requests" and "variant" in s.labels:
                waiting = waiting or {}
                waiting[s.labels["variant"]] = s.value
    total = answered if arrivals is None else arrivals
    return GatewaySample(total, queue, generation, dispatched, waiting)
