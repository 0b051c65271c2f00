"""Reading the gateway's Prometheus text metrics (the local control loop's observe step)."""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client.parser import text_string_to_metric_families


@dataclass(frozen=True)
class GatewaySample:
    """Counters and gauges of one scrape: requests seen so far and the queue per variant."""

    arrivals_total: float
    queue: dict[str, float]


def parse_gateway_metrics(text: str) -> GatewaySample:
    """Arrivals = answered (any outcome) + refused before dispatch; queue = outstanding per variant."""
    arrivals = 0.0
    queue: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name in ("hadis_gateway_requests_total", "hadis_gateway_rejected_total"):
                arrivals += s.value
            elif s.name == "hadis_gateway_queue_length_requests" and "variant" in s.labels:
                queue[s.labels["variant"]] = s.value
    return GatewaySample(arrivals, queue)
