"""Every panel query of the generated Grafana dashboard returns data with the real operator:
``kopf run -m hadis.operator`` on the local kube-apiserver decides for a HadisService from what a
real Prometheus scrapes off the emulated gateway and workers (``tests/dashboard_stack.py``), and
that Prometheus scrapes the operator's own metrics too. Pods stay Pending (no kubelet): the
gateway and workers are local processes labelled as the operator's pods would be.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
from kubernetes import client
from tests.dashboard_stack import Stack, panel_failures, running_stack, send_load, service_spec
from tests.deployed_plan import deployed_plan
from tests.k8s_local import ControlPlane, wait_until
from tests.operator_local import OperatorProcess, namespace_fixture, operator_fixture
from tests.prometheus_local import LocalPrometheus, PrometheusMissing, Target, running_prometheus

pytestmark = pytest.mark.e2e

NS, NAME = "e2e-dashboard", "dash"
GROUP, VERSION, PLURAL = "hadis.io", "v1alpha1", "hadisservices"


ns = namespace_fixture(NS)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with running_stack(tmp_path_factory.mktemp("dashboard-stack")) as s:
        yield s


operator = operator_fixture("dashboard-operator")


@pytest.fixture(scope="module")
def prom(stack: Stack, operator: OperatorProcess) -> Iterator[LocalPrometheus]:
    # the operator's series carry namespace/service themselves: its target adds no such labels
    targets = [*stack.targets(NS, NAME), Target.of(f"127.0.0.1:{operator.metrics_port}")]
    try:
        with running_prometheus(targets) as p:
            yield p
    except PrometheusMissing as e:
        pytest.fail(str(e), pytrace=False)


def _allocations(prom: LocalPrometheus) -> float:
    got = prom.query(f'hadis_operator_allocations_total{{namespace="{NS}",service="{NAME}"}}')
    return float(got[0]["value"][1]) if got else 0.0


def test_every_panel_query_returns_data_from_the_operator_and_the_stack(
    control_plane: ControlPlane, stack: Stack, operator: OperatorProcess, prom: LocalPrometheus
) -> None:
    t0 = time.monotonic()
    body = service_spec(
        NAME,
        NS,
        allocation={"intervalSeconds": 2, "ewmaAlpha": 0.5},
        metrics={"prometheusUrl": prom.url, "rateWindow": "5s", "timeoutSeconds": 2},
    )
    crs = client.CustomObjectsApi(control_plane.api)
    crs.create_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, body)
    wait_until("the operator's first allocation, scraped", lambda: _allocations(prom) >= 1, timeout=30)
    idle = deployed_plan(control_plane.api, NS, NAME)
    changed: list[float] = []  # seconds from the load's start to the first new plan
    done = threading.Event()

    def watch(start: float) -> None:
        while not done.is_set() and not changed:
            if deployed_plan(control_plane.api, NS, NAME) != idle:
                changed.append(time.monotonic() - start)
            time.sleep(0.25)

    watcher = threading.Thread(target=watch, args=(time.monotonic(),), daemon=True)
    watcher.start()
    statuses = send_load(stack.gateway)  # real requests through the gateway, scraped by Prometheus
    done.set()
    watcher.join(10)
    # the load the real Prometheus saw through the real gateway re-allocated the service: new
    # worker replicas and/or a new row in the cascade ConfigMap the pods watch
    assert changed, f"the plan never changed under load: {idle}\n{operator.log_tail(2000)}"
    print(f"the plan changed {changed[0]:.1f} s after the load started (interval 2 s)")
    time.sleep(2.5)  # the last counters scraped
    print(f"responses by status: {dict(statuses)}; {_allocations(prom):g} allocations recorded")
    assert statuses[200] and statuses[429] and statuses[504], f"want answers, 429s and drops: {statuses}"
    failed = panel_failures(prom)
    assert not failed, "panel queries without data:\n" + "\n".join(failed) + "\n" + operator.log_tail(2000)
    assert operator.alive(), operator.log_tail()
    print(f"took {time.monotonic() - t0:.1f} s after the stack, the operator and Prometheus were up")
