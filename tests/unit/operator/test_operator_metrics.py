"""The operator's own metrics: values after allocations and errors, and the /metrics + /healthz server."""

from __future__ import annotations

import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest
from prometheus_client.parser import text_string_to_metric_families

from hadis.api.allocation import Allocation, VariantAllocation
from hadis.api.profile import CascadeRow
from hadis.observe.load import LoadObservation
from hadis.operator.metrics import MetricsServer, OperatorMetrics, start_metrics_server

NS, SVC = "imaging", "sdxl"
LIGHT, HEAVY = "sdxl-lightning", "sd35-large-turbo"


class Clock:
    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def allocation(*, light: int = 3, heavy: int = 5, theta: float = 0.3, tau: float = 0.2) -> Allocation:
    row = CascadeRow(light=LIGHT, heavy=HEAVY, theta=theta, tau=tau, p=theta + (1 - theta) * tau, fid=21.5)
    return Allocation(
        policy="hadis",
        row=row,
        variants=[
            VariantAllocation(
                variant=LIGHT, pool="l40s", replicas=light, batch_size=8, latency_s=1.0, throughput_qps=24.0
            ),
            VariantAllocation(
                variant=HEAVY, pool="l40s", replicas=heavy, batch_size=2, latency_s=2.0, throughput_qps=5.0
            ),
        ],
        demand_qps=12.5,
        expected_fid=21.5,
        solver_status="Optimal",
        solve_time_s=0.42,
    )


