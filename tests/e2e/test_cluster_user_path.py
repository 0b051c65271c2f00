"""The user's path on a real one-node cluster whose pods run: the project's own images, built from
images/*.Dockerfile (``make images``), in the node's containerd.

helm install (the chart's operator pod) → a HadisService (emulated engine, three workers) → pods
Running → images through the gateway's ClusterIP Service with the official ``openai`` client → load
that a real Prometheus scrapes from the pods (Kubernetes pod discovery) → the operator, in its pod,
re-allocates and worker pods change → a worker pod deleted under load: every request answered → the
gateway pod deleted: the Service recovers → the pods' security defaults read from the running
containers → the HadisService deleted: everything garbage-collected → helm uninstall.

The tests run in file order and share the cluster, the release and the service; each one records
when things happened, and the last prints the timeline (install → first image, load → new plan →
new worker pods Ready) and the node's memory.
"""

from __future__ import annotations

import asyncio
import base64
import json
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, cast

import httpx
import openai
import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException
from tests.deployed_plan import deployed_plan
from tests.k8s_cluster import SUMMARY, Cluster, PodDiscovery
from tests.k8s_local import wait_until
from tests.prometheus_local import LocalPrometheus, PrometheusMissing, running_prometheus

import hadis
from hadis.observe.promql import load_queries

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "hadis"
NS = "hadis-system"  # the release's namespace; the namespaced operator serves HadisServices here
RELEASE, NAME = "hadis", "demo"
GROUP, VERSION, PLURAL = "hadis.io", "v1alpha1", "hadisservices"
LIGHT, HEAVY = "sdxl-lightning", "sd35-large-turbo"
#: the worker image CI can build: the emulated engine on the Python base (the CUDA image needs
#: NVIDIA's base, which is not to be had here)
WORKER_IMAGE = f"hadis/hadis-worker-cpu:{hadis.__version__}"
GPUS, SLO_S, INTERVAL_S, RATE_WINDOW = 3, 6, 5, "5s"
GATEWAYS = 2  # so that replacing one turns no client away
#: at real-time latencies on 3 "L40S", the idle plan is 1 light + 2 heavy workers; at this rate the
#: allocator moves a GPU to the light model (``hadis allocate --gpus 3 --slo 6 --qps 4``)
LOAD_QPS = 4.5
IDLE_PLAN = {LIGHT: 1, HEAVY: 2}
#: a load the idle plan carries with one heavy worker fewer (0.73 of it reaches the heavy model)
WORKER_KILL_QPS = 1.0

timeline: dict[str, float] = {}


def mark(event: str) -> None:
    timeline.setdefault(event, time.monotonic())


def since(a: str, b: str) -> str:
    return f"{timeline[b] - timeline[a]:.1f} s" if a in timeline and b in timeline else "n/a"


# --- fixtures ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def prom(cluster: Cluster) -> Iterator[LocalPrometheus]:
    """A real Prometheus on the node's address (the operator's pod queries it there), scraping the
    pods that the usual Kubernetes pod scrape job would (annotations, pod labels, namespace). Its
    targets come from the API server through file_sd: Debian builds Prometheus without Kubernetes
    discovery."""
    try:
        with running_prometheus(host=cluster.node_ip) as p, PodDiscovery(p, cluster.api, NS):
            yield p
    except PrometheusMissing as e:
        pytest.fail(str(e), pytrace=False)


def _helm() -> Any:
    try:
        import helm_sdkpy  # type: ignore[import-untyped,import-not-found,unused-ignore]
    except ImportError:
        pytest.fail("helm-sdkpy is not installed: `make install` installs it", pytrace=False)
    return helm_sdkpy


def _helm_config(cluster: Cluster) -> Any:
    return _helm().Configuration(namespace=NS, kubeconfig=str(cluster.kubeconfig))


def core(cluster: Cluster) -> client.CoreV1Api:
    return client.CoreV1Api(cluster.api)


def pods(cluster: Cluster, selector: str) -> list[client.V1Pod]:
    return cast(list[client.V1Pod], core(cluster).list_namespaced_pod(NS, label_selector=selector).items)


