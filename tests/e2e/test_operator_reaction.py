"""Issue 4: real load through the emulated gateway, scraped by the real Prometheus, changes the
worker replicas and the cascade ConfigMap **within one allocation interval** of Prometheus seeing it.

The stack is ``tests/dashboard_stack.py``'s (``python -m hadis_gateway`` + two emulated workers),
the operator is ``kopf run -m hadis.operator`` on the local kube-apiserver, Prometheus scrapes the
stack every second. The service allocates every ``INTERVAL_S`` with no smoothing (EWMA α = 1) over
a ``RATE_WINDOW`` rate. After the first (idle) allocation the test sends a steady open-loop load of
``QPS`` requests per second through the gateway and polls, every 0.2 s, Prometheus for the
operator's own arrival-rate query and the API server for the deployed plan (worker replicas by
Deployment, the ConfigMap's row and split). ``seen`` is when Prometheus first reports at least half
of ``QPS``; the plan must change at most one interval after that (plus the operator's 1 s tick and
the time to solve and write). Both delays are printed.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter
from collections.abc import Iterator

import httpx
import pytest
from kubernetes import client
from tests.dashboard_stack import Stack, running_stack, service_spec
from tests.deployed_plan import deployed_plan
from tests.k8s_local import ControlPlane, wait_until
from tests.operator_local import OperatorProcess, namespace_fixture, operator_fixture
from tests.prometheus_local import LocalPrometheus, PrometheusMissing, running_prometheus

from hadis.observe.promql import load_queries

pytestmark = pytest.mark.e2e

NS, NAME = "e2e-reaction", "react"
GROUP, VERSION, PLURAL = "hadis.io", "v1alpha1", "hadisservices"
INTERVAL_S, RATE_WINDOW, QPS, LOAD_S = 5, "3s", 30.0, 20.0
TICK_S, SOLVE_AND_WRITE_S = 1.0, 1.5  # the operator's timer tick; a solve and the patches

ns = namespace_fixture(NS)
operator = operator_fixture("reaction-operator")


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with running_stack(tmp_path_factory.mktemp("reaction-stack")) as s:
        yield s


@pytest.fixture(scope="module")
def prom(stack: Stack) -> Iterator[LocalPrometheus]:
    try:
        with running_prometheus(stack.targets(NS, NAME)) as p:
            yield p
    except PrometheusMissing as e:
        pytest.fail(str(e), pytrace=False)


async def _steady_load(url: str, stop: threading.Event) -> Counter[str]:
    """``QPS`` requests per second, open loop, for ``LOAD_S`` (or until ``stop``): HTTP statuses
    (or transport errors) counted."""
    statuses: Counter[str] = Counter()
    async with httpx.AsyncClient(base_url=url, timeout=15, limits=httpx.Limits(max_connections=400)) as c:

        async def one(i: int) -> None:
            body = {"prompt": f"a lighthouse on a cliff at dusk, {i}", "model": "hadis", "seed": i}
            try:
                statuses[str((await c.post("/v1/images/generations", json=body)).status_code)] += 1
            except httpx.HTTPError as e:
                statuses[type(e).__name__] += 1

        tasks: list[asyncio.Task[None]] = []
        t0 = time.monotonic()
        while time.monotonic() - t0 < LOAD_S and not stop.is_set():
            tasks.append(asyncio.create_task(one(len(tasks))))
            await asyncio.sleep(max(t0 + len(tasks) / QPS - time.monotonic(), 0))
        await asyncio.gather(*tasks)
    return statuses


def test_replicas_and_configmap_follow_the_load_within_one_interval(
    control_plane: ControlPlane, stack: Stack, operator: OperatorProcess, prom: LocalPrometheus
) -> None:
    body = service_spec(
        NAME,
        NS,
        allocation={"intervalSeconds": INTERVAL_S, "ewmaAlpha": 1.0},
        metrics={"prometheusUrl": prom.url, "rateWindow": RATE_WINDOW, "timeoutSeconds": 2},
    )
    crs = client.CustomObjectsApi(control_plane.api)
    crs.create_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, body)

    def allocated() -> bool:
        status = crs.get_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, NAME).get("status") or {}
        return bool(status.get("lastAllocationTime"))

    wait_until("the operator's first allocation", allocated, timeout=60)
    idle = deployed_plan(control_plane.api, NS, NAME)
    query = load_queries(NS, NAME, rate_window=RATE_WINDOW).arrival_rate

    stop = threading.Event()
    statuses: Counter[str] = Counter()
    loader = threading.Thread(target=lambda: statuses.update(asyncio.run(_steady_load(stack.gateway, stop))))
    start = time.monotonic()
    loader.start()
    seen: float | None = None
    changed: float | None = None
    rates: list[tuple[float, float]] = []
    try:
        while time.monotonic() - start < LOAD_S and changed is None:
            now = time.monotonic() - start
            got = prom.query(query)
            rate = float(got[0]["value"][1]) if got else 0.0
            rates.append((round(now, 1), round(rate, 1)))
            if seen is None and rate >= QPS / 2:
                seen = now
            if deployed_plan(control_plane.api, NS, NAME) != idle:
                changed = time.monotonic() - start
            time.sleep(0.2)
    finally:
        stop.set()
        loader.join(30)
    assert seen is not None, f"Prometheus never saw {QPS / 2:g} req/s: {rates}"
    assert changed is not None, f"the plan never changed under load: {idle}\n{operator.log_tail(2000)}"
    print(
        f"load {QPS:g} req/s: Prometheus saw ≥ half of it {seen:.1f} s after the start; the plan "
        f"changed {changed:.1f} s after the start, {changed - seen:.1f} s after Prometheus saw it "
        f"(interval {INTERVAL_S} s, rate window {RATE_WINDOW}); responses {dict(statuses)}"
    )
    assert changed - seen <= INTERVAL_S + TICK_S + SOLVE_AND_WRITE_S, (
        f"the plan changed {changed - seen:.1f} s after Prometheus saw the load (interval {INTERVAL_S} s)\n"
        f"rates: {rates}\n{operator.log_tail(2000)}"
    )
    assert sum(statuses.values()) > 0 and set(statuses) <= {"200", "429", "503", "504"}, statuses
    assert operator.alive(), operator.log_tail()
