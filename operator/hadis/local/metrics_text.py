"""Reading the gateway's Prometheus text metrics (the local control loop's observe step)."""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client.parser import text_string_to_metric_families


@dataclass(frozen=True)
class GatewaySample:
    """Counters and gauges of one scrape: requests seen so far and the queue per variant."""

    arrivals_total: float
    queue: dict[str, float]
    config_generation: int | None = None  # the cascade config generation the gateway has applied


def parse_gateway_metrics(text: str) -> GatewaySample:
    """Arrivals = images asked for, counted on arrival (``hadis_gateway_arrivals_total``); from a
    gateway without that counter, answered (any outcome) + refused; queue = outstanding per variant."""
    arrivals: float | None = None
    answered = 0.0
    queue: dict[str, float] = {}
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
    return GatewaySample(answered if arrivals is None else arrivals, queue, generation)
