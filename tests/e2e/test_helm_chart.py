"""The Helm chart (charts/hadis) linted and installed for real with Helm 4's Go library
(``helm-sdkpy``) on a control plane of its own (a clean cluster: the chart must create the CRD;
a cluster-wide install must not touch the other e2e tests' namespaces).

No kubelet runs the operator pod, so the tests run the Deployment's own command, arguments and
environment as a local process, authenticated as the chart's ServiceAccount (its token Secret, made
by the controller-manager): the HadisService example it deploys proves the chart's RBAC
sufficient, and the requests that token is refused prove it least.

The tests run in file order: lint → namespaced install → bad values → another watched namespace →
the namespaced operator → its refusals → cluster-wide install (with a ServiceMonitor API present)
→ uninstall.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, cast

import pytest
import yaml
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException
from tests.k8s_local import ControlPlane, create_namespace, install_crd, running_control_plane, wait_until
from tests.operator_local import free_port

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "hadis"
DASHBOARD = CHART / "dashboards" / "hadis.json"
CRD_NAME = "hadisservices.hadis.io"
GROUP, VERSION, PLURAL = "hadis.io", "v1alpha1", "hadisservices"
RELEASE = "hadis"
NS = "hadis-chart"  # the namespaced release: installed here, serving here
OTHER_NS = "hadis-elsewhere"  # a namespace the namespaced operator must not reach
CLUSTER_NS = "hadis-cluster"  # the all-namespaces release
TEAM_NS = "team-b"  # served by the all-namespaces release
# kopf's cluster-wide scans of namespaces and CRDs, which a namespaced Role refuses (kopf would retry
# them for ~1 min before serving its namespace). The chart sets HADIS_OPERATOR_CLUSTER_SCANNING=false
# for a namespaced operator, which then does not scan: no operator log may contain these lines.
KOPF_SCANS = (
    "Not enough permissions to",
    'cannot list resource "namespaces" in API group "" at the cluster scope',
    'cannot list resource "customresourcedefinitions" in API group "apiextensions.k8s.io" at the cluster',
)

HELM_MISSING = (
    "helm-sdkpy is not installed: the chart tests need Helm's Go library. A new .venv gets it from "
    "`make install`; in an existing one: .venv/bin/pip install --ignore-requires-python 'helm-sdkpy==0.1.32'"
)


# --- Helm ---------------------------------------------------------------------------------------


def _helm() -> Any:
    try:
        import helm_sdkpy  # type: ignore[import-untyped,import-not-found,unused-ignore]
    except ImportError:
        pytest.fail(HELM_MISSING, pytrace=False)
    return helm_sdkpy


def _config(cp: ControlPlane, namespace: str) -> Any:
    return _helm().Configuration(namespace=namespace, kubeconfig=str(cp.kubeconfig))


def helm_install(
    cp: ControlPlane, namespace: str, values: dict[str, Any] | None = None, config: Any = None
) -> dict[str, Any]:
    """``helm install hadis charts/hadis -n NAMESPACE`` (no wait: Pods never start without a kubelet).
    A new ``config`` (Helm's client, with a fresh API discovery) unless one is given."""
    action = _helm().Install(config or _config(cp, namespace))
    coro = action.run(RELEASE, str(CHART), values=values, wait=False, timeout=60)
    return cast(dict[str, Any], asyncio.run(coro))


def helm_uninstall(cp: ControlPlane, namespace: str) -> None:
    asyncio.run(_helm().Uninstall(_config(cp, namespace)).run(RELEASE, wait=False, timeout=60))


def helm_lint(chart: Path) -> list[dict[str, Any]]:
    """The lint messages (this Helm binding keeps each one's severity and path, not its text)."""
    helm = _helm()
    result = asyncio.run(helm.Lint(helm.Configuration(namespace="default")).run(str(chart)))
    return list(result.get("Messages") or [])


SEVERITY = {1: "INFO", 2: "WARNING", 3: "ERROR"}


# --- the cluster and the chart's ServiceAccount ------------------------------------------------


@pytest.fixture(scope="module")
def cp() -> Iterator[ControlPlane]:
    _helm()  # fail before paying for a control plane
    try:
        with running_control_plane() as plane:
            for ns in (NS, OTHER_NS, CLUSTER_NS, TEAM_NS):
                create_namespace(plane.api, ns)
            yield plane
    except RuntimeError as e:
        pytest.fail(str(e), pytrace=False)


def sa_kubeconfig(cp: ControlPlane, namespace: str, account: str, path: Path) -> Path:
    """A kubeconfig with the ServiceAccount's token (its Secret, made by the controller-manager)."""
    core = client.CoreV1Api(cp.api)

    def token_secret() -> str | None:
        sa = plain(cp, core.read_namespaced_service_account(account, namespace))
        return str(sa["secrets"][0]["name"]) if sa.get("secrets") else None

    name = wait_until(f"{account}'s token Secret", token_secret)
    secret = plain(cp, core.read_namespaced_secret(name, namespace))
    token = base64.b64decode(secret["data"]["token"]).decode()
    admin = yaml.safe_load(cp.kubeconfig.read_text())
    cluster = admin["clusters"][0]["cluster"]
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "local", "cluster": cluster}],
                "users": [{"name": account, "user": {"token": token}}],
                "contexts": [{"name": "sa", "context": {"cluster": "local", "user": account}}],
                "current-context": "sa",
            }
        )
    )
    path.chmod(0o600)
    return path


