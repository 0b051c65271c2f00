"""The operator end to end: ``kopf run -m hadis.operator`` as a subprocess against the real
kube-apiserver + controller-manager, observing a real Prometheus that scrapes a fake gateway
exporting ``hadis_gateway_arrivals_total`` at a chosen rate.

The tests run in file order and share one HadisService (``e1``, the emulated E1 example at a 2 s
interval): deploy → load step → spec edit → Prometheus down → operator restart → unusable specs →
delete. Pods stay Pending (no kubelet): what is checked is what the operator writes.
"""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, cast

import pytest
import yaml
from kubernetes import client
from kubernetes.client.exceptions import ApiException
from tests.k8s_local import ControlPlane, wait_until
from tests.operator_local import (
    ArrivalCounter,
    OperatorProcess,
    namespace_fixture,
    operator_fixture,
    serving_arrivals,
)
from tests.prometheus_local import LocalPrometheus, PrometheusMissing, Target, running_prometheus

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
NS = "e2e-operator"
NAME = "e1"
GROUP, VERSION, PLURAL = "hadis.io", "v1alpha1", "hadisservices"
INTERVAL_S = 2.0


# --- fixtures -------------------------------------------------------------------------------------


ns = namespace_fixture(NS)


@pytest.fixture(scope="module")
def arrivals() -> ArrivalCounter:
    return ArrivalCounter()


@pytest.fixture(scope="module")
def prom(arrivals: ArrivalCounter) -> Iterator[LocalPrometheus]:
    with serving_arrivals(arrivals) as address:
        target = Target.of(address, namespace=NS, app_kubernetes_io_instance=NAME)
        try:
            with running_prometheus([target]) as p:
                p.wait_until_scraped(address, scrapes=2)
                yield p
        except PrometheusMissing as e:
            pytest.fail(str(e), pytrace=False)


operator = operator_fixture("operator", fail_if_died=True)


# --- helpers --------------------------------------------------------------------------------------


def example(name: str, prometheus_url: str, **spec: Any) -> dict[str, Any]:
    """examples/local-emulated.yaml at a 2 s interval, reading ``prometheus_url``."""
    body: dict[str, Any] = yaml.safe_load((ROOT / "examples" / "local-emulated.yaml").read_text())
    body["metadata"] = {"name": name, "namespace": NS}
    s = body["spec"]
    s["allocation"] |= {"intervalSeconds": INTERVAL_S, "ewmaAlpha": 0.5}
    s["metrics"] = {"prometheusUrl": prometheus_url, "rateWindow": "5s", "timeoutSeconds": 2}
    s.update(copy.deepcopy(spec))
    return body


def crs(cp: ControlPlane) -> client.CustomObjectsApi:
    return client.CustomObjectsApi(cp.api)


def get_svc(cp: ControlPlane, name: str = NAME) -> dict[str, Any]:
    obj = crs(cp).get_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, name)
    return cast(dict[str, Any], obj)


def condition(obj: dict[str, Any], type_: str) -> dict[str, Any]:
    for c in (obj.get("status") or {}).get("conditions") or []:
        if c["type"] == type_:
            return dict(c)
    return {}


def owned(cp: ControlPlane, uid: str) -> dict[str, Any]:
    """``kind/name`` → object (as a dict) of every Deployment, Service and ConfigMap ``uid`` owns."""
    apps, core = client.AppsV1Api(cp.api), client.CoreV1Api(cp.api)
    found: dict[str, Any] = {}
    for kind, items in (
        ("Deployment", apps.list_namespaced_deployment(NS).items),
        ("Service", core.list_namespaced_service(NS).items),
        ("ConfigMap", core.list_namespaced_config_map(NS).items),
    ):
        for item in items:
            meta = item.metadata
            if meta is not None and any(r.uid == uid for r in meta.owner_references or []):
                found[f"{kind}/{meta.name}"] = item
    return found


