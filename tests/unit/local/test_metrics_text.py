"""The local control loop reads the gateway's own metrics text (its real registry, not a copy)."""

from __future__ import annotations

from prometheus_client import generate_latest

from hadis.local.metrics_text import parse_gateway_metrics
from hadis_gateway.metrics import GatewayMetrics


def test_demand_is_counted_on_arrival_and_generation_is_read() -> None:
    m = GatewayMetrics()
    m.arrivals.inc(7)  # seven images asked for, none answered yet
    m.requests.labels("ok", "sd35-medium").inc(2)
    m.rejected.labels("queue_full").inc(1)
    m.queue.labels("sd35-medium").set(5)
    m.config_generation.set(12)
    sample = parse_gateway_metrics(generate_latest(m.registry).decode())
    assert sample.arrivals_total == 7
    assert sample.queue == {"sd35-medium": 5}
    assert sample.config_generation == 12


def test_gateway_without_arrivals_counter_falls_back_to_answered_plus_refused() -> None:
    text = (
        'hadis_gateway_requests_total{outcome="ok",variant="a"} 3\n'
        'hadis_gateway_rejected_total{reason="queue_full"} 2\n'
    )
    sample = parse_gateway_metrics(text)
    assert sample.arrivals_total == 5 and sample.config_generation is None and sample.queue == {}


def test_per_variant_dispatches_and_waiting_requests_are_read() -> None:
    m = GatewayMetrics()
    m.dispatched.labels("light").inc(7)
    m.dispatched.labels("heavy").inc(3)
    m.waiting.labels("heavy").set(5)
    m.queue.labels("heavy").set(9)  # waiting + at the workers
    sample = parse_gateway_metrics(generate_latest(m.registry).decode())
    assert sample.dispatched == {"light": 7.0, "heavy": 3.0}
    assert sample.waiting == {"heavy": 5.0} and sample.queue == {"heavy": 9.0}
    assert parse_gateway_metrics("hadis_gateway_arrivals_total 1\n").waiting is None  # older gateway