def ready(pod: client.V1Pod) -> bool:
    if pod.metadata.deletion_timestamp is not None or pod.status.phase != "Running":
        return False
    return any(c.type == "Ready" and c.status == "True" for c in pod.status.conditions or [])


def describe(cluster: Cluster, selector: str = "") -> str:
    """What a person would look at when a wait times out: pods, events, the operator's log."""
    out = [cluster.kubectl("-n", NS, "get", "pods,deploy,svc,ep", "-o", "wide").stdout]
    out.append(cluster.kubectl("-n", NS, "get", "events", "--sort-by=.lastTimestamp").stdout[-3000:])
    out.append(cluster.kubectl("-n", NS, "logs", "deploy/hadis", "--tail=40").stdout)
    gateway = f"app.kubernetes.io/instance={NAME},app.kubernetes.io/component=gateway"
    for sel in (gateway, selector) if selector else (gateway,):
        out.append(cluster.kubectl("-n", NS, "logs", "-l", sel, "--tail=30", "--prefix").stdout[-4000:])
    out.append(cluster.log("kubelet", 2000))
    return "\n".join(out)


def wait_for(
    cluster: Cluster, what: str, probe: Callable[[], Any], timeout: float, selector: str = ""
) -> Any:
    try:
        return wait_until(what, probe, timeout=timeout, every=0.5)
    except AssertionError as e:
        raise AssertionError(f"{e}\n{describe(cluster, selector)}") from None


def service_body(prom_url: str) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "HadisService",
        "metadata": {"name": NAME, "namespace": NS},
        "spec": {
            "engine": "emulated",
            "variants": [{"name": LIGHT}, {"name": HEAVY}],
            "sloSeconds": SLO_S,
            "gpuPools": [{"name": "l40s", "gpuType": "L40S", "count": GPUS}],
            "profile": {"builtin": "hadis-paper-l40s"},
            "allocation": {"intervalSeconds": INTERVAL_S, "ewmaAlpha": 1.0},
            "metrics": {"prometheusUrl": prom_url, "rateWindow": RATE_WINDOW, "timeoutSeconds": 2},
            "images": {"worker": WORKER_IMAGE, "pullPolicy": "Never"},
            "gateway": {"replicas": GATEWAYS},
        },
    }


def gateway_url(cluster: Cluster) -> str:
    svc = core(cluster).read_namespaced_service(f"{NAME}-gateway", NS)
    return f"http://{svc.spec.cluster_ip}:{svc.spec.ports[0].port}"


def worker_replicas(cluster: Cluster) -> dict[str, int]:
    deps = client.AppsV1Api(cluster.api).list_namespaced_deployment(
        NS, label_selector=f"app.kubernetes.io/instance={NAME},app.kubernetes.io/component=worker"
    )
    return {d.metadata.labels["hadis.io/variant"]: d.spec.replicas or 0 for d in deps.items}


def ready_workers(cluster: Cluster) -> dict[str, int]:
    counts: Counter[str] = Counter()
    for p in pods(cluster, f"app.kubernetes.io/instance={NAME},app.kubernetes.io/component=worker"):
        if ready(p):
            counts[p.metadata.labels["hadis.io/variant"]] += 1
    return dict(counts)


def workers_match_plan(cluster: Cluster) -> bool:
    """Every worker Deployment has exactly its replicas Ready (and no other worker pod is)."""
    want = {v: n for v, n in worker_replicas(cluster).items() if n}
    return bool(want) and ready_workers(cluster) == want


async def _load(
    url: str, qps: float, seconds: float, stop: threading.Event, errors: dict[str, str]
) -> Counter[str]:
    """Open-loop load: ``qps`` requests per second for ``seconds`` (or until ``stop``); HTTP status
    codes counted, and transport errors by name (a request nobody answered). ``errors`` keeps the
    first error body (or exception) of each kind."""
    statuses: Counter[str] = Counter()
    async with httpx.AsyncClient(base_url=url, timeout=30, limits=httpx.Limits(max_connections=200)) as c:

        async def one(i: int) -> None:
            body = {"prompt": f"a lighthouse on a cliff at dusk, painted, {i}", "model": "hadis", "seed": i}
            try:
                r = await c.post("/v1/images/generations", json=body)
            except httpx.HTTPError as e:
                statuses[type(e).__name__] += 1
                errors.setdefault(type(e).__name__, repr(e))
                return
            statuses[str(r.status_code)] += 1
            if r.status_code != 200:
                errors.setdefault(str(r.status_code), r.text[:300])

        tasks: list[asyncio.Task[None]] = []
        t0 = time.monotonic()
        while time.monotonic() - t0 < seconds and not stop.is_set():
            tasks.append(asyncio.create_task(one(len(tasks))))
            await asyncio.sleep(max(t0 + len(tasks) / qps - time.monotonic(), 0))
        await asyncio.gather(*tasks)
    return statuses