def worker_replicas(cp: ControlPlane, uid: str) -> dict[str, int]:
    """variant → replicas of its worker Deployments."""
    out: dict[str, int] = {}
    for key, obj in owned(cp, uid).items():
        labels = obj.metadata.labels or {}
        if key.startswith("Deployment/") and "hadis.io/variant" in labels:
            v = labels["hadis.io/variant"]
            out[v] = out.get(v, 0) + int(obj.spec.replicas or 0)
    return out


def allocated_replicas(obj: dict[str, Any]) -> dict[str, int]:
    alloc = (obj.get("status") or {}).get("allocation") or {}
    out: dict[str, int] = {}
    for a in alloc.get("variants") or []:
        out[a["variant"]] = out.get(a["variant"], 0) + int(a["replicas"])
    return out


def cascade_config(cp: ControlPlane, uid: str) -> dict[str, Any]:
    cms = [o for k, o in owned(cp, uid).items() if k.startswith("ConfigMap/")]
    assert len(cms) == 1, list(owned(cp, uid))
    data = cms[0].data or {}
    assert len(data) == 1, data
    doc: dict[str, Any] = json.loads(next(iter(data.values())))
    return doc


def events(cp: ControlPlane, name: str) -> list[client.CoreV1Event]:
    items = client.CoreV1Api(cp.api).list_namespaced_event(NS).items
    return [e for e in items if e.involved_object.name == name and e.involved_object.kind == "HadisService"]


def nonzero(d: dict[str, int]) -> dict[str, int]:
    return {k: v for k, v in d.items() if v}


def settled(cp: ControlPlane, name: str = NAME) -> dict[str, Any] | None:
    """The service once its status describes its current spec with the workers to match."""
    obj = get_svc(cp, name)
    st = obj.get("status") or {}
    if st.get("observedGeneration") != obj["metadata"]["generation"]:
        return None
    if condition(obj, "Allocated").get("status") != "True":
        return None
    if nonzero(worker_replicas(cp, obj["metadata"]["uid"])) != nonzero(allocated_replicas(obj)):
        return None
    return obj


# --- the tests ------------------------------------------------------------------------------------


def test_a_hadis_service_deploys_the_allocation(
    control_plane: ControlPlane, prom: LocalPrometheus, operator: OperatorProcess
) -> None:
    cp = control_plane
    crs(cp).create_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, example(NAME, prom.url))

    def healthy() -> dict[str, Any] | None:
        obj = settled(cp)
        if obj is None or condition(obj, "Ready").get("status") != "True":
            return None
        return obj if condition(obj, "Degraded").get("status") == "False" else None

    obj = wait_until("e1 Ready, Allocated and not Degraded", healthy, timeout=45)
    uid = obj["metadata"]["uid"]
    st = obj["status"]
    objects = owned(cp, uid)
    kinds = sorted(k.split("/")[0] for k in objects)
    # gateway Deployment + Service, 4 worker Deployments + headless Services, the ConfigMap
    assert kinds.count("Deployment") == 5 and kinds.count("Service") == 5 and kinds.count("ConfigMap") == 1
    assert sum(worker_replicas(cp, uid).values()) == st["gpus"] >= 2
    assert st["gpus"] <= 16 and st["demandQps"] == 0
    cfg = cascade_config(cp, uid)
    row = st["allocation"]["row"]
    assert (cfg["row"]["light"], cfg["row"]["heavy"]) == (row["light"], row["heavy"])
    assert cfg["generation"] >= 1
    assert condition(obj, "Allocated")["reason"] == "Allocated"
    assert any(e.reason == "Allocated" and e.type == "Normal" for e in events(cp, NAME))
    assert obj["status"]["lastAllocationTime"]
    # the operator's own metrics and liveness endpoint
    gpus = [ln for ln in operator.metrics().splitlines() if ln.startswith("hadis_operator_gpus{")]
    assert any('"e1"' in ln and ln.endswith(f" {float(st['gpus'])}") for ln in gpus), gpus
    assert operator.healthz() == 200


