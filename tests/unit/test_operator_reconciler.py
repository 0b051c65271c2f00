"""The operator's cycle with its I/O replaced by fakes: what it applies, writes and posts, and what it
does not (no objects for an unusable spec, no solve while Prometheus is down)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
import yaml
from kubernetes import client
from kubernetes.client.exceptions import ApiException
from tests.k8s_local import ROOT

from hadis.api.allocation import Allocation
from hadis.k8s.apply import ApplyResult
from hadis.observe.load import LoadObservation, MetricsUnavailable
from hadis.operator import reconciler as rec
from hadis.reconcile.pods import CONFIG_KEY


class FakeCluster:
    """Records what the reconciler would write; answers the live ConfigMap read."""

    def __init__(self) -> None:
        self.applied: list[list[dict[str, Any]]] = []
        self.statuses: list[dict[str, Any]] = []
        self.events: list[tuple[str, str, str]] = []
        self.config_map: dict[str, str] | None = None
        self.qps: float | None = None  # None: Prometheus down
        self.solves = 0

    def install(self, monkeypatch: pytest.MonkeyPatch) -> None:
        cluster = self

        def apply_objects(api: Any, objects: list[dict[str, Any]]) -> ApplyResult:
            cluster.applied.append(objects)
            for o in objects:
                if o["kind"] == "ConfigMap":
                    cluster.config_map = dict(o.get("data") or {})
            return ApplyResult(created=[], patched=[], unchanged=[], conflicts=0)

        def query_load(url: str, **kw: Any) -> LoadObservation:
            if cluster.qps is None:
                raise MetricsUnavailable(f"prometheus unreachable at {url}")
            return LoadObservation(arrival_qps=cluster.qps, variant_qps={}, queue_lengths={}, at=0.0)

        real_decide = rec.decide

        def decide(*args: Any) -> Allocation:
            cluster.solves += 1
            return real_decide(*args)

        class CoreV1Api:
            def __init__(self, api: Any) -> None:
                pass

            def read_namespaced_config_map(self, name: str, ns: str) -> Any:
                if cluster.config_map is None:
                    raise ApiException(status=404, reason="Not Found")
                return type("CM", (), {"data": cluster.config_map, "metadata": None})()

        monkeypatch.setattr(rec, "apply_objects", apply_objects)
        monkeypatch.setattr(rec, "delete_stale", lambda api, ns, uid, keep: [])
        monkeypatch.setattr(rec, "patch_status", lambda api, ns, name, st: cluster.statuses.append(st))
        monkeypatch.setattr(rec, "emit_event", lambda api, ref, r, m, t: cluster.events.append((t, r, m)))
        monkeypatch.setattr(rec, "query_load", query_load)
        monkeypatch.setattr(rec, "decide", decide)
        monkeypatch.setattr(client, "CoreV1Api", CoreV1Api)


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def cluster(monkeypatch: pytest.MonkeyPatch) -> FakeCluster:
    c = FakeCluster()
    c.install(monkeypatch)
    return c


def body(generation: int = 1, status: dict[str, Any] | None = None, **spec: Any) -> dict[str, Any]:
    doc = yaml.safe_load((ROOT / "examples" / "local-emulated.yaml").read_text())
    doc["metadata"] |= {"namespace": "ns", "uid": "uid-1", "generation": generation}
    doc["spec"]["allocation"]["intervalSeconds"] = 10
    doc["spec"].update(spec)
    doc["status"] = status or {}
    return dict(doc)


def run(r: rec.Reconciler, b: dict[str, Any]) -> bool:
    return asyncio.run(r.run(b))


def worker_replicas(objects: list[dict[str, Any]]) -> dict[str, int]:
    return {
        o["metadata"]["name"]: o["spec"]["replicas"]
        for o in objects
        if o["kind"] == "Deployment" and "hadis.io/variant" in o["metadata"]["labels"]
    }


def conditions(status: dict[str, Any]) -> dict[str, tuple[str, str]]:
    return {c["type"]: (c["status"], c["reason"]) for c in status["conditions"]}


def test_an_unusable_spec_deploys_nothing_and_names_the_field(cluster: FakeCluster) -> None:
    r = rec.Reconciler(api=None, monotonic=Clock())  # type: ignore[arg-type]
    assert run(r, body(variants=[{"name": "sdxl-lightning"}, {"name": "sd9"}]))
    assert cluster.applied == [] and cluster.solves == 0
    (st,) = cluster.statuses
    assert conditions(st)["Degraded"] == ("True", "UnusableSpec")
    assert [(t, reason) for t, reason, _ in cluster.events] == [("Warning", "UnusableSpec")]
    assert "spec.variants[1].name" in cluster.events[0][2]


def test_a_model_invalid_spec_is_reported_without_a_crash(cluster: FakeCluster) -> None:
    r = rec.Reconciler(api=None, monotonic=Clock())  # type: ignore[arg-type]
    assert run(r, body(policy="fixed-pair"))
    assert cluster.applied == []
    assert conditions(cluster.statuses[0])["Degraded"] == ("True", "InvalidSpec")
    assert "fixedPair" in cluster.events[0][2]


def test_first_cycle_without_metrics_deploys_then_cycles_follow_the_interval(cluster: FakeCluster) -> None:
    clock = Clock()
    r = rec.Reconciler(api=None, monotonic=clock)  # type: ignore[arg-type]
    assert run(r, body())
    (objects,) = cluster.applied
    assert sum(worker_replicas(objects).values()) >= 2
    st = cluster.statuses[-1]
    assert conditions(st)["Degraded"] == ("True", "MetricsUnavailable")
    assert conditions(st)["Ready"] == ("True", "Deployed")
    assert json.loads(cluster.config_map[CONFIG_KEY])["generation"] == 1  # type: ignore[index]
    clock.t += 5
    assert not run(r, body(status=st))  # not due
    clock.t += 5
    cluster.qps = 30.0
    assert run(r, body(status=st))
    assert cluster.solves == 2
    assert json.loads(cluster.config_map[CONFIG_KEY])["generation"] == 2  # type: ignore[index]
    assert cluster.statuses[-1]["demandQps"] == pytest.approx(30 * 1.05)


def test_prometheus_down_keeps_the_allocation_without_solving(cluster: FakeCluster) -> None:
    clock = Clock()
    r = rec.Reconciler(api=None, monotonic=clock)  # type: ignore[arg-type]
    cluster.qps = 30.0
    run(r, body())
    st = cluster.statuses[-1]
    solves, replicas = cluster.solves, worker_replicas(cluster.applied[-1])
    cluster.qps = None
    clock.t += 10
    run(r, body(status=st))
    assert cluster.solves == solves
    assert worker_replicas(cluster.applied[-1]) == replicas
    assert conditions(cluster.statuses[-1])["Degraded"] == ("True", "MetricsUnavailable")
    assert cluster.statuses[-1]["allocation"] == st["allocation"]


def test_a_restarted_operator_rewrites_nothing(cluster: FakeCluster) -> None:
    clock = Clock()
    cluster.qps = 12.0
    run(rec.Reconciler(api=None, monotonic=clock), body())  # type: ignore[arg-type]
    st, config = cluster.statuses[-1], dict(cluster.config_map or {})
    n_status, n_events = len(cluster.statuses), len(cluster.events)
    fresh = rec.Reconciler(api=None, monotonic=clock)  # type: ignore[arg-type]
    cluster.qps = 12.0
    assert run(fresh, body(status=st))
    assert (len(cluster.statuses), len(cluster.events)) == (n_status, n_events)
    assert cluster.config_map == config  # same generation: the ConfigMap is not rewritten