@contextlib.contextmanager
def api_as(kubeconfig: Path) -> Iterator[client.ApiClient]:
    api: client.ApiClient = config.new_client_from_config(config_file=str(kubeconfig))  # type: ignore[no-untyped-call]
    try:
        yield api
    finally:
        api.close()  # type: ignore[no-untyped-call]


def plain(cp: ControlPlane, obj: object) -> Any:
    """An API object as its JSON form (camelCase dicts and lists), for short, typed assertions."""
    return cp.api.sanitize_for_serialization(obj)  # type: ignore[no-untyped-call]


def status_of(call: Callable[[], Any]) -> int:
    """The HTTP status of a request: 200 when it succeeds."""
    try:
        call()
    except ApiException as e:
        return int(e.status)
    return 200


# --- the operator, as the chart deploys it --------------------------------------------------------


def operator_deployment(cp: ControlPlane, namespace: str) -> dict[str, Any]:
    dep: dict[str, Any] = plain(cp, client.AppsV1Api(cp.api).read_namespaced_deployment(RELEASE, namespace))
    assert len(dep["spec"]["template"]["spec"]["containers"]) == 1
    return dep


def operator_container(cp: ControlPlane, namespace: str) -> dict[str, Any]:
    container: dict[str, Any] = operator_deployment(cp, namespace)["spec"]["template"]["spec"]["containers"][
        0
    ]
    return container