def test_a_load_step_changes_the_replicas_within_a_few_intervals(
    control_plane: ControlPlane, arrivals: ArrivalCounter, operator: OperatorProcess
) -> None:
    cp = control_plane
    before = get_svc(cp)
    uid = before["metadata"]["uid"]
    replicas_before = nonzero(worker_replicas(cp, uid))
    generation_before = cascade_config(cp, uid)["generation"]
    arrivals.set_rate(30.0)
    t0 = time.monotonic()

    def moved() -> dict[str, int] | None:
        now = nonzero(worker_replicas(cp, uid))
        return now if now != replicas_before else None

    after = wait_until("worker replicas to follow 30 QPS", moved, timeout=8 * INTERVAL_S + 10)
    took = time.monotonic() - t0
    obj = wait_until("status to settle", lambda: settled(cp), timeout=10)
    assert obj["status"]["demandQps"] > 5
    assert nonzero(allocated_replicas(obj)) != replicas_before  # settled: the Deployments match it
    assert cascade_config(cp, uid)["generation"] > generation_before
    print(f"load step 0 -> 30 QPS: replicas {replicas_before} -> {after} after {took:.1f} s")


def test_a_spec_edit_is_followed(control_plane: ControlPlane, operator: OperatorProcess) -> None:
    """Drop a variant and switch to clipper-heavy: its Deployment and Service go, the policy's
    single variant gets every replica."""
    cp = control_plane
    obj = get_svc(cp)
    uid = obj["metadata"]["uid"]
    variants = [{"name": "sdxl-lightning"}, {"name": "sd35-large-turbo"}, {"name": "sd35-large"}]
    crs(cp).patch_namespaced_custom_object(
        GROUP, VERSION, NS, PLURAL, NAME, {"spec": {"variants": variants, "policy": "clipper-heavy"}}
    )

    def followed() -> dict[str, Any] | None:
        new = settled(cp)
        if new is None or new["status"]["allocation"]["policy"] != "clipper-heavy":
            return None
        names = owned(cp, uid)
        return new if not any("sd35-medium" in k for k in names) else None

    new = wait_until("the objects to follow the edited spec", followed, timeout=30)
    reps = nonzero(worker_replicas(cp, uid))
    assert list(reps) == ["sd35-large"], reps
    assert sum(reps.values()) == new["status"]["gpus"]
    cfg = cascade_config(cp, uid)
    assert cfg["policy"] == "clipper-heavy" and list(cfg["split"]) == ["sd35-large"]


def test_prometheus_down_keeps_the_last_allocation(
    control_plane: ControlPlane, prom: LocalPrometheus, operator: OperatorProcess
) -> None:
    cp = control_plane
    obj = wait_until("a settled service", lambda: settled(cp), timeout=20)
    uid = obj["metadata"]["uid"]
    replicas = worker_replicas(cp, uid)
    prom.stop()

    def degraded() -> dict[str, Any] | None:
        o = get_svc(cp)
        return o if condition(o, "Degraded").get("reason") == "MetricsUnavailable" else None

    obj2 = wait_until("Degraded MetricsUnavailable", degraded, timeout=6 * INTERVAL_S + 10)
    deg = condition(obj2, "Degraded")
    assert deg["status"] == "True" and prom.url.removeprefix("http://") in deg["message"]
    time.sleep(2 * INTERVAL_S)  # more cycles without metrics
    assert worker_replicas(cp, uid) == replicas
    assert get_svc(cp)["status"]["allocation"] == obj["status"]["allocation"]
    assert condition(get_svc(cp), "Ready")["status"] == "True"
    assert any(e.reason == "MetricsUnavailable" and e.type == "Warning" for e in events(cp, NAME))


def _versions(cp: ControlPlane) -> dict[str, str]:
    obj = get_svc(cp)
    out = {f"HadisService/{NAME}": obj["metadata"]["resourceVersion"]}
    for key, o in owned(cp, obj["metadata"]["uid"]).items():
        out[key] = o.metadata.resource_version
    return out


