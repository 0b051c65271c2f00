"""The local control plane is real Kubernetes: version, RBAC, controllers, garbage collection."""

from __future__ import annotations

import base64
from collections.abc import Iterator

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException
from tests.k8s_local import ControlPlane, create_namespace, wait_until

pytestmark = pytest.mark.e2e

NS = "e2e-control-plane"


@pytest.fixture(scope="module")
def ns(control_plane: ControlPlane) -> Iterator[str]:
    create_namespace(control_plane.api, NS)
    yield NS
    client.CoreV1Api(control_plane.api).delete_namespace(NS)


def _deployment(name: str, replicas: int) -> client.V1Deployment:
    labels = {"app": name}
    return client.V1Deployment(
        metadata=client.V1ObjectMeta(name=name),
        spec=client.V1DeploymentSpec(
            replicas=replicas,
            selector=client.V1LabelSelector(match_labels=labels),
            template=client.V1PodTemplateSpec(
                metadata=client.V1ObjectMeta(labels=labels),
                spec=client.V1PodSpec(containers=[client.V1Container(name="main", image="busybox")]),
            ),
        ),
    )


def test_server_is_kubernetes_1_20(control_plane: ControlPlane) -> None:
    info = client.VersionApi(control_plane.api).get_code()
    assert (info.major, info.minor) == ("1", "20")
    assert info.git_version == "v1.20.2"


def test_kubectl_reads_the_scripts_kubeconfig(control_plane: ControlPlane) -> None:
    out = control_plane.kubectl("get", "namespaces", "-o", "name")
    assert out.returncode == 0, out.stderr
    assert "namespace/default" in out.stdout.split()


def test_rbac_forbids_a_service_account_without_roles(control_plane: ControlPlane, ns: str) -> None:
    core = client.CoreV1Api(control_plane.api)
    core.create_namespaced_service_account(
        ns, client.V1ServiceAccount(metadata=client.V1ObjectMeta(name="nobody"))
    )

    def token() -> str | None:  # the token controller signs it with the service-account key
        secrets = core.list_namespaced_secret(ns, field_selector="type=kubernetes.io/service-account-token")
        for s in secrets.items:
            if (s.metadata.annotations or {}).get("kubernetes.io/service-account.name") == "nobody":
                return base64.b64decode(s.data["token"]).decode()
        return None

    conf = client.Configuration()
    conf.host = control_plane.api.configuration.host
    conf.ssl_ca_cert = control_plane.api.configuration.ssl_ca_cert
    conf.api_key = {"authorization": f"Bearer {wait_until('the service account token', token)}"}
    with client.ApiClient(conf) as as_nobody, pytest.raises(ApiException) as err:
        client.CoreV1Api(as_nobody).list_namespaced_pod(ns)
    assert err.value.status == 403
    assert "system:serviceaccount:e2e-control-plane:nobody" in str(err.value.body)


def test_deployments_get_replica_sets_and_pending_pods(control_plane: ControlPlane, ns: str) -> None:
    apps, core = client.AppsV1Api(control_plane.api), client.CoreV1Api(control_plane.api)
    apps.create_namespaced_deployment(ns, _deployment("workers", 2))

    def pods() -> list[client.V1Pod]:
        return list(core.list_namespaced_pod(ns, label_selector="app=workers").items)

    wait_until("2 pods", lambda: len(pods()) == 2)
    assert all(p.status.phase == "Pending" for p in pods())  # no kubelet
    assert len(apps.list_namespaced_replica_set(ns, label_selector="app=workers").items) == 1
    apps.patch_namespaced_deployment_scale("workers", ns, {"spec": {"replicas": 0}})
    wait_until("0 pods", lambda: not pods())


def test_owner_references_are_garbage_collected(control_plane: ControlPlane, ns: str) -> None:
    apps, core = client.AppsV1Api(control_plane.api), client.CoreV1Api(control_plane.api)
    owner = apps.create_namespaced_deployment(ns, _deployment("owner", 0))
    ref = client.V1OwnerReference(
        api_version="apps/v1", kind="Deployment", name="owner", uid=owner.metadata.uid, controller=True
    )
    core.create_namespaced_config_map(
        ns, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="owned", owner_references=[ref]))
    )
    apps.delete_namespaced_deployment("owner", ns)

    def gone() -> bool:
        try:
            core.read_namespaced_config_map("owned", ns)
        except ApiException as e:
            return e.status == 404
        return False

    wait_until("the owned ConfigMap to be garbage-collected", gone)