@contextlib.contextmanager
def operator_as(container: dict[str, Any], kubeconfig: Path, log_path: Path) -> Iterator[Path]:
    """Run the container's command + args + env locally (``kopf`` from this venv), as the identity
    in ``kubeconfig``; waits until /healthz answers 200 and yields the log file."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("KUBERNETES_SERVICE")}
    env |= {e["name"]: e["value"] for e in container.get("env") or []}
    env |= {"KUBECONFIG": str(kubeconfig), "HADIS_OPERATOR_METRICS_PORT": str(port)}
    command = [str(Path(sys.executable).with_name(container["command"][0])), *container["args"]]
    with log_path.open("wb") as log:
        proc = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
    try:

        def healthy() -> bool:
            assert proc.poll() is None, f"the operator exited:\n{log_path.read_text()[-4000:]}"
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as r:
                    return int(r.status) == 200
            except OSError:
                return False

        wait_until("the operator's /healthz", healthy, timeout=60)
        yield log_path
        assert proc.poll() is None, f"the operator died:\n{log_path.read_text()[-4000:]}"
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


#: the gateway's API key in the example's Secret: the operator deploys the gateway mounting it, but
#: may not read it (the chart grants nothing on Secrets), and it must never show up in its log
API_KEY = f"sk-hadis-{uuid.uuid4().hex}"
API_KEY_SECRET = "e1-api-keys"


def example(namespace: str) -> dict[str, Any]:
    """examples/local-emulated.yaml, its metrics pointed at a port where nothing listens (the
    operator then deploys its 0-QPS allocation and says Degraded: MetricsUnavailable), its gateway
    asking for the API keys in the Secret :data:`API_KEY_SECRET`."""
    body: dict[str, Any] = yaml.safe_load((ROOT / "examples" / "local-emulated.yaml").read_text())
    body["metadata"] = {"name": "e1", "namespace": namespace}
    body["spec"]["metrics"] = {"prometheusUrl": f"http://127.0.0.1:{free_port()}", "timeoutSeconds": 1}
    body["spec"]["gateway"] = {"apiKeySecret": {"name": API_KEY_SECRET, "key": "keys"}}
    return body


def create_api_key_secret(cp: ControlPlane, namespace: str) -> None:
    """The example's Secret, created by the cluster admin (as a user would)."""
    secret = client.V1Secret(
        metadata=client.V1ObjectMeta(name=API_KEY_SECRET), string_data={"keys": f"{API_KEY}\n"}
    )
    with contextlib.suppress(ApiException):  # 409: an earlier test made it
        client.CoreV1Api(cp.api).create_namespaced_secret(namespace, secret)


def hds(cp: ControlPlane, namespace: str) -> dict[str, Any]:
    obj = client.CustomObjectsApi(cp.api).get_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL, "e1"
    )
    return cast(dict[str, Any], obj)


def deployed(cp: ControlPlane, namespace: str) -> dict[str, Any] | None:
    """The example's HadisService once its objects are all there and its status says Allocated."""
    obj = hds(cp, namespace)
    conditions = {c["type"]: c for c in (obj.get("status") or {}).get("conditions") or []}
    if conditions.get("Allocated", {}).get("status") != "True":
        return None
    uid = obj["metadata"]["uid"]
    apps, core = client.AppsV1Api(cp.api), client.CoreV1Api(cp.api)
    kinds: list[str] = []
    for kind, listed in (
        ("Deployment", apps.list_namespaced_deployment(namespace)),
        ("Service", core.list_namespaced_service(namespace)),
        ("ConfigMap", core.list_namespaced_config_map(namespace)),
    ):
        for item in plain(cp, listed)["items"]:
            if any(r["uid"] == uid for r in item["metadata"].get("ownerReferences") or []):
                kinds.append(kind)
    # gateway Deployment + Service, a worker Deployment + headless Service per variant, the ConfigMap
    if (kinds.count("Deployment"), kinds.count("Service"), kinds.count("ConfigMap")) != (5, 5, 1):
        return None
    return obj


