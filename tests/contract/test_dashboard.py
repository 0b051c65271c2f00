"""Contract: the committed Grafana dashboard is what hadis.dashboards generates, and it only asks
for metrics the gateway, the workers and the operator export (`make dashboards` rewrites it)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry

from hadis.dashboards.overview import DASHBOARD_FILE, build_dashboard, dashboard_text
from hadis.observe.promql import DEFAULT_MATCHERS
from hadis.operator.metrics import OperatorMetrics
from hadis_gateway.endpoints import endpoints_gauge
from hadis_gateway.metrics import GatewayMetrics
from hadis_worker.metrics import WorkerMetrics

COMMITTED = Path(__file__).resolve().parents[2] / "charts" / "hadis" / "dashboards" / DASHBOARD_FILE
METRIC = re.compile(r"\b(hadis_[a-z0-9_]+)\b")
SUFFIXES = ("", "_total", "_bucket", "_sum", "_count")


def _targets(model: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    return [(p["title"], t) for p in model["panels"] for t in p["targets"]]


def _exported_names() -> set[str]:
    gateway = GatewayMetrics()
    endpoints_gauge(gateway.registry)
    registries: list[CollectorRegistry] = [
        gateway.registry,
        WorkerMetrics("v").registry,
        OperatorMetrics().registry,
    ]
    return {f"{m.name}{s}" for r in registries for m in r.collect() for s in SUFFIXES}


def test_committed_dashboard_matches_the_generator() -> None:
    committed = COMMITTED.read_text(encoding="utf-8")
    assert committed == dashboard_text(), (
        f"charts/hadis/dashboards/{DASHBOARD_FILE} drifted from hadis.dashboards: "
        "run `python scripts/build_dashboard.py` (make dashboards)"
    )


def test_every_query_names_exported_metrics() -> None:
    exported = _exported_names()
    for title, target in _targets(build_dashboard()):
        names = set(METRIC.findall(target["expr"]))
        assert names, f"{title}: {target['expr']} names no hadis metric"
        assert names <= exported, f"{title}: {sorted(names - exported)} are exported by no component"


def test_every_selector_follows_the_template_variables() -> None:
    gateway_side = (
        f'{DEFAULT_MATCHERS.namespace_label}=~"$namespace"',
        f'{DEFAULT_MATCHERS.service_label}=~"$service"',
    )
    operator_side = ('namespace=~"$namespace"', 'service=~"$service"')
    for title, target in _targets(build_dashboard()):
        expr = target["expr"]
        for metric, inner in re.findall(r"(hadis_[a-z0-9_]+)\{([^}]*)\}", expr):
            wanted = operator_side if metric.startswith("hadis_operator_") else gateway_side
            assert all(m in inner for m in wanted), f"{title}: {metric}{{{inner}}} misses {wanted}"
        assert len(re.findall(r"hadis_[a-z0-9_]+\{", expr)) == len(METRIC.findall(expr)), (
            f"{title}: a metric without a selector in {expr}"
        )


def test_model_shape() -> None:
    model = build_dashboard()
    assert model["schemaVersion"] >= 39 and model["uid"]
    ids = [p["id"] for p in model["panels"]]
    assert len(ids) == len(set(ids))
    variables = {v["name"]: v for v in model["templating"]["list"]}
    source = variables["datasource"]
    assert source["type"] == "datasource" and source["query"] == "prometheus"
    for name in ("namespace", "service"):
        assert variables[name]["includeAll"] and variables[name]["allValue"] == ".*"
    for title, target in _targets(model):
        assert target["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, title
        assert target["refId"] and "legendFormat" in target, title
    for panel in model["panels"]:
        assert panel["fieldConfig"]["defaults"]["unit"], panel["title"]
    json.dumps(model)  # plain JSON all the way down