def explicit(statuses: Counter[str], errors: dict[str, str]) -> bool:
    """Every request got an HTTP answer, and every refusal is an OpenAI-style error naming why."""
    for status, body in errors.items():
        if not status.isdigit():
            return False
        try:
            error = json.loads(body)["error"]
        except (ValueError, KeyError, TypeError):
            return False
        if not (error.get("code") and error.get("message")):
            return False
    return all(s.isdigit() for s in statuses)


class Load:
    """:func:`_load` in a thread, for the length of a ``with`` block (or ``seconds``)."""

    def __init__(self, url: str, qps: float, seconds: float) -> None:
        self.stop = threading.Event()
        self.statuses: Counter[str] = Counter()
        self.errors: dict[str, str] = {}
        self.thread = threading.Thread(
            target=lambda: self.statuses.update(asyncio.run(_load(url, qps, seconds, self.stop, self.errors)))
        )

    def __enter__(self) -> Load:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(90)
        assert not self.thread.is_alive(), "the load did not finish in 90 s"


def exec_python(cluster: Cluster, pod: str, code: str) -> str:
    done = cluster.kubectl("-n", NS, "exec", pod, "--", "python", "-c", code)
    assert done.returncode == 0, f"kubectl exec {pod}: {done.stderr}"
    return done.stdout


# --- the path ------------------------------------------------------------------------------------


def test_helm_install_runs_the_operator_from_its_image(cluster: Cluster) -> None:
    core(cluster).create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=NS)))
    mark("helm install")
    release = asyncio.run(
        _helm().Install(_helm_config(cluster)).run(RELEASE, str(CHART), values={}, wait=False, timeout=120)
    )
    assert release["info"]["status"] == "deployed", release["info"]
    selector = "app.kubernetes.io/name=hadis,app.kubernetes.io/instance=hadis"

    def operator_ready() -> client.V1Pod | None:
        return next((p for p in pods(cluster, selector) if ready(p)), None)

    pod = wait_for(cluster, "the operator pod Ready", operator_ready, timeout=120, selector=selector)
    mark("operator ready")
    (status,) = pod.status.container_statuses
    assert status.image.endswith(f"hadis/hadis-operator:{hadis.__version__}"), status.image
    assert status.restart_count == 0, describe(cluster, selector)
    print(f"\nhelm install → operator pod Ready: {since('helm install', 'operator ready')}")


def test_a_hadis_service_serves_images_through_the_gateway_service(
    cluster: Cluster, prom: LocalPrometheus
) -> None:
    mark("apply")
    client.CustomObjectsApi(cluster.api).create_namespaced_custom_object(
        GROUP, VERSION, NS, PLURAL, service_body(prom.url)
    )
    gw = f"app.kubernetes.io/instance={NAME},app.kubernetes.io/component=gateway"
    wait_for(
        cluster,
        "the gateway pods Ready",
        lambda: sum(ready(p) for p in pods(cluster, gw)) == GATEWAYS,
        120,
        gw,
    )
    wait_for(cluster, "the planned worker pods Ready", lambda: workers_match_plan(cluster), 120)
    mark("pods ready")
    idle = worker_replicas(cluster)
    assert idle == IDLE_PLAN, idle  # every GPU of the pool has a worker

    api = openai.OpenAI(base_url=f"{gateway_url(cluster)}/v1", api_key="unused", max_retries=0, timeout=30)

    def first_image() -> Any:
        try:
            return api.images.generate(
                model="hadis", prompt="a red ball in the grass", response_format="b64_json"
            )
        except (openai.APIConnectionError, openai.APIStatusError):
            return None  # the Service's endpoints and the gateway's view of its workers settle

    image = wait_for(cluster, "an image through the gateway Service", first_image, 60)
    mark("first image")
    assert base64.b64decode(image.data[0].b64_json or "")[:8] == b"\x89PNG\r\n\x1a\n"
    assert (image.data[0].model_extra or {})["x_hadis"]["variant"] in (LIGHT, HEAVY)
    for prompt in ("a cat on a sofa", "an astronaut riding a horse on the moon, photorealistic, 8k"):
        img = api.images.generate(model="hadis", prompt=prompt, response_format="b64_json")
        assert img.data and img.data[0].b64_json
    print(
        f"\nHadisService applied → gateway and {sum(idle.values())} workers Ready: "
        f"{since('apply', 'pods ready')}; helm install → first image: {since('helm install', 'first image')}"
    )