def assert_deploys_the_example(cp: ControlPlane, namespace: str, log_path: Path) -> None:
    crs = client.CustomObjectsApi(cp.api)
    create_api_key_secret(cp, namespace)
    crs.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, example(namespace))
    try:
        obj = wait_until(f"the example deployed in {namespace}", lambda: deployed(cp, namespace), timeout=100)
    except AssertionError as e:
        status = hds(cp, namespace).get("status")
        raise AssertionError(
            f"{e}\nstatus: {status}\noperator log:\n{log_path.read_text()[-6000:]}"
        ) from None
    conditions = {c["type"]: c for c in obj["status"]["conditions"]}
    # the only trouble is the missing Prometheus, never a refused write
    assert conditions["Degraded"]["reason"] == "MetricsUnavailable", conditions["Degraded"]
    assert obj["status"]["gpus"] >= 2
    assert "hadis.io/operator" in obj["metadata"].get("finalizers", [])  # kopf's patch was allowed
    events = plain(cp, client.CoreV1Api(cp.api).list_namespaced_event(namespace))["items"]
    assert any(e["reason"] == "Allocated" and e["involvedObject"]["name"] == "e1" for e in events)
    log = log_path.read_text(errors="replace")
    refused = [
        line
        for line in log.splitlines()
        if "Forbidden" in line or "forbidden" in line or " 403" in line or any(w in line for w in KOPF_SCANS)
    ]
    assert not refused, "\n".join(refused)
    # the gateway mounts the API keys although the operator could not read them, and never logged them
    gateway = plain(cp, client.AppsV1Api(cp.api).read_namespaced_deployment("e1-gateway", namespace))
    volumes = {v["name"]: v for v in gateway["spec"]["template"]["spec"]["volumes"]}
    assert volumes["api-keys"]["secret"]["secretName"] == API_KEY_SECRET
    env = {e["name"]: e.get("value") for e in gateway["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["HADIS_API_KEYS_FILE"].startswith("/etc/hadis/api-keys/")
    assert API_KEY not in log
    # delete while the operator runs: kopf must be allowed to remove its finalizer
    crs.delete_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, "e1")

    wait_until(
        "the example deleted (finalizer removed by the operator)",
        lambda: status_of(lambda: hds(cp, namespace)) == 404,
        timeout=30,
    )


# --- lint and values -----------------------------------------------------------------------------


def test_helm_lint_passes() -> None:
    messages = helm_lint(CHART)
    bad = [m for m in messages if m.get("Severity", 0) >= 2]
    assert not bad, [(SEVERITY.get(m["Severity"]), m.get("Path")) for m in bad]
    print("lint:", [(SEVERITY.get(m["Severity"]), m.get("Path")) for m in messages])


BAD_VALUES: list[tuple[dict[str, Any], str]] = [
    ({"logLevel": "loud"}, "/logLevel"),
    ({"allNamespaces": "yes"}, "/allNamespaces"),
    ({"watchNamespace": "Team_B"}, "/watchNamespace"),
    ({"image": {"pullPolicy": "Sometimes"}}, "/image/pullPolicy"),
    ({"image": {"repository": ""}}, "/image/repository"),
    ({"metrics": {"port": "8080"}}, "/metrics/port"),
    ({"metrics": {"port": 70000}}, "/metrics/port"),
    ({"metrics": {"serviceMonitor": {"interval": "often"}}}, "/metrics/serviceMonitor/interval"),
    ({"resources": {"limits": {"cpu": "lots"}}}, "/resources/limits/cpu"),
    ({"rbac": {"create": True, "clusterWide": True}}, "/rbac"),
    ({"replicas": 2}, "replicas"),
    ({"serviceAccount": {"create": "false"}}, "/serviceAccount/create"),
    (
        {"podSecurityContext": {"seccompProfile": {"type": "Whatever"}}},
        "/podSecurityContext/seccompProfile/type",
    ),
    ({"tolerations": {"key": "gpu"}}, "/tolerations"),
]


def test_the_schema_rejects_bad_values_at_lint(tmp_path: Path) -> None:
    """A values.yaml with a wrong type / unknown enum / unknown key fails ``helm lint``."""
    for i, (values, _) in enumerate(BAD_VALUES[:4] + BAD_VALUES[10:11]):
        chart = tmp_path / f"chart{i}"
        shutil.copytree(CHART, chart)
        defaults = yaml.safe_load((chart / "values.yaml").read_text())
        (chart / "values.yaml").write_text(yaml.safe_dump(_merge(defaults, values)))
        errors = [m for m in helm_lint(chart) if m.get("Severity") == 3]
        assert any(m.get("Path") == "values.yaml" for m in errors), (values, errors)


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in over.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


# --- the namespaced install ------------------------------------------------------------------


def test_a_namespaced_install_creates_the_crd_account_role_and_operator(cp: ControlPlane) -> None:
    ext = client.ApiextensionsV1Api(cp.api)
    assert status_of(lambda: ext.read_custom_resource_definition(CRD_NAME)) == 404
    t0 = time.monotonic()
    release = helm_install(cp, NS)
    print(f"helm install (namespaced): {time.monotonic() - t0:.1f} s")
    assert release["info"]["status"] == "deployed"
    assert f'in namespace "{NS}" only' in release["info"]["notes"]

    crd = plain(cp, ext.read_custom_resource_definition(CRD_NAME))
    shipped = yaml.safe_load((CHART / "crds" / f"{CRD_NAME}.yaml").read_text())
    assert [v["name"] for v in crd["spec"]["versions"]] == [v["name"] for v in shipped["spec"]["versions"]]
    assert crd["spec"]["names"] == shipped["spec"]["names"] | {"listKind": "HadisServiceList"}

    core, rbac = client.CoreV1Api(cp.api), client.RbacAuthorizationV1Api(cp.api)
    core.read_namespaced_service_account(RELEASE, NS)
    role = plain(cp, rbac.read_namespaced_role(RELEASE, NS))
    assert granted(role) == {
        ("hadis.io", "hadisservices"): {"list", "watch", "patch"},
        ("hadis.io", "hadisservices/status"): {"patch"},
        ("apps", "deployments"): {"get", "list", "create", "patch", "delete"},
        ("", "services"): {"get", "list", "create", "patch", "delete"},
        ("", "configmaps"): {"get", "list", "create", "patch", "delete"},
        ("", "events"): {"create"},
    }
    binding = plain(cp, rbac.read_namespaced_role_binding(RELEASE, NS))
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": RELEASE}
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": RELEASE, "namespace": NS}]
    selector = f"app.kubernetes.io/instance={RELEASE}"
    assert not plain(cp, rbac.list_cluster_role(label_selector=selector))["items"]
    assert not plain(cp, rbac.list_cluster_role_binding(label_selector=selector))["items"]

    dep = operator_deployment(cp, NS)
    assert dep["spec"]["replicas"] == 1 and dep["spec"]["strategy"]["type"] == "Recreate"
    pod = dep["spec"]["template"]["spec"]
    c = pod["containers"][0]
    assert c["image"] == "hadis/hadis-operator:0.1.0"  # as `make images` tags it
    assert c["command"] == ["kopf"]
    assert c["args"] == ["run", "-m", "hadis.operator", "--standalone", f"--namespace={NS}"]
    assert pod["serviceAccountName"] == RELEASE
    env = {e["name"]: e["value"] for e in c["env"]}
    assert env["HADIS_OPERATOR_METRICS_PORT"] == "8080" and env["HADIS_OPERATOR_CLUSTER_SCANNING"] == "false"
    psc = pod["securityContext"]
    assert psc["runAsNonRoot"] is True and psc["runAsUser"] != 0
    assert psc["seccompProfile"] == {"type": "RuntimeDefault"}
    assert c["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "privileged": False,
        "capabilities": {"drop": ["ALL"]},
    }
    assert c["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "metrics", "scheme": "HTTP"}
    assert [(p["name"], p["containerPort"]) for p in c["ports"]] == [("metrics", 8080)]
    assert c["resources"]["limits"] and c["resources"]["requests"]
    assert dep["spec"]["template"]["metadata"]["annotations"] == {
        "prometheus.io/scrape": "true",
        "prometheus.io/port": "8080",
        "prometheus.io/path": "/metrics",
    }
    svc = plain(cp, core.read_namespaced_service(f"{RELEASE}-metrics", NS))
    assert [(p["name"], p["port"]) for p in svc["spec"]["ports"]] == [("metrics", 8080)]
    assert "kind: Deployment" in release["manifest"]
    assert "kind: ServiceMonitor" not in release["manifest"]  # the API is not in this cluster

    dashboards = plain(cp, core.list_namespaced_config_map(NS, label_selector="grafana_dashboard=1"))["items"]
    if DASHBOARD.exists():
        assert len(dashboards) == 1
        assert json.loads(dashboards[0]["data"]["hadis.json"]) == json.loads(DASHBOARD.read_text())
    else:
        assert not dashboards


def granted(role: dict[str, Any]) -> dict[tuple[str, str], set[str]]:
    """(API group, resource) -> verbs of a Role or ClusterRole (as a dict)."""
    out: dict[tuple[str, str], set[str]] = {}
    for rule in role["rules"]:
        for group in rule.get("apiGroups") or []:
            for resource in rule.get("resources") or []:
                out.setdefault((group, resource), set()).update(rule["verbs"])
    return out


@pytest.fixture(scope="module")
def other_ns_helm(cp: ControlPlane) -> Any:
    """One Helm client for the refused installs (its discovery once, not per case)."""
    return _config(cp, OTHER_NS)


@pytest.mark.parametrize(("values", "where"), BAD_VALUES, ids=[w.strip("/") for _, w in BAD_VALUES])
def test_the_schema_rejects_bad_values_at_install(
    cp: ControlPlane, other_ns_helm: Any, values: dict[str, Any], where: str
) -> None:
    with pytest.raises(
        _helm().InstallError, match="values don't meet the specifications of the schema"
    ) as err:
        helm_install(cp, OTHER_NS, values, other_ns_helm)
    assert where in str(err.value), str(err.value)
    # refused before the templates reached the cluster (Helm installs crds/ even before it checks
    # the values: hence this test comes after the one that sees the install create the CRD)
    assert not client.AppsV1Api(cp.api).list_namespaced_deployment(OTHER_NS).items
    assert (
        not client.CoreV1Api(cp.api)
        .list_namespaced_service_account(OTHER_NS, label_selector="helm.sh/chart")
        .items
    )


def test_both_scopes_at_once_is_refused_by_the_templates(cp: ControlPlane, other_ns_helm: Any) -> None:
    """A check in the templates: what the schema cannot say."""
    with pytest.raises(_helm().InstallError, match="leave watchNamespace empty"):
        helm_install(cp, OTHER_NS, {"allNamespaces": True, "watchNamespace": NS}, other_ns_helm)
    assert not client.AppsV1Api(cp.api).list_namespaced_deployment(OTHER_NS).items


def test_watch_namespace_puts_the_role_where_the_services_are(cp: ControlPlane, tmp_path: Path) -> None:
    """Installed in one namespace, serving another: the Role and its binding go there, the account
    and the operator stay in the release's namespace."""
    helm_install(cp, OTHER_NS, {"watchNamespace": TEAM_NS})
    rbac = client.RbacAuthorizationV1Api(cp.api)
    assert status_of(lambda: rbac.read_namespaced_role(RELEASE, TEAM_NS)) == 200
    assert status_of(lambda: rbac.read_namespaced_role(RELEASE, OTHER_NS)) == 404
    binding = plain(cp, rbac.read_namespaced_role_binding(RELEASE, TEAM_NS))
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": RELEASE, "namespace": OTHER_NS}]
    assert f"--namespace={TEAM_NS}" in operator_container(cp, OTHER_NS)["args"]
    with api_as(sa_kubeconfig(cp, OTHER_NS, RELEASE, tmp_path / "sa.kubeconfig")) as api:
        crs = client.CustomObjectsApi(api)
        assert status_of(lambda: crs.list_namespaced_custom_object(GROUP, VERSION, TEAM_NS, PLURAL)) == 200
        assert status_of(lambda: crs.list_namespaced_custom_object(GROUP, VERSION, OTHER_NS, PLURAL)) == 403
    helm_uninstall(cp, OTHER_NS)
    assert status_of(lambda: rbac.read_namespaced_role(RELEASE, TEAM_NS)) == 404


def test_the_operator_as_the_chart_account_deploys_an_example(cp: ControlPlane, tmp_path: Path) -> None:
    kubeconfig = sa_kubeconfig(cp, NS, RELEASE, tmp_path / "sa.kubeconfig")
    with operator_as(operator_container(cp, NS), kubeconfig, tmp_path / "operator.log") as log:
        assert_deploys_the_example(cp, NS, log)


def test_the_chart_account_is_refused_what_it_was_not_granted(cp: ControlPlane, tmp_path: Path) -> None:
    with api_as(sa_kubeconfig(cp, NS, RELEASE, tmp_path / "sa.kubeconfig")) as api:
        core, apps = client.CoreV1Api(api), client.AppsV1Api(api)
        crs, rbac = client.CustomObjectsApi(api), client.RbacAuthorizationV1Api(api)
        assert status_of(lambda: apps.list_namespaced_deployment(NS)) == 200
        assert status_of(lambda: crs.list_namespaced_custom_object(GROUP, VERSION, NS, PLURAL)) == 200
        deployment = client.V1Deployment(
            metadata=client.V1ObjectMeta(name="x"),
            spec=client.V1DeploymentSpec(
                selector=client.V1LabelSelector(), template=client.V1PodTemplateSpec()
            ),
        )
        create_api_key_secret(cp, NS)
        create_api_key_secret(cp, OTHER_NS)
        cluster_role = client.V1ClusterRole(
            metadata=client.V1ObjectMeta(name="x"),
            rules=[client.V1PolicyRule(api_groups=["*"], resources=["*"], verbs=["*"])],
        )
        binding = client.V1RoleBinding(
            metadata=client.V1ObjectMeta(name="x"),
            role_ref=client.V1RoleRef(
                api_group="rbac.authorization.k8s.io", kind="ClusterRole", name="admin"
            ),
            subjects=[client.RbacV1Subject(kind="ServiceAccount", name=RELEASE, namespace=NS)],
        )
        refused = {
            "list secrets": lambda: core.list_namespaced_secret(NS),
            "read the gateway's API keys": lambda: core.read_namespaced_secret(API_KEY_SECRET, NS),
            "read a Secret elsewhere": lambda: core.read_namespaced_secret(API_KEY_SECRET, OTHER_NS),
            "create a Pod": lambda: core.create_namespaced_pod(
                NS,
                client.V1Pod(
                    metadata=client.V1ObjectMeta(name="x"),
                    spec=client.V1PodSpec(containers=[client.V1Container(name="x", image="x")]),
                ),
            ),
            "bind itself a role": lambda: rbac.create_namespaced_role_binding(NS, binding),
            "create a ClusterRole": lambda: rbac.create_cluster_role(cluster_role),
            "delete nodes": lambda: core.delete_collection_node(),
            "delete a node": lambda: core.delete_node("node-1"),
            "list pods": lambda: core.list_namespaced_pod(NS),
            "update a Deployment (only patch)": lambda: apps.replace_namespaced_deployment(
                "x", NS, deployment
            ),
            "edit its own Role": lambda: rbac.patch_namespaced_role(RELEASE, NS, {"rules": []}),
            "list HadisServices elsewhere": lambda: crs.list_namespaced_custom_object(
                GROUP, VERSION, OTHER_NS, PLURAL
            ),
            "create a ConfigMap elsewhere": lambda: core.create_namespaced_config_map(
                OTHER_NS, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="x"))
            ),
            "list namespaces": lambda: core.list_namespace(),
            "list HadisServices cluster-wide": lambda: crs.list_cluster_custom_object(GROUP, VERSION, PLURAL),
            "list CRDs": lambda: client.ApiextensionsV1Api(api).list_custom_resource_definition(),
        }
        answers = {what: status_of(call) for what, call in refused.items()}
    assert answers == dict.fromkeys(refused, 403)