def test_an_operator_restart_writes_nothing(
    control_plane: ControlPlane, prom: LocalPrometheus, operator: OperatorProcess
) -> None:
    """The new process (``python -m hadis.operator`` this time) rebuilds its memory from the status
    and finds nothing to change: no object, status or Event is written. Measured in a steady state:
    Prometheus stopped (a live rate would move the demand estimate, and so the status, anyway)."""
    cp = control_plane
    prom.stop()  # already, when the tests run in order
    wait_until(
        "Degraded MetricsUnavailable",
        lambda: condition(get_svc(cp), "Degraded").get("reason") == "MetricsUnavailable",
        timeout=6 * INTERVAL_S + 10,
    )
    time.sleep(2 * INTERVAL_S)
    before = _versions(cp)
    before_obj = get_svc(cp)
    n_events = len(events(cp, NAME))
    operator.stop()
    log_len = len(operator.log())
    operator.start(python_m=True)  # the other entry point: python -m hadis.operator
    operator.wait_healthy()
    wait_until(
        "the restarted operator to resume e1",
        lambda: "Resuming is processed" in operator.log()[log_len:],
        timeout=30,
    )
    time.sleep(3 * INTERVAL_S)  # a few timer cycles of the new process
    after = _versions(cp)
    if after != before:
        dump = json.dumps({"before": before_obj, "after": get_svc(cp)}, indent=1)
        pytest.fail(f"writes: {before} -> {after}\n{dump}\n{operator.log()[log_len:][-3000:]}")
    assert len(events(cp, NAME)) == n_events


UNUSABLE: list[tuple[str, dict[str, Any], str]] = [
    # (name, spec changes, the field the condition and Event must name)
    ("unknown-variant", {"variants": [{"name": "sdxl-lightning"}, {"name": "sd9-mega"}]}, "spec.variants[1]"),
    ("unknown-gpu", {"gpuPools": [{"name": "a", "gpuType": "Z80", "count": 4}]}, "spec.gpuPools[0]"),
    ("no-gpus", {"gpuPools": [{"name": "a", "gpuType": "L40S", "count": 0}]}, "spec.gpuPools"),
    ("one-gpu-cascade", {"gpuPools": [{"name": "a", "gpuType": "L40S", "count": 1}]}, "spec.gpuPools"),
    ("one-variant-cascade", {"variants": [{"name": "sd35-large"}]}, "spec.variants"),
    ("unknown-profile", {"profile": {"builtin": "no-such-profile"}}, "spec.profile.builtin"),
    (
        "missing-configmap",
        {"profile": {"configMap": {"name": "nope"}, "builtin": None}},
        "spec.profile.configMap",
    ),
    (
        "fixed-pair-not-listed",
        {"policy": "fixed-pair", "fixedPair": {"light": "sdxl-lightning", "heavy": "sd9-mega"}},
        "fixedPair.heavy",
    ),
    (
        "bad-resource",
        {"gpuPools": [{"name": "a", "gpuType": "L40S", "count": 4, "resource": "not a resource!"}]},
        "spec.gpuPools[0].resource",
    ),
    (
        "bad-node-selector",
        {"gpuPools": [{"name": "a", "gpuType": "L40S", "count": 4, "nodeSelector": {"bad key!": "x"}}]},
        "spec.gpuPools[0].nodeSelector",
    ),
    (
        "configmap-without-key",
        {"profile": {"configMap": {"name": "profiles", "key": "absent.json"}}},
        "spec.profile.configMap.key",
    ),
    (
        "configmap-not-a-profile",
        {"profile": {"configMap": {"name": "profiles", "key": "garbled.json"}}},
        "spec.profile.configMap",
    ),
    (
        "duplicate-variants",
        {"variants": [{"name": "sd35-large"}, {"name": "sd35-large"}]},
        "variants",
    ),
    (
        "fixed-pair-without-pair",
        {"policy": "fixed-pair"},
        "fixedPair",
    ),
]