def samples(m: OperatorMetrics) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of the exposition text, keyed by (name, labels)."""
    out = {}
    for family in text_string_to_metric_families(m.exposition().decode()):
        for s in family.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


def value(m: OperatorMetrics, name: str, **labels: str) -> float | None:
    return samples(m).get((name, frozenset({"namespace": NS, "service": SVC, **labels}.items())))


def test_allocation_gauges() -> None:
    clock = Clock()
    m = OperatorMetrics(clock=clock)
    m.record_allocation(SVC, NS, allocation())
    assert value(m, "hadis_operator_variant_replicas", variant=LIGHT, pool="l40s") == 3
    assert value(m, "hadis_operator_variant_replicas", variant=HEAVY, pool="l40s") == 5
    assert value(m, "hadis_operator_variant_batch_size_requests", variant=LIGHT, pool="l40s") == 8
    assert value(m, "hadis_operator_variant_capacity_qps", variant=HEAVY, pool="l40s") == 5.0
    assert value(m, "hadis_operator_gpus") == 8
    assert value(m, "hadis_operator_demand_qps") == 12.5
    assert value(m, "hadis_operator_expected_fid") == 21.5
    assert value(m, "hadis_operator_feasible") == 1 and value(m, "hadis_operator_shed_qps") == 0
    assert value(m, "hadis_operator_theta_ratio") == 0.3 and value(m, "hadis_operator_tau_ratio") == 0.2
    assert value(m, "hadis_operator_heavy_share_ratio") == pytest.approx(0.44)
    row = {"light": LIGHT, "heavy": HEAVY, "theta": "0.3", "tau": "0.2"}
    assert value(m, "hadis_operator_cascade_row_info", **row) == 1
    assert value(m, "hadis_operator_allocation_info", policy="hadis", solver_status="Optimal") == 1
    assert value(m, "hadis_operator_solve_seconds_count") == 1
    assert value(m, "hadis_operator_solve_seconds_sum") == pytest.approx(0.42)
    assert value(m, "hadis_operator_solve_seconds_bucket", le="0.5") == 1
    assert value(m, "hadis_operator_allocations_total") == 1
    assert value(m, "hadis_operator_last_reconcile_success_timestamp_seconds") == clock.now


def test_a_new_row_replaces_the_old_and_dropped_variants_go_to_zero() -> None:
    m = OperatorMetrics()
    m.record_allocation(SVC, NS, allocation())
    alloc = allocation(theta=0.5, tau=0.1)
    alloc = alloc.model_copy(update={"variants": alloc.variants[1:]})  # the light variant is gone
    m.record_allocation(SVC, NS, alloc)
    rows = [k for k in samples(m) if k[0] == "hadis_operator_cascade_row_info"]
    assert len(rows) == 1 and ("theta", "0.5") in rows[0][1]
    assert value(m, "hadis_operator_variant_replicas", variant=LIGHT, pool="l40s") == 0
    assert value(m, "hadis_operator_variant_batch_size_requests", variant=LIGHT, pool="l40s") is None
    assert value(m, "hadis_operator_allocations_total") == 2
    assert value(m, "hadis_operator_solve_seconds_count") == 2


def test_a_split_policy_has_no_row() -> None:
    m = OperatorMetrics()
    m.record_allocation(SVC, NS, allocation())
    split = Allocation(
        policy="proteus",
        split={LIGHT: 1.0},
        demand_qps=3.0,
        expected_fid=25.0,
        feasible=False,
        shed=True,
        shed_qps=1.5,
    )
    m.record_allocation(SVC, NS, split)
    names = {k[0] for k in samples(m)}
    assert "hadis_operator_cascade_row_info" not in names and "hadis_operator_theta_ratio" not in names
    assert value(m, "hadis_operator_allocation_info", policy="proteus", solver_status="n/a") == 1
    assert value(m, "hadis_operator_allocation_info", policy="hadis", solver_status="Optimal") is None
    assert value(m, "hadis_operator_feasible") == 0 and value(m, "hadis_operator_shed_qps") == 1.5


def test_errors_observations_and_forgetting_a_service() -> None:
    m = OperatorMetrics()
    m.record_error(SVC, NS, "MetricsUnavailable")
    m.record_error(SVC, NS, "MetricsUnavailable")
    m.record_error(SVC, NS, "InvalidSpec")
    m.record_error("other", NS, "InvalidSpec")
    m.record_observation(SVC, NS, LoadObservation(arrival_qps=9.5))
    m.record_allocation(SVC, NS, allocation())
    assert value(m, "hadis_operator_reconcile_errors_total", reason="MetricsUnavailable") == 2
    assert value(m, "hadis_operator_reconcile_errors_total", reason="InvalidSpec") == 1
    assert value(m, "hadis_operator_observed_arrival_qps") == 9.5
    m.forget_service(SVC, NS)
    left = [k for k in samples(m) if ("service", SVC) in k[1]]
    assert left == []
    assert (
        samples(m)[
            (
                "hadis_operator_reconcile_errors_total",
                frozenset({"namespace": NS, "service": "other", "reason": "InvalidSpec"}.items()),
            )
        ]
        == 1
    )


@pytest.fixture
def served() -> Iterator[tuple[OperatorMetrics, Clock, MetricsServer]]:
    clock = Clock()
    m = OperatorMetrics(clock=clock)
    server = start_metrics_server(0, host="127.0.0.1", stale_after_s=30, metrics=m)
    yield m, clock, server
    server.stop()


def get(server: MetricsServer, path: str) -> tuple[int, str, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{server.port}{path}", timeout=5) as resp:
            return resp.status, resp.headers["Content-Type"], resp.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.headers["Content-Type"], e.read().decode()


def test_server_serves_metrics_and_liveness(served: tuple[OperatorMetrics, Clock, MetricsServer]) -> None:
    m, clock, server = served
    m.record_allocation(SVC, NS, allocation())
    status, ctype, text = get(server, "/metrics")
    assert status == 200 and ctype.startswith("text/plain")
    labels = 'namespace="imaging",pool="l40s",service="sdxl",variant="sd35-large-turbo"'
    assert f"hadis_operator_variant_replicas{{{labels}}} 5.0" in text
    assert get(server, "/healthz")[0] == 200
    clock.now += 31  # the loop stopped marking
    status, _, text = get(server, "/healthz")
    assert status == 503 and "last mark 31 s ago" in text
    m.mark_alive()
    assert get(server, "/healthz")[0] == 200
    assert get(server, "/nope")[0] == 404
    assert f"hadis_operator_heartbeat_timestamp_seconds {clock.now:.9e}" in get(server, "/metrics")[2]