def test_load_scraped_by_prometheus_moves_the_plan_and_new_worker_pods_serve(
    cluster: Cluster, prom: LocalPrometheus
) -> None:
    url = gateway_url(cluster)
    idle_plan = deployed_plan(cluster.api, NS, NAME)
    idle = worker_replicas(cluster)
    query = load_queries(NS, NAME, rate_window=RATE_WINDOW).arrival_rate
    rates: list[tuple[float, float]] = []
    mark("load start")
    with Load(url, LOAD_QPS, 90) as load:
        t0 = time.monotonic()
        while time.monotonic() - t0 < 75:
            got = prom.query(query)
            rate = float(got[0]["value"][1]) if got else 0.0
            rates.append((round(time.monotonic() - t0, 1), round(rate, 2)))
            if rate >= LOAD_QPS / 2:
                mark("prometheus sees the load")
            if deployed_plan(cluster.api, NS, NAME) != idle_plan:
                mark("cascade changed")  # the row (θ/τ) or the replicas
            if worker_replicas(cluster) != idle:
                mark("plan changed")
                break
            time.sleep(0.5)
        assert "plan changed" in timeline, (
            f"the plan never changed under {LOAD_QPS:g} req/s: {idle_plan}\n"
            f"rates {rates}\n{describe(cluster)}"
        )
        busy = worker_replicas(cluster)
        wait_for(cluster, "the new plan's worker pods Ready", lambda: workers_match_plan(cluster), 60)
        mark("new workers ready")
        rss = cluster.node_rss_mib()
        timeline["node rss mib"] = rss
    statuses = load.statuses
    print(
        f"\nload {LOAD_QPS:g} req/s: Prometheus saw it {since('load start', 'prometheus sees the load')} "
        f"after the start; the cascade changed {since('load start', 'cascade changed')} and the worker "
        f"replicas {since('load start', 'plan changed')} after the start "
        f"({idle} → {busy}); new worker pods Ready {since('plan changed', 'new workers ready')} later; "
        f"responses {dict(statuses)}; node RSS {rss:.0f} MiB; first error of each kind: {load.errors}"
    )
    SUMMARY.append(f"load {LOAD_QPS:g} req/s, plan {idle} → {busy}: responses {dict(statuses)}")
    assert busy != idle, (idle, busy)
    assert sum(busy.values()) == GPUS
    assert explicit(statuses, load.errors), f"requests without an explicit answer: {statuses} {load.errors}"
    assert statuses["200"] > 0, statuses


