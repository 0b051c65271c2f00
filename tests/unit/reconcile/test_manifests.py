"""The objects built for a HadisService and an allocation (hadis.reconcile.manifests)."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from tests.factories import two_variant_profile, variant

from hadis.api import Allocation, GpuPool, Profile
from hadis.api.allocation import Toleration, VariantAllocation
from hadis.api.service import HadisService
from hadis.cascade_watch import parse_cascade_config
from hadis.reconcile.manifests import (
    CONFIG_KEY,
    CONFIG_PATH,
    UnusableSpecError,
    build_objects,
    config_map_name,
    gateway_name,
    worker_endpoint,
    worker_name,
    worker_service_name,
)

UID = "0b0e5f0c-1111-2222-3333-444455556666"


def _profile() -> Profile:
    """fast/slow on T4, plus slow also on A100 (so it can run on two pools)."""
    p = two_variant_profile()
    slow_a100 = variant("slow", 0.5, 20.0, gpu="A100").perf[0]
    slow = p.variant("slow").model_copy(update={"perf": [*p.variant("slow").perf, slow_a100]})
    return p.model_copy(update={"variants": [p.variant("fast"), slow]})


def _svc(**spec: Any) -> HadisService:
    body: dict[str, Any] = {
        "metadata": {"name": "demo", "namespace": "ml"},
        "spec": {
            "variants": [{"name": "fast"}, {"name": "slow"}],
            "sloSeconds": 5,
            "engine": "emulated",
            "gpuPools": [
                {
                    "name": "t4",
                    "gpuType": "T4",
                    "count": 4,
                    "nodeSelector": {"gpu": "t4"},
                    "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
                },
                {"name": "a100", "gpuType": "A100", "count": 2, "resource": "example.com/a100"},
            ],
            "profile": {"builtin": "two", "timeScale": 0.5},
            **spec,
        },
    }
    return HadisService.model_validate(body)


def _alloc(fast_t4: int, slow_t4: int, slow_a100: int, batch: int = 2) -> Allocation:
    def va(v: str, pool: str, n: int) -> VariantAllocation:
        return VariantAllocation(
            variant=v, pool=pool, replicas=n, batch_size=batch, latency_s=1, throughput_qps=n
        )

    row = two_variant_profile().sweep[3]
    return Allocation(
        policy="hadis",
        row=row,
        variants=[va("fast", "t4", fast_t4), va("slow", "t4", slow_t4), va("slow", "a100", slow_a100)],
        demand_qps=3,
        expected_fid=25,
    )


def _by(objects: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    found = [o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name]
    assert len(found) == 1, f"{kind}/{name} in {[(o['kind'], o['metadata']['name']) for o in objects]}"
    return found[0]


def _pod(deployment: dict[str, Any]) -> dict[str, Any]:
    pod: dict[str, Any] = deployment["spec"]["template"]["spec"]
    return pod


def _env(deployment: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e["value"] for e in _pod(deployment)["containers"][0]["env"]}


def test_one_object_set_per_variant_and_pool() -> None:
    svc = _svc()
    objs = build_objects(svc, _alloc(1, 1, 2), _profile(), uid=UID)
    keys = [f"{o['kind']}/{o['metadata']['name']}" for o in objs]
    assert keys == [
        "ConfigMap/demo-cascade",
        "Service/demo-fast-workers",
        "Service/demo-slow-workers",
        "Deployment/demo-fast-t4",  # fast has no A100 latencies: no Deployment there
        "Deployment/demo-slow-t4",
        "Deployment/demo-slow-a100",
        "Service/demo-gateway",
        "Deployment/demo-gateway",
    ]
    assert (gateway_name(svc), config_map_name(svc)) == ("demo-gateway", "demo-cascade")
    assert worker_name(svc, "slow", "a100") == "demo-slow-a100"


def test_replicas_follow_the_allocation_and_stay_at_zero_when_unallocated() -> None:
    svc, profile = _svc(), _profile()
    objs = build_objects(svc, _alloc(3, 0, 2), profile, uid=UID)
    replicas = {o["metadata"]["name"]: o["spec"]["replicas"] for o in objs if o["kind"] == "Deployment"}
    assert replicas == {"demo-fast-t4": 3, "demo-slow-t4": 0, "demo-slow-a100": 2, "demo-gateway": 1}
    none = build_objects(svc, None, profile, uid=UID)
    assert {o["metadata"]["name"]: o["spec"]["replicas"] for o in none if o["kind"] == "Deployment"} == {
        "demo-fast-t4": 0,
        "demo-slow-t4": 0,
        "demo-slow-a100": 0,
        "demo-gateway": 1,
    }
    assert _by(none, "ConfigMap", "demo-cascade")["data"] == {}


def test_a_reallocation_changes_only_replicas_and_the_config_map() -> None:
    svc, profile = _svc(), _profile()
    before = build_objects(svc, _alloc(3, 0, 2), profile, uid=UID)
    after = build_objects(svc, _alloc(1, 2, 1, batch=4), profile, uid=UID, generation=2)
    for old, new in zip(before, after, strict=True):
        if old["kind"] == "Deployment":
            assert old["spec"]["template"] == new["spec"]["template"]  # no pod restart
            old["spec"].pop("replicas"), new["spec"].pop("replicas")
        if old["kind"] != "ConfigMap":
            assert old == new


def test_build_is_deterministic() -> None:
    svc, profile = _svc(), _profile()
    first = build_objects(svc, _alloc(1, 1, 1), profile, uid=UID, generation=4)
    again = build_objects(svc.model_copy(deep=True), _alloc(1, 1, 1), profile, uid=UID, generation=4)
    assert first == again
    assert copy.deepcopy(first) == first


def test_every_object_is_owned_labelled_and_namespaced() -> None:
    objs = build_objects(_svc(), _alloc(1, 1, 1), _profile(), uid=UID)
    for o in objs:
        meta = o["metadata"]
        assert meta["namespace"] == "ml"
        assert meta["ownerReferences"] == [
            {
                "apiVersion": "hadis.io/v1alpha1",
                "kind": "HadisService",
                "name": "demo",
                "uid": UID,
                "controller": True,
                "blockOwnerDeletion": True,
            }
        ]
        labels = meta["labels"]
        assert labels["app.kubernetes.io/name"] == "hadis"
        assert labels["app.kubernetes.io/instance"] == "demo"
        assert labels["app.kubernetes.io/managed-by"] == "hadis"
        assert labels["app.kubernetes.io/component"] in {"gateway", "worker", "config"}
    slow_a100 = _by(objs, "Deployment", "demo-slow-a100")
    assert slow_a100["metadata"]["labels"]["hadis.io/variant"] == "slow"
    assert slow_a100["metadata"]["labels"]["hadis.io/pool"] == "a100"
    selector = slow_a100["spec"]["selector"]["matchLabels"]
    assert selector.items() <= slow_a100["spec"]["template"]["metadata"]["labels"].items()
    headless = _by(objs, "Service", "demo-slow-workers")
    assert headless["spec"]["clusterIP"] == "None"
    # the variant's Service selects its pods on every pool
    assert headless["spec"]["selector"].items() <= slow_a100["spec"]["template"]["metadata"]["labels"].items()
    assert "hadis.io/pool" not in headless["spec"]["selector"]


def test_gpu_limit_selector_and_tolerations_come_from_the_pool() -> None:
    objs = build_objects(_svc(engine="diffusers"), _alloc(1, 1, 1), _profile(), uid=UID)
    t4, a100 = _by(objs, "Deployment", "demo-slow-t4"), _by(objs, "Deployment", "demo-slow-a100")
    assert _pod(t4)["containers"][0]["resources"] == {"limits": {"nvidia.com/gpu": "1"}}
    assert _pod(a100)["containers"][0]["resources"] == {"limits": {"example.com/a100": "1"}}
    assert _pod(t4)["nodeSelector"] == {"gpu": "t4"}
    assert _pod(t4)["tolerations"] == [
        {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
    ]
    assert "nodeSelector" not in _pod(a100) and "tolerations" not in _pod(a100)
    assert _env(t4)["HADIS_GPU_TYPE"] == "T4" and _env(a100)["HADIS_GPU_TYPE"] == "A100"
    gateway = _by(objs, "Deployment", "demo-gateway")
    assert "resources" not in _pod(gateway)["containers"][0]  # the gateway needs no GPU


def test_a_stopping_gateway_keeps_listening_until_the_service_has_dropped_it() -> None:
    """preStop sleeps before SIGTERM (which closes the listener): without it a replaced gateway pod
    refuses connections that the Service still sends it; the grace period covers sleep and drain."""
    pod = _pod(_by(build_objects(_svc(), _alloc(1, 1, 1), _profile(), uid=UID), "Deployment", "demo-gateway"))
    (c,) = pod["containers"]
    assert c["lifecycle"] == {"preStop": {"exec": {"command": ["sleep", "5"]}}}
    assert pod["terminationGracePeriodSeconds"] >= 5 + 20


def test_emulated_workers_request_no_gpu_and_still_follow_the_pool() -> None:
    """An emulated worker only sleeps: it must schedule on a node without GPUs, so it asks for a
    little CPU and memory and no extended resource; placement still comes from the pool."""
    objs = build_objects(_svc(), _alloc(1, 1, 1), _profile(), uid=UID)
    for name in ("demo-fast-t4", "demo-slow-t4", "demo-slow-a100"):
        resources = _pod(_by(objs, "Deployment", name))["containers"][0]["resources"]
        assert resources == {"requests": {"cpu": "50m", "memory": "128Mi"}}, name
    assert _pod(_by(objs, "Deployment", "demo-slow-t4"))["nodeSelector"] == {"gpu": "t4"}
    # a variant's own engine wins over the service's
    mixed = _svc(engine="diffusers", variants=[{"name": "fast", "engine": "emulated"}, {"name": "slow"}])
    objs = build_objects(mixed, _alloc(1, 1, 1), _profile(), uid=UID)
    assert "limits" not in _pod(_by(objs, "Deployment", "demo-fast-t4"))["containers"][0]["resources"]
    assert _pod(_by(objs, "Deployment", "demo-slow-t4"))["containers"][0]["resources"] == {
        "limits": {"nvidia.com/gpu": "1"}
    }


def test_pods_are_locked_down_and_probe_the_servers() -> None:
    objs = build_objects(_svc(), _alloc(1, 1, 1), _profile(), uid=UID)
    for name in ("demo-fast-t4", "demo-gateway"):
        pod = _pod(_by(objs, "Deployment", name))
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["automountServiceAccountToken"] is False
        (c,) = pod["containers"]
        assert c["securityContext"] == {
            "runAsNonRoot": True,
            "readOnlyRootFilesystem": True,
            "allowPrivilegeEscalation": False,
            "capabilities": {"drop": ["ALL"]},
        }
        assert {"name": "tmp", "emptyDir": {}} in pod["volumes"]
        assert {"name": "tmp", "mountPath": "/tmp"} in c["volumeMounts"]
        assert c["readinessProbe"]["httpGet"]["path"] == "/readyz"
        assert c["livenessProbe"]["httpGet"]["path"] == "/healthz"
        assert c["ports"][0]["name"] == "http"
        cascade = next(m for m in c["volumeMounts"] if m["name"] == "cascade")
        assert cascade == {"name": "cascade", "mountPath": CONFIG_PATH.rsplit("/", 1)[0], "readOnly": True}
        assert "subPath" not in cascade  # a subPath mount would never see a ConfigMap update
        assert {"name": "cascade", "configMap": {"name": "demo-cascade"}} in pod["volumes"]


def test_worker_and_gateway_env_match_their_settings() -> None:
    objs = build_objects(_svc(), _alloc(1, 1, 1), _profile(), uid=UID)
    env = _env(_by(objs, "Deployment", "demo-fast-t4"))
    assert env["HADIS_WORKER_VARIANT"] == "fast"
    assert env["HADIS_CONFIG_PATH"] == CONFIG_PATH
    assert env["HADIS_ENGINE"] == "emulated"
    assert env["HADIS_PROFILE"] == "two"
    assert env["HADIS_TIME_SCALE"] == "0.5"
    assert env["HADIS_WORKER_PORT"] == "8001"
    assert "HADIS_MODEL" not in env  # emulated
    gw = _env(_by(objs, "Deployment", "demo-gateway"))
    assert gw["HADIS_CONFIG_PATH"] == CONFIG_PATH and gw["HADIS_GATEWAY_PORT"] == "8000"
    assert gw["HADIS_QUEUE_CAPACITY"] == "1024"


def test_diffusers_workers_get_the_model_volume_and_model_env() -> None:
    svc = _svc(
        engine="diffusers",
        variants=[
            {"name": "fast", "model": "/models/fast"},
            {"name": "slow", "unetCheckpoint": "/models/u.st"},
        ],
        modelVolume={"persistentVolumeClaim": {"claimName": "weights"}},
        discriminator={"clip": "/models/clip", "head": "/models/head.pt"},
    )
    objs = build_objects(svc, _alloc(1, 1, 1), _profile(), uid=UID)
    fast, slow = _by(objs, "Deployment", "demo-fast-t4"), _by(objs, "Deployment", "demo-slow-t4")
    assert _env(fast)["HADIS_MODEL"] == "/models/fast"
    assert _env(slow)["HADIS_MODEL"] == "local/slow"  # the profile's
    assert _env(slow)["HADIS_UNET_CHECKPOINT"] == "/models/u.st"
    assert _env(fast)["HADIS_DISCRIMINATOR_HEAD"] == "/models/head.pt"
    assert _env(fast)["HADIS_STEPS"] == "4"
    assert {"name": "models", "persistentVolumeClaim": {"claimName": "weights"}} in _pod(fast)["volumes"]
    mounts = _pod(fast)["containers"][0]["volumeMounts"]
    assert {"name": "models", "mountPath": "/models", "readOnly": True} in mounts
    assert all(v["name"] != "models" for v in _pod(_by(objs, "Deployment", "demo-gateway"))["volumes"])


def test_profile_from_a_config_map_is_mounted_for_workers() -> None:
    svc = _svc(profile={"builtin": None, "configMap": {"name": "my-profile", "key": "p.json"}})
    objs = build_objects(svc, _alloc(1, 1, 1), _profile(), uid=UID)
    fast = _by(objs, "Deployment", "demo-fast-t4")
    assert _env(fast)["HADIS_PROFILE"] == "/etc/hadis/profile/p.json"
    assert {"name": "profile", "configMap": {"name": "my-profile"}} in _pod(fast)["volumes"]


def test_config_map_holds_a_parseable_cascade_config_with_service_endpoints() -> None:
    svc, alloc = _svc(), _alloc(2, 0, 1, batch=4)
    objs = build_objects(svc, alloc, _profile(), uid=UID, generation=9)
    raw = _by(objs, "ConfigMap", "demo-cascade")["data"][CONFIG_KEY]
    cfg = parse_cascade_config(raw, "configmap")
    assert cfg.generation == 9 and cfg.row == alloc.row and cfg.policy == "hadis"
    assert cfg.slo_s == 5 and cfg.time_scale == 0.5
    assert cfg.variants["fast"].endpoints == ["http://demo-fast-workers.ml.svc:8001"]
    assert cfg.variants["fast"].batch_size == 4
    assert worker_endpoint(svc, "slow") == "http://demo-slow-workers.ml.svc:8001"
    assert worker_service_name(svc, "slow") == "demo-slow-workers"
    given = build_objects(svc, alloc, _profile(), uid=UID, endpoints={"fast": ["http://10.0.0.1:8001"]})
    cfg2 = parse_cascade_config(_by(given, "ConfigMap", "demo-cascade")["data"][CONFIG_KEY], "cm")
    assert cfg2.variants["fast"].endpoints == ["http://10.0.0.1:8001"]


def test_a_variant_without_replicas_gets_no_endpoint() -> None:
    objs = build_objects(_svc(), _alloc(2, 0, 0), _profile(), uid=UID)
    cfg = parse_cascade_config(_by(objs, "ConfigMap", "demo-cascade")["data"][CONFIG_KEY], "cm")
    assert cfg.variants["slow"].endpoints == []  # the gateway answers with an explicit error


def test_long_or_digit_names_become_valid_dns_labels() -> None:
    svc = _svc().model_copy(update={"metadata": _svc().metadata.model_copy(update={"name": "9" + "a" * 60})})
    name = worker_name(svc, "slow", "a100")
    assert len(name) <= 63 and name[0].isalpha() and name[-1].isalnum()
    assert name != worker_name(svc, "slow", "t4")  # the hash keeps cut names apart


def test_an_unusable_spec_builds_nothing() -> None:
    svc = _svc(gpuPools=[GpuPool(name="t4", gpu_type="V100", count=4).to_wire()])
    with pytest.raises(UnusableSpecError, match=r"spec\.gpuPools\[0\]\.gpuType") as err:
        build_objects(svc, None, _profile(), uid=UID)
    assert err.value.problems


def test_tolerations_keep_only_the_fields_set() -> None:
    pool = GpuPool(name="t4", gpu_type="T4", count=2, tolerations=[Toleration(key="k", value="v")])
    objs = build_objects(_svc(gpuPools=[pool.to_wire()]), None, _profile(), uid=UID)
    assert _pod(_by(objs, "Deployment", "demo-fast-t4"))["tolerations"] == [
        {"key": "k", "operator": "Equal", "value": "v"}
    ]


def test_gateway_and_worker_pods_ask_to_be_scraped_on_their_metrics_port() -> None:
    objs = build_objects(_svc(), _alloc(1, 1, 1), _profile(), uid=UID)
    for name in ("demo-fast-t4", "demo-gateway"):
        template = _by(objs, "Deployment", name)["spec"]["template"]
        (c,) = template["spec"]["containers"]
        ann = template["metadata"]["annotations"]
        assert ann["prometheus.io/scrape"] == "true" and ann["prometheus.io/path"] == "/metrics"
        assert ann["prometheus.io/port"] == str(c["ports"][0]["containerPort"])
