"""Every panel query of the generated Grafana dashboard, run against a real Prometheus scraping the
real emulated stack (``tests/dashboard_stack.py``): each must succeed and return data.

The operator's metrics server (``hadis.operator.metrics``) runs in this process, fed by the
control loop's own code path: every 2 s the load is read from Prometheus (``query_load``),
smoothed (``estimate_demand``) and handed to the HADIS policy, and the allocation is recorded as
the operator records it. tests/e2e/test_dashboard_operator.py does the same with the real operator
(``kopf run -m hadis.operator``) on the local apiserver.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator

import pytest
from tests.dashboard_stack import HEAVY, LIGHT, LOOPBACK, Stack, panel_failures, running_stack, send_load
from tests.dashboard_stack import service_spec as spec_body
from tests.prometheus_local import LocalPrometheus, Target

from hadis.api.service import HadisService
from hadis.observe.load import estimate_demand
from hadis.observe.prometheus import MetricsUnavailable, query_load
from hadis.operator.metrics import OperatorMetrics, start_metrics_server
from hadis.policy.demand import DemandEstimate
from hadis.policy.inputs import build_decision_input
from hadis.policy.pareto import table_for
from hadis.policy.registry import get_policy
from hadis.profiles import load_profile

pytestmark = pytest.mark.integration

NS, SVC = "imaging", "dash"
StartPrometheus = Callable[..., LocalPrometheus]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with running_stack(tmp_path_factory.mktemp("dashboard")) as s:
        yield s


class ControlLoop:
    """The operator's observe → decide → record path every ``interval_s``, in a thread."""

    def __init__(self, prom_url: str, metrics: OperatorMetrics, interval_s: float = 2.0) -> None:
        self.svc = HadisService.model_validate(spec_body(SVC, NS))
        self.profile = load_profile("hadis-paper-l40s")
        self.table = table_for(self.profile, variants=[LIGHT, HEAVY])
        self.prom_url, self.metrics, self.interval_s = prom_url, metrics, interval_s
        self.demand: DemandEstimate | None = None
        self.decisions = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def step(self) -> None:
        spec = self.svc.spec
        try:
            obs = query_load(self.prom_url, namespace=NS, service=SVC, rate_window="5s")
        except MetricsUnavailable:
            self.metrics.record_error(SVC, NS, "MetricsUnavailable")
        else:
            self.metrics.record_observation(SVC, NS, obs)
            self.demand = estimate_demand(self.demand, obs, spec.allocation)
        qps = 0.0 if self.demand is None else self.demand.demand_qps
        inp = build_decision_input(spec, self.profile, self.table, qps)
        self.metrics.record_allocation(SVC, NS, get_policy(spec.policy)(inp))
        self.decisions += 1

    def _run(self) -> None:
        while not self.stop.wait(self.interval_s):
            self.step()

    def __enter__(self) -> ControlLoop:
        self.step()
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(10)


def test_every_panel_query_returns_data(stack: Stack, start_prometheus: StartPrometheus) -> None:
    t0 = time.monotonic()
    metrics = OperatorMetrics()
    server = start_metrics_server(0, host=LOOPBACK, metrics=metrics)
    try:
        # the operator's series carry namespace/service themselves: its target adds no such labels
        prom = start_prometheus([*stack.targets(NS, SVC), Target.of(f"{LOOPBACK}:{server.port}")])
        with ControlLoop(prom.url, metrics) as loop:
            statuses = send_load(stack.gateway)
            time.sleep(2.5)  # the last counters scraped
        print(f"responses by status: {dict(statuses)}; {loop.decisions} decisions")
        assert statuses[200] and statuses[429] and statuses[504], f"want answers, 429s and drops: {statuses}"
        failed = panel_failures(prom)
        assert not failed, "panel queries without data:\n" + "\n".join(failed)
    finally:
        server.stop()
    print(f"took {time.monotonic() - t0:.1f} s after the stack was up")