def test_a_worker_pod_deleted_under_load_every_request_is_answered(cluster: Cluster) -> None:
    """A heavy worker (of two) deleted at a load the remaining one carries: every request is
    answered, nearly all with an image (the gateway's retry and the DNS update); the Deployment
    brings the pod back."""
    url = gateway_url(cluster)
    selector = f"app.kubernetes.io/instance={NAME},app.kubernetes.io/component=worker"
    # the load is gone: the operator goes back to its idle plan; start from there
    wait_for(cluster, "the idle plan", lambda: worker_replicas(cluster) == IDLE_PLAN, 60, selector)
    wait_for(cluster, "the idle plan's worker pods Ready", lambda: workers_match_plan(cluster), 90, selector)
    with Load(url, WORKER_KILL_QPS, 30) as load:
        t0 = time.monotonic()
        time.sleep(8)
        victim = next(
            p for p in pods(cluster, selector) if ready(p) and p.metadata.labels["hadis.io/variant"] == HEAVY
        )
        core(cluster).delete_namespaced_pod(victim.metadata.name, NS)
        mark("worker pod deleted")
        wait_for(
            cluster,
            "the worker Deployments back to their replicas",
            lambda: (
                victim.metadata.name not in {p.metadata.name for p in pods(cluster, selector)}
                and workers_match_plan(cluster)
            ),
            90,
            selector,
        )
        mark("worker replaced")
        time.sleep(max(30 - (time.monotonic() - t0), 0))  # the whole 30 s of load, also after
    statuses = load.statuses
    print(
        f"\nworker pod {victim.metadata.name} deleted under {WORKER_KILL_QPS:g} req/s: replaced and Ready "
        f"{since('worker pod deleted', 'worker replaced')} later; responses {dict(statuses)}; "
        f"first error of each kind: {load.errors}"
    )
    SUMMARY.append(f"a heavy worker pod deleted under {WORKER_KILL_QPS:g} req/s: responses {dict(statuses)}")
    assert sum(statuses.values()) >= 25, statuses
    assert explicit(statuses, load.errors), f"requests without an explicit answer: {statuses} {load.errors}"
    # the deleted pod refuses connections from SIGTERM on, while the gateway may still pick it for
    # up to its endpoint refresh (5 s): a retry elsewhere serves most of those, not always all
    assert statuses["200"] >= 0.8 * sum(statuses.values()), f"{statuses} {load.errors}\n{describe(cluster)}"


def test_a_gateway_pod_deleted_under_load_turns_no_client_away(cluster: Cluster) -> None:
    """One of the two gateway pods deleted under load: it keeps listening until the Service has
    dropped it (preStop), the other serves, the Deployment brings a new one behind the Service, and
    every request is answered with an image."""
    selector = f"app.kubernetes.io/instance={NAME},app.kubernetes.io/component=gateway"
    old = next(p for p in pods(cluster, selector) if ready(p))
    url = gateway_url(cluster)
    with Load(url, WORKER_KILL_QPS, 45) as load:
        t0 = time.monotonic()
        time.sleep(3)
        core(cluster).delete_namespaced_pod(old.metadata.name, NS)
        mark("gateway pod deleted")

        def replaced() -> bool:
            now = pods(cluster, selector)
            endpoints = core(cluster).read_namespaced_endpoints(f"{NAME}-gateway", NS)
            ips = {a.ip for s in endpoints.subsets or [] for a in s.addresses or []}
            serving = [p for p in now if ready(p)]
            return (
                old.metadata.name not in {p.metadata.name for p in now}
                and len(serving) == GATEWAYS
                and ips == {p.status.pod_ip for p in serving}
            )

        wait_for(cluster, "the deleted gateway pod replaced behind the Service", replaced, 120, selector)
        mark("gateway replaced")
        time.sleep(max(45 - (time.monotonic() - t0), 0))
    statuses = load.statuses
    text = (
        f"a gateway pod (of {GATEWAYS}) deleted under {WORKER_KILL_QPS:g} req/s → replaced behind the "
        "Service "
        f"{since('gateway pod deleted', 'gateway replaced')} later; responses {dict(statuses)}; "
        f"first error of each kind: {load.errors}"
    )
    print(f"\n{text}")
    SUMMARY.append(text)
    assert sum(statuses.values()) >= 40, statuses
    assert statuses == Counter({"200": sum(statuses.values())}), f"{statuses} {load.errors}"


#: read inside each container: who it runs as, privileges, seccomp, the root filesystem
SECURITY_PROBE = """
import errno, getpass, json, os
status = dict(l.split(':', 1) for l in open('/proc/self/status').read().splitlines() if ':' in l)
try:
    open('/usr/probe', 'w')
    rofs = False
except OSError as e:
    rofs = e.errno == errno.EROFS
with open('/tmp/probe', 'w') as f:
    f.write('x')
keys = ('Uid', 'Gid', 'NoNewPrivs', 'Seccomp', 'CapEff', 'CapPrm', 'CapBnd')
print(json.dumps({k: status[k].split() for k in keys}
      | {'user': getpass.getuser(), 'rofs': rofs, 'home': os.environ.get('HOME')}))
"""


