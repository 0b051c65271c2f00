"""Applying a HadisService's objects on a real kube-apiserver (hadis.k8s.apply).

Writes only what differs (checked by unchanged resourceVersions), retries a real 409, removes
objects of a removed variant, writes status and Events, and the controller-manager's garbage
collector removes everything once the HadisService is deleted.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import yaml
from kubernetes import client
from tests.k8s_local import ROOT, ControlPlane, create_namespace, wait_until

from hadis.api import Allocation
from hadis.api.allocation import VariantAllocation
from hadis.api.service import HadisService
from hadis.k8s.apply import (
    APPLIED_HASH,
    ApplyError,
    ApplyResult,
    apply_objects,
    delete_stale,
    emit_event,
    object_key,
    patch_status,
)
from hadis.profiles import load_profile
from hadis.reconcile.manifests import build_objects

pytestmark = pytest.mark.e2e

NS = "e2e-apply"
LIGHT, HEAVY = "sdxl-lightning", "sd35-large"


@pytest.fixture(scope="module")
def ns(control_plane: ControlPlane, hadis_crd: dict[str, Any]) -> Iterator[str]:
    create_namespace(control_plane.api, NS)
    yield NS
    client.CoreV1Api(control_plane.api).delete_namespace(NS)


def _spec(variants: list[str]) -> dict[str, Any]:
    return {
        "variants": [{"name": v} for v in variants],
        "sloSeconds": 60,
        "engine": "emulated",
        "gpuPools": [
            {
                "name": "l40s",
                "gpuType": "L40S",
                "count": 8,
                "nodeSelector": {"gpu": "l40s"},
                "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
            }
        ],
    }


def _create_service(api: client.ApiClient, name: str, variants: list[str]) -> dict[str, Any]:
    body = {
        "apiVersion": "hadis.io/v1alpha1",
        "kind": "HadisService",
        "metadata": {"name": name},
        "spec": _spec(variants),
    }
    created: dict[str, Any] = client.CustomObjectsApi(api).create_namespaced_custom_object(
        "hadis.io", "v1alpha1", NS, "hadisservices", body
    )
    return created


def _svc(body: dict[str, Any]) -> HadisService:
    return HadisService.model_validate(
        {"metadata": {"name": body["metadata"]["name"], "namespace": NS}, "spec": body["spec"]}
    )


def _alloc(light: int, heavy: int, batch: int = 2, theta: float = 0.2) -> Allocation:
    profile = load_profile()
    row = next(r for r in profile.sweep if (r.light, r.heavy, r.theta, r.tau) == (LIGHT, HEAVY, theta, 0.0))

    def va(v: str, n: int) -> VariantAllocation:
        return VariantAllocation(
            variant=v, pool="l40s", replicas=n, batch_size=batch, latency_s=1, throughput_qps=n
        )

    return Allocation(
        policy="hadis", row=row, variants=[va(LIGHT, light), va(HEAVY, heavy)], demand_qps=2, expected_fid=22
    )


def _objects(
    body: dict[str, Any], alloc: Allocation | None, generation: int = 1, **spec: Any
) -> list[dict[str, Any]]:
    svc = _svc(body)
    if spec:
        svc = svc.model_copy(update={"spec": svc.spec.model_copy(update=spec)})
    return build_objects(svc, alloc, load_profile(), uid=body["metadata"]["uid"], generation=generation)


def _versions(api: client.ApiClient, objects: list[dict[str, Any]]) -> dict[str, str]:
    """resourceVersion of ConfigMaps and Services, metadata.generation of Deployments (the deployment
    controller writes their status, which bumps the resourceVersion but not the generation)."""
    core, apps = client.CoreV1Api(api), client.AppsV1Api(api)
    out = {}
    for o in objects:
        name = o["metadata"]["name"]
        if o["kind"] == "Deployment":
            meta = apps.read_namespaced_deployment(name, NS).metadata
            out[object_key(o)] = f"generation {meta.generation}"
            continue
        read = core.read_namespaced_config_map if o["kind"] == "ConfigMap" else core.read_namespaced_service
        out[object_key(o)] = read(name, NS).metadata.resource_version
    return out


class Recording(client.ApiClient):
    """An API client that records every request that is not a read."""

    def __init__(self, configuration: client.Configuration) -> None:
        super().__init__(configuration)
        self.writes: list[str] = []

    def call_api(self, method: str, url: str, *args: Any, **kwargs: Any) -> Any:
        if method != "GET":
            self.writes.append(f"{method} {url.split('?')[0]}")
        return super().call_api(method, url, *args, **kwargs)


def test_apply_creates_everything_and_a_second_apply_writes_nothing(
    control_plane: ControlPlane, ns: str
) -> None:
    api = control_plane.api
    body = _create_service(api, "idem", [LIGHT, HEAVY])
    objects = _objects(body, _alloc(3, 2))
    first = apply_objects(api, objects)
    keys = [object_key(o) for o in objects]
    assert first.created == keys and first.patched == [] and first.unchanged == []
    before = _versions(api, objects)
    with Recording(api.configuration) as recording:
        again = apply_objects(recording, _objects(body, _alloc(3, 2)))
    assert recording.writes == []  # no write at all
    assert again == ApplyResult(unchanged=keys)
    assert not again.changed
    assert _versions(api, objects) == before
    dep = client.AppsV1Api(api).read_namespaced_deployment(f"idem-{LIGHT}-l40s", ns)
    assert dep.spec.replicas == 3
    assert dep.metadata.annotations[APPLIED_HASH]
    assert dep.metadata.owner_references[0].uid == body["metadata"]["uid"]
    # an emulated worker asks for CPU and memory, never a GPU (it must run on nodes without one)
    assert dep.spec.template.spec.containers[0].resources.limits is None
    assert dep.spec.template.spec.containers[0].resources.requests == {"cpu": "50m", "memory": "128Mi"}


def test_a_reallocation_patches_only_what_changed(control_plane: ControlPlane, ns: str) -> None:
    api = control_plane.api
    body = _create_service(api, "realloc", [LIGHT, HEAVY])
    apply_objects(api, _objects(body, _alloc(3, 2)))
    objects = _objects(body, _alloc(1, 2, theta=0.5), generation=2)
    before = _versions(api, objects)
    with Recording(api.configuration) as recording:
        result = apply_objects(recording, objects)
    assert result.created == []
    assert result.patched == ["ConfigMap/realloc-cascade", f"Deployment/realloc-{LIGHT}-l40s"]
    assert [w.rsplit("/", 2)[-2:] for w in recording.writes] == [
        ["configmaps", "realloc-cascade"],
        ["deployments", f"realloc-{LIGHT}-l40s"],
    ]
    after = _versions(api, objects)
    assert {k for k in before if before[k] != after[k]} == set(result.patched)
    cm = client.CoreV1Api(api).read_namespaced_config_map("realloc-cascade", ns)
    assert '"theta": 0.5' in cm.data["cascade.json"] and '"generation": 2' in cm.data["cascade.json"]
    assert client.AppsV1Api(api).read_namespaced_deployment(f"realloc-{LIGHT}-l40s", ns).spec.replicas == 1
    # unallocated: the Deployment stays, at 0 replicas
    result = apply_objects(api, _objects(body, None, generation=3))
    assert f"Deployment/realloc-{HEAVY}-l40s" in result.patched
    assert client.AppsV1Api(api).read_namespaced_deployment(f"realloc-{HEAVY}-l40s", ns).spec.replicas == 0


def test_drift_is_corrected_and_fields_we_drop_are_removed(control_plane: ControlPlane, ns: str) -> None:
    api = control_plane.api
    apps = client.AppsV1Api(api)
    body = _create_service(api, "drift", [LIGHT, HEAVY])
    apply_objects(api, _objects(body, _alloc(2, 2)))
    name = f"drift-{LIGHT}-l40s"
    apps.patch_namespaced_deployment_scale(name, ns, {"spec": {"replicas": 7}})
    result = apply_objects(api, _objects(body, _alloc(2, 2)))
    assert result.patched == [f"Deployment/{name}"]
    assert apps.read_namespaced_deployment(name, ns).spec.replicas == 2
    # the pool loses its node selector and tolerations: server-side apply removes them
    pool = _svc(body).spec.gpu_pools[0].model_copy(update={"node_selector": {}, "tolerations": []})
    result = apply_objects(api, _objects(body, _alloc(2, 2), gpu_pools=[pool]))
    assert set(result.patched) == {f"Deployment/{name}", f"Deployment/drift-{HEAVY}-l40s"}
    pod = apps.read_namespaced_deployment(name, ns).spec.template.spec
    assert pod.node_selector is None and pod.tolerations is None


def test_a_conflict_is_retried(control_plane: ControlPlane, ns: str) -> None:
    body = _create_service(control_plane.api, "conflict", [LIGHT, HEAVY])
    apply_objects(control_plane.api, _objects(body, _alloc(2, 2)))
    target = f"/deployments/conflict-{LIGHT}-l40s"

    class Interfering(client.ApiClient):
        """Changes the Deployment behind our back right before our first write to it."""

        armed = True

        def call_api(self, method: str, url: str, *args: Any, **kwargs: Any) -> Any:
            if self.armed and method == "PATCH" and target in url.split("?")[0]:
                self.armed = False
                client.AppsV1Api(control_plane.api).patch_namespaced_deployment(
                    f"conflict-{LIGHT}-l40s", ns, {"metadata": {"labels": {"touched": "yes"}}}
                )
            return super().call_api(method, url, *args, **kwargs)

    with Interfering(control_plane.api.configuration) as api:
        result = apply_objects(api, _objects(body, _alloc(4, 2)))
    assert result.conflicts == 1
    assert result.patched == [f"Deployment/conflict-{LIGHT}-l40s"]  # same row and batch: same config
    dep = client.AppsV1Api(control_plane.api).read_namespaced_deployment(f"conflict-{LIGHT}-l40s", ns)
    assert dep.spec.replicas == 4 and dep.metadata.labels["touched"] == "yes"  # theirs kept, ours applied


def test_an_invalid_object_raises_an_error_naming_it(control_plane: ControlPlane, ns: str) -> None:
    body = _create_service(control_plane.api, "invalid", [LIGHT, HEAVY])
    objects = _objects(body, _alloc(1, 1))
    bad = next(o for o in objects if o["kind"] == "Deployment")
    bad["spec"]["replicas"] = -1
    with pytest.raises(ApplyError) as err:
        apply_objects(control_plane.api, objects)
    assert err.value.status == 422 and err.value.key == object_key(bad)
    assert "replicas" in str(err.value)


def test_delete_stale_removes_a_removed_variant(control_plane: ControlPlane, ns: str) -> None:
    api = control_plane.api
    body = _create_service(api, "stale", [LIGHT, "sd35-medium", HEAVY])
    everything = _objects(body, _alloc(1, 1))
    apply_objects(api, everything)
    other = _create_service(api, "other", [LIGHT, HEAVY])
    apply_objects(api, _objects(other, _alloc(1, 1)))
    fewer = _objects(body, _alloc(1, 1), variants=_svc(body).spec.variants[::2])
    assert not delete_stale(api, ns, body["metadata"]["uid"], everything)  # nothing stale yet
    deleted = delete_stale(api, ns, body["metadata"]["uid"], {object_key(o) for o in fewer})
    assert sorted(deleted) == ["Deployment/stale-sd35-medium-l40s", "Service/stale-sd35-medium-workers"]
    names = {d.metadata.name for d in client.AppsV1Api(api).list_namespaced_deployment(ns).items}
    assert "stale-sd35-medium-l40s" not in names
    assert {f"stale-{LIGHT}-l40s", f"other-{LIGHT}-l40s"} <= names  # another service's objects stay


def test_deleting_the_service_garbage_collects_its_objects(control_plane: ControlPlane, ns: str) -> None:
    api = control_plane.api
    body = _create_service(api, "gc", [LIGHT, HEAVY])
    apply_objects(api, _objects(body, _alloc(1, 1)))
    client.CustomObjectsApi(api).delete_namespaced_custom_object(
        "hadis.io", "v1alpha1", ns, "hadisservices", "gc"
    )
    core, apps = client.CoreV1Api(api), client.AppsV1Api(api)

    def gone() -> bool:
        sel = "app.kubernetes.io/instance=gc"
        left = (
            apps.list_namespaced_deployment(ns, label_selector=sel).items
            + core.list_namespaced_service(ns, label_selector=sel).items
            + core.list_namespaced_config_map(ns, label_selector=sel).items
        )
        return not left

    wait_until("the garbage collector to delete gc's objects", gone, timeout=90)


def test_status_patch_and_events(control_plane: ControlPlane, ns: str) -> None:
    api = control_plane.api
    body = _create_service(api, "status", [LIGHT, HEAVY])
    condition = {"type": "Ready", "status": "True", "reason": "Applied", "message": "ok"}
    out = patch_status(api, ns, "status", {"observedGeneration": 1, "gpus": 5, "conditions": [condition]})
    assert out["status"]["gpus"] == 5
    live = client.CustomObjectsApi(api).get_namespaced_custom_object(
        "hadis.io", "v1alpha1", ns, "hadisservices", "status"
    )
    assert live["status"]["conditions"] == [condition] and live["status"]["observedGeneration"] == 1
    patch_status(api, ns, "status", {"demandQps": 3.5})
    live = client.CustomObjectsApi(api).get_namespaced_custom_object(
        "hadis.io", "v1alpha1", ns, "hadisservices", "status"
    )
    assert live["status"]["gpus"] == 5 and live["status"]["demandQps"] == 3.5  # merged
    with pytest.raises(ApplyError) as err:
        patch_status(api, ns, "nope", {"gpus": 1})
    assert err.value.status == 404

    name = emit_event(api, body, "AllocationChanged", "sdxl-lightning -> sd35-large θ=0.20")
    ref = {"name": "status", "namespace": ns, "uid": body["metadata"]["uid"]}
    emit_event(api, ref, "ApplyFailed", "x" * 5000, "Warning")
    events = (
        client.CoreV1Api(api).list_namespaced_event(ns, field_selector="involvedObject.name=status").items
    )
    by_reason = {e.reason: e for e in events}
    assert by_reason["AllocationChanged"].metadata.name == name
    assert by_reason["AllocationChanged"].type == "Normal"
    assert by_reason["AllocationChanged"].involved_object.kind == "HadisService"
    assert by_reason["AllocationChanged"].involved_object.uid == body["metadata"]["uid"]
    assert by_reason["ApplyFailed"].type == "Warning" and len(by_reason["ApplyFailed"].message) == 1024
    with pytest.raises(ValueError, match="type_"):
        emit_event(api, ref, "X", "y", "Error")


def test_the_production_example_is_accepted_and_stable(control_plane: ControlPlane, ns: str) -> None:
    """examples/cluster-l40s.yaml (diffusers, PVC weights, node selector, tolerations) plus a
    discriminator and a NodePort gateway: the API server accepts every object, and a second apply
    writes nothing (the server's defaults do not look like drift)."""
    api = control_plane.api
    example = yaml.safe_load((ROOT / "examples" / "cluster-l40s.yaml").read_text())
    example["metadata"] = {"name": "prod"}
    example["spec"]["discriminator"] = {"clip": "/models/clip", "head": "/models/head.safetensors"}
    example["spec"]["gateway"] = {"serviceType": "NodePort", "replicas": 2}
    body = client.CustomObjectsApi(api).create_namespaced_custom_object(
        "hadis.io", "v1alpha1", ns, "hadisservices", example
    )
    svc = _svc(body)
    profile = load_profile()
    alloc = Allocation(
        policy="hadis",
        row=next(r for r in profile.sweep if (r.light, r.heavy) == (LIGHT, HEAVY)),
        variants=[
            VariantAllocation(variant=v, pool="l40s", replicas=n, batch_size=4, latency_s=1, throughput_qps=1)
            for v, n in ((LIGHT, 20), (HEAVY, 12))
        ],
        demand_qps=20,
        expected_fid=21,
    )
    objects = build_objects(svc, alloc, profile, uid=body["metadata"]["uid"], generation=1)
    assert len(apply_objects(api, objects).created) == len(objects) == 11  # 1 + 4 + 4 + 2
    with Recording(api.configuration) as recording:
        again = apply_objects(recording, objects)
    assert recording.writes == [] and len(again.unchanged) == len(objects)
    dep = client.AppsV1Api(api).read_namespaced_deployment("prod-sd35-large-l40s", ns)
    pod = dep.spec.template.spec
    assert pod.volumes[-1].persistent_volume_claim.claim_name == "diffusion-weights"
    assert pod.node_selector == {"nvidia.com/gpu.product": "NVIDIA-L40S"}
    gw = client.CoreV1Api(api).read_namespaced_service("prod-gateway", ns)
    assert gw.spec.type == "NodePort" and gw.spec.ports[0].node_port
