"""The PromQL of one observation and the pure parts of the Prometheus client."""

from __future__ import annotations

import json

import pytest

from hadis.api.service import AllocationSettings
from hadis.observe.load import LoadObservation, MetricsUnavailable, estimate_demand
from hadis.observe.prometheus import _endpoint, _error_detail, _parse_vector
from hadis.observe.promql import LabelMatchers, load_queries, quote_label_value, selector


def test_default_selector_uses_namespace_and_instance_labels() -> None:
    assert selector("prod", "sdxl") == '{namespace="prod",app_kubernetes_io_instance="sdxl"}'


def test_queries_of_one_service() -> None:
    q = load_queries("prod", "sdxl", rate_window="30s")
    sel = '{namespace="prod",app_kubernetes_io_instance="sdxl"}'
    assert q.arrival_rate == f"sum(rate(hadis_gateway_arrivals_total{sel}[30s]))"
    assert q.arrivals_present == f"count(hadis_gateway_arrivals_total{sel})"
    assert q.variant_rates == f"sum by (variant) (rate(hadis_gateway_dispatched_total{sel}[30s]))"
    assert q.queue_lengths == f"sum by (variant) (hadis_gateway_waiting_requests{sel})"
    assert q.arrivals_series == f"hadis_gateway_arrivals_total{sel}"


def test_matchers_are_configurable_and_can_be_dropped() -> None:
    m = LabelMatchers(namespace_label="", service_label="hadis_service", extra=(("job", "hadis"),))
    assert selector("prod", "sdxl", m) == '{hadis_service="sdxl",job="hadis"}'
    assert selector("prod", "sdxl", LabelMatchers(namespace_label="", service_label="")) == "{}"


def test_label_values_are_escaped() -> None:
    assert quote_label_value('a"b\\c\nd') == '"a\\"b\\\\c\\nd"'
    injected = selector('x"}[1m]) or vector(1', "s", LabelMatchers(service_label=""))
    assert injected == '{namespace="x\\"}[1m]) or vector(1"}'


def test_kubernetes_label_names_are_refused_with_their_prometheus_spelling() -> None:
    with pytest.raises(ValueError, match="app_kubernetes_io_instance"):
        LabelMatchers(service_label="app.kubernetes.io/instance")


@pytest.mark.parametrize("window", ["1m", "30s", "500ms", "2h"])
def test_windows(window: str) -> None:
    assert load_queries("a", "b", rate_window=window).window == window


@pytest.mark.parametrize("window", ["", "1", "1 m", "1m]) or vector(1", "m1"])
def test_bad_windows(window: str) -> None:
    with pytest.raises(ValueError, match="PromQL duration"):
        load_queries("a", "b", rate_window=window)


def _vector(*items: tuple[dict[str, str], str]) -> bytes:
    result = [{"metric": m, "value": [1700000000.5, v]} for m, v in items]
    return json.dumps({"status": "success", "data": {"resultType": "vector", "result": result}}).encode()


def test_parse_vector() -> None:
    samples = _parse_vector("http://p", "q", _vector(({"variant": "a"}, "1.5"), ({}, "NaN")))
    assert [(s.labels, s.at) for s in samples] == [({"variant": "a"}, 1700000000.5), ({}, 1700000000.5)]
    assert samples[0].value == 1.5


@pytest.mark.parametrize(
    ("body", "match"),
    [
        (b"<html>nginx</html>", "not JSON"),
        (b'{"status": "error", "errorType": "execution", "error": "query timed out"}', "query timed out"),
        (b'{"status": "success", "data": {"resultType": "matrix", "result": []}}', "'matrix', not a vector"),
        (b'{"status": "success", "data": {"resultType": "vector", "result": [{"value": 1}]}}', "malformed"),
    ],
)
def test_parse_errors(body: bytes, match: str) -> None:
    with pytest.raises(MetricsUnavailable, match=match) as e:
        _parse_vector("http://prom:9090", "up", body)
    assert "http://prom:9090" in e.value.reason


def test_error_detail_prefers_prometheus_message() -> None:
    body = b'{"status":"error","errorType":"bad_data","error":"parse error: unexpected end"}'
    assert _error_detail(body) == "bad_data: parse error: unexpected end"
    assert _error_detail(b"  404 page not found\n") == "404 page not found"
    assert _error_detail(b"") == "(empty body)"


@pytest.mark.parametrize("url", ["prometheus:9090", "ftp://prom", "http://", ""])
def test_invalid_urls(url: str) -> None:
    with pytest.raises(MetricsUnavailable, match="invalid prometheus URL"):
        _endpoint(url)


def test_endpoint_keeps_a_path_prefix() -> None:
    assert _endpoint("http://h:9090/prom/") == "http://h:9090/prom/api/v1/query"


def test_estimate_demand_follows_the_spec_settings() -> None:
    settings = AllocationSettings(ewma_alpha=0.5, over_provisioning=1.2)
    first = estimate_demand(None, LoadObservation(arrival_qps=10.0), settings)
    assert first.smoothed_qps == 10.0 and first.demand_qps == pytest.approx(12.0)
    second = estimate_demand(first, LoadObservation(arrival_qps=20.0), settings)
    assert second.smoothed_qps == pytest.approx(15.0)
    edited = AllocationSettings(ewma_alpha=1.0, over_provisioning=1.0)
    third = estimate_demand(second, LoadObservation(arrival_qps=30.0), edited)
    assert (third.alpha, third.over_provisioning, third.demand_qps) == (1.0, 1.0, 30.0)