def test_the_pods_run_with_the_restricted_defaults_in_real_containers(cluster: Cluster) -> None:
    checked = {}
    for component, selector in (
        ("operator", "app.kubernetes.io/name=hadis,app.kubernetes.io/instance=hadis"),
        ("gateway", f"app.kubernetes.io/instance={NAME},app.kubernetes.io/component=gateway"),
        ("worker", f"app.kubernetes.io/instance={NAME},app.kubernetes.io/component=worker"),
    ):
        pod = next(p for p in pods(cluster, selector) if ready(p))
        seen = json.loads(exec_python(cluster, pod.metadata.name, SECURITY_PROBE))
        assert seen["Uid"] == ["65532"] * 4 and seen["Gid"] == ["65532"] * 4, (component, seen)
        assert seen["user"] == "hadis", (component, seen)  # the images' passwd entry: kopf, getpass
        assert seen["NoNewPrivs"] == ["1"], (component, seen)  # allowPrivilegeEscalation: false
        assert seen["Seccomp"] == ["2"], (component, seen)  # a filter: RuntimeDefault
        assert int(seen["CapEff"][0], 16) == 0 and int(seen["CapBnd"][0], 16) == 0, (
            component,
            seen,
        )  # drop ALL
        assert seen["rofs"] is True and seen["home"] == "/tmp", (component, seen)  # read-only root
        checked[component] = pod.metadata.name
    print(f"\nrestricted defaults read from the running containers of {checked}")


def test_deleting_the_hadis_service_collects_every_object_and_pod(cluster: Cluster) -> None:
    client.CustomObjectsApi(cluster.api).delete_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, NAME)
    mark("service deleted")
    selector = f"app.kubernetes.io/instance={NAME}"
    apps = client.AppsV1Api(cluster.api)

    def gone() -> bool:
        left = [
            *apps.list_namespaced_deployment(NS, label_selector=selector).items,
            *core(cluster).list_namespaced_service(NS, label_selector=selector).items,
            *core(cluster).list_namespaced_config_map(NS, label_selector=selector).items,
            *pods(cluster, selector),
        ]
        return not left

    wait_for(cluster, "every object and pod of the HadisService garbage-collected", gone, 120)
    mark("service collected")
    print(
        "\nHadisService deleted → all its objects and pods gone "
        f"{since('service deleted', 'service collected')} later"
    )


def test_helm_uninstall_removes_the_operator_and_prints_the_timeline(cluster: Cluster) -> None:
    asyncio.run(_helm().Uninstall(_helm_config(cluster)).run(RELEASE, wait=False, timeout=60))
    selector = "app.kubernetes.io/name=hadis,app.kubernetes.io/instance=hadis"
    wait_for(cluster, "the operator pod gone", lambda: not pods(cluster, selector), 90)
    with pytest.raises(ApiException) as e:
        client.AppsV1Api(cluster.api).read_namespaced_deployment(RELEASE, NS)
    assert e.value.status == 404
    mark("uninstalled")
    rss = timeline.get("node rss mib", float("nan"))
    text = (
        "timeline (one-node cluster, 2 cores):\n"
        f"  helm install → operator pod Ready        {since('helm install', 'operator ready')}\n"
        f"  HadisService applied → pods Ready         {since('apply', 'pods ready')}\n"
        f"  helm install → first image via Service    {since('helm install', 'first image')}"
        "   (target ≤ 60 s)\n"
        f"  load start → plan changed                 {since('load start', 'plan changed')}\n"
        f"  plan changed → new worker pods Ready      {since('plan changed', 'new workers ready')}"
        "   (target ≤ 15 s)\n"
        f"  worker pod deleted → replaced, Ready      {since('worker pod deleted', 'worker replaced')}\n"
        f"  gateway pod deleted → replaced, serving   {since('gateway pod deleted', 'gateway replaced')}\n"
        f"  HadisService deleted → all collected      {since('service deleted', 'service collected')}\n"
        f"  node RSS with the test service            {rss:.0f} MiB   (target ≤ 2048 MiB)"
    )
    print(f"\n{text}")
    SUMMARY.extend(text.splitlines())