def test_unusable_specs_are_reported_naming_the_field(
    control_plane: ControlPlane, operator: OperatorProcess
) -> None:
    cp = control_plane
    client.CoreV1Api(cp.api).create_namespaced_config_map(
        NS,
        client.V1ConfigMap(
            metadata=client.V1ObjectMeta(name="profiles"), data={"garbled.json": '{"name": "half'}
        ),
    )
    rejected_by_schema = []
    for name, spec, _ in UNUSABLE:
        body = example(name, "http://127.0.0.1:9", **spec)
        body["spec"] = {k: v for k, v in body["spec"].items() if v is not None}
        if body["spec"].get("profile", {}).get("builtin", "x") is None:
            body["spec"]["profile"].pop("builtin")
        try:
            crs(cp).create_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, body)
        except ApiException as e:  # the schema caught it first: fine, but it must name the field
            assert e.status == 422, e
            rejected_by_schema.append(name)
    assert len(UNUSABLE) - len(rejected_by_schema) >= 10, rejected_by_schema
    print(f"{len(UNUSABLE)} unusable specs; rejected by the CRD schema: {rejected_by_schema or 'none'}")

    def reported(name: str, field: str) -> Callable[[], dict[str, Any] | None]:
        def probe() -> dict[str, Any] | None:
            obj = get_svc(cp, name)
            deg = condition(obj, "Degraded")
            return obj if deg.get("status") == "True" and field in deg.get("message", "") else None

        return probe

    for name, _, field in UNUSABLE:
        if name in rejected_by_schema:
            continue
        obj = wait_until(f"{name}: Degraded naming {field}", reported(name, field), timeout=30)
        assert condition(obj, "Allocated")["status"] == "False", name
        assert condition(obj, "Degraded")["reason"] in ("UnusableSpec", "InvalidSpec"), name
        assert owned(cp, obj["metadata"]["uid"]) == {}, f"{name}: objects created"
        warnings = [e for e in events(cp, name) if e.type == "Warning"]
        assert any(field in (e.message or "") for e in warnings), (name, [e.message for e in warnings])
    assert operator.alive() and operator.healthz() == 200


def test_a_profile_from_a_configmap_is_served(control_plane: ControlPlane, operator: OperatorProcess) -> None:
    cp = control_plane
    text = (ROOT / "operator" / "hadis" / "data" / "profiles" / "hadis-paper-l40s.json").read_text()
    client.CoreV1Api(cp.api).create_namespaced_config_map(
        NS, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="l40s"), data={"profile.json": text})
    )
    spec = {
        "variants": [{"name": "sdxl-lightning"}, {"name": "sd35-large"}],
        "gpuPools": [{"name": "l40s", "gpuType": "L40S", "count": 4}],
        "profile": {"configMap": {"name": "l40s"}, "timeScale": 0.1},
    }
    crs(cp).create_namespaced_custom_object(
        GROUP, VERSION, NS, PLURAL, example("from-cm", "http://127.0.0.1:9", **spec)
    )
    obj = wait_until("from-cm allocated", lambda: settled(cp, "from-cm"), timeout=30)
    assert 2 <= obj["status"]["gpus"] <= 4
    assert set(nonzero(worker_replicas(cp, obj["metadata"]["uid"]))) <= {"sdxl-lightning", "sd35-large"}
    crs(cp).delete_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, "from-cm")


def test_deleting_the_service_collects_its_objects(
    control_plane: ControlPlane, operator: OperatorProcess
) -> None:
    cp = control_plane
    uid = get_svc(cp)["metadata"]["uid"]
    assert owned(cp, uid)
    crs(cp).delete_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, NAME)
    wait_until("the objects to be garbage-collected", lambda: not owned(cp, uid), timeout=60)
    with pytest.raises(ApiException) as e:
        get_svc(cp)
    assert e.value.status == 404