# --- the cluster-wide install ----------------------------------------------------------------


SERVICE_MONITOR_CRD = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "servicemonitors.monitoring.coreos.com"},
    "spec": {
        "group": "monitoring.coreos.com",
        "scope": "Namespaced",
        "names": {"plural": "servicemonitors", "singular": "servicemonitor", "kind": "ServiceMonitor"},
        "versions": [
            {
                "name": "v1",
                "served": True,
                "storage": True,
                "schema": {
                    "openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
                },
            }
        ],
    },
}


def test_an_all_namespaces_install_grants_a_cluster_role_and_serves_every_namespace(
    cp: ControlPlane, tmp_path: Path
) -> None:
    crd_file = tmp_path / "servicemonitors.yaml"
    crd_file.write_text(yaml.safe_dump(SERVICE_MONITOR_CRD))
    install_crd(cp.api, crd_file)  # as the Prometheus Operator would
    release = helm_install(cp, CLUSTER_NS, {"allNamespaces": True, "logLevel": "debug"})
    assert "in every namespace" in release["info"]["notes"]

    rbac = client.RbacAuthorizationV1Api(cp.api)
    name = f"{RELEASE}-{CLUSTER_NS}"
    assert granted(plain(cp, rbac.read_cluster_role(name))) == {
        ("hadis.io", "hadisservices"): {"list", "watch", "patch"},
        ("hadis.io", "hadisservices/status"): {"patch"},
        ("apps", "deployments"): {"get", "list", "create", "patch", "delete"},
        ("", "services"): {"get", "list", "create", "patch", "delete"},
        ("", "configmaps"): {"get", "list", "create", "patch", "delete"},
        ("", "events"): {"create"},
        ("apiextensions.k8s.io", "customresourcedefinitions"): {"list", "watch"},
    }
    binding = plain(cp, rbac.read_cluster_role_binding(name))
    assert binding["roleRef"]["name"] == name
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": RELEASE, "namespace": CLUSTER_NS}]
    selector = f"app.kubernetes.io/instance={RELEASE}"
    assert not plain(cp, rbac.list_namespaced_role(CLUSTER_NS, label_selector=selector))["items"]

    container = operator_container(cp, CLUSTER_NS)
    assert container["args"] == ["run", "-m", "hadis.operator", "--standalone", "--all-namespaces", "--debug"]
    assert "HADIS_OPERATOR_CLUSTER_SCANNING" not in {e["name"] for e in container["env"]}
    assert "kind: ServiceMonitor" in release["manifest"]
    monitor = client.CustomObjectsApi(cp.api).get_namespaced_custom_object(
        "monitoring.coreos.com", "v1", CLUSTER_NS, "servicemonitors", RELEASE
    )
    endpoint = cast(dict[str, Any], monitor)["spec"]["endpoints"][0]
    assert endpoint["port"] == "metrics" and endpoint["honorLabels"] is True  # keeps the service label

    kubeconfig = sa_kubeconfig(cp, CLUSTER_NS, RELEASE, tmp_path / "sa.kubeconfig")
    with operator_as(container, kubeconfig, tmp_path / "operator.log") as log:
        assert_deploys_the_example(cp, TEAM_NS, log)
        assert not any(w in log.read_text() for w in KOPF_SCANS)
    with api_as(kubeconfig) as api:
        core = client.CoreV1Api(api)
        assert status_of(lambda: core.list_namespaced_secret(TEAM_NS)) == 403
        assert status_of(lambda: core.read_namespaced_secret(API_KEY_SECRET, TEAM_NS)) == 403
        assert status_of(lambda: core.list_namespace()) == 403
        assert status_of(lambda: core.delete_node("node-1")) == 403
        assert status_of(lambda: core.list_pod_for_all_namespaces()) == 403
        rbac_api = client.RbacAuthorizationV1Api(api)
        assert status_of(lambda: rbac_api.list_cluster_role()) == 403
        cluster_role = client.V1ClusterRole(metadata=client.V1ObjectMeta(name="x"), rules=[])
        assert status_of(lambda: rbac_api.create_cluster_role(cluster_role)) == 403


def test_uninstall_removes_the_cluster_role_and_keeps_the_crd(cp: ControlPlane) -> None:
    helm_uninstall(cp, CLUSTER_NS)
    helm_uninstall(cp, NS)
    rbac = client.RbacAuthorizationV1Api(cp.api)
    assert status_of(lambda: rbac.read_cluster_role(f"{RELEASE}-{CLUSTER_NS}")) == 404
    assert status_of(lambda: rbac.read_namespaced_role(RELEASE, NS)) == 404
    # Helm never deletes crds/: the users' HadisServices survive an uninstall
    assert (
        status_of(lambda: client.ApiextensionsV1Api(cp.api).read_custom_resource_definition(CRD_NAME)) == 200
    )
